// The server side of one HTTP/2 connection (RFC 9113) over a net or TLS
// socket: the client preface, SETTINGS, PING, flow control both ways, HEADERS
// + CONTINUATION, DATA, RST_STREAM, GOAWAY, and stream bookkeeping. Frames
// going out are queued in a FrameOutput (one socket.write per turn of the
// event loop).

import type * as net from "node:net"
import { peerCommonNameOf } from "../server_stream"
import {
  CLIENT_PREFACE,
  DEFAULT_MAX_FRAME_BYTES,
  DEFAULT_WINDOW_BYTES,
  ErrorCode,
  Flag,
  FRAME_HEADER_BYTES,
  FrameReader,
  FrameType,
  goawayFrame,
  H2ConnectionError,
  MAX_FRAME_BYTES_LIMIT,
  MAX_WINDOW_BYTES,
  rstStreamFrame,
  Setting,
  settingsFrame,
  windowUpdateFrame,
  writeFrameHeader,
} from "./frames"
import { FrameOutput } from "./frame_output"
import { HpackDecoder, type HeaderMap } from "./hpack_decoder"
import { encodeHeaders, type OutgoingHeaders } from "./hpack_encoder"
import { H2Stream, STREAM_QUEUE_BYTES_MAX, type StreamOwner } from "./stream"

export interface H2ConnectionOptions {
  socket: net.Socket
  /** Bytes already read from the socket (the listener looked at them to pick HTTP/2). */
  initialBytes?: Buffer
  /** SETTINGS_MAX_CONCURRENT_STREAMS; streams beyond it are refused (RST_STREAM REFUSED_STREAM). */
  maxConcurrentStreams: number
  /** Our receive windows, connection and per stream. */
  windowBytes: number
  onStream(stream: H2Stream): void
  /** A PING (not an ACK) arrived (its ACK is queued already). */
  onPing?(): void
  /** The socket closed; every stream is closed too. */
  onClose?(): void
  /** A bug surfaced while handling the client's bytes: the connection ends with INTERNAL_ERROR. */
  onInternalError?(error: unknown): void
  /** A client that sends PINGs or SETTINGS while this much is unread is flooding (default 32 MiB). */
  floodBacklogBytes?: number
  /** A client that resets more open streams than this within a second is flooding (default 5000). */
  resetFloodPerSecond?: number
}

/** A header block (HEADERS + CONTINUATION) larger than this ends the connection. */
const HEADER_BLOCK_BYTES_MAX = 1024 * 1024
/** After a connection error the socket gets this long to deliver GOAWAY before it is destroyed. */
const ERROR_LINGER_MS = 1000
const UNLIMITED_STREAMS = 2 ** 32 - 1
/**
 * DATA never piles up this far (the client's windows bound it), so a backlog
 * this large is made of our answers to control frames the client sends
 * without reading (the PING and SETTINGS floods of CVE-2019-9512/9515).
 */
const FLOOD_BACKLOG_BYTES = 32 * 1024 * 1024
/**
 * Opening streams and resetting them at once (the "rapid reset" of
 * CVE-2023-44487) starts a handler per stream without ever having many open,
 * so MAX_CONCURRENT_STREAMS does not bound it. Clients cancel calls (timeouts,
 * watch cancels), but not thousands a second on one connection.
 */
const RESET_FLOOD_PER_SECOND = 5000

/** A header block being collected from HEADERS and CONTINUATION frames. */
interface OpenHeaderBlock {
  streamId: number
  endStream: boolean
  parts: Buffer[]
  bytes: number
}

export class H2Connection implements StreamOwner {
  readonly remoteAddress: string | undefined
  private readonly socket: net.Socket
  private readonly reader = new FrameReader(DEFAULT_MAX_FRAME_BYTES)
  private readonly decoder = new HpackDecoder()
  private readonly streams = new Map<number, H2Stream>()
  /** Streams with body bytes waiting for window. */
  private readonly blocked = new Set<H2Stream>()
  /** Streams whose write() returned false. */
  private readonly drainWaiters = new Set<H2Stream>()
  /** Streams we ended while the client had not: reset (NO_ERROR) at flush unless the client ends them first. */
  private readonly endedLocally = new Set<H2Stream>()
  private prefaceBytesSeen = 0
  private settingsSeen = false
  private headerBlock: OpenHeaderBlock | undefined
  private lastStreamId = 0
  private peerInitialWindowBytes = DEFAULT_WINDOW_BYTES
  private peerMaxFrameBytes = DEFAULT_MAX_FRAME_BYTES
  /** Bytes we may still send on the connection. */
  private sendWindow = DEFAULT_WINDOW_BYTES
  /** Bytes the client may still send on the connection before we grant more. */
  private receiveWindow: number
  /**
   * What our receive windows are topped up to: the configured size, but never
   * below the protocol's 65535 that a client may use before our SETTINGS arrive.
   */
  private readonly receiveWindowBytes: number
  private readonly output: FrameOutput
  /** GOAWAY sent: no new streams; the socket ends when the last stream does. */
  private draining = false
  private closed = false
  private peerName: string | null | undefined
  private writes = 0
  private readAtMs: number

  constructor(private readonly options: H2ConnectionOptions) {
    this.readAtMs = performance.now()
    this.socket = options.socket
    this.output = new FrameOutput(options.socket, { beforeFlush: () => this.resetEndedLocally(), afterFlush: () => this.checkDrain() })
    this.remoteAddress = options.socket.remoteAddress
    this.receiveWindowBytes = Math.min(Math.max(options.windowBytes, DEFAULT_WINDOW_BYTES), MAX_WINDOW_BYTES)
    this.receiveWindow = this.receiveWindowBytes
  }

  /** Sends our SETTINGS and starts reading (callbacks may run before this returns). */
  start(): void {
    const socket = this.socket
    socket.on("data", (chunk: Buffer) => this.onBytes(chunk))
    socket.on("drain", () => this.checkDrain())
    socket.on("error", () => {})
    socket.on("close", () => this.onSocketClose())
    if (socket.destroyed) {
      this.onSocketClose()
      return
    }
    this.sendPreface()
    const initial = this.options.initialBytes
    if (initial !== undefined && initial.length > 0) this.onBytes(initial)
  }

  get openStreams(): number {
    return this.streams.size
  }

  /** HEADERS and DATA frames queued so far (keepalive enforcement: a write clears the ping strikes). */
  get headersAndDataWritten(): number {
    return this.writes
  }

  /** performance.now() of the last bytes read from the client (server keepalive). */
  get lastReadMs(): number {
    return this.readAtMs
  }

  /** Sends a PING (the server's keepalive); the client's ACK shows as a read. */
  ping(): void {
    if (this.closed) return
    const frame = Buffer.alloc(FRAME_HEADER_BYTES + 8)
    writeFrameHeader(frame, 0, { length: 8, type: FrameType.PING, flags: 0, streamId: 0 })
    this.output.push(frame)
  }

  get peerCommonName(): string | undefined {
    if (this.peerName === undefined) this.peerName = peerCommonNameOf(this.socket as Parameters<typeof peerCommonNameOf>[0]) ?? null
    return this.peerName ?? undefined
  }

  get backlogged(): boolean {
    return this.output.backlogged
  }

  /**
   * Graceful close (RFC 9113 §6.8): GOAWAY with the last stream we took, and
   * the socket ends once the streams in progress have.
   */
  close(code: number = ErrorCode.NO_ERROR, debug = ""): void {
    if (this.closed) return
    if (!this.draining) {
      this.draining = true
      this.output.push(goawayFrame(this.lastStreamId, code, debug))
    }
    if (this.streams.size === 0) this.endSocket()
  }

  /** Closes at once: every stream is cancelled. */
  destroy(): void {
    this.socket.destroy()
    this.onSocketClose()
  }

  // --- StreamOwner

  sendHeaders(stream: H2Stream, headers: OutgoingHeaders, endStream: boolean): void {
    this.writes++
    this.output.pushHeaders({ streamId: stream.id, block: encodeHeaders(headers), endStream, maxFrameBytes: this.peerMaxFrameBytes })
    if (endStream) {
      stream.endRequested = true
      this.endedLocal(stream)
    }
  }

  pump(stream: H2Stream): void {
    const pending = stream.pending
    while (pending.length > 0) {
      const head = pending[0]!
      const n = Math.min(head.length, stream.sendWindow, this.sendWindow, this.peerMaxFrameBytes)
      if (n <= 0) {
        this.blocked.add(stream)
        return
      }
      const last = n === head.length && pending.length === 1 && stream.endRequested && stream.trailers === undefined
      this.writes++
      this.output.pushData(stream.id, n === head.length ? head : head.subarray(0, n), last)
      if (n === head.length) pending.shift()
      else pending[0] = head.subarray(n)
      stream.pendingBytes -= n
      stream.sendWindow -= n
      this.sendWindow -= n
      if (last) {
        this.blocked.delete(stream)
        this.endedLocal(stream)
        return
      }
    }
    this.blocked.delete(stream)
    if (stream.endRequested && !stream.localEnded) {
      this.writes++
      if (stream.trailers !== undefined) this.output.pushHeaders({ streamId: stream.id, block: encodeHeaders(stream.trailers), endStream: true, maxFrameBytes: this.peerMaxFrameBytes })
      else this.output.pushData(stream.id, EMPTY, true)
      this.endedLocal(stream)
    }
  }

  waitForDrain(stream: H2Stream): void {
    this.drainWaiters.add(stream)
  }

  // --- inbound

  private onBytes(chunk: Buffer): void {
    if (this.closed) return
    this.readAtMs = performance.now()
    try {
      let data = chunk
      if (this.prefaceBytesSeen < CLIENT_PREFACE.length) {
        data = this.readPreface(chunk)
        if (data.length === 0) return
      }
      this.reader.push(data, (type, flags, streamId, payload) => this.onFrame(type, flags, streamId, payload))
    } catch (e) {
      if (e instanceof H2ConnectionError) {
        this.fail(e)
        return
      }
      // not the client's fault: end this connection, not the process (a throw here would be uncaught)
      this.options.onInternalError?.(e)
      this.fail(new H2ConnectionError(ErrorCode.INTERNAL_ERROR, "internal error"))
    }
  }

  /** Checks the client preface; returns the bytes after it. */
  private readPreface(chunk: Buffer): Buffer {
    const n = Math.min(chunk.length, CLIENT_PREFACE.length - this.prefaceBytesSeen)
    for (let i = 0; i < n; i++) {
      if (chunk[i] !== CLIENT_PREFACE[this.prefaceBytesSeen + i]) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "bad client preface")
    }
    this.prefaceBytesSeen += n
    return chunk.subarray(n)
  }

  private onFrame(type: number, flags: number, streamId: number, payload: Buffer): void {
    if (!this.settingsSeen) {
      if (type !== FrameType.SETTINGS || (flags & Flag.ACK) !== 0) throw protocolError("the first frame is not SETTINGS")
      this.settingsSeen = true
    }
    if (this.headerBlock !== undefined && (type !== FrameType.CONTINUATION || streamId !== this.headerBlock.streamId)) {
      throw protocolError("expected CONTINUATION")
    }
    switch (type) {
      case FrameType.DATA:
        return this.onData(flags, streamId, payload)
      case FrameType.HEADERS:
        return this.onHeaders(flags, streamId, payload)
      case FrameType.PRIORITY:
        if (streamId === 0) throw protocolError("PRIORITY on stream 0")
        if (payload.length !== 5) this.resetStream(streamId, ErrorCode.FRAME_SIZE_ERROR)
        return
      case FrameType.RST_STREAM:
        return this.onRstStream(streamId, payload)
      case FrameType.SETTINGS:
        this.checkFlood()
        return this.onSettings(flags, streamId, payload)
      case FrameType.PUSH_PROMISE:
        throw protocolError("PUSH_PROMISE from a client")
      case FrameType.PING:
        this.checkFlood()
        return this.onPing(flags, streamId, payload)
      case FrameType.GOAWAY:
        if (streamId !== 0) throw protocolError("GOAWAY on a stream")
        return
      case FrameType.WINDOW_UPDATE:
        return this.onWindowUpdate(streamId, payload)
      case FrameType.CONTINUATION:
        return this.onContinuation(flags, streamId, payload)
      default:
        return // §4.1: unknown frame types are ignored
    }
  }

  private onData(flags: number, streamId: number, payload: Buffer): void {
    if (streamId === 0) throw protocolError("DATA on stream 0")
    if (streamId > this.lastStreamId) throw protocolError(`DATA on idle stream ${streamId}`)
    // flow control counts the whole payload, padding included (§6.9.1)
    if (payload.length > this.receiveWindow) throw new H2ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "DATA beyond the connection window")
    this.receiveWindow -= payload.length
    if (this.receiveWindow < this.receiveWindowBytes / 2) {
      this.output.push(windowUpdateFrame(0, this.receiveWindowBytes - this.receiveWindow))
      this.receiveWindow = this.receiveWindowBytes
    }
    const body = unpad(flags, payload)
    const stream = this.streams.get(streamId)
    if (stream === undefined) return // closed (perhaps reset by us while this was in flight): ignored
    if (stream.remoteEnded) {
      this.resetStream(streamId, ErrorCode.STREAM_CLOSED)
      return
    }
    if (payload.length > stream.receiveWindow) {
      this.resetStream(streamId, ErrorCode.FLOW_CONTROL_ERROR)
      return
    }
    stream.receiveWindow -= payload.length
    const endStream = (flags & Flag.END_STREAM) !== 0
    if (!endStream && stream.receiveWindow < this.receiveWindowBytes / 2) {
      this.output.push(windowUpdateFrame(streamId, this.receiveWindowBytes - stream.receiveWindow))
      stream.receiveWindow = this.receiveWindowBytes
    }
    if (body.length > 0) stream.listener.onData(body)
    if (endStream && !stream.destroyed) this.endedRemote(stream)
  }

  private onHeaders(flags: number, streamId: number, payload: Buffer): void {
    if (streamId === 0) throw protocolError("HEADERS on stream 0")
    let fragment = unpad(flags, payload)
    if ((flags & Flag.PRIORITY) !== 0) {
      if (fragment.length < 5) throw new H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "HEADERS too short for its priority")
      fragment = fragment.subarray(5)
    }
    const endStream = (flags & Flag.END_STREAM) !== 0
    if ((flags & Flag.END_HEADERS) !== 0) {
      this.onHeaderBlock(streamId, fragment, endStream)
      return
    }
    this.headerBlock = { streamId, endStream, parts: [fragment], bytes: fragment.length }
  }

  private onContinuation(flags: number, streamId: number, payload: Buffer): void {
    const block = this.headerBlock
    if (block === undefined) throw protocolError("CONTINUATION without HEADERS")
    block.parts.push(payload)
    block.bytes += payload.length
    if (block.bytes > HEADER_BLOCK_BYTES_MAX) throw new H2ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, "header block too large")
    if ((flags & Flag.END_HEADERS) === 0) return
    this.headerBlock = undefined
    this.onHeaderBlock(streamId, Buffer.concat(block.parts, block.bytes), block.endStream)
  }

  private onHeaderBlock(streamId: number, block: Buffer, endStream: boolean): void {
    // decoded even when the stream is refused: the HPACK table must stay in step
    const headers = this.decoder.decodeMap(block)
    const existing = this.streams.get(streamId)
    if (existing !== undefined) {
      // trailers: they must end the stream (§8.1)
      if (existing.remoteEnded) this.resetStream(streamId, ErrorCode.STREAM_CLOSED)
      else if (!endStream) this.resetStream(streamId, ErrorCode.PROTOCOL_ERROR)
      else this.endedRemote(existing)
      return
    }
    if (streamId % 2 === 0) throw protocolError(`client stream id ${streamId} is even`)
    if (streamId <= this.lastStreamId) throw protocolError(`stream id ${streamId} is not above ${this.lastStreamId}`)
    this.lastStreamId = streamId
    if (this.draining) return // §6.8: streams after GOAWAY are ignored
    if (this.streams.size >= this.options.maxConcurrentStreams) {
      this.output.push(rstStreamFrame(streamId, ErrorCode.REFUSED_STREAM))
      return
    }
    if (!isValidRequest(headers)) {
      this.output.push(rstStreamFrame(streamId, ErrorCode.PROTOCOL_ERROR))
      return
    }
    const stream = new H2Stream(this, streamId, headers, this.peerInitialWindowBytes, this.receiveWindowBytes)
    this.streams.set(streamId, stream)
    this.options.onStream(stream)
    if (endStream && !stream.destroyed) this.endedRemote(stream)
  }

  private checkFlood(): void {
    if (this.output.backlogBytes > (this.options.floodBacklogBytes ?? FLOOD_BACKLOG_BYTES)) {
      throw new H2ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, "flood of control frames while not reading")
    }
  }

  private onRstStream(streamId: number, payload: Buffer): void {
    if (streamId === 0) throw protocolError("RST_STREAM on stream 0")
    if (payload.length !== 4) throw new H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "RST_STREAM payload is not 4 bytes")
    if (streamId > this.lastStreamId) throw protocolError(`RST_STREAM on idle stream ${streamId}`)
    const stream = this.streams.get(streamId)
    if (stream === undefined) return
    this.countReset()
    this.closeStream(stream)
  }

  private resetWindowStart = 0
  private resetsInWindow = 0

  private countReset(): void {
    const now = performance.now()
    if (now - this.resetWindowStart >= 1000) {
      this.resetWindowStart = now
      this.resetsInWindow = 0
    }
    if (++this.resetsInWindow > (this.options.resetFloodPerSecond ?? RESET_FLOOD_PER_SECOND)) {
      throw new H2ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, "too many streams reset by the client")
    }
  }

  private onSettings(flags: number, streamId: number, payload: Buffer): void {
    if (streamId !== 0) throw protocolError("SETTINGS on a stream")
    if ((flags & Flag.ACK) !== 0) {
      if (payload.length !== 0) throw new H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS ACK with a payload")
      return
    }
    if (payload.length % 6 !== 0) throw new H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS payload is not a multiple of 6")
    for (let offset = 0; offset < payload.length; offset += 6) {
      const id = payload.readUInt16BE(offset)
      const value = payload.readUInt32BE(offset + 2)
      switch (id) {
        case Setting.ENABLE_PUSH:
          if (value > 1) throw protocolError("ENABLE_PUSH is not 0 or 1")
          break
        case Setting.INITIAL_WINDOW_SIZE:
          if (value > MAX_WINDOW_BYTES) throw new H2ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "INITIAL_WINDOW_SIZE above 2^31-1")
          this.setPeerInitialWindow(value)
          break
        case Setting.MAX_FRAME_SIZE:
          if (value < DEFAULT_MAX_FRAME_BYTES || value > MAX_FRAME_BYTES_LIMIT) throw protocolError(`MAX_FRAME_SIZE ${value} out of range`)
          this.peerMaxFrameBytes = value
          break
        default:
          // HEADER_TABLE_SIZE: our encoder never uses the dynamic table; the others do not bind a server
          break
      }
    }
    this.output.push(SETTINGS_ACK)
  }

  /** §6.9.2: a new INITIAL_WINDOW_SIZE moves every open stream's window by the difference. */
  private setPeerInitialWindow(value: number): void {
    const delta = value - this.peerInitialWindowBytes
    this.peerInitialWindowBytes = value
    for (const stream of this.streams.values()) {
      stream.sendWindow += delta
      if (stream.sendWindow > MAX_WINDOW_BYTES) throw new H2ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "stream window above 2^31-1")
    }
    if (delta > 0) this.pumpBlocked()
  }

  private onPing(flags: number, streamId: number, payload: Buffer): void {
    if (streamId !== 0) throw protocolError("PING on a stream")
    if (payload.length !== 8) throw new H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "PING payload is not 8 bytes")
    if ((flags & Flag.ACK) !== 0) return
    const ack = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 8)
    writeFrameHeader(ack, 0, { length: 8, type: FrameType.PING, flags: Flag.ACK, streamId: 0 })
    ack.set(payload, FRAME_HEADER_BYTES)
    this.output.push(ack)
    this.options.onPing?.()
  }

  private onWindowUpdate(streamId: number, payload: Buffer): void {
    if (payload.length !== 4) throw new H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "WINDOW_UPDATE payload is not 4 bytes")
    const increment = payload.readUInt32BE(0) & 0x7fffffff
    if (streamId === 0) {
      if (increment === 0) throw protocolError("WINDOW_UPDATE of 0 on the connection")
      this.sendWindow += increment
      if (this.sendWindow > MAX_WINDOW_BYTES) throw new H2ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "connection window above 2^31-1")
      this.pumpBlocked()
      return
    }
    if (streamId > this.lastStreamId) throw protocolError(`WINDOW_UPDATE on idle stream ${streamId}`)
    const stream = this.streams.get(streamId)
    if (stream === undefined) return
    if (increment === 0) {
      this.resetStream(streamId, ErrorCode.PROTOCOL_ERROR)
      return
    }
    stream.sendWindow += increment
    if (stream.sendWindow > MAX_WINDOW_BYTES) {
      this.resetStream(streamId, ErrorCode.FLOW_CONTROL_ERROR)
      return
    }
    if (this.blocked.has(stream)) this.pump(stream)
    this.checkDrain()
  }

  private pumpBlocked(): void {
    for (const stream of [...this.blocked]) {
      if (this.sendWindow <= 0) break
      this.pump(stream)
    }
    this.checkDrain()
  }

  // --- stream lifecycle

  private endedRemote(stream: H2Stream): void {
    stream.remoteEnded = true
    this.endedLocally.delete(stream)
    stream.listener.onEnd()
    if (stream.localEnded && !stream.destroyed) this.closeStream(stream)
  }

  private endedLocal(stream: H2Stream): void {
    stream.localEnded = true
    if (stream.remoteEnded) this.closeStream(stream)
    else this.endedLocally.add(stream)
  }

  /** A stream error (§5.4.2): RST_STREAM with the code, and the stream is closed. */
  private resetStream(streamId: number, code: number): void {
    this.output.push(rstStreamFrame(streamId, code))
    const stream = this.streams.get(streamId)
    if (stream !== undefined) this.closeStream(stream)
  }

  private closeStream(stream: H2Stream): void {
    if (stream.destroyed) return
    stream.destroyed = true
    this.streams.delete(stream.id)
    // Mostly empty: a size check is cheaper than a hash lookup, once per request.
    if (this.blocked.size > 0) this.blocked.delete(stream)
    if (this.drainWaiters.size > 0) this.drainWaiters.delete(stream)
    if (this.endedLocally.size > 0) this.endedLocally.delete(stream)
    stream.pending.length = 0
    stream.pendingBytes = 0
    stream.listener.onClose()
    if (this.draining && this.streams.size === 0) this.endSocket()
  }

  private checkDrain(): void {
    if (this.drainWaiters.size === 0 || this.backlogged) return
    for (const stream of [...this.drainWaiters]) {
      if (stream.pendingBytes >= STREAM_QUEUE_BYTES_MAX) continue
      this.drainWaiters.delete(stream)
      stream.listener.onDrain()
    }
  }

  // --- outbound

  private sendPreface(): void {
    const settings: [number, number][] = [[Setting.INITIAL_WINDOW_SIZE, Math.min(this.options.windowBytes, MAX_WINDOW_BYTES)]]
    if (this.options.maxConcurrentStreams < UNLIMITED_STREAMS) settings.unshift([Setting.MAX_CONCURRENT_STREAMS, this.options.maxConcurrentStreams])
    this.output.push(settingsFrame(settings))
    const extra = this.receiveWindowBytes - DEFAULT_WINDOW_BYTES
    if (extra > 0) this.output.push(windowUpdateFrame(0, extra))
  }

  /** Streams we ended that the client has not: grpc-go's RST_STREAM(NO_ERROR), so that the client stops sending. */
  private resetEndedLocally(): void {
    if (this.endedLocally.size === 0) return
    for (const stream of [...this.endedLocally]) this.resetStream(stream.id, ErrorCode.NO_ERROR)
  }

  private endSocket(): void {
    if (this.closed) return
    this.output.flush()
    this.socket.end()
  }

  /** A connection error: GOAWAY with its code, then the socket ends (and is destroyed if the client lingers). */
  private fail(error: H2ConnectionError): void {
    this.output.push(goawayFrame(this.lastStreamId, error.code, error.message))
    this.draining = true
    this.output.flush()
    this.socket.end()
    setTimeout(() => this.destroy(), ERROR_LINGER_MS).unref()
    this.onSocketClose()
  }

  private onSocketClose(): void {
    if (this.closed) return
    this.closed = true
    this.output.close()
    for (const stream of [...this.streams.values()]) this.closeStream(stream)
    this.options.onClose?.()
  }
}

const EMPTY = new Uint8Array(0)
const SETTINGS_ACK = settingsFrame([])
SETTINGS_ACK[4] = Flag.ACK

/** The payload of a DATA or HEADERS frame without its padding (§6.1). */
function unpad(flags: number, payload: Buffer): Buffer {
  if ((flags & Flag.PADDED) === 0) return payload
  if (payload.length < 1) throw new H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "padded frame without a pad length")
  const padBytes = payload[0]!
  if (padBytes >= payload.length) throw protocolError("padding exceeds the payload")
  return payload.subarray(1, payload.length - padBytes)
}

/** §8.3.1: a request has :method, :scheme and :path (CONNECT aside), and no uppercase names. */
function isValidRequest(headers: HeaderMap): boolean {
  for (const name in headers) if (name !== name.toLowerCase()) return false
  return typeof headers[":method"] === "string" && typeof headers[":path"] === "string" && headers[":path"] !== ""
}

function protocolError(message: string): H2ConnectionError {
  return new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, message)
}
