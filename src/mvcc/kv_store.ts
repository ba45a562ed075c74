// The multi-version key-value store over the backend's SQLite db.
//
// Tables (created here, in the Backend's db):
//   mvcc_kv     every revision of every key still kept: one row per change,
//               rowid `id` in revision order (main, sub); a delete is a
//               tombstone row with version 0. Index (key, main, version)
//               serves reads at past revisions and compaction.
//   mvcc_latest the live keys at the current revision: key -> id of its newest
//               row, plus create revision, version and lease so that a put
//               needs one lookup. This is etcd's in-memory treeIndex kept in
//               SQLite: opening costs nothing, whatever the size of the data.
// A read at a recent past revision (a list's next page at its first page's
// revision) reads mvcc_latest too and looks up in history only the keys
// written since (the first row id of each of the last revisions is kept).
// Meta (Backend.setMeta): mvcc_compact_rev (reads below it are refused),
// mvcc_compact_cursor (id up to which the pending compaction has deleted;
// -1 when no compaction is pending).
//
// Writes happen only inside the backend's open batch; mvcc never commits: the
// server calls setConsistentIndex() and noteWrites() after applying an entry.
// Everything is synchronous: the server applies raft entries one at a time.

import type { Statement } from "bun:sqlite"
import type { Backend } from "../backend/backend"
import { assert } from "../lib/assert"
import { compareBytes, EMPTY, keyString as cacheKey } from "../lib/bytes"
import { TskvError } from "../lib/errors"
import { inRange, type KeyRange, keyRange, rangeSql } from "./key_range"
import { type KeyValue, type RangeRequest, type RangeResponse, revisionHeader, SortOrder, SortTarget } from "./types"

export interface MvccStoreOptions {
  backend: Backend
  /** Rows examined per compactStep() (etcd --compaction-batch-limit: 1000). */
  compactionBatchLimit?: number
  /** Keys whose latest version is kept in memory (default 256Ki, about 150 bytes each: 40 MiB). */
  latestCacheKeys?: number
}

/** One change made by a write txn, as watchers see it. */
export interface Change {
  /** PUT: the full new KeyValue; DELETE: `{key, modRevision}`, the rest zero. */
  kv: KeyValue
  deleted: boolean
  /** Row id of the key's previous revision (0: the key did not exist); for prev_kv. */
  prevId: number
}

/** Called after every write txn that changed something, with its revision and changes in order. */
export type ChangeListener = (revision: number, changes: readonly Change[]) => void

/** Called whenever a key's lease changes (the lessor keeps lease -> keys). */
export type LeaseListener = (key: Uint8Array, previous: bigint, next: bigint) => void

export interface RangeOptions {
  limit?: number
  /** <= 0: the current revision. */
  revision?: number
  keysOnly?: boolean
  countOnly?: boolean
}

export interface RangeResult {
  kvs: KeyValue[]
  /** Number of keys in the range at that revision, regardless of limit. */
  count: number
  /** The store's revision at read time, whatever revision was read (etcd's header revision). */
  revision: number
}

export interface HashResult {
  hash: number
  compactRevision: number
  hashRevision: number
}

interface KvRow {
  key: Uint8Array
  main: number
  cr: number
  ver: number
  lease: string | null
  value: Uint8Array
}

interface LatestRow {
  id: number
  cr: number
  ver: number
  lease: string | null
}

const LATEST_CACHE_KEYS = 1 << 18
/** Revisions whose first row id is remembered (a power of two), for reads at a recent revision. */
const RECENT_REVISIONS = 1 << 14
/** Rows written since a revision up to which a read at it looks only at the keys they wrote. */
const RECENT_ROWS_MAX = 4096

interface ScanRow {
  id: number
  key: Uint8Array
  main: number
  ver: number
}

const META_COMPACT_REV = "mvcc_compact_rev"
const META_COMPACT_CURSOR = "mvcc_compact_cursor"
const KV_COLUMNS = "k.key AS key, k.main AS main, k.create_rev AS cr, k.version AS ver, CAST(k.lease AS TEXT) AS lease"

/** What etcd's mvcc metrics observe (durations in ms). */
export interface MvccObserver {
  hash(ms: number): void
  hashKV(ms: number): void
  /** compact(): the revision is recorded (etcd's index compaction pause). */
  compactIndex(ms: number): void
  /** One batch of row deletions; totalMs when it was the last one. */
  compactStep(step: { deleted: number; ms: number; totalMs: number | undefined }): void
}

export class MvccStore {
  readonly backend: Backend
  private currentRev: number
  private compactRev: number
  /** Id after which the pending compaction resumes; -1: none pending. */
  private compactCursor: number
  private readonly compactionBatchLimit: number
  private activeTxn: WriteTxn | undefined
  private readonly changeListeners: ChangeListener[] = []
  private readonly leaseListeners: LeaseListener[] = []
  /** Longest single compactStep() in milliseconds (the longest write stall compaction caused). */
  compactionStepMsMax = 0
  /** Timings and counts for etcd's mvcc metrics (set by the server's metrics). */
  observer: MvccObserver | undefined
  private compactionStartedMs = 0

  private readonly stmt: {
    getLatest: Statement<LatestRow, [Uint8Array]>
    insertKv: Statement<unknown, [Uint8Array, number, number, number, number, bigint | null, Uint8Array]>
    upsertLatest: Statement<unknown, [Uint8Array, number, number, number, bigint | null]>
    deleteLatest: Statement<unknown, [Uint8Array]>
    kvById: Statement<KvRow, [number]>
    kvKeyById: Statement<KvRow, [number]>
    tail: Statement<{ key: Uint8Array }, [number, number]>
    idAt: Statement<{ id: number; ver: number }, [Uint8Array, number]>
    scan: Statement<ScanRow, [number, number]>
    newerExists: Statement<{ one: number }, [Uint8Array, number, number]>
    deleteId: Statement<unknown, [number]>
    oneLatest: Statement<KvRow, [Uint8Array]>
    oneLatestKey: Statement<KvRow, [Uint8Array]>
    oneAt: Statement<KvRow, [Uint8Array, number]>
  }

  private constructor(options: MvccStoreOptions) {
    this.backend = options.backend
    this.compactionBatchLimit = options.compactionBatchLimit ?? 1000
    this.latestCacheKeys = options.latestCacheKeys ?? LATEST_CACHE_KEYS
    const db = this.backend.db
    db.exec(`CREATE TABLE IF NOT EXISTS mvcc_kv (
      id INTEGER PRIMARY KEY, key BLOB NOT NULL, main INTEGER NOT NULL, sub INTEGER NOT NULL,
      create_rev INTEGER NOT NULL, version INTEGER NOT NULL, lease INTEGER, value BLOB NOT NULL)`)
    db.exec("CREATE INDEX IF NOT EXISTS mvcc_kv_key ON mvcc_kv (key, main, version)")
    db.exec(`CREATE TABLE IF NOT EXISTS mvcc_latest (
      key BLOB PRIMARY KEY, id INTEGER NOT NULL, create_rev INTEGER NOT NULL, version INTEGER NOT NULL,
      lease INTEGER) WITHOUT ROWID`)
    this.stmt = {
      getLatest: db.query("SELECT id, create_rev AS cr, version AS ver, CAST(lease AS TEXT) AS lease FROM mvcc_latest WHERE key = ?"),
      insertKv: db.query("INSERT INTO mvcc_kv (key, main, sub, create_rev, version, lease, value) VALUES (?, ?, ?, ?, ?, ?, ?)"),
      upsertLatest: db.query(
        `INSERT INTO mvcc_latest (key, id, create_rev, version, lease) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(key) DO UPDATE SET id = excluded.id, create_rev = excluded.create_rev,
         version = excluded.version, lease = excluded.lease`,
      ),
      deleteLatest: db.query("DELETE FROM mvcc_latest WHERE key = ?"),
      kvById: db.query(`SELECT ${KV_COLUMNS}, k.value AS value FROM mvcc_kv k WHERE k.id = ?`),
      kvKeyById: db.query(`SELECT ${KV_COLUMNS}, x'' AS value FROM mvcc_kv k WHERE k.id = ?`),
      tail: db.query("SELECT key FROM mvcc_kv WHERE id >= ? ORDER BY id LIMIT ?"),
      idAt: db.query("SELECT id, version AS ver FROM mvcc_kv WHERE key = ? AND main <= ? ORDER BY main DESC LIMIT 1"),
      scan: db.query("SELECT id, key, main, version AS ver FROM mvcc_kv WHERE id > ? ORDER BY id LIMIT ?"),
      newerExists: db.query("SELECT 1 AS one FROM mvcc_kv WHERE key = ? AND main > ? AND main <= ? LIMIT 1"),
      deleteId: db.query("DELETE FROM mvcc_kv WHERE id = ?"),
      oneLatest: db.query(`SELECT ${KV_COLUMNS}, k.value AS value FROM mvcc_kv k WHERE k.id = (SELECT id FROM mvcc_latest WHERE key = ?)`),
      oneLatestKey: db.query(`SELECT ${KV_COLUMNS}, x'' AS value FROM mvcc_kv k WHERE k.id = (SELECT id FROM mvcc_latest WHERE key = ?)`),
      oneAt: db.query(`SELECT ${KV_COLUMNS}, k.value AS value FROM mvcc_kv k WHERE k.key = ? AND k.main <= ? ORDER BY k.main DESC LIMIT 1`),
    }
    this.compactRev = readMetaNumber(this.backend, META_COMPACT_REV) ?? 0
    this.compactCursor = readMetaNumber(this.backend, META_COMPACT_CURSOR) ?? -1
    const last = db.query<{ main: number }, []>("SELECT main FROM mvcc_kv ORDER BY id DESC LIMIT 1").get()
    this.currentRev = Math.max(1, this.compactRev, last?.main ?? 0)
  }

  /**
   * Re-reads the revision state after the backend's contents were replaced
   * (a member installing a snapshot from the leader).
   */
  reload(): void {
    assert(this.activeTxn === undefined, "reload inside a write txn")
    this.latestCache.clear()
    this.lookedUpKey = undefined
    this.lookedUpRow = undefined
    this.recentFloor = Number.MAX_SAFE_INTEGER
    this.compactRev = readMetaNumber(this.backend, META_COMPACT_REV) ?? 0
    this.compactCursor = readMetaNumber(this.backend, META_COMPACT_CURSOR) ?? -1
    const last = this.backend.db.query<{ main: number }, []>("SELECT main FROM mvcc_kv ORDER BY id DESC LIMIT 1").get()
    this.currentRev = Math.max(1, this.compactRev, last?.main ?? 0)
  }

  /** Opens the store over `backend`, creating its tables if needed; resumes at the committed state. */
  static open(options: MvccStoreOptions): MvccStore {
    return new MvccStore(options)
  }

  currentRevision(): number {
    return this.currentRev
  }

  compactedRevision(): number {
    return this.compactRev
  }

  /** True while a compaction still has rows to delete (call compactStep()). */
  compactionPending(): boolean {
    return this.compactCursor >= 0
  }

  onChanges(listener: ChangeListener): void {
    this.changeListeners.push(listener)
  }

  onLeaseChange(listener: LeaseListener): void {
    this.leaseListeners.push(listener)
  }

  /** Starts a write txn; every write of it gets the revision current + 1. One at a time. */
  write(): WriteTxn {
    assert(this.activeTxn === undefined, "a write txn is already open")
    this.backend.begin()
    const txn = new WriteTxn(this, this.currentRev)
    this.activeTxn = txn
    return txn
  }

  /**
   * Deletes `keys` in one write txn (one revision, DELETE events): a revoked
   * lease's keys. Keys that no longer exist are skipped; nothing deleted means
   * no new revision.
   */
  deleteKeys(keys: Iterable<Uint8Array>): { revision: number; deleted: number } {
    const txn = this.write()
    let deleted = 0
    for (const key of keys) deleted += txn.deleteRange(key, undefined).deleted
    const { revision } = txn.end()
    return { revision, deleted }
  }

  /** A read at the store's current revision (never inside an open write txn). */
  range(key: Uint8Array, rangeEnd: Uint8Array | undefined, options: RangeOptions = {}): RangeResult {
    assert(this.activeTxn === undefined, "read outside the open write txn")
    return this.rangeAt(keyRange(key, rangeEnd), options, this.currentRev, this.currentRev)
  }

  /** A RangeRequest with etcd's limit/sort/filter rules (server/etcdserver/txn/range.go). */
  rangeRequest(req: RangeRequest): RangeResponse {
    assert(this.activeTxn === undefined, "read outside the open write txn")
    return executeRange(req, (range, options) => this.rangeAt(range, options, this.currentRev, this.currentRev))
  }

  /** The kv stored in row `id`, or undefined for a tombstone or a row compacted away. */
  kvById(id: number): KeyValue | undefined {
    const row = this.stmt.kvById.get(id)
    if (row === null || row.ver === 0) return undefined
    return toKeyValue(row)
  }

  /**
   * Marks `revision` compacted: reads below it fail from now on. The rows it
   * supersedes are deleted by compactStep() in bounded batches.
   */
  compact(revision: number): void {
    if (revision <= this.compactRev) throw new TskvError("compacted", `compact ${revision} <= ${this.compactRev}`)
    if (revision > this.currentRev) throw new TskvError("futureRev", `compact ${revision} > ${this.currentRev}`)
    const started = performance.now()
    this.backend.begin()
    this.compactRev = revision
    this.compactCursor = 0
    this.backend.setMeta(META_COMPACT_REV, encodeNumber(revision))
    this.backend.setMeta(META_COMPACT_CURSOR, encodeNumber(0))
    this.compactionStartedMs = started
    this.observer?.compactIndex(performance.now() - started)
  }

  /**
   * Deletes the next batch of rows superseded at the compacted revision.
   * Returns true while more remains. Call between applies; each call is short.
   */
  compactStep(rowsMax = this.compactionBatchLimit): boolean {
    if (this.compactCursor < 0) return false
    assert(this.activeTxn === undefined, "compaction inside a write txn")
    const started = performance.now()
    this.backend.begin()
    const rows = this.stmt.scan.all(this.compactCursor, rowsMax)
    let done = rows.length < rowsMax
    let deleted = 0
    for (const row of rows) {
      if (row.main > this.compactRev) {
        done = true
        break
      }
      const superseded = this.stmt.newerExists.get(row.key, row.main, this.compactRev) !== null
      if (superseded || row.ver === 0) {
        this.stmt.deleteId.run(row.id)
        deleted++
      }
      this.compactCursor = row.id
    }
    if (done) this.compactCursor = -1
    this.backend.setMeta(META_COMPACT_CURSOR, encodeNumber(this.compactCursor))
    // The step's own duration; a batch commit that noteWrites() may trigger is the backend's pause, not compaction's.
    this.compactionStepMsMax = Math.max(this.compactionStepMsMax, performance.now() - started)
    this.observer?.compactStep({ deleted, ms: performance.now() - started, totalMs: done ? performance.now() - this.compactionStartedMs : undefined })
    this.backend.noteWrites(deleted)
    return !done
  }

  /** Runs the pending compaction to its end (hashing, tests, tools). */
  finishCompaction(): void {
    while (this.compactStep()) {
      // each step is bounded; loop until done
    }
  }

  /**
   * HashKV: crc32 over every row kept at or below `revision` (0: current), in
   * revision order. Members that applied the same entries agree; the value is
   * our own, not comparable with etcd's.
   */
  hashKV(revision = 0): HashResult {
    const rev = revision <= 0 ? this.currentRev : revision
    if (rev > this.currentRev) throw new TskvError("futureRev")
    if (rev < this.compactRev) throw new TskvError("compacted")
    const started = performance.now()
    this.finishCompaction()
    const result = { hash: this.crcRows(rev), compactRevision: this.compactRev, hashRevision: rev }
    this.observer?.hashKV(performance.now() - started)
    return result
  }

  /** Hash of the whole mvcc state (Maintenance.Hash): every row plus the compacted revision. */
  hash(): number {
    const started = performance.now()
    this.finishCompaction()
    const result = Bun.hash.crc32(encodeNumber(this.compactRev), this.crcRows(Number.MAX_SAFE_INTEGER))
    this.observer?.hash(performance.now() - started)
    return result
  }

  /** Calls `visit` for every live key that has a lease (the lessor rebuilds lease -> keys on open). */
  forEachLeasedKey(visit: (key: Uint8Array, lease: bigint) => void): void {
    const rows = this.backend.db
      .query<{ key: Uint8Array; lease: string }, []>("SELECT key, CAST(lease AS TEXT) AS lease FROM mvcc_latest WHERE lease IS NOT NULL")
      .iterate()
    for (const row of rows) visit(row.key, BigInt(row.lease))
  }

  /** Number of live keys at the current revision. */
  keyCount(): number {
    return this.backend.db.query<{ n: number }, []>("SELECT count(*) AS n FROM mvcc_latest").get()?.n ?? 0
  }

  private crcRows(maxRevision: number): number {
    let crc = 0
    const head = new Uint8Array(40)
    const view = new DataView(head.buffer)
    const rows = this.backend.db
      .query<KvRow & { sub: number }, [number]>(`SELECT ${KV_COLUMNS}, k.sub AS sub, k.value AS value FROM mvcc_kv k WHERE k.main <= ? ORDER BY k.id`)
      .iterate(maxRevision)
    for (const row of rows) {
      view.setFloat64(0, row.main)
      view.setFloat64(8, row.sub)
      view.setFloat64(16, row.cr)
      view.setFloat64(24, row.ver)
      view.setBigInt64(32, row.lease === null ? 0n : BigInt(row.lease))
      crc = Bun.hash.crc32(head, crc)
      crc = Bun.hash.crc32(row.key, crc)
      crc = Bun.hash.crc32(row.value, crc)
    }
    return crc
  }

  // --- used by WriteTxn -----------------------------------------------------

  /** @internal */
  rangeAt(range: KeyRange, options: RangeOptions, currentRev: number, latestRev: number): RangeResult {
    let rev = options.revision ?? 0
    if (rev > currentRev) throw new TskvError("futureRev", `revision ${rev} > ${currentRev}`)
    if (rev <= 0) rev = currentRev
    if (rev < this.compactRev) throw new TskvError("compacted", `revision ${rev} < ${this.compactRev}`)
    if (range.kind === "empty") return { kvs: [], count: 0, revision: currentRev }
    if (range.kind === "one") return { ...this.rangeOne(range.key, rev, rev === latestRev, options), revision: currentRev }
    const limit = options.limit !== undefined && options.limit > 0 ? options.limit : -1
    if (rev === latestRev) return { ...this.rangeLatest(range, options, limit), revision: currentRev }
    const recent = this.rangeRecent(range, rev, options, limit)
    if (recent !== undefined) return { ...recent, revision: currentRev }
    // The newest row at or below rev of every key in range, read from the
    // covering index on (key, main, version); tombstones (version 0) dropped.
    const cond = rangeSql(range, "key")
    const params = [...cond.params, rev]
    const newest = `SELECT id, key, MAX(main) AS m, version AS v FROM mvcc_kv WHERE ${cond.where} AND main <= ? GROUP BY key`
    const db = this.backend.db
    const count = db.query<{ n: number }, (Uint8Array | number)[]>(`SELECT count(*) AS n FROM (${newest}) WHERE v > 0`).get(...params)?.n ?? 0
    if (options.countOnly) return { kvs: [], count, revision: currentRev }
    const value = options.keysOnly ? "x'' AS value" : "k.value AS value"
    const rowsSql = `SELECT ${KV_COLUMNS}, ${value} FROM mvcc_kv k WHERE k.id IN (SELECT id FROM (${newest}) WHERE v > 0 ORDER BY key LIMIT ?) ORDER BY k.key`
    const rows = db.query<KvRow, (Uint8Array | number)[]>(rowsSql).all(...params, limit)
    return { kvs: rows.map(toKeyValue), count, revision: currentRev }
  }

  /** A range at the latest revision: the live keys of mvcc_latest, their rows by id. */
  private rangeLatest(range: KeyRange, options: RangeOptions, limit: number): { kvs: KeyValue[]; count: number } {
    const cond = rangeSql(range, "l.key")
    const db = this.backend.db
    const count = db.query<{ n: number }, Uint8Array[]>(`SELECT count(*) AS n FROM mvcc_latest l WHERE ${cond.where}`).get(...cond.params)?.n ?? 0
    if (options.countOnly) return { kvs: [], count }
    const value = options.keysOnly ? "x'' AS value" : "k.value AS value"
    // CROSS JOIN keeps mvcc_latest the outer loop, in key order (a plain JOIN lets SQLite scan mvcc_kv).
    const rowsSql = `SELECT ${KV_COLUMNS}, ${value} FROM mvcc_latest l CROSS JOIN mvcc_kv k ON k.id = l.id WHERE ${cond.where} ORDER BY l.key LIMIT ?`
    const rows = db.query<KvRow, (Uint8Array | number)[]>(rowsSql).all(...cond.params, limit)
    return { kvs: rows.map(toKeyValue), count }
  }

  /**
   * A range at a recent past revision `rev` (a list's next page at the first
   * page's revision): a key not written since rev has there its latest row, so
   * only the keys written after rev (the rows from the first id of rev + 1 on,
   * few) are looked up in history. Undefined when rev is too old for that.
   */
  private rangeRecent(range: KeyRange, rev: number, options: RangeOptions, limit: number): { kvs: KeyValue[]; count: number } | undefined {
    const fromId = this.firstIdOf(rev + 1)
    if (fromId === undefined) return undefined
    const tail = this.stmt.tail.all(fromId, RECENT_ROWS_MAX + 1)
    if (tail.length > RECENT_ROWS_MAX) return undefined
    // The keys in range written after rev: live now or not, and their row at rev.
    const written = new Map<string, { key: Uint8Array; nowLive: boolean; atRev: { id: number; ver: number } | null }>()
    for (const row of tail) {
      if (!inRange(range, row.key)) continue
      const k = cacheKey(row.key)
      if (written.has(k)) continue
      const nowLive = (this.latestCache.get(k) ?? this.stmt.getLatest.get(row.key)) != null
      written.set(k, { key: row.key, nowLive, atRev: this.stmt.idAt.get(row.key, rev) })
    }
    const cond = rangeSql(range, "l.key")
    const db = this.backend.db
    let count = db.query<{ n: number }, Uint8Array[]>(`SELECT count(*) AS n FROM mvcc_latest l WHERE ${cond.where}`).get(...cond.params)?.n ?? 0
    const older: { key: Uint8Array; id: number }[] = []
    for (const w of written.values()) {
      if (w.nowLive) count--
      if (w.atRev !== null && w.atRev.ver > 0) {
        count++
        older.push({ key: w.key, id: w.atRev.id })
      }
    }
    if (options.countOnly) return { kvs: [], count }
    // The first `limit` keys: the latest rows of keys not written since rev (main <= rev), merged with the older rows.
    older.sort((a, b) => compareBytes(a.key, b.key))
    const wanted = limit < 0 ? Number.MAX_SAFE_INTEGER : limit
    const value = options.keysOnly ? "x'' AS value" : "k.value AS value"
    const rows = db
      .query<KvRow, (Uint8Array | number)[]>(`SELECT ${KV_COLUMNS}, ${value} FROM mvcc_latest l CROSS JOIN mvcc_kv k ON k.id = l.id WHERE ${cond.where} ORDER BY l.key LIMIT ?`)
      .all(...cond.params, limit < 0 ? -1 : limit + written.size)
    const byId = options.keysOnly ? this.stmt.kvKeyById : this.stmt.kvById
    const olderKv = (i: number): KeyValue => {
      const row = byId.get(older[i]!.id)
      assert(row !== null, () => `row ${older[i]!.id} of a range at ${rev} is gone`)
      return toKeyValue(row)
    }
    const kvs: KeyValue[] = []
    let o = 0
    for (const row of rows) {
      if (kvs.length >= wanted) break
      if (row.main > rev) continue
      while (o < older.length && kvs.length < wanted && compareBytes(older[o]!.key, row.key) < 0) kvs.push(olderKv(o++))
      if (kvs.length < wanted) kvs.push(toKeyValue(row))
    }
    while (o < older.length && kvs.length < wanted) kvs.push(olderKv(o++))
    return { kvs, count }
  }

  /** Row id of the first row written at `revision`, when it is among the last RECENT_REVISIONS since open. */
  private firstIdOf(revision: number): number | undefined {
    if (revision < this.recentFloor || revision > this.currentRev || this.currentRev - revision >= RECENT_REVISIONS) return undefined
    return this.recentFirstIds[revision & (RECENT_REVISIONS - 1)]
  }

  /** Revisions from this one on have their first row id in recentFirstIds. */
  private recentFloor = Number.MAX_SAFE_INTEGER
  private readonly recentFirstIds = new Float64Array(RECENT_REVISIONS)
  /** Id of the first row the open write txn wrote (-1: none yet). */
  private txnFirstId = -1

  private rangeOne(key: Uint8Array, rev: number, latest: boolean, options: RangeOptions): RangeResult {
    // keys_only and count_only at the latest revision (a txn's ModRevision compare) leave the value in the db.
    const withoutValue = options.keysOnly === true || options.countOnly === true
    const row = latest ? (withoutValue ? this.stmt.oneLatestKey : this.stmt.oneLatest).get(key) : this.stmt.oneAt.get(key, rev)
    if (row === null || row.ver === 0) return { kvs: [], count: 0, revision: rev }
    if (options.countOnly) return { kvs: [], count: 1, revision: rev }
    const kv = toKeyValue(row)
    if (options.keysOnly) kv.value = EMPTY
    return { kvs: [kv], count: 1, revision: rev }
  }

  /**
   * The latest version of every key written since open, so that a put does not query
   * mvcc_latest for the version it replaces (a third of a put's SQLite time). Filled on
   * write, emptied when it reaches latestCacheKeys keys or the contents are replaced.
   */
  private readonly latestCache = new Map<string, LatestRow>()
  private readonly latestCacheKeys: number

  /**
   * The key latest() looked up last, its string and the cached row it found:
   * writePut() right after reuses the string and updates that row in place.
   * A new row object per put, set into a Map that lives in the old generation,
   * made every eden collection rescan the Map (pauses of several ms at
   * 15k puts/s); a row updated in place holds only numbers and strings it had.
   */
  private lookedUpKey: Uint8Array | undefined
  private lookedUpString = ""
  private lookedUpRow: LatestRow | undefined

  /** @internal */
  latest(key: Uint8Array): LatestRow | null {
    const k = cacheKey(key)
    const cached = this.latestCache.get(k)
    this.lookedUpKey = key
    this.lookedUpString = k
    this.lookedUpRow = cached
    if (cached !== undefined) return cached
    return this.stmt.getLatest.get(key)
  }

  private cacheLatest(key: Uint8Array, row: LatestRow | undefined): void {
    const k = key === this.lookedUpKey ? this.lookedUpString : cacheKey(key)
    this.lookedUpKey = undefined
    this.lookedUpRow = undefined
    if (row === undefined) {
      this.latestCache.delete(k)
      return
    }
    if (this.latestCache.size >= this.latestCacheKeys && !this.latestCache.has(k)) this.latestCache.clear()
    this.latestCache.set(k, row)
  }

  /** @internal */
  writePut(options: { key: Uint8Array; value: Uint8Array; lease: bigint; main: number; sub: number; prev: LatestRow | null }): number {
    const { key, prev } = options
    const createRev = prev === null ? options.main : prev.cr
    const version = prev === null ? 1 : prev.ver + 1
    const lease = options.lease === 0n ? null : options.lease
    const previousLease = prev?.lease == null ? 0n : BigInt(prev.lease)
    const id = Number(this.stmt.insertKv.run(key, options.main, options.sub, createRev, version, lease, options.value).lastInsertRowid)
    if (this.txnFirstId < 0) this.txnFirstId = id
    this.stmt.upsertLatest.run(key, id, createRev, version, lease)
    const leaseText = lease === null ? null : lease.toString()
    if (prev !== null && prev === this.lookedUpRow && key === this.lookedUpKey) {
      prev.id = id
      prev.cr = createRev
      prev.ver = version
      if (prev.lease !== leaseText) prev.lease = leaseText
      this.lookedUpKey = undefined
      this.lookedUpRow = undefined
    } else {
      this.cacheLatest(key, { id, cr: createRev, ver: version, lease: leaseText })
    }
    if (previousLease !== options.lease) for (const listener of this.leaseListeners) listener(key, previousLease, options.lease)
    return id
  }

  /** @internal */
  writeDelete(options: { key: Uint8Array; main: number; sub: number; prevLease: bigint }): void {
    const id = Number(this.stmt.insertKv.run(options.key, options.main, options.sub, 0, 0, null, EMPTY).lastInsertRowid)
    if (this.txnFirstId < 0) this.txnFirstId = id
    this.stmt.deleteLatest.run(options.key)
    this.cacheLatest(options.key, undefined)
    if (options.prevLease !== 0n) for (const listener of this.leaseListeners) listener(options.key, options.prevLease, 0n)
  }

  /** @internal */
  endTxn(txn: WriteTxn, changes: readonly Change[]): void {
    assert(this.activeTxn === txn, "ending a txn that is not open")
    this.activeTxn = undefined
    const firstId = this.txnFirstId
    this.txnFirstId = -1
    if (changes.length === 0) return
    this.currentRev++
    assert(firstId >= 0, "a txn with changes and no row")
    this.recentFirstIds[this.currentRev & (RECENT_REVISIONS - 1)] = firstId
    if (this.recentFloor === Number.MAX_SAFE_INTEGER) this.recentFloor = this.currentRev
    for (const listener of this.changeListeners) listener(this.currentRev, changes)
  }
}

/** A write txn: writes share one revision; reads see earlier writes of the txn. */
export class WriteTxn {
  private readonly changes: Change[] = []
  private ended = false
  readonly beginRevision: number

  /** @internal */
  constructor(
    private readonly store: MvccStore,
    beginRevision: number,
  ) {
    this.beginRevision = beginRevision
  }

  /** The revision the txn's writes get. */
  get revision(): number {
    return this.beginRevision + 1
  }

  /** The revision a read inside the txn sees: begin + 1 once something changed. */
  readRevision(): number {
    return this.changes.length > 0 ? this.beginRevision + 1 : this.beginRevision
  }

  changeCount(): number {
    return this.changes.length
  }

  /**
   * Puts `key`. `ignoreValue`/`ignoreLease` keep the current value/lease (the
   * caller has checked that the key exists, see validate.ts). Returns the
   * previous kv when `prevKv` is set and the key existed.
   */
  put(
    key: Uint8Array,
    value: Uint8Array,
    lease: bigint,
    options: { prevKv?: boolean; ignoreValue?: boolean; ignoreLease?: boolean } = {},
  ): KeyValue | undefined {
    this.checkOpen()
    const prev = this.store.latest(key)
    let prevKv: KeyValue | undefined
    if (prev !== null && (options.prevKv || options.ignoreValue)) prevKv = this.store.kvById(prev.id)
    if (options.ignoreValue || options.ignoreLease) {
      if (prev === null) throw new TskvError("keyNotFound")
    }
    const newValue = options.ignoreValue ? prevKv!.value : value
    const newLease = options.ignoreLease ? (prev?.lease == null ? 0n : BigInt(prev.lease)) : lease
    const main = this.beginRevision + 1
    const createRevision = prev === null ? main : prev.cr
    const version = prev === null ? 1 : prev.ver + 1
    // Before writePut(), which updates the cached row `prev` in place.
    const prevId = prev?.id ?? 0
    this.store.writePut({ key, value: newValue, lease: newLease, main, sub: this.changes.length, prev })
    this.changes.push({
      kv: { key, createRevision, modRevision: main, version, value: newValue, lease: newLease },
      deleted: false,
      prevId,
    })
    return options.prevKv ? prevKv : undefined
  }

  /** Deletes every live key in the range; returns the number deleted and, if asked, their kvs. */
  deleteRange(key: Uint8Array, rangeEnd: Uint8Array | undefined, options: { prevKv?: boolean } = {}): { deleted: number; prevKvs: KeyValue[] } {
    this.checkOpen()
    const range = keyRange(key, rangeEnd)
    if (range.kind === "empty") return { deleted: 0, prevKvs: [] }
    const cond = rangeSql(range, "key")
    const victims = this.store.backend.db
      .query<{ key: Uint8Array; id: number; lease: string | null }, Uint8Array[]>(
        `SELECT key, id, CAST(lease AS TEXT) AS lease FROM mvcc_latest WHERE ${cond.where} ORDER BY key`,
      )
      .all(...cond.params)
    const prevKvs: KeyValue[] = []
    const main = this.beginRevision + 1
    for (const victim of victims) {
      if (options.prevKv) {
        const kv = this.store.kvById(victim.id)
        assert(kv !== undefined, "live key without its row")
        prevKvs.push(kv)
      }
      this.store.writeDelete({ key: victim.key, main, sub: this.changes.length, prevLease: victim.lease === null ? 0n : BigInt(victim.lease) })
      this.changes.push({ kv: tombstoneKv(victim.key, main), deleted: true, prevId: victim.id })
    }
    return { deleted: victims.length, prevKvs }
  }

  /** A read inside the txn: sees its earlier writes. */
  range(key: Uint8Array, rangeEnd: Uint8Array | undefined, options: RangeOptions = {}): RangeResult {
    this.checkOpen()
    const rev = this.readRevision()
    return this.store.rangeAt(keyRange(key, rangeEnd), options, rev, rev)
  }

  rangeRequest(req: RangeRequest): RangeResponse {
    this.checkOpen()
    const rev = this.readRevision()
    return executeRange(req, (range, options) => this.store.rangeAt(range, options, rev, rev))
  }

  /** Commits the txn to the store (not to disk): the revision moves on iff something changed. */
  end(): { revision: number; changes: number } {
    this.checkOpen()
    this.ended = true
    this.store.endTxn(this, this.changes)
    return { revision: this.store.currentRevision(), changes: this.changes.length }
  }

  private checkOpen(): void {
    assert(!this.ended, "write txn already ended")
  }
}

export function tombstoneKv(key: Uint8Array, modRevision: number): KeyValue {
  return { key, createRevision: 0, modRevision, version: 0, value: EMPTY, lease: 0n }
}

function toKeyValue(row: KvRow): KeyValue {
  return {
    key: row.key,
    createRevision: row.cr,
    modRevision: row.main,
    version: row.ver,
    value: row.value,
    lease: row.lease === null ? 0n : BigInt(row.lease),
  }
}

type RangeReader = (range: KeyRange, options: RangeOptions) => RangeResult

/** etcd's Range: storage limit only without sort or filters; count ignores both. */
export function executeRange(req: RangeRequest, read: RangeReader): RangeResponse {
  const sortOrder = req.sortOrder ?? SortOrder.NONE
  const sortTarget = req.sortTarget ?? SortTarget.KEY
  if (!(sortTarget in SortTarget)) throw new TskvError("invalidSortOption")
  let order = sortOrder
  if (sortTarget !== SortTarget.KEY && order === SortOrder.NONE) order = SortOrder.ASCEND
  const minMod = req.minModRevision ?? 0
  const maxMod = req.maxModRevision ?? 0
  const minCreate = req.minCreateRevision ?? 0
  const maxCreate = req.maxCreateRevision ?? 0
  const filtered = minMod !== 0 || maxMod !== 0 || minCreate !== 0 || maxCreate !== 0
  const wanted = req.limit ?? 0
  const fullRead = order !== SortOrder.NONE || filtered
  const options: RangeOptions = {
    revision: req.revision ?? 0,
    keysOnly: req.keysOnly ?? false,
    countOnly: req.countOnly ?? false,
  }
  if (!fullRead && wanted > 0) options.limit = wanted + 1
  const result = read(keyRange(req.key, req.rangeEnd), options)
  let kvs = result.kvs
  if (filtered) {
    kvs = kvs.filter(
      (kv) =>
        (maxMod === 0 || kv.modRevision <= maxMod) &&
        (minMod === 0 || kv.modRevision >= minMod) &&
        (maxCreate === 0 || kv.createRevision <= maxCreate) &&
        (minCreate === 0 || kv.createRevision >= minCreate),
    )
  }
  // etcd 3.4: an order that is neither ASCEND nor DESCEND (say 7) reads the whole range unsorted, limit after
  const sorts = order === SortOrder.ASCEND || order === SortOrder.DESCEND
  if (sorts && !(order === SortOrder.ASCEND && sortTarget === SortTarget.KEY)) {
    const compare = sortComparator(sortTarget)
    kvs = kvs.slice().sort(order === SortOrder.ASCEND ? compare : (a, b) => compare(b, a))
  }
  let more = false
  if (wanted > 0 && kvs.length > wanted) {
    kvs = kvs.slice(0, wanted)
    more = true
  }
  return { header: revisionHeader(result.revision), kvs, more, count: result.count }
}

function sortComparator(target: SortTarget): (a: KeyValue, b: KeyValue) => number {
  switch (target) {
    case SortTarget.KEY:
      return (a, b) => Buffer.compare(a.key, b.key)
    case SortTarget.VERSION:
      return (a, b) => a.version - b.version
    case SortTarget.CREATE:
      return (a, b) => a.createRevision - b.createRevision
    case SortTarget.MOD:
      return (a, b) => a.modRevision - b.modRevision
    case SortTarget.VALUE:
      return (a, b) => Buffer.compare(a.value, b.value)
  }
}

export function encodeNumber(value: number): Uint8Array {
  const buf = new Uint8Array(8)
  new DataView(buf.buffer).setBigInt64(0, BigInt(value))
  return buf
}

function readMetaNumber(backend: Backend, key: string): number | undefined {
  const raw = backend.getMeta(key)
  if (raw === null) return undefined
  assert(raw.byteLength === 8, () => `meta ${key} has ${raw.byteLength} bytes`)
  return Number(new DataView(raw.buffer, raw.byteOffset, raw.byteLength).getBigInt64(0))
}
