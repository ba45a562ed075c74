// The /v3/* JSON gateway (etcd's grpc-gateway): POST /v3/kv/range with a JSON
// request, answered with the proto3 JSON mapping (src/pb/json: proto field
// names, 64-bit integers as strings, bytes base64). It calls the handlers
// registered on the GrpcServer directly, with a call context built from the
// HTTP request (its headers as the metadata). Streaming RPCs answer
// newline-delimited {"result": ...} objects. /v3beta/* is an alias of /v3/*.
// Errors: {"error": msg, "message": msg, "code": grpc code} with
// grpc-gateway's HTTP status for the code.

import type { Hono } from "hono"
import type { IncomingHttpHeaders } from "node:http2"
import { silentLogger, type Logger } from "../../lib/logger"
import type * as pb from "../../pb"
import { toJson } from "../../pb"
import { statusOfError } from "../grpc/errors"
import { type BidiCall, connectionDrop, GrpcError, type GrpcServer, type RegisteredMethod, GrpcStatus, type GrpcStatusCode } from "../../h2grpc"
import { clampedIntegers, decodeRequest, type JsonNode, NullMessageInList, StreamingBodyDecoder } from "./gateway_json"

interface GatewayMethod {
  readonly gatewayPaths: readonly string[]
  readonly requestType: string
  readonly responseType: string
}

function isGatewayMethod(method: object): method is GatewayMethod {
  return "gatewayPaths" in method && "requestType" in method && "responseType" in method
}

/** runtime.HTTPStatusFromCode of grpc-gateway v1 (etcd 3.4): Canceled 408, FailedPrecondition 412. */
const httpStatusOfCode: readonly number[] = [200, 408, 500, 400, 504, 404, 409, 403, 429, 412, 409, 400, 501, 500, 503, 500, 401]

/** RPCs that tskv serves over gRPC but etcd 3.4's gateway has no path for (its HashKV pattern is /v3/maintenance/hash, which Hash holds). */
const NOT_IN_ETCD_34 = new Set(["/v3/auth/status", "/v3/maintenance/downgrade", "/v3/maintenance/hashkv"])

interface GatewayRoute {
  registered: RegisteredMethod
  method: GatewayMethod
}

export function mountGateway(app: Hono, grpc: GrpcServer, options: { logger?: Logger } = {}): void {
  const logger = options.logger ?? silentLogger
  const routes = new Map<string, GatewayRoute>()
  for (const registered of grpc.registered()) {
    const method = registered.method
    if (!isGatewayMethod(method)) continue
    for (const path of method.gatewayPaths) if (!NOT_IN_ETCD_34.has(path)) routes.set(path, { registered, method })
  }
  const serve = async (path: string, request: Request): Promise<Response> => {
    const route = routes.get(path)
    if (route === undefined) return goError("Not Found", 404)
    const { registered, method } = route
    const context = new GatewayCall(request, method.responseType, logger)
    const messages = new RequestMessages(request, method.requestType)
    if (registered.kind === "bidi_stream") {
      // grpc-gateway decodes the first message before it answers (an error there is the
      // answer: code Unknown); the others are handed on as they arrive, and a later
      // undecodable one ends the client's side of the stream
      if (path === "/v3/watch") messages.watchIds = context.watchIds = new WatchIds()
      let first: unknown
      try {
        first = await messages.next()
      } catch (e) {
        if (e instanceof NullMessageInList) return connectionDrop()
        return errorResponse(GrpcStatus.UNKNOWN, errorText(e))
      }
      void Promise.resolve()
        .then(() => registered.handler(context))
        .then(() => context.deliver(first, messages))
        .catch((e: unknown) => context.end(e))
      return context.response()
    }
    // the first value of the body, decoded once complete (the rest is not read, as
    // json.Decoder does: a websocket's body stays open after its one message)
    let message: unknown
    try {
      message = decodeRequest(method.requestType, await messages.nextNode())
    } catch (e) {
      if (e instanceof NullMessageInList) return connectionDrop()
      return errorResponse(GrpcStatus.INVALID_ARGUMENT, errorText(e))
    }
    if (registered.kind === "server_stream") {
      void Promise.resolve()
        .then(() => registered.handler(message, context))
        .catch((e: unknown) => context.end(e))
      return context.response()
    }
    try {
      const response = await registered.handler(message, context)
      return whole(200, JSON.stringify(toJson(method.responseType, response as object)), { "content-type": "application/json", ...GRPC_METADATA })
    } catch (e) {
      const status = statusOfError(e)
      if (status.unexpected) logger.warn("gateway handler failed", { path, error: status.message })
      // the gRPC call failed: grpc-gateway answers with its trailer metadata as HTTP trailers
      return errorResponse(status.code, status.message, GRPC_TRAILER)
    }
  }
  app.post("/v3/*", (c) => serve(c.req.path, c.req.raw))
  app.post("/v3beta/*", (c) => serve(`/v3/${c.req.path.slice("/v3beta/".length)}`, c.req.raw))
  app.on(["GET", "PUT", "DELETE", "PATCH"], ["/v3/*", "/v3beta/*"], (c) => {
    const path = c.req.path.startsWith("/v3beta/") ? `/v3/${c.req.path.slice("/v3beta/".length)}` : c.req.path
    return routes.has(path) ? goError("Method Not Allowed", 405) : goError("Not Found", 404)
  })
}

/** The header grpc-gateway copies from the gRPC response metadata. */
const GRPC_METADATA = { "grpc-metadata-content-type": "application/grpc" }

/** The messages of a client stream, decoded as the request body arrives. */
class RequestMessages {
  private readonly reader: { read(): Promise<{ done: boolean; value?: Uint8Array }> } | undefined
  private readonly decoder = new StreamingBodyDecoder()
  private readonly text = new TextDecoder()

  constructor(
    request: Request,
    private readonly requestType: string,
  ) {
    this.reader = request.body?.getReader()
    if (this.reader === undefined) this.decoder.end()
  }

  /** The next message; undefined at the end of the body; throws what does not decode. */
  async next(): Promise<unknown> {
    const node = await this.nextNode()
    if (node === undefined) return undefined
    const message = decodeRequest(this.requestType, node)
    this.watchIds?.request(message as pb.WatchRequest, clampedIntegers())
    return message
  }

  /** Watch ids past 2^53 a client chose (the watch stream only). */
  watchIds: WatchIds | undefined

  /** The next JSON value once complete; undefined at the end of the body. */
  async nextNode(): Promise<JsonNode | undefined> {
    for (;;) {
      const node = this.decoder.next()
      if (node !== "more") return node
      const { done, value } = await this.reader!.read()
      if (done) {
        this.decoder.push(this.text.decode())
        this.decoder.end()
      } else {
        this.decoder.push(this.text.decode(value, { stream: true }))
      }
    }
  }
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e)
}

/** Go's http.Error, as grpc-gateway's mux answers a path or method it does not serve. */
function goError(text: string, status: 404 | 405): Response {
  return whole(status, `${text}\n`, { "content-type": "text/plain; charset=utf-8", "x-content-type-options": "nosniff" })
}

/** The trailer grpc-gateway sends after an error answer of a gRPC call (fetch_adapter sends the headers `Trailer` names as trailers). */
const GRPC_TRAILER = { trailer: "Grpc-Trailer-Content-Type", "grpc-trailer-content-type": "application/grpc" }

function errorResponse(code: GrpcStatusCode, message: string, trailer?: typeof GRPC_TRAILER): Response {
  const body = JSON.stringify({ error: message, message, code })
  const headers = { "content-type": "application/json" }
  if (trailer !== undefined) return new Response(body, { status: httpStatusOfCode[code] ?? 500, headers: { ...headers, ...trailer } })
  return whole(httpStatusOfCode[code] ?? 500, body, headers)
}

/** An answer written whole: Go's server gives it a Content-Length (not chunked). */
function whole(status: number, body: string, headers: Record<string, string>): Response {
  return new Response(body, { status, headers: { ...headers, "content-length": String(Buffer.byteLength(body)) } })
}

/** A call context over an HTTP request; for streams, writes become {"result": ...} lines. */
class GatewayCall implements BidiCall<unknown, unknown> {
  readonly path: string
  readonly metadata: IncomingHttpHeaders
  readonly peerCommonName = undefined
  readonly remoteAddress = undefined
  readonly deadline = undefined
  cancelled = false
  ended = false
  private readonly encoder = new TextEncoder()
  private controller: ReadableStreamDefaultController<Uint8Array> | undefined
  private readonly queued: Uint8Array[] = []
  private readonly cancelListeners: (() => void)[] = []
  private messageListener: ((message: unknown) => void) | undefined
  private halfCloseListener: (() => void) | undefined

  constructor(
    request: Request,
    private readonly responseType: string,
    private readonly logger: Logger,
  ) {
    this.path = new URL(request.url).pathname
    const metadata: IncomingHttpHeaders = {}
    request.headers.forEach((value, name) => {
      metadata[name] = value
    })
    // Authorization reaches the call as it came (etcd 3.4 strips no "Bearer ")
    this.metadata = metadata
    // the client went or shut its writing side: the call's context is cancelled, and
    // grpc-gateway writes that error as the stream's last line (if the client still reads)
    request.signal.addEventListener(
      "abort",
      () => {
        this.end(new GrpcError(GrpcStatus.CANCELLED, "context canceled"))
        this.cancel()
      },
      { once: true },
    )
  }

  header(name: string): string | undefined {
    const value = this.metadata[name]
    return Array.isArray(value) ? value[0] : value
  }

  onCancel(listener: () => void): void {
    if (this.cancelled) queueMicrotask(listener)
    else this.cancelListeners.push(listener)
  }

  onMessage(listener: (message: unknown) => void): void {
    this.messageListener = listener
  }

  onHalfClose(listener: () => void): void {
    this.halfCloseListener = listener
  }

  onDrain(_listener: () => void): void {
    // the response stream is pulled by the HTTP side; writes never report full
  }

  /** Hands the client's messages to the handler as they arrive, then half-closes (also after one that does not decode). */
  async deliver(first: unknown, rest: RequestMessages): Promise<void> {
    let message = first
    while (message !== undefined && !this.ended) {
      this.messageListener?.(message)
      try {
        message = await rest.next()
      } catch {
        message = undefined
      }
    }
    if (!this.ended) this.halfCloseListener?.()
  }

  write(message: unknown): boolean {
    if (this.ended || this.cancelled) return false
    const result = toJson(this.responseType, message as object)
    this.watchIds?.response(message as pb.WatchResponse, result)
    this.push(`${JSON.stringify({ result })}\n`)
    return true
  }

  watchIds: WatchIds | undefined

  end(error?: unknown): void {
    if (this.ended) return
    this.ended = true
    if (error !== undefined) {
      const status = statusOfError(error)
      if (status.unexpected) this.logger.warn("gateway stream failed", { path: this.path, error: status.message })
      const httpCode = httpStatusOfCode[status.code] ?? 500
      // grpc-gateway writes the error without the newline it puts after each message
      const line = `${JSON.stringify({ error: { grpc_code: status.code, http_code: httpCode, message: status.message, http_status: httpStatusText(httpCode) } })}`
      if (this.controller !== undefined) this.controller.enqueue(this.encoder.encode(line))
      else this.queued.push(this.encoder.encode(line))
      // an error before the first message: the answer's status is the error's, without the gRPC headers
      this.answer(httpCode, {})
    }
    // a call that ends before its first message sent its status without headers
    this.answer(200, {})
    this.close()
  }

  private closed = false

  private close(): void {
    if (this.closed || this.controller === undefined) return
    this.closed = true
    this.controller.close()
  }

  private settle: ((response: Response) => void) | undefined

  /**
   * The answer, once the call sends its first message or ends: grpc-gateway waits for
   * the gRPC response headers, which come with the first message (a watch that never
   * answers never gets its HTTP headers either), and then carry the call's headers.
   */
  response(): Promise<Response> {
    const answered = new Promise<Response>((resolve) => (this.settle = resolve))
    if (this.queued.length > 0) this.answer(200, GRPC_METADATA)
    else if (this.ended) this.answer(200, {})
    return answered
  }

  private answer(status: number, headers: Record<string, string>): void {
    const settle = this.settle
    if (settle === undefined) return
    this.settle = undefined
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.controller = controller
        for (const chunk of this.queued) controller.enqueue(chunk)
        this.queued.length = 0
      },
      cancel: () => this.cancel(),
    })
    if (this.ended) this.close()
    settle(new Response(body, { status, headers: { "content-type": "application/json", ...headers } }))
  }

  private push(line: string): void {
    const bytes = this.encoder.encode(line)
    if (this.controller !== undefined) this.controller.enqueue(bytes)
    else this.queued.push(bytes)
    this.answer(200, GRPC_METADATA)
  }

  private cancel(): void {
    if (this.cancelled) return
    this.cancelled = true
    this.ended = true
    // the client is gone: whatever is answered goes nowhere
    this.answer(200, {})
    for (const listener of this.cancelListeners.splice(0)) listener()
  }
}

/**
 * A watch id past 2^53 (int64, exact in etcd) is a number in tskv's watch stream:
 * each such id the client sends gets a safe stand-in of its own, and the answers
 * carry the client's id again.
 */
class WatchIds {
  private readonly sent = new Map<number, bigint>()
  private readonly standIns = new Map<bigint, number>()

  request(message: pb.WatchRequest, clamped: readonly { field: string; value: bigint }[]): void {
    const original = clamped.find((c) => c.field === "watch_id")?.value
    if (original === undefined || original < 0n) return
    let standIn = this.standIns.get(original)
    if (standIn === undefined) {
      standIn = Number.MAX_SAFE_INTEGER - this.standIns.size
      this.standIns.set(original, standIn)
      this.sent.set(standIn, original)
    }
    if (message.createRequest) message.createRequest.watchId = standIn
    else if (message.cancelRequest) message.cancelRequest.watchId = standIn
  }

  response(message: pb.WatchResponse, json: Record<string, unknown>): void {
    const original = this.sent.get(message.watchId)
    if (original !== undefined) json.watch_id = original.toString()
  }
}

function httpStatusText(status: number): string {
  const texts: Record<number, string> = { 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 408: "Request Timeout", 409: "Conflict", 412: "Precondition Failed", 429: "Too Many Requests", 499: "Client Closed Request", 500: "Internal Server Error", 501: "Not Implemented", 503: "Service Unavailable", 504: "Gateway Timeout" }
  return texts[status] ?? ""
}
