// One server stream of our HTTP/2 engine (RFC 9113 §5.1): the ServerStream
// that grpc_server.ts and fetch_adapter.ts use, with the stream's flow-control
// windows and the body bytes waiting for them. Frames are made by its
// connection (connection.ts); listeners are plain callbacks, not events.

import { ignoringListener, type HeaderMap, type OutgoingHeaders, type ServerStream, type StreamListener } from "../server_stream"

/** write() asks the caller to wait for onDrain once this much is queued behind the stream's window. */
export const STREAM_QUEUE_BYTES_MAX = 64 * 1024

/** What a stream needs from its connection. */
export interface StreamOwner {
  readonly peerCommonName: string | undefined
  readonly remoteAddress: string | undefined
  /** The socket's queue is over its limit: writers should wait. */
  readonly backlogged: boolean
  sendHeaders(stream: H2Stream, headers: OutgoingHeaders, endStream: boolean): void
  /** Sends the stream's queued body (and its end) as far as the windows allow. */
  pump(stream: H2Stream): void
  waitForDrain(stream: H2Stream): void
}

export class H2Stream implements ServerStream {
  headersSent = false
  destroyed = false
  /** The client sent END_STREAM. */
  remoteEnded = false
  /** We sent END_STREAM. */
  localEnded = false
  listener: StreamListener = ignoringListener
  /** Body bytes waiting for flow-control window, oldest first. */
  readonly pending: Uint8Array[] = []
  pendingBytes = 0
  /** end() was called: after the pending body, send these trailers (or an empty DATA with END_STREAM). */
  endRequested = false
  trailers: OutgoingHeaders | undefined

  constructor(
    private readonly owner: StreamOwner,
    readonly id: number,
    readonly headers: HeaderMap,
    /** Bytes we may still send (the peer's window for this stream). */
    public sendWindow: number,
    /** Bytes the peer may still send before we grant more. */
    public receiveWindow: number,
  ) {}

  get peerCommonName(): string | undefined {
    return this.owner.peerCommonName
  }

  get remoteAddress(): string | undefined {
    return this.owner.remoteAddress
  }

  listen(listener: StreamListener): void {
    this.listener = listener
  }

  respond(headers: OutgoingHeaders, options: { endStream?: boolean; trailers?: boolean }): void {
    if (this.destroyed || this.headersSent) return
    this.headersSent = true
    this.owner.sendHeaders(this, headers, options.endStream === true)
  }

  write(chunk: Uint8Array): boolean {
    if (this.destroyed || this.endRequested) return false
    if (chunk.length > 0) {
      this.pending.push(chunk)
      this.pendingBytes += chunk.length
      this.owner.pump(this)
    }
    if (this.pendingBytes < STREAM_QUEUE_BYTES_MAX && !this.owner.backlogged) return true
    this.owner.waitForDrain(this)
    return false
  }

  end(trailers?: OutgoingHeaders): void {
    if (this.destroyed || this.endRequested || this.localEnded) return
    this.endRequested = true
    this.trailers = trailers
    this.owner.pump(this)
  }
}
