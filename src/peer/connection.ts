// Dialing a peer and the handshake every peer connection starts with: the
// dialer sends Hello {lane, clusterId, from, to}; the listener answers Accept
// or Refuse (cluster id mismatch, removed member, wrong member) and closes.
// OutboundConnection keeps one lane to one peer open: dial, handshake, and
// redial with exponential backoff whenever the connection fails.

import * as net from "node:net"
import * as tls from "node:tls"
import type { Logger } from "../lib/logger"
import type { NodeId } from "../raft/types"
import {
  FrameKind,
  Lane,
  PROTOCOL_VERSION,
  RefuseReason,
  encodeFrame,
  type AcceptFrame,
  type Frame,
} from "./codec"
import {
  CLUSTER_ID_MISMATCH_TEXT,
  ClusterIdMismatchError,
  MalformedFrameError,
  MemberIdMismatchError,
  MemberRemovedError,
  PeerUnreachableError,
} from "./errors"
import { FrameReader } from "./framing"
import { parsePeerUrl, type PeerAddress } from "./url"

export type TlsClientOptionsProvider = () => tls.ConnectionOptions

export interface DialOptions {
  address: PeerAddress
  tlsClient: TlsClientOptionsProvider | undefined
  timeoutMs: number
}

/** Opens a TCP (http) or TLS (https) connection; rejects after timeoutMs. */
export function dial(options: DialOptions): Promise<net.Socket> {
  const { address, timeoutMs } = options
  return new Promise((resolve, reject) => {
    let socket: net.Socket
    const onError = (e: Error): void => {
      clearTimeout(timer)
      socket.destroy()
      reject(new PeerUnreachableError(`dial ${address.host}:${address.port}: ${e.message}`))
    }
    const onConnect = (): void => {
      clearTimeout(timer)
      socket.off("error", onError)
      socket.setNoDelay(true)
      resolve(socket)
    }
    if (address.tls) {
      const base = options.tlsClient?.() ?? {}
      const servername = net.isIP(address.host) === 0 ? address.host : undefined
      socket = tls.connect({ ...base, host: address.host, port: address.port, ...(servername ? { servername } : {}) })
      socket.once("secureConnect", onConnect)
    } else {
      socket = net.connect({ host: address.host, port: address.port })
      socket.once("connect", onConnect)
    }
    socket.once("error", onError)
    const timer = setTimeout(() => onError(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs)
  })
}

export interface HandshakeOptions extends DialOptions {
  lane: Lane
  clusterId: bigint
  localId: NodeId
  /** 0n: any member (joining, the id is not known yet). */
  peerId: NodeId
}

export interface Handshaked {
  socket: net.Socket
  accept: AcceptFrame
  /** Bytes received after the Accept frame. */
  rest: Buffer
  /** Bytes exchanged by the handshake (for the byte counters). */
  sentBytes: number
  receivedBytes: number
}

/** Dials and completes the handshake, or rejects with a typed error (the socket is then destroyed). */
export async function dialHandshake(options: HandshakeOptions): Promise<Handshaked> {
  const socket = await dial(options)
  const hello = encodeFrame({
    kind: FrameKind.Hello,
    version: PROTOCOL_VERSION,
    lane: options.lane,
    clusterId: options.clusterId,
    from: options.localId,
    to: options.peerId,
  })
  return new Promise((resolve, reject) => {
    let settled = false
    const fail = (e: Error): void => {
      if (settled) return
      settled = true
      cleanup()
      socket.destroy()
      reject(e)
    }
    const reader = new FrameReader((frame, wireBytes) => {
      if (settled) return
      const rest = reader.takeRest()
      if (frame.kind === FrameKind.Accept) {
        if (options.peerId !== 0n && frame.memberId !== options.peerId) {
          fail(new MemberIdMismatchError(`dialed member ${hex(options.peerId)} but ${hex(frame.memberId)} answered`))
          return
        }
        settled = true
        cleanup()
        resolve({ socket, accept: frame, rest, sentBytes: hello.length, receivedBytes: wireBytes })
      } else if (frame.kind === FrameKind.Refuse) {
        fail(refusalError(frame.reason, frame.message))
      } else {
        fail(new MalformedFrameError(`expected accept, got frame kind ${frame.kind}`))
      }
    })
    const onData = (chunk: Buffer): void => {
      try {
        reader.push(chunk)
      } catch (e) {
        fail(e as Error)
      }
    }
    const onClose = (): void => fail(new PeerUnreachableError("connection closed during handshake"))
    const onError = (e: Error): void => fail(new PeerUnreachableError(`handshake: ${e.message}`))
    const timer = setTimeout(() => fail(new PeerUnreachableError("handshake timed out")), options.timeoutMs)
    const cleanup = (): void => {
      clearTimeout(timer)
      socket.off("data", onData)
      socket.off("close", onClose)
      socket.off("error", onError)
    }
    socket.on("data", onData)
    socket.on("close", onClose)
    socket.on("error", onError)
    socket.write(hello)
  })
}

function refusalError(reason: RefuseReason, message: string): Error {
  switch (reason) {
    case RefuseReason.ClusterIdMismatch:
      return new ClusterIdMismatchError(message)
    case RefuseReason.MemberRemoved:
      return new MemberRemovedError(message)
    case RefuseReason.MemberIdMismatch:
      return new MemberIdMismatchError(message)
    case RefuseReason.BadRequest:
      return new MalformedFrameError(`refused: ${message}`)
  }
}

export function hex(id: bigint): string {
  return id.toString(16)
}

// ------------------------------------------------------------ outbound lane

export type ConnectionState = "connecting" | "open" | "backoff" | "stopped"

export interface OutboundOptions {
  lane: Lane
  localId: NodeId
  peerId: NodeId
  clusterId: () => bigint
  urls: () => readonly string[]
  tlsClient: TlsClientOptionsProvider | undefined
  logger: Logger
  dialTimeoutMs: number
  backoffMinMs: number
  backoffMaxMs: number
  frameBytesMax: number
  /** A Ping goes out this often while open; its Pong measures the round trip. */
  pingIntervalMs: number
  /** Nothing received for this long (not even a Pong): the connection is dead, redial. */
  idleTimeoutMs: number
  onOpen: () => void
  onFrame: (frame: Frame) => void
  /** The connection failed or closed; `error` says why (typed refusals included). */
  onDown: (error: Error) => void
  onDrain: () => void
  onBytes: (sent: number, received: number) => void
  onRoundTrip: (ms: number) => void
}

/** One lane to one peer, redialed with backoff until stop(). */
export class OutboundConnection {
  state: ConnectionState = "connecting"
  /** The last failure, while not open (callers surface typed refusals). */
  lastError: Error | null = null
  /** performance.now() when the connection last became open. */
  openedAt = 0
  private socket: net.Socket | null = null
  private failures = 0
  private urlIndex = 0
  private timer: ReturnType<typeof setTimeout> | null = null
  private outageLogged = false
  private pingTimer: ReturnType<typeof setInterval> | null = null
  private pingSeq = 0
  private pingSentAt = 0
  private lastReceivedAt = 0

  constructor(private readonly options: OutboundOptions) {}

  start(): void {
    void this.connect()
  }

  /** Writes bytes on the open connection; false means wait for onDrain. */
  write(bytes: Uint8Array): boolean {
    const socket = this.socket
    if (this.state !== "open" || socket === null) return false
    this.options.onBytes(bytes.length, 0)
    return socket.write(bytes)
  }

  /** Dials now if waiting in backoff (a caller has urgent work). */
  kick(): void {
    if (this.state !== "backoff") return
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    void this.connect()
  }

  stop(): void {
    this.state = "stopped"
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    this.stopPings()
    this.socket?.destroy()
    this.socket = null
  }

  private async connect(): Promise<void> {
    if (this.state === "stopped") return
    this.state = "connecting"
    const urls = this.options.urls()
    const url = urls[this.urlIndex % Math.max(urls.length, 1)]
    let handshaked: Handshaked
    try {
      if (url === undefined) throw new PeerUnreachableError("peer has no URLs")
      handshaked = await dialHandshake({
        address: parsePeerUrl(url),
        tlsClient: this.options.tlsClient,
        timeoutMs: this.options.dialTimeoutMs,
        lane: this.options.lane,
        clusterId: this.options.clusterId(),
        localId: this.options.localId,
        peerId: this.options.peerId,
      })
    } catch (e) {
      this.urlIndex++
      this.fail(e as Error, url)
      return
    }
    const { socket, rest } = handshaked
    if ((this.state as ConnectionState) === "stopped") {
      socket.destroy()
      return
    }
    this.options.onBytes(handshaked.sentBytes, handshaked.receivedBytes)
    this.socket = socket
    this.state = "open"
    this.openedAt = performance.now()
    this.failures = 0
    this.lastError = null
    if (this.outageLogged || this.options.lane === Lane.Control) {
      this.options.logger.info("peer connection established", { lane: Lane[this.options.lane], url })
    }
    this.outageLogged = false
    const reader = new FrameReader((frame) => this.onFrame(frame), this.options.frameBytesMax)
    const onData = (chunk: Buffer): void => {
      this.lastReceivedAt = performance.now()
      this.options.onBytes(0, chunk.length)
      try {
        reader.push(chunk)
      } catch (e) {
        this.options.logger.warn("closing peer connection after a bad frame", { error: (e as Error).message })
        socket.destroy()
      }
    }
    socket.on("data", onData)
    socket.on("drain", () => this.options.onDrain())
    socket.on("error", () => {}) // 'close' follows and handles it
    socket.on("close", () => {
      if (this.socket !== socket) return
      this.socket = null
      this.stopPings()
      this.fail(new PeerUnreachableError("connection lost"), url)
    })
    this.startPings(socket)
    this.options.onOpen()
    if (rest.length > 0) onData(rest)
  }

  private onFrame(frame: Frame): void {
    if (frame.kind === FrameKind.Pong) {
      if (frame.seq === this.pingSeq && this.pingSentAt > 0) {
        this.options.onRoundTrip(performance.now() - this.pingSentAt)
        this.pingSentAt = 0
      }
      return
    }
    this.options.onFrame(frame)
  }

  private startPings(socket: net.Socket): void {
    this.lastReceivedAt = performance.now()
    const ping = (): void => {
      if (performance.now() - this.lastReceivedAt > this.options.idleTimeoutMs) {
        this.options.logger.warn("peer connection idle, closing it", {
          lane: Lane[this.options.lane],
          "idle-timeout-ms": this.options.idleTimeoutMs,
        })
        socket.destroy()
        return
      }
      this.pingSeq++
      this.pingSentAt = performance.now()
      this.write(encodeFrame({ kind: FrameKind.Ping, seq: this.pingSeq }))
    }
    this.pingTimer = setInterval(ping, this.options.pingIntervalMs)
    ping()
  }

  private stopPings(): void {
    if (this.pingTimer) clearInterval(this.pingTimer)
    this.pingTimer = null
    this.pingSentAt = 0
  }

  private fail(error: Error, url: string | undefined): void {
    if (this.state === "stopped") return
    this.state = "backoff"
    this.lastError = error
    this.failures++
    this.logFailure(error, url)
    this.options.onDown(error)
    const delay = Math.min(this.options.backoffMaxMs, this.options.backoffMinMs * 2 ** Math.min(this.failures - 1, 20))
    this.timer = setTimeout(() => {
      this.timer = null
      void this.connect()
    }, delay)
  }

  private logFailure(error: Error, url: string | undefined): void {
    const fields = {
      lane: Lane[this.options.lane],
      url,
      "remote-peer-id": hex(this.options.peerId),
      error: error.message,
    }
    if (error instanceof ClusterIdMismatchError) {
      // Logged on every attempt's first failure of an outage, with both ids, as etcd does.
      if (!this.outageLogged) {
        this.options.logger.error(CLUSTER_ID_MISMATCH_TEXT, {
          ...fields,
          "local-member-cluster-id": hex(this.options.clusterId()),
          detail: error.detail,
        })
      }
    } else if (error instanceof MemberRemovedError) {
      if (!this.outageLogged) this.options.logger.error("peer says this member was removed from the cluster", fields)
    } else if (!this.outageLogged) {
      this.options.logger.warn("peer unreachable", fields)
    }
    this.outageLogged = true
  }
}
