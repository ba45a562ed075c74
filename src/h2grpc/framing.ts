// gRPC length-prefixed messages (gRPC over HTTP/2, "Length-Prefixed-Message"):
// 1 byte compressed flag, 4 bytes big-endian length, then the message. A
// message may span DATA frames and a frame may hold several messages.

import { gunzipSync, inflateSync } from "node:zlib"
import { GrpcError, GrpcStatus } from "./status"

export const PREFIX_BYTES = 5

/** One framed message: the prefix and the payload in one buffer (one write). */
export function frameMessage(payload: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(PREFIX_BYTES + payload.length)
  frame[0] = 0
  frame.writeUInt32BE(payload.length, 1)
  frame.set(payload, PREFIX_BYTES)
  return frame
}

/** The 5-byte prefix alone (uncompressed), for a payload written separately. */
export function messagePrefix(length: number): Buffer {
  const prefix = Buffer.allocUnsafe(PREFIX_BYTES)
  prefix[0] = 0
  prefix.writeUInt32BE(length, 1)
  return prefix
}

export type Decompress = (bytes: Uint8Array) => Uint8Array

/** The decompressor for a grpc-encoding header, or a GrpcError(UNIMPLEMENTED). */
export function decompressorFor(encoding: string | undefined): Decompress | undefined {
  if (encoding === undefined || encoding === "identity") return undefined
  if (encoding === "gzip") return (bytes) => gunzipSync(bytes)
  if (encoding === "deflate") return (bytes) => inflateSync(bytes)
  throw new GrpcError(GrpcStatus.UNIMPLEMENTED, `grpc: Decompressor is not installed for grpc-encoding "${encoding}"`)
}

/**
 * Reassembles messages from DATA chunks. `push` calls `onMessage` for each
 * complete message, in order, and throws GrpcError on a message larger than
 * `maxMessageBytes` or a compressed one it cannot decode.
 */
export class MessageReader {
  /** Allocated only when a prefix spans chunks. */
  private prefix: Buffer | undefined
  private prefixFilled = 0
  private body: Buffer | undefined
  private bodyFilled = 0
  private compressed = false

  constructor(
    private readonly maxMessageBytes: number,
    private readonly decompress: Decompress | undefined,
  ) {}

  /** True between messages (nothing partial buffered). */
  get idle(): boolean {
    return this.prefixFilled === 0 && this.body === undefined
  }

  push(chunk: Buffer, onMessage: (message: Uint8Array) => void): void {
    let at = 0
    const end = chunk.length
    while (at < end) {
      if (this.body === undefined) {
        // Fast path: a whole message inside this chunk, no copy.
        if (this.prefixFilled === 0 && end - at >= PREFIX_BYTES) {
          const flag = chunk[at]!
          const length = chunk.readUInt32BE(at + 1)
          this.checkLength(length)
          if (end - at - PREFIX_BYTES >= length) {
            const start = at + PREFIX_BYTES
            at = start + length
            onMessage(this.payload(flag, chunk.subarray(start, at)))
            continue
          }
        }
        const prefix = (this.prefix ??= Buffer.alloc(PREFIX_BYTES))
        const take = Math.min(PREFIX_BYTES - this.prefixFilled, end - at)
        chunk.copy(prefix, this.prefixFilled, at, at + take)
        this.prefixFilled += take
        at += take
        if (this.prefixFilled < PREFIX_BYTES) return
        const length = prefix.readUInt32BE(1)
        this.checkLength(length)
        this.compressed = prefix[0] !== 0
        if (prefix[0]! > 1) throw new GrpcError(GrpcStatus.INTERNAL, `grpc: invalid message compression flag ${prefix[0]}`)
        this.body = Buffer.allocUnsafe(length)
        this.bodyFilled = 0
      }
      const take = Math.min(this.body.length - this.bodyFilled, end - at)
      chunk.copy(this.body, this.bodyFilled, at, at + take)
      this.bodyFilled += take
      at += take
      if (this.bodyFilled === this.body.length) {
        const body = this.body
        this.body = undefined
        this.prefixFilled = 0
        onMessage(this.payload(this.compressed ? 1 : 0, body))
      }
    }
  }

  private checkLength(length: number): void {
    if (length > this.maxMessageBytes) {
      throw new GrpcError(GrpcStatus.RESOURCE_EXHAUSTED, `grpc: received message larger than max (${length} vs. ${this.maxMessageBytes})`)
    }
  }

  private payload(flag: number, bytes: Buffer): Uint8Array {
    if (flag === 0) return bytes
    if (flag !== 1) throw new GrpcError(GrpcStatus.INTERNAL, `grpc: invalid message compression flag ${flag}`)
    if (this.decompress === undefined) {
      throw new GrpcError(GrpcStatus.INTERNAL, "grpc: compressed flag set with identity or empty encoding")
    }
    const plain = this.decompress(bytes)
    this.checkLength(plain.length)
    return plain
  }
}

/** grpc-timeout ("1S", "250m", ...) in milliseconds; undefined when absent or malformed. */
export function parseGrpcTimeoutMs(value: string | undefined): number | undefined {
  if (value === undefined || value.length < 2 || value.length > 9) return undefined
  const amount = Number(value.slice(0, -1))
  if (!Number.isSafeInteger(amount) || amount < 0) return undefined
  switch (value[value.length - 1]) {
    case "H":
      return amount * 3_600_000
    case "M":
      return amount * 60_000
    case "S":
      return amount * 1000
    case "m":
      return amount
    case "u":
      return amount / 1000
    case "n":
      return amount / 1_000_000
    default:
      return undefined
  }
}

/** Percent-encodes grpc-message: bytes outside 0x20..0x7e and '%' become %XX of their UTF-8. */
export function encodeGrpcMessage(message: string): string {
  let plain = true
  for (let i = 0; i < message.length; i++) {
    const c = message.charCodeAt(i)
    if (c < 0x20 || c > 0x7e || c === 0x25) {
      plain = false
      break
    }
  }
  if (plain) return message
  let out = ""
  for (const byte of Buffer.from(message, "utf8")) {
    out += byte < 0x20 || byte > 0x7e || byte === 0x25 ? `%${byte.toString(16).toUpperCase().padStart(2, "0")}` : String.fromCharCode(byte)
  }
  return out
}
