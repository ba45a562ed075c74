// The frames a connection sends, queued and written with one socket.write
// per turn of the event loop (setImmediate), so that a batch of responses
// costs one syscall and one copy.

import type * as net from "node:net"
import { Flag, FRAME_HEADER_BYTES, FrameType, writeFrameHeader } from "./frames"

/** Above this many bytes queued (here and in the socket), writers are asked to wait. */
const BACKLOG_BYTES_MAX = 1024 * 1024

export class FrameOutput {
  private parts: Uint8Array[] = []
  private bytes = 0
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
    return this.bytes + this.socket.writableLength > BACKLOG_BYTES_MAX
  }

  push(bytes: Uint8Array): void {
    if (this.closed) return
    this.parts.push(bytes)
    this.bytes += bytes.length
    if (!this.scheduled) {
      this.scheduled = true
      setImmediate(this.flushNow)
    }
  }

  /** HEADERS, split into CONTINUATION frames when the block exceeds `maxFrameBytes`. */
  pushHeaders(frame: { streamId: number; block: Uint8Array; endStream: boolean; maxFrameBytes: number }): void {
    const { streamId, block } = frame
    const endStream = frame.endStream ? Flag.END_STREAM : 0
    if (block.length <= frame.maxFrameBytes) {
      const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + block.length)
      writeFrameHeader(out, 0, { length: block.length, type: FrameType.HEADERS, flags: Flag.END_HEADERS | endStream, streamId })
      out.set(block, FRAME_HEADER_BYTES)
      this.push(out)
      return
    }
    for (let offset = 0; offset < block.length; offset += frame.maxFrameBytes) {
      const length = Math.min(frame.maxFrameBytes, block.length - offset)
      const first = offset === 0
      const flags = (first ? endStream : 0) | (offset + length === block.length ? Flag.END_HEADERS : 0)
      const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + length)
      writeFrameHeader(out, 0, { length, type: first ? FrameType.HEADERS : FrameType.CONTINUATION, flags, streamId })
      out.set(block.subarray(offset, offset + length), FRAME_HEADER_BYTES)
      this.push(out)
    }
  }

  /** One DATA frame; the payload is queued as it is (no copy until the write). */
  pushData(streamId: number, chunk: Uint8Array, endStream: boolean): void {
    const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES)
    writeFrameHeader(header, 0, { length: chunk.length, type: FrameType.DATA, flags: endStream ? Flag.END_STREAM : 0, streamId })
    this.push(header)
    if (chunk.length > 0) this.push(chunk)
  }

  flush(): void {
    this.hooks.beforeFlush() // `scheduled` is still set: what it queues schedules no second flush
    this.scheduled = false
    if (this.closed || this.parts.length === 0) return
    const out = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.bytes)
    this.parts = []
    this.bytes = 0
    this.socket.write(out)
    this.hooks.afterFlush()
  }

  /** The socket is gone: queued frames are dropped, later ones ignored. */
  close(): void {
    this.closed = true
    this.parts = []
    this.bytes = 0
  }
}
