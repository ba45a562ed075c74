// Linearizable reads. Every read waiting at the moment a round starts shares
// one ReadIndex request (one heartbeat round on the leader); reads that arrive
// while a round is in flight wait for the next one, because the read index of
// a round that began before them might not cover writes they already saw
// acknowledged. A read completes once the member applied up to the index.

import { TskvError } from "../lib/errors"

interface PendingRead {
  resolve(): void
  reject(e: unknown): void
}

interface IndexWaiter {
  index: number
  reads: PendingRead[]
}

export interface ReadIndexDeps {
  /** Asks raft for a read index with this context; throws when no leader is known. */
  request(ctx: Uint8Array): void
  applied(): number
  /** How long before a round is sent again with a new context (etcd: 500 ms). */
  retryMs: number
  /** A round needed a retry (etcd_server_slow_read_indexes_total). */
  onRetry?: () => void
}

export class ReadIndexer {
  private pending: PendingRead[] = []
  private inflight: { ctx: bigint; reads: PendingRead[]; sentAt: number } | undefined
  private waiting: IndexWaiter[] = []
  private counter = 0n
  private retryTimer: ReturnType<typeof setTimeout> | undefined

  constructor(private readonly deps: ReadIndexDeps) {}

  /** Resolves when a read at this moment may be served locally. */
  wait(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ resolve, reject })
      if (this.inflight === undefined) this.startRound()
    })
  }

  /** A ReadState arrived from raft. */
  onReadState(ctx: Uint8Array, index: number): void {
    const round = this.inflight
    if (round === undefined || ctx.length !== 8 || Buffer.from(ctx).readBigUInt64BE(0) !== round.ctx) return
    this.inflight = undefined
    if (this.retryTimer) clearTimeout(this.retryTimer)
    this.retryTimer = undefined
    if (index <= this.deps.applied()) {
      for (const r of round.reads) r.resolve()
    } else {
      this.waiting.push({ index, reads: round.reads })
    }
    if (this.pending.length > 0) this.startRound()
  }

  /** The member applied up to `applied`: serve the reads that waited for it. */
  onApplied(applied: number): void {
    if (this.waiting.length === 0) return
    const still: IndexWaiter[] = []
    for (const w of this.waiting) {
      if (w.index <= applied) for (const r of w.reads) r.resolve()
      else still.push(w)
    }
    this.waiting = still
  }

  /** Fails every read (leader lost for too long, member stopping). */
  failAll(error: unknown): void {
    const reads = [...this.pending, ...(this.inflight?.reads ?? []), ...this.waiting.flatMap((w) => w.reads)]
    this.pending = []
    this.inflight = undefined
    this.waiting = []
    if (this.retryTimer) clearTimeout(this.retryTimer)
    this.retryTimer = undefined
    for (const r of reads) r.reject(error)
  }

  private startRound(): void {
    const reads = this.pending
    this.pending = []
    this.counter++
    const ctx = Buffer.alloc(8)
    ctx.writeBigUInt64BE(this.counter)
    this.inflight = { ctx: this.counter, reads, sentAt: performance.now() }
    this.send(ctx)
  }

  private send(ctx: Uint8Array): void {
    try {
      this.deps.request(ctx)
    } catch {
      // No leader known right now: try again after the retry interval.
    }
    if (this.retryTimer) clearTimeout(this.retryTimer)
    this.retryTimer = setTimeout(() => this.retry(), this.deps.retryMs)
  }

  /** The round got no answer in time (lost message, leader change): ask again with a new context. */
  private retry(): void {
    this.retryTimer = undefined
    const round = this.inflight
    if (round === undefined) return
    this.inflight = undefined
    this.deps.onRetry?.()
    this.pending = [...round.reads, ...this.pending]
    this.startRound()
  }
}

export const noLeaderError = (): TskvError => new TskvError("noLeader")
