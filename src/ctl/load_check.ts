// The workload behind `check perf` and `check datascale`: etcdctl's loads
// (clients, rate, duration, key/value sizes), a pool of clients pulling
// requests from one paced source, and pkg/report's statistics over the
// latencies (throughput, slowest, standard deviation, errors by text).
import type { PutRequestInit } from "../pb"

export interface PerfLoad {
  /** Writes per second the check paces to (and expects at least 90% of). */
  limitPerSecond: number
  clients: number
  durationSeconds: number
}

export interface DatascaleLoad {
  keys: number
  kvBytes: number
  clients: number
}

export const PERF_LOADS: Record<string, PerfLoad> = {
  s: { limitPerSecond: 150, clients: 50, durationSeconds: 60 },
  m: { limitPerSecond: 1000, clients: 200, durationSeconds: 60 },
  l: { limitPerSecond: 8000, clients: 500, durationSeconds: 60 },
  xl: { limitPerSecond: 15000, clients: 1000, durationSeconds: 60 },
}

export const DATASCALE_LOADS: Record<string, DatascaleLoad> = {
  s: { keys: 10_000, kvBytes: 1024, clients: 50 },
  m: { keys: 100_000, kvBytes: 1024, clients: 200 },
  l: { keys: 1_000_000, kvBytes: 1024, clients: 500 },
  // 3 versions of 1M objects: the upper bound etcd aims at
  xl: { keys: 3_000_000, kvBytes: 1024, clients: 1000 },
}

const LOAD_ALIASES: Record<string, string> = { s: "s", small: "s", m: "m", medium: "m", l: "l", large: "l", xl: "xl", xLarge: "xl" }

/** The model a --load value names (etcdctl's aliases), or undefined. */
export function loadModel(name: string): string | undefined {
  return Object.hasOwn(LOAD_ALIASES, name) ? LOAD_ALIASES[name] : undefined
}

export interface LoadStats {
  /** Successful requests. */
  count: number
  rps: number
  slowestSeconds: number
  stddevSeconds: number
  /** Failed requests by error text. */
  errors: Map<string, number>
}

/** pkg/report's Stats: RPS over the whole run, population standard deviation of the latencies. */
export function summarize(latenciesSeconds: readonly number[], errors: Map<string, number>, totalSeconds: number): LoadStats {
  const count = latenciesSeconds.length
  const average = count === 0 ? 0 : latenciesSeconds.reduce((a, b) => a + b, 0) / count
  const variance = count === 0 ? 0 : latenciesSeconds.reduce((a, l) => a + (l - average) ** 2, 0) / count
  return {
    count,
    rps: totalSeconds > 0 ? count / totalSeconds : 0,
    slowestSeconds: latenciesSeconds.reduce((a, b) => Math.max(a, b), 0),
    stddevSeconds: Math.sqrt(variance),
    errors,
  }
}

/** A random key of `bytes` bytes after the prefix: a varint of a random int63, zero padded (as etcdctl's binary.PutVarint into a reused buffer). */
export function randomKey(prefix: string, bytes: number, random: () => number): Uint8Array {
  const prefixBytes = new TextEncoder().encode(prefix)
  const key = new Uint8Array(prefixBytes.length + bytes)
  key.set(prefixBytes)
  for (let i = 0; i < 8 && i < bytes; i++) key[prefixBytes.length + i] = Math.floor(random() * 256)
  return key
}

export interface LoadOptions {
  /** One function per client; each runs one request at a time. */
  clients: ReadonlyArray<(req: PutRequestInit) => Promise<unknown>>
  /** The next request, or undefined when the load is done. */
  request: () => PutRequestInit | undefined
  /** Paces requests (golang.org/x/time/rate with burst 1) and stops issuing after the duration. */
  pace?: { perSecond: number; durationMs: number }
  onDone?: () => void
  now?: () => number
  sleep?: (ms: number) => Promise<void>
}

/** Runs the load to its end; failures are counted, not thrown. */
export async function runLoad(opts: LoadOptions): Promise<LoadStats> {
  const now = opts.now ?? (() => performance.now())
  const sleep = opts.sleep ?? ((ms: number) => Bun.sleep(ms))
  const started = now()
  const intervalMs = opts.pace === undefined ? 0 : 1000 / opts.pace.perSecond
  let lastDue = -Infinity
  /** Reserves the next slot of the limiter: never earlier than one interval after the previous one. */
  const nextRequest = async (): Promise<PutRequestInit | undefined> => {
    if (opts.pace !== undefined) {
      const due = Math.max(now(), lastDue + intervalMs)
      if (due - started >= opts.pace.durationMs) return undefined
      lastDue = due
      const wait = due - now()
      if (wait > 0) await sleep(wait)
    }
    return opts.request()
  }
  const latencies: number[] = []
  const errors = new Map<string, number>()
  const worker = async (send: (req: PutRequestInit) => Promise<unknown>): Promise<void> => {
    for (let req = await nextRequest(); req !== undefined; req = await nextRequest()) {
      const t0 = now()
      try {
        await send(req)
        latencies.push((now() - t0) / 1000)
      } catch (e) {
        const text = e instanceof Error ? e.message : String(e)
        errors.set(text, (errors.get(text) ?? 0) + 1)
      }
      opts.onDone?.()
    }
  }
  await Promise.all(opts.clients.map(worker))
  return summarize(latencies, errors, (now() - started) / 1000)
}

/** etcdctl's check perf verdict: its lines (stdout) and whether it passed. */
export function perfVerdict(s: LoadStats, limitPerSecond: number): { lines: string[]; ok: boolean } {
  const lines: string[] = []
  let ok = true
  if (s.errors.size !== 0) {
    lines.push("FAIL: too many errors")
    for (const [text, n] of s.errors) lines.push(`FAIL: ERROR(${text}) -> ${n}`)
    ok = false
  }
  const writes = Math.trunc(s.rps) + 1
  if (s.rps / limitPerSecond <= 0.9) {
    lines.push(`FAIL: Throughput too low: ${writes} writes/s`)
    ok = false
  } else lines.push(`PASS: Throughput is ${writes} writes/s`)
  // slowest request over 500 ms, standard deviation over 100 ms (etcdctl prints these two without "FAIL: ")
  if (s.slowestSeconds > 0.5) {
    lines.push(`Slowest request took too long: ${s.slowestSeconds.toFixed(6)}s`)
    ok = false
  } else lines.push(`PASS: Slowest request took ${s.slowestSeconds.toFixed(6)}s`)
  if (s.stddevSeconds > 0.1) {
    lines.push(`Stddev too high: ${s.stddevSeconds.toFixed(6)}s`)
    ok = false
  } else lines.push(`PASS: Stddev is ${s.stddevSeconds.toFixed(6)}s`)
  lines.push(ok ? "PASS" : "FAIL")
  return { lines, ok }
}
