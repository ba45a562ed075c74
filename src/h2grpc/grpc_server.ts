// Our gRPC server on HTTP/2 streams (gRPC over HTTP/2: PROTOCOL-HTTP2.md).
// Listeners (listener.ts) own sockets and HTTP/2 connections and hand every
// stream whose content-type is application/grpc to handleStream(), as a
// ServerStream (server_stream.ts). Services register method descriptors with
// unary, server-streaming or bidi handlers. Handler errors become statuses
// through GrpcServerOptions.statusOf (etcd's mapping: src/api/grpc/errors.ts).

import { silentLogger, type Logger } from "../lib/logger"
import { CounterChild, DEFAULT_BUCKETS, Registry, type Counter, type Histogram, type HistogramChild } from "../lib/metrics"
import { decompressorFor, encodeGrpcMessage, frameMessage, MessageReader, messagePrefix, parseGrpcTimeoutMs } from "./framing"
import { ignoringListener, type HeaderMap, type ServerStream, type StreamListener } from "./server_stream"
import { GrpcError, GrpcStatus, grpcCodeNames, statusOfGrpcError, type GrpcStatusCode, type StatusOf } from "./status"

/**
 * How one RPC is named and (de)serialised. src/pb's PbMethod (KVService.Range
 * ...) fits as is: MethodDescriptor<RangeRequest, RangeResponseInit>.
 */
export interface MethodDescriptor<Req, Res> {
  /** "/etcdserverpb.KV/Range" */
  readonly path: string
  readonly requestStream: boolean
  readonly responseStream: boolean
  readonly requestDeserialize: (bytes: Uint8Array) => Req
  readonly responseSerialize: (message: Res) => Uint8Array
}

/** What every handler sees about its call. */
export interface CallContext {
  readonly path: string
  /** Request headers, names lowercase (token, hasleader, client-api-version, ...). */
  readonly metadata: HeaderMap
  /** One metadata value (the first, when repeated). */
  header(name: string): string | undefined
  /** The CN of the client's verified certificate (mTLS), else undefined. */
  readonly peerCommonName: string | undefined
  readonly remoteAddress: string | undefined
  /** performance.now() at which the client gives up (grpc-timeout), else undefined. */
  readonly deadline: number | undefined
  /** True once the client cancelled, the deadline passed, or the server shut down. */
  readonly cancelled: boolean
  onCancel(listener: () => void): void
  /** A unary call's request message as received (decompressed), for a handler that passes it on unchanged. */
  readonly requestBytes?: Uint8Array | undefined
}

export interface WritableCall<Res> extends CallContext {
  /** Sends one message; false when the stream's buffer is full (wait for onDrain). */
  write(message: Res): boolean
  onDrain(listener: () => void): void
  /** Ends the call: OK without an error, else the error's status. Later calls are ignored. */
  end(error?: unknown): void
  readonly ended: boolean
}

export interface BidiCall<Req, Res> extends WritableCall<Res> {
  onMessage(listener: (message: Req) => void): void
  /** The client finished sending. */
  onHalfClose(listener: () => void): void
}

export type UnaryHandler<Req, Res> = (request: Req, call: CallContext) => Promise<Res> | Res
export type ServerStreamHandler<Req, Res> = (request: Req, call: WritableCall<Res>) => void | Promise<void>
export type BidiHandler<Req, Res> = (call: BidiCall<Req, Res>) => void | Promise<void>

export interface GrpcServerOptions {
  /** Largest request message accepted (etcd: --max-request-bytes + 512 KiB). */
  maxReceiveMessageBytes?: number
  /** Largest response message sent (grpc-go default: unlimited). */
  maxSendMessageBytes?: number
  registry?: Registry
  logger?: Logger
  /** --metrics=extensive: grpc_server_handling_seconds, as go-grpc-prometheus' EnableHandlingTimeHistogram. */
  handlingTimeHistogram?: boolean
  /** The status a call ends with when its handler throws (default: a GrpcError's own, else UNKNOWN). */
  statusOf?: (error: unknown) => StatusOf
  /** The UNAVAILABLE message of calls refused or ended by shutdown() (default: grpc-go's ErrServerStopped). */
  stoppedMessage?: string
}

export const DEFAULT_MAX_RECEIVE_BYTES = 1_572_864 + 512 * 1024
/** Responses up to this size are copied behind their prefix (one write); larger ones go as two writes. */
const COPY_BYTES_MAX = 16 * 1024
/** Deadlines are enforced within this many milliseconds. */
const DEADLINE_SWEEP_MS = 5

export type CallKind = "unary" | "server_stream" | "bidi_stream"
type Kind = CallKind

/** A registered method and its handler (the JSON gateway calls handlers directly). */
export type RegisteredMethod =
  | { readonly kind: "unary"; readonly method: MethodDescriptor<unknown, unknown>; readonly handler: UnaryHandler<unknown, unknown> }
  | { readonly kind: "server_stream"; readonly method: MethodDescriptor<unknown, unknown>; readonly handler: ServerStreamHandler<unknown, unknown> }
  | { readonly kind: "bidi_stream"; readonly method: MethodDescriptor<unknown, unknown>; readonly handler: BidiHandler<unknown, unknown> }

interface Route {
  readonly kind: Kind
  readonly method: MethodDescriptor<unknown, unknown>
  readonly handler: (...args: never[]) => unknown
  readonly started: CounterChild
  readonly received: CounterChild
  readonly sent: CounterChild
  /** grpc_server_handled_total children by status code, made on first use. */
  readonly handled: (CounterChild | undefined)[]
  /** grpc_server_handling_seconds (with --metrics=extensive). */
  readonly handling: HistogramChild | undefined
  readonly service: string
  readonly name: string
}

// frozen: our HPACK encoder encodes frozen header objects once (h2/hpack_encoder.ts)
const RESPONSE_HEADERS = Object.freeze({ ":status": 200, "content-type": "application/grpc" } as const)
const OK_TRAILERS = Object.freeze({ "grpc-status": "0" } as const)
const WITH_TRAILERS = { trailers: true } as const
const END_STREAM = { endStream: true } as const

export class GrpcServer {
  private readonly routes = new Map<string, Route>()
  private readonly services = new Set<string>()
  private readonly streams = new Set<Call>()
  /** Calls with a grpc-timeout, checked by one sweep timer (cheaper than a timer per call). */
  private readonly deadlines = new Set<Call>()
  private sweepTimer: ReturnType<typeof setInterval> | undefined
  private readonly maxReceiveBytes: number
  readonly maxSendBytes: number
  readonly registry: Registry
  readonly logger: Logger
  /** @internal */
  readonly statusOf: (error: unknown) => StatusOf
  private readonly stoppedMessage: string
  private readonly startedTotal: Counter
  private readonly handledTotal: Counter
  private readonly handlingSeconds: Histogram | undefined
  private readonly receivedTotal: Counter
  private readonly sentTotal: Counter
  private readonly clientRequestsTotal: Counter
  private closing = false

  constructor(options: GrpcServerOptions = {}) {
    this.maxReceiveBytes = options.maxReceiveMessageBytes ?? DEFAULT_MAX_RECEIVE_BYTES
    this.maxSendBytes = options.maxSendMessageBytes ?? 2 ** 31 - 1
    this.registry = options.registry ?? new Registry()
    this.logger = options.logger ?? silentLogger
    this.statusOf = options.statusOf ?? statusOfGrpcError
    this.stoppedMessage = options.stoppedMessage ?? "grpc: the server has been stopped"
    const labelNames = ["grpc_type", "grpc_service", "grpc_method"]
    this.startedTotal = this.registry.counter({ name: "grpc_server_started_total", help: "Total number of RPCs started on the server.", labelNames })
    if (options.handlingTimeHistogram === true) {
      const help = "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server."
      this.handlingSeconds = this.registry.histogram({ name: "grpc_server_handling_seconds", help, labelNames, buckets: DEFAULT_BUCKETS })
    }
    this.handledTotal = this.registry.counter({
      name: "grpc_server_handled_total",
      help: "Total number of RPCs completed on the server, regardless of success or failure.",
      labelNames: ["grpc_type", "grpc_service", "grpc_method", "grpc_code"],
    })
    this.receivedTotal = this.registry.counter({ name: "grpc_server_msg_received_total", help: "Total number of RPC stream messages received on the server.", labelNames })
    this.sentTotal = this.registry.counter({ name: "grpc_server_msg_sent_total", help: "Total number of gRPC stream messages sent by the server.", labelNames })
    this.clientRequestsTotal = this.registry.counter({
      name: "etcd_server_client_requests_total",
      help: "The total number of client requests per client version.",
      labelNames: ["type", "client_api_version"],
    })
    this.registry.counter({ name: "etcd_network_client_grpc_received_bytes_total", help: "The total number of bytes received from grpc clients.", collect: () => this.receivedBytes })
    this.registry.counter({ name: "etcd_network_client_grpc_sent_bytes_total", help: "The total number of bytes sent to grpc clients.", collect: () => this.sentBytes })
  }

  addUnary<Req, Res>(method: MethodDescriptor<Req, Res>, handler: UnaryHandler<Req, Res>): void {
    this.add("unary", method, handler, !method.requestStream && !method.responseStream)
  }

  addServerStream<Req, Res>(method: MethodDescriptor<Req, Res>, handler: ServerStreamHandler<Req, Res>): void {
    this.add("server_stream", method, handler, !method.requestStream && method.responseStream)
  }

  addBidi<Req, Res>(method: MethodDescriptor<Req, Res>, handler: BidiHandler<Req, Res>): void {
    this.add("bidi_stream", method, handler, method.requestStream && method.responseStream)
  }

  /** Every registered method with its handler. */
  registered(): RegisteredMethod[] {
    return [...this.routes.values()].map((route) => ({ kind: route.kind, method: route.method, handler: route.handler }) as RegisteredMethod)
  }

  /** False once shutdown() was called. */
  get serving(): boolean {
    return !this.closing
  }

  /** Streaming calls in progress (watch streams, keepalive streams ...). */
  get activeStreams(): number {
    return this.streams.size
  }

  /**
   * Stops taking calls: new ones fail UNAVAILABLE, streams in progress end
   * UNAVAILABLE ("etcdserver: server stopped"). Unary calls in flight finish;
   * listeners wait for them (bounded) when they close.
   */
  shutdown(): void {
    this.closing = true
    for (const call of [...this.streams]) call.end(new GrpcError(GrpcStatus.UNAVAILABLE, this.stoppedMessage))
  }

  /** Serves one HTTP/2 stream whose content-type is application/grpc. */
  handleStream(stream: ServerStream): void {
    const headers = stream.headers
    const path = headers[":path"]
    const route = typeof path === "string" ? this.routes.get(path) : undefined
    if (route === undefined) {
      stream.listen(ignoringListener)
      trailersOnly(stream, GrpcStatus.UNIMPLEMENTED, this.unknownMethodMessage(String(path ?? "")))
      return
    }
    if (this.closing) {
      stream.listen(ignoringListener)
      trailersOnly(stream, GrpcStatus.UNAVAILABLE, this.stoppedMessage)
      return
    }
    route.started.inc()
    this.countClientRequest(route.kind === "unary" ? "unary" : "stream", headers["client-api-version"])
    let decompress
    try {
      decompress = decompressorFor(headers["grpc-encoding"] as string | undefined)
    } catch (e) {
      stream.listen(ignoringListener)
      const status = this.statusOf(e)
      this.countHandled(route, status.code, performance.now())
      trailersOnly(stream, status.code, status.message)
      return
    }
    const call = new Call(this, route, stream, new MessageReader(this.maxReceiveBytes, decompress))
    if (route.kind !== "unary") this.streams.add(call)
    call.start()
  }

  /** Bytes of gRPC messages received and sent, with their 5-byte prefixes (etcd_network_client_grpc_*_bytes_total). */
  receivedBytes = 0
  sentBytes = 0
  private readonly clientRequests = new Map<string, CounterChild>()

  /** etcd_server_client_requests_total{type, client_api_version}. */
  private countClientRequest(type: "unary" | "stream", version: string | string[] | undefined): void {
    const v = typeof version === "string" ? version : "unknown"
    // Nearly every request has the labels of the one before: no key string, no lookup.
    if (type === this.lastRequestType && v === this.lastRequestVersion && this.lastRequestChild !== undefined) {
      this.lastRequestChild.inc()
      return
    }
    const key = `${type}/${v}`
    let child = this.clientRequests.get(key)
    if (child === undefined) {
      child = this.clientRequestsTotal.labels(type, v)
      this.clientRequests.set(key, child)
    }
    this.lastRequestType = type
    this.lastRequestVersion = v
    this.lastRequestChild = child
    child.inc()
  }

  private lastRequestType = ""
  private lastRequestVersion = ""
  private lastRequestChild: CounterChild | undefined

  /** @internal */
  countHandled(route: Route, code: GrpcStatusCode, startedMs: number): void {
    route.handling?.observe((performance.now() - startedMs) / 1000)
    let child = route.handled[code]
    if (child === undefined) {
      child = this.handledTotal.labels(route.kind, route.service, route.name, grpcCodeNames[code]!)
      route.handled[code] = child
    }
    child.inc()
  }

  /** @internal */
  forget(call: Call): void {
    this.streams.delete(call)
  }

  /** @internal */
  watchDeadline(call: Call): void {
    this.deadlines.add(call)
    if (this.sweepTimer === undefined) {
      this.sweepTimer = setInterval(() => this.sweepDeadlines(), DEADLINE_SWEEP_MS)
      this.sweepTimer.unref?.()
    }
  }

  /** @internal */
  unwatchDeadline(call: Call): void {
    this.deadlines.delete(call)
  }

  private sweepDeadlines(): void {
    const now = performance.now()
    for (const call of this.deadlines) {
      if (call.deadline !== undefined && call.deadline <= now) {
        this.deadlines.delete(call)
        call.expire()
      }
    }
    if (this.deadlines.size === 0 && this.sweepTimer !== undefined) {
      clearInterval(this.sweepTimer)
      this.sweepTimer = undefined
    }
  }

  private unknownMethodMessage(path: string): string {
    const slash = path.lastIndexOf("/")
    const service = path.slice(1, Math.max(slash, 1))
    const name = path.slice(slash + 1)
    if (!this.services.has(service)) return `unknown service ${service}`
    return `unknown method ${name} for service ${service}`
  }

  private add<Req, Res>(kind: Kind, method: MethodDescriptor<Req, Res>, handler: (...args: never[]) => unknown, fits: boolean): void {
    if (!fits) throw new Error(`${method.path}: descriptor streaming flags do not match a ${kind} handler`)
    if (this.routes.has(method.path)) throw new Error(`${method.path} registered twice`)
    const match = /^\/([^/]+)\/([^/]+)$/.exec(method.path)
    if (match === null) throw new Error(`bad method path ${method.path}`)
    const service = match[1]!
    const name = match[2]!
    this.services.add(service)
    this.routes.set(method.path, {
      kind,
      method: method as MethodDescriptor<unknown, unknown>,
      handler,
      service,
      name,
      started: this.startedTotal.labels(kind, service, name),
      received: this.receivedTotal.labels(kind, service, name),
      sent: this.sentTotal.labels(kind, service, name),
      // every code from the start, as go-grpc-prometheus' InitializeMetrics (dashboards see 0, not "no data")
      handled: grpcCodeNames.map((code) => this.handledTotal.labels(kind, service, name, code)),
      handling: this.handlingSeconds?.labels(kind, service, name),
    })
  }
}

/** A response with no messages: status in the headers, END_STREAM at once. */
function trailersOnly(stream: ServerStream, code: GrpcStatusCode, message: string): void {
  if (stream.destroyed || stream.headersSent) return
  stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": String(code), "grpc-message": encodeGrpcMessage(message) }, END_STREAM)
}

class Call implements BidiCall<unknown, unknown> {
  cancelled = false
  ended = false
  readonly deadline: number | undefined
  private requestSeen = false
  private headersSent = false
  private cancelListeners: (() => void)[] | undefined
  private drainListeners: (() => void)[] | undefined
  private messageListener: ((message: unknown) => void) | undefined
  private halfCloseListener: (() => void) | undefined
  private pending: unknown[] | undefined
  private halfClosed = false
  private readonly startedMs: number
  requestBytes: Uint8Array | undefined

  constructor(
    private readonly server: GrpcServer,
    private readonly route: Route,
    private readonly stream: ServerStream,
    private readonly reader: MessageReader,
  ) {
    this.startedMs = performance.now()
    const metadata = stream.headers
    const timeoutMs = parseGrpcTimeoutMs(metadata["grpc-timeout"] as string | undefined)
    this.deadline = timeoutMs === undefined ? undefined : performance.now() + timeoutMs
    if (timeoutMs !== undefined) server.watchDeadline(this)
  }

  get path(): string {
    return this.route.method.path
  }

  get metadata(): HeaderMap {
    return this.stream.headers
  }

  header(name: string): string | undefined {
    const value = this.metadata[name]
    return Array.isArray(value) ? value[0] : value
  }

  get peerCommonName(): string | undefined {
    return this.stream.peerCommonName
  }

  get remoteAddress(): string | undefined {
    return this.stream.remoteAddress
  }

  start(): void {
    const listener: StreamListener = {
      onData: (chunk) => this.onData(chunk),
      onEnd: () => this.onEnd(),
      onClose: () => this.onClose(),
      onDrain: () => this.drained(),
    }
    this.stream.listen(listener)
    if (this.route.kind === "bidi_stream") this.invoke(() => (this.route.handler as BidiHandler<unknown, unknown>)(this))
  }

  onCancel(listener: () => void): void {
    if (this.cancelled) {
      queueMicrotask(listener)
      return
    }
    ;(this.cancelListeners ??= []).push(listener)
  }

  onMessage(listener: (message: unknown) => void): void {
    this.messageListener = listener
    const pending = this.pending
    if (pending !== undefined) {
      this.pending = undefined
      for (const message of pending) listener(message)
    }
    if (this.halfClosed && this.halfCloseListener !== undefined) this.halfCloseListener()
  }

  onHalfClose(listener: () => void): void {
    this.halfCloseListener = listener
    if (this.halfClosed && this.pending === undefined) listener()
  }

  /** Adds a listener for every drain from now on (as EventEmitter.on did). */
  onDrain(listener: () => void): void {
    ;(this.drainListeners ??= []).push(listener)
  }

  write(message: unknown): boolean {
    if (this.ended || this.cancelled) return false
    const frame = this.frame(message)
    if (frame === undefined) return false
    this.sendHeaders()
    this.route.sent.inc()
    if (Array.isArray(frame)) {
      this.stream.write(frame[0])
      return this.stream.write(frame[1])
    }
    return this.stream.write(frame)
  }

  end(error?: unknown): void {
    if (this.ended) return
    if (error === undefined) this.finish(GrpcStatus.OK, "")
    else this.fail(error)
  }

  // --- inbound

  private onData(chunk: Buffer): void {
    if (this.ended) return
    try {
      this.reader.push(chunk, (bytes) => this.onRequestBytes(bytes))
    } catch (e) {
      this.fail(e)
    }
  }

  private onRequestBytes(bytes: Uint8Array): void {
    if (this.ended) return
    this.route.received.inc()
    const route = this.route
    if (route.kind !== "bidi_stream") {
      if (this.requestSeen) throw new GrpcError(GrpcStatus.INTERNAL, "grpc: received more than one request message for a unary or server-streaming call")
      this.requestSeen = true
    }
    this.server.receivedBytes += bytes.length + 5
    let request: unknown
    try {
      request = route.method.requestDeserialize(bytes)
    } catch (e) {
      throw new GrpcError(GrpcStatus.INTERNAL, `grpc: error unmarshalling request: ${e instanceof Error ? e.message : String(e)}`)
    }
    if (route.kind === "unary") {
      this.requestBytes = bytes
      this.invokeUnary(request)
    } else if (route.kind === "server_stream") {
      this.invoke(() => (route.handler as ServerStreamHandler<unknown, unknown>)(request, this))
    } else if (this.messageListener !== undefined) {
      this.messageListener(request)
    } else {
      ;(this.pending ??= []).push(request)
    }
  }

  private onEnd(): void {
    if (this.ended) return
    if (this.route.kind === "bidi_stream") {
      this.halfClosed = true
      if (this.halfCloseListener !== undefined && this.pending === undefined) this.halfCloseListener()
      return
    }
    if (!this.reader.idle) this.fail(new GrpcError(GrpcStatus.INTERNAL, "grpc: stream ended inside a message"))
    else if (!this.requestSeen) this.fail(new GrpcError(GrpcStatus.INTERNAL, "grpc: no request message received"))
  }

  private drained(): void {
    const listeners = this.drainListeners
    if (listeners !== undefined) for (const listener of [...listeners]) listener()
  }

  private onClose(): void {
    if (this.deadline !== undefined) this.server.unwatchDeadline(this)
    if (this.route.kind !== "unary") this.server.forget(this)
    if (this.ended) return
    this.ended = true
    this.server.countHandled(this.route, GrpcStatus.CANCELLED, this.startedMs)
    this.cancel()
  }

  /** @internal the deadline passed */
  expire(): void {
    if (this.ended) return
    this.finish(GrpcStatus.DEADLINE_EXCEEDED, "Deadline Exceeded")
    this.cancel()
  }

  private cancel(): void {
    if (this.cancelled) return
    this.cancelled = true
    const listeners = this.cancelListeners
    this.cancelListeners = undefined
    if (listeners !== undefined) for (const listener of listeners) listener()
  }

  // --- handlers

  private invokeUnary(request: unknown): void {
    let result: unknown
    try {
      result = (this.route.handler as UnaryHandler<unknown, unknown>)(request, this)
    } catch (e) {
      this.fail(e)
      return
    }
    if (result instanceof Promise) {
      result.then(
        (response) => this.respondUnary(response),
        (e: unknown) => this.fail(e),
      )
    } else {
      this.respondUnary(result)
    }
  }

  private invoke(run: () => void | Promise<void>): void {
    try {
      const result = run()
      if (result instanceof Promise) result.catch((e: unknown) => this.end(e))
    } catch (e) {
      this.end(e)
    }
  }

  private respondUnary(response: unknown): void {
    if (this.ended) return
    const frame = this.frame(response)
    if (frame === undefined) return
    this.ended = true
    this.route.sent.inc()
    this.server.countHandled(this.route, GrpcStatus.OK, this.startedMs)
    if (this.deadline !== undefined) this.server.unwatchDeadline(this)
    const stream = this.stream
    if (stream.destroyed) return
    this.headersSent = true
    stream.respond(RESPONSE_HEADERS, WITH_TRAILERS)
    if (Array.isArray(frame)) {
      stream.write(frame[0])
      stream.write(frame[1])
    } else {
      stream.write(frame)
    }
    stream.end(OK_TRAILERS)
  }

  // --- outbound

  /** The framed message: one buffer (a copy) when small, else prefix and payload as they are. */
  private frame(message: unknown): Buffer | [Buffer, Uint8Array] | undefined {
    let bytes: Uint8Array
    try {
      bytes = this.route.method.responseSerialize(message)
    } catch (e) {
      this.fail(new GrpcError(GrpcStatus.INTERNAL, `grpc: error while marshaling: ${e instanceof Error ? e.message : String(e)}`))
      return undefined
    }
    if (bytes.length > this.server.maxSendBytes) {
      this.fail(new GrpcError(GrpcStatus.RESOURCE_EXHAUSTED, `grpc: trying to send message larger than max (${bytes.length} vs. ${this.server.maxSendBytes})`))
      return undefined
    }
    this.server.sentBytes += bytes.length + 5
    return bytes.length <= COPY_BYTES_MAX ? frameMessage(bytes) : [messagePrefix(bytes.length), bytes]
  }

  private sendHeaders(): void {
    if (this.headersSent) return
    this.headersSent = true
    this.stream.respond(RESPONSE_HEADERS, WITH_TRAILERS)
  }

  private fail(error: unknown): void {
    if (this.ended) return
    const status = this.server.statusOf(error)
    if (status.unexpected) {
      this.server.logger.warn("grpc handler failed", { method: this.route.method.path, error: status.message, stack: error instanceof Error ? error.stack : undefined })
    }
    this.finish(status.code, status.message)
  }

  private finish(code: GrpcStatusCode, message: string): void {
    if (this.ended) return
    this.ended = true
    if (this.deadline !== undefined) this.server.unwatchDeadline(this)
    if (this.route.kind !== "unary") this.server.forget(this)
    this.server.countHandled(this.route, code, this.startedMs)
    const stream = this.stream
    if (stream.destroyed) return
    if (!this.headersSent) {
      this.headersSent = true
      trailersOnly(stream, code, message)
      return
    }
    stream.end(code === GrpcStatus.OK ? OK_TRAILERS : { "grpc-status": String(code), "grpc-message": encodeGrpcMessage(message) })
  }
}
