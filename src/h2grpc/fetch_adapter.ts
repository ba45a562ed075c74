// Serves a fetch-style handler (hono's app.fetch) from node:http requests and
// from non-gRPC HTTP/2 streams, so /health, /metrics and the JSON gateway
// share the client port with gRPC.

import type { IncomingMessage, ServerResponse } from "node:http"
import type { IncomingHttpHeaders } from "node:http2"
import type { Logger } from "../lib/logger"
import type { HeaderMap, ServerStream } from "./server_stream"

export type FetchHandler = (request: Request) => Response | Promise<Response>

/** Request bodies above this are refused with 413 (the gateway's requests are small). */
const BODY_BYTES_MAX = 64 * 1024 * 1024

const dropped = new WeakSet<Response>()

/**
 * An answer that is none: the HTTP/1 connection closes without a response, as Go's
 * server does after a handler panicked (over HTTP/2: a 500 without a body).
 */
export function connectionDrop(): Response {
  const response = new Response(null, { status: 500 })
  dropped.add(response)
  return response
}

export function serveHttp1(options: { fetch: FetchHandler; req: IncomingMessage; res: ServerResponse; scheme: string; logger: Logger }): void {
  const { req, res } = options
  const url = `${options.scheme}://${req.headers.host ?? "localhost"}${req.url ?? "/"}`
  const abort = new AbortController()
  // the handler's signal: also aborted when the client shuts its writing side (Go cancels the
  // request's context), while the answer keeps flowing until the handler ends it
  const cancel = new AbortController()
  const body = hasBody(req.method) ? new StreamedBody() : undefined
  if (body !== undefined) {
    req.on("data", (chunk: Buffer) => body.push(chunk))
    req.on("end", () => body.end())
  }
  const halfClosed = (): void => cancel.abort()
  req.socket.once("end", halfClosed)
  res.once("finish", () => req.socket.off("end", halfClosed))
  res.on("close", () => {
    req.socket.off("end", halfClosed)
    abort.abort()
    cancel.abort()
    body?.end()
  })
  void (async () => {
    try {
      const request = new Request(url, { method: req.method ?? "GET", headers: toHeaders(req.headers), body: body?.stream ?? null, signal: cancel.signal })
      const response = await options.fetch(request)
      if (body?.tooLarge) throw new BodyTooLarge("request body too large")
      if (dropped.has(response)) {
        req.socket.destroy()
        return
      }
      const head = headersObject(response.headers)
      const trailers = takeTrailers(head)
      if (body !== undefined && !body.done) {
        // Go's HTTP/1 server (etcd 3.4's gateway): the answer waits until the client has sent
        // its whole body, unless it asked for 100-continue, then it flows and the connection closes after
        if (String(req.headers.expect).toLowerCase() === "100-continue") head.connection = "close"
        else await body.ended
      }
      goConnectionHeader(req, res)
      res.writeHead(response.status, head)
      // Long polls (v2 watches) get their headers before the first event, as Go flushes them.
      res.flushHeaders()
      await pipeBody(response, (chunk) => res.write(chunk), () => new Promise((resolve) => res.once("drain", resolve)), abort.signal)
      if (trailers !== undefined) res.addTrailers(trailers)
      res.end()
    } catch (e) {
      fail(options.logger, e, () => {
        if (!res.headersSent) res.writeHead(e instanceof BodyTooLarge ? 413 : 500, { "content-type": "text/plain" })
        res.end()
      })
    }
  })()
}

/**
 * Go's HTTP/1 server writes a Connection header only to end a connection (1.1 with
 * `Connection: close`) or to keep a 1.0 one (`Connection: keep-alive`), never
 * node's `Keep-Alive: timeout=5`.
 */
function goConnectionHeader(req: IncomingMessage, res: ServerResponse): void {
  const tokens = String(req.headers.connection ?? "").toLowerCase()
  if (req.httpVersion === "1.0") {
    if (/\bkeep-alive\b/.test(tokens)) res.setHeader("connection", "keep-alive")
    else res.removeHeader("connection")
  } else if (!/\bclose\b/.test(tokens)) {
    res.removeHeader("connection")
  }
}

export function serveHttp2(options: { fetch: FetchHandler; stream: ServerStream; scheme: string; logger: Logger }): void {
  const { stream } = options
  const headers = stream.headers
  const method = firstValue(headers[":method"]) ?? "GET"
  const authority = firstValue(headers[":authority"]) ?? firstValue(headers.host) ?? "localhost"
  const url = `${options.scheme}://${authority}${firstValue(headers[":path"]) ?? "/"}`
  const abort = new AbortController()
  const body = hasBody(method) ? new StreamedBody() : undefined
  let drained: (() => void) | undefined
  stream.listen({
    onData: (chunk) => body?.push(chunk),
    onEnd: () => body?.end(),
    onClose: () => {
      abort.abort()
      body?.end()
      drained?.()
    },
    onDrain: () => drained?.(),
  })
  void (async () => {
    try {
      const plain: HeaderMap = {}
      for (const [name, value] of Object.entries(headers)) if (!name.startsWith(":")) plain[name] = value
      // HTTP/2 is full duplex: the handler reads the body as it arrives while it answers
      const request = new Request(url, { method, headers: toHeaders(plain), body: body?.stream ?? null, signal: abort.signal })
      const response = await options.fetch(request)
      if (body?.tooLarge) throw new BodyTooLarge("request body too large")
      if (stream.destroyed) return
      const out: Record<string, string | number> = { ":status": response.status }
      const head = headersObject(response.headers)
      const trailers = takeTrailers(head)
      for (const [name, value] of Object.entries(head)) {
        if (name !== "connection" && name !== "transfer-encoding" && name !== "keep-alive") out[name] = value
      }
      stream.respond(out, { trailers: trailers !== undefined })
      const waitForDrain = (): Promise<void> =>
        new Promise((resolve) => {
          drained = () => {
            drained = undefined
            resolve()
          }
        })
      await pipeBody(response, (chunk) => stream.write(chunk), waitForDrain, abort.signal)
      stream.end(trailers)
    } catch (e) {
      fail(options.logger, e, () => {
        if (stream.destroyed) return
        if (!stream.headersSent) stream.respond({ ":status": e instanceof BodyTooLarge ? 413 : 500 }, {})
        stream.end()
      })
    }
  })()
}

/**
 * A request body handed to the fetch handler as a stream while it arrives (read eagerly, so
 * `ended` settles even when the handler reads nothing); past BODY_BYTES_MAX the stream errors
 * and `tooLarge` is set (answered 413).
 */
class StreamedBody {
  readonly stream: ReadableStream<Uint8Array>
  readonly ended: Promise<void>
  done = false
  tooLarge = false
  private controller: ReadableStreamDefaultController<Uint8Array> | undefined
  private bytes = 0
  private settle: (() => void) | undefined

  constructor() {
    this.stream = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.controller = controller
      },
    })
    this.ended = new Promise<void>((resolve) => {
      this.settle = resolve
    })
  }

  push(chunk: Buffer): void {
    if (this.done) return
    this.bytes += chunk.length
    if (this.bytes > BODY_BYTES_MAX) {
      this.tooLarge = true
      this.finish(new BodyTooLarge("request body too large"))
      return
    }
    try {
      this.controller?.enqueue(chunk)
    } catch {
      // the handler cancelled the body
    }
  }

  end(): void {
    this.finish()
  }

  private finish(error?: Error): void {
    if (this.done) return
    this.done = true
    try {
      if (error === undefined) this.controller?.close()
      else this.controller?.error(error)
    } catch {
      // already cancelled
    }
    this.settle?.()
  }
}

function firstValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}

class BodyTooLarge extends Error {}

function hasBody(method: string | undefined): boolean {
  return method !== undefined && method !== "GET" && method !== "HEAD"
}

async function pipeBody(response: Response, write: (chunk: Uint8Array) => boolean, drained: () => Promise<unknown>, signal: AbortSignal): Promise<void> {
  if (response.body === null) return
  const reader = response.body.getReader()
  const onAbort = (): void => void reader.cancel().catch(() => {})
  signal.addEventListener("abort", onAbort, { once: true })
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done || signal.aborted) return
      if (!write(value)) await drained()
    }
  } finally {
    signal.removeEventListener("abort", onAbort)
  }
}

function toHeaders(source: IncomingHttpHeaders | HeaderMap): Headers {
  const headers = new Headers()
  for (const [name, value] of Object.entries(source)) {
    if (value === undefined) continue
    if (Array.isArray(value)) for (const v of value) headers.append(name, v)
    else headers.append(name, String(value))
  }
  return headers
}

/**
 * A fetch Response cannot carry trailers: the headers its `Trailer` header names are sent
 * as trailers after the body instead (grpc-gateway's Grpc-Trailer-* on error answers).
 */
function takeTrailers(head: Record<string, string>): Record<string, string> | undefined {
  if (head.trailer === undefined) return undefined
  const trailers: Record<string, string> = {}
  for (const name of head.trailer.split(",").map((n) => n.trim().toLowerCase())) {
    if (head[name] === undefined) continue
    trailers[name] = head[name]
    delete head[name]
  }
  delete head["content-length"]
  return trailers
}

function headersObject(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {}
  headers.forEach((value, name) => {
    out[name] = value
  })
  return out
}

function fail(logger: Logger, error: unknown, respond: () => void): void {
  if (!(error instanceof BodyTooLarge) && !(error instanceof Error && error.name === "AbortError")) {
    logger.warn("http handler failed", { error: error instanceof Error ? error.message : String(error) })
  }
  try {
    respond()
  } catch {
    // the connection is gone
  }
}
