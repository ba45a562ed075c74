// Watches over the mvcc store (etcd watchable_store.go), synchronous.
//
// A watcher is *synced* when it has seen every revision up to the current one:
// it gets the events of each write txn as the txn ends, all of one revision in
// one response. Otherwise it is *unsynced* and catches up from the history in
// the db, in bounded batches, in syncWatchers() rounds that the store
// schedules itself (or a test drives).
//
// Flow control: a WatchStream pushes responses through its `send` callback,
// which returns whether more may be sent now. Once it returns false the stream
// is *blocked*: nothing is queued in memory; a synced watcher of a blocked
// stream that gets an event becomes unsynced at that revision and re-reads it
// from the db later. `resume()` unblocks the stream and catch-up continues.
// Control responses (created, canceled, progress) are sent even when blocked;
// there is at most one per client request. Within a stream, catch-up takes one
// batch per unsynced watcher in turn, so one busy watcher cannot starve the
// others.

import { assert } from "../lib/assert"
import { keyString as keyId, ZERO_BYTE } from "../lib/bytes"
import { etcdMessages } from "../lib/errors"
import { type KeyRange, keyRange, rangeSql } from "./key_range"
import { type Change, type MvccStore, tombstoneKv } from "./kv_store"
import { type Event, EventType, type KeyValue, type ResponseHeader, revisionHeader, WatchFilterType } from "./types"

/** etcdserverpb.WatchResponse; the header carries only the revision (the server fills the rest). */
export interface WatchResponse {
  header: ResponseHeader
  watchId: number
  created: boolean
  canceled: boolean
  compactRevision: number
  cancelReason: string
  fragment: boolean
  events: Event[]
}

/** etcdserverpb.WatchCreateRequest (the fields mvcc reads). */
export interface WatchCreateRequest {
  key: Uint8Array
  rangeEnd?: Uint8Array
  startRevision?: number
  progressNotify?: boolean
  filters?: number[]
  prevKv?: boolean
  /** 0: the stream assigns the next free id. */
  watchId?: number
  fragment?: boolean
}

/** Receives a response; returns false when the consumer wants no more until it calls resume(). */
export type WatchSend = (response: WatchResponse) => boolean

export interface WatchableStoreOptions {
  store: MvccStore
  /** Runs `run` soon, outside the current call (default: setImmediate). */
  schedule?: (run: () => void) => void
  /** Event bytes one catch-up batch of one watcher may read (default 1 MiB). */
  batchBytesMax?: number
  /** Events read per watcher per batch before the batch is cut at a revision boundary (default 1000). */
  batchEventsMax?: number
  /** Events catch-up may read per syncWatchers() round, all streams together (default 2000). */
  roundEventsMax?: number
  /** A fragmenting watcher's responses are split above this size (etcd --max-request-bytes, 1.5 MiB). */
  fragmentBytesMax?: number
  /** History rows scanned per range-watcher batch (bounds the work of sparse matches; default 10000). */
  scanRowsMax?: number
}

interface HistoryRow {
  id: number
  key: Uint8Array
  main: number
  cr: number
  ver: number
  lease: string | null
  value: Uint8Array
}

class Watcher {
  /** The next revision this watcher needs. */
  nextRev: number
  synced = false
  /** Whether events were sent since the last progress notification. */
  sentSinceProgress = false

  constructor(
    readonly id: number,
    readonly stream: WatchStream,
    readonly range: KeyRange,
    readonly options: { prevKv: boolean; noPut: boolean; noDelete: boolean; progressNotify: boolean; fragment: boolean },
    nextRev: number,
  ) {
    this.nextRev = nextRev
  }
}

export class WatchableStore {
  readonly store: MvccStore
  private readonly schedule: (run: () => void) => void
  private readonly batchBytesMax: number
  private readonly batchEventsMax: number
  private readonly roundEventsMax: number
  private readonly scanRowsMax: number
  readonly fragmentBytesMax: number
  /** Events handed to watch streams (etcd_debugging_mvcc_events_total). */
  eventsSent = 0
  private readonly syncedByKey = new Map<string, Set<Watcher>>()
  private readonly syncedRanges = new Set<Watcher>()
  /** syncedRanges sorted by start key, rebuilt after a change (undefined: stale). */
  private rangeIndex: RangeIndex | undefined
  private readonly streams = new Set<WatchStream>()
  private syncScheduled = false
  private roundStart = 0

  constructor(options: WatchableStoreOptions) {
    this.store = options.store
    this.schedule = options.schedule ?? ((run) => setImmediate(run))
    this.batchBytesMax = options.batchBytesMax ?? 1 << 20
    this.batchEventsMax = options.batchEventsMax ?? 1000
    this.roundEventsMax = options.roundEventsMax ?? 2000
    this.scanRowsMax = options.scanRowsMax ?? 10_000
    this.fragmentBytesMax = options.fragmentBytesMax ?? 1_572_864
    this.store.onChanges((revision, changes) => this.notify(revision, changes))
  }

  newStream(send: WatchSend): WatchStream {
    const stream = new WatchStream(this, send)
    this.streams.add(stream)
    return stream
  }

  /** Number of open watch streams (metrics). */
  streamCount(): number {
    return this.streams.size
  }

  /** Number of watchers, synced and not (metrics). */
  watcherCount(): { synced: number; unsynced: number } {
    let synced = this.syncedRanges.size
    for (const set of this.syncedByKey.values()) synced += set.size
    let unsynced = 0
    for (const stream of this.streams) unsynced += stream.unsynced.length
    return { synced, unsynced }
  }

  /**
   * Progress notification tick (--watch-progress-notify-interval): every
   * synced watcher with progress_notify that got no events since the last tick
   * receives an empty response at the current revision.
   */
  notifyProgress(): void {
    const revision = this.store.currentRevision()
    for (const stream of this.streams) {
      for (const w of stream.watchers.values()) {
        if (!w.options.progressNotify) continue
        if (w.synced && !w.sentSinceProgress && !stream.blocked) stream.push(emptyResponse(w.id, revision))
        w.sentSinceProgress = false
      }
    }
  }

  /** One bounded round of catch-up for unsynced watchers; reschedules itself while work remains. */
  syncWatchers(): void {
    this.syncScheduled = false
    let budget = this.roundEventsMax
    let more = false
    // Each round starts at the next stream, so that busy streams cannot starve the later ones.
    const streams = [...this.streams]
    const first = streams.length === 0 ? 0 : this.roundStart++ % streams.length
    for (let i = 0; i < streams.length; i++) {
      const stream = streams[(first + i) % streams.length]!
      if (budget <= 0) {
        more = true
        break
      }
      budget -= this.syncStream(stream, budget)
      if (stream.unsynced.length > 0 && !stream.blocked) more = true
    }
    if (more) this.requestSync()
  }

  // --- used by WatchStream --------------------------------------------------

  /** @internal */
  requestSync(): void {
    if (this.syncScheduled) return
    this.syncScheduled = true
    this.schedule(() => this.syncWatchers())
  }

  /**
   * The store's contents were replaced (snapshot install): every synced
   * watcher becomes unsynced at the revision it needs next and catches up
   * from the new history (or is cancelled if that revision was compacted).
   */
  restore(): void {
    for (const stream of this.streams) {
      for (const w of stream.watchers.values()) {
        if (!w.synced) continue
        this.removeSynced(w)
        stream.unsynced.push(w)
      }
    }
    this.requestSync()
  }

  /** @internal */
  addSynced(w: Watcher): void {
    w.synced = true
    if (w.range.kind === "one") {
      const id = keyId(w.range.key)
      let set = this.syncedByKey.get(id)
      if (set === undefined) this.syncedByKey.set(id, (set = new Set()))
      set.add(w)
    } else {
      this.syncedRanges.add(w)
      this.rangeIndex = undefined
    }
  }

  /** @internal */
  removeSynced(w: Watcher): void {
    if (!w.synced) return
    w.synced = false
    if (w.range.kind === "one") {
      const id = keyId(w.range.key)
      const set = this.syncedByKey.get(id)
      set?.delete(w)
      if (set?.size === 0) this.syncedByKey.delete(id)
    } else {
      this.syncedRanges.delete(w)
      this.rangeIndex = undefined
    }
  }

  /** @internal */
  removeStream(stream: WatchStream): void {
    this.streams.delete(stream)
  }

  /** Delivers the changes of one write txn to the synced watchers. */
  private notify(revision: number, changes: readonly Change[]): void {
    if (this.syncedByKey.size === 0 && this.syncedRanges.size === 0) return
    const matched = new Map<Watcher, Change[]>()
    const add = (w: Watcher, change: Change): void => {
      if (w.nextRev > revision) return // a watcher that starts at a future revision
      const list = matched.get(w)
      if (list === undefined) matched.set(w, [change])
      else list.push(change)
    }
    if (this.rangeIndex === undefined) this.rangeIndex = new RangeIndex(this.syncedRanges)
    const ranges = this.rangeIndex
    for (const change of changes) {
      const exact = this.syncedByKey.get(keyId(change.kv.key))
      if (exact !== undefined) for (const w of exact) add(w, change)
      if (ranges.size > 0) ranges.forEachContaining(change.kv.key, (w) => add(w, change))
    }
    // The previous kvs, read once for every watcher with prev_kv (kube-apiserver's watch cache has several).
    const prevKvs = new Map<number, KeyValue | undefined>()
    for (const [w, list] of matched) {
      const stream = w.stream
      if (stream.blocked) {
        // Nothing is queued: the watcher re-reads this revision from the db once the stream resumes.
        this.removeSynced(w)
        w.nextRev = revision
        stream.unsynced.push(w)
        continue
      }
      w.nextRev = revision + 1
      const events: Event[] = []
      for (const change of list) {
        const event = this.toEvent(w, change, prevKvs)
        if (event !== undefined) events.push(event)
      }
      if (events.length > 0) stream.sendEvents(w, events, revision)
    }
  }

  private toEvent(w: Watcher, change: Change, prevKvs: Map<number, KeyValue | undefined>): Event | undefined {
    if (change.deleted ? w.options.noDelete : w.options.noPut) return undefined
    const event: Event = { type: change.deleted ? EventType.DELETE : EventType.PUT, kv: change.kv }
    if (w.options.prevKv && change.prevId > 0) {
      let prev = prevKvs.get(change.prevId)
      if (prev === undefined && !prevKvs.has(change.prevId)) {
        prev = this.store.kvById(change.prevId)
        prevKvs.set(change.prevId, prev)
      }
      if (prev !== undefined) event.prevKv = prev
    }
    return event
  }

  /** Catch-up for one stream: one batch per unsynced watcher in turn. Returns the events read. */
  private syncStream(stream: WatchStream, budget: number): number {
    let used = 0
    const current = this.store.currentRevision()
    const compacted = this.store.compactedRevision()
    let turns = stream.unsynced.length
    while (turns-- > 0 && !stream.blocked && used < budget) {
      const w = stream.unsynced.shift()
      if (w === undefined) break
      if (!stream.watchers.has(w.id) || stream.watchers.get(w.id) !== w) continue // canceled meanwhile
      if (w.nextRev < compacted) {
        stream.watchers.delete(w.id)
        stream.push({ ...emptyResponse(w.id, current), canceled: true, compactRevision: compacted, cancelReason: etcdMessages.compacted })
        continue
      }
      if (w.nextRev > current) {
        this.addSynced(w)
        continue
      }
      const batch = this.readHistory(w, current)
      used += Math.max(1, batch.events.length)
      w.nextRev = batch.nextRev
      if (batch.events.length > 0) stream.sendEvents(w, batch.events, current)
      if (w.nextRev > current) this.addSynced(w)
      else stream.unsynced.push(w)
    }
    return used
  }

  /** Reads one batch of w's events from revision w.nextRev on, ending on a revision boundary. */
  private readHistory(w: Watcher, current: number): { events: Event[]; nextRev: number } {
    const db = this.store.backend.db
    const from = w.nextRev
    let endRev = current + 1 // exclusive
    let rows: Iterable<HistoryRow>
    const columns = "id, key, main, create_rev AS cr, version AS ver, CAST(lease AS TEXT) AS lease, value"
    if (w.range.kind === "one") {
      rows = db
        .query<HistoryRow, [Uint8Array, number, number]>(`SELECT ${columns} FROM mvcc_kv WHERE key = ? AND main >= ? AND main < ? ORDER BY main, sub`)
        .iterate(w.range.key, from, endRev)
    } else {
      // Scan a bounded window of the history in revision (= id) order.
      const startId = this.firstIdAtOrAfter(from)
      const probe = db.query<{ main: number }, [number]>("SELECT main FROM mvcc_kv WHERE id >= ? ORDER BY id LIMIT 1").get(startId + this.scanRowsMax)
      if (probe !== null && probe.main < endRev) endRev = Math.max(probe.main, from + 1)
      const endId = endRev > current ? Number.MAX_SAFE_INTEGER : this.firstIdAtOrAfter(endRev)
      const cond = rangeSql(w.range, "key")
      rows = db
        .query<HistoryRow, (Uint8Array | number)[]>(`SELECT ${columns} FROM mvcc_kv WHERE id >= ? AND id < ? AND ${cond.where} ORDER BY id`)
        .iterate(startId, endId, ...cond.params)
    }
    const events: Event[] = []
    let bytes = 0
    let read = 0
    let lastRev = from
    let nextRev = endRev
    for (const row of rows) {
      if (read >= this.batchEventsMax || bytes >= this.batchBytesMax) {
        if (row.main !== lastRev) {
          nextRev = row.main // cut only between revisions
          break
        }
      }
      read++
      lastRev = row.main
      bytes += row.key.length + row.value.length + 32
      const deleted = row.ver === 0
      if (deleted ? w.options.noDelete : w.options.noPut) continue
      const kv: KeyValue = deleted
        ? tombstoneKv(row.key, row.main)
        : { key: row.key, createRevision: row.cr, modRevision: row.main, version: row.ver, value: row.value, lease: row.lease === null ? 0n : BigInt(row.lease) }
      const event: Event = { type: deleted ? EventType.DELETE : EventType.PUT, kv }
      if (w.options.prevKv && (deleted || row.ver > 1)) {
        const prev = this.prevKv(row.key, row.main)
        if (prev !== undefined) event.prevKv = prev
      }
      events.push(event)
    }
    return { events, nextRev }
  }

  private prevKv(key: Uint8Array, revision: number): KeyValue | undefined {
    const row = this.store.backend.db
      .query<HistoryRow, [Uint8Array, number]>(
        "SELECT id, key, main, create_rev AS cr, version AS ver, CAST(lease AS TEXT) AS lease, value FROM mvcc_kv WHERE key = ? AND main < ? ORDER BY main DESC LIMIT 1",
      )
      .get(key, revision)
    if (row === null || row.ver === 0) return undefined
    return { key: row.key, createRevision: row.cr, modRevision: row.main, version: row.ver, value: row.value, lease: row.lease === null ? 0n : BigInt(row.lease) }
  }

  /** The first row id whose revision is >= rev (ids grow with revisions): a binary search over ids. */
  private firstIdAtOrAfter(rev: number): number {
    const db = this.store.backend.db
    const at = db.query<{ id: number; main: number }, [number]>("SELECT id, main FROM mvcc_kv WHERE id >= ? ORDER BY id LIMIT 1")
    const last = db.query<{ id: number }, []>("SELECT id FROM mvcc_kv ORDER BY id DESC LIMIT 1").get()
    let lo = 0
    let hi = (last?.id ?? 0) + 1
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2)
      const row = at.get(mid)
      if (row === null || row.main >= rev) hi = mid
      else lo = row.id + 1
    }
    return lo
  }
}

/** The watchers of one client stream (one gRPC Watch call). */
export class WatchStream {
  /** @internal */ readonly watchers = new Map<number, Watcher>()
  /** @internal */ unsynced: Watcher[] = []
  /** @internal */ blocked = false
  private nextId = 0
  private closed = false

  /** @internal */
  constructor(
    private readonly owner: WatchableStore,
    private readonly send: WatchSend,
  ) {}

  /**
   * Creates a watcher. Sends the created response first (then events). A
   * refused watch gets etcd's created+canceled response with the reason, and
   * -1 is returned: a watch id already in use, an empty range, or a negative
   * start revision (watch_id -1, "required revision has been compacted").
   */
  watch(req: WatchCreateRequest): number {
    assert(!this.closed, "watch on a closed stream")
    const store = this.owner.store
    const current = store.currentRevision()
    const startRev = req.startRevision ?? 0
    if (startRev < 0) {
      this.push({ ...emptyResponse(-1, current), created: true, canceled: true, cancelReason: etcdMessages.compacted })
      return -1
    }
    let id = req.watchId ?? 0
    if (id !== 0 && this.watchers.has(id)) {
      this.push({ ...emptyResponse(id, current), created: true, canceled: true, cancelReason: etcdMessages.watchDuplicateId })
      return -1
    }
    const key = req.key.length === 0 ? ZERO_BYTE : req.key
    const range = keyRange(key, req.rangeEnd)
    if (range.kind === "empty") {
      this.push({ ...emptyResponse(id, current), created: true, canceled: true, cancelReason: etcdMessages.watchRangeEmpty })
      return -1
    }
    if (id === 0) {
      while (this.watchers.has(this.nextId)) this.nextId++
      id = this.nextId++
    }
    const filters = req.filters ?? []
    const w = new Watcher(
      id,
      this,
      range,
      {
        prevKv: req.prevKv ?? false,
        noPut: filters.includes(WatchFilterType.NOPUT),
        noDelete: filters.includes(WatchFilterType.NODELETE),
        progressNotify: req.progressNotify ?? false,
        fragment: req.fragment ?? false,
      },
      startRev <= 0 ? current + 1 : startRev,
    )
    this.watchers.set(id, w)
    this.push({ ...emptyResponse(id, current), created: true })
    if (this.closed) return -1
    if (w.nextRev > current) {
      this.owner.addSynced(w)
    } else {
      this.unsynced.push(w)
      this.owner.requestSync()
    }
    return id
  }

  /** Cancels a watcher and sends `{watchId, canceled: true}`; an unknown id is ignored (false). */
  cancel(id: number): boolean {
    const w = this.watchers.get(id)
    if (w === undefined) return false
    this.drop(w)
    this.push({ ...emptyResponse(id, this.owner.store.currentRevision()), canceled: true })
    return true
  }

  /**
   * WatchProgressRequest: one response with watch_id -1 at the current
   * revision, only when every watcher of the stream is synced; else nothing
   * (the client asks again). Returns whether it was sent.
   */
  requestProgress(): boolean {
    if (this.unsynced.length > 0 || this.blocked) return false
    for (const w of this.watchers.values()) if (!w.synced) return false
    this.push(emptyResponse(-1, this.owner.store.currentRevision()))
    return true
  }

  /** The consumer can take responses again: unblocks and schedules catch-up. */
  resume(): void {
    this.blocked = false
    if (this.unsynced.length > 0) this.owner.requestSync()
  }

  isBlocked(): boolean {
    return this.blocked
  }

  /** Removes every watcher; the stream sends nothing more. */
  close(): void {
    for (const w of [...this.watchers.values()]) this.drop(w)
    this.closed = true
    this.owner.removeStream(this)
  }

  /** @internal */
  push(response: WatchResponse): void {
    if (this.closed) return
    let more: boolean
    try {
      more = this.send(response)
    } catch {
      // A consumer that throws is gone; it must not break the apply that is delivering.
      this.close()
      return
    }
    if (!more) this.blocked = true
  }

  /** @internal Sends the events of a watcher, all of them in one response unless it asked for fragments. */
  sendEvents(w: Watcher, events: Event[], revision: number): void {
    w.sentSinceProgress = true
    this.owner.eventsSent += events.length
    if (!w.options.fragment) {
      this.push({ ...emptyResponse(w.id, revision), events })
      return
    }
    const max = this.owner.fragmentBytesMax
    let part: Event[] = []
    let bytes = 0
    const parts: Event[][] = []
    for (const event of events) {
      const size = eventBytes(event)
      if (part.length > 0 && bytes + size > max) {
        parts.push(part)
        part = []
        bytes = 0
      }
      part.push(event)
      bytes += size
    }
    parts.push(part)
    parts.forEach((p, i) => this.push({ ...emptyResponse(w.id, revision), events: p, fragment: i < parts.length - 1 }))
  }

  private drop(w: Watcher): void {
    this.watchers.delete(w.id)
    this.owner.removeSynced(w)
    this.unsynced = this.unsynced.filter((u) => u !== w)
  }
}

/**
 * Range watchers sorted by start key, with the running maximum of their end
 * keys: the watchers containing a key are found by a binary search and a walk
 * back that stops once no earlier range reaches the key (a couple of steps for
 * disjoint prefixes, as kube-apiserver's).
 */
class RangeIndex {
  private readonly entries: { begin: Uint8Array; end: Uint8Array | undefined; w: Watcher }[] = []
  /** maxEnds[i]: the largest end among entries[0..i]; undefined = unbounded. */
  private readonly maxEnds: (Uint8Array | undefined)[] = []

  constructor(watchers: Iterable<Watcher>) {
    for (const w of watchers) {
      const r = w.range
      if (r.kind === "from") this.entries.push({ begin: r.key, end: undefined, w })
      else if (r.kind === "between") this.entries.push({ begin: r.key, end: r.end, w })
    }
    this.entries.sort((a, b) => Buffer.compare(a.begin, b.begin))
    let max: Uint8Array | undefined = new Uint8Array(0)
    for (const e of this.entries) {
      if (max !== undefined && (e.end === undefined || Buffer.compare(e.end, max) > 0)) max = e.end
      this.maxEnds.push(max)
    }
  }

  get size(): number {
    return this.entries.length
  }

  forEachContaining(key: Uint8Array, visit: (w: Watcher) => void): void {
    let lo = 0
    let hi = this.entries.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (Buffer.compare(this.entries[mid]!.begin, key) <= 0) lo = mid + 1
      else hi = mid
    }
    for (let i = lo - 1; i >= 0; i--) {
      const reach = this.maxEnds[i]
      if (reach !== undefined && Buffer.compare(reach, key) <= 0) break
      const e = this.entries[i]!
      if (e.end === undefined || Buffer.compare(key, e.end) < 0) visit(e.w)
    }
  }
}

function emptyResponse(watchId: number, revision: number): WatchResponse {
  return { header: revisionHeader(revision), watchId, created: false, canceled: false, compactRevision: 0, cancelReason: "", fragment: false, events: [] }
}

function eventBytes(event: Event): number {
  const kv = event.kv
  const prev = event.prevKv
  return 32 + (kv ? kv.key.length + kv.value.length : 0) + (prev ? prev.key.length + prev.value.length + 32 : 0)
}


