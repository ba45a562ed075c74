// Bun's node:http2 stream behind the ServerStream interface (the "bun"
// engine): the events become StreamListener calls and trailers go out on
// "wantTrailers".

import type { ServerHttp2Stream } from "node:http2"
import type { TLSSocket } from "node:tls"
import { peerCommonNameOf, type HeaderMap, type OutgoingHeaders, type ServerStream, type StreamListener } from "./server_stream"

const peerNames = new WeakMap<object, string | null>()

export class BunServerStream implements ServerStream {
  private trailers: OutgoingHeaders = {}

  constructor(
    private readonly stream: ServerHttp2Stream,
    readonly headers: HeaderMap,
  ) {
    stream.on("error", () => {})
  }

  get destroyed(): boolean {
    return this.stream.destroyed
  }

  get headersSent(): boolean {
    return this.stream.headersSent
  }

  get peerCommonName(): string | undefined {
    const session = this.stream.session
    if (session === undefined) return undefined
    let name = peerNames.get(session)
    if (name === undefined) {
      name = peerCommonNameOf(session.socket as Partial<TLSSocket> | undefined) ?? null
      peerNames.set(session, name)
    }
    return name ?? undefined
  }

  get remoteAddress(): string | undefined {
    return this.stream.session?.socket?.remoteAddress
  }

  listen(listener: StreamListener): void {
    const stream = this.stream
    stream.on("data", (chunk: Buffer) => listener.onData(chunk))
    stream.on("end", () => listener.onEnd())
    stream.on("close", () => listener.onClose())
    stream.on("drain", () => listener.onDrain())
  }

  respond(headers: OutgoingHeaders, options: { endStream?: boolean; trailers?: boolean }): void {
    const stream = this.stream
    if (stream.destroyed || stream.headersSent) return
    if (options.endStream === true) {
      stream.respond(headers as Record<string, string>, END_STREAM)
      return
    }
    if (options.trailers !== true) {
      stream.respond(headers as Record<string, string>)
      return
    }
    stream.respond(headers as Record<string, string>, WAIT_FOR_TRAILERS)
    stream.once("wantTrailers", () => {
      if (!stream.destroyed) stream.sendTrailers(this.trailers as Record<string, string>)
    })
  }

  write(chunk: Uint8Array): boolean {
    return this.stream.write(chunk)
  }

  end(trailers?: OutgoingHeaders): void {
    if (trailers !== undefined) this.trailers = trailers
    if (!this.stream.destroyed) this.stream.end()
  }
}

const END_STREAM = { endStream: true } as const
const WAIT_FOR_TRAILERS = { waitForTrailers: true } as const
