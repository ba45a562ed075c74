// A min-heap of (lease id, time in ms) pairs: the lessor's expiry queue and its
// checkpoint schedule. Entries are never updated in place; the owner keeps the
// time it expects for each id and skips entries that no longer match (lazy
// deletion), so pushing again is how an entry is moved.

export interface TimedId {
  readonly id: bigint
  readonly timeMs: number
}

export class TimeQueue {
  private readonly heap: TimedId[] = []

  get size(): number {
    return this.heap.length
  }

  push(entry: TimedId): void {
    const heap = this.heap
    heap.push(entry)
    let i = heap.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!before(heap[i]!, heap[parent]!)) break
      swap(heap, i, parent)
      i = parent
    }
  }

  peek(): TimedId | undefined {
    return this.heap[0]
  }

  pop(): TimedId | undefined {
    const heap = this.heap
    const top = heap[0]
    if (top === undefined) return undefined
    const last = heap.pop()!
    if (heap.length > 0) {
      heap[0] = last
      let i = 0
      for (;;) {
        const left = 2 * i + 1
        const right = left + 1
        let smallest = i
        if (left < heap.length && before(heap[left]!, heap[smallest]!)) smallest = left
        if (right < heap.length && before(heap[right]!, heap[smallest]!)) smallest = right
        if (smallest === i) break
        swap(heap, i, smallest)
        i = smallest
      }
    }
    return top
  }

  clear(): void {
    this.heap.length = 0
  }
}

/** Earlier time first; equal times by id, so the order never depends on insertion. */
function before(a: TimedId, b: TimedId): boolean {
  return a.timeMs < b.timeMs || (a.timeMs === b.timeMs && a.id < b.id)
}

function swap(heap: TimedId[], i: number, j: number): void {
  const t = heap[i]!
  heap[i] = heap[j]!
  heap[j] = t
}
