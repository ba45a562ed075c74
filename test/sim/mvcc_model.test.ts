// Randomized model test: mvcc against a naive reference that keeps the whole
// key space at every revision. Ranges at random revisions, compactions,
// commits, clean restarts and crashes (the open batch lost). Replays from the
// seed printed in the test name; TSKV_SEED=<n> runs one seed.

import { expect, test } from "bun:test"
import { join } from "node:path"
import { Backend } from "../../src/backend/backend"
import { compareBytes, fromUtf8, utf8, ZERO_BYTE } from "../../src/lib/bytes"
import { type Prng, seededPrng } from "../../src/lib/prng"
import { KvApplier } from "../../src/mvcc/kv_applier"
import { MvccStore } from "../../src/mvcc/kv_store"
import { EventType, type KeyValue, type RequestOp } from "../../src/mvcc/types"
import { type WatchResponse, WatchableStore } from "../../src/mvcc/watchable_store"
import { tempDir } from "../support/tmp"

type State = Map<string, KeyValue>

class Reference {
  /** states[rev] = the key space at revision rev (rev 1 is empty). */
  states: State[] = [new Map(), new Map()]
  compacted = 0

  current(): number {
    return this.states.length - 1
  }

  /** Applies one write txn: puts and deletes in order; returns whether something changed. */
  apply(ops: ({ put: [string, string, bigint] } | { del: [string, string | undefined] })[]): void {
    const next = new Map(this.states[this.current()]!)
    const rev = this.current() + 1
    let changed = false
    for (const op of ops) {
      if ("put" in op) {
        const [key, value, lease] = op.put
        const prev = next.get(key)
        next.set(key, { key: utf8(key), value: utf8(value), lease, modRevision: rev, createRevision: prev?.createRevision ?? rev, version: (prev?.version ?? 0) + 1 })
        changed = true
      } else {
        for (const key of [...next.keys()]) {
          if (inRange(key, op.del[0], op.del[1])) {
            next.delete(key)
            changed = true
          }
        }
      }
    }
    if (changed) this.states.push(next)
  }

  range(key: string, end: string | undefined, rev: number): KeyValue[] {
    const state = this.states[rev]!
    return [...state.values()].filter((kv) => inRange(fromUtf8(kv.key), key, end)).sort((a, b) => compareBytes(a.key, b.key))
  }
}

function inRange(k: string, key: string, end: string | undefined): boolean {
  if (end === undefined) return k === key
  if (end === "\0") return k >= key
  return k >= key && k < end
}

const KEYS = ["a", "b", "ba", "bb", "c", "d", "e", "f"]

function randomKey(prng: Prng): string {
  return KEYS[prng.int(KEYS.length)]!
}

function randomRange(prng: Prng): [string, string | undefined] {
  const key = randomKey(prng)
  const r = prng.int(4)
  if (r === 0) return [key, undefined]
  if (r === 1) return [key, "\0"]
  return [key, randomKey(prng)]
}

const rangeEndBytes = (end: string | undefined): Uint8Array | undefined => (end === undefined ? undefined : end === "\0" ? ZERO_BYTE : utf8(end))

function runModel(seed: number, steps: number): void {
  const prng = seededPrng(seed)
  const dir = tempDir("tskv-mvcc-model-")
  try {
    const path = join(dir.path, "db")
    let backend = Backend.open({ path })
    let store = MvccStore.open({ backend, compactionBatchLimit: 1 + prng.int(5) })
    let kv = new KvApplier({ store, leaseExists: () => true })
    const ref = new Reference()
    let committed = { rev: 1, compacted: 0 }
    for (let step = 0; step < steps; step++) {
      const what = prng.int(100)
      if (what < 35) {
        const key = randomKey(prng)
        const value = `v${step}`
        const lease = prng.int(3) === 0 ? 0x7fff_ffff_ffff_0000n + BigInt(prng.int(3)) : 0n
        kv.put({ key: utf8(key), value: utf8(value), lease })
        ref.apply([{ put: [key, value, lease] }])
      } else if (what < 45) {
        const [key, end] = randomRange(prng)
        kv.deleteRange({ key: utf8(key), ...(end === undefined ? {} : { rangeEnd: rangeEndBytes(end)! }) })
        ref.apply([{ del: [key, end] }])
      } else if (what < 55) {
        // A txn of distinct puts and a delete that overlaps none of them.
        const ops: RequestOp[] = []
        const refOps: ({ put: [string, string, bigint] } | { del: [string, string | undefined] })[] = []
        const used = new Set<string>()
        for (let i = 0; i < 1 + prng.int(3); i++) {
          const key = randomKey(prng)
          if (used.has(key)) continue
          used.add(key)
          ops.push({ requestPut: { key: utf8(key), value: utf8(`t${step}.${i}`) } })
          refOps.push({ put: [key, `t${step}.${i}`, 0n] })
        }
        const delKey = randomKey(prng)
        if (!used.has(delKey)) {
          ops.push({ requestDeleteRange: { key: utf8(delKey) } })
          refOps.push({ del: [delKey, undefined] })
        }
        kv.txn({ compare: [], success: ops, failure: [] })
        ref.apply(refOps)
      } else if (what < 80) {
        const [key, end] = randomRange(prng)
        const span = ref.current() - ref.compacted + 1
        const rev = ref.compacted === 0 ? 1 + prng.int(ref.current()) : ref.compacted + prng.int(span)
        const got = store.range(utf8(key), rangeEndBytes(end), { revision: rev })
        expect(got.kvs).toEqual(ref.range(key, end, rev))
        expect(got.count).toBe(got.kvs.length)
        if (ref.compacted > 1) {
          const below = 1 + prng.int(ref.compacted - 1)
          expect(() => store.range(utf8(key), rangeEndBytes(end), { revision: below })).toThrow("required revision has been compacted")
        }
      } else if (what < 85) {
        const target = ref.compacted + 1 + prng.int(Math.max(1, ref.current() - ref.compacted))
        if (target <= ref.current()) {
          store.compact(target)
          ref.compacted = target
        }
      } else if (what < 92) {
        store.compactStep()
      } else if (what < 96) {
        backend.commit()
        committed = { rev: ref.current(), compacted: ref.compacted }
      } else {
        const crash = prng.int(2) === 0
        const hashBefore = crash ? undefined : store.hashKV(0)
        if (crash) {
          backend.db.close() // the open batch is lost
          ref.states.length = committed.rev + 1
          ref.compacted = committed.compacted
        } else {
          backend.close()
        }
        committed = { rev: ref.current(), compacted: ref.compacted }
        backend = Backend.open({ path })
        store = MvccStore.open({ backend, compactionBatchLimit: 1 + prng.int(5) })
        kv = new KvApplier({ store, leaseExists: () => true })
        expect(store.currentRevision()).toBe(ref.current())
        expect(store.compactedRevision()).toBe(ref.compacted)
        if (hashBefore !== undefined) expect(store.hashKV(0)).toEqual(hashBefore)
      }
    }
    // Everything at every readable revision.
    for (let rev = Math.max(1, ref.compacted); rev <= ref.current(); rev++) {
      expect(store.range(ZERO_BYTE, ZERO_BYTE, { revision: rev }).kvs).toEqual(ref.range("\0", "\0", rev))
    }
    store.finishCompaction()
    for (let rev = Math.max(1, ref.compacted); rev <= ref.current(); rev++) {
      expect(store.range(ZERO_BYTE, ZERO_BYTE, { revision: rev }).kvs).toEqual(ref.range("\0", "\0", rev))
    }
    backend.close()
  } finally {
    dir.remove()
  }
}

/** A watcher from revision 1 on a stream that blocks at random sees every change exactly once, in order. */
function runWatchModel(seed: number, steps: number): void {
  const prng = seededPrng(seed)
  const backend = Backend.open({ path: ":memory:" })
  const store = MvccStore.open({ backend })
  const kv = new KvApplier({ store, leaseExists: () => true })
  let scheduled: (() => void) | undefined
  const watchable = new WatchableStore({ store, schedule: (run) => (scheduled = run), batchEventsMax: 1 + prng.int(10), roundEventsMax: 1 + prng.int(50), scanRowsMax: 1 + prng.int(20) })
  const ref = new Reference()
  const got = new Map<number, string[]>()
  const stream = watchable.newStream((r: WatchResponse) => {
    for (const e of r.events) {
      const list = got.get(r.watchId) ?? []
      list.push(`${e.type === EventType.PUT ? "P" : "D"}:${fromUtf8(e.kv!.key)}@${e.kv!.modRevision}${e.prevKv ? `<${fromUtf8(e.prevKv.value)}` : ""}`)
      got.set(r.watchId, list)
    }
    return prng.int(4) !== 0
  })
  const watches: { id: number; key: string; end: string | undefined; start: number }[] = []
  for (let step = 0; step < steps; step++) {
    const what = prng.int(100)
    if (what < 50) {
      const key = randomKey(prng)
      kv.put({ key: utf8(key), value: utf8(`v${step}`) })
      ref.apply([{ put: [key, `v${step}`, 0n] }])
    } else if (what < 60) {
      const [key, end] = randomRange(prng)
      kv.deleteRange({ key: utf8(key), ...(end === undefined ? {} : { rangeEnd: rangeEndBytes(end)! }) })
      ref.apply([{ del: [key, end] }])
    } else if (what < 65 && watches.length < 6) {
      const [key, end] = randomRange(prng)
      if (end !== undefined && end !== "\0" && key >= end) continue
      const start = 1 + prng.int(ref.current() + 2)
      const id = stream.watch({ key: utf8(key), ...(end === undefined ? {} : { rangeEnd: rangeEndBytes(end)! }), startRevision: start, prevKv: true })
      watches.push({ id, key, end, start })
    } else if (what < 85) {
      stream.resume()
    } else if (scheduled) {
      const run = scheduled
      scheduled = undefined
      run()
    }
  }
  stream.resume()
  for (let i = 0; scheduled && i < 100_000; i++) {
    const run = scheduled
    scheduled = undefined
    run()
    stream.resume()
  }
  for (const w of watches) {
    const expected: string[] = []
    for (let rev = Math.max(2, w.start); rev <= ref.current(); rev++) {
      const before = ref.states[rev - 1]!
      const after = ref.states[rev]!
      const keys = new Set([...before.keys(), ...after.keys()].filter((k) => inRange(k, w.key, w.end)))
      for (const k of [...keys].sort()) {
        const a = after.get(k)
        const p = before.get(k)
        if (a && a.modRevision === rev) expected.push(`P:${k}@${rev}${p ? `<${fromUtf8(p.value)}` : ""}`)
        else if (!a && p) expected.push(`D:${k}@${rev}<${fromUtf8(p.value)}`)
      }
    }
    expect(got.get(w.id) ?? []).toEqual(expected)
  }
}

const seeds = process.env.TSKV_SEED ? [Number(process.env.TSKV_SEED)] : [1, 2, 3, 4, 5, 6]

for (const seed of seeds) {
  test(`sim: mvcc matches the naive model across compactions and restarts (seed ${seed})`, () => {
    runModel(seed, 1500)
  })
  test(`sim: watchers on a randomly blocking stream see every change once, in order (seed ${seed})`, () => {
    runWatchModel(seed, 600)
  })
}
