// Makes client :authority values palatable to Bun's HTTP/2 server.
//
// grpc-go (etcdctl 3.4) sends the pseudo-header :authority verbatim from its
// endpoint string: "http://127.0.0.1:2379", or a unix socket path. Bun answers
// a HEADERS frame whose :authority holds '/', '@', spaces ... with RST_STREAM
// PROTOCOL_ERROR before JS sees the stream, so every etcdctl command that dials
// one endpoint by URL (endpoint status, defrag, snapshot save ...) failed.
//
// AuthorityRewriter sits on the bytes a client sends, before Bun's parser.
// Frames other than header blocks pass through untouched (the chunk itself when
// nothing changes: no copy). In a header block (HEADERS + CONTINUATION) it
// walks the HPACK representations without keeping the dynamic table, and gives
// an :authority literal with refused bytes a value OF THE SAME LENGTH with each
// refused byte replaced by '.' ("http://h:1" -> "http:..h:1"). HPACK table
// entries cost name length + value length + 32, so both ends keep identical
// tables; later indexed references already resolve to the rewritten value.
// The rewritten string goes out raw (not Huffman-coded); the block is
// re-framed (padding dropped, PRIORITY kept, split at 16384 bytes).
//
// Only connections that need it pay for it: handOffHttp2() reads the start of
// each connection up to the first header block and gives Bun the socket itself
// (Bun's native reads and writes) unless that block needs a rewrite: the
// rewriting Duplex (JS reads and writes) costs 15-45% more CPU per unary call
// (h2load, transport_bench), the hand-off nothing measurable.
//
// Known limits: an :authority whose NAME is referenced from the dynamic table
// (no encoder we know does that: grpc-go, nghttp2 and Bun all use static index
// 1) and an empty :authority (no same-length fix) are left alone.

import type * as net from "node:net"
import type * as tls from "node:tls"
import { Duplex } from "node:stream"
import { huffmanDecode } from "./hpack_huffman"

const PREFACE_BYTES = 24
const FRAME_HEADER_BYTES = 9
const TYPE_HEADERS = 0x1
const TYPE_SETTINGS = 0x4
const TYPE_CONTINUATION = 0x9
const FLAG_ACK = 0x1
const FLAG_END_STREAM = 0x1
const FLAG_END_HEADERS = 0x4
const FLAG_PADDED = 0x8
const FLAG_PRIORITY = 0x20
const PRIORITY_BYTES = 5
/** SETTINGS_MAX_FRAME_SIZE our listeners advertise (and the protocol's minimum). */
export const FRAME_PAYLOAD_MAX = 16_384
/** A header block larger than this is passed on unexamined (Bun refuses it anyway). */
const BLOCK_BYTES_MAX = 1 << 20
/** HPACK static table index of :authority. */
const STATIC_AUTHORITY = 1
const AUTHORITY_NAME = new TextEncoder().encode(":authority")
const REPLACEMENT = 0x2e // '.'

/** Bytes Bun takes in :authority: letters, digits, -._~!$&'()*+,;=:[]% (measured on Bun 1.4.5). */
const acceptedByte: Uint8Array = (() => {
  const table = new Uint8Array(256)
  for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:[]%") table[c.charCodeAt(0)] = 1
  return table
})()

/** True when Bun accepts `value` as :authority as far as its bytes go (empty is refused too). */
export function authorityAcceptable(value: Uint8Array): boolean {
  for (let i = 0; i < value.length; i++) if (acceptedByte[value[i]!] === 0) return false
  return true
}

/** `value` with every byte Bun refuses replaced by '.': same length. */
export function sanitizeAuthority(value: Uint8Array): Uint8Array {
  const out = new Uint8Array(value.length)
  for (let i = 0; i < value.length; i++) out[i] = acceptedByte[value[i]!] === 1 ? value[i]! : REPLACEMENT
  return out
}

interface Decoded {
  value: number
  next: number
}

/** An HPACK prefix integer (RFC 7541 §5.1) at `pos`; undefined when truncated or absurd. */
function readInteger(block: Uint8Array, pos: number, prefixBits: number): Decoded | undefined {
  if (pos >= block.length) return undefined
  const mask = (1 << prefixBits) - 1
  let value = block[pos]! & mask
  let next = pos + 1
  if (value < mask) return { value, next }
  for (let shift = 0; ; shift += 7) {
    if (next >= block.length || shift > 28) return undefined
    const byte = block[next++]!
    value += (byte & 0x7f) * 2 ** shift
    if ((byte & 0x80) === 0) return { value, next }
  }
}

interface StringLiteral {
  huffman: boolean
  bytes: Uint8Array
  /** Offset just past the string. */
  next: number
}

/** An HPACK string literal (RFC 7541 §5.2) at `pos`. */
function readString(block: Uint8Array, pos: number): StringLiteral | undefined {
  if (pos >= block.length) return undefined
  const huffman = (block[pos]! & 0x80) !== 0
  const length = readInteger(block, pos, 7)
  if (length === undefined || length.next + length.value > block.length) return undefined
  return { huffman, bytes: block.subarray(length.next, length.next + length.value), next: length.next + length.value }
}

function plainBytes(literal: StringLiteral): Uint8Array | undefined {
  return literal.huffman ? huffmanDecode(literal.bytes) : literal.bytes
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/** A raw (non-Huffman) HPACK string literal. */
function encodeRawString(value: Uint8Array): Uint8Array {
  const prefix: number[] = []
  if (value.length < 0x7f) {
    prefix.push(value.length)
  } else {
    prefix.push(0x7f)
    let rest = value.length - 0x7f
    while (rest >= 0x80) {
      prefix.push((rest & 0x7f) | 0x80)
      rest = Math.floor(rest / 0x80)
    }
    prefix.push(rest)
  }
  const out = new Uint8Array(prefix.length + value.length)
  out.set(prefix, 0)
  out.set(value, prefix.length)
  return out
}

interface Edit {
  start: number
  end: number
  replacement: Uint8Array
}

/**
 * Rewrites the :authority literals Bun would refuse in one HPACK header block
 * (same decoded length, raw encoding). Undefined when there is nothing to
 * change, or the block is malformed (Bun's decoder then reports it).
 */
export function rewriteHeaderBlock(block: Uint8Array): Uint8Array | undefined {
  const edits: Edit[] = []
  let pos = 0
  while (pos < block.length) {
    const first = block[pos]!
    if ((first & 0x80) !== 0 || (first & 0xe0) === 0x20) {
      // indexed field (§6.1) or dynamic table size update (§6.3)
      const skipped = readInteger(block, pos, (first & 0x80) !== 0 ? 7 : 5)
      if (skipped === undefined) return undefined
      pos = skipped.next
      continue
    }
    // literal with incremental indexing (§6.2.1: 01xxxxxx), without indexing or never indexed (§6.2.2-3: 000xxxxx)
    const index = readInteger(block, pos, (first & 0x40) !== 0 ? 6 : 4)
    if (index === undefined) return undefined
    pos = index.next
    let isAuthority = index.value === STATIC_AUTHORITY
    if (index.value === 0) {
      const name = readString(block, pos)
      if (name === undefined) return undefined
      pos = name.next
      const plain = name.bytes.length <= 40 ? plainBytes(name) : undefined
      isAuthority = plain !== undefined && sameBytes(plain, AUTHORITY_NAME)
    }
    const valueStart = pos
    const value = readString(block, pos)
    if (value === undefined) return undefined
    pos = value.next
    if (!isAuthority) continue
    const plain = plainBytes(value)
    if (plain === undefined) return undefined
    if (plain.length === 0 || authorityAcceptable(plain)) continue
    edits.push({ start: valueStart, end: value.next, replacement: encodeRawString(sanitizeAuthority(plain)) })
  }
  if (edits.length === 0) return undefined
  const pieces: Uint8Array[] = []
  let from = 0
  for (const edit of edits) {
    pieces.push(block.subarray(from, edit.start), edit.replacement)
    from = edit.end
  }
  pieces.push(block.subarray(from))
  return Buffer.concat(pieces)
}

function frameHeader(options: { length: number; type: number; flags: number; streamId: number }): Buffer {
  const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES)
  header.writeUIntBE(options.length, 0, 3)
  header[3] = options.type
  header[4] = options.flags
  header.writeUInt32BE(options.streamId, 5)
  return header
}

/**
 * Rewrites one complete header block given as its raw frames (a HEADERS frame
 * and its CONTINUATION frames, back to back). Undefined when nothing changes
 * or the frames are malformed.
 */
export function rewriteHeaderFrames(frames: Uint8Array): Uint8Array | undefined {
  const bytes = Buffer.from(frames.buffer, frames.byteOffset, frames.byteLength)
  if (bytes.length < FRAME_HEADER_BYTES || bytes[3] !== TYPE_HEADERS) return undefined
  const length = bytes.readUIntBE(0, 3)
  const flags = bytes[4]!
  const streamId = bytes.readUInt32BE(5) & 0x7fffffff
  const payload = bytes.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + length)
  if (payload.length !== length) return undefined
  let offset = 0
  let padding = 0
  if ((flags & FLAG_PADDED) !== 0) {
    if (length < 1) return undefined
    padding = payload[0]!
    offset = 1
  }
  let priority: Uint8Array | undefined
  if ((flags & FLAG_PRIORITY) !== 0) {
    priority = payload.subarray(offset, offset + PRIORITY_BYTES)
    offset += PRIORITY_BYTES
  }
  if (offset + padding > length) return undefined
  const fragments: Uint8Array[] = [payload.subarray(offset, length - padding)]
  for (let pos = FRAME_HEADER_BYTES + length; pos < bytes.length; ) {
    if (pos + FRAME_HEADER_BYTES > bytes.length || bytes[pos + 3] !== TYPE_CONTINUATION) return undefined
    const continuationLength = bytes.readUIntBE(pos, 3)
    const start = pos + FRAME_HEADER_BYTES
    if (start + continuationLength > bytes.length) return undefined
    fragments.push(bytes.subarray(start, start + continuationLength))
    pos = start + continuationLength
  }
  const block = fragments.length === 1 ? fragments[0]! : Buffer.concat(fragments)
  const rewritten = rewriteHeaderBlock(block)
  if (rewritten === undefined) return undefined
  return frameHeaderBlock({ block: rewritten, flags, streamId, priority })
}

/** A header block as a HEADERS frame plus CONTINUATION frames, none over FRAME_PAYLOAD_MAX. */
function frameHeaderBlock(options: { block: Uint8Array; flags: number; streamId: number; priority: Uint8Array | undefined }): Buffer {
  const { block, streamId, priority } = options
  const out: Uint8Array[] = []
  const firstRoom = FRAME_PAYLOAD_MAX - (priority === undefined ? 0 : PRIORITY_BYTES)
  const firstBytes = Math.min(block.length, firstRoom)
  let flags = options.flags & (FLAG_END_STREAM | FLAG_PRIORITY)
  if (firstBytes === block.length) flags |= FLAG_END_HEADERS
  const firstLength = firstBytes + (priority === undefined ? 0 : PRIORITY_BYTES)
  out.push(frameHeader({ length: firstLength, type: TYPE_HEADERS, flags, streamId }))
  if (priority !== undefined) out.push(priority)
  out.push(block.subarray(0, firstBytes))
  for (let pos = firstBytes; pos < block.length; ) {
    const size = Math.min(block.length - pos, FRAME_PAYLOAD_MAX)
    const last = pos + size === block.length
    out.push(frameHeader({ length: size, type: TYPE_CONTINUATION, flags: last ? FLAG_END_HEADERS : 0, streamId }))
    out.push(block.subarray(pos, pos + size))
    pos += size
  }
  return Buffer.concat(out)
}

/**
 * Scans the client-to-server bytes of one HTTP/2 connection (starting with the
 * 24-byte preface) and emits them, header blocks rewritten where needed.
 * Emitted chunks keep the input order; a chunk with no header block to change
 * is emitted as is.
 */
export class AuthorityRewriter {
  private prefaceLeft = PREFACE_BYTES
  /** Payload bytes of a passed-through frame still to come. */
  private skip = 0
  /** A frame header split across chunks. */
  private readonly head = Buffer.alloc(FRAME_HEADER_BYTES)
  private headBytes = 0
  /** Raw frames of a header block still open (awaiting payload bytes or CONTINUATION). */
  private block: Uint8Array[] | undefined
  private blockBytes = 0
  /** Payload bytes of the block's current frame still to come. */
  private blockNeed = 0
  private blockEnded = false
  /** Header blocks rewritten so far. */
  rewrites = 0
  /** Drop the next SETTINGS ACK (it answers handOffHttp2()'s own SETTINGS, which Bun never sent). */
  private dropSettingsAck: boolean

  constructor(
    private readonly emit: (chunk: Buffer) => void,
    options: { dropSettingsAck?: boolean } = {},
  ) {
    this.dropSettingsAck = options.dropSettingsAck ?? false
  }

  push(chunk: Buffer): void {
    const n = chunk.length
    let i = 0
    let runStart = 0 // start of the passed-through bytes not yet emitted
    const flushRun = (end: number): void => {
      if (end > runStart) this.emit(runStart === 0 && end === n ? chunk : chunk.subarray(runStart, end))
      runStart = end
    }
    while (i < n) {
      if (this.prefaceLeft > 0) {
        const k = Math.min(this.prefaceLeft, n - i)
        this.prefaceLeft -= k
        i += k
        continue
      }
      if (this.skip > 0) {
        const k = Math.min(this.skip, n - i)
        this.skip -= k
        i += k
        continue
      }
      if (this.block !== undefined && this.blockNeed > 0) {
        const k = Math.min(this.blockNeed, n - i)
        this.block.push(chunk.subarray(i, i + k))
        this.blockNeed -= k
        i += k
        runStart = i
        if (this.blockNeed === 0 && this.blockEnded) this.finishBlock()
        continue
      }
      // at a frame boundary
      if (this.headBytes > 0 || n - i < FRAME_HEADER_BYTES) {
        if (this.headBytes === 0) flushRun(i)
        const k = Math.min(FRAME_HEADER_BYTES - this.headBytes, n - i)
        chunk.copy(this.head, this.headBytes, i, i + k)
        this.headBytes += k
        i += k
        runStart = i
        if (this.headBytes < FRAME_HEADER_BYTES) break
        this.headBytes = 0
        this.openFrame(Buffer.from(this.head))
        continue
      }
      const length = chunk.readUIntBE(i, 3)
      const type = chunk[i + 3]!
      const flags = chunk[i + 4]!
      if (this.block === undefined && type !== TYPE_HEADERS) {
        if (this.dropSettingsAck && type === TYPE_SETTINGS && (flags & FLAG_ACK) !== 0) {
          this.dropSettingsAck = false
          flushRun(i)
          runStart = i + FRAME_HEADER_BYTES
        }
        this.skip = length
        i += FRAME_HEADER_BYTES
        continue
      }
      const end = i + FRAME_HEADER_BYTES + length
      if (this.block === undefined && end <= n && (flags & FLAG_END_HEADERS) !== 0) {
        // the common case: a whole header block in one frame in this chunk
        const rewritten = rewriteHeaderFrames(chunk.subarray(i, end))
        if (rewritten !== undefined) {
          this.rewrites++
          flushRun(i)
          this.emit(Buffer.from(rewritten.buffer, rewritten.byteOffset, rewritten.byteLength))
          runStart = end
        }
        i = end
        continue
      }
      flushRun(i)
      this.openFrame(chunk.subarray(i, i + FRAME_HEADER_BYTES))
      i += FRAME_HEADER_BYTES
      runStart = i
    }
    flushRun(n)
  }

  /** Takes a complete frame header whose frame is not passed straight through in push(). */
  private openFrame(header: Buffer): void {
    const length = header.readUIntBE(0, 3)
    const type = header[3]!
    const flags = header[4]!
    if (this.block === undefined) {
      if (type !== TYPE_HEADERS) {
        if (this.dropSettingsAck && type === TYPE_SETTINGS && (flags & FLAG_ACK) !== 0) this.dropSettingsAck = false
        else this.emit(header)
        this.skip = length
        return
      }
      this.block = []
      this.blockBytes = 0
    } else if (type !== TYPE_CONTINUATION) {
      // the peer broke the block (a protocol error Bun reports): pass everything on
      this.abandonBlock()
      this.emit(header)
      this.skip = length
      return
    }
    this.block.push(header)
    this.blockBytes += FRAME_HEADER_BYTES + length
    this.blockNeed = length
    this.blockEnded = (flags & FLAG_END_HEADERS) !== 0
    if (this.blockBytes > BLOCK_BYTES_MAX) {
      this.abandonBlock()
      this.skip = length
      this.blockNeed = 0
      return
    }
    if (length === 0 && this.blockEnded) this.finishBlock()
  }

  private finishBlock(): void {
    const parts = this.block ?? []
    this.block = undefined
    const raw = Buffer.concat(parts)
    const rewritten = rewriteHeaderFrames(raw)
    if (rewritten === undefined) {
      this.emit(raw)
      return
    }
    this.rewrites++
    this.emit(Buffer.from(rewritten.buffer, rewritten.byteOffset, rewritten.byteLength))
  }

  private abandonBlock(): void {
    for (const part of this.block ?? []) this.emit(Buffer.from(part.buffer, part.byteOffset, part.byteLength))
    this.block = undefined
  }
}

/**
 * A Duplex standing for `socket` in front of Bun's HTTP/2 server: what the
 * client sends goes through an AuthorityRewriter, what the server writes goes
 * to the socket. Forwards what the listener and GrpcServer read from a session's
 * socket (addresses, TLS peer certificate) and setTimeout/destroy.
 */
export class AuthorityRewritingSocket extends Duplex {
  readonly rewriter: AuthorityRewriter

  constructor(
    readonly socket: net.Socket,
    options: { dropSettingsAck?: boolean } = {},
  ) {
    super({ allowHalfOpen: false })
    this.rewriter = new AuthorityRewriter((chunk) => {
      if (!this.push(chunk)) socket.pause()
    }, options)
    socket.on("data", (chunk: Buffer) => this.rewriter.push(chunk))
    socket.on("end", () => this.push(null))
    socket.on("error", (e) => this.destroy(e))
    socket.on("close", () => this.destroy())
    socket.on("timeout", () => this.emit("timeout"))
    // Bun's session listens for errors while it lives; after it is gone a late socket error must not go unhandled
    this.on("error", () => {})
  }

  override _read(): void {
    this.socket.resume()
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.socket.write(chunk)) callback()
    else this.socket.once("drain", () => callback())
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.socket.end()
    callback()
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.socket.destroy()
    callback(error)
  }

  setTimeout(ms: number, callback?: () => void): this {
    this.socket.setTimeout(ms)
    if (callback !== undefined) this.once("timeout", callback)
    return this
  }

  setNoDelay(noDelay?: boolean): this {
    this.socket.setNoDelay(noDelay)
    return this
  }

  setKeepAlive(enable?: boolean, initialDelayMs?: number): this {
    this.socket.setKeepAlive(enable, initialDelayMs)
    return this
  }

  ref(): this {
    this.socket.ref()
    return this
  }

  unref(): this {
    this.socket.unref()
    return this
  }

  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress
  }

  get remotePort(): number | undefined {
    return this.socket.remotePort
  }

  get remoteFamily(): string | undefined {
    return this.socket.remoteFamily
  }

  get localAddress(): string | undefined {
    return this.socket.localAddress
  }

  get localPort(): number | undefined {
    return this.socket.localPort
  }

  get bytesRead(): number {
    return this.socket.bytesRead
  }

  get bytesWritten(): number {
    return this.socket.bytesWritten
  }

  get encrypted(): boolean {
    return (this.socket as Partial<tls.TLSSocket>).encrypted === true
  }

  /** TLS: whether the client's certificate was verified. */
  get authorized(): boolean {
    return (this.socket as Partial<tls.TLSSocket>).authorized === true
  }

  get alpnProtocol(): string | false | null | undefined {
    return (this.socket as Partial<tls.TLSSocket>).alpnProtocol
  }

  /** TLS: the client's certificate ({} without TLS or certificate). */
  getPeerCertificate(detailed?: boolean): tls.PeerCertificate | Record<string, never> {
    const tlsSocket = this.socket as Partial<tls.TLSSocket>
    return tlsSocket.getPeerCertificate === undefined ? {} : tlsSocket.getPeerCertificate(detailed === true)
  }
}

/** Bytes read before choosing a path; more than this and the rewriter takes the connection. */
const PEEK_BYTES_MAX = 64 * 1024
const EMPTY_SETTINGS = Buffer.from([0, 0, 0, TYPE_SETTINGS, 0, 0, 0, 0, 0])

interface StartScan {
  /** The first header block is complete. */
  headers: boolean
  /** ... and Bun would refuse it. */
  rewrite: boolean
  /** The preface and at least one frame have arrived. */
  started: boolean
  /** Offset of the first SETTINGS ACK frame. */
  ackOffset: number | undefined
}

/** Reads the connection's first bytes up to the end of its first header block (or as far as they go). */
function scanStart(bytes: Buffer): StartScan {
  const scan: StartScan = { headers: false, rewrite: false, started: false, ackOffset: undefined }
  let pos = PREFACE_BYTES
  let blockStart: number | undefined
  while (pos + FRAME_HEADER_BYTES <= bytes.length) {
    const length = bytes.readUIntBE(pos, 3)
    const type = bytes[pos + 3]!
    const flags = bytes[pos + 4]!
    const end = pos + FRAME_HEADER_BYTES + length
    if (end > bytes.length) break
    scan.started = true
    if (blockStart === undefined && type === TYPE_SETTINGS && (flags & FLAG_ACK) !== 0 && scan.ackOffset === undefined) scan.ackOffset = pos
    if (blockStart === undefined && type === TYPE_HEADERS) blockStart = pos
    if (blockStart !== undefined && (type === TYPE_HEADERS || type === TYPE_CONTINUATION) && (flags & FLAG_END_HEADERS) !== 0) {
      scan.headers = true
      scan.rewrite = rewriteHeaderFrames(bytes.subarray(blockStart, end)) !== undefined
      return scan
    }
    pos = end
  }
  return scan
}

/**
 * Takes an accepted HTTP/2 connection (nothing read yet, or what was read put
 * back with unshift) and gives Bun's server either the socket itself or an
 * AuthorityRewritingSocket, by its first header block. A client that waits for
 * the server's SETTINGS before its first request (grpc-go) gets an empty
 * SETTINGS frame from here, and its ACK of it is removed before Bun sees it.
 * Without a header block within `decideWithinMs`, the rewriter takes over.
 */
export function handOffHttp2(options: { socket: net.Socket; onReady: (socket: net.Socket | AuthorityRewritingSocket) => void; decideWithinMs?: number }): void {
  const { socket, onReady } = options
  let bytes: Buffer = Buffer.alloc(0)
  let injected = false
  let decided = false
  const decide = (scan: StartScan): void => {
    if (decided) return
    decided = true
    clearTimeout(timer)
    socket.off("data", onData)
    socket.off("close", onClose)
    socket.pause()
    let rest: Buffer = bytes
    let ackPending = injected
    if (injected && scan.ackOffset !== undefined) {
      rest = Buffer.concat([bytes.subarray(0, scan.ackOffset), bytes.subarray(scan.ackOffset + FRAME_HEADER_BYTES)])
      ackPending = false
    }
    if (rest.length > 0) socket.unshift(rest)
    if (scan.headers && !scan.rewrite && !ackPending) onReady(socket)
    else onReady(new AuthorityRewritingSocket(socket, { dropSettingsAck: ackPending }))
    socket.resume()
  }
  const onData = (chunk: Buffer): void => {
    bytes = bytes.length === 0 ? chunk : Buffer.concat([bytes, chunk])
    const scan = scanStart(bytes)
    if (scan.headers || bytes.length > PEEK_BYTES_MAX) {
      decide(scan)
    } else if (scan.started && !injected) {
      injected = true
      socket.write(EMPTY_SETTINGS)
    }
  }
  const onClose = (): void => {
    decided = true
    clearTimeout(timer)
  }
  const timer = setTimeout(() => decide(scanStart(bytes)), options.decideWithinMs ?? 1000)
  socket.on("data", onData)
  socket.once("close", onClose)
  socket.resume()
}
