// The stable part of the raft log, as the server persisted it. raft reads
// it; only the server writes it (after the WAL made the data durable), the
// way etcd's raftexample and etcdserver keep the WAL-recovered log in a
// MemoryStorage.

import { assert, assertIndex } from "../lib/assert"
import { CompactedError, SnapshotTemporarilyUnavailableError } from "./errors"
import type { ConfState, Entry, HardState, Snapshot } from "./types"
import { EMPTY_HARD_STATE, EntryType } from "./types"

export interface InitialState {
  hardState: HardState
  /** The configuration as of the storage's snapshot. */
  confState: ConfState
}

/** What raft reads. Every method is synchronous and cheap. */
export interface Storage {
  initialState(): InitialState
  /**
   * Entries [lo, hi), at most `maxBytes` of them by entrySize() but always at
   * least one when lo < hi. Throws CompactedError when lo < firstIndex().
   */
  entries(lo: number, hi: number, maxBytes: number): Entry[]
  /** Term of entry i, for firstIndex()-1 <= i <= lastIndex(); CompactedError below. */
  term(i: number): number
  /** Index of the first entry still kept (snapshot index + 1). */
  firstIndex(): number
  lastIndex(): number
  /** The newest snapshot; SnapshotTemporarilyUnavailableError while one is being made. */
  snapshot(): Snapshot
}

/** Bytes an entry counts for against maxSizePerMsgBytes and friends. */
export function entrySize(e: Entry): number {
  return e.data.length + 16
}

const EMPTY_DATA = new Uint8Array(0)

function emptySnapshot(): Snapshot {
  return { metadata: { index: 0, term: 0, confState: { voters: [], learners: [] } }, data: EMPTY_DATA }
}

/**
 * An in-memory Storage. `ents[head]` is a dummy entry at the snapshot's
 * index and term; the entry with index i sits at ents[head + i - offset].
 * append() is amortized O(1); compact() moves `head` and only copies the
 * array when the dead prefix is larger than the live part (amortized O(1)).
 */
export class MemoryStorage implements Storage {
  private hardState: HardState = EMPTY_HARD_STATE
  private snap: Snapshot = emptySnapshot()
  private ents: Entry[] = [{ term: 0, index: 0, type: EntryType.Normal, data: EMPTY_DATA }]
  private head = 0
  /** Set by tests and the server while it is making a snapshot. */
  snapshotUnavailable = false

  private get offset(): number {
    return this.ents[this.head]!.index
  }

  initialState(): InitialState {
    return { hardState: this.hardState, confState: this.snap.metadata.confState }
  }

  setHardState(hs: HardState): void {
    assertIndex(hs.term, "hardState.term")
    assertIndex(hs.commit, "hardState.commit")
    this.hardState = hs
  }

  firstIndex(): number {
    return this.offset + 1
  }

  lastIndex(): number {
    return this.offset + this.ents.length - this.head - 1
  }

  term(i: number): number {
    const offset = this.offset
    if (i < offset) throw new CompactedError(i)
    assert(i <= this.lastIndex(), () => `term(${i}) beyond last index ${this.lastIndex()}`)
    return this.ents[this.head + i - offset]!.term
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    const offset = this.offset
    if (lo <= offset) throw new CompactedError(lo)
    assert(hi <= this.lastIndex() + 1, () => `entries hi ${hi} beyond last index ${this.lastIndex()}`)
    assert(lo <= hi, () => `entries lo ${lo} > hi ${hi}`)
    const start = this.head + lo - offset
    let end = this.head + hi - offset
    if (maxBytes !== Number.POSITIVE_INFINITY && end - start > 1) {
      let size = entrySize(this.ents[start]!)
      for (let k = start + 1; k < end; k++) {
        size += entrySize(this.ents[k]!)
        if (size > maxBytes) {
          end = k
          break
        }
      }
    }
    return this.ents.slice(start, end)
  }

  snapshot(): Snapshot {
    if (this.snapshotUnavailable) throw new SnapshotTemporarilyUnavailableError()
    return this.snap
  }

  /** Replaces everything with the snapshot (a follower caught up by InstallSnapshot). */
  applySnapshot(snap: Snapshot): void {
    assert(snap.metadata.index > this.snap.metadata.index, () =>
      `snapshot ${snap.metadata.index} is not newer than ${this.snap.metadata.index}`)
    this.snap = snap
    this.ents = [{ term: snap.metadata.term, index: snap.metadata.index, type: EntryType.Normal, data: EMPTY_DATA }]
    this.head = 0
  }

  /**
   * Records a snapshot of the applied state at index i (<= lastIndex) and
   * returns it; the log is untouched (call compact() to release entries).
   */
  createSnapshot(i: number, confState: ConfState, data: Uint8Array): Snapshot {
    assert(i > this.snap.metadata.index, () => `snapshot ${i} is not newer than ${this.snap.metadata.index}`)
    assert(i <= this.lastIndex(), () => `snapshot ${i} beyond last index ${this.lastIndex()}`)
    this.snap = { metadata: { index: i, term: this.term(i), confState }, data }
    return this.snap
  }

  /** Discards entries up to and including i (i must be <= lastIndex). No-op when already compacted. */
  compact(i: number): void {
    const offset = this.offset
    if (i <= offset) return
    assert(i <= this.lastIndex(), () => `compact ${i} beyond last index ${this.lastIndex()}`)
    const newHead = this.head + i - offset
    const kept = this.ents[newHead]!
    this.ents[newHead] = { term: kept.term, index: kept.index, type: EntryType.Normal, data: EMPTY_DATA }
    this.head = newHead
    if (this.head > 64 && this.head * 2 > this.ents.length) {
      this.ents = this.ents.slice(this.head)
      this.head = 0
    }
  }

  /**
   * Appends entries, replacing any stored entries from entries[0].index on
   * (a leader overwrote this follower's uncommitted tail). Entries at or
   * below the snapshot index are ignored.
   */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return
    const first = this.firstIndex()
    const last = entries[entries.length - 1]!.index
    if (last < first) return
    let k = 0
    if (entries[0]!.index < first) k = first - entries[0]!.index
    const from = entries[k]!.index
    assert(from <= this.lastIndex() + 1, () => `append at ${from} leaves a gap after ${this.lastIndex()}`)
    const pos = this.head + from - this.offset
    if (pos < this.ents.length) this.ents.length = pos
    for (; k < entries.length; k++) this.ents.push(entries[k]!)
  }
}
