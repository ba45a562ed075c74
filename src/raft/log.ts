// The raft log as raft sees it: the stable part in Storage plus the
// unstable tail (entries and possibly a snapshot) that the server has not
// yet persisted. Tracks committed and applied.

import { assert } from "../lib/assert"
import { CompactedError } from "./errors"
import type { Storage } from "./storage"
import { entrySize } from "./storage"
import type { Entry, Snapshot } from "./types"

/**
 * The entries and snapshot not yet persisted; entries[k] has index offset + k.
 * Entries from offset to offsetInProgress (and the snapshot, when
 * snapshotInProgress) were handed to the server in a Ready that it is still
 * persisting (a pipelined RaftNode); the next Ready carries only those after.
 */
class Unstable {
  snapshot: Snapshot | undefined = undefined
  entries: Entry[] = []
  offsetInProgress: number
  snapshotInProgress = false
  constructor(public offset: number) {
    this.offsetInProgress = offset
  }

  /** The entries not yet handed to the server for persisting. */
  toPersist(): Entry[] {
    const from = this.offsetInProgress - this.offset
    return from === 0 ? this.entries : this.entries.slice(from)
  }

  /** The server took a Ready whose last entry is {i, t} (if any) and which carried the snapshot (if any). */
  acceptInProgress(i: number | undefined, t: number, snapshot: boolean): void {
    if (i !== undefined && this.maybeTerm(i) === t && i >= this.offsetInProgress) this.offsetInProgress = i + 1
    if (snapshot && this.snapshot !== undefined) this.snapshotInProgress = true
  }

  lastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1
    return this.snapshot?.metadata.index
  }

  maybeTerm(i: number): number | undefined {
    if (i < this.offset) {
      if (this.snapshot !== undefined && this.snapshot.metadata.index === i) return this.snapshot.metadata.term
      return undefined
    }
    return this.entries[i - this.offset]?.term
  }

  stableTo(i: number, t: number): void {
    if (i < this.offset) return
    const e = this.entries[i - this.offset]
    if (e === undefined || e.term !== t) return
    this.entries = this.entries.slice(i + 1 - this.offset)
    this.offset = i + 1
    if (this.offsetInProgress < this.offset) this.offsetInProgress = this.offset
  }

  stableSnapTo(i: number): void {
    if (this.snapshot !== undefined && this.snapshot.metadata.index === i) {
      this.snapshot = undefined
      this.snapshotInProgress = false
    }
  }

  restore(s: Snapshot): void {
    this.offset = s.metadata.index + 1
    this.offsetInProgress = this.offset
    this.entries = []
    this.snapshot = s
    this.snapshotInProgress = false
  }

  truncateAndAppend(ents: readonly Entry[]): void {
    const after = ents[0]!.index
    if (after === this.offset + this.entries.length) {
      for (const e of ents) this.entries.push(e)
    } else if (after <= this.offset) {
      // Replace everything unstable; entries from `after` on override storage.
      this.offset = after
      this.offsetInProgress = after
      this.entries = ents.slice()
    } else {
      // A write in progress of the entries cut here is overtaken: they are persisted again.
      this.entries.length = after - this.offset
      for (const e of ents) this.entries.push(e)
      if (this.offsetInProgress > after) this.offsetInProgress = after
    }
  }
}

export class RaftLog {
  readonly unstable: Unstable
  committed: number
  applied: number

  constructor(
    readonly storage: Storage,
    private readonly maxCommittedBytes: number,
  ) {
    const first = storage.firstIndex()
    const last = storage.lastIndex()
    this.unstable = new Unstable(last + 1)
    this.committed = first - 1
    this.applied = first - 1
  }

  firstIndex(): number {
    const s = this.unstable.snapshot
    return s !== undefined ? s.metadata.index + 1 : this.storage.firstIndex()
  }

  lastIndex(): number {
    return this.unstable.lastIndex() ?? this.storage.lastIndex()
  }

  lastTerm(): number {
    return this.term(this.lastIndex()) ?? 0
  }

  /** The term of entry i; undefined when compacted away, 0 beyond the last index. */
  term(i: number): number | undefined {
    const u = this.unstable.maybeTerm(i)
    if (u !== undefined) return u
    if (i > this.lastIndex()) return 0
    if (i < this.firstIndex() - 1) return undefined
    return this.storage.term(i)
  }

  matchTerm(i: number, t: number): boolean {
    return this.term(i) === t
  }

  /**
   * The last index up to which this log is on stable storage and agrees
   * with the current log (what the leader may count for itself).
   */
  persistedIndex(): number {
    if (this.unstable.snapshot !== undefined) return 0
    const stored = this.storage.lastIndex()
    return this.unstable.entries.length > 0 ? Math.min(stored, this.unstable.offset - 1) : stored
  }

  /** The follower side of AppendEntries; returns the last new index, or undefined on mismatch. */
  maybeAppend(index: number, logTerm: number, committed: number, ents: readonly Entry[]): number | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined
    const lastNew = index + ents.length
    const ci = this.findConflict(ents)
    if (ci !== 0) {
      assert(ci > this.committed, () => `entry ${ci} conflicts with committed entry (committed ${this.committed})`)
      this.append(ents.slice(ci - ents[0]!.index))
    }
    this.commitTo(Math.min(committed, lastNew))
    return lastNew
  }

  append(ents: readonly Entry[]): number {
    if (ents.length === 0) return this.lastIndex()
    const after = ents[0]!.index - 1
    assert(after >= this.committed, () => `append after ${after} is below committed ${this.committed}`)
    this.unstable.truncateAndAppend(ents)
    return this.lastIndex()
  }

  /** Index of the first entry that is new or conflicts with the log; 0 if none. */
  findConflict(ents: readonly Entry[]): number {
    for (const e of ents) if (!this.matchTerm(e.index, e.term)) return e.index
    return 0
  }

  /**
   * The largest index <= `index` whose term is <= `term` (the conflict hint
   * for fast back-tracking), with that term; term 0 when compacted.
   */
  findConflictByTerm(index: number, term: number): [number, number] {
    for (let i = index; i >= 0; i--) {
      const t = this.term(i)
      if (t === undefined) return [i, 0]
      if (t <= term) return [i, t]
    }
    return [0, 0]
  }

  /** The unstable entries still to hand to the server (those of Readies being persisted excluded). */
  unstableEntries(): Entry[] {
    return this.unstable.toPersist()
  }

  /**
   * The highest index that may be applied: the commit index, or with
   * onlyPersisted (a pipelined RaftNode, which applies before the Ready is
   * persisted) no further than what this member has persisted.
   */
  private applyLimit(onlyPersisted: boolean): number {
    return onlyPersisted ? Math.min(this.committed, this.persistedIndex()) : this.committed
  }

  hasNextCommittedEnts(onlyPersisted = false): boolean {
    return this.applyLimit(onlyPersisted) > Math.max(this.applied, this.firstIndex() - 1)
  }

  nextCommittedEnts(onlyPersisted = false): Entry[] {
    const lo = Math.max(this.applied + 1, this.firstIndex())
    const hi = this.applyLimit(onlyPersisted)
    if (hi < lo) return []
    return this.slice(lo, hi + 1, this.maxCommittedBytes)
  }

  /** Entries from i to the end, at most maxBytes (at least one). CompactedError when i is compacted. */
  entries(i: number, maxBytes: number): Entry[] {
    const last = this.lastIndex()
    if (i > last) return []
    return this.slice(i, last + 1, maxBytes)
  }

  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    if (lo === hi) return []
    if (lo < this.firstIndex()) throw new CompactedError(lo)
    assert(hi <= this.lastIndex() + 1, () => `slice hi ${hi} beyond last index ${this.lastIndex()}`)
    const u = this.unstable
    let out: Entry[] = []
    let size = 0
    if (lo < u.offset) {
      const storedHi = Math.min(hi, u.offset)
      out = this.storage.entries(lo, storedHi, maxBytes)
      if (out.length < storedHi - lo) return out // capped by size
      if (hi <= u.offset) return out
      for (const e of out) size += entrySize(e)
    }
    const from = Math.max(lo, u.offset) - u.offset
    const to = hi - u.offset
    for (let k = from; k < to; k++) {
      const e = u.entries[k]!
      size += entrySize(e)
      if (size > maxBytes && out.length > 0) break
      out.push(e)
    }
    return out
  }

  commitTo(toCommit: number): void {
    if (toCommit <= this.committed) return
    assert(toCommit <= this.lastIndex(), () => `commit ${toCommit} beyond last index ${this.lastIndex()}`)
    this.committed = toCommit
  }

  appliedTo(i: number): void {
    if (i === 0) return
    assert(i <= this.committed, () => `applied ${i} > committed ${this.committed}`)
    assert(i >= this.applied, () => `applied ${i} goes back from ${this.applied}`)
    this.applied = i
  }

  stableTo(i: number, t: number): void {
    this.unstable.stableTo(i, t)
  }

  stableSnapTo(i: number): void {
    this.unstable.stableSnapTo(i)
  }

  isUpToDate(lastIndex: number, term: number): boolean {
    const myTerm = this.lastTerm()
    return term > myTerm || (term === myTerm && lastIndex >= this.lastIndex())
  }

  /** Commits maxIndex if its entry has term `term` (§5.4.2: only entries of the current term by counting). */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.term(maxIndex) === term) {
      this.commitTo(maxIndex)
      return true
    }
    return false
  }

  restore(s: Snapshot): void {
    this.committed = s.metadata.index
    this.unstable.restore(s)
  }

  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot()
  }
}
