import { expect, test } from "bun:test"
import { CompactedError } from "./errors"
import { Inflights } from "./progress"
import { MemoryStorage } from "./storage"
import type { Entry } from "./types"
import { EntryType } from "./types"

function ents(from: number, to: number, term = 1): Entry[] {
  const out: Entry[] = []
  for (let i = from; i <= to; i++) out.push({ term, index: i, type: EntryType.Normal, data: new Uint8Array(10) })
  return out
}

test("MemoryStorage.append() replaces a conflicting tail and ignores compacted entries", () => {
  const s = new MemoryStorage()
  s.append(ents(1, 10))
  s.append(ents(6, 8, 2))
  expect(s.lastIndex()).toBe(8)
  expect(s.term(6)).toBe(2)
  expect(s.term(5)).toBe(1)
  s.compact(5)
  s.append(ents(3, 9, 2))
  expect(s.firstIndex()).toBe(6)
  expect(s.lastIndex()).toBe(9)
})

test("MemoryStorage.entries() honours maxBytes but returns at least one entry", () => {
  const s = new MemoryStorage()
  s.append(ents(1, 10))
  expect(s.entries(1, 11, 60)).toHaveLength(2) // 26 bytes each
  expect(s.entries(1, 11, 1)).toHaveLength(1)
  expect(s.entries(3, 5, Infinity).map((e) => e.index)).toEqual([3, 4])
})

test("MemoryStorage.compact() drops the prefix and raises CompactedError below it", () => {
  const s = new MemoryStorage()
  s.append(ents(1, 1000))
  for (let i = 10; i <= 990; i += 10) s.compact(i)
  expect(s.firstIndex()).toBe(991)
  expect(s.term(990)).toBe(1)
  expect(() => s.term(989)).toThrow(CompactedError)
  expect(() => s.entries(990, 992, Infinity)).toThrow(CompactedError)
  expect(s.entries(991, 1001, Infinity)).toHaveLength(10)
})

test("MemoryStorage.append() and compact() stay fast on a long log (amortized O(1))", () => {
  const s = new MemoryStorage()
  const start = performance.now()
  for (let i = 1; i <= 200_000; i++) {
    s.append([{ term: 1, index: i, type: EntryType.Normal, data: new Uint8Array(0) }])
    if (i % 100 === 0) s.compact(i - 50)
  }
  expect(s.lastIndex()).toBe(200_000)
  expect(performance.now() - start).toBeLessThan(2000)
})

test("MemoryStorage.createSnapshot() and applySnapshot() move the snapshot forward only", () => {
  const s = new MemoryStorage()
  s.append(ents(1, 10))
  const snap = s.createSnapshot(5, { voters: [1n], learners: [] }, new Uint8Array([1]))
  expect(snap.metadata).toEqual({ index: 5, term: 1, confState: { voters: [1n], learners: [] } })
  const t = new MemoryStorage()
  t.applySnapshot(snap)
  expect(t.firstIndex()).toBe(6)
  expect(t.lastIndex()).toBe(5)
  expect(t.initialState().confState.voters).toEqual([1n])
  expect(() => t.applySnapshot(snap)).toThrow()
})

test("Inflights frees every message up to an acknowledged index and reports full", () => {
  const f = new Inflights(3)
  f.add(5)
  f.add(7)
  f.add(9)
  expect(f.full()).toBe(true)
  f.freeLE(7)
  expect(f.count).toBe(1)
  f.add(11)
  f.add(12)
  expect(f.full()).toBe(true)
  f.freeLE(100)
  expect(f.count).toBe(0)
})
