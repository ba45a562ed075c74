// Proposal waiters: the member that proposes a request waits for the result
// of applying it. Ids are unique per origin member; entries proposed by other
// members (or before a restart) simply find no waiter here.

export interface Waiter<T> {
  resolve(value: T): void
  reject(error: unknown): void
}

export class Waiters<T> {
  private readonly pending = new Map<number, Waiter<T>>()

  register(id: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve, reject })
    })
  }

  has(id: number): boolean {
    return this.pending.has(id)
  }

  trigger(id: number, value: T): void {
    const w = this.pending.get(id)
    if (!w) return
    this.pending.delete(id)
    w.resolve(value)
  }

  fail(id: number, error: unknown): void {
    const w = this.pending.get(id)
    if (!w) return
    this.pending.delete(id)
    w.reject(error)
  }

  failAll(error: unknown): void {
    const all = [...this.pending.values()]
    this.pending.clear()
    for (const w of all) w.reject(error)
  }

  get size(): number {
    return this.pending.size
  }
}

/**
 * Request ids: a time-based start so that ids proposed before a restart (still
 * in the log) never collide with new ones, then a counter. Safe integers for
 * the next ~100 years at 1M proposals/s.
 */
export class RequestIdGenerator {
  private next: number
  constructor(nowMs: number) {
    this.next = nowMs * 1000
  }
  take(): number {
    return this.next++
  }
}
