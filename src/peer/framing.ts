// Splitting a byte stream into length-prefixed frames. FrameReader is push
// based (socket 'data' -> frames, synchronously, for the raft and RPC lanes);
// StreamReader is pull based with bounded buffering (the snapshot lane, where
// the consumer awaits disk writes and the socket must pause meanwhile).

import type { Socket } from "node:net"
import {
  DEFAULT_FRAME_BYTES_MAX,
  FRAME_HEADER_BYTES,
  decodeFrameBody,
  decodeFramePayload,
  readUint32,
  type Frame,
} from "./codec"
import { MalformedFrameError } from "./errors"

export class FrameReader {
  /** Unconsumed bytes are buffer[offset..]. */
  private buffer: Buffer = Buffer.alloc(0)
  private offset = 0
  private failed = false

  constructor(
    private readonly onFrame: (frame: Frame, wireBytes: number) => void,
    private readonly frameBytesMax = DEFAULT_FRAME_BYTES_MAX,
  ) {}

  /** Feeds bytes; calls onFrame for each complete frame. Throws MalformedFrameError (then stays failed). */
  push(chunk: Buffer): void {
    if (this.failed) return
    if (this.offset === this.buffer.length) {
      this.buffer = chunk
    } else {
      this.buffer = Buffer.concat([this.buffer.subarray(this.offset), chunk])
    }
    this.offset = 0
    try {
      this.drain()
    } catch (e) {
      this.failed = true
      throw e
    }
  }

  /** Bytes received but not yet consumed as frames (handed over when a lane changes mode). */
  takeRest(): Buffer {
    const rest = this.buffer.subarray(this.offset)
    this.buffer = Buffer.alloc(0)
    this.offset = 0
    this.failed = true
    return rest
  }

  private drain(): void {
    while (!this.failed) {
      const buffer = this.buffer
      const available = buffer.length - this.offset
      if (available < FRAME_HEADER_BYTES) return
      const length = buffer.readUInt32BE(this.offset)
      checkLength(length, this.frameBytesMax)
      const wireBytes = FRAME_HEADER_BYTES + length
      if (available < wireBytes) return
      if (length < 4) throw new MalformedFrameError("frame shorter than its envelope length")
      const start = this.offset + FRAME_HEADER_BYTES
      const envelopeBytes = readUint32(buffer, start)
      const body = new Uint8Array(buffer.buffer, buffer.byteOffset + start + 4, length - 4)
      this.offset += wireBytes
      this.onFrame(decodeFrameBody(body, envelopeBytes), wireBytes)
    }
  }
}

function checkLength(length: number, frameBytesMax: number): void {
  if (length === 0) throw new MalformedFrameError("empty frame")
  if (length > frameBytesMax) throw new MalformedFrameError(`frame of ${length} bytes exceeds ${frameBytesMax}`)
}

/**
 * Pull-based reads from a socket with at most `highWaterBytes` buffered: the
 * socket is paused while the consumer is behind.
 */
export class StreamReader {
  private chunks: Buffer[] = []
  private buffered = 0
  private ended = false
  private error: Error | null = null
  private waiter: (() => void) | null = null
  /** Largest number of bytes ever buffered here (tests check that memory stays bounded). */
  bufferedBytesMax = 0

  constructor(
    private readonly socket: Socket,
    initial: Buffer,
    private readonly highWaterBytes = 1024 * 1024,
    private readonly frameBytesMax = DEFAULT_FRAME_BYTES_MAX,
  ) {
    if (initial.length > 0) this.add(initial)
    socket.on("data", (chunk: Buffer) => this.add(chunk))
    socket.on("end", () => this.finish(null))
    socket.on("close", () => this.finish(null))
    socket.on("error", (e: Error) => this.finish(e))
  }

  /** Reads the next frame. */
  async readFrame(): Promise<{ frame: Frame; wireBytes: number }> {
    await this.waitFor(FRAME_HEADER_BYTES)
    const length = this.peekLength()
    checkLength(length, this.frameBytesMax)
    await this.waitFor(FRAME_HEADER_BYTES + length)
    const bytes = this.take(FRAME_HEADER_BYTES + length)
    return { frame: decodeFramePayload(bytes.subarray(FRAME_HEADER_BYTES)), wireBytes: bytes.length }
  }

  /** Reads between 1 and `max` raw bytes. */
  async readChunk(max: number): Promise<Buffer> {
    await this.waitFor(1)
    const first = this.chunks[0]!
    return this.take(Math.min(max, first.length))
  }

  private add(chunk: Buffer): void {
    this.chunks.push(chunk)
    this.buffered += chunk.length
    if (this.buffered > this.bufferedBytesMax) this.bufferedBytesMax = this.buffered
    if (this.buffered >= this.highWaterBytes) this.socket.pause()
    this.wake()
  }

  private finish(error: Error | null): void {
    this.ended = true
    this.error ??= error
    this.wake()
  }

  private wake(): void {
    const w = this.waiter
    this.waiter = null
    w?.()
  }

  private async waitFor(n: number): Promise<void> {
    while (this.buffered < n) {
      if (this.ended) throw this.error ?? new Error("connection closed")
      this.socket.resume()
      await new Promise<void>((resolve) => (this.waiter = resolve))
    }
  }

  private peekLength(): number {
    if (this.chunks[0]!.length < FRAME_HEADER_BYTES) this.chunks = [Buffer.concat(this.chunks)]
    return this.chunks[0]!.readUInt32BE(0)
  }

  private take(n: number): Buffer {
    let out: Buffer
    const first = this.chunks[0]!
    if (first.length >= n) {
      out = first.subarray(0, n)
      if (first.length === n) this.chunks.shift()
      else this.chunks[0] = first.subarray(n)
    } else {
      const joined = Buffer.concat(this.chunks)
      out = joined.subarray(0, n)
      this.chunks = joined.length > n ? [joined.subarray(n)] : []
    }
    this.buffered -= n
    if (this.buffered < this.highWaterBytes / 2 && !this.ended) this.socket.resume()
    return out
  }
}
