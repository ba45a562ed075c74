// The member's configuration as the rest of tskv sees it: typed, with units in
// the names (ms, bytes, seconds), defaults applied, derived values computed, and
// frozen. Produced only by parseConfig() (parse.ts) through the zod schema in
// schema.ts.

import type { EtcdUrl } from "./values"

export type { EtcdUrl } from "./values"

export interface TransportSecurity {
  /** Server certificate and key ("" = none). */
  readonly certFile: string
  readonly keyFile: string
  /** Certificate and key presented when tskv is the client (default: certFile/keyFile). */
  readonly clientCertFile: string
  readonly clientKeyFile: string
  readonly trustedCaFile: string
  /** Require and verify client certificates. */
  readonly clientCertAuth: boolean
  readonly crlFile: string
  /** Generate a self-signed certificate into <data-dir>/fixtures/{client,peer}. */
  readonly autoTls: boolean
  /** Accepted client certificate CNs (peer side only; empty = any). */
  readonly allowedCn: readonly string[]
  /** Accepted client certificate host names (empty = any). */
  readonly allowedHostname: readonly string[]
  readonly skipClientSanVerification: boolean
}

export interface ClusterMember {
  readonly name: string
  readonly peerUrls: readonly EtcdUrl[]
}

export type AutoCompaction =
  | { readonly mode: "periodic"; /** 0 = off */ readonly retentionMs: number }
  | { readonly mode: "revision"; /** 0 = off */ readonly retentionRevisions: number }

export type AuthTokenConfig =
  | { readonly kind: "simple" }
  /** tskv's signed tokens: verifiable on every member, also after restarts (ttl 0 = --auth-token-ttl). */
  | { readonly kind: "signed"; readonly ttlMs?: number }
  | {
      readonly kind: "jwt"
      readonly pubKeyFile: string
      /** "" = verify only (a member that cannot sign new tokens). */
      readonly privKeyFile: string
      readonly signMethod: string
      readonly ttlMs: number
    }

export interface FeatureConfig {
  readonly initialCorruptCheck: boolean
  readonly compactHashCheck: boolean
  readonly leaseCheckpoint: boolean
  readonly leaseCheckpointPersist: boolean
  readonly stopGrpcServiceOnDefrag: boolean
  readonly txnModeWriteWithSharedBuffer: boolean
  /** Always false: refused as not supported yet. */
  readonly setMemberLocalAddr: boolean
}

export interface Config {
  readonly name: string
  /** --data-dir, default "<name>.etcd" as etcd. */
  readonly dataDir: string
  /** "" = <dataDir>/tskv/wal (lib/data_dir.ts). */
  readonly walDir: string
  readonly snapshotCount: number
  readonly snapshotCatchupEntries: number
  readonly heartbeatMs: number
  readonly electionMs: number
  /** Raft counts ticks: one tick per heartbeat interval. */
  readonly heartbeatTicks: 1
  /** floor(election-timeout / heartbeat-interval), as etcd. */
  readonly electionTicks: number
  readonly initialElectionTickAdvance: boolean
  readonly maxSnapshots: number
  readonly maxWals: number
  /** 2 GiB when --quota-backend-bytes is 0; Infinity when negative (quota off, as etcd). */
  readonly quotaBackendBytes: number
  readonly backendBatchIntervalMs: number
  readonly backendBatchLimit: number
  readonly maxTxnOps: number
  readonly maxRequestBytes: number
  readonly maxConcurrentStreams: number
  readonly grpcKeepaliveMinTimeMs: number
  readonly grpcKeepaliveIntervalMs: number
  readonly grpcKeepaliveTimeoutMs: number
  readonly raftReadTimeoutMs: number
  readonly raftWriteTimeoutMs: number
  readonly maxLearners: number

  readonly listenPeerUrls: readonly EtcdUrl[]
  readonly listenClientUrls: readonly EtcdUrl[]
  readonly listenMetricsUrls: readonly EtcdUrl[]
  readonly initialAdvertisePeerUrls: readonly EtcdUrl[]
  readonly advertiseClientUrls: readonly EtcdUrl[]
  /** In the order given; a name given twice collects several URLs. */
  readonly initialCluster: readonly ClusterMember[]
  readonly initialClusterState: "new" | "existing"
  readonly initialClusterToken: string
  readonly strictReconfigCheck: boolean
  readonly preVote: boolean
  readonly autoCompaction: AutoCompaction

  readonly client: TransportSecurity
  readonly peer: TransportSecurity
  /** Go names as given (see certs/cipher_suites.ts for the OpenSSL string). */
  readonly cipherSuites: readonly string[]
  readonly tlsMinVersion: "TLSv1.2" | "TLSv1.3"
  /** node:tls spelling; "" = no maximum. */
  readonly tlsMaxVersion: "" | "TLSv1.2" | "TLSv1.3"
  readonly selfSignedCertValidityYears: number
  readonly cors: readonly string[]
  readonly hostWhitelist: readonly string[]

  readonly authToken: AuthTokenConfig
  readonly bcryptCost: number
  readonly authTokenTtlSeconds: number

  readonly metrics: "basic" | "extensive"
  readonly enableGrpcGateway: boolean
  /** Serve etcd's v2 API (/v2/keys, /v2/members, ...) on the client URLs. */
  readonly enableV2: boolean
  readonly logger: "zap"
  readonly logOutputs: readonly string[]
  readonly logFormat: "json" | "console"
  readonly logLevel: "debug" | "info" | "warn" | "error" | "panic" | "fatal"

  readonly features: FeatureConfig
  readonly corruptCheckTimeMs: number
  readonly compactHashCheckTimeMs: number
  readonly compactionBatchLimit: number
  readonly compactionSleepIntervalMs: number
  readonly watchProgressNotifyIntervalMs: number
  readonly warningApplyDurationMs: number
  readonly warningUnaryRequestDurationMs: number

  readonly forceNewCluster: boolean
  readonly unsafeNoFsync: boolean

  /** The YAML file the settings came from ("" = flags and environment). */
  readonly configFile: string
  /** Canonical names of the flags set explicitly (argv, env or file). */
  readonly explicitFlags: readonly string[]
  /** "ETCD_X=value" for each environment variable used, for the startup log. */
  readonly envUsed: readonly string[]
  /** Things main should log as warnings (ignored inputs, no-effect flags ...). */
  readonly warnings: readonly string[]
}

export interface ConfigError {
  readonly kind: "error"
  /** One line naming the flag (or variable, or file key) and the expected form. */
  readonly message: string
  /** 2, as Go's flag package exits on a usage error. */
  readonly exitCode: 2
}

export type ParseResult =
  | { readonly kind: "config"; readonly config: Config }
  | { readonly kind: "help"; readonly text: string }
  | { readonly kind: "version"; readonly text: string }
  | ConfigError

export function configError(message: string): ConfigError {
  return { kind: "error", message, exitCode: 2 }
}
