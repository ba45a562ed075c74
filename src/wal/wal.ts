// The segmented write-ahead log: what makes a raft Ready durable.
//
// save(hardState, entries) encodes the whole batch into one record, writes it
// with one pwrite into the preallocated segment and makes it durable with one
// fdatasync (group commit). A segment that grows past segmentBytes is cut:
// truncated to its records and fsynced, and a new preallocated segment, whose
// first record carries the previous crc, the metadata and the hard state, is
// written to a temp file, fsynced, renamed and its directory fsynced.
//
// An fdatasync the file system refuses (EROFS, ENOSPC, EIO) leaves what it covered
// unknown: Linux may have dropped the dirty pages, and a second fdatasync of
// the same file then reports success for data that never reached the disk
// (fsyncgate), so it is never retried. The records written since the last
// good sync stay in memory; saves are refused (WalWriteRefused) until
// recover() cuts them off the segment (truncated to the last durable record,
// fsynced), writes them again into a fresh segment and syncs that.
//
// Opening reads and checks every record from the segment holding the snapshot
// index on. A damaged record in the last segment with nothing written after it
// is a write torn by a crash: it can only belong to a save() that never
// returned, so it is truncated (and logged). Damage anywhere else, a missing
// segment or a gap in the indexes refuses to open, naming file and offset.
//
// The core is synchronous and knows nothing of scheduling: a caller that wants
// the I/O off its thread runs the Wal in a Worker.

import { assert, assertIndex } from "../lib/assert"
import type { FileHandle, FsPort } from "../lib/fs_port"
import { isFsError, mkdirDurable } from "../lib/fs_port"
import type { Logger } from "../lib/logger"
import { silentLogger } from "../lib/logger"
import type { Entry, HardState } from "../raft/types"
import { EMPTY_HARD_STATE } from "../raft/types"
import type { WalMetadata, WalSnapshot } from "./codec"
import { batchBytesMax, decodeValue, encodeValue, parseBatch, parseBatchHardState, parseSegmentHeader, parseSnapshot, segmentWire, ShapeError, writeBatch } from "./codec"
import { REFUSED_SYNC_CODES, REFUSED_WRITE_CODES, WalError, WalWriteRefused } from "./errors"
import type { RecordHeader } from "./frame"
import { endOfData, FLAG_SYNCED, HEADER_BYTES, MAX_PAYLOAD_BYTES, readHeader, readRecord, RecordType, sealRecord } from "./frame"
import type { SegmentName } from "./segment_name"
import { parseSegmentName, searchIndex, segmentName, sortSegments } from "./segment_name"

export type { WalMetadata, WalSnapshot } from "./codec"

/** etcd's SegmentSizeBytes. */
export const DEFAULT_SEGMENT_BYTES = 64 * 1000 * 1000
/** etcd's --max-wals default. */
export const DEFAULT_MAX_WALS = 5
/** An fdatasync slower than this is logged, as etcd's warnSyncDuration. */
const SLOW_SYNC_MS = 1000

export interface WalOptions {
  fs: FsPort
  /** The WAL directory: `<data-dir>/tskv/wal` or --wal-dir. */
  dir: string
  logger?: Logger
  /** Cut a new segment once one grows past this (default 64 MB). */
  segmentBytes?: number
  /** --unsafe-no-fsync: save() does not fdatasync. Acknowledged writes can be lost. */
  noFsync?: boolean
  /** --max-wals: segments kept after releaseTo() (0: keep all). Default 5. */
  maxWals?: number
  /** Called with the duration of every fdatasync of save()/saveSnapshot(), for metrics. */
  onSync?: (durationMs: number) => void
}

export interface WalCreateOptions extends WalOptions {
  metadata: WalMetadata
}

export interface WalOpenOptions extends WalOptions {
  /** The raft snapshot the member starts from; entries at or below its index are not returned. */
  snapshot?: WalSnapshot
}

export interface WalContents {
  wal: Wal
  metadata: WalMetadata
  hardState: HardState
  /** The entries after the snapshot index, contiguous, overwrites applied. */
  entries: Entry[]
}

interface Writer {
  file: FileHandle
  /** Where the next record goes in the current segment. */
  tail: number
  /** The crc of the last record written. */
  crc: number
}

/** The WAL as of a point of the current segment: what a good sync up to there made durable. */
interface Mark {
  tail: number
  crc: number
  hardState: HardState
  last: number
}

/** A record written after the last good sync, kept to be written again if its sync fails. */
type Unsynced =
  | { kind: "batch"; hardState: HardState | undefined; entries: readonly Entry[]; flags: number }
  | { kind: "snapshot"; snapshot: WalSnapshot; flags: number }

export class Wal {
  private readonly fs: FsPort
  private readonly dir: string
  private readonly logger: Logger
  private readonly segmentBytes: number
  private readonly noFsync: boolean
  private readonly maxWals: number
  private readonly onSync: ((durationMs: number) => void) | undefined
  private readonly metadata: WalMetadata
  private readonly segments: SegmentName[]
  private writer: Writer
  private hardState: HardState
  private last: number
  /** Segments before this position hold only entries below a released index. */
  private releasedCount = 0
  private failure: unknown
  /** Set when an fdatasync was refused: the records after `durable` may not be on disk; recover() rewrites them. */
  private tailLost: (Error & { code: string }) | undefined
  /** What the last good sync (or the segment's creation) made durable. */
  private durable: Mark
  /** Records written after `durable`, oldest first (empty with --unsafe-no-fsync). */
  private unsynced: Unsynced[] = []
  private closed = false
  private buffer = new Uint8Array(64 * 1024)
  /** Bytes of records written since open (etcd_disk_wal_write_bytes_total). */
  bytesWritten = 0

  private constructor(init: {
    options: WalOptions
    metadata: WalMetadata
    segments: SegmentName[]
    writer: Writer
    hardState: HardState
    lastIndex: number
  }) {
    const { options } = init
    this.fs = options.fs
    this.dir = options.dir
    this.logger = options.logger ?? silentLogger
    this.segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES
    this.noFsync = options.noFsync ?? false
    this.maxWals = options.maxWals ?? DEFAULT_MAX_WALS
    this.onSync = options.onSync
    this.metadata = init.metadata
    this.segments = init.segments
    this.writer = init.writer
    this.hardState = init.hardState
    this.last = init.lastIndex
    this.durable = this.mark()
    assert(this.segmentBytes > HEADER_BYTES, () => `segmentBytes ${this.segmentBytes} too small`)
    if (this.noFsync) {
      this.logger.warn("wal: --unsafe-no-fsync is set: the WAL is not fsynced and acknowledged writes CAN BE LOST on a crash", { dir: this.dir })
    }
  }

  /** Whether `dir` holds a WAL (any segment file). */
  static exists(fs: FsPort, dir: string): boolean {
    return fs.exists(dir) && fs.readdir(dir).some((name) => parseSegmentName(name) !== undefined)
  }

  /** Creates a new WAL in `dir` (made if missing; it must hold no segment). */
  static create(options: WalCreateOptions): Wal {
    const { fs, dir, metadata } = options
    if (Wal.exists(fs, dir)) throw new WalError(`${dir} already holds a WAL`)
    mkdirDurable(fs, dir)
    const segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES
    const name = segmentName(0, 0)
    const writer = createSegment({ fs, dir, name, segmentBytes, metadata, hardState: undefined, prevCrc: 0 })
    return new Wal({ options, metadata, segments: [{ seq: 0, index: 0, name }], writer, hardState: EMPTY_HARD_STATE, lastIndex: 0 })
  }

  /**
   * Opens the WAL in `dir` for appending, after reading and checking every
   * record from the segment that holds `snapshot.index` (index 0 when absent).
   */
  static open(options: WalOpenOptions): WalContents {
    const { fs, dir } = options
    const snapshot = options.snapshot ?? { index: 0, term: 0 }
    assertIndex(snapshot.index, "snapshot index")
    if (!fs.exists(dir)) throw new WalError(`no WAL directory ${dir}`)
    const all = sortSegments(fs.readdir(dir), dir)
    if (all.length === 0) throw new WalError(`no WAL segment in ${dir}`)
    const file = lockLastSegment(fs, dir, all)
    try {
      return Wal.replay(options, all, file, snapshot)
    } catch (e) {
      file.close()
      throw e
    }
  }

  private static replay(options: WalOpenOptions, all: SegmentName[], file: FileHandle, snapshot: WalSnapshot): WalContents {
    const { fs, dir } = options
    const logger = options.logger ?? silentLogger
    for (const name of fs.readdir(dir)) {
      // A segment being cut when the member stopped: never renamed, so never used.
      if (name.endsWith(".wal.tmp")) fs.unlink(`${dir}/${name}`)
    }
    const start = searchIndex(all, snapshot.index)
    if (start < 0) {
      throw new WalError(`no segment holds snapshot index ${snapshot.index}: the oldest is ${all[0]!.name}`, `${dir}/${all[0]!.name}`, 0)
    }
    const segments = all.slice(start)
    const replay = new Replay(dir, snapshot)
    let tail = 0
    for (let i = 0; i < segments.length; i++) {
      const seg = segments[i]!
      tail = replay.readSegment(fs.readFile(`${dir}/${seg.name}`), seg.name, i === segments.length - 1, logger)
    }
    const result = replay.finish()
    const segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES
    if (replay.tornBytes > 0) {
      // Zero what the torn write left so that nothing stale follows new records.
      file.truncate(tail)
      file.preallocate(Math.max(segmentBytes, tail))
      file.fsync()
    }
    const wal = new Wal({
      options,
      metadata: result.metadata,
      segments: all,
      writer: { file, tail, crc: replay.crc },
      hardState: result.hardState,
      lastIndex: replay.lastIndex,
    })
    // The segments before the snapshot's are not needed any more: the next releaseTo() may purge them.
    wal.releasedCount = start
    return { wal, metadata: result.metadata, hardState: result.hardState, entries: result.entries }
  }

  /**
   * The snapshot markers of the WAL in `dir` that a member may start from:
   * those at or below the last hard state's commit (etcd's
   * ValidSnapshotEntries), oldest first, always with {0, 0} first. Reads
   * without changing anything; a torn tail of the last segment is ignored.
   */
  static validSnapshots(options: { fs: FsPort; dir: string }): WalSnapshot[] {
    const { fs, dir } = options
    const all = sortSegments(fs.readdir(dir), dir)
    if (all.length === 0) throw new WalError(`no WAL segment in ${dir}`)
    const replay = new Replay(dir, { index: 0, term: 0 }, true)
    for (let i = 0; i < all.length; i++) {
      replay.readSegment(fs.readFile(`${dir}/${all[i]!.name}`), all[i]!.name, i === all.length - 1, silentLogger)
    }
    const commit = replay.finish().hardState.commit
    return [{ index: 0, term: 0 }, ...replay.markers.filter((m) => m.index <= commit)]
  }

  /** Index of the last entry saved (or of the newest snapshot marker, if greater). */
  lastIndex(): number {
    return this.last
  }

  /**
   * Appends a raft Ready's hard state and entries as one record and makes it
   * durable with one fdatasync when it must be (entries, or a new term or
   * vote; a commit-only change is written without a sync, as etcd does).
   * Entries whose index is at or below the last index replace the log's tail.
   * An fdatasync the file system refuses throws WalWriteRefused: the save is
   * not durable, recover() makes it so later. Any other failure leaves the WAL
   * unusable: the member must stop and reopen it.
   */
  save(hardState: HardState | undefined, entries: readonly Entry[]): void {
    this.checkUsable()
    assert(this.idle(), "save() while saveAsync() waits for its fdatasync")
    this.recover()
    const prev = this.hardState
    if (entries.length === 0 && (hardState === undefined || sameHardState(hardState, prev))) return
    if (hardState !== undefined) checkHardState(hardState, prev)
    checkEntries(entries, this.last)
    const mustSync = entries.length > 0 || (hardState !== undefined && (hardState.term !== prev.term || hardState.vote !== prev.vote))
    this.guard(() => {
      const sync = mustSync && !this.noFsync
      this.appendBatch(hardState, entries, sync ? FLAG_SYNCED : 0)
      if (hardState !== undefined) this.hardState = { term: hardState.term, vote: hardState.vote, commit: hardState.commit }
      if (entries.length > 0) this.last = entries[entries.length - 1]!.index
      if (sync) this.sync()
    })
    this.cutQuietly()
  }

  /**
   * save() whose fdatasync runs on the thread pool: writes the record now and
   * calls `done` once it is durable (at once, synchronously, when no sync is
   * needed and nothing is waiting for one). Saves may follow while a sync is
   * in flight (group commit): they are written at once and share the next
   * fdatasync, which starts when the one in flight ends; `done` callbacks run
   * in the order of the saves. save(), saveSnapshot() and close() wait for
   * idle().
   *
   * Throws WalWriteRefused when the file system refuses the write (nothing of
   * the save counts; the same save may be made again later). `done` gets a
   * WalWriteRefused when the fdatasync was refused: the save is written but
   * not durable, and becomes durable only through recover().
   */
  saveAsync(hardState: HardState | undefined, entries: readonly Entry[], done: (error: Error | null) => void): void {
    this.checkUsable()
    this.recover()
    const prev = this.hardState
    if (entries.length === 0 && (hardState === undefined || sameHardState(hardState, prev))) return this.afterPending(done)
    if (hardState !== undefined) checkHardState(hardState, prev)
    checkEntries(entries, this.last)
    const mustSync = entries.length > 0 || (hardState !== undefined && (hardState.term !== prev.term || hardState.vote !== prev.vote))
    const sync = mustSync && !this.noFsync
    try {
      this.appendBatch(hardState, entries, sync ? FLAG_SYNCED : 0)
    } catch (e) {
      // appendBatch() moves nothing before its pwrite succeeded: a full or read-only file system
      // leaves the WAL as it was (bytes written past the tail are overwritten by the next save).
      if (isFsError(e) && REFUSED_WRITE_CODES.has(e.code)) throw new WalWriteRefused(e)
      this.failure = e
      throw e
    }
    if (hardState !== undefined) this.hardState = { term: hardState.term, vote: hardState.vote, commit: hardState.commit }
    if (entries.length > 0) this.last = entries[entries.length - 1]!.index
    if (this.writer.file.fdatasyncAsync === undefined) {
      try {
        if (sync) this.guard(() => this.sync())
      } catch (e) {
        if (e instanceof WalWriteRefused) return done(e)
        throw e
      }
      this.cutQuietly()
      return done(null)
    }
    if (!sync) {
      if (this.idle()) this.cutQuietly()
      return this.afterPending(done)
    }
    this.waiting.push(done)
    this.waitingNeedsSync = true
    if (!this.syncing) this.startSync()
  }

  /** True when no saveAsync() waits for its fdatasync. */
  idle(): boolean {
    return !this.syncing && this.waiting.length === 0
  }

  /**
   * Whether an fdatasync was refused and the records written since the last
   * good one wait for recover() (every save is refused until then).
   */
  needsRecovery(): boolean {
    return this.tailLost !== undefined
  }

  /**
   * After a refused fdatasync: cuts the records written since the last good
   * sync off the segment (truncated to its last durable record and fsynced:
   * the data before that point was made durable by a sync that succeeded, so
   * this fsync depends on none of the pages the failed one may have dropped),
   * writes them again from memory into a fresh segment, and syncs that. Throws
   * WalWriteRefused while the file system still refuses (call it again
   * later). A no-op when nothing waits for it.
   */
  recover(): void {
    const lost = this.tailLost
    if (lost === undefined) return
    this.checkUsable()
    assert(this.idle(), "recover() while saveAsync() waits for its fdatasync")
    const records = this.unsynced
    try {
      this.guard(() => this.refusing(() => {
        const file = this.writer.file
        file.truncate(this.durable.tail)
        file.fsync()
        const current = this.segments[this.segments.length - 1]!
        // A cut that failed after its rename left a segment that was never written to.
        for (const name of this.fs.readdir(this.dir)) {
          const seg = parseSegmentName(name)
          if (seg !== undefined && seg.seq > current.seq) this.fs.unlink(`${this.dir}/${name}`)
        }
        this.nextSegment(this.durable)
        file.close()
        this.durable = { tail: this.writer.tail, crc: this.writer.crc, hardState: this.durable.hardState, last: this.durable.last }
        this.unsynced = []
        for (const r of records) {
          if (r.kind === "batch") this.appendBatch(r.hardState, r.entries, r.flags)
          else this.append(RecordType.Snapshot, r.flags, [r.snapshot.index, r.snapshot.term])
        }
        this.sync()
      }))
    } catch (e) {
      // Still refused: the records are kept (those written into the new segment again, in order).
      if (e instanceof WalWriteRefused) this.unsynced = records
      throw e
    }
    this.tailLost = undefined
    this.logger.warn("wal: the records of a refused fdatasync are written again into a new segment, and synced", {
      file: `${this.dir}/${this.segments[this.segments.length - 1]!.name}`,
      records: records.length,
      error: lost.message,
    })
  }

  /** Saves written and waiting for the next fdatasync (or, without one, behind the one in flight). */
  private waiting: ((error: Error | null) => void)[] = []
  private waitingNeedsSync = false
  private syncing = false

  /** `done` of a save that needs no sync: now, or after the saves before it. */
  private afterPending(done: (error: Error | null) => void): void {
    if (this.idle()) return done(null)
    this.waiting.push(done)
  }

  /** One fdatasync for every save waiting; when it ends, their callbacks in order, then the next round. */
  private startSync(): void {
    const batch = this.waiting
    this.waiting = []
    this.waitingNeedsSync = false
    this.syncing = true
    const covered = this.mark()
    const count = this.unsynced.length
    const start = performance.now()
    this.writer.file.fdatasyncAsync!((failed) => {
      this.syncing = false
      let error: Error | null = failed
      if (error === null) {
        this.onSync?.(performance.now() - start)
        this.synced(covered, count)
        // A cut the file system refuses does not undo the sync: the saves it covered are durable.
        this.cutQuietly()
      } else {
        error = this.refusedSync(error) as Error
        if (!(error instanceof WalWriteRefused)) this.failure = error
      }
      if (error === null && this.tailLost !== undefined && this.waiting.length > 0) error = new WalWriteRefused(this.tailLost)
      if (error !== null) {
        const rest = this.waiting
        this.waiting = []
        for (const done of batch) done(failed === null ? null : error)
        for (const done of rest) done(error)
        return
      }
      for (const done of batch) done(null)
      if (this.waiting.length === 0 || this.syncing) return
      if (this.waitingNeedsSync) return this.startSync()
      const rest = this.waiting
      this.waiting = []
      for (const done of rest) done(null)
    })
  }

  /** A full segment is cut only while no fdatasync is in flight on it. */
  private maybeCut(): void {
    if (this.writer.tail >= this.segmentBytes) this.cut()
  }

  /** maybeCut() whose refusal is left to recover() (the records before it are durable). */
  private cutQuietly(): void {
    try {
      this.guard(() => this.maybeCut())
    } catch (e) {
      if (!(e instanceof WalWriteRefused)) throw e
    }
  }

  /**
   * Records, durably, that a raft snapshot at {index, term} was taken. Call it
   * after Snapshotter.save() wrote the .snap file (so that no marker lacks its
   * file; a file without a marker is ignored by Wal.validSnapshots()), then
   * releaseTo(index). A refused fdatasync throws WalWriteRefused (the marker
   * is written again by recover(); without it the .snap file is ignored).
   */
  saveSnapshot(snapshot: WalSnapshot): void {
    this.checkUsable()
    assert(this.idle(), "saveSnapshot() while saveAsync() waits for its fdatasync")
    assertIndex(snapshot.index, "snapshot index")
    assertIndex(snapshot.term, "snapshot term")
    this.recover()
    this.guard(() => {
      this.append(RecordType.Snapshot, this.noFsync ? 0 : FLAG_SYNCED, [snapshot.index, snapshot.term])
      if (snapshot.index > this.last) this.last = snapshot.index
      if (!this.noFsync) this.sync()
    })
    this.cutQuietly()
  }

  /**
   * Marks the segments wholly before the one holding `index` (a snapshot
   * index) as no longer needed, and deletes the oldest of them while more
   * than maxWals segments remain.
   */
  releaseTo(index: number): void {
    this.checkUsable()
    assertIndex(index, "release index")
    const keepFrom = searchIndex(this.segments, index)
    if (keepFrom > this.releasedCount) this.releasedCount = keepFrom
    if (this.maxWals === 0) return
    let removed = 0
    while (this.releasedCount > 0 && this.segments.length > this.maxWals) {
      const oldest = this.segments[0]!
      // Oldest first, so that what remains is always a consecutive run.
      this.guard(() => this.fs.unlink(`${this.dir}/${oldest.name}`))
      this.logger.info("wal: purged segment", { file: `${this.dir}/${oldest.name}` })
      this.segments.shift()
      this.releasedCount--
      removed++
    }
    if (removed > 0) this.guard(() => this.fs.fsyncDir(this.dir))
  }

  /** Names of the segment files, oldest first. */
  segmentNames(): string[] {
    return this.segments.map((s) => s.name)
  }

  /**
   * Syncs the tail (records saved without a sync: commit-only hard states,
   * --unsafe-no-fsync) and closes the file. The file is closed even when the
   * sync fails; a sync the file system refuses (read-only, full) throws
   * WalWriteRefused: every record saved with a sync is already durable. After
   * a refused fdatasync (needsRecovery()) the file is closed without another
   * one, and close() throws WalWriteRefused: the records not known durable
   * were never acknowledged.
   */
  close(): void {
    if (this.closed) return
    this.closed = true
    if (this.failure !== undefined || this.tailLost !== undefined) {
      this.writer.file.close()
      if (this.tailLost !== undefined && this.failure === undefined) throw new WalWriteRefused(this.tailLost)
      return
    }
    try {
      this.writer.file.fdatasync()
    } catch (e) {
      if (isFsError(e) && REFUSED_WRITE_CODES.has(e.code)) throw new WalWriteRefused(e)
      throw e
    } finally {
      this.writer.file.close()
    }
  }

  // --- writing --------------------------------------------------------------

  /** Encodes and writes one record at the tail, with one pwrite. */
  private append(type: RecordType, flags: number, value: unknown): void {
    const payload = encodeValue(value)
    assert(payload.length <= MAX_PAYLOAD_BYTES, () => `wal record of ${payload.length} bytes is too large`)
    const size = HEADER_BYTES + payload.length
    if (size > this.buffer.length) this.buffer = new Uint8Array(Math.max(size, this.buffer.length * 2))
    this.buffer.set(payload, HEADER_BYTES)
    const crc = sealRecord(this.buffer, 0, { type, flags, payloadBytes: payload.length, prevCrc: this.writer.crc })
    this.writer.file.write(this.buffer.subarray(0, size), this.writer.tail)
    this.writer.tail += size
    this.bytesWritten += size
    this.writer.crc = crc
    if (type === RecordType.Snapshot) {
      const [index, term] = value as [number, number]
      this.keepUnsynced({ kind: "snapshot", snapshot: { index, term }, flags })
    }
  }

  /**
   * fdatasync of the current segment, timed (etcd_disk_wal_fsync_duration_seconds; a warning past 1 s).
   * A refused one throws WalWriteRefused and leaves the WAL waiting for recover().
   */
  private sync(): void {
    const covered = this.mark()
    const count = this.unsynced.length
    const start = performance.now()
    try {
      this.writer.file.fdatasync()
    } catch (e) {
      throw this.refusedSync(e)
    }
    const took = performance.now() - start
    this.synced(covered, count)
    this.onSync?.(took)
    if (took > SLOW_SYNC_MS) this.logger.warn("wal: slow fdatasync", { took: `${Math.round(took)}ms`, expectedDuration: "1s" })
  }

  /** A sync issued at `covered` succeeded: the first `count` unsynced records are durable. */
  private synced(covered: Mark, count: number): void {
    this.durable = covered
    this.unsynced.splice(0, count)
  }

  /** A failed fdatasync: refused (the WAL waits for recover(); returns a WalWriteRefused) or fatal (returned as it is). */
  private refusedSync(e: unknown): unknown {
    if (!isFsError(e) || !REFUSED_SYNC_CODES.has(e.code)) return e
    if (this.tailLost === undefined) {
      this.logger.warn("wal: fdatasync refused; the records written since the last good one are not durable and wait to be written again into a new segment", {
        file: this.writer.file.path,
        records: this.unsynced.length,
        error: e.message,
      })
    }
    this.tailLost = e
    return new WalWriteRefused(e)
  }

  /** Runs file-system calls whose refusal (EROFS, ENOSPC) leaves the WAL to recover(): throws WalWriteRefused for it. */
  private refusing<T>(action: () => T): T {
    try {
      return action()
    } catch (e) {
      throw this.refusedSync(e)
    }
  }

  private mark(): Mark {
    return { tail: this.writer.tail, crc: this.writer.crc, hardState: this.hardState, last: this.last }
  }

  /** Keeps a record written after the last good sync (a commit-only hard state replaces the one before it). */
  private keepUnsynced(record: Unsynced): void {
    if (this.noFsync) return
    const prev = this.unsynced[this.unsynced.length - 1]
    if (record.kind === "batch" && record.entries.length === 0 && prev?.kind === "batch" && prev.entries.length === 0) {
      this.unsynced[this.unsynced.length - 1] = { kind: "batch", hardState: record.hardState ?? prev.hardState, entries: [], flags: prev.flags | record.flags }
      return
    }
    this.unsynced.push(record)
  }

  /** Encodes one save() straight into the write buffer and writes it with one pwrite. */
  private appendBatch(hardState: HardState | undefined, entries: readonly Entry[], flags: number): void {
    const max = HEADER_BYTES + batchBytesMax(entries)
    if (max > this.buffer.length) this.buffer = new Uint8Array(Math.max(max, this.buffer.length * 2))
    const end = writeBatch(this.buffer, HEADER_BYTES, hardState, entries)
    const payloadBytes = end - HEADER_BYTES
    assert(payloadBytes <= MAX_PAYLOAD_BYTES, () => `wal record of ${payloadBytes} bytes is too large`)
    const crc = sealRecord(this.buffer, 0, { type: RecordType.Batch, flags, payloadBytes, prevCrc: this.writer.crc })
    this.writer.file.write(this.buffer.subarray(0, end), this.writer.tail)
    this.writer.tail += end
    this.bytesWritten += end
    this.writer.crc = crc
    this.keepUnsynced({ kind: "batch", hardState, entries, flags })
  }

  /** Closes the full segment at its last record and starts the next one. A refusal leaves the WAL to recover(). */
  private cut(): void {
    const old = this.writer
    this.refusing(() => {
      old.file.truncate(old.tail)
      if (!this.noFsync) old.file.fsync()
    })
    // Everything the old segment holds is durable now.
    this.synced(this.mark(), this.unsynced.length)
    const next = this.refusing(() => this.nextSegment({ last: this.last, hardState: this.hardState, crc: old.crc }))
    this.durable = this.mark()
    old.file.close()
    this.logger.info("wal: cut segment", { file: `${this.dir}/${next.name}` })
  }

  /** Creates the segment after the current one, starting after `from` (its first record carries from's hard state, chained to from's crc), and writes to it. */
  private nextSegment(from: { last: number; hardState: HardState; crc: number }): SegmentName {
    const prev = this.segments[this.segments.length - 1]!
    const next: SegmentName = { seq: prev.seq + 1, index: from.last + 1, name: segmentName(prev.seq + 1, from.last + 1) }
    this.writer = createSegment({
      fs: this.fs,
      dir: this.dir,
      name: next.name,
      segmentBytes: this.segmentBytes,
      metadata: this.metadata,
      hardState: from.hardState,
      prevCrc: from.crc,
      sync: !this.noFsync,
    })
    this.segments.push(next)
    return next
  }

  /** Runs a write; a failure other than a refused sync leaves the WAL unusable. */
  private guard(action: () => void): void {
    try {
      action()
    } catch (e) {
      if (!(e instanceof WalWriteRefused)) this.failure = e
      throw e
    }
  }

  private checkUsable(): void {
    if (this.closed) throw new WalError("closed")
    if (this.failure !== undefined) {
      const cause = this.failure instanceof Error ? this.failure.message : String(this.failure)
      throw new WalError(`an earlier write failed (${cause}); the WAL must be reopened`)
    }
  }
}

/**
 * Opens the last segment for writing under an exclusive lock, so that two
 * members never write one WAL; checks it is still the last once locked.
 */
function lockLastSegment(fs: FsPort, dir: string, all: readonly SegmentName[]): FileHandle {
  const path = `${dir}/${all[all.length - 1]!.name}`
  const file = fs.open(path, "write")
  const locked = file.tryLock()
  const now = locked ? sortSegments(fs.readdir(dir), dir) : []
  if (!locked || now[now.length - 1]?.name !== all[all.length - 1]!.name) {
    file.close()
    throw new WalError("the WAL is locked by another process (is another member running on this data dir?)", path)
  }
  return file
}

/** Writes a new segment (temp file, preallocate, header record, fsync, rename, dir fsync) and returns it open. */
function createSegment(init: {
  fs: FsPort
  dir: string
  name: string
  segmentBytes: number
  metadata: WalMetadata
  hardState: HardState | undefined
  prevCrc: number
  /** fsync the new segment before naming it (skipped only with --unsafe-no-fsync). */
  sync?: boolean
}): Writer {
  const { fs, dir } = init
  const path = `${dir}/${init.name}`
  const temp = `${path}.tmp`
  if (fs.exists(temp)) fs.unlink(temp)
  const file = fs.open(temp, "create")
  try {
    assert(file.tryLock(), () => `a new segment ${temp} is locked`)
    file.preallocate(init.segmentBytes)
    const payload = encodeValue(segmentWire(init.metadata, init.hardState))
    const buffer = new Uint8Array(HEADER_BYTES + 4 + payload.length)
    new DataView(buffer.buffer).setUint32(HEADER_BYTES, init.prevCrc, true)
    buffer.set(payload, HEADER_BYTES + 4)
    const crc = sealRecord(buffer, 0, { type: RecordType.Segment, flags: FLAG_SYNCED, payloadBytes: 4 + payload.length, prevCrc: init.prevCrc })
    file.write(buffer, 0)
    if (init.sync !== false) file.fsync()
    fs.rename(temp, path)
    fs.fsyncDir(dir)
    return { file, tail: buffer.length, crc }
  } catch (e) {
    file.close()
    throw e
  }
}

/** Reading the records of consecutive segments, checking them as it goes. */
class Replay {
  crc = 0
  lastIndex = 0
  tornBytes = 0
  private metadata: WalMetadata | undefined
  private hardState: HardState = EMPTY_HARD_STATE
  private readonly entries: Entry[] = []
  private snapshotFound: boolean
  /** Every snapshot marker read (kept only when markersOnly). */
  readonly markers: WalSnapshot[] = []

  constructor(
    private readonly dir: string,
    private readonly snapshot: WalSnapshot,
    /** Only the markers and the hard state matter: entries are not kept or checked. */
    private readonly markersOnly = false,
  ) {
    this.snapshotFound = snapshot.index === 0 || markersOnly
    this.lastIndex = snapshot.index
  }

  /** Reads one segment; returns the offset after its last good record. */
  readSegment(bytes: Uint8Array, name: string, isLast: boolean, logger: Logger): number {
    const file = `${this.dir}/${name}`
    let at = 0
    let first = true
    while (at < bytes.length) {
      const record = readRecord(bytes, at, this.crc)
      if (!record.ok) {
        this.damaged({ bytes, at, file, isLast, reason: record.reason, header: record.header, logger })
        return at
      }
      if (first !== (record.type === RecordType.Segment)) {
        throw new WalError(first ? "segment does not start with a segment header record" : "segment header record in the middle of a segment", file, at)
      }
      if (first && this.metadata !== undefined && record.storedPrevCrc !== this.crc) {
        throw new WalError(
          `crc chain broken: the previous segment ends with crc ${hex(this.crc)} but this one follows ${hex(record.storedPrevCrc)} (records lost at the end of the previous segment)`,
          file,
          at,
        )
      }
      const payload = bytes.subarray(record.type === RecordType.Segment ? record.payloadStart + 4 : record.payloadStart, record.end)
      try {
        this.apply(record.type, decodeValue(payload), file, at)
      } catch (e) {
        if (e instanceof ShapeError) throw new WalError(`malformed ${RecordType[record.type]} record: ${e.message}`, file, at)
        throw e
      }
      this.crc = record.crc
      at = record.end
      first = false
    }
    if (first) throw new WalError("empty segment", file, 0)
    return at
  }

  finish(): { metadata: WalMetadata; hardState: HardState; entries: Entry[] } {
    assert(this.metadata !== undefined, "no segment read")
    if (!this.snapshotFound) {
      throw new WalError(`snapshot marker {index ${this.snapshot.index}, term ${this.snapshot.term}} not found in the WAL ${this.dir}`)
    }
    const lastIndex = this.snapshot.index + this.entries.length
    if (!this.markersOnly && this.hardState.commit > lastIndex) {
      throw new WalError(`hard state commit ${this.hardState.commit} is beyond the last entry ${lastIndex}: committed entries are missing from ${this.dir}`)
    }
    return { metadata: this.metadata, hardState: this.hardState, entries: this.entries }
  }

  private apply(type: RecordType, value: unknown, file: string, at: number): void {
    switch (type) {
      case RecordType.Segment: {
        const header = parseSegmentHeader(value)
        if (this.metadata !== undefined && !sameMetadata(this.metadata, header.metadata)) {
          throw new WalError("metadata conflict: this segment belongs to another member or cluster", file, at)
        }
        this.metadata = header.metadata
        if (header.hardState !== undefined) this.hardState = header.hardState
        return
      }
      case RecordType.Batch: {
        if (this.markersOnly) {
          this.hardState = parseBatchHardState(value) ?? this.hardState
          return
        }
        const batch = parseBatch(value)
        if (batch.hardState !== undefined) this.hardState = batch.hardState
        for (const e of batch.entries) this.addEntry(e, file, at)
        return
      }
      case RecordType.Snapshot: {
        const snap = parseSnapshot(value)
        if (this.markersOnly) this.markers.push(snap)
        if (snap.index === this.snapshot.index && this.snapshot.index > 0) {
          if (snap.term !== this.snapshot.term) {
            throw new WalError(`snapshot term mismatch at index ${snap.index}: the WAL says ${snap.term}, the snapshot ${this.snapshot.term}`, file, at)
          }
          this.snapshotFound = true
        }
        if (snap.index > this.lastIndex) this.lastIndex = snap.index
        return
      }
    }
  }

  private addEntry(e: Entry, file: string, at: number): void {
    this.lastIndex = e.index
    if (e.index <= this.snapshot.index) return
    const position = e.index - this.snapshot.index - 1
    if (position > this.entries.length) {
      throw new WalError(`gap in entry indexes: entry ${e.index} follows ${this.snapshot.index + this.entries.length}`, file, at)
    }
    this.entries.length = position
    this.entries.push(e)
  }

  /** A record that does not check out: a torn tail of the last segment, the clean end, or corruption. */
  private damaged(d: {
    bytes: Uint8Array
    at: number
    file: string
    isLast: boolean
    reason: string
    header: RecordHeader | undefined
    logger: Logger
  }): void {
    const dataEnd = endOfData(d.bytes)
    if (d.at === 0) throw new WalError(`unreadable segment header record: ${d.reason}`, d.file, 0)
    if (dataEnd <= d.at) return // zeros to the end: preallocated space, the clean end
    if (d.isLast && isTornTail(d.bytes, d.at, dataEnd, d.header)) {
      // Nothing was ever written after this record: it is the write of a save() that did not return.
      this.tornBytes = dataEnd - d.at
      d.logger.warn("wal: truncating a torn write at the end of the last segment", {
        file: d.file,
        offset: d.at,
        bytes: this.tornBytes,
        reason: d.reason,
      })
      return
    }
    throw new WalError(`${d.reason}${d.isLast ? "" : " in a segment that is not the last"}`, d.file, d.at)
  }
}

/**
 * Whether the damaged record at `at` of the last segment, with data up to
 * `dataEnd`, can be explained by a crash rather than by corruption of what
 * was acknowledged. A completed fsync makes every earlier write durable, so
 * if a crash damaged this record, no fsync completed after it was written:
 * what follows can only be records whose save() returned without a sync
 * (commit-only hard states) and, last, the one record whose sync the crash
 * interrupted. A record flagged synced with data after its end therefore
 * means corruption; so does a synced record before the last. Disks may persist
 * the sectors of a write in any order, so the damage may be anywhere in that
 * tail, headers included.
 */
function isTornTail(bytes: Uint8Array, at: number, dataEnd: number, header: RecordHeader | undefined): boolean {
  if (header !== undefined && (header.flags & FLAG_SYNCED) !== 0) return dataEnd <= header.end
  for (let p = at + 1; p + HEADER_BYTES <= dataEnd; p++) {
    const next = readHeader(bytes, p)
    if (next !== undefined && (next.flags & FLAG_SYNCED) !== 0 && dataEnd > next.end) return false
  }
  return true
}

function checkHardState(hs: HardState, prev: HardState): void {
  assertIndex(hs.term, "hard state term")
  assertIndex(hs.commit, "hard state commit")
  assert(hs.term >= prev.term, () => `hard state term goes back from ${prev.term} to ${hs.term}`)
  assert(hs.commit >= prev.commit, () => `hard state commit goes back from ${prev.commit} to ${hs.commit}`)
}

function checkEntries(entries: readonly Entry[], lastIndex: number): void {
  if (entries.length === 0) return
  const first = entries[0]!
  assertIndex(first.index, "entry index")
  assert(first.index >= 1, "entry index 0")
  assert(first.index <= lastIndex + 1, () => `entry ${first.index} would leave a gap after ${lastIndex}`)
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!
    assertIndex(e.term, "entry term")
    assert(e.index === first.index + i, () => `entries not contiguous: ${e.index} at position ${i} after ${first.index}`)
  }
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit
}

function sameMetadata(a: WalMetadata, b: WalMetadata): boolean {
  return a.memberId === b.memberId && a.clusterId === b.clusterId
}


function hex(n: number): string {
  return n.toString(16).padStart(8, "0")
}
