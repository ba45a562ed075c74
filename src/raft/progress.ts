// The leader's view of one follower: how far its log matches (match), what
// to send next (next), and how to send it:
//   probe:     one AppendEntries at a time until the follower's position is known
//   replicate: stream optimistically, at most maxInflightMsgs unacknowledged messages
//   snapshot:  an InstallSnapshot is in flight; send nothing else until it is reported

import { assert } from "../lib/assert"

export type ProgressState = "probe" | "replicate" | "snapshot"

/** A ring buffer of the last index of each unacknowledged append message. */
export class Inflights {
  private start = 0
  count = 0
  private readonly buffer: number[]
  constructor(readonly size: number) {
    this.buffer = new Array<number>(size).fill(0)
  }

  full(): boolean {
    return this.count === this.size
  }

  add(index: number): void {
    assert(!this.full(), "inflights: add to a full window")
    this.buffer[(this.start + this.count) % this.size] = index
    this.count++
  }

  /** Frees every message whose last index is <= index. */
  freeLE(index: number): void {
    while (this.count > 0 && this.buffer[this.start]! <= index) {
      this.start = (this.start + 1) % this.size
      this.count--
    }
    if (this.count === 0) this.start = 0
  }

  /** Frees the oldest message (its acknowledgement was probably lost). */
  freeFirstOne(): void {
    if (this.count === 0) return
    this.freeLE(this.buffer[this.start]!)
  }

  reset(): void {
    this.count = 0
    this.start = 0
  }
}

export class Progress {
  match = 0
  next: number
  state: ProgressState = "probe"
  /** In probe state: an append was sent and not yet answered; wait for it or a heartbeat response. */
  probeSent = false
  /** In snapshot state: the index of the snapshot being sent. */
  pendingSnapshot = 0
  /** Heard from since the last check-quorum round. */
  recentActive = false
  readonly inflights: Inflights

  constructor(options: { next: number; maxInflightMsgs: number; isLearner: boolean }) {
    this.next = options.next
    this.inflights = new Inflights(options.maxInflightMsgs)
    this.isLearner = options.isLearner
  }

  isLearner: boolean

  private resetState(state: ProgressState): void {
    this.probeSent = false
    this.pendingSnapshot = 0
    this.state = state
    this.inflights.reset()
  }

  becomeProbe(): void {
    if (this.state === "snapshot") {
      const pending = this.pendingSnapshot
      this.resetState("probe")
      this.next = Math.max(this.match + 1, pending + 1)
    } else {
      this.resetState("probe")
      this.next = this.match + 1
    }
  }

  becomeReplicate(): void {
    this.resetState("replicate")
    this.next = this.match + 1
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState("snapshot")
    this.pendingSnapshot = snapshotIndex
  }

  /** An acknowledgement up to n; false if it is stale. */
  maybeUpdate(n: number): boolean {
    let updated = false
    if (this.match < n) {
      this.match = n
      updated = true
      this.probeSent = false
    }
    this.next = Math.max(this.next, n + 1)
    return updated
  }

  optimisticUpdate(n: number): void {
    this.next = n + 1
  }

  /**
   * A rejection of the append at `rejected`, with the follower's hint of
   * where its log may match. False if the rejection is stale.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === "replicate") {
      if (rejected <= this.match) return false
      this.next = this.match + 1
      return true
    }
    if (this.next - 1 !== rejected) return false
    this.next = Math.max(Math.min(rejected, matchHint + 1), 1)
    this.probeSent = false
    return true
  }

  isPaused(): boolean {
    switch (this.state) {
      case "probe":
        return this.probeSent
      case "replicate":
        return this.inflights.full()
      case "snapshot":
        return true
    }
  }
}
