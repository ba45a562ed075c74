import { expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Backend } from "../backend/backend"
import { fromUtf8, utf8, ZERO_BYTE } from "../lib/bytes"
import { isTskvError } from "../lib/errors"
import { KvApplier } from "./kv_applier"
import { type Change, MvccStore } from "./kv_store"
import { SortOrder, SortTarget } from "./types"

function openStore(): { store: MvccStore; kv: KvApplier; backend: Backend } {
  const backend = Backend.open({ path: ":memory:" })
  const store = MvccStore.open({ backend })
  return { store, backend, kv: new KvApplier({ store, leaseExists: (id) => id === 7n }) }
}

const b = utf8
const keys = (kvs: { key: Uint8Array }[]): string[] => kvs.map((kv) => fromUtf8(kv.key))

function expectCode(fn: () => unknown, code: string): void {
  try {
    fn()
  } catch (e) {
    expect(isTskvError(e) ? e.code : String(e)).toBe(code)
    return
  }
  throw new Error(`expected ${code}`)
}

test("MvccStore starts at revision 1 and each write txn bumps main once", () => {
  const { store, kv } = openStore()
  expect(store.currentRevision()).toBe(1)
  expect(kv.put({ key: b("a"), value: b("1") }).header?.revision).toBe(2)
  const txn = store.write()
  txn.put(b("b"), b("1"), 0n)
  txn.put(b("c"), b("1"), 0n)
  expect(txn.end().revision).toBe(3)
  const [bb, cc] = store.range(b("b"), b("d")).kvs
  expect(bb?.modRevision).toBe(3)
  expect(cc?.modRevision).toBe(3)
})

test("MvccStore.range() does not bump the revision; an empty write txn does not either", () => {
  const { store, kv } = openStore()
  kv.put({ key: b("a"), value: b("1") })
  store.range(b("a"), undefined)
  expect(kv.deleteRange({ key: b("zz") })).toEqual({ header: expect.anything(), deleted: 0, prevKvs: [] })
  expect(store.currentRevision()).toBe(2)
})

test("put: version counts from 1, create revision kept, re-creation restarts version", () => {
  const { store, kv } = openStore()
  kv.put({ key: b("k"), value: b("1") })
  kv.put({ key: b("k"), value: b("1") })
  expect(store.range(b("k"), undefined).kvs[0]).toMatchObject({ createRevision: 2, modRevision: 3, version: 2 })
  kv.deleteRange({ key: b("k") })
  kv.put({ key: b("k"), value: b("2") })
  expect(store.range(b("k"), undefined).kvs[0]).toMatchObject({ createRevision: 5, modRevision: 5, version: 1 })
})

test("range_end rules: single key, from key, prefix end, whole keyspace", () => {
  const { store, kv } = openStore()
  for (const k of ["a", "b", "ba", "bb", "c"]) kv.put({ key: b(k), value: b(k) })
  expect(keys(store.range(b("b"), undefined).kvs)).toEqual(["b"])
  expect(keys(store.range(b("b"), ZERO_BYTE).kvs)).toEqual(["b", "ba", "bb", "c"])
  expect(keys(store.range(b("b"), b("c")).kvs)).toEqual(["b", "ba", "bb"])
  expect(keys(store.range(ZERO_BYTE, ZERO_BYTE).kvs)).toEqual(["a", "b", "ba", "bb", "c"])
  expect(store.range(b("c"), b("a")).kvs).toEqual([])
})

test("range at a past revision sees the keys as they were; tombstones hide keys", () => {
  const { store, kv } = openStore()
  kv.put({ key: b("a"), value: b("1") }) // 2
  kv.put({ key: b("b"), value: b("1") }) // 3
  kv.put({ key: b("a"), value: b("2") }) // 4
  kv.deleteRange({ key: b("b") }) // 5
  expect(store.range(b("a"), b("z"), { revision: 3 }).kvs.map((k) => fromUtf8(k.value))).toEqual(["1", "1"])
  expect(keys(store.range(b("a"), b("z"), { revision: 5 }).kvs)).toEqual(["a"])
  expect(store.range(b("a"), b("z"), { revision: 1 }).kvs).toEqual([])
  expect(store.range(b("a"), b("z"), { revision: 4 }).count).toBe(2)
})

test("range errors: future revision; compacted revision; the compact revision itself is readable", () => {
  const { store, kv } = openStore()
  for (let i = 0; i < 5; i++) kv.put({ key: b("k"), value: b(String(i)) })
  expectCode(() => store.range(b("k"), undefined, { revision: 7 }), "futureRev")
  store.compact(4)
  expectCode(() => store.range(b("k"), undefined, { revision: 3 }), "compacted")
  expect(fromUtf8(store.range(b("k"), undefined, { revision: 4 }).kvs[0]!.value)).toBe("2")
  store.finishCompaction()
  expect(fromUtf8(store.range(b("k"), undefined, { revision: 4 }).kvs[0]!.value)).toBe("2")
  expectCode(() => store.compact(4), "compacted")
  expectCode(() => store.compact(3), "compacted")
  expectCode(() => store.compact(9), "futureRev")
})

test("rangeRequest: limit and more; count ignores limit and filters", () => {
  const { store, kv } = openStore()
  for (const k of ["a", "b", "c"]) kv.put({ key: b(k), value: b(k) })
  const r = store.rangeRequest({ key: b("a"), rangeEnd: b("z"), limit: 1 })
  expect(keys(r.kvs)).toEqual(["a"])
  expect(r.more).toBe(true)
  expect(r.count).toBe(3)
  expect(store.rangeRequest({ key: b("a"), rangeEnd: b("z"), limit: 3 }).more).toBe(false)
  const f = store.rangeRequest({ key: b("a"), rangeEnd: b("z"), minModRevision: 3 })
  expect(keys(f.kvs)).toEqual(["b", "c"])
  expect(f.count).toBe(3)
  const g = store.rangeRequest({ key: b("a"), rangeEnd: b("z"), maxCreateRevision: 2, limit: 5 })
  expect(keys(g.kvs)).toEqual(["a"])
  expect(store.rangeRequest({ key: b("a"), rangeEnd: b("z"), countOnly: true })).toMatchObject({ kvs: [], count: 3, more: false })
  expect(store.rangeRequest({ key: b("a"), keysOnly: true }).kvs[0]?.value.length).toBe(0)
  expect(store.rangeRequest({ key: b("a") }).header?.revision).toBe(4)
})

test("rangeRequest: sort order and target; target without order ascends", () => {
  const { store, kv } = openStore()
  kv.put({ key: b("a"), value: b("z") })
  kv.put({ key: b("b"), value: b("y") })
  kv.put({ key: b("c"), value: b("x") })
  kv.put({ key: b("a"), value: b("w") })
  const range = { key: b("a"), rangeEnd: b("z") }
  expect(keys(store.rangeRequest({ ...range, sortOrder: SortOrder.DESCEND }).kvs)).toEqual(["c", "b", "a"])
  expect(keys(store.rangeRequest({ ...range, sortTarget: SortTarget.MOD }).kvs)).toEqual(["b", "c", "a"])
  expect(keys(store.rangeRequest({ ...range, sortTarget: SortTarget.VALUE, sortOrder: SortOrder.ASCEND }).kvs)).toEqual(["a", "c", "b"])
  expect(keys(store.rangeRequest({ ...range, sortTarget: SortTarget.VERSION, sortOrder: SortOrder.DESCEND, limit: 1 }).kvs)).toEqual(["a"])
  // etcd 3.4 takes an unknown order: the whole range by key, unsorted, then the limit
  expect(keys(store.rangeRequest({ ...range, sortOrder: 9 }).kvs)).toEqual(["a", "b", "c"])
  expect(store.rangeRequest({ ...range, sortOrder: 7, limit: 1 })).toMatchObject({ more: true, count: 3 })
  expectCode(() => store.rangeRequest({ ...range, sortTarget: 9 }), "invalidSortOption")
})

test("put: prev_kv, ignore_value, ignore_lease, lease hook, key not found", () => {
  const { store, kv } = openStore()
  expect(kv.put({ key: b("k"), value: b("1"), prevKv: true }).prevKv).toBeUndefined()
  expect(kv.put({ key: b("k"), value: b("2"), lease: 7n, prevKv: true }).prevKv).toMatchObject({ value: b("1"), version: 1 })
  kv.put({ key: b("k"), ignoreValue: true })
  expect(store.range(b("k"), undefined).kvs[0]).toMatchObject({ value: b("2"), lease: 0n, version: 3 })
  kv.put({ key: b("k"), value: b("3"), lease: 7n })
  kv.put({ key: b("k"), value: b("4"), ignoreLease: true })
  expect(store.range(b("k"), undefined).kvs[0]).toMatchObject({ value: b("4"), lease: 7n })
  expectCode(() => kv.put({ key: b("nope"), ignoreValue: true }), "keyNotFound")
  expectCode(() => kv.put({ key: b("nope"), value: b("1"), ignoreLease: true }), "keyNotFound")
  expectCode(() => kv.put({ key: b("k"), value: b("1"), lease: 8n }), "leaseNotFound")
  expect(store.currentRevision()).toBe(6)
})

test("lease ids above 2^53 survive exactly; onLeaseChange sees attach and detach", () => {
  const backend = Backend.open({ path: ":memory:" })
  const store = MvccStore.open({ backend })
  const big = 0x7fff_ffff_ffff_fff1n
  const seen: string[] = []
  store.onLeaseChange((key, previous, next) => seen.push(`${fromUtf8(key)}:${previous}->${next}`))
  const kv = new KvApplier({ store, leaseExists: () => true })
  kv.put({ key: b("k"), value: b("1"), lease: big })
  expect(store.range(b("k"), undefined).kvs[0]?.lease).toBe(big)
  kv.put({ key: b("k"), value: b("1") })
  kv.put({ key: b("k"), value: b("1"), lease: 5n })
  kv.deleteRange({ key: b("k") })
  expect(seen).toEqual([`k:0->${big}`, `k:${big}->0`, "k:0->5", "k:5->0"])
})

test("deleteRange: all keys share one revision; prev_kvs; DELETE changes carry key and mod revision only", () => {
  const { store, kv } = openStore()
  for (const k of ["a", "b", "c"]) kv.put({ key: b(k), value: b(k) })
  const changes: Change[] = []
  store.onChanges((_rev, cs) => changes.push(...cs))
  const r = kv.deleteRange({ key: b("a"), rangeEnd: b("c"), prevKv: true })
  expect(r.deleted).toBe(2)
  expect(keys(r.prevKvs)).toEqual(["a", "b"])
  expect(r.header?.revision).toBe(5)
  expect(changes.map((c) => c.kv)).toEqual([
    { key: b("a"), createRevision: 0, modRevision: 5, version: 0, value: new Uint8Array(0), lease: 0n },
    { key: b("b"), createRevision: 0, modRevision: 5, version: 0, value: new Uint8Array(0), lease: 0n },
  ])
  expect(changes.every((c) => c.deleted && c.prevId > 0)).toBe(true)
})

test("WriteTxn.range() sees earlier writes of the same txn at the txn's revision", () => {
  const { store } = openStore()
  const txn = store.write()
  expect(txn.range(b("a"), undefined).revision).toBe(1)
  txn.put(b("a"), b("1"), 0n)
  const r = txn.range(b("a"), undefined)
  expect(r.revision).toBe(2)
  expect(keys(r.kvs)).toEqual(["a"])
  expect(txn.range(b("a"), undefined, { revision: 1 }).kvs).toEqual([])
  txn.deleteRange(b("a"), undefined)
  expect(txn.range(b("a"), undefined).kvs).toEqual([])
  txn.end()
  expect(store.currentRevision()).toBe(2)
})

test("compaction keeps the newest revision <= rev of every live key and drops deleted keys' history", () => {
  const backend = Backend.open({ path: ":memory:" })
  const store = MvccStore.open({ backend, compactionBatchLimit: 2 })
  const kv = new KvApplier({ store })
  kv.put({ key: b("a"), value: b("1") }) // 2
  kv.put({ key: b("a"), value: b("2") }) // 3
  kv.put({ key: b("b"), value: b("1") }) // 4
  kv.deleteRange({ key: b("b") }) // 5
  kv.put({ key: b("a"), value: b("3") }) // 6
  store.compact(5)
  let steps = 0
  while (store.compactStep()) steps++
  expect(steps).toBeGreaterThan(1)
  const rows = backend.db.query<{ main: number }, []>("SELECT main FROM mvcc_kv ORDER BY id").all()
  expect(rows.map((r) => r.main)).toEqual([3, 6])
  expect(fromUtf8(store.range(b("a"), undefined, { revision: 5 }).kvs[0]!.value)).toBe("2")
  expect(store.range(b("b"), undefined, { revision: 5 }).kvs).toEqual([])
})

test("hashKV: equal stores hash equal; errors for compacted and future revisions", () => {
  const one = openStore()
  const two = openStore()
  for (const s of [one, two]) {
    s.kv.put({ key: b("a"), value: b("1") })
    s.kv.put({ key: b("a"), value: b("2") })
    s.kv.put({ key: b("b"), value: b("1") })
  }
  two.store.compact(3)
  const h1 = one.store.hashKV(0)
  expect(h1).toEqual({ hash: expect.any(Number), compactRevision: 0, hashRevision: 4 })
  expect(one.store.hashKV(3).hash).not.toBe(h1.hash)
  one.store.compact(3)
  expect(one.store.hashKV(0)).toEqual(two.store.hashKV(0))
  expect(one.store.hash()).toBe(two.store.hash())
  expectCode(() => one.store.hashKV(2), "compacted")
  expectCode(() => one.store.hashKV(5), "futureRev")
})

test("MvccStore reopens at the last committed batch (no clean shutdown)", () => {
  const dir = mkdtempSync(join(tmpdir(), "tskv-mvcc-"))
  try {
    const path = join(dir, "db")
    const backend = Backend.open({ path })
    const store = MvccStore.open({ backend })
    const kv = new KvApplier({ store })
    for (let i = 0; i < 10; i++) kv.put({ key: b(`k${i % 3}`), value: b(String(i)) })
    store.compact(5)
    store.compactStep(3)
    backend.setConsistentIndex(10, 1)
    backend.commit()
    const hash = store.hashKV(0)
    const committedRevision = store.currentRevision()
    kv.put({ key: b("lost"), value: b("x") })
    backend.db.close() // crash: the open batch is lost
    const reopened = MvccStore.open({ backend: Backend.open({ path }) })
    expect(reopened.currentRevision()).toBe(committedRevision)
    expect(reopened.compactedRevision()).toBe(5)
    expect(reopened.range(b("lost"), undefined).kvs).toEqual([])
    expect(reopened.hashKV(0)).toEqual(hash)
    reopened.backend.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test("MvccStore.deleteKeys() deletes a revoked lease's keys in one revision and skips missing ones", () => {
  const { store, kv } = openStore()
  kv.put({ key: b("a"), value: b("1"), lease: 7n })
  kv.put({ key: b("b"), value: b("1"), lease: 7n })
  const revisions: number[] = []
  store.onChanges((rev, changes) => revisions.push(rev, changes.length))
  expect(store.deleteKeys([b("a"), b("b"), b("gone")])).toEqual({ revision: 4, deleted: 2 })
  expect(revisions).toEqual([4, 2])
  expect(store.deleteKeys([b("gone")])).toEqual({ revision: 4, deleted: 0 })
  expect(store.keyCount()).toBe(0)
})

test("range at a past revision answers with the current revision in its header, as etcd", () => {
  const { store, kv } = openStore()
  for (let i = 0; i < 3; i++) kv.put({ key: b("a"), value: b(String(i)) })
  const r = store.rangeRequest({ key: b("a"), revision: 2 })
  expect(r.kvs[0]?.modRevision).toBe(2)
  expect(r.header?.revision).toBe(4)
})

test("a store restored from a streamed backend snapshot has the same revisions, keys and hashKV", () => {
  const dir = mkdtempSync(join(tmpdir(), "tskv-mvcc-"))
  try {
    const backend = Backend.open({ path: join(dir, "db") })
    const store = MvccStore.open({ backend })
    const kv = new KvApplier({ store })
    for (let i = 0; i < 50; i++) kv.put({ key: b(`k${i % 7}`), value: b(String(i)) })
    store.compact(30)
    backend.setConsistentIndex(50, 2)
    const snap = backend.snapshot(join(dir, "snap"))
    const target = join(dir, "restored")
    Backend.restore(snap.chunks(1000), target)
    snap.close()
    const restored = MvccStore.open({ backend: Backend.open({ path: target }) })
    expect(restored.backend.consistentIndex()).toEqual({ index: 50, term: 2 })
    expect(restored.currentRevision()).toBe(51)
    expect(restored.compactedRevision()).toBe(30)
    expect(restored.hashKV(0)).toEqual(store.hashKV(0))
    restored.backend.close()
    backend.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test("the in-memory latest versions agree with the db across deletes, txns, overflow and replaced contents", () => {
  const dir = mkdtempSync(join(tmpdir(), "tskv-latest-cache-"))
  try {
    const backend = Backend.open({ path: join(dir, "db") })
    const store = MvccStore.open({ backend, latestCacheKeys: 2 })
    const kv = new KvApplier({ store, leaseExists: (id) => id === 7n })
    const at = (key: string): [number, number, number, bigint] => {
      const got = store.range(b(key), undefined).kvs[0]
      return got === undefined ? [0, 0, 0, 0n] : [got.createRevision, got.modRevision, got.version, got.lease]
    }
    kv.put({ key: b("a"), value: b("1") }) // rev 2
    kv.put({ key: b("a"), value: b("2"), lease: 7n }) // rev 3
    expect(at("a")).toEqual([2, 3, 2, 7n])
    kv.deleteRange({ key: b("a") }) // rev 4
    kv.put({ key: b("a"), value: b("3") }) // rev 5: a new life, version 1, no lease
    expect(at("a")).toEqual([5, 5, 1, 0n])
    // two puts of one key in one txn: the second sees the first
    const txn = store.write()
    txn.put(b("t"), b("1"), 0n)
    txn.put(b("t"), b("2"), 0n)
    txn.end() // rev 6
    expect(at("t")).toEqual([6, 6, 2, 0n])
    // more keys than the cache holds: it empties and refills, the versions stay right
    for (const key of ["x", "y", "z", "a", "t"]) kv.put({ key: b(key), value: b("v") })
    expect(at("a")).toEqual([5, 10, 2, 0n])
    expect(at("t")).toEqual([6, 11, 3, 0n])
    // ignore_lease reads the cached lease
    kv.put({ key: b("a"), value: b("L"), lease: 7n })
    kv.put({ key: b("a"), value: b("M"), ignoreLease: true })
    expect(at("a")).toEqual([5, 13, 4, 7n])
    // contents replaced by an older copy (a snapshot from the leader): nothing cached survives
    const copy = join(dir, "copy")
    backend.copyTo(copy)
    kv.put({ key: b("a"), value: b("after copy") })
    backend.replaceContentsFrom(copy)
    store.reload()
    expect(at("a")).toEqual([5, 13, 4, 7n])
    kv.put({ key: b("a"), value: b("N") })
    expect(at("a")).toEqual([5, 14, 5, 0n])
    backend.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test("ranges at past revisions (recent: from the rows written since; older: from history) agree with a model", () => {
  const { store, kv } = openStore()
  const names = "abcdefghijkl".split("")
  // The model: the live kvs after every revision.
  const states = new Map<number, Map<string, { modRevision: number; version: number; value: string }>>()
  let live = new Map<string, { modRevision: number; version: number; value: string }>()
  states.set(store.currentRevision(), new Map(live))
  let seed = 7
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    return seed % n
  }
  for (let step = 0; step < 600; step++) {
    live = new Map(live)
    const p = rnd(10)
    if (p < 6) {
      const name = names[rnd(names.length)]!
      const rev = kv.put({ key: b(name), value: b(`v${step}`) }).header!.revision
      live.set(name, { modRevision: rev, version: (live.get(name)?.version ?? 0) + 1, value: `v${step}` })
    } else if (p < 8) {
      const name = names[rnd(names.length)]!
      const res = kv.deleteRange({ key: b(name) })
      if (res.deleted > 0) live.delete(name)
    } else if (p < 9) {
      // a txn writing several keys in one revision, one of them deleted
      const [x, y, z] = [names[rnd(4)]!, names[4 + rnd(4)]!, names[8 + rnd(4)]!]
      const res = kv.txn({ compare: [], success: [{ requestPut: { key: b(x), value: b(`t${step}`) } }, { requestPut: { key: b(y), value: b(`t${step}`) } }, { requestDeleteRange: { key: b(z) } }], failure: [] })
      const rev = res.header!.revision
      live.set(x, { modRevision: rev, version: (live.get(x)?.version ?? 0) + 1, value: `t${step}` })
      live.set(y, { modRevision: rev, version: (live.get(y)?.version ?? 0) + 1, value: `t${step}` })
      live.delete(z)
    } else if (step > 300 && rnd(4) === 0) {
      const target = store.currentRevision() - 40
      if (target > store.compactedRevision()) {
        store.compact(target)
        store.finishCompaction()
      }
    }
    states.set(store.currentRevision(), live)
    // Read at a random kept revision, recent or old.
    const current = store.currentRevision()
    const low = Math.max(1, store.compactedRevision())
    const at = rnd(3) === 0 ? low + rnd(current - low + 1) : Math.max(low, current - rnd(8))
    const from = names[rnd(6)]!
    const end = rnd(3) === 0 ? undefined : rnd(2) === 0 ? ZERO_BYTE : b(names[6 + rnd(6)]!)
    const limit = rnd(3) === 0 ? 0 : 1 + rnd(5)
    const countOnly = rnd(5) === 0
    const keysOnly = rnd(5) === 0
    const res = kv.range({ key: b(from), ...(end === undefined ? {} : { rangeEnd: end }), limit, revision: at, countOnly, keysOnly })
    const state = states.get(at)!
    const want = [...state.entries()]
      .filter(([k]) => (end === undefined ? k === from : k >= from && (end === ZERO_BYTE || k < fromUtf8(end))))
      .sort(([a], [c]) => (a < c ? -1 : 1))
    expect(res.count).toBe(want.length)
    const page = countOnly ? [] : limit > 0 ? want.slice(0, limit) : want
    expect(res.more).toBe(!countOnly && limit > 0 && want.length > limit)
    expect(res.kvs.map((x) => [fromUtf8(x.key), x.modRevision, x.version, fromUtf8(x.value)])).toEqual(
      page.map(([k, v]) => [k, v.modRevision, v.version, keysOnly ? "" : v.value]),
    )
  }
})
