// The one zod schema: every flag's text value (defaults filled in) -> a typed,
// validated, frozen Config. Built from the flag table so a flag cannot be
// parsed in one place and forgotten in another.

import { z } from "zod"
import { cipherSuitesToOpenssl } from "../certs/cipher_suites"
import type { AuthTokenConfig, AutoCompaction, ClusterMember, Config, FeatureConfig, TransportSecurity } from "./config"
import { type FeatureGate, type FlagSpec, featureGates, flagSpecs } from "./flags"
import {
  type EtcdUrl,
  type Parsed,
  formatDuration,
  parseBool,
  parseDuration,
  parseInt64,
  parseNonNegativeDuration,
  parseUint,
  parseUrl,
  parseUrls,
  splitList,
} from "./values"

export const DEFAULT_BACKEND_BATCH_INTERVAL_MS = 1000
export const DEFAULT_BACKEND_BATCH_LIMIT = 100_000

export type FlagValue = string | boolean | number | null | readonly EtcdUrl[] | readonly string[]

/** Converts one flag's text by its kind. */
export function parseFlagValue(spec: FlagSpec, text: string): Parsed<FlagValue> {
  switch (spec.kind) {
    case "string":
      return { ok: true, value: text }
    case "bool":
      return parseBool(text)
    case "uint":
      return parseUint(text, spec.max)
    case "int":
      return parseInt64(text)
    case "duration":
      return text === "" ? { ok: true, value: null } : parseNonNegativeDuration(text)
    case "urls":
      return text === "" && spec.default === "" ? { ok: true, value: [] } : parseUrls(text)
    case "list":
      return { ok: true, value: splitList(text) }
    case "origins": {
      // etcd 3.4's --cors: "*", or a list of URLs checked as the listen URLs are (host:port, no path)
      if (text === "*") return { ok: true, value: ["*"] }
      const urls = parseUrls(text)
      return urls.ok ? { ok: true, value: urls.value.map((u) => u.text) } : urls
    }
    case "enum": {
      const values = spec.values ?? []
      if (values.includes(text)) return { ok: true, value: text }
      return { ok: false, expected: `expected one of ${values.filter((v) => v !== "").join(", ")}` }
    }
  }
}

function flagSchema(spec: FlagSpec) {
  return z.string().transform((text, ctx): FlagValue => {
    const parsed = parseFlagValue(spec, text)
    if (parsed.ok) return parsed.value
    ctx.addIssue({ code: "custom", message: parsed.expected })
    return z.NEVER
  })
}

const valuesShape = Object.fromEntries(flagSpecs.map((spec) => [spec.name, flagSchema(spec)]))

export interface SchemaInput {
  /** Every canonical flag name -> its text (default when not given). */
  readonly values: Readonly<Record<string, string>>
  readonly explicit: readonly string[]
  readonly configFile: string
  readonly envUsed: readonly string[]
  readonly warnings: readonly string[]
  /** Flags refused as "not supported yet" on top of the table's own list. */
  readonly notBuilt: readonly string[]
}

/** Issues from cross-flag checks carry params.plain: their message is complete. */
export const configSchema = z
  .object({
    values: z.object(valuesShape),
    explicit: z.array(z.string()),
    configFile: z.string(),
    envUsed: z.array(z.string()),
    warnings: z.array(z.string()),
    notBuilt: z.array(z.string()),
  })
  .transform((input, ctx): Config => {
    const fail = (flag: string, message: string): never => {
      ctx.addIssue({ code: "custom", message, path: ["values", flag], params: { plain: true } })
      throw new SchemaStop()
    }
    try {
      return deepFreeze(buildConfig({ ...input, values: input.values as Record<string, FlagValue> }, fail))
    } catch (e) {
      if (e instanceof SchemaStop) return z.NEVER
      throw e
    }
  })

class SchemaStop extends Error {}

type Fail = (flag: string, message: string) => never

const gib = 1024 * 1024 * 1024

interface BuildInput {
  readonly values: Record<string, FlagValue>
  readonly explicit: readonly string[]
  readonly configFile: string
  readonly envUsed: readonly string[]
  readonly warnings: readonly string[]
  readonly notBuilt: readonly string[]
}

function buildConfig(input: BuildInput, fail: Fail): Config {
  const values = input.values
  const explicit = new Set(input.explicit)
  const typed = <T>(name: string, type: "string" | "boolean" | "number"): T => {
    const value = values[name]
    if (typeof value !== type) throw new Error(`config: flag ${name} is not a ${type}`)
    return value as T
  }
  const str = (name: string): string => typed<string>(name, "string")
  const bool = (name: string): boolean => typed<boolean>(name, "boolean")
  const num = (name: string): number => typed<number>(name, "number")
  const urls = (name: string): readonly EtcdUrl[] => values[name] as readonly EtcdUrl[]
  const list = (name: string): readonly string[] => values[name] as readonly string[]
  const ms = (name: string, fallback: number): number => (values[name] === null ? fallback : num(name))
  const warnings = [...input.warnings]

  for (const spec of flagSpecs) {
    if (!explicit.has(spec.name)) continue
    if (spec.unsupported === true || input.notBuilt.includes(spec.name)) {
      const fallback = parseFlagValue(spec, spec.default)
      if (!fallback.ok || JSON.stringify(fallback.value) !== JSON.stringify(values[spec.name])) {
        fail(spec.name, `--${spec.name} is not supported yet`)
      }
    }
    if (spec.noEffect !== undefined) warnings.push(`--${spec.name} has no effect: ${spec.noEffect}`)
  }

  const name = str("name")
  const heartbeatMs = num("heartbeat-interval")
  const electionMs = num("election-timeout")
  if (heartbeatMs === 0) fail("heartbeat-interval", `--heartbeat-interval must be >0 (set to ${heartbeatMs}ms)`)
  if (electionMs === 0) fail("election-timeout", `--election-timeout must be >0 (set to ${electionMs}ms)`)
  if (5 * heartbeatMs > electionMs) {
    fail(
      "election-timeout",
      `--election-timeout[${electionMs}ms] should be at least as 5 times as --heartbeat-interval[${heartbeatMs}ms]`,
    )
  }
  if (electionMs > 50000) {
    fail("election-timeout", `--election-timeout[${electionMs}ms] is too long, and should be set less than 50000ms`)
  }

  if (explicit.has("listen-client-urls") && !explicit.has("advertise-client-urls")) {
    fail("advertise-client-urls", "--advertise-client-urls is required when --listen-client-urls is set explicitly")
  }

  const initialAdvertisePeerUrls = urls("initial-advertise-peer-urls")
  const initialCluster = explicit.has("initial-cluster")
    ? parseInitialCluster(str("initial-cluster"), fail)
    : [{ name, peerUrls: initialAdvertisePeerUrls }]

  const quota = num("quota-backend-bytes")
  const quotaBackendBytes = quota === 0 ? 2 * gib : quota < 0 ? Number.POSITIVE_INFINITY : quota
  if (quota > 8 * gib) warnings.push(`--quota-backend-bytes ${quota} exceeds the suggested maximum of 8 GiB`)

  const bcryptCost = num("bcrypt-cost")
  if (bcryptCost < 4 || bcryptCost > 31) {
    fail("bcrypt-cost", `invalid value "${bcryptCost}" for flag --bcrypt-cost: expected an integer between 4 and 31`)
  }

  const client = transport("", { values, warnings })
  const peer = transport("peer-", { values, warnings })
  for (const [prefix, side] of [["", client], ["peer-", peer]] as const) {
    if ((side.certFile === "") !== (side.keyFile === "")) {
      fail(`${prefix}cert-file`, `--${prefix}cert-file and --${prefix}key-file must be given together`)
    }
    if ((side.clientCertFile === "") !== (side.clientKeyFile === "")) {
      fail(`${prefix}client-cert-file`, `--${prefix}client-cert-file and --${prefix}client-key-file must be given together`)
    }
  }
  const clientTls = client.certFile !== "" || client.autoTls
  const peerTls = peer.certFile !== "" || peer.autoTls
  for (const [flag, list, tls] of [
    ["listen-client-urls", urls("listen-client-urls"), clientTls],
    ["listen-peer-urls", urls("listen-peer-urls"), peerTls],
    ["listen-metrics-urls", urls("listen-metrics-urls"), clientTls],
  ] as const) {
    for (const url of list) {
      if (url.scheme === "https" && !tls) {
        const which = flag === "listen-peer-urls" ? "--peer-cert-file and --peer-key-file (or --peer-auto-tls)" : "--cert-file and --key-file (or --auto-tls)"
        fail(flag, `${which} must be given for the https URL ${url.text} in --${flag}`)
      }
    }
  }

  const tlsMin = str("tls-min-version")
  const tlsMax = str("tls-max-version")
  if (tlsMax !== "" && tlsMin > tlsMax) fail("tls-min-version", "--tls-min-version must be lower than or equal to --tls-max-version")
  const cipherSuites = list("cipher-suites")
  if (cipherSuites.length > 0) {
    if (tlsMin === "TLS1.3") fail("cipher-suites", "--cipher-suites cannot be used with TLS1.3 only (--tls-min-version=TLS1.3)")
    const mapped = cipherSuitesToOpenssl(cipherSuites)
    if (!mapped.ok) fail("cipher-suites", `invalid value "${cipherSuites.join(",")}" for flag --cipher-suites: ${mapped.message}`)
  }

  const logFormat = str("log-format") === "console" ? "console" : "json"
  const logOutputs = list("log-outputs")
  if (logOutputs.includes("systemd/journal") && logOutputs.length > 1) {
    const quoted = [...logOutputs].sort().map((o) => JSON.stringify(o)).join(" ")
    fail("log-outputs", `running with systemd/journal but other '--log-outputs' values ([${quoted}]) are configured with 'default'; override 'default' value with something else`)
  }
  if (str("logger") === "capnslog") warnings.push("--logger=capnslog: tskv logs structured JSON, as with --logger=zap")

  return {
    name,
    dataDir: str("data-dir") !== "" ? str("data-dir") : `${name}.etcd`,
    walDir: str("wal-dir"),
    snapshotCount: num("snapshot-count"),
    snapshotCatchupEntries: num("snapshot-catchup-entries"),
    heartbeatMs,
    electionMs,
    heartbeatTicks: 1,
    electionTicks: Math.floor(electionMs / heartbeatMs),
    initialElectionTickAdvance: bool("initial-election-tick-advance"),
    maxSnapshots: num("max-snapshots"),
    maxWals: num("max-wals"),
    quotaBackendBytes,
    // tskv commits its SQLite batch every second (etcd: 100 ms / 10000 writes). The raft WAL, not
    // the db, makes writes durable, so a longer batch loses nothing; it rewrites each hot B-tree page
    // once a second instead of ten times: put throughput +20% and no checkpoint stalls in p99.
    backendBatchIntervalMs: ms("backend-batch-interval", DEFAULT_BACKEND_BATCH_INTERVAL_MS) || DEFAULT_BACKEND_BATCH_INTERVAL_MS,
    backendBatchLimit: num("backend-batch-limit") || DEFAULT_BACKEND_BATCH_LIMIT,
    maxTxnOps: num("max-txn-ops"),
    maxRequestBytes: num("max-request-bytes"),
    maxConcurrentStreams: num("max-concurrent-streams"),
    grpcKeepaliveMinTimeMs: num("grpc-keepalive-min-time"),
    grpcKeepaliveIntervalMs: num("grpc-keepalive-interval"),
    grpcKeepaliveTimeoutMs: num("grpc-keepalive-timeout"),
    raftReadTimeoutMs: num("raft-read-timeout"),
    raftWriteTimeoutMs: num("raft-write-timeout"),
    maxLearners: num("max-learners"),
    listenPeerUrls: urls("listen-peer-urls"),
    listenClientUrls: urls("listen-client-urls"),
    listenMetricsUrls: urls("listen-metrics-urls"),
    initialAdvertisePeerUrls,
    advertiseClientUrls: urls("advertise-client-urls"),
    initialCluster,
    initialClusterState: str("initial-cluster-state") as "new" | "existing",
    initialClusterToken: str("initial-cluster-token"),
    strictReconfigCheck: bool("strict-reconfig-check"),
    preVote: bool("pre-vote"),
    autoCompaction: autoCompaction({ mode: str("auto-compaction-mode"), retention: str("auto-compaction-retention") }, fail),
    client,
    peer,
    cipherSuites,
    tlsMinVersion: tlsMin === "TLS1.3" ? "TLSv1.3" : "TLSv1.2",
    tlsMaxVersion: tlsMax === "" ? "" : tlsMax === "TLS1.3" ? "TLSv1.3" : "TLSv1.2",
    selfSignedCertValidityYears: Math.max(1, num("self-signed-cert-validity")),
    cors: list("cors"),
    hostWhitelist: list("host-whitelist"),
    authToken: parseAuthToken(str("auth-token"), fail),
    bcryptCost,
    authTokenTtlSeconds: num("auth-token-ttl"),
    metrics: str("metrics") as "basic" | "extensive",
    enableGrpcGateway: bool("enable-grpc-gateway"),
    enableV2: bool("enable-v2"),
    logger: "zap",
    logOutputs,
    logFormat,
    logLevel: bool("debug") ? "debug" : (str("log-level") as Config["logLevel"]),
    features: features({ values, explicit }, fail),
    corruptCheckTimeMs: num("corrupt-check-time"),
    compactHashCheckTimeMs: num("compact-hash-check-time"),
    compactionBatchLimit: num("compaction-batch-limit"),
    compactionSleepIntervalMs: num("compaction-sleep-interval"),
    watchProgressNotifyIntervalMs: num("watch-progress-notify-interval"),
    warningApplyDurationMs: num("warning-apply-duration"),
    warningUnaryRequestDurationMs: num("warning-unary-request-duration"),
    forceNewCluster: bool("force-new-cluster"),
    unsafeNoFsync: bool("unsafe-no-fsync"),
    configFile: input.configFile,
    explicitFlags: [...explicit].sort(),
    envUsed: input.envUsed,
    warnings,
  }
}

function transport(prefix: "" | "peer-", { values, warnings }: { values: Record<string, FlagValue>; warnings: string[] }): TransportSecurity {
  const text = (name: string): string => values[`${prefix}${name}`] as string
  const certFile = text("cert-file")
  const keyFile = text("key-file")
  const autoTls = values[`${prefix}auto-tls`] === true
  if (autoTls && certFile !== "") warnings.push(`ignoring --${prefix}auto-tls since --${prefix}cert-file and --${prefix}key-file are given`)
  return {
    certFile,
    keyFile,
    clientCertFile: text("client-cert-file"),
    clientKeyFile: text("client-key-file"),
    trustedCaFile: text("trusted-ca-file"),
    clientCertAuth: values[`${prefix}client-cert-auth`] === true,
    crlFile: values[prefix === "peer-" ? "peer-crl-file" : "client-crl-file"] as string,
    autoTls: autoTls && certFile === "",
    allowedCn: prefix === "peer-" ? (values["peer-cert-allowed-cn"] as string[]) : [],
    allowedHostname: (prefix === "peer-" ? values["peer-cert-allowed-hostname"] : values["client-cert-allowed-hostname"]) as string[],
    skipClientSanVerification: prefix === "peer-" && values["peer-skip-client-san-verification"] === true,
  }
}

/** "a=http://10.0.0.1:2380,b=http://10.0.0.2:2380" (a name may repeat). */
export function parseInitialCluster(text: string, fail: Fail): ClusterMember[] {
  const members: { name: string; peerUrls: EtcdUrl[] }[] = []
  const expected = 'expected name=URL pairs separated by commas, e.g. "a=http://10.0.0.1:2380,b=http://10.0.0.2:2380"'
  for (const item of splitList(text)) {
    const eq = item.indexOf("=")
    if (eq <= 0) fail("initial-cluster", `invalid value "${text}" for flag --initial-cluster: ${expected}`)
    const memberName = item.slice(0, eq)
    const url = parseUrl(item.slice(eq + 1).trim())
    if (!url.ok) fail("initial-cluster", `invalid value "${text}" for flag --initial-cluster: ${url.ok ? "" : url.expected}`)
    if (!url.ok) continue
    const existing = members.find((m) => m.name === memberName)
    if (existing === undefined) members.push({ name: memberName, peerUrls: [url.value] })
    else if (!existing.peerUrls.some((u) => u.text === url.value.text)) existing.peerUrls.push(url.value)
  }
  if (members.length === 0) fail("initial-cluster", `invalid value "${text}" for flag --initial-cluster: ${expected}`)
  return members
}

function autoCompaction({ mode, retention }: { mode: string; retention: string }, fail: Fail): AutoCompaction {
  const invalid = (expected: string): never =>
    fail("auto-compaction-retention", `invalid value "${retention}" for flag --auto-compaction-retention: ${expected}`)
  if (mode === "revision") {
    const count = parseUint(retention)
    if (!count.ok) invalid("expected a number of revisions in revision mode")
    return { mode: "revision", retentionRevisions: count.ok ? count.value : 0 }
  }
  if (/^[0-9]+$/.test(retention)) return { mode: "periodic", retentionMs: Number(retention) * 3_600_000 }
  const duration = parseNonNegativeDuration(retention)
  if (!duration.ok) invalid('expected hours ("1") or a duration ("30m") in periodic mode')
  return { mode: "periodic", retentionMs: duration.ok ? duration.value : 0 }
}

const jwtSignMethods = new Set(["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"])

/** "simple" or "jwt,pub-key=...,priv-key=...,sign-method=...,ttl=5m". */
export function parseAuthToken(text: string, fail: Fail): AuthTokenConfig {
  const invalid = (why: string): never => fail("auth-token", `invalid value "${text}" for flag --auth-token: ${why}`)
  const [kind = "", ...options] = text.split(",")
  if (kind === "simple" && options.length === 0) return { kind: "simple" }
  if (kind === "signed") {
    // tskv's own token: an HMAC over user, auth revision and expiry with a cluster secret, valid on every member.
    let ttlMs = 0
    for (const option of options) {
      const [key, value = ""] = option.split("=", 2)
      if (key !== "ttl") invalid(`unknown signed option "${key}"`)
      const parsed = parseDuration(value)
      if (!parsed.ok || typeof parsed.value !== "number" || parsed.value <= 0) invalid(`ttl must be a positive duration such as 5m, got "${value}"`)
      else ttlMs = parsed.value
    }
    return ttlMs > 0 ? { kind: "signed", ttlMs } : { kind: "signed" }
  }
  if (kind !== "jwt") return invalid("expected simple, signed[,ttl=<duration>] or jwt,pub-key=<file>,priv-key=<file>,sign-method=<method>[,ttl=<duration>]")
  const settings = new Map<string, string>()
  for (const option of options) {
    const eq = option.indexOf("=")
    if (eq <= 0) invalid(`option "${option}" is not key=value`)
    settings.set(option.slice(0, eq), option.slice(eq + 1))
  }
  for (const key of settings.keys()) {
    if (!["pub-key", "priv-key", "sign-method", "ttl"].includes(key)) invalid(`unknown jwt option "${key}"`)
  }
  const signMethod = settings.get("sign-method") ?? ""
  if (!jwtSignMethods.has(signMethod)) invalid(`sign-method must be one of ${[...jwtSignMethods].join(", ")}`)
  const pubKeyFile = settings.get("pub-key") ?? ""
  if (pubKeyFile === "") invalid("pub-key=<file> is required")
  const ttl = parseDuration(settings.get("ttl") ?? "5m")
  if (!ttl.ok || ttl.value <= 0) invalid("ttl must be a positive duration such as 5m")
  return { kind: "jwt", pubKeyFile, privKeyFile: settings.get("priv-key") ?? "", signMethod, ttlMs: ttl.ok ? ttl.value : 0 }
}

const gateKeys: Record<FeatureGate, keyof FeatureConfig> = {
  InitialCorruptCheck: "initialCorruptCheck",
  CompactHashCheck: "compactHashCheck",
  LeaseCheckpoint: "leaseCheckpoint",
  LeaseCheckpointPersist: "leaseCheckpointPersist",
  StopGRPCServiceOnDefrag: "stopGrpcServiceOnDefrag",
  TxnModeWriteWithSharedBuffer: "txnModeWriteWithSharedBuffer",
  SetMemberLocalAddr: "setMemberLocalAddr",
}

function features(
  { values, explicit }: { values: Record<string, FlagValue>; explicit: ReadonlySet<string> },
  fail: Fail,
): FeatureConfig {
  const result: Record<keyof FeatureConfig, boolean> = {
    initialCorruptCheck: false,
    compactHashCheck: false,
    leaseCheckpoint: false,
    leaseCheckpointPersist: false,
    stopGrpcServiceOnDefrag: false,
    txnModeWriteWithSharedBuffer: true,
    setMemberLocalAddr: false,
  }
  for (const [gate, flag] of Object.entries(featureGates) as [FeatureGate, string][]) {
    result[gateKeys[gate]] = values[flag] === true
  }
  const text = values["feature-gates"] as string
  for (const item of splitList(text)) {
    const [gate = "", setting = "", ...extra] = item.split("=")
    if (!(gate in featureGates)) fail("feature-gates", `invalid value "${text}" for flag --feature-gates: unrecognized feature gate: ${gate}`)
    const enabled = parseBool(setting)
    if (!enabled.ok || extra.length > 0) {
      fail("feature-gates", `invalid value "${text}" for flag --feature-gates: expected ${gate}=true or ${gate}=false`)
    }
    const flag = featureGates[gate as FeatureGate]
    if (explicit.has(flag)) fail("feature-gates", `cannot specify both --${flag} and --feature-gates=${gate}`)
    result[gateKeys[gate as FeatureGate]] = enabled.ok && enabled.value
  }
  if (result.setMemberLocalAddr) fail("feature-gates", "--feature-gates=SetMemberLocalAddr=true is not supported yet")
  return result
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const inner of Object.values(value)) deepFreeze(inner)
  }
  return value
}

/** For --help: the default of a duration flag the way etcd shows it. */
export function describeDefault(spec: FlagSpec): string {
  if (spec.kind === "duration" && spec.default !== "") {
    const parsed = parseDuration(spec.default)
    return parsed.ok ? formatDuration(parsed.value) : spec.default
  }
  return spec.default
}
