import { describe, expect, test } from "bun:test"
import type { Config, ParseResult } from "./config"
import { envSuffix, flagSpecs, yamlSecurityKeys } from "./flags"
import { flagTableMarkdown, helpText } from "./help"
import { type Env, parseConfig } from "./parse"
import { versionText } from "./version"

function config(result: ParseResult): Config {
  if (result.kind !== "config") throw new Error(`expected a config, got ${JSON.stringify(result)}`)
  return result.config
}

function errorOf(result: ParseResult): string {
  if (result.kind !== "error") throw new Error(`expected an error, got ${result.kind}`)
  expect(result.exitCode).toBe(2)
  return result.message
}

const urlTexts = (urls: readonly { text: string }[]): string[] => urls.map((u) => u.text)

/** One row per built flag: a sample value and what Config makes of it. */
const rows: [flag: string, text: string, get: (c: Config) => unknown, expected: unknown][] = [
  ["name", "infra0", (c) => c.name, "infra0"],
  ["data-dir", "/var/lib/etcd", (c) => c.dataDir, "/var/lib/etcd"],
  ["wal-dir", "/wal", (c) => c.walDir, "/wal"],
  ["snapshot-count", "10000", (c) => c.snapshotCount, 10000],
  ["snapshot-catchup-entries", "100", (c) => c.snapshotCatchupEntries, 100],
  ["heartbeat-interval", "50", (c) => c.heartbeatMs, 50],
  ["election-timeout", "2000", (c) => [c.electionMs, c.electionTicks], [2000, 20]],
  ["initial-election-tick-advance", "false", (c) => c.initialElectionTickAdvance, false],
  ["listen-peer-urls", "http://127.0.0.1:2380,http://10.0.0.1:2380", (c) => urlTexts(c.listenPeerUrls), ["http://10.0.0.1:2380", "http://127.0.0.1:2380"]],
  ["max-snapshots", "0", (c) => c.maxSnapshots, 0],
  ["max-wals", "7", (c) => c.maxWals, 7],
  ["quota-backend-bytes", "8589934592", (c) => c.quotaBackendBytes, 8589934592],
  ["backend-batch-interval", "10ms", (c) => c.backendBatchIntervalMs, 10],
  ["backend-batch-limit", "500", (c) => c.backendBatchLimit, 500],
  ["max-txn-ops", "256", (c) => c.maxTxnOps, 256],
  ["max-request-bytes", "10485760", (c) => c.maxRequestBytes, 10485760],
  ["max-concurrent-streams", "100", (c) => c.maxConcurrentStreams, 100],
  ["grpc-keepalive-min-time", "1s", (c) => c.grpcKeepaliveMinTimeMs, 1000],
  ["grpc-keepalive-interval", "1h30m", (c) => c.grpcKeepaliveIntervalMs, 5_400_000],
  ["grpc-keepalive-timeout", "0", (c) => c.grpcKeepaliveTimeoutMs, 0],
  ["raft-read-timeout", "2s", (c) => c.raftReadTimeoutMs, 2000],
  ["raft-write-timeout", "3s", (c) => c.raftWriteTimeoutMs, 3000],
  ["max-learners", "2", (c) => c.maxLearners, 2],
  ["initial-advertise-peer-urls", "https://10.0.0.1:2380", (c) => [urlTexts(c.initialAdvertisePeerUrls), c.initialCluster[0]?.name], [["https://10.0.0.1:2380"], "default"]],
  ["initial-cluster", "a=http://10.0.0.1:2380,b=http://10.0.0.2:2380,a=http://10.0.1.1:2380", (c) => c.initialCluster.map((m) => `${m.name}:${urlTexts(m.peerUrls).join("+")}`), ["a:http://10.0.0.1:2380+http://10.0.1.1:2380", "b:http://10.0.0.2:2380"]],
  ["initial-cluster-state", "existing", (c) => c.initialClusterState, "existing"],
  ["initial-cluster-token", "tok", (c) => c.initialClusterToken, "tok"],
  ["advertise-client-urls", "http://10.0.0.1:2379", (c) => urlTexts(c.advertiseClientUrls), ["http://10.0.0.1:2379"]],
  ["strict-reconfig-check", "false", (c) => c.strictReconfigCheck, false],
  ["pre-vote", "false", (c) => c.preVote, false],
  ["auto-compaction-retention", "2", (c) => c.autoCompaction, { mode: "periodic", retentionMs: 7_200_000 }],
  ["auto-compaction-mode", "revision", (c) => c.autoCompaction, { mode: "revision", retentionRevisions: 0 }],
  ["cert-file", "s.crt", (c) => c.client.certFile, "s.crt"],
  ["key-file", "s.key", (c) => c.client.keyFile, "s.key"],
  ["client-cert-file", "c.crt", (c) => c.client.clientCertFile, "c.crt"],
  ["client-key-file", "c.key", (c) => c.client.clientKeyFile, "c.key"],
  ["client-cert-auth", "true", (c) => c.client.clientCertAuth, true],
  ["client-crl-file", "c.crl", (c) => c.client.crlFile, "c.crl"],
  ["client-cert-allowed-hostname", "a.example", (c) => c.client.allowedHostname, ["a.example"]],
  ["trusted-ca-file", "ca.crt", (c) => c.client.trustedCaFile, "ca.crt"],
  ["auto-tls", "true", (c) => c.client.autoTls, true],
  ["peer-cert-file", "p.crt", (c) => c.peer.certFile, "p.crt"],
  ["peer-key-file", "p.key", (c) => c.peer.keyFile, "p.key"],
  ["peer-client-cert-file", "pc.crt", (c) => c.peer.clientCertFile, "pc.crt"],
  ["peer-client-key-file", "pc.key", (c) => c.peer.clientKeyFile, "pc.key"],
  ["peer-client-cert-auth", "true", (c) => c.peer.clientCertAuth, true],
  ["peer-trusted-ca-file", "pca.crt", (c) => c.peer.trustedCaFile, "pca.crt"],
  ["peer-cert-allowed-cn", "etcd-peer", (c) => c.peer.allowedCn, ["etcd-peer"]],
  ["peer-cert-allowed-hostname", "p.example", (c) => c.peer.allowedHostname, ["p.example"]],
  ["peer-auto-tls", "true", (c) => c.peer.autoTls, true],
  ["peer-crl-file", "p.crl", (c) => c.peer.crlFile, "p.crl"],
  ["peer-skip-client-san-verification", "true", (c) => c.peer.skipClientSanVerification, true],
  ["self-signed-cert-validity", "3", (c) => c.selfSignedCertValidityYears, 3],
  ["cipher-suites", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", (c) => c.cipherSuites, ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"]],
  ["tls-min-version", "TLS1.3", (c) => c.tlsMinVersion, "TLSv1.3"],
  ["tls-max-version", "TLS1.2", (c) => c.tlsMaxVersion, "TLSv1.2"],
  ["cors", "https://a.example:443,https://b.example:8443", (c) => c.cors, ["https://a.example:443", "https://b.example:8443"]],
  ["cors", "*", (c) => c.cors, ["*"]],
  ["host-whitelist", "localhost,127.0.0.1", (c) => c.hostWhitelist, ["localhost", "127.0.0.1"]],
  ["auth-token", "jwt,pub-key=a.pub,priv-key=a.key,sign-method=RS256,ttl=10m", (c) => c.authToken, { kind: "jwt", pubKeyFile: "a.pub", privKeyFile: "a.key", signMethod: "RS256", ttlMs: 600_000 }],
  ["bcrypt-cost", "4", (c) => c.bcryptCost, 4],
  ["auth-token-ttl", "60", (c) => c.authTokenTtlSeconds, 60],
  ["metrics", "extensive", (c) => c.metrics, "extensive"],
  ["listen-metrics-urls", "http://127.0.0.1:2381", (c) => urlTexts(c.listenMetricsUrls), ["http://127.0.0.1:2381"]],
  ["enable-grpc-gateway", "false", (c) => c.enableGrpcGateway, false],
  ["enable-v2", "true", (c) => c.enableV2, true],
  ["logger", "capnslog", (c) => [c.logger, c.warnings.some((w) => w.includes("capnslog"))], ["zap", true]],
  ["log-outputs", "stderr,/var/log/tskv.log", (c) => c.logOutputs, ["stderr", "/var/log/tskv.log"]],
  ["log-outputs", "systemd/journal", (c) => c.logOutputs, ["systemd/journal"]],
  ["log-level", "warn", (c) => c.logLevel, "warn"],
  ["log-format", "json", (c) => c.logFormat, "json"],
  ["log-format", "console", (c) => c.logFormat, "console"],
  ["debug", "true", (c) => c.logLevel, "debug"],
  ["feature-gates", "InitialCorruptCheck=true,LeaseCheckpoint=true,TxnModeWriteWithSharedBuffer=false", (c) => [c.features.initialCorruptCheck, c.features.leaseCheckpoint, c.features.txnModeWriteWithSharedBuffer], [true, true, false]],
  ["experimental-initial-corrupt-check", "true", (c) => c.features.initialCorruptCheck, true],
  ["corrupt-check-time", "5m", (c) => c.corruptCheckTimeMs, 300_000],
  ["experimental-compact-hash-check-enabled", "true", (c) => c.features.compactHashCheck, true],
  ["compact-hash-check-time", "2m", (c) => c.compactHashCheckTimeMs, 120_000],
  ["experimental-enable-lease-checkpoint", "true", (c) => c.features.leaseCheckpoint, true],
  ["experimental-enable-lease-checkpoint-persist", "true", (c) => c.features.leaseCheckpointPersist, true],
  ["experimental-stop-grpc-service-on-defrag", "true", (c) => c.features.stopGrpcServiceOnDefrag, true],
  ["compaction-batch-limit", "50", (c) => c.compactionBatchLimit, 50],
  ["compaction-sleep-interval", "1ms", (c) => c.compactionSleepIntervalMs, 1],
  ["watch-progress-notify-interval", "5s", (c) => c.watchProgressNotifyIntervalMs, 5000],
  ["warning-apply-duration", "200ms", (c) => c.warningApplyDurationMs, 200],
  ["warning-unary-request-duration", "1s", (c) => c.warningUnaryRequestDurationMs, 1000],
  ["force-new-cluster", "true", (c) => c.forceNewCluster, true],
  ["unsafe-no-fsync", "true", (c) => c.unsafeNoFsync, true],
]

/** Flags that need companions to be valid on their own. */
const companions: Record<string, string[]> = {
  "listen-client-urls": ["--advertise-client-urls=http://127.0.0.1:2379"],
  "cert-file": ["--key-file=k"],
  "key-file": ["--cert-file=c"],
  "client-cert-file": ["--client-key-file=k"],
  "client-key-file": ["--client-cert-file=c"],
  "peer-cert-file": ["--peer-key-file=k"],
  "peer-key-file": ["--peer-cert-file=c"],
  "peer-client-cert-file": ["--peer-client-cert-file=c"],
  "peer-client-key-file": ["--peer-client-cert-file=c"],
  "heartbeat-interval": [],
}
companions["peer-client-cert-file"] = ["--peer-client-key-file=k"]

const noEffectFlags = flagSpecs.filter((s) => s.noEffect !== undefined).map((s) => s.name)
const unsupportedFlags = flagSpecs.filter((s) => s.unsupported === true).map((s) => s.name)

describe("parseConfig() every flag", () => {
  test("every flag has a row, or is refused (unsupported), or is reported as having no effect", () => {
    const covered = new Set([...rows.map((r) => r[0]), ...noEffectFlags, ...unsupportedFlags, "listen-client-urls"])
    const missing = flagSpecs.map((s) => s.name).filter((n) => !covered.has(n))
    expect(missing).toEqual([])
  })

  for (const [flag, text, get, expected] of rows) {
    const extra = companions[flag] ?? []
    test(`--${flag}=${text} from argv (both forms), ETCD_*, TSKV_* and YAML gives the same Config`, () => {
      const fromEquals = config(parseConfig([`--${flag}=${text}`, ...extra], {}))
      expect(get(fromEquals)).toEqual(expected)
      expect(fromEquals.explicitFlags).toContain(flag)
      const spec = flagSpecs.find((s) => s.name === flag)
      if (spec?.kind !== "bool") expect(get(config(parseConfig([`--${flag}`, text, ...extra], {})))).toEqual(expected)
      else expect(get(config(parseConfig([`-${flag}=${text}`, ...extra], {})))).toEqual(expected)
      const envExtra: Env = Object.fromEntries(
        extra.map((arg) => {
          const [name = "", value = ""] = arg.replace(/^--/, "").split("=")
          return [`ETCD_${envSuffix(name)}`, value]
        }),
      )
      const fromEnv = config(parseConfig([], { [`ETCD_${envSuffix(flag)}`]: text, ...envExtra }))
      expect(get(fromEnv)).toEqual(expected)
      expect(fromEnv.envUsed).toContain(`ETCD_${envSuffix(flag)}=${text}`)
      expect(get(config(parseConfig([], { [`TSKV_${envSuffix(flag)}`]: text, ...envExtra })))).toEqual(expected)
      const yamlLines = [`${flag}: ${JSON.stringify(text)}`, ...extra.map((arg) => arg.replace(/^--/, "").replace("=", ": "))]
      const fromFile = config(parseConfig(["--config-file=/etc/tskv.yaml"], {}, { readFile: () => yamlLines.join("\n") }))
      expect(get(fromFile)).toEqual(expected)
    })
  }

  test("--listen-client-urls with --advertise-client-urls", () => {
    const c = config(parseConfig(["--listen-client-urls", "http://127.0.0.1:2379,http://[::1]:2379", "--advertise-client-urls", "http://127.0.0.1:2379"], {}))
    expect(c.listenClientUrls.map((u) => [u.text, u.host, u.port])).toEqual([
      ["http://127.0.0.1:2379", "127.0.0.1", 2379],
      ["http://[::1]:2379", "::1", 2379],
    ])
  })

  for (const flag of noEffectFlags) {
    test(`--${flag} is accepted and warns that it has no effect`, () => {
      const spec = flagSpecs.find((s) => s.name === flag)
      const c = config(parseConfig([`--${flag}=${spec?.values?.[0] ?? "false"}`], {}))
      expect(c.warnings.some((w) => w.startsWith(`--${flag} has no effect`))).toBe(true)
    })
  }

  for (const flag of unsupportedFlags) {
    const spec = flagSpecs.find((s) => s.name === flag)
    if (spec === undefined) continue
    const other = spec.kind === "bool" ? (spec.default === "true" ? "false" : "true") : spec.kind === "enum" ? (spec.values ?? []).find((v) => v !== spec.default) : spec.kind === "uint" || spec.kind === "duration" ? "7" + (spec.kind === "duration" ? "s" : "") : spec.kind === "urls" ? "http://127.0.0.1:1" : "x"
    test(`--${flag} is refused as not supported yet unless it has its default`, () => {
      expect(errorOf(parseConfig([`--${flag}=${other}`], {}))).toBe(`--${flag} is not supported yet`)
      if (spec.default !== "") config(parseConfig([`--${flag}=${spec.default}`], {}))
    })
  }
})

describe("parseConfig() defaults and derived values", () => {
  test("no flags gives etcd's defaults", () => {
    const c = config(parseConfig([], {}))
    expect(c.name).toBe("default")
    expect(c.dataDir).toBe("default.etcd")
    expect([c.heartbeatMs, c.electionMs, c.electionTicks, c.heartbeatTicks]).toEqual([100, 1000, 10, 1])
    expect(c.snapshotCount).toBe(100000)
    expect(urlTexts(c.listenClientUrls)).toEqual(["http://localhost:2379"])
    expect(urlTexts(c.listenPeerUrls)).toEqual(["http://localhost:2380"])
    expect(urlTexts(c.advertiseClientUrls)).toEqual(["http://localhost:2379"])
    expect(c.initialCluster.map((m) => [m.name, urlTexts(m.peerUrls)])).toEqual([["default", ["http://localhost:2380"]]])
    expect(c.initialClusterToken).toBe("etcd-cluster")
    expect(c.quotaBackendBytes).toBe(2 * 1024 ** 3)
    expect([c.backendBatchIntervalMs, c.backendBatchLimit]).toEqual([1000, 100_000])
    expect([c.maxTxnOps, c.maxRequestBytes, c.maxConcurrentStreams]).toEqual([128, 1572864, 4294967295])
    expect([c.grpcKeepaliveMinTimeMs, c.grpcKeepaliveIntervalMs, c.grpcKeepaliveTimeoutMs]).toEqual([5000, 7_200_000, 20000])
    expect(c.autoCompaction).toEqual({ mode: "periodic", retentionMs: 0 })
    expect(c.watchProgressNotifyIntervalMs).toBe(600_000)
    expect(c.authToken).toEqual({ kind: "simple" })
    expect([c.bcryptCost, c.authTokenTtlSeconds]).toEqual([10, 300])
    expect(c.features.initialCorruptCheck).toBe(false)
    expect(c.tlsMinVersion).toBe("TLSv1.2")
    expect(c.warnings).toEqual([])
  })

  test("--name derives the data dir and the initial cluster, as etcd", () => {
    const c = config(parseConfig(["--name", "foo", "--initial-advertise-peer-urls", "http://127.0.0.1:23800"], {}))
    expect(c.dataDir).toBe("foo.etcd")
    expect(c.initialCluster.map((m) => [m.name, urlTexts(m.peerUrls)])).toEqual([["foo", ["http://127.0.0.1:23800"]]])
  })

  test("the Config is deeply frozen", () => {
    const c = config(parseConfig([], {}))
    expect(Object.isFrozen(c)).toBe(true)
    expect(Object.isFrozen(c.client)).toBe(true)
    expect(Object.isFrozen(c.listenClientUrls)).toBe(true)
    expect(Object.isFrozen(c.listenClientUrls[0])).toBe(true)
  })

  test("quota: negative disables the quota, as etcd", () => {
    expect(config(parseConfig(["--quota-backend-bytes=-1"], {})).quotaBackendBytes).toBe(Number.POSITIVE_INFINITY)
  })

  test("auto compaction: periodic takes a duration, revision a count", () => {
    expect(config(parseConfig(["--auto-compaction-retention=30m"], {})).autoCompaction).toEqual({ mode: "periodic", retentionMs: 1_800_000 })
    expect(config(parseConfig(["--auto-compaction-mode=revision", "--auto-compaction-retention=1000"], {})).autoCompaction).toEqual({
      mode: "revision",
      retentionRevisions: 1000,
    })
  })

  test("--experimental-* spellings are aliases of the 3.6 names; both together are refused", () => {
    expect(config(parseConfig(["--experimental-watch-progress-notify-interval=5s"], {})).watchProgressNotifyIntervalMs).toBe(5000)
    expect(config(parseConfig([], { ETCD_EXPERIMENTAL_WATCH_PROGRESS_NOTIFY_INTERVAL: "7s" })).watchProgressNotifyIntervalMs).toBe(7000)
    expect(errorOf(parseConfig(["--experimental-watch-progress-notify-interval=5s", "--watch-progress-notify-interval=6s"], {}))).toBe(
      "cannot set --experimental-watch-progress-notify-interval and --watch-progress-notify-interval at the same time, please use --watch-progress-notify-interval only",
    )
  })

  test("a flag given twice: the last one wins (Go's flag package)", () => {
    expect(config(parseConfig(["--name=a", "--name=b"], {})).name).toBe("b")
  })
})

describe("parseConfig() real command lines", () => {
  test("kubeadm's etcd static pod", () => {
    const c = config(
      parseConfig(
        [
          "--advertise-client-urls=https://10.0.0.1:2379",
          "--cert-file=/etc/kubernetes/pki/etcd/server.crt",
          "--client-cert-auth=true",
          "--data-dir=/var/lib/etcd",
          "--experimental-initial-corrupt-check=true",
          "--experimental-watch-progress-notify-interval=5s",
          "--initial-advertise-peer-urls=https://10.0.0.1:2380",
          "--initial-cluster=cp1=https://10.0.0.1:2380",
          "--key-file=/etc/kubernetes/pki/etcd/server.key",
          "--listen-client-urls=https://127.0.0.1:2379,https://10.0.0.1:2379",
          "--listen-metrics-urls=http://127.0.0.1:2381",
          "--listen-peer-urls=https://10.0.0.1:2380",
          "--name=cp1",
          "--peer-cert-file=/etc/kubernetes/pki/etcd/peer.crt",
          "--peer-client-cert-auth=true",
          "--peer-key-file=/etc/kubernetes/pki/etcd/peer.key",
          "--peer-trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt",
          "--snapshot-count=10000",
          "--trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt",
        ],
        {},
      ),
    )
    expect(c.features.initialCorruptCheck).toBe(true)
    expect(c.watchProgressNotifyIntervalMs).toBe(5000)
    expect(c.client).toMatchObject({ clientCertAuth: true, trustedCaFile: "/etc/kubernetes/pki/etcd/ca.crt" })
    expect(c.peer).toMatchObject({ clientCertAuth: true, certFile: "/etc/kubernetes/pki/etcd/peer.crt" })
    expect(urlTexts(c.listenMetricsUrls)).toEqual(["http://127.0.0.1:2381"])
    const modern = config(
      parseConfig(
        ["--name=cp1", "--feature-gates=InitialCorruptCheck=true", "--watch-progress-notify-interval=5s", "--initial-cluster-state=existing"],
        {},
      ),
    )
    expect(modern.features.initialCorruptCheck).toBe(true)
    expect(modern.initialClusterState).toBe("existing")
  })

  test("the classic systemd unit (space-separated values, ETCD_ variables)", () => {
    const c = config(
      parseConfig(
        [
          "--name", "infra0",
          "--cert-file", "/etc/etcd/kubernetes.pem",
          "--key-file", "/etc/etcd/kubernetes-key.pem",
          "--peer-cert-file", "/etc/etcd/kubernetes.pem",
          "--peer-key-file", "/etc/etcd/kubernetes-key.pem",
          "--trusted-ca-file", "/etc/etcd/ca.pem",
          "--peer-trusted-ca-file", "/etc/etcd/ca.pem",
          "--peer-client-cert-auth",
          "--client-cert-auth",
          "--initial-advertise-peer-urls", "https://10.240.0.10:2380",
          "--listen-peer-urls", "https://10.240.0.10:2380",
          "--listen-client-urls", "https://10.240.0.10:2379,https://127.0.0.1:2379",
          "--advertise-client-urls", "https://10.240.0.10:2379",
          "--initial-cluster-token", "etcd-cluster-0",
          "--initial-cluster", "infra0=https://10.240.0.10:2380,infra1=https://10.240.0.11:2380,infra2=https://10.240.0.12:2380",
          "--initial-cluster-state", "new",
          "--data-dir=/var/lib/etcd",
        ],
        { ETCD_HEARTBEAT_INTERVAL: "200", ETCD_ELECTION_TIMEOUT: "2000" },
      ),
    )
    expect(c.initialCluster.map((m) => m.name)).toEqual(["infra0", "infra1", "infra2"])
    expect([c.client.clientCertAuth, c.peer.clientCertAuth]).toEqual([true, true])
    expect([c.heartbeatMs, c.electionMs, c.electionTicks]).toEqual([200, 2000, 10])
  })
})

describe("parseConfig() environment", () => {
  test("a variable for a flag also on the command line is etcd's conflict error", () => {
    expect(errorOf(parseConfig(["--name", "y"], { ETCD_NAME: "x" }))).toBe(
      'conflicting environment variable "ETCD_NAME" is shadowed by corresponding command-line flag (either unset environment variable or disable flag)',
    )
    expect(errorOf(parseConfig(["--name", "y"], { TSKV_NAME: "x" }))).toContain('"TSKV_NAME" is shadowed')
  })

  test("ETCD_X and TSKV_X: equal values are fine, different values are an error naming both", () => {
    expect(config(parseConfig([], { ETCD_NAME: "a", TSKV_NAME: "a" })).name).toBe("a")
    expect(errorOf(parseConfig([], { ETCD_NAME: "a", TSKV_NAME: "b" }))).toBe(
      'conflicting environment variables "ETCD_NAME" and "TSKV_NAME" have different values (unset one of them)',
    )
  })

  test("empty variables are unset; unknown ETCD_/TSKV_ variables are warned about", () => {
    const c = config(parseConfig([], { ETCD_NAME: "", ETCD_FOO: "1", TSKV_BAR: "2", TSKV_SEED: "3", ETCDCTL_API: "3", PATH: "/bin" }))
    expect(c.name).toBe("default")
    expect(c.warnings).toEqual(["unrecognized environment variable ETCD_FOO=1", "unrecognized environment variable TSKV_BAR=2"])
  })

  test("a bad value from a variable names the variable", () => {
    expect(errorOf(parseConfig([], { ETCD_SNAPSHOT_COUNT: "abc" }))).toBe(
      'invalid value "abc" for ETCD_SNAPSHOT_COUNT: expected a non-negative integer',
    )
  })
})

describe("parseConfig() YAML config file", () => {
  const sample = `
name: node1
data-dir: /var/lib/etcd
wal-dir:
snapshot-count: 10000
heartbeat-interval: 100
election-timeout: 1000
listen-client-urls: https://10.0.0.1:2379,https://127.0.0.1:2379
advertise-client-urls: https://10.0.0.1:2379
listen-peer-urls: https://10.0.0.1:2380
initial-advertise-peer-urls: https://10.0.0.1:2380
initial-cluster: node1=https://10.0.0.1:2380,node2=https://10.0.0.2:2380
initial-cluster-token: 'tok'
initial-cluster-state: 'new'
strict-reconfig-check: false
log-outputs: [stderr]
auto-compaction-mode: periodic
auto-compaction-retention: "1"
backend-batch-interval: 20000000
experimental-watch-progress-notify-interval: 5s
cipher-suites: [
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
]
tls-min-version: 'TLS1.2'
tls-max-version: 'TLS1.3'
client-transport-security:
  cert-file: server.crt
  key-file: server.key
  client-cert-auth: true
  trusted-ca-file: ca.crt
  auto-tls: false
peer-transport-security: {cert-file: peer.crt, key-file: peer.key, client-cert-auth: true, trusted-ca-file: ca.crt, allowed-cn: [etcd-peer]}
`
  const read = (text: string) => ({ readFile: (path: string) => (path === "/etc/tskv.yaml" ? text : "") })

  test("etcd's format, nested TLS blocks, durations as nanoseconds", () => {
    const c = config(parseConfig(["--config-file", "/etc/tskv.yaml"], {}, read(sample)))
    expect(c.configFile).toBe("/etc/tskv.yaml")
    expect(c.name).toBe("node1")
    expect(c.strictReconfigCheck).toBe(false)
    expect(c.walDir).toBe("")
    expect(c.logOutputs).toEqual(["stderr"])
    expect(c.autoCompaction).toEqual({ mode: "periodic", retentionMs: 3_600_000 })
    expect(c.backendBatchIntervalMs).toBe(20)
    expect(c.watchProgressNotifyIntervalMs).toBe(5000)
    expect(c.cipherSuites).toHaveLength(2)
    expect([c.tlsMinVersion, c.tlsMaxVersion]).toEqual(["TLSv1.2", "TLSv1.3"])
    expect(c.client).toMatchObject({ certFile: "server.crt", keyFile: "server.key", clientCertAuth: true, trustedCaFile: "ca.crt", autoTls: false })
    expect(c.peer).toMatchObject({ certFile: "peer.crt", keyFile: "peer.key", clientCertAuth: true, trustedCaFile: "ca.crt", allowedCn: ["etcd-peer"] })
    expect(c.initialCluster.map((m) => m.name)).toEqual(["node1", "node2"])
  })

  test("the file overrides flags and variables, with a warning naming what was ignored", () => {
    const c = config(parseConfig(["--config-file=/etc/tskv.yaml", "--name=other"], { ETCD_SNAPSHOT_COUNT: "5" }, read("name: fromfile\n")))
    expect(c.name).toBe("fromfile")
    expect(c.snapshotCount).toBe(100000)
    expect(c.warnings[0]).toContain("other configuration command line flags and environment variables will be ignored")
    expect(c.warnings[0]).toContain("--name")
    expect(c.warnings[0]).toContain("ETCD_SNAPSHOT_COUNT")
  })

  test("YAML 1.1 booleans (yes/no/on/off) work for boolean flags, as in etcd's parser", () => {
    const c = config(parseConfig(["--config-file=/etc/tskv.yaml"], {}, read("strict-reconfig-check: off\npre-vote: No\nclient-transport-security:\n  client-cert-auth: yes\n")))
    expect([c.strictReconfigCheck, c.preVote, c.client.clientCertAuth]).toEqual([false, false, true])
    expect(config(parseConfig(["--config-file=/etc/tskv.yaml"], {}, read("proxy: off\n"))).name).toBe("default")
  })

  test("ETCD_CONFIG_FILE and TSKV_CONFIG_FILE name the file", () => {
    expect(config(parseConfig([], { ETCD_CONFIG_FILE: "/etc/tskv.yaml" }, read("name: e\n"))).name).toBe("e")
    expect(config(parseConfig([], { TSKV_CONFIG_FILE: "/etc/tskv.yaml" }, read("name: t\n"))).name).toBe("t")
  })

  test("unknown keys, wrong shapes, bad values and unreadable files are errors", () => {
    expect(errorOf(parseConfig(["--config-file=/etc/tskv.yaml"], {}, read("nme: x\n")))).toBe('unknown key "nme" in config file /etc/tskv.yaml')
    expect(errorOf(parseConfig(["--config-file=/etc/tskv.yaml"], {}, read("client-transport-security:\n  cert: x\n")))).toBe(
      'unknown key "client-transport-security.cert" in config file /etc/tskv.yaml',
    )
    expect(errorOf(parseConfig(["--config-file=/etc/tskv.yaml"], {}, read("snapshot-count: lots\n")))).toBe(
      'invalid value "lots" for "snapshot-count" in config file /etc/tskv.yaml: expected a non-negative integer',
    )
    expect(errorOf(parseConfig(["--config-file=/etc/tskv.yaml"], {}, read("name: [a, b]\n")))).toContain('invalid value for "name"')
    const missing = parseConfig(["--config-file=/nope.yaml"], {}, { readFile: () => { throw new Error("ENOENT") } })
    expect(errorOf(missing)).toBe("cannot read config file /nope.yaml: ENOENT")
  })

  test("every key of the nested TLS blocks maps onto a flag", () => {
    for (const [block, keys] of Object.entries(yamlSecurityKeys)) {
      for (const flag of Object.values(keys)) expect(flagSpecs.some((s) => s.name === flag)).toBe(true)
      expect(Object.keys(keys)).toContain("cert-file")
      expect(block).toMatch(/transport-security$/)
    }
  })
})

describe("parseConfig() bad input", () => {
  const cases: [argv: string[], message: string][] = [
    [["--foo"], "flag provided but not defined: --foo"],
    [["-foo=1"], "flag provided but not defined: --foo"],
    [["--name"], "flag needs an argument: --name"],
    [["--client-cert-auth", "true"], "'true' is not a valid flag"],
    [["serve"], "'serve' is not a valid flag"],
    [["--snapshot-count=abc"], 'invalid value "abc" for flag --snapshot-count: expected a non-negative integer'],
    [["--snapshot-count=-1"], 'invalid value "-1" for flag --snapshot-count: expected a non-negative integer'],
    [["--client-cert-auth=maybe"], 'invalid value "maybe" for flag --client-cert-auth: expected true or false'],
    [["--grpc-keepalive-min-time=5"], 'invalid value "5" for flag --grpc-keepalive-min-time: expected a duration such as "300ms", "5s", "1h30m"'],
    [["--initial-cluster-state=bogus"], 'invalid value "bogus" for flag --initial-cluster-state: expected one of new, existing'],
    [["--auto-compaction-mode=x"], 'invalid value "x" for flag --auto-compaction-mode: expected one of periodic, revision'],
    [["--listen-peer-urls=foo:bar"], 'invalid value "foo:bar" for flag --listen-peer-urls: URL scheme must be http or https: foo:bar'],
    [["--listen-peer-urls=ftp://a:1"], 'invalid value "ftp://a:1" for flag --listen-peer-urls: URL scheme must be http or https: ftp://a:1'],
    [["--listen-peer-urls=http://10.0.0.1"], 'invalid value "http://10.0.0.1" for flag --listen-peer-urls: URL address does not have the form "host:port": http://10.0.0.1'],
    [["--listen-peer-urls=http://10.0.0.1:2380/x"], 'invalid value "http://10.0.0.1:2380/x" for flag --listen-peer-urls: URL must not contain a path: http://10.0.0.1:2380/x'],
    [["--cors=http://a.example"], 'invalid value "http://a.example" for flag --cors: URL address does not have the form "host:port": http://a.example'],
    [["--cors=http://a.example:80,*"], 'invalid value "http://a.example:80,*" for flag --cors: URL scheme must be http or https: *'],
    [["--cors=http://a.example:80/app"], 'invalid value "http://a.example:80/app" for flag --cors: URL must not contain a path: http://a.example:80/app'],
    [["--listen-peer-urls=unix://a:1"], 'invalid value "unix://a:1" for flag --listen-peer-urls: unix socket URLs are not supported yet: unix://a:1'],
    [["--heartbeat-interval=300"], "--election-timeout[1000ms] should be at least as 5 times as --heartbeat-interval[300ms]"],
    [["--election-timeout=60000"], "--election-timeout[60000ms] is too long, and should be set less than 50000ms"],
    [["--heartbeat-interval=0"], "--heartbeat-interval must be >0 (set to 0ms)"],
    [["--listen-client-urls=http://127.0.0.1:2379"], "--advertise-client-urls is required when --listen-client-urls is set explicitly"],
    [["--initial-cluster=a"], 'invalid value "a" for flag --initial-cluster: expected name=URL pairs separated by commas, e.g. "a=http://10.0.0.1:2380,b=http://10.0.0.2:2380"'],
    [["--initial-cluster=a=10.0.0.1:2380"], 'invalid value "a=10.0.0.1:2380" for flag --initial-cluster: URL scheme must be http or https: 10.0.0.1:2380'],
    [["--bcrypt-cost=3"], 'invalid value "3" for flag --bcrypt-cost: expected an integer between 4 and 31'],
    [["--auth-token=jwt,sign-method=RS256"], 'invalid value "jwt,sign-method=RS256" for flag --auth-token: pub-key=<file> is required'],
    [["--auth-token=jwt,pub-key=a,sign-method=XX"], 'invalid value "jwt,pub-key=a,sign-method=XX" for flag --auth-token: sign-method must be one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA'],
    [["--auth-token=magic"], 'invalid value "magic" for flag --auth-token: expected simple, signed[,ttl=<duration>] or jwt,pub-key=<file>,priv-key=<file>,sign-method=<method>[,ttl=<duration>]'],
    [["--auth-token=signed,ttl=soon"], 'invalid value "signed,ttl=soon" for flag --auth-token: ttl must be a positive duration such as 5m, got "soon"'],
    [["--auth-token=signed,size=1"], 'invalid value "signed,size=1" for flag --auth-token: unknown signed option "size"'],
    [["--feature-gates=Bogus=true"], 'invalid value "Bogus=true" for flag --feature-gates: unrecognized feature gate: Bogus'],
    [["--feature-gates=InitialCorruptCheck=yes"], 'invalid value "InitialCorruptCheck=yes" for flag --feature-gates: expected InitialCorruptCheck=true or InitialCorruptCheck=false'],
    [["--feature-gates=SetMemberLocalAddr=true"], "--feature-gates=SetMemberLocalAddr=true is not supported yet"],
    [["--experimental-max-learners=2", "--max-learners=3"], "cannot set --experimental-max-learners and --max-learners at the same time, please use --max-learners only"],
    [["--feature-gates=InitialCorruptCheck=true", "--experimental-initial-corrupt-check"], "cannot specify both --experimental-initial-corrupt-check and --feature-gates=InitialCorruptCheck"],
    [["--cipher-suites=TLS_FOO"], 'invalid value "TLS_FOO" for flag --cipher-suites: unexpected TLS cipher suite TLS_FOO'],
    [["--cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "--tls-min-version=TLS1.3"], "--cipher-suites cannot be used with TLS1.3 only (--tls-min-version=TLS1.3)"],
    [["--tls-min-version=TLS1.3", "--tls-max-version=TLS1.2"], "--tls-min-version must be lower than or equal to --tls-max-version"],
    [["--tls-min-version=TLS1.0"], 'invalid value "TLS1.0" for flag --tls-min-version: expected one of TLS1.2, TLS1.3'],
    [["--cert-file=a"], "--cert-file and --key-file must be given together"],
    [["--listen-client-urls=https://127.0.0.1:2379", "--advertise-client-urls=https://127.0.0.1:2379"], "--cert-file and --key-file (or --auto-tls) must be given for the https URL https://127.0.0.1:2379 in --listen-client-urls"],
    [["--listen-peer-urls=https://127.0.0.1:2380"], "--peer-cert-file and --peer-key-file (or --peer-auto-tls) must be given for the https URL https://127.0.0.1:2380 in --listen-peer-urls"],
    [["--log-outputs=systemd/journal,stderr"], `running with systemd/journal but other '--log-outputs' values (["stderr" "systemd/journal"]) are configured with 'default'; override 'default' value with something else`],
    [["--max-request-bytes=99999999999"], 'invalid value "99999999999" for flag --max-request-bytes: expected an integer between 0 and 4294967295'],
  ]
  for (const [argv, message] of cases) {
    test(`${argv.join(" ")} -> ${message}`, () => {
      expect(errorOf(parseConfig(argv, {}))).toBe(message)
    })
  }
})

describe("help and version", () => {
  test("--help, -h and -help give the grouped help text", () => {
    for (const arg of ["--help", "-h", "-help"]) {
      const result = parseConfig([arg], {})
      expect(result.kind).toBe("help")
    }
    const text = helpText()
    for (const group of ["Member:", "Clustering:", "Security:", "Auth:", "Logging:", "Features:"]) expect(text).toContain(group)
    for (const spec of flagSpecs) if (spec.hidden !== true) expect(text).toMatch(new RegExp(`  --${spec.name}[ ,]`))
    expect(text).toContain("--max-concurrent-streams 'math.MaxUint32'")
    expect(text).toContain("--experimental-enable-v2v3 '' (not supported yet)")
    expect(text).toContain("--watch-progress-notify-interval, --experimental-watch-progress-notify-interval '10m'")
  })

  test("--version gives tskv's, the etcd API's and Bun's versions", () => {
    const result = parseConfig(["--version"], {})
    expect(result.kind).toBe("version")
    const text = versionText()
    expect(text).toMatch(/^tskv Version: \d+\.\d+\.\d+\n/)
    expect(text).toContain("etcd API Version: 3.5.")
    expect(text).toContain(`Bun Version: ${Bun.version}`)
  })
})

describe("parseConfig() options", () => {
  test("notBuilt refuses more flags as not supported yet, unless given their default", () => {
    expect(errorOf(parseConfig(["--force-new-cluster"], {}, { notBuilt: ["force-new-cluster"] }))).toBe("--force-new-cluster is not supported yet")
    expect(config(parseConfig(["--force-new-cluster=false"], {}, { notBuilt: ["force-new-cluster"] })).forceNewCluster).toBe(false)
    const help = parseConfig(["--help"], {}, { notBuilt: ["force-new-cluster"] })
    expect(help.kind === "help" && help.text.includes("--force-new-cluster 'false' (not supported yet)")).toBe(true)
    expect(() => parseConfig([], {}, { notBuilt: ["no-such-flag"] })).toThrow("notBuilt names an unknown flag no-such-flag")
  })
})

test("parseConfig() reads etcd's own etcd.conf.yml.sample; its enable-pprof: true is refused as not supported yet", () => {
  const sample = `# This is the configuration file for the etcd server.
name: 'default'
data-dir:
wal-dir:
snapshot-count: 10000
heartbeat-interval: 100
election-timeout: 1000
quota-backend-bytes: 0
listen-peer-urls: http://localhost:2380
listen-client-urls: http://localhost:2379
max-snapshots: 5
max-wals: 5
cors:
initial-advertise-peer-urls: http://localhost:2380
advertise-client-urls: http://localhost:2379
discovery:
discovery-fallback: 'proxy'
discovery-proxy:
discovery-srv:
initial-cluster:
initial-cluster-token: 'etcd-cluster'
initial-cluster-state: 'new'
strict-reconfig-check: false
enable-pprof: true
proxy: 'off'
proxy-failure-wait: 5000
proxy-refresh-interval: 30000
proxy-dial-timeout: 1000
proxy-write-timeout: 5000
proxy-read-timeout: 0
client-transport-security:
  cert-file:
  key-file:
  client-cert-auth: false
  trusted-ca-file:
  auto-tls: false
peer-transport-security:
  cert-file:
  key-file:
  client-cert-auth: false
  trusted-ca-file:
  auto-tls: false
self-signed-cert-validity: 1
log-level: debug
logger: zap
log-outputs: [stderr]
force-new-cluster: false
auto-compaction-mode: periodic
auto-compaction-retention: "1"
cipher-suites: [
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
]
tls-min-version: 'TLS1.2'
tls-max-version: 'TLS1.3'
`
  const read = (text: string) => ({ readFile: () => text })
  expect(errorOf(parseConfig(["--config-file=etcd.conf.yml"], {}, read(sample)))).toBe("--enable-pprof is not supported yet")
  const c = config(parseConfig(["--config-file=etcd.conf.yml"], {}, read(sample.replace("enable-pprof: true", "enable-pprof: false"))))
  expect(c.dataDir).toBe("default.etcd")
  expect(c.snapshotCount).toBe(10000)
  expect(c.logLevel).toBe("debug")
  expect(c.cors).toEqual(["*"])
  expect(c.autoCompaction).toEqual({ mode: "periodic", retentionMs: 3_600_000 })
  expect(c.initialCluster.map((m) => m.name)).toEqual(["default"])
})

test("flagTableMarkdown() lists every visible flag once, with its variable and status", () => {
  const table = flagTableMarkdown()
  for (const spec of flagSpecs) {
    if (spec.hidden === true) continue
    expect(table).toContain(`\`--${spec.name}\``)
  }
  expect(table).toContain("| `--experimental-enable-v2v3` | `''` | `ETCD_EXPERIMENTAL_ENABLE_V2V3` | not supported yet |")
  expect(table).toContain("`--watch-progress-notify-interval`, `--experimental-watch-progress-notify-interval` | `10m` | `ETCD_WATCH_PROGRESS_NOTIFY_INTERVAL` |")
})

test("parseConfig() takes --auth-token=signed with an optional ttl (tskv's failover-safe tokens)", () => {
  for (const [text, expected] of [
    ["signed", { kind: "signed" }],
    ["signed,ttl=10m", { kind: "signed", ttlMs: 600_000 }],
  ] as const) {
    const r = parseConfig([`--auth-token=${text}`], {})
    expect(r.kind === "config" ? r.config.authToken : r).toEqual(expected)
  }
})
