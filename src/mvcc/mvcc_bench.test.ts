// mvcc benchmarks: tiny in every `bun test`, full size with TSKV_BENCH=1.
//   TSKV_BENCH=1 npx bun test src/mvcc/mvcc_bench

import { expect, test } from "bun:test"
import { statSync } from "node:fs"
import { join } from "node:path"
import { tempDir } from "../../test/support/tmp"
import { Backend } from "../backend/backend"
import { utf8 } from "../lib/bytes"
import { KvApplier } from "./kv_applier"
import { MvccStore } from "./kv_store"
import { WatchableStore } from "./watchable_store"

const full = process.env.TSKV_BENCH === "1"
const size = (tiny: number, big: number): number => (full ? big : tiny)
/** Full runs take minutes on a busy 2-core machine. */
const timeout = full ? 900_000 : 20_000

/** CPU microseconds (user + system) spent since `start`: less noisy than wall time on a shared machine. */
function cpuUs(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start)
  return used.user + used.system
}

function report(name: string, figures: Record<string, number | string>): void {
  console.log(`benchmark: ${name}: ${Object.entries(figures).map(([k, v]) => `${k}=${typeof v === "number" ? Math.round(v * 100) / 100 : v}`).join(" ")}`)
}

function keyOf(i: number): Uint8Array {
  return utf8(`/registry/pods/default/pod-${i.toString().padStart(8, "0")}`)
}

function fileBytes(path: string): number {
  let total = 0
  for (const suffix of ["", "-wal"]) {
    try {
      total += statSync(path + suffix).size
    } catch {
      // no such file
    }
  }
  return total
}

test("benchmark: mvcc puts/s and ranges/s in process (256 B values)", () => {
  const dir = tempDir("tskv-mvcc-bench-")
  try {
    const backend = Backend.open({ path: join(dir.path, "db") })
    const store = MvccStore.open({ backend })
    const kv = new KvApplier({ store })
    const puts = size(2_000, 300_000)
    const keyCount = size(500, 10_000)
    const keys = Array.from({ length: keyCount }, (_, i) => keyOf(i))
    const value = new Uint8Array(256).fill(97)
    let cpu = process.cpuUsage()
    let started = performance.now()
    for (let i = 0; i < puts; i++) {
      kv.put({ key: keys[i % keyCount]!, value })
      backend.noteWrites(1)
    }
    backend.commit()
    const putMs = performance.now() - started
    const putCpuUs = cpuUs(cpu)
    const ranges = size(2_000, 200_000)
    cpu = process.cpuUsage()
    started = performance.now()
    let found = 0
    for (let i = 0; i < ranges; i++) found += kv.range({ key: keys[(i * 7919) % keyCount]! }).kvs.length
    const rangeMs = performance.now() - started
    const rangeCpuUs = cpuUs(cpu)
    const prefixRanges = size(50, 2_000)
    const prefix = utf8("/registry/pods/default/")
    const prefixEnd = utf8("/registry/pods/default0")
    started = performance.now()
    for (let i = 0; i < prefixRanges; i++) found += kv.range({ key: prefix, rangeEnd: prefixEnd, limit: 100 }).kvs.length
    const prefixMs = performance.now() - started
    started = performance.now()
    const pastRev = Math.floor(store.currentRevision() / 2)
    for (let i = 0; i < ranges; i++) found += kv.range({ key: keys[(i * 7919) % keyCount]!, revision: pastRev }).kvs.length
    const pastMs = performance.now() - started
    report("mvcc put+range", {
      puts,
      keys: keyCount,
      putsPerSec: (puts / putMs) * 1000,
      usPerPut: (putMs * 1000) / puts,
      cpuUsPerPut: putCpuUs / puts,
      cpuUsPerRange: rangeCpuUs / ranges,
      rangesPerSec: (ranges / rangeMs) * 1000,
      pastRevisionRangesPerSec: (ranges / pastMs) * 1000,
      prefixLimit100PerSec: (prefixRanges / prefixMs) * 1000,
      revision: store.currentRevision(),
    })
    expect(store.currentRevision()).toBe(puts + 1)
    expect(found).toBeGreaterThan(0)
    backend.close()
  } finally {
    dir.remove()
  }
}, timeout)

test("benchmark: mvcc with 1M keys: db size, RSS, open time, compaction's longest stall", () => {
  const dir = tempDir("tskv-mvcc-bench-")
  try {
    const path = join(dir.path, "db")
    const keyCount = size(2_000, 1_000_000)
    const value = new Uint8Array(100).fill(98)
    const rssBefore = process.memoryUsage().rss
    let backend = Backend.open({ path })
    let store = MvccStore.open({ backend })
    let started = performance.now()
    const perTxn = 100
    for (let i = 0; i < keyCount; i += perTxn) {
      const txn = store.write()
      for (let j = i; j < Math.min(keyCount, i + perTxn); j++) txn.put(keyOf(j), value, 0n)
      txn.end()
      backend.noteWrites(perTxn)
    }
    // a second version of every 4th key, so that compaction has work
    for (let i = 0; i < keyCount; i += 4 * perTxn) {
      const txn = store.write()
      for (let j = i; j < Math.min(keyCount, i + 4 * perTxn); j += 4) txn.put(keyOf(j), value, 0n)
      txn.end()
      backend.noteWrites(perTxn)
    }
    backend.commit()
    const loadMs = performance.now() - started
    const revision = store.currentRevision()
    backend.close()
    started = performance.now()
    backend = Backend.open({ path })
    store = MvccStore.open({ backend })
    const kv = new KvApplier({ store })
    const first = kv.range({ key: keyOf(keyCount - 1) })
    const openMs = performance.now() - started
    started = performance.now()
    const count = kv.range({ key: utf8("/registry/"), rangeEnd: utf8("/registry0"), countOnly: true }).count
    const countMs = performance.now() - started
    store.compact(revision)
    started = performance.now()
    store.finishCompaction()
    const compactMs = performance.now() - started
    backend.commit()
    const dbBytesCompacted = backend.sizeBytes()
    const reclaim = backend.defrag({ pagesPerStep: 1024 })
    const rewrite = backend.defrag({ rewrite: true })
    report("mvcc 1M keys", {
      keys: keyCount,
      loadMs,
      dbMiB: fileBytes(path) / 2 ** 20,
      rssDeltaMiB: (process.memoryUsage().rss - rssBefore) / 2 ** 20,
      openMs,
      countAllMs: countMs,
      compactMs,
      compactionLongestStallMs: store.compactionStepMsMax,
      dbMiBAfterCompaction: dbBytesCompacted / 2 ** 20,
      defragStepsFreedMiB: reclaim.freedBytes / 2 ** 20,
      defragStepsLongestPauseMs: reclaim.pauseMsMax,
      defragRewriteFreedMiB: rewrite.freedBytes / 2 ** 20,
      defragRewritePauseMs: rewrite.pauseMsMax,
    })
    expect(first.kvs.length).toBe(1)
    expect(count).toBe(keyCount)
    expect(store.currentRevision()).toBe(revision)
    backend.close()
  } finally {
    dir.remove()
  }
}, timeout)

test("benchmark: watch events/s to synced watchers and catch-up from history", () => {
  const backend = Backend.open({ path: ":memory:" })
  const store = MvccStore.open({ backend })
  const kv = new KvApplier({ store })
  let scheduled: (() => void) | undefined
  const watchable = new WatchableStore({ store, schedule: (run) => (scheduled = run) })
  let events = 0
  const stream = watchable.newStream((r) => {
    events += r.events.length
    return true
  })
  for (let i = 0; i < 100; i++) stream.watch({ key: keyOf(i) })
  stream.watch({ key: utf8("/registry/"), rangeEnd: utf8("/registry0") })
  const puts = size(2_000, 200_000)
  const value = new Uint8Array(256)
  let started = performance.now()
  for (let i = 0; i < puts; i++) kv.put({ key: keyOf(i % 1000), value })
  const liveMs = performance.now() - started
  const live = events
  const catchUp = watchable.newStream((r) => {
    events += r.events.length
    return true
  })
  catchUp.watch({ key: utf8("/registry/"), rangeEnd: utf8("/registry0"), startRevision: 2 })
  started = performance.now()
  while (scheduled) {
    const run = scheduled
    scheduled = undefined
    run()
  }
  const catchUpMs = performance.now() - started
  report("watch", { puts, liveEvents: live, putsPerSecWithWatchers: (puts / liveMs) * 1000, catchUpEventsPerSec: ((events - live) / catchUpMs) * 1000 })
  expect(live).toBe(puts + Math.min(puts, 100 * Math.ceil(puts / 1000)))
  expect(events - live).toBe(puts)
}, timeout)
