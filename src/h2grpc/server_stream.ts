// The server side of one HTTP/2 stream as grpc_server.ts and fetch_adapter.ts
// use it, as our HTTP/2 engine provides it (h2/stream.ts): the seam between
// HTTP/2 and what runs on its streams.

import type { TLSSocket } from "node:tls"
import type { HeaderMap } from "./h2/hpack_decoder"
import type { OutgoingHeaders } from "./h2/hpack_encoder"

export type { HeaderMap, OutgoingHeaders }

/** What a stream reports; set once with ServerStream.listen(). */
export interface StreamListener {
  /** Request body bytes (DATA payloads) in order; views valid after the call (never reused). */
  onData(chunk: Buffer): void
  /** The client half-closed: no more data. */
  onEnd(): void
  /** The stream is gone (finished, reset by either side, or its connection closed); called once. */
  onClose(): void
  /** write() returned false earlier and the stream's queue has drained. */
  onDrain(): void
}

export interface ServerStream {
  /** Request headers, pseudo-headers included (:method, :path, :authority ...). */
  readonly headers: HeaderMap
  /** True once the stream is closed or reset: writes are dropped. */
  readonly destroyed: boolean
  readonly headersSent: boolean
  /** The CN of the client's verified TLS certificate (mTLS), else undefined. */
  readonly peerCommonName: string | undefined
  readonly remoteAddress: string | undefined
  listen(listener: StreamListener): void
  /**
   * Sends the response headers. `endStream` ends the response at once
   * (trailers-only); `trailers` announces that end() will carry trailers.
   */
  respond(headers: OutgoingHeaders, options: { endStream?: boolean; trailers?: boolean }): void
  /** Queues body bytes; false when the stream's queue is over its limit (wait for onDrain). */
  write(chunk: Uint8Array): boolean
  /** Ends the response, with trailers when respond() announced them. */
  end(trailers?: OutgoingHeaders): void
}

/** A no-op listener for streams answered without reading them. */
export const ignoringListener: StreamListener = { onData() {}, onEnd() {}, onClose() {}, onDrain() {} }

/** The CN of a TLS socket's verified peer certificate, else undefined. */
export function peerCommonNameOf(socket: Partial<TLSSocket> | undefined): string | undefined {
  if (socket?.getPeerCertificate === undefined || socket.authorized !== true) return undefined
  const cn = socket.getPeerCertificate().subject?.CN
  return typeof cn === "string" && cn !== "" ? cn : undefined
}
