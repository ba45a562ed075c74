// The outbound work of one peer: a raft lane queues messages and writes each
// flush as one Messages frame (batching: everything sent in one synchronous
// run, e.g. one Ready, goes out together); an RPC lane carries calls and
// matches their responses. Both sit on an OutboundConnection that redials with
// backoff. Queues are bounded: when a queue is full, or the peer is known to
// be down, messages are dropped and raft is told the peer is unreachable.

import { FrameKind, encodeFrame, estimateMessageBytes, type Frame } from "./codec"
import type { OutboundConnection } from "./connection"
import type { Message } from "../raft/types"
import { PeerUnreachableError, RpcTimeoutError, tskvErrorOf } from "./errors"
import { TskvError } from "../lib/errors"

export interface RaftLaneLimits {
  queueMessagesMax: number
  queueBytesMax: number
  batchBytesMax: number
}

export class RaftLane {
  private queue: Message[] = []
  private queuedBytes = 0
  private flushScheduled = false
  private waitingDrain = false
  connection!: OutboundConnection

  constructor(
    private readonly limits: RaftLaneLimits,
    private readonly onSent: (messages: number) => void,
  ) {}

  /** Queues messages for the next flush; returns how many had to be dropped. */
  enqueue(messages: Message[]): number {
    const state = this.connection.state
    if (state === "backoff" || state === "stopped") return messages.length
    let dropped = 0
    for (const m of messages) {
      const bytes = estimateMessageBytes(m)
      if (this.queue.length >= this.limits.queueMessagesMax || this.queuedBytes + bytes > this.limits.queueBytesMax) {
        dropped++
        continue
      }
      this.queue.push(m)
      this.queuedBytes += bytes
    }
    this.scheduleFlush()
    return dropped
  }

  get queuedMessages(): number {
    return this.queue.length
  }

  onOpen(): void {
    this.waitingDrain = false
    this.scheduleFlush()
  }

  onDrain(): void {
    this.waitingDrain = false
    this.scheduleFlush()
  }

  /** The connection went down: queued messages are lost. Returns how many. */
  onDown(): number {
    const lost = this.queue.length
    this.queue = []
    this.queuedBytes = 0
    this.waitingDrain = false
    return lost
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.waitingDrain || this.queue.length === 0) return
    if (this.connection.state !== "open") return
    this.flushScheduled = true
    queueMicrotask(() => this.flush())
  }

  /** Writes what is queued now rather than at the end of this turn (the microtask finds nothing left). */
  flushNow(): void {
    if (this.flushScheduled) this.flush()
  }

  private flush(): void {
    this.flushScheduled = false
    while (this.queue.length > 0 && !this.waitingDrain && this.connection.state === "open") {
      let count = 0
      let bytes = 0
      while (count < this.queue.length && (count === 0 || bytes < this.limits.batchBytesMax)) {
        bytes += estimateMessageBytes(this.queue[count]!)
        count++
      }
      const batch = count === this.queue.length ? this.queue : this.queue.slice(0, count)
      this.queue = count === this.queue.length ? [] : this.queue.slice(count)
      this.queuedBytes = Math.max(0, this.queuedBytes - bytes)
      const frame = encodeFrame({ kind: FrameKind.Messages, messages: batch })
      this.onSent(batch.length)
      if (!this.connection.write(frame)) this.waitingDrain = true
    }
  }
}

interface Call {
  callId: number
  frame: Buffer
  sent: boolean
  resolve: (payload: Uint8Array) => void
  reject: (error: Error) => void
  timer: ReturnType<typeof setTimeout>
}

export class RpcLane {
  private readonly pending = new Map<number, Call>()
  private queue: Call[] = []
  private waitingDrain = false
  private flushScheduled = false
  connection!: OutboundConnection

  constructor(
    /** Calls queued or awaiting an answer. */
    private readonly pendingMax: number,
    private readonly nextCallId: () => number,
  ) {}

  call(method: string, payload: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    if (this.connection.state === "stopped") return Promise.reject(new PeerUnreachableError("transport stopped"))
    if (this.pending.size >= this.pendingMax) return Promise.reject(new TskvError("tooManyRequests", "too many calls pending to the peer"))
    const callId = this.nextCallId()
    return new Promise<Uint8Array>((resolve, reject) => {
      const call: Call = {
        callId,
        frame: encodeFrame({ kind: FrameKind.Request, callId, method, payload }),
        sent: false,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.settle(callId)
          reject(new RpcTimeoutError(`call ${method} timed out after ${timeoutMs} ms`))
        }, timeoutMs),
      }
      this.pending.set(callId, call)
      this.queue.push(call)
      this.connection.kick()
      this.scheduleFlush()
    })
  }

  onOpen(): void {
    this.waitingDrain = false
    this.scheduleFlush()
  }

  onDrain(): void {
    this.waitingDrain = false
    this.scheduleFlush()
  }

  onFrame(frame: Frame): boolean {
    if (frame.kind !== FrameKind.Response) return false
    const call = this.settle(frame.callId)
    if (call === undefined) return true // timed out already
    if (frame.payload !== null) call.resolve(frame.payload)
    else call.reject(tskvErrorOf(frame.errorCode ?? "", frame.errorMessage ?? ""))
    return true
  }

  /**
   * The connection went down. Calls already written may or may not have run:
   * they fail now. Calls not yet written wait for the next connection (until
   * their timeout), unless the peer refused us (`fatal`).
   */
  onDown(error: Error, fatal: boolean): void {
    this.waitingDrain = false
    for (const call of [...this.pending.values()]) {
      if (!call.sent && !fatal) continue
      this.settle(call.callId)
      call.reject(fatal ? error : new PeerUnreachableError(`connection lost: ${error.message}`))
    }
  }

  /** Fails every call (transport stopped or peer removed). */
  failAll(error: Error): void {
    for (const call of [...this.pending.values()]) {
      this.settle(call.callId)
      call.reject(error)
    }
  }

  private settle(callId: number): Call | undefined {
    const call = this.pending.get(callId)
    if (call === undefined) return undefined
    this.pending.delete(callId)
    clearTimeout(call.timer)
    return call
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return
    this.flushScheduled = true
    queueMicrotask(() => this.flush())
  }

  /** Writes every queued call in one write (calls made in one synchronous run share a syscall). */
  private flush(): void {
    this.flushScheduled = false
    if (this.waitingDrain || this.connection.state !== "open" || this.queue.length === 0) return
    const frames: Buffer[] = []
    for (const call of this.queue) {
      if (!this.pending.has(call.callId)) continue // timed out while queued
      call.sent = true
      frames.push(call.frame)
    }
    this.queue = []
    if (frames.length === 0) return
    if (!this.connection.write(frames.length === 1 ? frames[0]! : Buffer.concat(frames))) this.waitingDrain = true
  }
}
