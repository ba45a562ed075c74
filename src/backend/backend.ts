// The applied state on disk: one bun:sqlite database (our bbolt). Rooms above
// (mvcc, lease, auth, membership) create their own tables in `db` and write
// only inside the open batch transaction; `commit()` ends the batch. The
// consistent index (the last raft entry whose effects are in the db) is written
// by commit() into the same transaction as the state it describes, so after a
// crash the db and its consistent index always agree and the server replays
// the WAL from there.
//
// No timers here: the server calls commit() every --backend-batch-interval, and
// commitIfFull() between applied entries (--backend-batch-limit writes).

import { Database, type Statement } from "bun:sqlite"
import { closeSync, fdatasync, openSync, readSync, rmSync, statSync, writeSync } from "node:fs"
import { assert } from "../lib/assert"
import { type CheckpointReport, Checkpointer } from "./checkpointer"

export interface BackendOptions {
  /** A file path, or ":memory:" for tests and simulation. */
  path: string
  /** Writes after which noteWrites() commits the batch (etcd: 10000). */
  batchLimit?: number
  /** SQLite page cache (default 64 MiB): the key indexes of a busy store must stay in memory. */
  cacheBytes?: number
  /** Bytes of the file read through mmap (default 0: off). */
  mmapBytes?: number
  /**
   * Checkpoint SQLite's -wal file on a Worker thread (checkpointer.ts) instead
   * of inside COMMIT. Members turn it on; a file path is required.
   */
  checkpointInWorker?: boolean
  /** -wal frames after which the backend rewinds the file itself (default 16384). */
  checkpointRestartFrames?: number
  /** The worker's checkpoints start at most this often (default 5000 ms; 0: after every commit). */
  checkpointMinIntervalMs?: number
  /** The worker failed; the backend went back to checkpointing inside COMMIT. */
  onCheckpointError?: (error: Error) => void
  onCheckpointReport?: (report: CheckpointReport) => void
}

/**
 * A write of the batch (its COMMIT, or a statement that spilled pages) that
 * the disk refused: full, read-only, an I/O error. SQLite rolled the batch
 * back; the db holds what the last commit made, with its consistent index.
 * The caller reloads what it keeps in memory from the db and applies the raft
 * entries after that index again (reopenBatch()); the backend refuses writes
 * until then.
 */
export class BackendWriteRefused extends Error {
  override readonly name = "BackendWriteRefused"
  constructor(readonly sqliteError: Error) {
    super(`backend: write refused, batch rolled back: ${sqliteError.message}`)
  }
}

/** SQLite codes (and errnos) of a write the disk refused rather than a broken db or a bug. */
export function isRefusedWrite(e: unknown): e is Error {
  if (!(e instanceof Error)) return false
  const code = String((e as { code?: unknown }).code ?? "")
  return /^SQLITE_(FULL|IOERR|READONLY)/.test(code) || code === "ENOSPC" || code === "EROFS" || code === "EDQUOT"
}

export interface ConsistentIndex {
  index: number
  term: number
}

/** Pages in the -wal file after which COMMIT checkpoints when no worker does (SQLite's default: 1000). */
const INLINE_CHECKPOINT_PAGES = 10_000
/** Page size of a new db file. */
const PAGE_BYTES = 16_384
/** -wal frames after which the backend rewinds the file when the worker checkpoints (256 MiB of 16 KiB pages). */
const DEFAULT_RESTART_FRAMES = 16_384
/** The worker checkpoints at most this often: see CheckpointerOptions.minIntervalMs. */
const DEFAULT_CHECKPOINT_INTERVAL_MS = 5_000
/** How long a checkpoint that must complete waits for the worker's to end. */
const CHECKPOINT_WAIT_MS = 30_000

export class Backend {
  readonly db: Database
  readonly path: string
  private readonly batchLimit: number
  private inBatch = false
  private pendingWrites = 0
  private consistent: ConsistentIndex = { index: 0, term: 0 }
  /** The consistent index as of the last commit. */
  private persistedIndex = 0
  private readonly getMetaStmt: Statement<{ value: Uint8Array }, [string]>
  private readonly setMetaStmt: Statement<unknown, [string, Uint8Array]>
  /** Called after every successful commit (metrics: backend commit duration). */
  onCommit: ((durationMs: number) => void) | undefined
  private checkpointer: Checkpointer | undefined

  private constructor(db: Database, options: BackendOptions) {
    this.db = db
    this.path = options.path
    this.batchLimit = options.batchLimit ?? 10_000
    db.exec("PRAGMA journal_mode = WAL")
    db.exec("PRAGMA synchronous = NORMAL")
    db.exec("PRAGMA temp_store = MEMORY")
    db.exec(`PRAGMA cache_size = ${-Math.floor((options.cacheBytes ?? 64 * 2 ** 20) / 1024)}`)
    if (options.mmapBytes) db.exec(`PRAGMA mmap_size = ${Math.floor(options.mmapBytes)}`)
    // After a checkpoint, truncate the -wal file back to 64 MiB instead of keeping its high-water mark.
    db.exec("PRAGMA journal_size_limit = 67108864")
    // Checkpoint every 10000 pages (40 MiB) instead of 1000: hot pages are copied once per checkpoint, not ten times.
    db.exec(`PRAGMA wal_autocheckpoint = ${INLINE_CHECKPOINT_PAGES}`)
    if (options.checkpointInWorker === true && options.path !== ":memory:") {
      db.exec("PRAGMA wal_autocheckpoint = 0")
      // The -wal file is rewound at about restartFrames pages; truncating it back to 64 MiB at
      // each rewind cost a 100-150 ms stall (ext4 freeing 200+ MiB): it keeps its size instead.
      const restartFrames = options.checkpointRestartFrames ?? DEFAULT_RESTART_FRAMES
      db.exec(`PRAGMA journal_size_limit = ${(restartFrames + 4096) * PAGE_BYTES}`)
      this.checkpointer = new Checkpointer({
        path: options.path,
        restartFrames,
        minIntervalMs: options.checkpointMinIntervalMs ?? DEFAULT_CHECKPOINT_INTERVAL_MS,
        onReport: (report) => {
          options.onCheckpointReport?.(report)
          if (this.checkpointer?.wantsRestart() === true) this.rewindWal()
        },
        onError: (error) => {
          this.checkpointer = undefined
          this.db.exec(`PRAGMA wal_autocheckpoint = ${INLINE_CHECKPOINT_PAGES}`)
          options.onCheckpointError?.(error)
        },
      })
    }
    db.exec("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID")
    this.getMetaStmt = db.query("SELECT value FROM meta WHERE key = ?")
    this.setMetaStmt = db.query("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
    const raw = this.getMeta("consistent_index")
    if (raw) {
      const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength)
      this.consistent = { index: Number(view.getBigUint64(0)), term: Number(view.getBigUint64(8)) }
      this.persistedIndex = this.consistent.index
    }
  }

  static open(options: BackendOptions): Backend {
    const db = new Database(options.path, { create: true, strict: true })
    if (options.path !== ":memory:") {
      // 16 KiB pages (on a new db; an existing one keeps its size): a batch of
      // random puts dirties about every page of the key indexes, and SQLite
      // writes each dirty page as its own WAL frame with two syscalls, so
      // bigger pages halve the COMMIT stall (48.9 -> 22.9 ms for 40000 puts
      // over 100k keys) and the checkpoint work.
      db.exec(`PRAGMA page_size = ${PAGE_BYTES}`)
      // Freed pages are reclaimed in bounded steps (PRAGMA incremental_vacuum)
      // instead of a stop-the-world VACUUM; it only takes effect on a new db.
      db.exec("PRAGMA auto_vacuum = INCREMENTAL")
    }
    return new Backend(db, options)
  }

  /** Starts the batch transaction if none is open. Call before any write. */
  begin(): void {
    if (this.failure !== undefined) throw this.failure
    if (this.lost !== undefined) throw new BackendWriteRefused(this.lost)
    if (this.inBatch) return
    this.db.exec("BEGIN IMMEDIATE")
    this.inBatch = true
  }

  /**
   * Counts writes of the batch. It never commits by itself: a commit in the
   * middle of applying an entry would make half of it durable under the
   * previous consistent index. The server calls commitIfFull() between entries.
   */
  noteWrites(count = 1): void {
    this.pendingWrites += count
  }

  /** Commits when the batch reached --backend-batch-limit writes (call between applied entries). */
  commitIfFull(): void {
    if (this.pendingWrites >= this.batchLimit) this.commit()
  }


  /** Records the last applied raft entry; written by the next commit(). */
  setConsistentIndex(index: number, term: number): void {
    assert(index >= this.consistent.index, () => `consistent index going back: ${index} < ${this.consistent.index}`)
    this.consistent = { index, term }
  }

  consistentIndex(): ConsistentIndex {
    return this.consistent
  }

  /**
   * Set once SQLite failed a write of the batch (SQLITE_FULL, SQLITE_IOERR,
   * SQLITE_READONLY): SQLite may have rolled the batch back by itself, and the
   * applied state it held is gone from the db. Nothing is committed after
   * that: a consistent index written without the batch (in autocommit mode,
   * the transaction gone) would skip the batch's entries at the next start's
   * WAL replay, losing acknowledged writes. The member must stop and replay.
   */
  private failure: Error | undefined

  /** The error that made the backend refuse to commit (undefined while it works). */
  failed(): Error | undefined {
    return this.failure
  }

  /** Set when the disk refused a write of the batch and SQLite rolled it back: writes wait for reopenBatch(). */
  private lost: Error | undefined

  /** Called (synchronously, inside the failing call) when the disk refused a write and the batch was rolled back. */
  onWriteRefused: ((error: BackendWriteRefused) => void) | undefined

  /** Whether the batch was rolled back after a refused write, and reopenBatch() has not been called since. */
  batchLost(): boolean {
    return this.lost !== undefined
  }

  /**
   * A failed write of the batch: one the disk refused rolls the batch back
   * and returns a BackendWriteRefused (the backend is usable again after
   * reopenBatch()); any other stops the backend for good (returned as is).
   */
  writeFailed(error: unknown): Error {
    if (this.failure !== undefined || !isRefusedWrite(error)) return this.fail(error)
    if (this.db.inTransaction) {
      try {
        this.db.exec("ROLLBACK")
      } catch {}
    }
    this.inBatch = false
    this.pendingWrites = 0
    this.lost = error
    const refused = new BackendWriteRefused(error)
    this.onWriteRefused?.(refused)
    return refused
  }

  /**
   * After a BackendWriteRefused: the consistent index goes back to the db's
   * (the last commit's) and writes are taken again, in a new batch. The caller
   * reloads its state from the db and applies the entries after it again.
   */
  reopenBatch(): ConsistentIndex {
    assert(this.lost !== undefined, "reopenBatch() without a lost batch")
    assert(!this.db.inTransaction, "a transaction is open after the batch was rolled back")
    this.lost = undefined
    const raw = this.getMeta("consistent_index")
    const view = raw === null ? undefined : new DataView(raw.buffer, raw.byteOffset, raw.byteLength)
    this.consistent = view === undefined ? { index: 0, term: 0 } : { index: Number(view.getBigUint64(0)), term: Number(view.getBigUint64(8)) }
    assert(this.consistent.index === this.persistedIndex, () => `the db's consistent index ${this.consistent.index} is not the last committed ${this.persistedIndex}`)
    this.sizeCache = -1
    return this.consistent
  }

  private fail(error: unknown): Error {
    const e = error instanceof Error ? error : new Error(String(error))
    this.failure ??= e
    if (this.db.inTransaction) {
      try {
        this.db.exec("ROLLBACK")
      } catch {}
    }
    this.inBatch = false
    return this.failure
  }

  /** Ends the batch: the state and its consistent index become one durable unit. */
  commit(): void {
    if (this.failure !== undefined) throw this.failure
    if (this.lost !== undefined) throw new BackendWriteRefused(this.lost)
    // Entries that wrote nothing still move the consistent index; it must reach the disk too,
    // or a raft snapshot taken at the applied index would be ahead of the db after a restart.
    if (!this.inBatch && this.consistent.index !== this.persistedIndex) this.begin()
    if (!this.inBatch) return
    // A statement of the batch failed and SQLite rolled the transaction back.
    if (!this.db.inTransaction) throw this.fail(new Error("backend: SQLite rolled back the batch after a failed write; not committing without it"))
    const started = performance.now()
    const buf = new Uint8Array(16)
    const view = new DataView(buf.buffer)
    view.setBigUint64(0, BigInt(this.consistent.index))
    view.setBigUint64(8, BigInt(this.consistent.term))
    try {
      this.setMetaStmt.run("consistent_index", buf)
      this.db.exec("COMMIT")
    } catch (e) {
      throw this.writeFailed(e)
    }
    this.sizeCache = -1
    this.persistedIndex = this.consistent.index
    this.inBatch = false
    this.pendingWrites = 0
    this.afterCommit()
    this.onCommit?.(performance.now() - started)
  }

  /**
   * The worker just copied everything up to the last commit and the -wal file
   * is past restartFrames: commit now, so that the batch this connection must
   * copy itself (afterCommit) is only what was written while the worker ran,
   * not up to a second of writes (a 50-100 ms stall).
   */
  private rewindWal(): void {
    if (this.inBatch) this.commit()
    else this.afterCommit()
  }

  private afterCommit(): void {
    const checkpointer = this.checkpointer
    if (checkpointer === undefined) return
    if (checkpointer.wantsRestart()) {
      // The worker copied all but this last batch: copy it here, so the next
      // write transaction begins with every frame copied and rewinds the file.
      const [busy, log, done] = this.checkpoint("PASSIVE")
      if (!busy && log === done) {
        checkpointer.restarted()
        return
      }
    }
    checkpointer.requestCheckpoint()
  }

  /** Runs a checkpoint on this connection: [busy, frames in the -wal file, frames copied]. */
  private checkpoint(mode: "PASSIVE" | "FULL" | "TRUNCATE"): [boolean, number, number] {
    const row = this.db.query(`PRAGMA wal_checkpoint(${mode})`).values()[0] ?? [0, 0, 0]
    return [Number(row[0]) !== 0, Number(row[1]), Number(row[2])]
  }

  /**
   * A FULL (or TRUNCATE) checkpoint that must complete: SQLite answers busy
   * at once, without waiting, while the worker's checkpoint holds the
   * checkpoint lock, so this retries until it gets through.
   */
  private checkpointFully(mode: "FULL" | "TRUNCATE" = "FULL"): void {
    const deadline = performance.now() + CHECKPOINT_WAIT_MS
    for (;;) {
      const [busy, log, done] = this.checkpoint(mode)
      if (!busy && (log === done || log === -1)) return
      if (performance.now() > deadline) throw new Error(`wal checkpoint(${mode}) of ${this.path} still busy after ${CHECKPOINT_WAIT_MS} ms`)
      Bun.sleepSync(1)
    }
  }

  /**
   * Commits the batch and makes everything committed durable (a full WAL
   * checkpoint fsyncs SQLite's WAL and then the db): required before raft
   * snapshots let the raft log go, since commits alone are not fsynced
   * (synchronous = NORMAL) and the raft WAL is what replays them.
   */
  commitDurably(): void {
    this.commit()
    this.checkpointFully()
  }

  /**
   * commitDurably() without copying pages on the caller's thread: commits,
   * then fdatasyncs SQLite's -wal file on the thread pool and calls `done`.
   * Every committed frame is then durable: those still in the -wal file by
   * this fdatasync, those already copied into the db file by the checkpoint
   * that copied them (it syncs the db before the -wal file may be rewound).
   * A raft snapshot used to stall the member 40-130 ms on the FULL checkpoint.
   */
  commitDurablyAsync(done: (error: Error | null) => void): void {
    this.commit()
    if (this.path === ":memory:") {
      queueMicrotask(() => done(null))
      return
    }
    let fd: number
    try {
      fd = this.walFd ??= openSync(`${this.path}-wal`, "r")
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e
      // No -wal file: nothing committed lives outside the db file; make that durable.
      this.checkpointFully()
      queueMicrotask(() => done(null))
      return
    }
    fdatasync(fd, (error) => done(error ?? null))
  }

  /** Our own descriptor of the -wal file, for commitDurablyAsync() (SQLite rewinds the file, never replaces it). */
  private walFd: number | undefined

  /**
   * Replaces every table's rows with those of the db file at `sourcePath` (a
   * snapshot received from the leader), in one transaction on this same
   * connection, so the statements other rooms prepared stay valid; then
   * makes it durable. The rooms must reload their caches afterwards.
   */
  replaceContentsFrom(sourcePath: string): void {
    this.commit()
    this.db.query("ATTACH DATABASE ? AS incoming").run(sourcePath)
    try {
      const tables = this.db
        .query<{ name: string }, []>("SELECT name FROM incoming.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .all()
        .map((r) => r.name)
      const local = new Set(this.db.query<{ name: string }, []>("SELECT name FROM main.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").all().map((r) => r.name))
      this.db.exec("BEGIN IMMEDIATE")
      try {
        for (const name of local) this.db.exec(`DELETE FROM main."${name}"`)
        for (const name of tables) {
          if (!local.has(name)) continue
          this.db.exec(`INSERT INTO main."${name}" SELECT * FROM incoming."${name}"`)
        }
        this.db.exec("COMMIT")
      } catch (e) {
        this.db.exec("ROLLBACK")
        throw e
      }
    } finally {
      this.db.exec("DETACH DATABASE incoming")
    }
    const raw = this.getMeta("consistent_index")
    assert(raw !== null, "the snapshot db has no consistent index")
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength)
    this.consistent = { index: Number(view.getBigUint64(0)), term: Number(view.getBigUint64(8)) }
    this.persistedIndex = this.consistent.index
    this.sizeCache = -1
    this.checkpointFully()
  }

  getMeta(key: string): Uint8Array | null {
    const row = this.getMetaStmt.get(key)
    return row ? row.value : null
  }

  /** Writes a meta value inside the current batch. */
  setMeta(key: string, value: Uint8Array): void {
    this.begin()
    this.setMetaStmt.run(key, value)
  }

  /** Bytes the db file takes (etcd's dbSize). */
  sizeBytes(): number {
    // The quota check calls this before every write: like etcd's bolt file size it is the size as
    // of the last commit (a PRAGMA page_count costs ~10 µs, a read transaction of its own).
    if (this.sizeCache < 0) this.sizeCache = this.pageCount() * this.pageSize()
    return this.sizeCache
  }

  /** Bytes in use, without free pages (etcd's dbSizeInUse). */
  sizeInUseBytes(): number {
    return (this.pageCount() - this.pragmaNumber("freelist_count")) * this.pageSize()
  }

  /** Writes a consistent copy of the whole db to `targetPath` (snapshots). */
  copyTo(targetPath: string): void {
    this.commit()
    this.db.query("VACUUM INTO ?").run(targetPath)
  }

  /**
   * Defrag step: returns up to `pagesMax` free pages to the file system
   * (PRAGMA incremental_vacuum) inside the batch. Each step is short, so the
   * server can run steps between applies and never stop the world. Returns
   * the free pages left. Only files created with auto_vacuum=INCREMENTAL
   * (every db Backend.open creates) shrink this way; see defrag().
   */
  reclaimStep(pagesMax = 1024): number {
    this.begin()
    this.db.query(`PRAGMA incremental_vacuum(${Math.max(1, Math.floor(pagesMax))})`).all()
    return this.pragmaNumber("freelist_count")
  }

  /**
   * Maintenance.Defragment. `rewrite: false` (default) reclaims free pages in
   * short steps (longest pause reported); `rewrite: true` runs VACUUM, which
   * also packs half-empty pages but blocks the member for the whole rewrite,
   * like etcd's defrag.
   */
  defrag(options: { rewrite?: boolean; pagesPerStep?: number } = {}): { pauseMsMax: number; freedBytes: number } {
    const before = this.sizeBytes()
    let pauseMsMax = 0
    if (options.rewrite || this.pragmaNumber("auto_vacuum") !== 2) {
      this.commit()
      const started = performance.now()
      this.db.exec("VACUUM")
      this.sizeCache = -1
      pauseMsMax = performance.now() - started
    } else {
      for (;;) {
        const started = performance.now()
        const left = this.reclaimStep(options.pagesPerStep)
        this.commit()
        pauseMsMax = Math.max(pauseMsMax, performance.now() - started)
        if (left === 0) break
      }
    }
    return { pauseMsMax, freedBytes: before - this.sizeBytes() }
  }

  /**
   * A consistent copy of the whole db (committed state, consistent index
   * included) in a temp file next to `tempPath`, read in chunks: raft snapshots
   * and Maintenance.Snapshot stream it without holding it in memory.
   */
  snapshot(tempPath: string): BackendSnapshot {
    rmSync(tempPath, { force: true })
    this.copyTo(tempPath)
    return new BackendSnapshot(tempPath)
  }

  /** Writes a db streamed by snapshot() to `targetPath` (then Backend.open it). */
  static restore(chunks: Iterable<Uint8Array>, targetPath: string): number {
    rmSync(targetPath, { force: true })
    rmSync(`${targetPath}-wal`, { force: true })
    rmSync(`${targetPath}-shm`, { force: true })
    const fd = openSync(targetPath, "w")
    let bytes = 0
    try {
      for (const chunk of chunks) {
        let offset = 0
        while (offset < chunk.byteLength) offset += writeSync(fd, chunk, offset)
        bytes += chunk.byteLength
      }
    } finally {
      closeSync(fd)
    }
    const db = new Database(targetPath, { readonly: true })
    try {
      const check = db.query("PRAGMA quick_check").values()[0]?.[0]
      assert(check === "ok", () => `restored db ${targetPath} fails quick_check: ${String(check)}`)
    } finally {
      db.close()
    }
    return bytes
  }

  /**
   * Commits the open batch and closes the db. The db is closed even when that
   * commit fails (the error is thrown after): the batch is dropped, and the
   * restart replays it from the raft WAL.
   */
  close(): void {
    let error: unknown
    if (this.failure === undefined) {
      try {
        this.commit()
      } catch (e) {
        error = this.fail(e)
      }
    }
    if (this.walFd !== undefined) {
      closeSync(this.walFd)
      this.walFd = undefined
    }
    if (this.checkpointer !== undefined) {
      this.checkpointer.close()
      this.checkpointer = undefined
      // Leave an empty -wal file behind, as closing the last connection would.
      if (this.failure === undefined) this.checkpointFully("TRUNCATE")
    }
    this.db.close()
    if (error !== undefined) throw error
  }

  private sizeCache = -1
  private pageCountStmt: Statement<{ page_count: number }, []> | undefined
  private pageSizeBytes = 0

  private pageCount(): number {
    this.pageCountStmt ??= this.db.query<{ page_count: number }, []>("PRAGMA page_count")
    return this.pageCountStmt.get()?.page_count ?? 0
  }

  /** The page size (fixed once the db exists; VACUUM keeps it, as no page_size is ever set). */
  private pageSize(): number {
    if (this.pageSizeBytes === 0) this.pageSizeBytes = this.pragmaNumber("page_size")
    return this.pageSizeBytes
  }

  private pragmaNumber(name: string): number {
    const row = this.db.query(`PRAGMA ${name}`).values()[0]
    return Number(row?.[0] ?? 0)
  }
}

/** A consistent copy of the db on disk, read in chunks, removed by close(). */
export class BackendSnapshot {
  readonly sizeBytes: number

  constructor(readonly path: string) {
    this.sizeBytes = statSync(path).size
  }

  *chunks(chunkBytes = 64 * 1024): Generator<Uint8Array> {
    const fd = openSync(this.path, "r")
    try {
      let position = 0
      while (position < this.sizeBytes) {
        const buf = new Uint8Array(Math.min(chunkBytes, this.sizeBytes - position))
        const read = readSync(fd, buf, 0, buf.byteLength, position)
        assert(read > 0, () => `short read of ${this.path} at ${position}`)
        position += read
        yield read === buf.byteLength ? buf : buf.subarray(0, read)
      }
    } finally {
      closeSync(fd)
    }
  }

  close(): void {
    rmSync(this.path, { force: true })
  }
}
