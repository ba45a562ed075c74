// The etcd-format bbolt db of a tskv db, made on a Worker thread
// (export_worker.ts) and handed over in chunks as it is made, with its sha256:
// what Maintenance.Snapshot streams. The member's thread only frames the
// chunks; the conversion and the hash run on the worker, with a heap and a
// core of their own. The worker makes READ_AHEAD chunks ahead of the consumer
// and waits: a slow client holds the worker's read transaction, not memory.
//
//   const ex = new EtcdExportWorker({ dbPath })
//   await ex.pinned            // the worker's read transaction holds the db's state
//   const bytes = await ex.exported   // the db's size, from the plan (before any byte)
//   for (let c; (c = await ex.next()) !== undefined; ) send(c.bytes, c.remaining)
//   ex.sha256                  // after the last chunk
//   ex.close()                 // always (also on cancel): stops the worker

/** Messages to the worker. */
export type ToWorker = { type: "export"; dbPath: string; chunkBytes: number } | { type: "read"; count: number } | { type: "stop" }

type FromWorker =
  | { type: "pinned" }
  | { type: "exported"; bytes: number }
  | { type: "chunk"; bytes: Uint8Array; remaining: number }
  | { type: "end"; sha256: Uint8Array }
  | { type: "error"; message: string }
  | { type: "stopped" }

export interface ExportChunk {
  bytes: Uint8Array
  /** Bytes of the db after this chunk. */
  remaining: number
}

/**
 * The worker's module: beside this file when run from source; inside the
 * compiled binary, scripts/build.ts adds it as an entrypoint, which Bun names
 * by its path under src/ (the entrypoints' common root).
 */
function workerEntry(): string {
  if (import.meta.url.includes("$bunfs")) return "./snapshot/export_worker.ts"
  return new URL("./export_worker.ts", import.meta.url).href
}

/** Chunks read ahead of the consumer (each chunkBytes). */
const READ_AHEAD = 4
/** How long a stopped worker may take to end its read transaction before it is terminated all the same. */
const STOP_MS = 10_000

export class EtcdExportWorker {
  /** Resolves once the worker's read transaction is open (its state is the snapshot's). */
  readonly pinned: Promise<void>
  /** Resolves with the db's size once it is laid out (before its first byte). */
  readonly exported: Promise<number>
  /** The sha256 of the db, once the last chunk was taken. */
  sha256: Uint8Array | undefined

  private readonly worker: Worker
  private readonly chunks: ExportChunk[] = []
  private requested = 0
  private ended = false
  private error: Error | undefined
  private wake: (() => void) | undefined
  private resolvePinned!: () => void
  private resolveExported!: (bytes: number) => void
  private rejectStart!: (e: Error) => void
  private closed = false
  /** The worker ended its read transaction (after the last chunk, an error, or a stop). */
  private released = false

  /** chunkBytes: the largest chunk (smaller ones for a small db, so that progress shows). */
  constructor(options: { dbPath: string; chunkBytes?: number }) {
    let rejectPinned!: (e: Error) => void
    let rejectExported!: (e: Error) => void
    this.pinned = new Promise((resolve, reject) => ((this.resolvePinned = resolve), (rejectPinned = reject)))
    this.exported = new Promise((resolve, reject) => ((this.resolveExported = resolve), (rejectExported = reject)))
    // A rejection nobody awaits (pinned failed, so exported is never awaited) must not crash the member.
    this.pinned.catch(() => {})
    this.exported.catch(() => {})
    this.rejectStart = (e) => {
      rejectPinned(e)
      rejectExported(e)
    }
    this.worker = new Worker(workerEntry())
    this.worker.unref()
    this.worker.onmessage = (event: MessageEvent) => this.onMessage(event.data as FromWorker)
    this.worker.onerror = (event) => this.fail(new Error(`snapshot worker: ${event.message}`))
    const start: ToWorker = { type: "export", dbPath: options.dbPath, chunkBytes: options.chunkBytes ?? 1 << 20 }
    this.worker.postMessage(start)
  }

  /** The next chunk, or undefined after the last one (sha256 is then set). */
  async next(): Promise<ExportChunk | undefined> {
    for (;;) {
      if (this.error !== undefined) throw this.error
      const chunk = this.chunks.shift()
      if (chunk !== undefined) {
        this.request()
        return chunk
      }
      if (this.ended) return undefined
      this.request()
      await new Promise<void>((resolve) => (this.wake = resolve))
    }
  }

  /**
   * Stops the worker: it first ends its read transaction (a terminated
   * thread might leave the db's WAL pinned at the snapshot), then goes.
   */
  close(): void {
    if (this.closed) return
    this.closed = true
    if (this.released) void this.worker.terminate()
    else {
      const stop: ToWorker = { type: "stop" }
      this.worker.postMessage(stop)
      setTimeout(() => void this.worker.terminate(), STOP_MS).unref()
    }
    if (!this.ended) this.fail(new Error("snapshot export closed"))
  }

  private request(): void {
    const want = READ_AHEAD - this.chunks.length - this.requested
    if (want <= 0 || this.ended || this.closed) return
    this.requested += want
    const msg: ToWorker = { type: "read", count: want }
    this.worker.postMessage(msg)
  }

  private onMessage(msg: FromWorker): void {
    switch (msg.type) {
      case "pinned":
        this.resolvePinned()
        return
      case "exported":
        this.resolveExported(msg.bytes)
        this.request()
        return
      case "chunk":
        this.requested--
        this.chunks.push({ bytes: msg.bytes, remaining: msg.remaining })
        break
      case "end":
        this.sha256 = msg.sha256
        this.ended = true
        this.released = true
        break
      case "error":
        this.released = true
        this.fail(new Error(msg.message))
        return
      case "stopped":
        this.released = true
        void this.worker.terminate()
        return
    }
    this.wake?.()
    this.wake = undefined
  }

  private fail(e: Error): void {
    if (this.error !== undefined || this.ended) return
    this.error = e
    this.rejectStart(e)
    this.wake?.()
    this.wake = undefined
    this.close()
  }
}
