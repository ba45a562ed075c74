// scripts/bench: tskv against real etcd, same flags, same load generator, one run.
//
//   scripts/bench [--duration 10] [--clients 256] [--members 1|3] [--only put256,get-lin,...]
//                 [--keys 1000000] [--space 100000] [--conns 8] [--watchers 1000] [--watch-rate 0]
//                 [--rounds 3] [--kube-clients 64] [--kube-objects 5000] [--quick] [--json FILE]
//
// Starts a cluster of each (dist/tskv and /usr/bin/etcd, through test/support/cluster.ts: the
// same flags for both, loopback, temp dirs), then runs every case against both in --rounds
// alternating slices (etcd, tskv, tskv, etcd, ...: the machine is shared and its load drifts),
// merges the slices (exact percentiles over every latency) and prints one table. The load generator is scripts/bench_loadgen.c (C, libnghttp2,
// compiled on first use): it checks :status, a response message and grpc-status on every
// response and keeps every latency. Put and txn runs are also checked by the revision delta.
//
// Cases: put1 (1 in flight), put256 (--clients in flight), get-lin, get-ser, txn (compare-and-swap:
// if value(k) != "sentinel" then put(k) else get(k)), watch (1 writer, --watchers watchers of one
// key, events/s and put-to-event latency), restart (load --keys keys, SIGTERM, start: time from
// spawn until a linearizable Range succeeds), kube (kube-apiserver's storage workload with etcd's
// own Go client, test/go/clientv3_check -mode bench: a load phase of --kube-objects create txns,
// then a mixed phase of guarded updates, creates, gets, list pages, counts and leased events under
// prefix watches; two rows, kube-load and kube-mixed, --kube-clients workers over 4 connections),
// rss and snapshot (scripts/bench_snap.ts: RSS after loading --keys keys into a fresh member;
// etcdctl snapshot save of it, --rounds alternating runs; restore until a linearizable read).
import { spawn, spawnSync } from "bun"
import { createHash } from "node:crypto"
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { Cluster } from "../test/support/cluster"
import { buildGoClient } from "../test/support/go_client"
import { runSnapshotCases, SNAPSHOT_CASES } from "./bench_snap"

const CASES = ["put1", "put256", "get-lin", "get-ser", "txn", "watch", "restart", "kube", ...SNAPSHOT_CASES] as const
type CaseName = (typeof CASES)[number]
type Kind = "etcd" | "tskv"

interface Options {
  duration: number
  warmup: number
  clients: number
  conns: number
  members: number
  only: CaseName[]
  keys: number
  space: number
  watchers: number
  watchRate: number
  rounds: number
  kubeClients: number
  kubeObjects: number
  quick: boolean
  json: string | undefined
}

function usage(msg: string): never {
  console.error(`scripts/bench: ${msg}`)
  console.error(
    "usage: scripts/bench [--duration S] [--clients N] [--members N] [--only case,...] [--keys N] [--space N]\n" +
      "                     [--conns N] [--watchers N] [--watch-rate R] [--rounds N] [--kube-clients N] [--kube-objects N]\n" +
      "                     [--quick] [--json FILE]\n" +
      `cases: ${CASES.join(", ")}`,
  )
  process.exit(2)
}

export function parseOptions(argv: string[]): Options {
  const o: Options = {
    duration: 10,
    warmup: 1,
    clients: 256,
    conns: 8,
    members: 1,
    only: [...CASES],
    keys: 1_000_000,
    space: 100_000,
    watchers: 1000,
    watchRate: 0,
    rounds: 3,
    kubeClients: 64,
    kubeObjects: 5000,
    quick: false,
    json: undefined,
  }
  const explicit = new Set<string>()
  for (let i = 0; i < argv.length; i++) {
    const raw = argv[i]!
    const eq = raw.indexOf("=")
    const name = eq > 0 ? raw.slice(0, eq) : raw
    const value = (): string => {
      const v = eq > 0 ? raw.slice(eq + 1) : argv[++i]
      if (v === undefined) usage(`${name} needs a value`)
      return v
    }
    const num = (): number => {
      const v = value()
      const n = Number(v)
      if (!Number.isFinite(n) || n < 0) usage(`${name}: expected a non-negative number, got ${JSON.stringify(v)}`)
      return n
    }
    explicit.add(name)
    switch (name) {
      case "--duration": o.duration = num(); break
      case "--warmup": o.warmup = num(); break
      case "--clients": o.clients = Math.max(1, Math.floor(num())); break
      case "--conns": o.conns = Math.max(1, Math.floor(num())); break
      case "--members": o.members = Math.max(1, Math.floor(num())); break
      case "--keys": o.keys = Math.max(1, Math.floor(num())); break
      case "--space": o.space = Math.max(1, Math.floor(num())); break
      case "--watchers": o.watchers = Math.max(1, Math.floor(num())); break
      case "--watch-rate": o.watchRate = num(); break
      case "--rounds": o.rounds = Math.max(1, Math.floor(num())); break
      case "--kube-clients": o.kubeClients = Math.max(1, Math.floor(num())); break
      case "--kube-objects": o.kubeObjects = Math.max(1, Math.floor(num())); break
      case "--json": o.json = value(); break
      case "--quick": o.quick = true; break
      case "--only": {
        const names = value().split(",").filter((s) => s !== "")
        for (const n of names) if (!(CASES as readonly string[]).includes(n)) usage(`--only: unknown case ${n}`)
        o.only = names as CaseName[]
        break
      }
      case "--help": case "-h": usage("help")
      default: usage(`unknown flag ${name}`)
    }
  }
  if (o.quick) {
    if (!explicit.has("--duration")) o.duration = 1
    if (!explicit.has("--warmup")) o.warmup = 0.2
    if (!explicit.has("--keys")) o.keys = 2_000
    if (!explicit.has("--space")) o.space = 1_000
    if (!explicit.has("--clients")) o.clients = 32
    if (!explicit.has("--watchers")) o.watchers = 50
    if (!explicit.has("--rounds")) o.rounds = 1
    if (!explicit.has("--kube-clients")) o.kubeClients = 16
    if (!explicit.has("--kube-objects")) o.kubeObjects = 300
  }
  return o
}

// ---- the load generator
const repoRoot = resolve(import.meta.dir, "..")
const loadgenSource = join(repoRoot, "scripts/bench_loadgen.c")

export function buildLoadgen(): string {
  const src = readFileSync(loadgenSource)
  const hash = createHash("sha256").update(src).digest("hex").slice(0, 12)
  const dir = join(tmpdir(), "tskv-bench")
  const bin = join(dir, `loadgen-${hash}`)
  if (existsSync(bin)) return bin
  mkdirSync(dir, { recursive: true })
  const tmp = `${bin}.${process.pid}`
  const r = spawnSync(["cc", "-O2", "-Wall", "-o", tmp, loadgenSource, "-lnghttp2"], { stdout: "pipe", stderr: "pipe" })
  if (r.exitCode !== 0) {
    throw new Error(
      `cannot build the load generator (needs a C compiler and libnghttp2-dev: apt-get install -y gcc libnghttp2-dev):\n` +
        r.stderr.toString(),
    )
  }
  spawnSync(["mv", "-f", tmp, bin])
  return bin
}

export interface GenResult {
  op: string
  seconds?: number
  ok?: number
  recorded?: number
  errors?: number
  rps?: number
  p50_ms?: number
  p99_ms?: number
  max_ms?: number
  gen_cpu_pct?: number
  gen_us_per_req?: number
  first_error?: string
  // watch
  writes?: number
  events?: number
  expected_events?: number
  events_per_s?: number
  writes_per_s?: number
  // ready
  ready_ms?: number | null
}

async function runLoadgen(bin: string, args: string[]): Promise<GenResult> {
  const proc = spawn([bin, ...args], { stdout: "pipe", stderr: "pipe" })
  const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()])
  await proc.exited
  const line = out.trim().split("\n").pop() ?? ""
  try {
    return JSON.parse(line) as GenResult
  } catch {
    throw new Error(`loadgen ${args.join(" ")} printed no result (exit ${proc.exitCode}):\n${out}${err}`)
  }
}

// ---- server CPU (utime + stime of every member, from /proc)
function cpuSeconds(pids: number[]): number {
  let ticks = 0
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
      ticks += Number(fields[11]) + Number(fields[12])
    } catch {}
  }
  return ticks / 100
}

function revisionOf(endpoint: string): number {
  const r = spawnSync(["etcdctl", `--endpoints=${endpoint}`, "endpoint", "status", "-w", "json"], { stdout: "pipe", stderr: "pipe" })
  if (r.exitCode !== 0) throw new Error(`etcdctl endpoint status: ${r.stderr.toString()}`)
  const parsed = JSON.parse(r.stdout.toString()) as Array<{ Status: { header: { revision: number } } }>
  return Number(parsed[0]!.Status.header.revision)
}

// ---- one target (a cluster of etcd or tskv)
class Target {
  private constructor(
    readonly kind: Kind,
    readonly cluster: Cluster,
  ) {}

  static async start(kind: Kind, members: number): Promise<Target> {
    return new Target(kind, await Cluster.start({ kind, size: members, readyTimeoutMs: 60_000 }))
  }

  get endpoints(): string {
    return this.cluster.members.map((m) => `127.0.0.1:${m.clientPort}`).join(",")
  }
  get first(): string {
    return `127.0.0.1:${this.cluster.members[0]!.clientPort}`
  }
  pids(): number[] {
    return this.cluster.live.map((m) => m.process!.proc.pid)
  }
}

export interface Row {
  case: string
  metric: string
  /** What the row measures: ops/s (default), a time (p50 = median ms, p99 = max), bytes (in rate). */
  unit?: "ops" | "time" | "bytes"
  etcd: Measure | undefined
  tskv: Measure | undefined
}
export interface Measure {
  rate: number
  p50: number
  p99: number
  genCpuPct: number
  serverCpuUs: number
  check: string
  error: string | undefined
  /** Printed under the table (the runs behind a time, the parts of an RSS). */
  note?: string
}

/** One run of the load generator against one target, with what the server spent. */
interface Slice {
  gen: GenResult
  serverCpu: number
  check: string
  latencies: Uint32Array
}

function readLatencies(path: string): Uint32Array {
  try {
    const b = readFileSync(path)
    return new Uint32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength))
  } catch {
    return new Uint32Array(0)
  } finally {
    rmSync(path, { force: true })
  }
}

/** Merges the slices of one target: rates over the summed windows, exact percentiles over every latency. */
export function merge(slices: Slice[]): Measure {
  const watch = slices[0]?.gen.op === "watch"
  let ops = 0
  let seconds = 0
  let recorded = 0
  let cpu = 0
  let genCpu = 0
  for (const s of slices) {
    const g = s.gen
    const window = g.seconds ?? 0
    seconds += window
    recorded += watch ? (g.events_per_s ?? 0) * window : (g.recorded ?? 0)
    ops += watch ? (g.events ?? 0) : (g.ok ?? 0)
    cpu += s.serverCpu
    genCpu += g.gen_cpu_pct ?? 0
  }
  const all = new Uint32Array(slices.reduce((n, s) => n + s.latencies.length, 0))
  let at = 0
  for (const s of slices) {
    all.set(s.latencies, at)
    at += s.latencies.length
  }
  all.sort()
  const pct = (p: number): number => (all.length === 0 ? 0 : all[Math.round(p * (all.length - 1))]! / 1000)
  const bad = slices.find((s) => !s.check.startsWith("ok"))
  return {
    rate: seconds > 0 ? recorded / seconds : 0,
    p50: pct(0.5),
    p99: pct(0.99),
    genCpuPct: slices.length > 0 ? genCpu / slices.length : 0,
    serverCpuUs: ops > 0 ? (cpu * 1e6) / ops : 0,
    check: bad?.check ?? (slices.length > 1 ? `${slices[0]!.check} (x${slices.length})` : (slices[0]?.check ?? "no run")),
    error: slices.find((s) => s.gen.first_error !== undefined)?.gen.first_error,
  }
}

let sliceCounter = 0

async function runSlice(name: Exclude<CaseName, "restart" | "kube" | "rss" | "snapshot">, t: Target, o: Options, bin: string, duration: number): Promise<Slice> {
  const latFile = join(tmpdir(), `tskv-bench-lat-${process.pid}-${sliceCounter++}`)
  const common = [
    "--endpoints", t.endpoints, "--conns", String(o.conns), "--duration", String(duration), "--warmup", String(o.warmup),
    "--lat-out", latFile,
  ]
  const space = ["--keys", String(o.space), "--prefix", "bench/kv/"]
  const cpu0 = cpuSeconds(t.pids())
  let rev0 = 0
  const withRevision = name === "put1" || name === "put256" || name === "txn"
  if (withRevision) rev0 = revisionOf(t.first)
  let r: GenResult
  switch (name) {
    case "put1":
      r = await runLoadgen(bin, [...common, ...space, "--op", "put", "--clients", "1", "--conns", "1"])
      break
    case "put256":
      r = await runLoadgen(bin, [...common, ...space, "--op", "put", "--clients", String(o.clients)])
      break
    case "get-lin":
      r = await runLoadgen(bin, [...common, ...space, "--op", "range", "--clients", String(o.clients)])
      break
    case "get-ser":
      r = await runLoadgen(bin, [...common, ...space, "--op", "srange", "--clients", String(o.clients)])
      break
    case "txn":
      r = await runLoadgen(bin, [...common, ...space, "--op", "txn", "--clients", String(o.clients)])
      break
    case "watch":
      r = await runLoadgen(bin, [
        ...common,
        "--op", "watch", "--watchers", String(o.watchers), "--watchers-per-stream", "10", "--rate", String(o.watchRate),
        "--prefix", "bench/watch/",
      ])
      break
  }
  const serverCpu = cpuSeconds(t.pids()) - cpu0
  let check = (r.errors ?? 0) === 0 ? "ok" : `${r.errors} errors`
  if (withRevision) {
    const delta = revisionOf(t.first) - rev0
    if (delta !== r.ok) check = `revision +${delta} != ${r.ok} acknowledged`
    else if (check === "ok") check = "ok, rev = acks"
  }
  if (name === "watch" && r.events !== r.expected_events) check = `${r.events}/${r.expected_events} events`
  return { gen: r, serverCpu, check, latencies: readLatencies(latFile) }
}

interface KubePhase {
  phase: string
  ops: number
  seconds: number
  errors: number
}

/** One run of the apiserver workload (Go, clientv3) against one target: a load slice and a mixed slice. */
async function runKubeSlice(t: Target, o: Options, goBin: string, duration: number): Promise<{ load: Slice; mixed: Slice }> {
  const latFile = join(tmpdir(), `tskv-bench-kube-${process.pid}-${sliceCounter++}`)
  const args = [
    "-mode", "bench", "-endpoint", t.first, "-duration", `${duration}s`, "-clients", String(o.kubeClients), "-conns", "4",
    "-objects", String(o.kubeObjects), "-run", `s${sliceCounter}-`, "-lat-out", latFile,
  ]
  // Server CPU per phase: a mark when each phase's line arrives.
  let mark = cpuSeconds(t.pids())
  const cpuOf = new Map<string, number>()
  const phases: KubePhase[] = []
  const proc = spawn([goBin, ...args], { stdout: "pipe", stderr: "pipe" })
  const errText = new Response(proc.stderr).text()
  let out = ""
  const decoder = new TextDecoder()
  for await (const chunk of proc.stdout) {
    out += decoder.decode(chunk, { stream: true })
    let nl: number
    while ((nl = out.indexOf("\n")) >= 0) {
      const line = out.slice(0, nl).trim()
      out = out.slice(nl + 1)
      if (line === "") continue
      const p = JSON.parse(line) as KubePhase
      const now = cpuSeconds(t.pids())
      cpuOf.set(p.phase, now - mark)
      mark = now
      phases.push(p)
    }
  }
  if ((await proc.exited) !== 0) throw new Error(`clientv3_check ${args.join(" ")} exited with ${proc.exitCode}:\n${await errText}${out}`)
  const slice = (name: string): Slice => {
    const p = phases.find((x) => x.phase === name)
    if (p === undefined) throw new Error(`clientv3_check printed no ${name} phase:\n${JSON.stringify(phases)}`)
    const gen: GenResult = { op: `kube-${name}`, seconds: p.seconds, ok: p.ops, recorded: p.ops, errors: p.errors }
    const serverCpu = cpuOf.get(name) ?? 0
    return { gen, serverCpu, check: p.errors === 0 ? "ok" : `${p.errors} errors`, latencies: readLatencies(`${latFile}.${name}`) }
  }
  return { load: slice("load"), mixed: slice("mixed") }
}

export async function fill(t: Target | string, bin: string, prefix: string, keys: number): Promise<GenResult> {
  return await runLoadgen(bin, [
    "--endpoints", typeof t === "string" ? t : t.endpoints, "--op", "put", "--seq", "--requests", String(keys), "--keys", String(keys),
    "--clients", "256", "--conns", "8", "--prefix", prefix, "--timeout", "600",
  ])
}

async function runRestart(t: Target, o: Options, bin: string, log: (s: string) => void): Promise<Measure> {
  const loaded = await fill(t, bin, "bench/restart/", o.keys)
  if ((loaded.errors ?? 0) > 0) throw new Error(`${t.kind}: loading ${o.keys} keys failed: ${loaded.first_error}`)
  log(`  ${t.kind}: loaded ${o.keys} keys at ${Math.round(loaded.rps ?? 0)}/s; restarting`)
  const names = t.cluster.members.map((m) => m.name)
  for (const n of names) await t.cluster.terminate(n)
  const started = performance.now()
  const restarts = Promise.all(names.map((n) => t.cluster.restart(n, 600_000)))
  const ready = await runLoadgen(bin, ["--endpoints", t.first, "--op", "ready", "--prefix", "bench/restart/", "--timeout", "600"])
  const ms = performance.now() - started
  await restarts
  const check = ready.ready_ms === null ? "not ready" : "ok"
  return { rate: 0, p50: ms, p99: ms, genCpuPct: 0, serverCpuUs: 0, check, error: ready.first_error }
}

// ---- output
const METRIC: Record<CaseName, string> = {
  put1: "put 256 B, 1 in flight",
  put256: "put 256 B, N in flight",
  "get-lin": "range, linearizable",
  "get-ser": "range, serializable",
  txn: "txn compare-and-swap",
  watch: "watch fan-out (events/s)",
  restart: "restart to ready",
  kube: "kube-apiserver workload (Go clientv3)",
  rss: "server RSS after loading",
  snapshot: "etcdctl snapshot save, restore",
}

function fmtRate(n: number): string {
  return n >= 100 ? Math.round(n).toString() : n.toFixed(1)
}
function fmtMs(n: number): string {
  return n >= 100 ? Math.round(n).toString() : n >= 10 ? n.toFixed(1) : n.toFixed(2)
}

export function renderTable(rows: Row[], o: Options): string {
  const head = ["case", "etcd ops/s", "p50 ms", "p99 ms", "tskv ops/s", "p50 ms", "p99 ms", "tskv/etcd", "gen CPU %", "srv CPU µs/op e/t", "checks e / t"]
  const lines: string[][] = [head]
  for (const r of rows) {
    const e = r.etcd
    const k = r.tskv
    const restart = r.unit === "time"
    const ratio = e && k ? (restart ? (e.p50 > 0 ? k.p50 / e.p50 : 0) : e.rate > 0 ? k.rate / e.rate : 0) : 0
    if (r.unit === "bytes") {
      const size = (m: Measure | undefined): string => (m ? `${(m.rate / 1e6).toFixed(0)} MB` : "-")
      lines.push([r.case, size(e), "", "", size(k), "", "", e && k ? `${ratio.toFixed(2)} (bytes)` : "-", "-/-", "-/-", [e, k].map((m) => (m ? m.check : "-")).join(" / ")])
      continue
    }
    lines.push([
      r.case,
      e ? (restart ? "-" : fmtRate(e.rate)) : "-",
      e ? (restart ? fmtMs(e.p50) : fmtMs(e.p50)) : "-",
      e ? (restart ? "" : fmtMs(e.p99)) : "-",
      k ? (restart ? "-" : fmtRate(k.rate)) : "-",
      k ? fmtMs(k.p50) : "-",
      k ? (restart ? "" : fmtMs(k.p99)) : "-",
      e && k ? `${ratio.toFixed(2)}${restart ? " (time)" : ""}` : "-",
      [e, k].map((m) => (m ? m.genCpuPct.toFixed(0) : "-")).join("/"),
      [e, k].map((m) => (m && m.serverCpuUs > 0 ? m.serverCpuUs.toFixed(0) : "-")).join("/"),
      [e, k].map((m) => (m ? m.check : "-")).join(" / "),
    ])
  }
  const widths = head.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)))
  const fmt = (l: string[]): string => `| ${l.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`
  const sep = `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`
  const out = [fmt(lines[0]!), sep, ...lines.slice(1).map(fmt)]
  const notes = rows
    .flatMap((r) =>
      [r.etcd, r.tskv].flatMap((m, i) => [
        m?.note ? `  ${r.case} ${i === 0 ? "etcd" : "tskv"}: ${m.note}` : "",
        m?.error ? `  ${r.case} ${i === 0 ? "etcd" : "tskv"}: first error: ${m.error}` : "",
      ]),
    )
    .filter((s) => s !== "")
  return (
    `members ${o.members}, N = ${o.clients} in flight over ${o.conns} connections, ${o.duration} s per case in ${o.rounds} alternating slices (each after ${o.warmup} s warm-up), ` +
    `key space ${o.space}, watchers ${o.watchers}, restart, rss and snapshot with ${o.keys} keys` +
    (rows.some((r) => r.case.startsWith("kube-")) ? `, kube: ${o.kubeClients} workers over 4 connections, ${o.kubeObjects} objects of 1 KiB, 4 prefix watchers` : "") +
    "\n" +
    out.join("\n") +
    (notes.length ? `\n${notes.join("\n")}` : "")
  )
}

export async function runBench(o: Options, log: (s: string) => void = (s) => console.error(s)): Promise<{ rows: Row[]; table: string }> {
  const bin = buildLoadgen()
  const targets: Target[] = []
  const rows: Row[] = []
  try {
    const clustered = o.only.some((c) => !(SNAPSHOT_CASES as readonly string[]).includes(c))
    if (clustered) for (const kind of ["etcd", "tskv"] as const) targets.push(await Target.start(kind, o.members))
    const needsSpace = o.only.some((c) => c.startsWith("get") || c.startsWith("put") || c === "txn")
    if (needsSpace) {
      for (const t of targets) {
        const f = await fill(t, bin, "bench/kv/", o.space)
        if ((f.errors ?? 0) > 0) throw new Error(`${t.kind}: filling the key space failed: ${f.first_error}`)
        log(`${t.kind}: ${o.space} keys filled at ${Math.round(f.rps ?? 0)}/s`)
      }
    }
    for (const name of CASES) {
      if (!o.only.includes(name)) continue
      if (name === "rss" || name === "snapshot") {
        // Both on one pair of fresh members, loaded once (scripts/bench_snap.ts).
        if (name === "snapshot" && o.only.includes("rss")) continue
        const want = new Set(o.only.filter((c) => c === "rss" || c === "snapshot"))
        rows.push(
          ...(await runSnapshotCases(want, o, {
            fill: (endpoint, prefix, keys) => fill(endpoint, bin, prefix, keys),
            ready: (endpoint, prefix) => runLoadgen(bin, ["--endpoints", endpoint, "--op", "ready", "--prefix", prefix, "--timeout", "600"]),
            log,
          })),
        )
        continue
      }
      const row: Row = {
        case: name === "put256" ? `put${o.clients}` : name === "restart" ? `restart ${o.keys} keys` : name, metric: METRIC[name],
        unit: name === "restart" ? "time" : "ops", etcd: undefined, tskv: undefined,
      }
      if (name === "kube") {
        // Two rows (load, mixed) from the same alternating slices.
        const goBin = buildGoClient()
        const slices: Record<Kind, { load: Slice[]; mixed: Slice[] }> = { etcd: { load: [], mixed: [] }, tskv: { load: [], mixed: [] } }
        for (let round = 0; round < o.rounds; round++) {
          const order = round % 2 === 0 ? targets : [...targets].reverse()
          for (const t of order) {
            const s = await runKubeSlice(t, o, goBin, o.duration / o.rounds)
            slices[t.kind].load.push(s.load)
            slices[t.kind].mixed.push(s.mixed)
          }
        }
        for (const phase of ["load", "mixed"] as const) {
          const r: Row = { case: `kube-${phase}`, metric: METRIC.kube, etcd: merge(slices.etcd[phase]), tskv: merge(slices.tskv[phase]) }
          for (const t of targets) {
            const m = r[t.kind]!
            log(`kube-${phase} ${t.kind}: ${fmtRate(m.rate)}/s p50 ${fmtMs(m.p50)} ms p99 ${fmtMs(m.p99)} ms (${m.check})`)
          }
          rows.push(r)
        }
        continue
      }
      if (name === "restart") {
        for (const t of targets) row[t.kind] = await runRestart(t, o, bin, log)
      } else {
        // Alternate etcd and tskv in short slices (the machine is shared: load drifts), then merge.
        const rounds = name === "watch" ? 1 : o.rounds
        const slices: Record<Kind, Slice[]> = { etcd: [], tskv: [] }
        for (let round = 0; round < rounds; round++) {
          const order = round % 2 === 0 ? targets : [...targets].reverse()
          for (const t of order) slices[t.kind].push(await runSlice(name, t, o, bin, o.duration / rounds))
        }
        for (const t of targets) row[t.kind] = merge(slices[t.kind])
      }
      for (const t of targets) {
        const m = row[t.kind]!
        log(`${name} ${t.kind}: ${fmtRate(m.rate)}/s p50 ${fmtMs(m.p50)} ms p99 ${fmtMs(m.p99)} ms srv ${m.serverCpuUs.toFixed(0)} µs/op (${m.check})${m.error ? ` first error: ${m.error}` : ""}`)
      }
      rows.push(row)
    }
  } finally {
    for (const t of targets) await t.cluster.close()
  }
  const table = renderTable(rows, o)
  if (o.json !== undefined) writeFileSync(o.json, JSON.stringify({ options: o, rows }, null, 2))
  return { rows, table }
}

if (import.meta.main) {
  const o = parseOptions(process.argv.slice(2))
  const { table } = await runBench(o)
  console.log(table)
}
