// One client-port listener per --listen-client-urls URL, serving gRPC and
// HTTP/1.1 on the same port as etcd's cmux does:
//   http://host:port   cleartext; the first bytes decide: the HTTP/2 preface
//                      ("PRI * HTTP/2.0", h2c prior knowledge) or HTTP/1.x
//   https://host:port  TLS; ALPN h2 -> HTTP/2, http/1.1 (or none) -> by preface
//   unix://path, unixs://path   the same over a unix socket
// HTTP/2 streams with content-type application/grpc go to the GrpcServer;
// every other request (HTTP/1.1 or HTTP/2) goes to the fetch handler.
// HTTP/2 runs on our own engine (h2/), which accepts any :authority.

import * as http from "node:http"
import * as net from "node:net"
import * as tls from "node:tls"
import { unlinkSync } from "node:fs"
import { silentLogger, type Logger } from "../lib/logger"
import { serveHttp1, serveHttp2, type FetchHandler } from "./fetch_adapter"
import type { GrpcServer } from "./grpc_server"
import { H2Connection } from "./h2/connection"
import { ErrorCode } from "./h2/frames"
import { effectiveKeepalive, type KeepaliveFlags, PingEnforcer, ServerPinger } from "./keepalive_policy"
import { ignoringListener, type ServerStream } from "./server_stream"

export interface Http2Tuning {
  /** SETTINGS_MAX_CONCURRENT_STREAMS per connection (etcd --max-concurrent-streams; Go's default is unlimited). */
  maxConcurrentStreams?: number
  /** Connection and stream receive windows. */
  windowBytes?: number
  /** The client's pings with a stream open may come this often (etcd --grpc-keepalive-min-time, default 5 s). */
  keepaliveMinTimeMs?: number
  /** The server pings a connection after this long without a read (etcd --grpc-keepalive-interval, default 2 h). */
  keepaliveIntervalMs?: number
  /** ... and closes it when nothing is read within this long after (etcd --grpc-keepalive-timeout, default 20 s). */
  keepaliveTimeoutMs?: number
}

export interface ClientListenerOptions {
  url: string
  grpc?: GrpcServer
  fetch?: FetchHandler
  /** Required for https:// and unixs://: key, cert, ca, requestCert/rejectUnauthorized (client cert auth). */
  tls?: tls.TlsOptions
  /**
   * Called on each accepted TLS connection after the handshake (allowed
   * CN/hostname checks): the reason to refuse it, or null to serve it.
   */
  checkTlsConnection?: (socket: tls.TLSSocket) => string | null
  http2?: Http2Tuning
  logger?: Logger
  /**
   * HTTP/1.1 requests with an Upgrade header (websockets): true when it took the
   * socket; otherwise (or without it) the request is served as any other, on a
   * connection that closes after the answer.
   */
  upgrade?: UpgradeHandler
}

export type UpgradeHandler = (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => boolean

const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n")
const DEFAULT_WINDOW_BYTES = 8 * 1024 * 1024
const MAX_STREAMS_UNLIMITED = 2 ** 32 - 1

interface ParsedUrl {
  secure: boolean
  host: string
  port: number
  path: string | undefined
}

export function parseListenUrl(url: string): ParsedUrl {
  const u = new URL(url)
  switch (u.protocol) {
    case "http:":
    case "https:": {
      const host = u.hostname.replace(/^\[(.*)\]$/, "$1")
      const port = u.port === "" ? (u.protocol === "https:" ? 443 : 80) : Number(u.port)
      return { secure: u.protocol === "https:", host, port, path: undefined }
    }
    case "unix:":
    case "unixs:": {
      const path = url.slice(u.protocol.length + 2)
      if (path === "") throw new Error(`listen url ${url}: empty socket path`)
      return { secure: u.protocol === "unixs:", host: "", port: 0, path }
    }
    default:
      throw new Error(`listen url ${url}: unsupported scheme ${u.protocol}`)
  }
}

export class ClientListener {
  private readonly logger: Logger
  private readonly parsed: ParsedUrl
  private readonly outer: net.Server | tls.Server
  private readonly scheme: string
  private readonly maxConcurrentStreams: number
  private readonly windowBytes: number
  private readonly h1: http.Server
  private readonly connections = new Set<H2Connection>()
  private readonly h1Sockets = new Set<net.Socket>()
  private readonly keepalive: KeepaliveFlags
  private closed = false

  private constructor(private readonly options: ClientListenerOptions) {
    this.logger = options.logger ?? silentLogger
    this.parsed = parseListenUrl(options.url)
    this.keepalive = effectiveKeepalive({
      minTimeMs: options.http2?.keepaliveMinTimeMs ?? 5000,
      intervalMs: options.http2?.keepaliveIntervalMs ?? 7_200_000,
      timeoutMs: options.http2?.keepaliveTimeoutMs ?? 20_000,
    })
    this.windowBytes = options.http2?.windowBytes ?? DEFAULT_WINDOW_BYTES
    this.maxConcurrentStreams = options.http2?.maxConcurrentStreams ?? MAX_STREAMS_UNLIMITED
    const scheme = this.parsed.secure ? "https" : "http"
    this.scheme = scheme
    const serveRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      // while closing, a keep-alive connection ends after its response
      res.once("finish", () => {
        if (this.closed) req.socket.end()
      })
      if (this.options.fetch === undefined) {
        res.writeHead(404, { "content-type": "text/plain" }).end("404 page not found\n")
        return
      }
      serveHttp1({ fetch: this.options.fetch, req, res, scheme, logger: this.logger })
    }
    this.h1 = http.createServer(serveRequest)
    // a client that shuts its writing side still reads the answer in progress (Go's server
    // cancels the request's context then, and the answer ends; an idle connection closes)
    ;(this.h1 as http.Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true
    // and an idle keep-alive connection stays open until the client closes it (Go's server has no idle timeout either)
    this.h1.keepAliveTimeout = 0
    this.h1.on("upgrade", (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      if (this.options.upgrade?.(req, socket, head) === true) return
      const res = new http.ServerResponse(req)
      res.assignSocket(socket)
      res.shouldKeepAlive = false
      serveRequest(req, res)
    })
    if (this.parsed.secure) {
      if (options.tls === undefined) throw new Error(`listen url ${options.url}: TLS options required`)
      this.outer = tls.createServer({ ...options.tls, ALPNProtocols: ["h2", "http/1.1"] }, (socket) => {
        const refusal = options.checkTlsConnection?.(socket) ?? null
        if (refusal !== null) {
          this.logger.warn("rejected client TLS connection", { error: refusal, remote: socket.remoteAddress })
          socket.on("error", () => {})
          socket.destroy()
          return
        }
        this.route(socket, socket.alpnProtocol === "h2")
      })
      this.outer.on("tlsClientError", (e) => this.logger.debug("tls handshake failed", { error: e.message }))
    } else {
      this.outer = net.createServer((socket) => this.route(socket, false))
    }
    this.outer.on("error", (e) => this.logger.warn("client listener error", { url: options.url, error: e.message }))
  }

  /** Starts listening; resolves once bound (port 0 picks a free port: see `port`). */
  static async listen(options: ClientListenerOptions): Promise<ClientListener> {
    const listener = new ClientListener(options)
    await listener.bind()
    return listener
  }

  get port(): number {
    const address = this.outer.address()
    return typeof address === "object" && address !== null ? address.port : 0
  }

  /** The URL clients dial (with the bound port when the configured one was 0). */
  get url(): string {
    if (this.parsed.path !== undefined) return this.options.url
    const u = new URL(this.options.url)
    u.port = String(this.port)
    return u.toString().replace(/\/$/, "")
  }

  /** New TLS material for connections accepted from now on (certificate hot reload). */
  setSecureContext(options: tls.SecureContextOptions): void {
    if (!(this.outer instanceof tls.Server)) throw new Error(`${this.options.url} is not a TLS listener`)
    this.outer.setSecureContext(options)
  }

  /**
   * Stops accepting, sends GOAWAY so that calls in flight finish, and destroys
   * whatever is still open after `graceMs`. Call GrpcServer.shutdown() first
   * to end streams.
   */
  async close(graceMs = 2000): Promise<void> {
    if (this.closed) return
    this.closed = true
    const stopped = new Promise<void>((resolve) => this.outer.close(() => resolve()))
    for (const connection of this.connections) connection.close()
    for (const socket of this.h1Sockets) if (!socketBusy(socket)) socket.end()
    const deadline = Date.now() + graceMs
    while ((this.connections.size > 0 || this.h1Sockets.size > 0) && Date.now() < deadline) await sleep(10)
    for (const connection of [...this.connections]) connection.destroy()
    for (const socket of this.h1Sockets) socket.destroy()
    if (this.parsed.path !== undefined) removeSocketFile(this.parsed.path)
    await Promise.race([stopped, sleep(100)])
  }

  private async bind(): Promise<void> {
    const { host, port, path } = this.parsed
    await new Promise<void>((resolve, reject) => {
      const onError = (e: Error): void => reject(e)
      this.outer.once("error", onError)
      const done = (): void => {
        this.outer.off("error", onError)
        resolve()
      }
      if (path !== undefined) {
        removeSocketFile(path)
        this.outer.listen(path, done)
      } else {
        this.outer.listen(port, host === "" ? undefined : host, done)
      }
    })
  }

  /** Hands a connection to HTTP/2 or HTTP/1.1. */
  private route(socket: net.Socket, h2: boolean): void {
    socket.on("error", () => {})
    if (this.closed) {
      socket.destroy()
      return
    }
    if (h2) {
      this.serveHttp2(socket, undefined)
      return
    }
    let seen: Buffer = Buffer.alloc(0)
    const onData = (chunk: Buffer): void => {
      seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk])
      const n = Math.min(seen.length, H2_PREFACE.length)
      const isPreface = seen.subarray(0, n).equals(H2_PREFACE.subarray(0, n))
      if (isPreface && n < 3) return // too few bytes to tell "PRI" from "PUT"/"POST"
      socket.off("data", onData)
      if (isPreface) {
        this.serveHttp2(socket, seen)
        return
      }
      socket.pause()
      socket.unshift(seen)
      this.h1Sockets.add(socket)
      socket.allowHalfOpen = true
      socket.once("close", () => this.h1Sockets.delete(socket))
      this.h1.emit("connection", socket)
      socket.resume()
    }
    socket.on("data", onData)
  }

  /** An HTTP/2 connection; `seen` holds the bytes already read from it. */
  private serveHttp2(socket: net.Socket, seen: Buffer | undefined): void {
    const pings = new PingEnforcer(this.keepalive.minTimeMs)
    let pinger: NodeJS.Timeout | undefined
    const connection: H2Connection = new H2Connection({
      socket,
      ...(seen === undefined ? {} : { initialBytes: seen }),
      maxConcurrentStreams: this.maxConcurrentStreams,
      windowBytes: this.windowBytes,
      onStream: (stream) => this.onStream(stream),
      onPing: () => {
        if (pings.onPing(performance.now(), connection.openStreams, connection.headersAndDataWritten)) {
          this.logger.warn("closing connection: too many pings", { remote: connection.remoteAddress })
          connection.close(ErrorCode.ENHANCE_YOUR_CALM, "too_many_pings")
        }
      },
      onClose: () => {
        clearTimeout(pinger)
        this.connections.delete(connection)
      },
      onInternalError: (e) => this.logger.error("http2 connection failed", { error: e instanceof Error ? e.message : String(e), stack: e instanceof Error ? e.stack : undefined }),
    })
    this.connections.add(connection)
    connection.start()
    if (this.closed) {
      connection.close()
      return
    }
    // The server's keepalive pings (keepalive_policy.ts).
    const keeper = new ServerPinger(this.keepalive.intervalMs, this.keepalive.timeoutMs, performance.now())
    const arm = (atMs: number): void => {
      pinger = setTimeout(tick, Math.max(0, atMs - performance.now()))
      pinger.unref()
    }
    const tick = (): void => {
      const step = keeper.step(performance.now(), connection.lastReadMs)
      if (step.action === "close") {
        this.logger.info("closing connection: keepalive ping not answered", { remote: connection.remoteAddress })
        connection.destroy()
        return
      }
      if (step.action === "ping") connection.ping()
      arm(step.nextMs)
    }
    arm(keeper.firstAtMs())
  }

  private onStream(stream: ServerStream): void {
    const contentType = stream.headers["content-type"]
    if (this.options.grpc !== undefined && typeof contentType === "string" && contentType.startsWith("application/grpc")) {
      this.options.grpc.handleStream(stream)
      return
    }
    if (this.options.fetch === undefined) {
      stream.listen(ignoringListener)
      stream.respond({ ":status": 404 }, { endStream: true })
      return
    }
    serveHttp2({ fetch: this.options.fetch, stream, scheme: this.scheme, logger: this.logger })
  }
}

function socketBusy(socket: net.Socket): boolean {
  // node:http marks a socket with a response in progress; without that, treat as idle.
  return (socket as net.Socket & { _httpMessage?: unknown })._httpMessage != null
}

function removeSocketFile(path: string): void {
  try {
    unlinkSync(path)
  } catch {
    // absent
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
