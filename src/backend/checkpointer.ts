// SQLite's WAL checkpoints on a Worker thread. A checkpoint copies the pages
// committed to the -wal file into the db file and fsyncs it; inside COMMIT on
// the member's only JS thread it was the longest stall of a busy member
// (50-250 ms every few seconds under a put load, the whole p99). The worker has
// a connection of its own and runs PASSIVE checkpoints, which never block the
// writer: after every commit the backend asks for one, and the worker copies
// everything committed so far while the next batch is being written.
//
// One thing a second connection cannot do: restart the -wal file. SQLite
// rewinds it only when a write transaction begins with every frame copied, and
// the member begins its next batch right after a commit, before the worker can
// catch up. So once the worker reports more than `restartFrames` frames, the
// backend commits right away and copies what was written since the worker's
// checkpoint began itself (wantsRestart()); the next batch starts the -wal
// file over. That is one short stall every few hundred MB instead of a long
// one every 40 MB.

import { assert } from "../lib/assert"

/** What the worker reports after each checkpoint: frames in the -wal file, and how many are in the db. */
export interface CheckpointReport {
  busy: boolean
  logFrames: number
  checkpointedFrames: number
  durationMs: number
}

export interface CheckpointerOptions {
  /** The db file (the worker opens its own connection). */
  path: string
  /** Frames in the -wal file after which the backend rewinds it (wantsRestart()). */
  restartFrames: number
  /**
   * A checkpoint starts at most this often (0: after every commit); a request
   * sooner waits for a commit after that. The pages a busy member dirties are
   * mostly the same ones, batch after batch (the key indexes): copying them
   * once every few seconds instead of after every commit writes and fsyncs
   * the db file a fraction as much, and those writes are what the raft WAL's
   * fdatasync queues behind.
   */
  minIntervalMs?: number
  /** Called when the worker fails: the backend goes back to checkpointing inline. */
  onError: (error: Error) => void
  /** Called after each checkpoint (tests, logs). */
  onReport?: (report: CheckpointReport) => void
}

// Plain JS: the worker runs from a Blob URL, which works inside the compiled binary.
const WORKER_SOURCE = `
import { Database } from "bun:sqlite"
let db
self.onmessage = (event) => {
  const msg = event.data
  try {
    if (msg.type === "open") {
      db = new Database(msg.path)
      db.exec("PRAGMA synchronous = NORMAL")
      db.exec("PRAGMA busy_timeout = 1000")
      return
    }
    if (msg.type === "close") {
      db?.close()
      db = undefined
      self.close()
      return
    }
    if (msg.type === "checkpoint") {
      const started = performance.now()
      const row = db.query("PRAGMA wal_checkpoint(PASSIVE)").values()[0]
      postMessage({ type: "report", busy: row[0] !== 0, logFrames: row[1], checkpointedFrames: row[2], durationMs: performance.now() - started })
    }
  } catch (e) {
    postMessage({ type: "error", message: String(e && e.message ? e.message : e) })
  }
}
`

let workerUrl: string | undefined

export class Checkpointer {
  private readonly worker: Worker
  private readonly restartFrames: number
  private running = false
  private again = false
  private closed = false
  private lastReport: CheckpointReport | undefined
  private readonly minIntervalMs: number
  private lastStartedMs = Number.NEGATIVE_INFINITY

  constructor(private readonly options: CheckpointerOptions) {
    this.restartFrames = options.restartFrames
    this.minIntervalMs = options.minIntervalMs ?? 0
    workerUrl ??= URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "application/javascript" }))
    this.worker = new Worker(workerUrl)
    this.worker.onmessage = (event: MessageEvent) => this.onMessage(event.data as { type: string } & Partial<CheckpointReport> & { message?: string })
    this.worker.onerror = (event) => this.fail(new Error(`checkpoint worker: ${event.message}`))
    // The worker must not keep a member that is shutting down alive.
    this.worker.unref()
    this.worker.postMessage({ type: "open", path: options.path })
  }

  /**
   * After a commit: asks for a checkpoint (one at a time; a request while one
   * runs starts another after it; a request within minIntervalMs of the last
   * start is dropped: a later commit asks again).
   */
  requestCheckpoint(): void {
    if (this.closed) return
    if (this.running) {
      this.again = true
      return
    }
    const now = performance.now()
    if (now - this.lastStartedMs < this.minIntervalMs) return
    this.lastStartedMs = now
    this.running = true
    this.worker.postMessage({ type: "checkpoint" })
  }

  /**
   * True when the -wal file has grown past restartFrames and the worker is idle:
   * the backend should checkpoint on its own connection right after this
   * commit, so that the next write transaction rewinds the file.
   */
  wantsRestart(): boolean {
    return !this.running && this.lastReport !== undefined && this.lastReport.logFrames > this.restartFrames
  }

  /** The -wal file was rewound (the backend checkpointed everything): forget the old size. */
  restarted(): void {
    this.lastReport = undefined
  }

  /** The worker closes its connection and ends; nothing waits for it. */
  close(): void {
    if (this.closed) return
    this.closed = true
    this.worker.postMessage({ type: "close" })
  }

  private onMessage(msg: { type: string } & Partial<CheckpointReport> & { message?: string }): void {
    if (msg.type === "error") {
      this.fail(new Error(`checkpoint worker: ${msg.message ?? "unknown error"}`))
      return
    }
    assert(msg.type === "report", () => `checkpoint worker sent ${msg.type}`)
    const report: CheckpointReport = {
      busy: msg.busy === true,
      logFrames: msg.logFrames ?? 0,
      checkpointedFrames: msg.checkpointedFrames ?? 0,
      durationMs: msg.durationMs ?? 0,
    }
    this.lastReport = report
    this.running = false
    this.options.onReport?.(report)
    if (this.again) {
      this.again = false
      this.requestCheckpoint()
    }
  }

  private fail(error: Error): void {
    if (this.closed) return
    this.closed = true
    this.worker.terminate()
    this.options.onError(error)
  }
}
