// The frames a connection sends, queued and written with one socket.write
// per turn of the event loop (setImmediate), so that a batch of responses
// costs one syscall. Frames are built in place in an arena buffer (one
// allocation per write, not per frame); large DATA payloads are queued as
// they are and copied once, by the write.

import type * as net from "node:net"
import { Flag, FRAME_HEADER_BYTES, FrameType, writeFrameHeader } from "./frames"

/** Above this many bytes queued (here and in the socket), writers are asked to wait. */
const BACKLOG_BYTES_MAX = 1024 * 1024
/** Arena size; frames are built in it back to back, written slices are never reused. */
const ARENA_BYTES = 16 * 1024
/** DATA payloads up to this size are copied into the arena; larger ones are queued as views. */
const COPIED_PAYLOAD_BYTES_MAX = 1024

export class FrameOutput {
  /** Sealed pieces, in order, ahead of the arena's open slice. */
  private parts: Uint8Array[] = []
  private bytes = 0
  private arena: Buffer = Buffer.allocUnsafe(ARENA_BYTES)
  /** The arena's open slice is [arenaStart, arenaUsed). */
  private arenaStart = 0
  private arenaUsed = 0
  private scheduled = false
  private closed = false
  private readonly flushNow = (): void => this.flush()

  constructor(
    private readonly socket: net.Socket,
    private readonly hooks: {
      /** Runs first in every flush; frames it queues join that write. */
      beforeFlush(): void
      /** Runs after every write (the backlog may have shrunk). */
      afterFlush(): void
    },
  ) {}

  /** The socket's queue is over its limit: writers should wait. */
  get backlogged(): boolean {
    return this.backlogBytes > BACKLOG_BYTES_MAX
  }

  /** Bytes queued here and in the socket, not yet taken by the kernel. */
  get backlogBytes(): number {
    return this.bytes + this.socket.writableLength
  }

  /** Queues bytes as they are (a whole frame or a payload), after everything queued so far. */
  push(bytes: Uint8Array): void {
    if (this.closed) return
    this.seal()
    this.parts.push(bytes)
    this.bytes += bytes.length
    this.schedule()
  }

  /** HEADERS, split into CONTINUATION frames when the block exceeds `maxFrameBytes`. */
  pushHeaders(frame: { streamId: number; block: Uint8Array; endStream: boolean; maxFrameBytes: number }): void {
    const { streamId, block } = frame
    const endStream = frame.endStream ? Flag.END_STREAM : 0
    let offset = 0
    do {
      const length = Math.min(frame.maxFrameBytes, block.length - offset)
      const first = offset === 0
      const flags = (first ? endStream : 0) | (offset + length === block.length ? Flag.END_HEADERS : 0)
      const fragment = length === block.length ? block : block.subarray(offset, offset + length)
      this.frame({ length, type: first ? FrameType.HEADERS : FrameType.CONTINUATION, flags, streamId }, fragment)
      offset += length
    } while (offset < block.length)
  }

  /** One DATA frame: a small payload is copied into the arena, a large one queued as it is. */
  pushData(streamId: number, chunk: Uint8Array, endStream: boolean): void {
    const header = { length: chunk.length, type: FrameType.DATA, flags: endStream ? Flag.END_STREAM : 0, streamId }
    if (chunk.length <= COPIED_PAYLOAD_BYTES_MAX) {
      this.frame(header, chunk)
      return
    }
    this.frame(header, EMPTY)
    this.push(chunk)
  }

  flush(): void {
    this.hooks.beforeFlush() // `scheduled` is still set: what it queues schedules no second flush
    this.scheduled = false
    if (this.closed) return
    this.seal()
    if (this.parts.length === 0) return
    const out = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.bytes)
    this.parts = []
    this.bytes = 0
    // The socket may hold on to what it was given, so written bytes are never
    // overwritten: the next frames go after them in the same arena, and a new
    // arena comes only when this one is full (a new 16 KiB arena per write was
    // most of the garbage of a put, and GC pauses were most of its p99).
    this.socket.write(out)
    this.hooks.afterFlush()
  }

  /** The socket is gone: queued frames are dropped, later ones ignored. */
  close(): void {
    this.closed = true
    this.parts = []
    this.bytes = 0
    this.arenaStart = this.arenaUsed
  }

  /** Writes a frame header and its payload into the arena. */
  private frame(header: { length: number; type: number; flags: number; streamId: number }, payload: Uint8Array): void {
    if (this.closed) return
    const size = FRAME_HEADER_BYTES + payload.length
    if (this.arenaUsed + size > this.arena.length) {
      this.seal()
      this.arena = Buffer.allocUnsafe(Math.max(ARENA_BYTES, size))
      this.arenaStart = 0
      this.arenaUsed = 0
    }
    writeFrameHeader(this.arena, this.arenaUsed, header)
    this.arena.set(payload, this.arenaUsed + FRAME_HEADER_BYTES)
    this.arenaUsed += size
    this.bytes += size
    this.schedule()
  }

  /** Moves the arena's open slice into `parts` (before something queued as it is). */
  private seal(): void {
    if (this.arenaUsed === this.arenaStart) return
    this.parts.push(this.arena.subarray(this.arenaStart, this.arenaUsed))
    this.arenaStart = this.arenaUsed
  }

  private schedule(): void {
    if (this.scheduled) return
    this.scheduled = true
    setImmediate(this.flushNow)
  }
}

const EMPTY = new Uint8Array(0)
