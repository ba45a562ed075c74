import { expect, test } from "bun:test"
import { join } from "node:path"
import { tempDir } from "../../test/support/tmp"
import { Backend } from "../backend/backend"
import { fromUtf8, utf8, ZERO_BYTE } from "../lib/bytes"
import { etcdMessages } from "../lib/errors"
import { KvApplier } from "./kv_applier"
import { MvccStore } from "./kv_store"
import { EventType, WatchFilterType } from "./types"
import { type WatchResponse, WatchableStore } from "./watchable_store"

const b = utf8

function setup(options: { batchEventsMax?: number; roundEventsMax?: number; fragmentBytesMax?: number } = {}) {
  const backend = Backend.open({ path: ":memory:" })
  const store = MvccStore.open({ backend })
  const kv = new KvApplier({ store })
  let scheduled: (() => void) | undefined
  const watchable = new WatchableStore({ store, schedule: (run) => (scheduled = run), ...options })
  /** Runs scheduled catch-up rounds until none is pending. */
  const drain = (roundsMax = 1000): number => {
    let rounds = 0
    while (scheduled !== undefined && rounds < roundsMax) {
      const run = scheduled
      scheduled = undefined
      run()
      rounds++
    }
    return rounds
  }
  return { store, kv, watchable, drain }
}

function collector(accept: (r: WatchResponse, all: WatchResponse[]) => boolean = () => true) {
  const responses: WatchResponse[] = []
  const send = (r: WatchResponse): boolean => {
    responses.push(r)
    return accept(r, responses)
  }
  return { responses, send }
}

const eventsOf = (responses: WatchResponse[], id: number) =>
  responses.filter((r) => r.watchId === id).flatMap((r) => r.events.map((e) => `${e.type === EventType.PUT ? "PUT" : "DEL"} ${fromUtf8(e.kv!.key)}@${e.kv!.modRevision}`))

test("WatchStream.watch() sends created first, then the events of each txn in one response", () => {
  const { kv, store, watchable } = setup()
  const c = collector()
  const stream = watchable.newStream(c.send)
  const id = stream.watch({ key: b("a"), rangeEnd: b("c") })
  expect(id).toBe(0)
  expect(c.responses[0]).toMatchObject({ watchId: 0, created: true, header: { revision: 1 } })
  const txn = store.write()
  txn.put(b("a"), b("1"), 0n)
  txn.put(b("b"), b("1"), 0n)
  txn.put(b("c"), b("1"), 0n)
  txn.end()
  kv.deleteRange({ key: b("a") })
  expect(c.responses.length).toBe(3)
  expect(c.responses[1]!.header.revision).toBe(2)
  expect(eventsOf(c.responses, 0)).toEqual(["PUT a@2", "PUT b@2", "DEL a@3"])
  expect(c.responses[2]!.events[0]!.kv).toEqual({ key: b("a"), createRevision: 0, modRevision: 3, version: 0, value: new Uint8Array(0), lease: 0n })
})

test("watch ids are assigned 0,1,2 per stream; a duplicate id or an empty range is refused", () => {
  const { watchable } = setup()
  const c = collector()
  const stream = watchable.newStream(c.send)
  expect(stream.watch({ key: b("a") })).toBe(0)
  expect(stream.watch({ key: b("a"), watchId: 5 })).toBe(5)
  expect(stream.watch({ key: b("a"), watchId: 5 })).toBe(-1)
  expect(c.responses.at(-1)).toMatchObject({ watchId: 5, created: true, canceled: true, cancelReason: etcdMessages.watchDuplicateId })
  expect(stream.watch({ key: b("b"), rangeEnd: b("a") })).toBe(-1)
  expect(c.responses.at(-1)).toMatchObject({ created: true, canceled: true, cancelReason: etcdMessages.watchRangeEmpty })
  expect(stream.watch({ key: b("a"), startRevision: -1 })).toBe(-1)
  expect(c.responses.at(-1)).toMatchObject({ watchId: -1, created: true, canceled: true, cancelReason: etcdMessages.compacted })
  expect(stream.watch({ key: b("a") })).toBe(1)
})

test("a past start revision replays history from it, inclusive, then continues live", () => {
  const { kv, watchable, drain } = setup()
  for (let i = 0; i < 5; i++) kv.put({ key: b(`k${i}`), value: b("v") }) // revisions 2..6
  const c = collector()
  const stream = watchable.newStream(c.send)
  stream.watch({ key: b("k"), rangeEnd: b("l"), startRevision: 4 })
  const single = stream.watch({ key: b("k1"), startRevision: 2 })
  drain()
  kv.put({ key: b("k1"), value: b("w") })
  expect(eventsOf(c.responses, 0)).toEqual(["PUT k2@4", "PUT k3@5", "PUT k4@6", "PUT k1@7"])
  expect(eventsOf(c.responses, single)).toEqual(["PUT k1@3", "PUT k1@7"])
})

test("a future start revision waits; an empty key watches from \\0", () => {
  const { kv, watchable } = setup()
  const c = collector()
  const stream = watchable.newStream(c.send)
  stream.watch({ key: b("k"), startRevision: 4 })
  stream.watch({ key: new Uint8Array(0), rangeEnd: ZERO_BYTE })
  for (let i = 0; i < 4; i++) kv.put({ key: b("k"), value: b("v") }) // 2..5
  expect(eventsOf(c.responses, 0)).toEqual(["PUT k@4", "PUT k@5"])
  expect(eventsOf(c.responses, 1).length).toBe(4)
})

test("prev_kv and the NOPUT/NODELETE filters, live and from history", () => {
  const { kv, watchable, drain } = setup()
  kv.put({ key: b("k"), value: b("1") }) // 2
  kv.put({ key: b("k"), value: b("2") }) // 3
  kv.deleteRange({ key: b("k") }) // 4
  for (const start of [2, 0]) {
    const c = collector()
    const stream = watchable.newStream(c.send)
    const prev = stream.watch({ key: b("k"), startRevision: start, prevKv: true })
    const noPut = stream.watch({ key: b("k"), startRevision: start, filters: [WatchFilterType.NOPUT] })
    const noDel = stream.watch({ key: b("k"), startRevision: start, filters: [WatchFilterType.NODELETE] })
    drain()
    if (start === 0) {
      kv.put({ key: b("k"), value: b("1") })
      kv.put({ key: b("k"), value: b("2") })
      kv.deleteRange({ key: b("k") })
    }
    const events = c.responses.filter((r) => r.watchId === prev).flatMap((r) => r.events)
    expect(events.map((e) => (e.prevKv ? fromUtf8(e.prevKv.value) : "-"))).toEqual(["-", "1", "2"])
    expect(eventsOf(c.responses, noPut).map((e) => e.slice(0, 3))).toEqual(["DEL"])
    expect(eventsOf(c.responses, noDel).map((e) => e.slice(0, 3))).toEqual(["PUT", "PUT"])
    stream.close()
  }
})

test("a start below the compacted revision cancels the watch with compact_revision", () => {
  const { kv, store, watchable, drain } = setup()
  for (let i = 0; i < 5; i++) kv.put({ key: b("k"), value: b("v") })
  store.compact(4)
  const c = collector()
  const stream = watchable.newStream(c.send)
  const id = stream.watch({ key: b("k"), startRevision: 3 })
  drain()
  expect(c.responses.at(-1)).toMatchObject({ watchId: id, canceled: true, compactRevision: 4, cancelReason: etcdMessages.compacted })
  const ok = stream.watch({ key: b("k"), startRevision: 4 })
  drain()
  expect(eventsOf(c.responses, ok)).toEqual(["PUT k@4", "PUT k@5", "PUT k@6"])
})

test("a blocked stream queues nothing: its watchers re-read from history after resume(), once each, in order", () => {
  const { kv, watchable, drain } = setup()
  let open = true
  const c = collector(() => open)
  const stream = watchable.newStream(c.send)
  stream.watch({ key: b("a") })
  stream.watch({ key: b("b") })
  open = false
  kv.put({ key: b("a"), value: b("1") }) // sent, then blocked
  const before = c.responses.length
  for (let i = 0; i < 50; i++) kv.put({ key: b(i % 2 ? "a" : "b"), value: b(String(i)) })
  expect(c.responses.length).toBe(before)
  expect(watchable.watcherCount()).toEqual({ synced: 0, unsynced: 2 })
  expect(stream.requestProgress()).toBe(false)
  open = true
  stream.resume()
  drain()
  kv.put({ key: b("a"), value: b("last") })
  const a = eventsOf(c.responses, 0)
  const bb = eventsOf(c.responses, 1)
  expect(a.length).toBe(1 + 25 + 1)
  expect(bb.length).toBe(25)
  const revs = a.map((e) => Number(e.split("@")[1]))
  expect(revs).toEqual([...revs].sort((x, y) => x - y))
  expect(new Set(revs).size).toBe(revs.length)
  expect(stream.requestProgress()).toBe(true)
  expect(c.responses.at(-1)).toMatchObject({ watchId: -1, header: { revision: 53 } })
})

test("one busy watcher cannot starve the others on its stream", () => {
  const { kv, watchable, drain, store } = setup({ batchEventsMax: 10, roundEventsMax: 1000 })
  for (let i = 0; i < 200; i++) kv.put({ key: b("busy"), value: b("v") })
  kv.put({ key: b("quiet"), value: b("v") })
  const c = collector()
  const stream = watchable.newStream(c.send)
  const busy = stream.watch({ key: b("busy"), startRevision: 1 })
  const quiet = stream.watch({ key: b("quiet"), startRevision: 1 })
  // After the first round both watchers got something: quiet did not wait for busy's 200 events.
  let scheduled = true
  let rounds = 0
  while (scheduled && eventsOf(c.responses, quiet).length === 0) {
    watchable.syncWatchers()
    rounds++
    scheduled = rounds < 100
  }
  expect(rounds).toBe(1)
  expect(eventsOf(c.responses, busy).length).toBeLessThan(200)
  drain()
  expect(eventsOf(c.responses, busy).length).toBe(200)
  expect(store.currentRevision()).toBe(202)
})

test("catch-up reads a range watcher's sparse history in bounded windows without losing events", () => {
  const backend = Backend.open({ path: ":memory:" })
  const store = MvccStore.open({ backend })
  const kv = new KvApplier({ store })
  let scheduled: (() => void) | undefined
  const watchable = new WatchableStore({ store, schedule: (run) => (scheduled = run), scanRowsMax: 7, batchEventsMax: 3 })
  for (let i = 0; i < 100; i++) kv.put({ key: b(i % 10 === 0 ? `w${i}` : `x${i}`), value: b("v") })
  const c = collector()
  watchable.newStream(c.send).watch({ key: b("w"), rangeEnd: b("x"), startRevision: 1 })
  while (scheduled) {
    const run = scheduled
    scheduled = undefined
    run()
  }
  expect(eventsOf(c.responses, 0).length).toBe(10)
})

test("fragment splits a large revision into parts; all but the last carry fragment", () => {
  const { store, watchable } = setup({ fragmentBytesMax: 100 })
  const c = collector()
  const stream = watchable.newStream(c.send)
  stream.watch({ key: b("k"), rangeEnd: b("l"), fragment: true })
  stream.watch({ key: b("k"), rangeEnd: b("l") })
  const txn = store.write()
  for (let i = 0; i < 5; i++) txn.put(b(`k${i}`), new Uint8Array(60), 0n)
  txn.end()
  const parts = c.responses.filter((r) => r.watchId === 0 && !r.created)
  expect(parts.length).toBe(5)
  expect(parts.map((p) => p.fragment)).toEqual([true, true, true, true, false])
  expect(c.responses.filter((r) => r.watchId === 1 && !r.created).length).toBe(1)
})

test("cancel() answers canceled and stops events; progress notify reaches idle synced watchers only", () => {
  const { kv, watchable } = setup()
  const c = collector()
  const stream = watchable.newStream(c.send)
  stream.watch({ key: b("a"), progressNotify: true })
  stream.watch({ key: b("b"), progressNotify: true })
  kv.put({ key: b("a"), value: b("1") })
  watchable.notifyProgress()
  expect(c.responses.filter((r) => r.events.length === 0 && !r.created).map((r) => r.watchId)).toEqual([1])
  expect(stream.cancel(0)).toBe(true)
  expect(c.responses.at(-1)).toMatchObject({ watchId: 0, canceled: true })
  expect(stream.cancel(0)).toBe(false)
  kv.put({ key: b("a"), value: b("2") })
  expect(eventsOf(c.responses, 0)).toEqual(["PUT a@2"])
})

test("a stream whose send throws is closed; the write that delivered to it succeeds", () => {
  const { kv, store, watchable } = setup()
  const stream = watchable.newStream((r) => {
    if (r.events.length > 0) throw new Error("socket gone")
    return true
  })
  stream.watch({ key: b("a") })
  expect(kv.put({ key: b("a"), value: b("1") }).header?.revision).toBe(2)
  expect(watchable.watcherCount()).toEqual({ synced: 0, unsynced: 0 })
  expect(store.currentRevision()).toBe(2)
})

test("a watcher that fell behind a compaction on a blocked stream is canceled with compact_revision on resume", () => {
  const { kv, store, watchable, drain } = setup()
  let open = true
  const c = collector(() => open)
  const stream = watchable.newStream(c.send)
  const id = stream.watch({ key: b("k") })
  open = false
  kv.put({ key: b("k"), value: b("1") }) // 2: delivered, stream blocks
  kv.put({ key: b("k"), value: b("2") }) // 3: missed
  kv.put({ key: b("k"), value: b("3") }) // 4
  store.compact(4)
  open = true
  stream.resume()
  drain()
  expect(eventsOf(c.responses, id)).toEqual(["PUT k@2"])
  expect(c.responses.at(-1)).toMatchObject({ watchId: id, canceled: true, compactRevision: 4, cancelReason: etcdMessages.compacted })
  expect(watchable.watcherCount()).toEqual({ synced: 0, unsynced: 0 })
})

test("synced range watchers: nested, overlapping, disjoint and from-key ranges each get exactly their keys", () => {
  const { kv, watchable } = setup()
  const c = collector()
  const stream = watchable.newStream(c.send)
  const ranges: [string, string | undefined][] = [["a", "z"], ["b", "c"], ["b", "bb"], ["ba", "d"], ["x", undefined], ["c", "ca"], ["m", "n"]]
  const ids = ranges.map(([key, end]) => stream.watch({ key: b(key), rangeEnd: end === undefined ? ZERO_BYTE : b(end) }))
  const keys = ["a", "b", "ba", "bb", "bz", "c", "c0", "ca", "m", "x", "zz", "0"]
  for (const k of keys) kv.put({ key: b(k), value: b("v") })
  ranges.forEach(([key, end], i) => {
    const expected = keys.filter((k) => k >= key && (end === undefined || k < end))
    expect(eventsOf(c.responses, ids[i]!).map((e) => e.split(" ")[1]!.split("@")[0])).toEqual(expected)
  })
})

test("catch-up rounds rotate over streams: a stream with a long history does not starve the next one", () => {
  const { kv, watchable } = setup({ batchEventsMax: 5, roundEventsMax: 5 })
  for (let i = 0; i < 100; i++) kv.put({ key: b("k"), value: b("v") })
  const busy = collector()
  const other = collector()
  watchable.newStream(busy.send).watch({ key: b("k"), startRevision: 1 })
  watchable.newStream(other.send).watch({ key: b("k"), startRevision: 1 })
  watchable.syncWatchers()
  watchable.syncWatchers()
  expect(eventsOf(busy.responses, 0).length).toBeGreaterThan(0)
  expect(eventsOf(other.responses, 0).length).toBeGreaterThan(0)
})

test("after a snapshot install, MvccStore.reload() and WatchableStore.restore() let watchers catch up from the new history", () => {
  const dir = tempDir("tskv-mvcc-install-")
  try {
    // The leader's state: 10 puts of k.
    const leaderBackend = Backend.open({ path: join(dir.path, "leader") })
    const leader = MvccStore.open({ backend: leaderBackend })
    const leaderKv = new KvApplier({ store: leader })
    for (let i = 0; i < 10; i++) leaderKv.put({ key: b("k"), value: b(String(i)) })
    leaderBackend.setConsistentIndex(10, 1)
    leaderBackend.copyTo(join(dir.path, "snap"))
    // A follower that saw only the first 3 puts, with a watcher.
    const { kv, store, watchable, drain } = setup()
    for (let i = 0; i < 3; i++) kv.put({ key: b("k"), value: b(String(i)) })
    const c = collector()
    const stream = watchable.newStream(c.send)
    const id = stream.watch({ key: b("k"), startRevision: 2 })
    drain()
    store.backend.replaceContentsFrom(join(dir.path, "snap"))
    store.reload()
    watchable.restore()
    drain()
    expect(store.currentRevision()).toBe(11)
    expect(eventsOf(c.responses, id)).toEqual(Array.from({ length: 10 }, (_, i) => `PUT k@${i + 2}`))
    leaderBackend.close()
  } finally {
    dir.remove()
  }
})
