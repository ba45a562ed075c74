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

export function serveHttp1(options: { fetch: FetchHandler; req: IncomingMessage; res: ServerResponse; scheme: string; logger: Logger }): void {
  const { req, res } = options
  const url = `${options.scheme}://${req.headers.host ?? "localhost"}${req.url ?? "/"}`
  const abort = new AbortController()
  res.on("close", () => abort.abort())
  void (async () => {
    try {
      const body = hasBody(req.method) ? await readBody(req) : undefined
      const request = new Request(url, { method: req.method ?? "GET", headers: toHeaders(req.headers), body: body ?? null, signal: abort.signal })
      const response = await options.fetch(request)
      res.writeHead(response.status, headersObject(response.headers))
      // Long polls (v2 watches) get their headers before the first event, as Go flushes them.
      res.flushHeaders()
      await pipeBody(response, (chunk) => res.write(chunk), () => new Promise((resolve) => res.once("drain", resolve)), abort.signal)
      res.end()
    } catch (e) {
      fail(options.logger, e, () => {
        if (!res.headersSent) res.writeHead(e instanceof BodyTooLarge ? 413 : 500, { "content-type": "text/plain" })
        res.end()
      })
    }
  })()
}

export function serveHttp2(options: { fetch: FetchHandler; stream: ServerStream; scheme: string; logger: Logger }): void {
  const { stream } = options
  const headers = stream.headers
  const method = firstValue(headers[":method"]) ?? "GET"
  const authority = firstValue(headers[":authority"]) ?? firstValue(headers.host) ?? "localhost"
  const url = `${options.scheme}://${authority}${firstValue(headers[":path"]) ?? "/"}`
  const abort = new AbortController()
  const body = new BodyCollector()
  let drained: (() => void) | undefined
  stream.listen({
    onData: (chunk) => body.push(chunk),
    onEnd: () => body.end(),
    onClose: () => {
      abort.abort()
      body.end()
      drained?.()
    },
    onDrain: () => drained?.(),
  })
  void (async () => {
    try {
      const bytes = hasBody(method) ? await body.done : undefined
      const plain: HeaderMap = {}
      for (const [name, value] of Object.entries(headers)) if (!name.startsWith(":")) plain[name] = value
      const request = new Request(url, { method, headers: toHeaders(plain), body: bytes ?? null, signal: abort.signal })
      const response = await options.fetch(request)
      if (stream.destroyed) return
      const out: Record<string, string | number> = { ":status": response.status }
      response.headers.forEach((value, name) => {
        if (name !== "connection" && name !== "transfer-encoding" && name !== "keep-alive") out[name] = value
      })
      stream.respond(out, {})
      const waitForDrain = (): Promise<void> =>
        new Promise((resolve) => {
          drained = () => {
            drained = undefined
            resolve()
          }
        })
      await pipeBody(response, (chunk) => stream.write(chunk), waitForDrain, abort.signal)
      stream.end()
    } catch (e) {
      fail(options.logger, e, () => {
        if (stream.destroyed) return
        if (!stream.headersSent) stream.respond({ ":status": e instanceof BodyTooLarge ? 413 : 500 }, {})
        stream.end()
      })
    }
  })()
}

/** Collects a request body from stream callbacks; `done` rejects once it passes BODY_BYTES_MAX. */
class BodyCollector {
  readonly done: Promise<Buffer>
  private readonly chunks: Buffer[] = []
  private bytes = 0
  private settle: ((body: Buffer) => void) | undefined
  private refuse: ((error: Error) => void) | undefined

  constructor() {
    this.done = new Promise<Buffer>((resolve, reject) => {
      this.settle = resolve
      this.refuse = reject
    })
    this.done.catch(() => {}) // GET and HEAD never await it
  }

  push(chunk: Buffer): void {
    if (this.settle === undefined) return
    this.bytes += chunk.length
    if (this.bytes > BODY_BYTES_MAX) {
      this.refuse?.(new BodyTooLarge("request body too large"))
      this.settle = undefined
      return
    }
    this.chunks.push(chunk)
  }

  end(): void {
    this.settle?.(Buffer.concat(this.chunks, this.bytes))
    this.settle = undefined
  }
}

function firstValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}

class BodyTooLarge extends Error {}

function hasBody(method: string | undefined): boolean {
  return method !== undefined && method !== "GET" && method !== "HEAD"
}

async function readBody(source: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = []
  let total = 0
  for await (const chunk of source) {
    total += chunk.length
    if (total > BODY_BYTES_MAX) throw new BodyTooLarge("request body too large")
    chunks.push(chunk)
  }
  return Buffer.concat(chunks)
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
