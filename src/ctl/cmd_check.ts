// check perf and check datascale: etcdctl's built-in checks. perf writes
// 1 KiB values under a prefix at the load's rate for 60 s from many clients and
// passes when throughput is above 90% of the rate, the slowest request under
// 500 ms and the standard deviation under 100 ms. datascale writes the load's
// keys as fast as it can and reports how much the member's resident memory
// grew (its /metrics process_resident_memory_bytes). Both delete their keys
// afterwards and can compact and defragment.
import type { EtcdClient } from "../client"
import type { PutRequestInit } from "../pb"
import { prefixEnd } from "./cmd_kv"
import type { Command, Ctx } from "./context"
import { goQuote } from "./go_fmt"
import { DATASCALE_LOADS, loadModel, PERF_LOADS, perfVerdict, randomKey, runLoad } from "./load_check"
import { CtlExit, ExitCode, errorText, out } from "./output"
import { ProgressBar } from "./progress_bar"

const enc = new TextEncoder()
/** etcdctl's timeout for the delete, compaction and defragmentation after a check. */
const CLEANUP_TIMEOUT_MS = 30_000

function modelOf(ctx: Ctx): string {
  const model = loadModel(ctx.flag("load"))
  if (model === undefined) throw new CtlExit(ExitCode.badFeature, `unknown load option ${ctx.flag("load")}`)
  return model
}

/** The check refuses a prefix that already holds keys (it deletes the prefix when done). */
async function requireEmptyPrefix(client: EtcdClient, prefix: string, timeoutMs: number): Promise<void> {
  const key = enc.encode(prefix)
  let r
  try {
    r = await client.kv.range({ key, rangeEnd: prefixEnd(key), limit: 1 }, { timeoutMs })
  } catch (e) {
    throw new CtlExit(ExitCode.error, errorText(e))
  }
  if (r.kvs.length > 0) throw new CtlExit(ExitCode.invalidInput, `prefix ${goQuote(prefix)} has keys. Delete with etcdctl del --prefix ${prefix} first`)
}

/** Deletes the check's keys, then compacts and defragments as asked (etcdctl's lines). */
async function cleanUp(ctx: Ctx, client: EtcdClient, prefix: string): Promise<void> {
  const key = enc.encode(prefix)
  try {
    const del = await client.kv.deleteRange({ key, rangeEnd: prefixEnd(key) }, { timeoutMs: CLEANUP_TIMEOUT_MS })
    if (ctx.bool("auto-compact")) {
      const revision = del.header?.revision ?? 0
      out.line(`Compacting with revision ${revision}`)
      await client.kv.compact({ revision, physical: true }, { timeoutMs: CLEANUP_TIMEOUT_MS })
      out.line(`Compacted with revision ${revision}`)
    }
    if (ctx.bool("auto-defrag")) {
      for (const ep of ctx.endpoints()) {
        out.line(`Defragmenting ${goQuote(ep)}`)
        const one = ctx.clientFor([ep])
        try {
          await one.maintenance.defragment({}, { timeoutMs: CLEANUP_TIMEOUT_MS })
        } finally {
          one.close()
        }
        out.line(`Defragmented ${goQuote(ep)}`)
      }
    }
  } catch (e) {
    if (e instanceof CtlExit) throw e
    throw new CtlExit(ExitCode.error, errorText(e))
  }
}

/** Runs `body` with `count` clients of the global endpoints (one connection each, as etcdctl), closed after. */
async function withClients<T>(ctx: Ctx, count: number, body: (clients: EtcdClient[]) => Promise<T>): Promise<T> {
  const clients = Array.from({ length: count }, () => ctx.clientFor(ctx.endpoints()))
  try {
    return await body(clients)
  } finally {
    for (const c of clients) c.close()
  }
}

const putVia = (c: EtcdClient) => (req: PutRequestInit) => c.kv.put(req, { timeoutMs: 2 ** 31 - 1 })

export const checkPerf: Command = {
  async run(ctx) {
    const load = PERF_LOADS[modelOf(ctx)]!
    const prefix = ctx.flag("prefix")
    return await withClients(ctx, load.clients, async (clients) => {
      const first = clients[0]!
      await requireEmptyPrefix(first, prefix, load.durationSeconds * 1000)
      const value = new Uint8Array(1024)
      const bar = new ProgressBar(load.durationSeconds)
      const ticks = setInterval(() => bar.add(), 1000)
      const stats = await runLoad({
        clients: clients.map(putVia),
        request: () => ({ key: randomKey(prefix, 256, Math.random), value }),
        pace: { perSecond: load.limitPerSecond, durationMs: load.durationSeconds * 1000 },
      })
      clearInterval(ticks)
      bar.finish()
      await cleanUp(ctx, first, prefix)
      const verdict = perfVerdict(stats, load.limitPerSecond)
      for (const line of verdict.lines) out.line(line)
      return verdict.ok ? ExitCode.success : ExitCode.error
    })
  },
}

/** etcdctl's endpointMemoryMetrics: the member's resident memory from its /metrics, or 0 after printing why not. */
async function residentMemoryBytes(endpoint: string): Promise<number> {
  const url = `${endpoint.startsWith("http://") ? endpoint : `http://${endpoint}`}/metrics`
  let text: string
  try {
    text = await (await fetch(url)).text()
  } catch (e) {
    out.line(`fetch error: ${errorText(e)}`)
    return 0
  }
  const key = "process_resident_memory_bytes"
  const line = text.split("\n").find((l) => l.startsWith(key))
  if (line === undefined) {
    out.line(`could not find: ${key}`)
    return 0
  }
  const value = Number(line.slice(key.length).trim())
  if (Number.isNaN(value)) {
    out.line(`parse error: strconv.ParseFloat: parsing ${goQuote(line.slice(key.length).trim())}: invalid syntax`)
    return 0
  }
  return value
}

/** The resident memory, or undefined after printing etcdctl's FAIL line. */
async function memorySample(endpoint: string, when: "before" | "after"): Promise<number | undefined> {
  const bytes = await residentMemoryBytes(endpoint)
  if (bytes !== 0) return bytes
  out.line(`FAIL: Could not read process_resident_memory_bytes ${when} the put operations.`)
  return undefined
}

export const checkDatascale: Command = {
  async run(ctx) {
    const load = DATASCALE_LOADS[modelOf(ctx)]!
    const prefix = ctx.flag("prefix")
    // "If multiple endpoints are provided, first endpoint will be used."
    const endpoint = ctx.endpoints()[0] ?? "127.0.0.1:2379"
    return await withClients(ctx, load.clients, async (clients) => {
      const first = clients[0]!
      // etcdctl waits without limit here (a dead endpoint hangs it): the command timeout ends that
      await requireEmptyPrefix(first, prefix, ctx.commandTimeoutMs)
      const before = await memorySample(endpoint, "before")
      if (before === undefined) return ExitCode.error
      out.line(`Start data scale check for work load [${load.keys} key-value pairs, ${load.kvBytes} bytes per key-value, ${load.clients} concurrent clients].`)
      const bar = new ProgressBar(load.keys)
      const value = new Uint8Array(load.kvBytes / 2)
      let issued = 0
      const stats = await runLoad({
        clients: clients.map(putVia),
        request: () => (issued++ < load.keys ? { key: randomKey(prefix, load.kvBytes / 2, Math.random), value } : undefined),
        onDone: () => bar.add(),
      })
      bar.finish()
      const after = await memorySample(endpoint, "after")
      if (after === undefined) return ExitCode.error
      await cleanUp(ctx, first, prefix)
      if (stats.errors.size !== 0) {
        out.line("FAIL: too many errors")
        for (const [text, n] of stats.errors) out.line(`FAIL: ERROR(${text}) -> ${n}`)
        return ExitCode.error
      }
      out.line(`PASS: Approximate system memory used : ${((after - before) / (1024 * 1024)).toFixed(2)} MB.`)
    })
  },
}
