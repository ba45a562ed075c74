// Cluster: N members of tskv (dist/tskv) or of real etcd on loopback, free
// ports and temp dirs, for the multi-member e2e tests.
//
//   const c = await Cluster.start({ kind: "tskv", size: 3, faults: true })
//   const leader = await c.leader()
//   c.kill(leader.name); await c.restart(leader.name)
//   c.proxy!.isolate("m2"); c.proxy!.heal()
//   await c.waitConverged()
//   await c.close()
//
// With `faults`, peer traffic goes through a FaultProxy: each member listens
// on its real peer port and advertises a proxy port (in --initial-cluster and
// --initial-advertise-peer-urls), which is the URL its peers dial.

import { join } from "node:path"
import { EtcdClient, GrpcError, grpcCodeOf } from "../../src/client"
import type { StatusResponse } from "../../src/pb"
import { FaultProxy } from "./fault_proxy"
import { freePorts } from "./ports"
import { etcdctl, type CtlResult, type MemberProcess, startMember, waitHealthy } from "./procs"
import { tempDir } from "./tmp"

export interface ClusterOptions {
  kind: "tskv" | "etcd"
  size: number
  /** Route peer traffic through a FaultProxy (this.proxy). */
  faults?: boolean
  /** --snapshot-count (default: the binary's default). */
  snapshotCount?: number
  /** More flags for every member. */
  extraArgs?: string[]
  /** Time to wait for every member to be healthy (default 20 s). */
  readyTimeoutMs?: number
  /** Called before a member's process starts (e.g. to mount a small file system on its data dir). */
  prepareDataDir?: (member: ClusterMember) => void
}

export interface ClusterMember {
  name: string
  clientUrl: string
  /** The advertised peer URL (the proxy's, with faults). */
  peerUrl: string
  clientPort: number
  /** The port the member listens on for peers. */
  listenPeerPort: number
  dataDir: string
  initialCluster: string
  initialClusterState: "new" | "existing"
  /** The running process (undefined when killed or not started). */
  process: MemberProcess | undefined
  /** Outputs of earlier runs of this member (for failure messages). */
  pastOutput: string
  paused: boolean
  /** Removed from the cluster: its process may exit on its own. */
  removed?: boolean
}

export const ELECTION_TIMEOUT_MS = 1_000
const TOKEN = "tskv-e2e-cluster"

export class Cluster {
  readonly members: ClusterMember[] = []
  proxy: FaultProxy | undefined
  private readonly dir = tempDir("cluster-")
  private readonly clients = new Map<string, EtcdClient>()

  private constructor(readonly options: ClusterOptions) {}

  static async start(options: ClusterOptions): Promise<Cluster> {
    const c = new Cluster(options)
    try {
      const ports = await freePorts(options.size * 3)
      const names = Array.from({ length: options.size }, (_, i) => `m${i + 1}`)
      const advertised = names.map((_, i) => ports[options.faults ? i * 3 + 2 : i * 3 + 1]!)
      const initialCluster = names.map((n, i) => `${n}=http://127.0.0.1:${advertised[i]}`).join(",")
      names.forEach((name, i) => {
        c.members.push({
          name,
          clientUrl: `http://127.0.0.1:${ports[i * 3]}`,
          peerUrl: `http://127.0.0.1:${advertised[i]}`,
          clientPort: ports[i * 3]!,
          listenPeerPort: ports[i * 3 + 1]!,
          dataDir: join(c.dir.path, name),
          initialCluster,
          initialClusterState: "new",
          process: undefined,
          pastOutput: "",
          paused: false,
        })
      })
      if (options.faults) {
        c.proxy = await FaultProxy.start({
          routes: c.members.map((m, i) => ({ name: m.name, proxyPort: advertised[i]!, targetPort: m.listenPeerPort })),
          pids: () => c.pids(),
        })
      }
      for (const m of c.members) await c.spawn(m)
      await Promise.all(c.members.map((m) => waitHealthy(c.running(m.name), options.readyTimeoutMs ?? 20_000)))
      return c
    } catch (e) {
      await c.close()
      throw e
    }
  }

  member(name: string): ClusterMember {
    const m = this.members.find((x) => x.name === name)
    if (m === undefined) throw new Error(`no member ${name}`)
    return m
  }

  /** Members whose process runs (paused ones included). */
  get live(): ClusterMember[] {
    return this.members.filter((m) => m.process !== undefined)
  }

  running(name: string): MemberProcess {
    const p = this.member(name).process
    if (p === undefined) throw new Error(`member ${name} is not running`)
    return p
  }

  /** A client pinned to one member (cached; closed by close()). */
  client(name: string, callTimeoutMs = 5_000): EtcdClient {
    const key = `${name}/${callTimeoutMs}`
    let client = this.clients.get(key)
    if (client === undefined) {
      client = new EtcdClient({ endpoints: [this.member(name).clientUrl], callTimeoutMs })
      this.clients.set(key, client)
    }
    return client
  }

  /** A new client that is not cached (the caller closes it). */
  newClient(name: string, callTimeoutMs = 5_000): EtcdClient {
    return new EtcdClient({ endpoints: [this.member(name).clientUrl], callTimeoutMs })
  }

  async status(name: string, timeoutMs = 2_000): Promise<StatusResponse> {
    return await this.client(name).maintenance.status({}, { timeoutMs })
  }

  /** Member id (from Status) of a running member. */
  async idOf(name: string): Promise<bigint> {
    return (await this.status(name)).header!.memberId
  }

  /**
   * Waits until every running, unpaused member (or those named) reports the
   * same non-zero leader, and returns the leader's member.
   */
  async leader(options: { timeoutMs?: number; among?: string[] } = {}): Promise<ClusterMember> {
    const deadline = Date.now() + (options.timeoutMs ?? 15_000)
    let last = ""
    while (Date.now() < deadline) {
      this.throwIfCrashed()
      const names = options.among ?? this.live.filter((m) => !m.paused).map((m) => m.name)
      try {
        const statuses = await Promise.all(names.map((n) => this.status(n, 1_000)))
        const leaders = new Set(statuses.map((s) => s.leader))
        const leaderId = statuses[0]?.leader ?? 0n
        if (leaders.size === 1 && leaderId !== 0n) {
          const i = statuses.findIndex((s) => s.header?.memberId === leaderId)
          if (i >= 0) return this.member(names[i]!)
        }
        last = statuses.map((s, i) => `${names[i]}: leader ${s.leader.toString(16)} term ${s.raftTerm}`).join("; ")
      } catch (e) {
        last = String(e)
      }
      await Bun.sleep(100)
    }
    throw new Error(`no agreed leader: ${last}`)
  }

  /** kill -9; the member can be restarted on its data dir. */
  async kill(name: string): Promise<void> {
    const m = this.member(name)
    if (m.process === undefined) return
    await m.process.stop("SIGKILL")
    m.pastOutput += m.process.output()
    m.process = undefined
    m.paused = false
  }

  /** SIGTERM and wait for the exit (a graceful stop). */
  async terminate(name: string): Promise<number> {
    const m = this.member(name)
    if (m.process === undefined) return 0
    const code = await m.process.stop("SIGTERM")
    m.pastOutput += m.process.output()
    m.process = undefined
    return code
  }

  pause(name: string): void {
    this.running(name).proc.kill("SIGSTOP")
    this.member(name).paused = true
  }

  resume(name: string): void {
    this.running(name).proc.kill("SIGCONT")
    this.member(name).paused = false
  }

  /** Starts a stopped member again on its data dir (with more flags for this run) and waits until it is healthy. */
  async restart(name: string, timeoutMs = 30_000, extraArgs: string[] = []): Promise<void> {
    const m = this.member(name)
    if (m.process !== undefined) throw new Error(`member ${name} is running`)
    await this.spawn(m, extraArgs)
    await waitHealthy(this.running(name), timeoutMs)
  }

  /**
   * The runbook of `etcdctl member add`: announces the member (through the
   * member `via`), then starts it with the settings etcdctl printed
   * (ETCD_INITIAL_CLUSTER, --initial-cluster-state existing) on an empty data dir.
   */
  async addMember(options: { name: string; learner?: boolean; via?: string; dataDir?: string }): Promise<{ member: ClusterMember; ctl: CtlResult }> {
    const [clientPort, listenPeerPort, proxyPort] = (await freePorts(3)) as [number, number, number]
    const advertisedPort = this.proxy ? proxyPort : listenPeerPort
    const peerUrl = `http://127.0.0.1:${advertisedPort}`
    if (this.proxy) await this.proxy.addRoute({ name: options.name, proxyPort, targetPort: listenPeerPort })
    const via = options.via ?? this.live.filter((m) => !m.paused).map((m) => m.name)
    const endpoints = (Array.isArray(via) ? via : [via]).map((n) => this.member(n).clientUrl)
    const args = ["member", "add", options.name, `--peer-urls=${peerUrl}`, ...(options.learner ? ["--learner"] : [])]
    const ctl = await reconfigure(endpoints, args)
    if (ctl.code !== 0) throw new Error(`etcdctl member add failed (${ctl.code}): ${ctl.stdout}${ctl.stderr}`)
    const printed = (variable: string): string => {
      const m = new RegExp(`^${variable}="(.*)"$`, "m").exec(ctl.stdout)
      if (m === null) throw new Error(`etcdctl member add printed no ${variable}:\n${ctl.stdout}`)
      return m[1]!
    }
    if (printed("ETCD_NAME") !== options.name) throw new Error(`etcdctl printed ETCD_NAME ${printed("ETCD_NAME")}`)
    if (printed("ETCD_INITIAL_ADVERTISE_PEER_URLS") !== peerUrl) throw new Error(`etcdctl printed another peer URL:\n${ctl.stdout}`)
    const state = printed("ETCD_INITIAL_CLUSTER_STATE")
    if (state !== "existing") throw new Error(`etcdctl printed ETCD_INITIAL_CLUSTER_STATE=${state}`)
    const existing = this.members.find((x) => x.name === options.name)
    const member: ClusterMember = {
      name: options.name,
      clientUrl: `http://127.0.0.1:${clientPort}`,
      peerUrl,
      clientPort,
      listenPeerPort,
      dataDir: options.dataDir ?? join(this.dir.path, `${options.name}-${Date.now()}`),
      initialCluster: printed("ETCD_INITIAL_CLUSTER"),
      initialClusterState: "existing",
      process: undefined,
      pastOutput: existing?.pastOutput ?? "",
      paused: false,
    }
    if (existing !== undefined) this.members.splice(this.members.indexOf(existing), 1)
    this.members.push(member)
    for (const [key, client] of this.clients) {
      if (key.startsWith(`${options.name}/`)) {
        client.close()
        this.clients.delete(key)
      }
    }
    await this.spawn(member)
    return { member, ctl }
  }

  /** etcdctl member remove (through a member other than the removed one). */
  async removeMember(options: { name: string; id: bigint; via: string }): Promise<CtlResult> {
    this.member(options.name).removed = true
    return await reconfigure([this.member(options.via).clientUrl], ["member", "remove", options.id.toString(16)])
  }

  /** Forgets a member (after removal): kills its process if it still runs. */
  async forget(name: string): Promise<void> {
    await this.kill(name)
    this.members.splice(this.members.indexOf(this.member(name)), 1)
  }

  async hashKV(name: string): Promise<{ hash: number; revision: number; compactRevision: number }> {
    const r = await this.client(name).maintenance.hashKV({ revision: 0 }, { timeoutMs: 5_000 })
    return { hash: r.hash, revision: r.header?.revision ?? 0, compactRevision: r.compactRevision }
  }

  /**
   * Waits until every running member reports the same revision and the same
   * HashKV; returns them. Throws with the last readings after the timeout.
   */
  async waitConverged(timeoutMs = 30_000): Promise<{ hash: number; revision: number }> {
    const deadline = Date.now() + timeoutMs
    let last = ""
    while (Date.now() < deadline) {
      this.throwIfCrashed()
      const names = this.live.filter((m) => !m.paused).map((m) => m.name)
      try {
        const hashes = await Promise.all(names.map((n) => this.hashKV(n)))
        const first = hashes[0]!
        if (hashes.every((h) => h.hash === first.hash && h.revision === first.revision)) return first
        last = hashes.map((h, i) => `${names[i]}: rev ${h.revision} hash ${h.hash}`).join("; ")
      } catch (e) {
        last = String(e)
      }
      await Bun.sleep(200)
    }
    throw new Error(`members did not converge in ${timeoutMs} ms: ${last}`)
  }

  /** `etcdctl endpoint hashkv -w json` over every running member: the hash per member name. */
  ctlHashKV(): Map<string, number> {
    const live = this.live.filter((m) => !m.paused)
    const r = etcdctl(
      live.map((m) => m.clientUrl),
      ["endpoint", "hashkv", "-w", "json"],
    )
    if (r.code !== 0) throw new Error(`etcdctl endpoint hashkv failed (${r.code}): ${r.stderr}`)
    const rows = JSON.parse(r.stdout) as { Endpoint: string; HashKV: { hash: number } }[]
    return new Map(rows.map((row) => [live.find((m) => m.clientUrl === row.Endpoint)?.name ?? row.Endpoint, row.HashKV.hash]))
  }

  /** Everything every member printed, for failure messages (the tail of each). */
  logs(tailChars = 3_000): string {
    return this.members
      .map((m) => `----- ${m.name}\n${(m.pastOutput + (m.process?.output() ?? "")).slice(-tailChars)}`)
      .join("\n")
  }

  /** Members whose process exited although no test stopped it (a crash), with the tail of their output. */
  crashed(): string[] {
    return this.members
      .filter((m) => m.process !== undefined && m.removed !== true && (m.process.proc.exitCode !== null || m.process.proc.signalCode !== null))
      .map((m) => `${m.name} exited (${m.process!.proc.exitCode ?? m.process!.proc.signalCode}):\n${m.process!.output().slice(-2_000)}`)
  }

  /** Fails at once when a member crashed, rather than waiting for a timeout. */
  throwIfCrashed(): void {
    const crashed = this.crashed()
    if (crashed.length > 0) throw new Error(`a member crashed:\n${crashed.join("\n")}`)
  }

  /** Stops everything; throws if a member had crashed on its own meanwhile. */
  async close(): Promise<void> {
    const crashed = this.crashed()
    for (const client of this.clients.values()) client.close()
    this.clients.clear()
    await Promise.all(
      this.members.map(async (m) => {
        if (m.paused) m.process?.proc.kill("SIGCONT")
        await m.process?.stop("SIGKILL")
        m.process = undefined
      }),
    )
    await this.proxy?.close()
    this.dir.remove()
    if (crashed.length > 0) throw new Error(`a member crashed during the test:\n${crashed.join("\n")}`)
  }

  private pids(): Map<string, number> {
    const pids = new Map<string, number>()
    for (const m of this.members) if (m.process !== undefined) pids.set(m.name, m.process.proc.pid)
    return pids
  }

  private async spawn(m: ClusterMember, extraArgs: string[] = []): Promise<void> {
    const o = this.options
    o.prepareDataDir?.(m)
    m.process = await startMember({
      kind: o.kind,
      name: m.name,
      dataDir: m.dataDir,
      clientPort: m.clientPort,
      peerPort: m.listenPeerPort,
      initialCluster: m.initialCluster,
      initialClusterState: m.initialClusterState,
      waitReady: false,
      extraArgs: [
        // Last one wins: advertise the proxy's port while listening on the real one.
        `--initial-advertise-peer-urls=${m.peerUrl}`,
        `--initial-cluster-token=${TOKEN}`,
        "--heartbeat-interval=100",
        `--election-timeout=${ELECTION_TIMEOUT_MS}`,
        ...(o.snapshotCount === undefined ? [] : [`--snapshot-count=${o.snapshotCount}`]),
        ...(o.extraArgs ?? []),
        ...extraArgs,
      ],
    })
    m.paused = false
  }
}

/**
 * etcdctl for a membership change. etcd refuses one ("etcdserver: unhealthy
 * cluster") until the members have been connected for 5 s (strict reconfig
 * check), e.g. right after a start: retry that for a while.
 */
async function reconfigure(endpoints: string[], args: string[]): Promise<CtlResult> {
  // etcdctl's own retries turn "unhealthy cluster" into "context deadline exceeded" after its
  // default 5 s command timeout: give them the time instead.
  args = ["--command-timeout=20s", ...args]
  let ctl = etcdctl(endpoints, args)
  for (const deadline = Date.now() + 15_000; ctl.code !== 0 && ctl.stderr.includes("unhealthy cluster") && Date.now() < deadline; ) {
    await Bun.sleep(500)
    ctl = etcdctl(endpoints, args)
  }
  return ctl
}

/** Polls `probe` until it returns a value that is not undefined. */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  while (Date.now() < deadline) {
    try {
      const v = await probe()
      if (v !== undefined) return v
    } catch (e) {
      last = e
    }
    await Bun.sleep(100)
  }
  throw new Error(`${what}: not within ${timeoutMs} ms${last === undefined ? "" : ` (last error: ${String(last)})`}`)
}

/**
 * The kinds the fault tests run against: TSKV_CLUSTER_KINDS=tskv,etcd (default
 * tskv). Running them once against etcd checks the harness and the expected
 * error texts.
 */
export function clusterKinds(): ("tskv" | "etcd")[] {
  const kinds = (process.env.TSKV_CLUSTER_KINDS ?? "tskv").split(",").map((k) => k.trim())
  for (const k of kinds) if (k !== "tskv" && k !== "etcd") throw new Error(`TSKV_CLUSTER_KINDS: unknown kind ${k}`)
  return kinds as ("tskv" | "etcd")[]
}

/** The sum of a Prometheus metric's samples (every label set) on a member's /metrics. */
export async function metricSum(clientUrl: string, name: string): Promise<number> {
  const text = await (await fetch(`${clientUrl}/metrics`, { signal: AbortSignal.timeout(5_000) })).text()
  let sum = 0
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line)
    if (m !== null && m[1] === name) sum += Number(m[3])
  }
  return sum
}

/** `count` puts of key `${prefix}${i}` through `client`, `concurrency` in flight; returns the last revision. */
export async function putMany(options: { client: EtcdClient; count: number; prefix: string; concurrency?: number; valueBytes?: number }): Promise<number> {
  const { client, count, prefix } = options
  const value = new Uint8Array(options.valueBytes ?? 16).fill(120)
  let next = 0
  let revision = 0
  const encoder = new TextEncoder()
  await Promise.all(
    Array.from({ length: options.concurrency ?? 64 }, async () => {
      for (let i = next++; i < count; i = next++) {
        const res = await client.kv.put({ key: encoder.encode(`${prefix}${i}`), value }, { timeoutMs: 20_000 })
        revision = Math.max(revision, res.header?.revision ?? 0)
      }
    }),
  )
  return revision
}

/** How a call failed, as the client saw it (gRPC code and etcd's text), or "ok". */
export async function failureOf(call: () => Promise<unknown>): Promise<{ code: number | undefined; message: string } | "ok"> {
  try {
    await call()
    return "ok"
  } catch (e) {
    return { code: grpcCodeOf(e), message: e instanceof GrpcError ? e.details : (e as Error).message }
  }
}
