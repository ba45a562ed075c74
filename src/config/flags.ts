// Every server flag tskv knows: etcd's names and defaults (3.4.23 `etcd --help`,
// plus the 3.5/3.6 additions that unit files and kubeadm pass). The table drives
// argv/env/YAML parsing, the zod schema and `tskv --help`.
//
// A flag is one of:
// - built: parsed into Config and honoured;
// - unsupported: accepted only with its default value; any other value is
//   refused with "not supported yet" (v2 API, v2 proxy, discovery, pprof ...);
// - noEffect: accepted, and a warning says it changes nothing in tskv
//   (bbolt tuning that has no meaning for the SQLite backend).

export type FlagKind = "string" | "bool" | "uint" | "int" | "duration" | "urls" | "list" | "enum" | "origins"

export type FlagGroup =
  | "Member"
  | "Clustering"
  | "Security"
  | "Auth"
  | "Profiling and Monitoring"
  | "Logging"
  | "Features"
  | "v2 Proxy and discovery (not supported)"
  | "Unsafe feature"

export interface FlagSpec {
  readonly name: string
  readonly kind: FlagKind
  /** The default as a flag value ('' = empty). */
  readonly default: string
  readonly group: FlagGroup
  readonly help: string
  /** Allowed values of an enum flag. */
  readonly values?: readonly string[]
  /** Older names (etcd 3.4/3.5 `--experimental-*`) that mean the same flag. */
  readonly aliases?: readonly string[]
  /** Only the default is accepted; any other value is refused. */
  readonly unsupported?: true
  /** Accepted; a warning says it changes nothing in tskv. */
  readonly noEffect?: string
  /** Upper bound of a uint flag. */
  readonly max?: number
  /** Hidden from --help (deprecated spellings). */
  readonly hidden?: true
}

const uint32Max = 4_294_967_295

export const flagSpecs: readonly FlagSpec[] = [
  // Member
  { name: "name", kind: "string", default: "default", group: "Member", help: "Human-readable name for this member." },
  { name: "data-dir", kind: "string", default: "", group: "Member", help: "Path to the data directory (default '${name}.etcd')." },
  { name: "wal-dir", kind: "string", default: "", group: "Member", help: "Path to the dedicated wal directory." },
  { name: "snapshot-count", kind: "uint", default: "100000", group: "Member", help: "Number of committed transactions to trigger a snapshot to disk." },
  { name: "snapshot-catchup-entries", kind: "uint", default: "5000", group: "Member", aliases: ["experimental-snapshot-catchup-entries"], help: "Number of entries kept after a snapshot for slow followers to catch up." },
  { name: "heartbeat-interval", kind: "uint", default: "100", group: "Member", help: "Time (in milliseconds) of a heartbeat interval." },
  { name: "election-timeout", kind: "uint", default: "1000", group: "Member", help: "Time (in milliseconds) for an election to timeout." },
  { name: "initial-election-tick-advance", kind: "bool", default: "true", group: "Member", help: "Whether to fast-forward initial election ticks on boot for faster election. Not built: the first election timeout always runs in full." },
  { name: "listen-peer-urls", kind: "urls", default: "http://localhost:2380", group: "Member", help: "List of URLs to listen on for peer traffic." },
  { name: "listen-client-urls", kind: "urls", default: "http://localhost:2379", group: "Member", help: "List of URLs to listen on for client traffic (gRPC and HTTP on the same port)." },
  { name: "listen-client-http-urls", kind: "urls", default: "", group: "Member", unsupported: true, help: "List of URLs to listen on for HTTP-only client traffic. Not built: every client URL serves gRPC and HTTP together; list the URL in --listen-client-urls." },
  { name: "max-snapshots", kind: "uint", default: "5", group: "Member", help: "Maximum number of snapshot files to retain (0 is unlimited)." },
  { name: "max-wals", kind: "uint", default: "5", group: "Member", help: "Maximum number of wal files to retain (0 is unlimited)." },
  { name: "quota-backend-bytes", kind: "int", default: "0", group: "Member", help: "Raise alarms when backend size exceeds the given quota (0 defaults to 2 GiB)." },
  { name: "backend-batch-interval", kind: "duration", default: "", group: "Member", help: "Maximum time before committing the backend transaction (default 1s; etcd: 100ms)." },
  { name: "backend-batch-limit", kind: "uint", default: "0", group: "Member", help: "Maximum operations before committing the backend transaction (0 defaults to 100000; etcd: 10000)." },
  { name: "backend-bbolt-freelist-type", kind: "enum", values: ["array", "map"], default: "map", group: "Member", aliases: ["experimental-backend-bbolt-freelist-type"], noEffect: "the backend is SQLite, not bbolt", help: "bbolt freelist type (no effect: the backend is SQLite)." },
  { name: "max-txn-ops", kind: "uint", default: "128", group: "Member", help: "Maximum number of operations permitted in a transaction." },
  { name: "max-request-bytes", kind: "uint", default: "1572864", max: uint32Max, group: "Member", help: "Maximum client request size in bytes the server will accept." },
  { name: "max-concurrent-streams", kind: "uint", default: String(uint32Max), max: uint32Max, group: "Member", help: "Maximum concurrent streams that each client can open at a time." },
  { name: "grpc-keepalive-min-time", kind: "duration", default: "5s", group: "Member", help: "Minimum interval a client should wait before pinging the server." },
  { name: "grpc-keepalive-interval", kind: "duration", default: "2h", group: "Member", help: "Frequency of server-to-client pings to check if a connection is alive (0 to disable)." },
  { name: "grpc-keepalive-timeout", kind: "duration", default: "20s", group: "Member", help: "Additional wait before closing a non-responsive connection (0 to disable)." },
  { name: "raft-read-timeout", kind: "duration", default: "5s", group: "Member", help: "Read timeout set on each peer connection. Not built: peer connections use the transport's own timeouts." },
  { name: "raft-write-timeout", kind: "duration", default: "5s", group: "Member", help: "Write timeout set on each peer connection. Not built: peer connections use the transport's own timeouts." },
  { name: "socket-reuse-port", kind: "bool", default: "false", group: "Member", unsupported: true, help: "Set SO_REUSEPORT on listeners. Not built: the listeners do not set SO_REUSEPORT; a second process cannot share the port." },
  { name: "socket-reuse-address", kind: "bool", default: "false", group: "Member", unsupported: true, help: "Set SO_REUSEADDR on listeners. Not built: the listeners do not set SO_REUSEADDR beyond the runtime's default." },
  { name: "max-learners", kind: "uint", default: "1", group: "Member", aliases: ["experimental-max-learners"], help: "Maximum number of learner members in the cluster." },
  { name: "wait-cluster-ready-timeout", kind: "duration", default: "5s", group: "Member", aliases: ["experimental-wait-cluster-ready-timeout"], unsupported: true, help: "Maximum time to wait for the cluster to be ready before serving. Not built: clients are served at once; READY=1 (sd_notify) and /readyz tell when the member joined." },

  // Clustering
  { name: "initial-advertise-peer-urls", kind: "urls", default: "http://localhost:2380", group: "Clustering", help: "List of this member's peer URLs to advertise to the rest of the cluster." },
  { name: "initial-cluster", kind: "string", default: "default=http://localhost:2380", group: "Clustering", help: "Initial cluster configuration for bootstrapping (name=peerURL,...)." },
  { name: "initial-cluster-state", kind: "enum", values: ["new", "existing"], default: "new", group: "Clustering", help: "Initial cluster state ('new' or 'existing')." },
  { name: "initial-cluster-token", kind: "string", default: "etcd-cluster", group: "Clustering", help: "Initial cluster token for the cluster during bootstrap." },
  { name: "advertise-client-urls", kind: "urls", default: "http://localhost:2379", group: "Clustering", help: "List of this member's client URLs to advertise to the public." },
  { name: "strict-reconfig-check", kind: "bool", default: "true", group: "Clustering", help: "Reject reconfiguration requests that would cause quorum loss." },
  { name: "pre-vote", kind: "bool", default: "true", group: "Clustering", help: "Run an additional Raft election phase (default true, as etcd 3.5+)." },
  { name: "auto-compaction-retention", kind: "string", default: "0", group: "Clustering", help: "Auto compaction retention length. 0 means disable auto compaction." },
  { name: "auto-compaction-mode", kind: "enum", values: ["periodic", "revision"], default: "periodic", group: "Clustering", help: "Interpret 'auto-compaction-retention' as periodic (a duration; a bare number is hours) or revision (a count)." },

  // Security
  { name: "cert-file", kind: "string", default: "", group: "Security", help: "Path to the client server TLS cert file." },
  { name: "key-file", kind: "string", default: "", group: "Security", help: "Path to the client server TLS key file." },
  { name: "client-cert-file", kind: "string", default: "", group: "Security", help: "Path to the cert file tskv presents as a client (default: --cert-file)." },
  { name: "client-key-file", kind: "string", default: "", group: "Security", help: "Path to the key file tskv uses as a client (default: --key-file)." },
  { name: "client-cert-auth", kind: "bool", default: "false", group: "Security", help: "Enable client cert authentication." },
  { name: "client-crl-file", kind: "string", default: "", group: "Security", help: "Path to the client certificate revocation list file." },
  { name: "client-cert-allowed-hostname", kind: "list", default: "", group: "Security", help: "Allowed TLS hostname for client cert authentication." },
  { name: "trusted-ca-file", kind: "string", default: "", group: "Security", help: "Path to the client server TLS trusted CA cert file." },
  { name: "auto-tls", kind: "bool", default: "false", group: "Security", help: "Client TLS using generated certificates." },
  { name: "peer-cert-file", kind: "string", default: "", group: "Security", help: "Path to the peer server TLS cert file." },
  { name: "peer-key-file", kind: "string", default: "", group: "Security", help: "Path to the peer server TLS key file." },
  { name: "peer-client-cert-file", kind: "string", default: "", group: "Security", help: "Path to the cert file presented to other peers (default: --peer-cert-file)." },
  { name: "peer-client-key-file", kind: "string", default: "", group: "Security", help: "Path to the key file used towards other peers (default: --peer-key-file)." },
  { name: "peer-client-cert-auth", kind: "bool", default: "false", group: "Security", help: "Enable peer client cert authentication." },
  { name: "peer-trusted-ca-file", kind: "string", default: "", group: "Security", help: "Path to the peer server TLS trusted CA file." },
  { name: "peer-cert-allowed-cn", kind: "list", default: "", group: "Security", help: "Required CN for client certs connecting to the peer endpoint." },
  { name: "peer-cert-allowed-hostname", kind: "list", default: "", group: "Security", help: "Allowed TLS hostname for inter peer authentication." },
  { name: "peer-auto-tls", kind: "bool", default: "false", group: "Security", help: "Peer TLS using self-generated certificates if --peer-key-file and --peer-cert-file are not provided." },
  { name: "peer-crl-file", kind: "string", default: "", group: "Security", help: "Path to the peer certificate revocation list file." },
  { name: "peer-skip-client-san-verification", kind: "bool", default: "false", group: "Security", aliases: ["experimental-peer-skip-client-san-verification"], help: "Skip verification of SAN field in client certificate for peer connections." },
  { name: "self-signed-cert-validity", kind: "uint", default: "1", group: "Security", help: "The validity period of the client and peer certificates generated by --auto-tls and --peer-auto-tls, in years." },
  { name: "cipher-suites", kind: "list", default: "", group: "Security", help: "Comma-separated list of supported TLS cipher suites between client/server and peers (empty: the TLS library's defaults)." },
  { name: "tls-min-version", kind: "enum", values: ["TLS1.2", "TLS1.3"], default: "TLS1.2", group: "Security", help: "Minimum TLS version supported by tskv (TLS1.2 or TLS1.3)." },
  { name: "tls-max-version", kind: "enum", values: ["", "TLS1.2", "TLS1.3"], default: "", group: "Security", help: "Maximum TLS version supported by tskv (empty: no limit)." },
  { name: "cors", kind: "origins", default: "*", group: "Security", help: "Comma-separated whitelist of origins for CORS (empty or * means allow all)." },
  { name: "host-whitelist", kind: "list", default: "*", group: "Security", help: "Acceptable hostnames from HTTP client requests, if server is not secure (empty or * means allow all). Not built: the Host header of HTTP requests is not checked." },

  // Auth
  { name: "auth-token", kind: "string", default: "simple", group: "Auth", help: "Auth token type and its options ('simple' or 'jwt,pub-key=...,priv-key=...,sign-method=...,ttl=...')." },
  { name: "bcrypt-cost", kind: "uint", default: "10", group: "Auth", help: "Cost of bcrypt password hashing. Valid values are between 4 and 31." },
  { name: "auth-token-ttl", kind: "uint", default: "300", group: "Auth", help: "Time (in seconds) of the auth-token-ttl." },

  // Profiling and Monitoring
  { name: "enable-pprof", kind: "bool", default: "false", group: "Profiling and Monitoring", unsupported: true, help: "Enable runtime profiling data via HTTP server. Not built: /debug/pprof serves Go runtime profiles, which a Bun process does not have." },
  { name: "metrics", kind: "enum", values: ["basic", "extensive"], default: "basic", group: "Profiling and Monitoring", help: "Level of detail for exported metrics, 'extensive' adds histogram metrics." },
  { name: "listen-metrics-urls", kind: "urls", default: "", group: "Profiling and Monitoring", help: "List of URLs to listen on for the metrics and health endpoints." },
  { name: "enable-grpc-gateway", kind: "bool", default: "true", group: "Profiling and Monitoring", help: "Serve the JSON gRPC gateway (/v3/*) on the client URLs." },

  // Logging
  { name: "logger", kind: "enum", values: ["zap", "capnslog"], default: "zap", group: "Logging", help: "Logger: 'zap' (structured JSON). 'capnslog' is accepted and logs as zap." },
  { name: "log-outputs", kind: "list", default: "default", group: "Logging", help: "'default', 'stderr', 'stdout' or file paths, comma-separated." },
  { name: "log-level", kind: "enum", values: ["debug", "info", "warn", "error", "panic", "fatal"], default: "info", group: "Logging", help: "Log level: debug, info, warn, error, panic, or fatal." },
  { name: "log-format", kind: "enum", values: ["json", "console"], default: "json", group: "Logging", help: "Log encoding: json or console (zap's: time, level, message, then the fields as JSON, tab-separated)." },
  { name: "enable-log-rotation", kind: "bool", default: "false", group: "Logging", unsupported: true, help: "Rotate a single log-outputs file target. Not built: rotate --log-outputs files with logrotate (copytruncate), or log to systemd/journal." },
  { name: "log-rotation-config-json", kind: "string", default: "", group: "Logging", unsupported: true, help: "Log rotation settings as JSON. Not built: see --enable-log-rotation." },
  { name: "debug", kind: "bool", default: "false", group: "Logging", hidden: true, help: "Deprecated: same as --log-level=debug." },
  { name: "log-package-levels", kind: "string", default: "", group: "Logging", hidden: true, unsupported: true, help: "Deprecated per-package log levels. Not built: capnslog's per-package levels; use --log-level." },

  // Features (3.6 names; the 3.4/3.5 --experimental-* spellings are aliases)
  { name: "feature-gates", kind: "string", default: "", group: "Features", help: "Comma-separated Name=true|false: InitialCorruptCheck, CompactHashCheck, LeaseCheckpoint, LeaseCheckpointPersist, StopGRPCServiceOnDefrag, TxnModeWriteWithSharedBuffer (SetMemberLocalAddr is not supported yet)." },
  { name: "experimental-initial-corrupt-check", kind: "bool", default: "false", group: "Features", help: "Check data corruption before serving any client/peer traffic (= --feature-gates=InitialCorruptCheck=true)." },
  { name: "corrupt-check-time", kind: "duration", default: "0s", group: "Features", aliases: ["experimental-corrupt-check-time"], help: "Duration of time between cluster corruption check passes." },
  { name: "experimental-compact-hash-check-enabled", kind: "bool", default: "false", group: "Features", help: "Leader checks followers' compaction hashes (= --feature-gates=CompactHashCheck=true). Not built: the leader does not compare followers' compaction hashes; --experimental-corrupt-check-time compares HashKV." },
  { name: "compact-hash-check-time", kind: "duration", default: "1m", group: "Features", aliases: ["experimental-compact-hash-check-time"], help: "Duration of time between leader checks of followers' compaction hashes. Not built: see --experimental-compact-hash-check-enabled." },
  { name: "experimental-enable-lease-checkpoint", kind: "bool", default: "false", group: "Features", help: "Leader persists lease remaining TTL (= --feature-gates=LeaseCheckpoint=true)." },
  { name: "experimental-enable-lease-checkpoint-persist", kind: "bool", default: "false", group: "Features", help: "Persist lease checkpoints (= --feature-gates=LeaseCheckpointPersist=true). Not built: lease checkpoints are not persisted." },
  { name: "experimental-stop-grpc-service-on-defrag", kind: "bool", default: "false", group: "Features", help: "Report not serving on the gRPC health service during defrag (= --feature-gates=StopGRPCServiceOnDefrag=true). Not built: the gRPC health service stays SERVING during a defrag." },
  { name: "compaction-batch-limit", kind: "uint", default: "1000", group: "Features", aliases: ["experimental-compaction-batch-limit"], help: "Maximum revisions deleted in each compaction batch." },
  { name: "compaction-sleep-interval", kind: "duration", default: "10ms", group: "Features", aliases: ["experimental-compaction-sleep-interval"], help: "Sleep between compaction batches." },
  { name: "watch-progress-notify-interval", kind: "duration", default: "10m", group: "Features", aliases: ["experimental-watch-progress-notify-interval"], help: "Duration of periodic watch progress notifications." },
  { name: "warning-apply-duration", kind: "duration", default: "100ms", group: "Features", aliases: ["experimental-warning-apply-duration"], help: "A warning is logged if applying a request takes longer." },
  { name: "warning-unary-request-duration", kind: "duration", default: "300ms", group: "Features", aliases: ["experimental-warning-unary-request-duration"], help: "A warning is logged if a unary request takes longer. Not built: slow unary requests are not logged." },
  { name: "experimental-txn-mode-write-with-shared-buffer", kind: "bool", default: "true", group: "Features", noEffect: "tskv has no bbolt read buffer", help: "bbolt read-buffer sharing (no effect in tskv)." },
  { name: "bootstrap-defrag-threshold-megabytes", kind: "uint", default: "0", group: "Features", aliases: ["experimental-bootstrap-defrag-threshold-megabytes"], unsupported: true, help: "Defragment on start when this many megabytes can be freed. Not built: run `tskv ctl defrag` (online, or --data-dir offline) instead." },
  { name: "memory-mlock", kind: "bool", default: "false", group: "Features", aliases: ["experimental-memory-mlock"], unsupported: true, help: "mlock the process memory. Not built: Bun offers no mlockall(2) of the process memory." },
  { name: "downgrade-check-time", kind: "duration", default: "5s", group: "Features", aliases: ["experimental-downgrade-check-time"], unsupported: true, help: "Time between downgrade status checks. Not built: cluster version downgrades (etcd 3.6) are not built." },
  { name: "enable-distributed-tracing", kind: "bool", default: "false", group: "Features", aliases: ["experimental-enable-distributed-tracing"], unsupported: true, help: "OpenTelemetry tracing. Not built: tskv exports no OpenTelemetry traces." },
  { name: "distributed-tracing-address", kind: "string", default: "localhost:4317", group: "Features", aliases: ["experimental-distributed-tracing-address"], unsupported: true, help: "OpenTelemetry collector address. Not built: see --enable-distributed-tracing." },
  { name: "distributed-tracing-service-name", kind: "string", default: "etcd", group: "Features", aliases: ["experimental-distributed-tracing-service-name"], unsupported: true, help: "OpenTelemetry service name. Not built: see --enable-distributed-tracing." },
  { name: "distributed-tracing-instance-id", kind: "string", default: "", group: "Features", aliases: ["experimental-distributed-tracing-instance-id"], unsupported: true, help: "OpenTelemetry service instance ID. Not built: see --enable-distributed-tracing." },
  { name: "distributed-tracing-sampling-rate", kind: "uint", default: "0", group: "Features", aliases: ["experimental-distributed-tracing-sampling-rate"], unsupported: true, help: "Samples per million spans. Not built: see --enable-distributed-tracing." },
  { name: "experimental-set-member-localaddr", kind: "bool", default: "false", group: "Features", unsupported: true, help: "Dial peers from the advertised peer URL's address (= --feature-gates=SetMemberLocalAddr=true). Not built: peers are dialled from the system's default source address." },
  { name: "enable-v2", kind: "bool", default: "false", group: "Features", help: "Accept etcd V2 client requests." },
  { name: "experimental-enable-v2v3", kind: "string", default: "", group: "Features", unsupported: true, help: "Serve v2 requests through the v3 backend under a given prefix. Not built: v2 requests are not mapped onto the v3 store." },
  { name: "v2-deprecation", kind: "enum", values: ["not-yet", "write-only", "write-only-drop-data", "gone"], default: "not-yet", group: "Features", noEffect: "tskv keeps the v2 store of etcd 3.4", help: "Phase of v2store deprecation (no effect: tskv keeps the v2 store of etcd 3.4)." },

  // v2 proxy and discovery: etcd's, not built in tskv.
  { name: "discovery", kind: "string", default: "", group: "v2 Proxy and discovery (not supported)", unsupported: true, help: "Discovery URL used to bootstrap the cluster. Not built: discovery services are not built; name every member in --initial-cluster." },
  { name: "discovery-fallback", kind: "enum", values: ["exit", "proxy"], default: "proxy", group: "v2 Proxy and discovery (not supported)", unsupported: true, help: "Expected behavior ('exit' or 'proxy') when discovery services fails. Not built: discovery services are not built; name every member in --initial-cluster." },
  { name: "discovery-proxy", kind: "string", default: "", group: "v2 Proxy and discovery (not supported)", unsupported: true, help: "HTTP proxy to use for traffic to discovery service. Not built: discovery services are not built; name every member in --initial-cluster." },
  { name: "discovery-srv", kind: "string", default: "", group: "v2 Proxy and discovery (not supported)", unsupported: true, help: "DNS srv domain used to bootstrap the cluster. Not built: discovery services are not built; name every member in --initial-cluster." },
  { name: "discovery-srv-name", kind: "string", default: "", group: "v2 Proxy and discovery (not supported)", unsupported: true, help: "Suffix to the dns srv name queried when bootstrapping. Not built: discovery services are not built; name every member in --initial-cluster." },
  { name: "discovery-endpoints", kind: "string", default: "", group: "v2 Proxy and discovery (not supported)", unsupported: true, help: "V3 discovery: gRPC endpoints of the discovery service. Not built: discovery services are not built; name every member in --initial-cluster." },
  { name: "discovery-token", kind: "string", default: "", group: "v2 Proxy and discovery (not supported)", unsupported: true, help: "V3 discovery: discovery token. Not built: discovery services are not built; name every member in --initial-cluster." },
  { name: "discovery-dial-timeout", kind: "duration", default: "2s", group: "v2 Proxy and discovery (not supported)", unsupported: true, help: "V3 discovery: dial timeout. Not built: discovery services are not built; name every member in --initial-cluster." },
  { name: "discovery-request-timeout", kind: "duration", default: "5s", group: "v2 Proxy and discovery (not supported)", unsupported: true, help: "V3 discovery: request timeout. Not built: discovery services are not built; name every member in --initial-cluster." },
  { name: "discovery-keepalive-time", kind: "duration", default: "2s", group: "v2 Proxy and discovery (not supported)", unsupported: true, help: "V3 discovery: keepalive time. Not built: discovery services are not built; name every member in --initial-cluster." },
  { name: "discovery-keepalive-timeout", kind: "duration", default: "6s", group: "v2 Proxy and discovery (not supported)", unsupported: true, help: "V3 discovery: keepalive timeout. Not built: discovery services are not built; name every member in --initial-cluster." },
  { name: "discovery-insecure-transport", kind: "bool", default: "true", group: "v2 Proxy and discovery (not supported)", unsupported: true, help: "V3 discovery: disable transport security. Not built: discovery services are not built; name every member in --initial-cluster." },
  { name: "discovery-insecure-skip-tls-verify", kind: "bool", default: "false", group: "v2 Proxy and discovery (not supported)", unsupported: true, help: "V3 discovery: skip server certificate verification. Not built: discovery services are not built; name every member in --initial-cluster." },
  { name: "discovery-cert", kind: "string", default: "", group: "v2 Proxy and discovery (not supported)", unsupported: true, help: "V3 discovery: client certificate. Not built: discovery services are not built; name every member in --initial-cluster." },
  { name: "discovery-key", kind: "string", default: "", group: "v2 Proxy and discovery (not supported)", unsupported: true, help: "V3 discovery: client key. Not built: discovery services are not built; name every member in --initial-cluster." },
  { name: "discovery-cacert", kind: "string", default: "", group: "v2 Proxy and discovery (not supported)", unsupported: true, help: "V3 discovery: CA bundle. Not built: discovery services are not built; name every member in --initial-cluster." },
  { name: "discovery-user", kind: "string", default: "", group: "v2 Proxy and discovery (not supported)", unsupported: true, help: "V3 discovery: username[:password]. Not built: discovery services are not built; name every member in --initial-cluster." },
  { name: "discovery-password", kind: "string", default: "", group: "v2 Proxy and discovery (not supported)", unsupported: true, help: "V3 discovery: password. Not built: discovery services are not built; name every member in --initial-cluster." },
  { name: "proxy", kind: "enum", values: ["off", "readonly", "on"], default: "off", group: "v2 Proxy and discovery (not supported)", unsupported: true, help: "Proxy mode setting ('off', 'readonly' or 'on'). Not built: the v2 proxy mode; point clients at the members (or an L4 balancer) instead." },
  { name: "proxy-failure-wait", kind: "uint", default: "5000", group: "v2 Proxy and discovery (not supported)", unsupported: true, help: "Time (in milliseconds) an endpoint will be held in a failed state. Not built: see --proxy." },
  { name: "proxy-refresh-interval", kind: "uint", default: "30000", group: "v2 Proxy and discovery (not supported)", unsupported: true, help: "Time (in milliseconds) of the endpoints refresh interval. Not built: see --proxy." },
  { name: "proxy-dial-timeout", kind: "uint", default: "1000", group: "v2 Proxy and discovery (not supported)", unsupported: true, help: "Time (in milliseconds) for a dial to timeout. Not built: see --proxy." },
  { name: "proxy-write-timeout", kind: "uint", default: "5000", group: "v2 Proxy and discovery (not supported)", unsupported: true, help: "Time (in milliseconds) for a write to timeout. Not built: see --proxy." },
  { name: "proxy-read-timeout", kind: "uint", default: "0", group: "v2 Proxy and discovery (not supported)", unsupported: true, help: "Time (in milliseconds) for a read to timeout. Not built: see --proxy." },

  // Unsafe
  { name: "force-new-cluster", kind: "bool", default: "false", group: "Unsafe feature", help: "Force to create a new one-member cluster." },
  { name: "unsafe-no-fsync", kind: "bool", default: "false", group: "Unsafe feature", help: "Disables fsync, unsafe, will cause data loss." },
]

/** Flags that only steer the parser itself. */
export const parserFlags = ["config-file"] as const

export type FlagName = string

const byName = new Map<string, FlagSpec>()
for (const spec of flagSpecs) {
  byName.set(spec.name, spec)
  for (const alias of spec.aliases ?? []) byName.set(alias, spec)
}

/** The spec for a flag name or one of its aliases. */
export function findFlag(name: string): FlagSpec | undefined {
  return byName.get(name)
}

/** Every name a flag may be given by (canonical first). */
export function namesOf(spec: FlagSpec): readonly string[] {
  return [spec.name, ...(spec.aliases ?? [])]
}

/** `--foo-bar` <-> `ETCD_FOO_BAR` / `TSKV_FOO_BAR`. */
export function envSuffix(flagName: string): string {
  return flagName.toUpperCase().replaceAll("-", "_")
}

/**
 * The nested TLS blocks of etcd's YAML config file, mapped onto flags.
 * `allowed-cn` and `allowed-hostname` may be a string or a list.
 */
export const yamlSecurityKeys = {
  "client-transport-security": {
    "cert-file": "cert-file",
    "key-file": "key-file",
    "client-cert-file": "client-cert-file",
    "client-key-file": "client-key-file",
    "client-cert-auth": "client-cert-auth",
    "trusted-ca-file": "trusted-ca-file",
    "auto-tls": "auto-tls",
    "allowed-hostname": "client-cert-allowed-hostname",
    "crl-file": "client-crl-file",
  },
  "peer-transport-security": {
    "cert-file": "peer-cert-file",
    "key-file": "peer-key-file",
    "client-cert-file": "peer-client-cert-file",
    "client-key-file": "peer-client-key-file",
    "client-cert-auth": "peer-client-cert-auth",
    "trusted-ca-file": "peer-trusted-ca-file",
    "auto-tls": "peer-auto-tls",
    "allowed-cn": "peer-cert-allowed-cn",
    "allowed-hostname": "peer-cert-allowed-hostname",
    "skip-client-san-verification": "peer-skip-client-san-verification",
    "crl-file": "peer-crl-file",
  },
} as const satisfies Record<string, Record<string, string>>

/** Feature gates (etcd 3.6 --feature-gates) and the 3.4/3.5 flag each replaces. */
export const featureGates = {
  InitialCorruptCheck: "experimental-initial-corrupt-check",
  CompactHashCheck: "experimental-compact-hash-check-enabled",
  LeaseCheckpoint: "experimental-enable-lease-checkpoint",
  LeaseCheckpointPersist: "experimental-enable-lease-checkpoint-persist",
  StopGRPCServiceOnDefrag: "experimental-stop-grpc-service-on-defrag",
  TxnModeWriteWithSharedBuffer: "experimental-txn-mode-write-with-shared-buffer",
  SetMemberLocalAddr: "experimental-set-member-localaddr",
} as const

export type FeatureGate = keyof typeof featureGates

/** Environment variables that are not flags but are known (not warned about). */
export const knownNonFlagEnv = new Set(["ETCD_CONFIG_FILE", "TSKV_CONFIG_FILE", "TSKV_SEED", "TSKV_BENCH", "ETCD_UNSUPPORTED_ARCH"])
