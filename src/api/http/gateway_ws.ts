// Websockets on the /v3 gateway, as etcd 3.4 wraps its grpc-gateway in
// tmc/grpc-websocket-proxy: a GET with `Upgrade: websocket` on /v3/* (or
// /v3beta/*) becomes a POST to the same path; every message the client sends
// (text or binary) is written to that request's body followed by "\n", and every
// line of the answer goes back as one text message (empty lines skipped). When
// the answer ends (a unary call answers once) the connection is dropped without
// a close frame, as the proxy does; a close from the client is echoed and ends
// the call. `Sec-WebSocket-Protocol: Bearer, <token>` becomes
// `Authorization: Bearer <token>` (the protocol answered is "Bearer"), and a
// `token` cookie `Authorization: Bearer <value>`; of the other headers only
// Origin and Referer are passed on (the proxy's default).

import type { IncomingMessage } from "node:http"
import type { Socket } from "node:net"
import type { FetchHandler, UpgradeHandler } from "../../h2grpc"

/** Refuse messages past this (the proxy has no limit; the fetch adapter's body limit). */
const MESSAGE_BYTES_MAX = 64 * 1024 * 1024
const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

const OP_CONTINUATION = 0x0
const OP_TEXT = 0x1
const OP_BINARY = 0x2
const OP_CLOSE = 0x8
const OP_PING = 0x9
const OP_PONG = 0xa

export interface GatewayWebsocketOptions {
  fetch: FetchHandler
  scheme: string
  /** The CORS headers the HTTP app adds to an answer for this Origin (handshake refusals carry them too). */
  corsHeaders: (origin: string | undefined) => Record<string, string>
}

export function gatewayWebsocket(options: GatewayWebsocketOptions): UpgradeHandler {
  return (req, socket, head) => {
    const path = (req.url ?? "/").split("?")[0] ?? "/"
    if (!isWebsocketUpgrade(req) || !(path.startsWith("/v3/") || path.startsWith("/v3beta/"))) return false
    const refusal = handshakeRefusal(req)
    const cors = options.corsHeaders(headerOf(req, "origin"))
    if (refusal !== undefined) {
      const text = `${refusal.text}\n`
      const lines = [`HTTP/1.1 ${refusal.status} ${refusal.text}`, ...Object.entries(cors).map(([k, v]) => `${k}: ${v}`)]
      lines.push("Content-Type: text/plain; charset=utf-8", "Sec-Websocket-Version: 13", "X-Content-Type-Options: nosniff", `Content-Length: ${text.length}`, "Connection: close")
      socket.end(`${lines.join("\r\n")}\r\n\r\n${text}`)
      return true
    }
    new WebsocketCall(options, req, socket, head, cors).start()
    return true
  }
}

function headerOf(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name]
  return Array.isArray(v) ? v[0] : v
}

function tokens(value: string | undefined): string[] {
  return (value ?? "").split(",").map((t) => t.trim().toLowerCase())
}

/** gorilla/websocket's IsWebSocketUpgrade: Connection has "upgrade", Upgrade has "websocket". */
function isWebsocketUpgrade(req: IncomingMessage): boolean {
  return tokens(headerOf(req, "connection")).includes("upgrade") && tokens(headerOf(req, "upgrade")).includes("websocket")
}

/** gorilla's Upgrader checks: GET, version 13, a key. */
function handshakeRefusal(req: IncomingMessage): { status: number; text: string } | undefined {
  if (req.method !== "GET") return { status: 405, text: "Method Not Allowed" }
  if (!tokens(headerOf(req, "sec-websocket-version")).includes("13")) return { status: 400, text: "Bad Request" }
  const key = headerOf(req, "sec-websocket-key") ?? ""
  if (key === "" || Buffer.from(key, "base64").length !== 16) return { status: 400, text: "Bad Request" }
  return undefined
}

/** One websocket bridged to a POST on the fetch handler. */
class WebsocketCall {
  private readonly abort = new AbortController()
  private body: ReadableStreamDefaultController<Uint8Array> | undefined
  private bodyOpen = true
  private pending: Buffer = Buffer.alloc(0)
  private fragments: Buffer[] = []
  private fragmentBytes = 0
  private closed = false

  constructor(
    private readonly options: GatewayWebsocketOptions,
    private readonly req: IncomingMessage,
    private readonly socket: Socket,
    private readonly head: Buffer,
    private readonly cors: Record<string, string>,
  ) {}

  start(): void {
    const protocol = headerOf(this.req, "sec-websocket-protocol")
    const accept = new Bun.CryptoHasher("sha1").update(`${headerOf(this.req, "sec-websocket-key")}${WS_GUID}`).digest("base64")
    const lines = ["HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade", `Sec-WebSocket-Accept: ${accept}`]
    if (protocol?.startsWith("Bearer")) lines.push("Sec-WebSocket-Protocol: Bearer")
    this.socket.write(`${lines.join("\r\n")}\r\n\r\n`)
    this.socket.on("data", (chunk: Buffer) => this.onBytes(chunk))
    this.socket.on("close", () => this.finish())
    this.socket.on("error", () => this.finish())
    if (this.head.length > 0) this.onBytes(this.head)
    void this.forward(protocol)
  }

  private async forward(protocol: string | undefined): Promise<void> {
    const headers = new Headers()
    for (const name of ["origin", "referer"]) {
      const value = headerOf(this.req, name)
      if (value !== undefined) headers.set(name, value)
    }
    if (protocol !== undefined && protocol !== "") headers.set("authorization", bearerOfProtocol(protocol))
    const cookieToken = tokenCookie(headerOf(this.req, "cookie"))
    if (cookieToken !== undefined) headers.set("authorization", `Bearer ${cookieToken}`)
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.body = controller
      },
    })
    const url = `${this.options.scheme}://${headerOf(this.req, "host") ?? "localhost"}${this.req.url ?? "/"}`
    try {
      const response = await this.options.fetch(new Request(url, { method: "POST", headers, body, signal: this.abort.signal }))
      await this.sendLines(response)
    } catch {
      // the call was cancelled or failed: the connection goes
    }
    this.drop()
  }

  /** bufio.Scanner's lines of the answer, each a text message. */
  private async sendLines(response: Response): Promise<void> {
    if (response.body === null) return
    const reader = response.body.getReader()
    let buffered = Buffer.alloc(0)
    const send = (line: Buffer): void => {
      const text = line.length > 0 && line[line.length - 1] === 0x0d ? line.subarray(0, -1) : line
      if (text.length > 0) this.sendFrame(OP_TEXT, text)
    }
    for (;;) {
      if (this.closed) {
        await reader.cancel().catch(() => {})
        return
      }
      const { done, value } = await reader.read()
      if (done) break
      buffered = Buffer.concat([buffered, value])
      let nl: number
      while ((nl = buffered.indexOf(0x0a)) >= 0) {
        send(buffered.subarray(0, nl))
        buffered = buffered.subarray(nl + 1)
      }
    }
    if (buffered.length > 0) send(buffered)
  }

  private onBytes(chunk: Buffer): void {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk])
    for (;;) {
      const frame = parseFrame(this.pending)
      if (frame === undefined) return
      if (frame === "bad") {
        this.protocolError(1002)
        return
      }
      this.pending = this.pending.subarray(frame.size)
      if (!this.onFrame(frame)) return
    }
  }

  /** false once the connection is closing. */
  private onFrame(frame: Frame): boolean {
    const { fin, opcode, payload } = frame
    if (opcode >= 0x8) {
      if (!fin || payload.length > 125) return this.protocolError(1002)
      if (opcode === OP_PING) this.sendFrame(OP_PONG, payload)
      else if (opcode === OP_CLOSE) {
        // gorilla's default close handler echoes the code, then the call ends
        this.sendFrame(OP_CLOSE, payload.subarray(0, Math.min(2, payload.length)))
        this.finish()
        this.socket.end()
        return false
      } else if (opcode !== OP_PONG) return this.protocolError(1002)
      return true
    }
    if (opcode === OP_TEXT || opcode === OP_BINARY) {
      if (this.fragments.length > 0) return this.protocolError(1002)
    } else if (opcode !== OP_CONTINUATION || this.fragments.length === 0) {
      return this.protocolError(1002)
    }
    this.fragmentBytes += payload.length
    if (this.fragmentBytes > MESSAGE_BYTES_MAX) return this.protocolError(1009)
    this.fragments.push(payload)
    if (fin) {
      const message = Buffer.concat(this.fragments)
      this.fragments = []
      this.fragmentBytes = 0
      if (this.bodyOpen) this.body?.enqueue(Buffer.concat([message, Buffer.from("\n")]))
    }
    return true
  }

  private protocolError(code: number): false {
    this.sendFrame(OP_CLOSE, Buffer.from([code >> 8, code & 0xff]))
    this.drop()
    return false
  }

  private sendFrame(opcode: number, payload: Uint8Array): void {
    if (this.socket.destroyed) return
    const n = payload.length
    const head = n < 126 ? Buffer.from([0x80 | opcode, n]) : n < 65536 ? Buffer.from([0x80 | opcode, 126, n >> 8, n & 0xff]) : Buffer.alloc(10)
    if (n >= 65536) {
      head[0] = 0x80 | opcode
      head[1] = 127
      head.writeBigUInt64BE(BigInt(n), 2)
    }
    this.socket.write(Buffer.concat([head, payload]))
  }

  /** The websocket is done: the request body ends and the call is cancelled. */
  private finish(): void {
    if (this.closed) return
    this.closed = true
    if (this.bodyOpen) {
      this.bodyOpen = false
      try {
        this.body?.close()
      } catch {
        // already cancelled by the handler
      }
    }
    this.abort.abort()
  }

  /** Drops the connection without a close frame (the proxy closes the socket when the answer ends). */
  private drop(): void {
    this.finish()
    this.socket.destroy()
  }
}

interface Frame {
  fin: boolean
  opcode: number
  payload: Buffer
  size: number
}

/** One client frame from the start of `data`: undefined when incomplete; "bad" when unmasked. */
function parseFrame(data: Buffer): Frame | "bad" | undefined {
  if (data.length < 2) return undefined
  const fin = (data[0]! & 0x80) !== 0
  if ((data[0]! & 0x70) !== 0) return "bad" // no extension was negotiated
  const opcode = data[0]! & 0x0f
  if ((data[1]! & 0x80) === 0) return "bad" // client frames are masked
  let length = data[1]! & 0x7f
  let at = 2
  if (length === 126) {
    if (data.length < 4) return undefined
    length = data.readUInt16BE(2)
    at = 4
  } else if (length === 127) {
    if (data.length < 10) return undefined
    const big = data.readBigUInt64BE(2)
    if (big > BigInt(MESSAGE_BYTES_MAX)) return "bad"
    length = Number(big)
    at = 10
  }
  if (data.length < at + 4 + length) return undefined
  const mask = data.subarray(at, at + 4)
  const payload = Buffer.allocUnsafe(length)
  for (let i = 0; i < length; i++) payload[i] = data[at + 4 + i]! ^ mask[i & 3]!
  return { fin, opcode, payload, size: at + 4 + length }
}

/** The proxy's transformSubProtocolHeader: "Bearer, <token>" -> "Bearer <token>"; anything else -> "". */
function bearerOfProtocol(protocol: string): string {
  const at = protocol.indexOf("Bearer,")
  return at < 0 ? "" : `Bearer ${protocol.slice(at + "Bearer,".length).trim()}`
}

function tokenCookie(cookie: string | undefined): string | undefined {
  for (const part of (cookie ?? "").split(";")) {
    const [name, ...rest] = part.trim().split("=")
    if (name === "token") return rest.join("=")
  }
  return undefined
}
