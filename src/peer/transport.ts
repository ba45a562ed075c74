// PeerTransport: how a member talks to the other members.
//
// Plain TCP (http:// peer URLs) or TLS (https://) sockets carrying 4-byte
// length-prefixed CBOR frames. Per peer this member dials three long-lived
// connections, each a lane with its own queue, so that bulk never delays the
// urgent: Control (heartbeats, votes, responses, ReadIndex; and RTT pings),
// Append (App and Prop: bulk) and Rpc (server calls such as forwarded
// proposals). Snapshots use a fresh connection per transfer. Every connection
// starts with a handshake that carries the cluster id and both member ids.
//
// Why raw sockets rather than HTTP/2: one write per flush of a whole batch,
// no per-message stream or header overhead, explicit backpressure through
// socket.write()/'drain', and the same code for TCP and TLS under Bun.
//
// Wiring, in the server:
//   const transport = new PeerTransport({ localId, clusterId, listenUrls, tls, logger, snapshotDir,
//     onMessages: (batch) => step each into raft, onUnreachable: (id) => raft reportUnreachable(id),
//     onSnapshot: ({ message, dbPath }) => install the db, then step the message,
//     onRemoved: () => stop serving, isRemoved: (id) => membership says removed })
//   await transport.start(); addPeer(id, peerUrls) for every other member
//   per Ready: transport.send(messages that are not Snap); for each Snap:
//     transport.sendSnapshot(m, dbCopyPath).then(() => reportSnapshot(to, finish), () => reportSnapshot(to, failure))
//   joining (--initial-cluster-state existing): callUrl(peerUrl, "...members", ...) gives the
//     member list and the cluster id (setClusterId) before raft starts.

import * as net from "node:net"
import * as tls from "node:tls"
import { assert } from "../lib/assert"
import type { Logger } from "../lib/logger"
import { MessageType, type Message, type NodeId } from "../raft/types"
import { FrameKind, Lane, encodeFrame, type Frame, type RequestFrame } from "./codec"
import { OutboundConnection, dialHandshake, hex } from "./connection"
import {
  ClusterIdMismatchError,
  MemberIdMismatchError,
  MemberRemovedError,
  PeerUnreachableError,
  RpcTimeoutError,
  SnapshotTransferError,
  tskvErrorOf,
} from "./errors"
import { StreamReader } from "./framing"
import { serveInbound } from "./inbound"
import { RaftLane, RpcLane } from "./lanes"
import {
  DEFAULT_PEER_LIMITS,
  type CallUrlResult,
  type PeerLimits,
  type PeerMetrics,
  type PeerTransportMetrics,
  type PeerTransportOptions,
  type RpcHandler,
} from "./options"
import { receiveSnapshot, streamSnapshot, type ReceivedSnapshot } from "./snapshot"
import { formatPeerUrl, parsePeerUrl } from "./url"
import { TskvError } from "../lib/errors"

/** A refused peer is logged at most this often. */
const REFUSAL_LOG_INTERVAL_MS = 10_000

interface Counters {
  sentBytes: number
  receivedBytes: number
  sentFailures: number
  sentMessages: number
  receivedMessages: number
  disconnects: number
  rttMs: number
  snapshotsSent: number
  snapshotSendFailures: number
  snapshotSendSeconds: number
  snapshotsReceived: number
  snapshotReceiveFailures: number
  snapshotReceiveSeconds: number
}

interface Peer {
  id: NodeId
  urls: string[]
  control: RaftLane
  append: RaftLane
  rpc: RpcLane
  connections: OutboundConnection[]
}


export class PeerTransport {
  private readonly limits: PeerLimits
  private readonly logger: Logger
  private clusterIdValue: bigint
  private readonly peers = new Map<NodeId, Peer>()
  private readonly counters = new Map<NodeId, Counters>()
  private readonly handlers = new Map<string, RpcHandler>()
  private readonly servers: net.Server[] = []
  private readonly sockets = new Set<net.Socket>()
  private readonly inboundByPeer = new Map<NodeId, Set<net.Socket>>()
  private readonly refusalsLoggedAt = new Map<string, number>()
  private bound: string[] = []
  private callIdNext = 1
  private started = false
  private stopped = false
  private removedReported = false
  private readonly totals = {
    disconnectedTotal: 0,
    snapshotsSent: 0,
    snapshotSendFailures: 0,
    snapshotsReceived: 0,
    snapshotReceiveFailures: 0,
    malformedFrames: 0,
    snapshotReceiveBufferedBytesMax: 0,
  }

  constructor(private readonly options: PeerTransportOptions) {
    this.limits = { ...DEFAULT_PEER_LIMITS, ...options.limits }
    this.clusterIdValue = options.clusterId
    this.logger = options.logger.child({ "local-member-id": hex(options.localId) })
  }

  get localId(): NodeId {
    return this.options.localId
  }

  get clusterId(): bigint {
    return this.clusterIdValue
  }

  /** A joining member learns the cluster id from a peer (callUrl) before raft starts. */
  setClusterId(clusterId: bigint): void {
    this.clusterIdValue = clusterId
  }

  /** Binds every listen URL. */
  async start(): Promise<void> {
    assert(!this.started, "PeerTransport.start() called twice")
    this.started = true
    for (const url of this.options.listenUrls) {
      const address = parsePeerUrl(url)
      let server: net.Server
      if (address.tls) {
        if (this.options.tls === undefined) throw new Error(`peer URL ${url} is https but no peer TLS is configured`)
        server = tls.createServer(this.options.tls.server(), (socket) => this.accept(socket))
        server.on("tlsClientError", (e: Error) => this.logger.warn("rejected peer TLS connection", { error: e.message }))
      } else {
        server = net.createServer((socket) => this.accept(socket))
      }
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject)
        server.listen(address.port, address.host, () => {
          server.off("error", reject)
          resolve()
        })
      })
      server.on("error", (e: Error) => this.logger.error("peer listener error", { error: e.message }))
      const port = (server.address() as net.AddressInfo).port
      this.servers.push(server)
      this.bound.push(formatPeerUrl({ ...address, port }))
    }
    this.logger.info("peer listener started", { urls: this.bound })
  }

  /** Re-reads the listener's TLS options (rotated certificates); open connections keep theirs. */
  reloadTls(): void {
    const provider = this.options.tls
    if (provider === undefined) return
    for (const server of this.servers) if (server instanceof tls.Server) server.setSecureContext(provider.server())
    this.logger.info("reloaded peer TLS configuration")
  }

  /** The bound listen URLs (with the real ports when 0 was asked for). */
  listenUrls(): string[] {
    return [...this.bound]
  }

  /** Starts dialing a member. Throws on a URL that is not http(s)://host:port. */
  addPeer(id: NodeId, urls: readonly string[]): void {
    assert(id !== this.options.localId, "cannot add the local member as a peer")
    for (const url of urls) parsePeerUrl(url)
    assert(!this.stopped, "PeerTransport is stopped")
    if (this.peers.has(id)) {
      this.updatePeer(id, urls)
      return
    }
    const peer = this.createPeer(id, [...urls])
    this.peers.set(id, peer)
    for (const connection of peer.connections) connection.start()
    this.logger.info("added peer", { "remote-peer-id": hex(id), urls })
  }

  /** New URLs for a member (MemberUpdate); used from its next dial on. */
  updatePeer(id: NodeId, urls: readonly string[]): void {
    for (const url of urls) parsePeerUrl(url)
    const peer = this.peers.get(id)
    if (peer === undefined) return
    peer.urls = [...urls]
    this.logger.info("updated peer URLs", { "remote-peer-id": hex(id), urls })
  }

  removePeer(id: NodeId): void {
    const peer = this.peers.get(id)
    if (peer === undefined) return
    this.peers.delete(id)
    this.closePeer(peer, new PeerUnreachableError(`peer ${hex(id)} was removed`))
    // Its connections to us too: if it was removed from the cluster, its redial is refused and it learns so.
    for (const socket of this.inboundByPeer.get(id) ?? []) socket.destroy()
    this.logger.info("removed peer", { "remote-peer-id": hex(id) })
  }

  hasPeer(id: NodeId): boolean {
    return this.peers.has(id)
  }

  /**
   * Since when the control connection to `id` has been up, in the time base
   * of performance.now() (lib/clock systemClock.now()); 0 if it is down. The
   * server's --strict-reconfig-check counts members active for long enough,
   * as etcd does with its transport's ActiveSince.
   */
  activeSince(id: NodeId): number {
    const connection = this.peers.get(id)?.control.connection
    return connection?.state === "open" ? connection.openedAt : 0
  }

  /**
   * Queues raft messages; everything sent in one synchronous run goes out as
   * one frame per peer and lane. Snap messages go through sendSnapshot().
   */
  /**
   * Writes the raft messages queued so far now instead of at the end of the
   * current turn (a Ready's appends leave before the WAL write and the apply
   * that follow them in the same turn).
   */
  flush(): void {
    if (this.stopped) return
    for (const peer of this.peers.values()) {
      peer.control.flushNow()
      peer.append.flushNow()
    }
  }

  send(messages: readonly Message[]): void {
    if (this.stopped) return
    const batches = new Map<Peer, { control: Message[]; append: Message[] }>()
    for (const m of messages) {
      assert(m.type !== MessageType.Snap, "Snap messages travel through sendSnapshot()")
      assert(m.to !== this.options.localId, "message to the local member")
      const peer = this.peers.get(m.to)
      if (peer === undefined) {
        this.logger.debug("dropped message to an unknown peer", { to: hex(m.to), type: MessageType[m.type] })
        continue
      }
      let batch = batches.get(peer)
      if (batch === undefined) batches.set(peer, (batch = { control: [], append: [] }))
      if (m.type === MessageType.App || m.type === MessageType.Prop) batch.append.push(m)
      else batch.control.push(m)
    }
    for (const [peer, batch] of batches) {
      let dropped = 0
      if (batch.control.length > 0) dropped += peer.control.enqueue(batch.control)
      if (batch.append.length > 0) dropped += peer.append.enqueue(batch.append)
      if (dropped > 0) {
        this.countersOf(peer.id).sentFailures += dropped
        this.options.onUnreachable(peer.id)
      }
    }
  }

  /** Streams a snapshot (message + db file) to message.to; resolves when the peer applied it. */
  async sendSnapshot(message: Message, dbPath: string): Promise<void> {
    assert(message.type === MessageType.Snap, "sendSnapshot() needs a Snap message")
    assert(message.snapshot !== undefined, "Snap message without a snapshot")
    const peer = this.peers.get(message.to)
    const started = performance.now()
    try {
      if (peer === undefined || this.stopped) throw new PeerUnreachableError(`unknown peer ${hex(message.to)}`)
      const fields = { "remote-peer-id": hex(peer.id), index: message.snapshot.metadata.index }
      this.logger.info("sending database snapshot", fields)
      const counters = this.countersOf(peer.id)
      const handshaked = await this.dialAny(peer.urls, Lane.Snapshot, peer.id)
      const { socket } = handshaked
      this.sockets.add(socket)
      socket.setTimeout(this.limits.snapshotIdleTimeoutMs, () => socket.destroy(new Error("snapshot transfer idle timeout")))
      counters.sentBytes += handshaked.sentBytes
      counters.receivedBytes += handshaked.receivedBytes
      try {
        const reader = new StreamReader(socket, handshaked.rest, undefined, this.limits.frameBytesMax)
        await streamSnapshot({
          socket,
          reader,
          message,
          dbPath,
          onBytes: (sent, received) => {
            counters.sentBytes += sent
            counters.receivedBytes += received
          },
        })
      } finally {
        this.sockets.delete(socket)
        socket.destroy()
      }
      this.totals.snapshotsSent++
      counters.snapshotsSent++
      counters.snapshotSendSeconds += (performance.now() - started) / 1000
      this.logger.info("sent database snapshot", fields)
    } catch (e) {
      this.totals.snapshotSendFailures++
      const counters = this.countersOf(message.to)
      counters.sentFailures++
      counters.snapshotSendFailures++
      counters.snapshotSendSeconds += (performance.now() - started) / 1000
      const error = e as Error
      this.logger.warn("failed to send database snapshot", { "remote-peer-id": hex(message.to), error: error.message })
      if (error instanceof MemberRemovedError) this.reportRemoved(error)
      throw error instanceof SnapshotTransferError || error instanceof TskvError ? error : new SnapshotTransferError(error.message)
    }
  }

  /** Calls `method` on a peer; rejects with RpcTimeoutError, PeerUnreachableError, a refusal or the handler's TskvError. */
  call(peerId: NodeId, method: string, payload: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    const peer = this.peers.get(peerId)
    if (peer === undefined || this.stopped) return Promise.reject(new PeerUnreachableError(`unknown peer ${hex(peerId)}`))
    const last = peer.rpc.connection.lastError
    if (peer.rpc.connection.state === "backoff" && isRefusal(last)) return Promise.reject(last)
    return peer.rpc.call(method, payload, timeoutMs)
  }

  /**
   * One call to whichever member answers at `url`, on a fresh connection: how
   * a joining member fetches the member list (and learns the cluster id)
   * before it knows any member id.
   */
  async callUrl(url: string, method: string, payload: Uint8Array, timeoutMs: number): Promise<CallUrlResult> {
    const deadline = performance.now() + timeoutMs
    const handshaked = await dialHandshake({
      address: parsePeerUrl(url),
      tlsClient: this.options.tls?.client,
      timeoutMs,
      lane: Lane.Rpc,
      clusterId: this.clusterIdValue,
      localId: this.options.localId,
      peerId: 0n,
    })
    const { socket, accept } = handshaked
    try {
      const reader = new StreamReader(socket, handshaked.rest, undefined, this.limits.frameBytesMax)
      socket.write(encodeFrame({ kind: FrameKind.Request, callId: 1, method, payload }))
      const remaining = Math.max(1, deadline - performance.now())
      let timer: ReturnType<typeof setTimeout> | undefined
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          socket.destroy()
          reject(new RpcTimeoutError(`call ${method} to ${url} timed out after ${timeoutMs} ms`))
        }, remaining)
      })
      try {
        const { frame } = await Promise.race([reader.readFrame(), timeout])
        if (frame.kind !== FrameKind.Response) throw new PeerUnreachableError(`unexpected frame kind ${frame.kind}`)
        if (frame.payload === null) throw tskvErrorOf(frame.errorCode ?? "", frame.errorMessage ?? "")
        return { payload: frame.payload, clusterId: accept.clusterId, memberId: accept.memberId }
      } finally {
        clearTimeout(timer)
      }
    } finally {
      socket.destroy()
    }
  }

  /** Serves `method` for peers' calls. A thrown TskvError reaches the caller with its code. */
  handle(method: string, handler: RpcHandler): void {
    assert(!this.handlers.has(method), `handler for ${method} registered twice`)
    this.handlers.set(method, handler)
  }

  metrics(): PeerTransportMetrics {
    const peers: PeerMetrics[] = []
    const ids = new Set<NodeId>([...this.peers.keys(), ...this.counters.keys()])
    let activePeers = 0
    for (const id of ids) {
      const c = this.countersOf(id)
      const active = this.peers.get(id)?.control.connection.state === "open"
      if (active) activePeers++
      peers.push({ id, ...c, active })
    }
    return { peers, activePeers, ...this.totals }
  }

  /** Closes the listeners and every connection; pending calls fail. */
  async stop(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    for (const peer of this.peers.values()) this.closePeer(peer, new PeerUnreachableError("transport stopped"))
    this.peers.clear()
    for (const socket of this.sockets) socket.destroy()
    this.sockets.clear()
    await Promise.all(
      this.servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))),
    )
    this.servers.length = 0
    this.logger.info("peer transport stopped")
  }

  // ------------------------------------------------------------ internals

  private countersOf(id: NodeId): Counters {
    let c = this.counters.get(id)
    if (c === undefined) {
      c = {
        sentBytes: 0,
        receivedBytes: 0,
        sentFailures: 0,
        sentMessages: 0,
        receivedMessages: 0,
        disconnects: 0,
        rttMs: -1,
        snapshotsSent: 0,
        snapshotSendFailures: 0,
        snapshotSendSeconds: 0,
        snapshotsReceived: 0,
        snapshotReceiveFailures: 0,
        snapshotReceiveSeconds: 0,
      }
      this.counters.set(id, c)
    }
    return c
  }

  private createPeer(id: NodeId, urls: string[]): Peer {
    const counters = this.countersOf(id)
    const onSent = (n: number): void => {
      counters.sentMessages += n
    }
    const peer: Peer = {
      id,
      urls,
      control: new RaftLane(this.limits, onSent),
      append: new RaftLane(this.limits, onSent),
      rpc: new RpcLane(this.limits.rpcPendingMax, () => this.callIdNext++),
      connections: [],
    }
    const lanes = [
      { lane: Lane.Control, owner: peer.control },
      { lane: Lane.Append, owner: peer.append },
      { lane: Lane.Rpc, owner: peer.rpc },
    ] as const
    for (const { lane, owner } of lanes) {
      const connection = new OutboundConnection({
        lane,
        localId: this.options.localId,
        peerId: id,
        clusterId: () => this.clusterIdValue,
        urls: () => peer.urls,
        tlsClient: this.options.tls?.client,
        logger: this.logger.child({ "remote-peer-id": hex(id) }),
        dialTimeoutMs: this.limits.dialTimeoutMs,
        backoffMinMs: this.limits.backoffMinMs,
        backoffMaxMs: this.limits.backoffMaxMs,
        frameBytesMax: this.limits.frameBytesMax,
        pingIntervalMs: this.limits.pingIntervalMs,
        idleTimeoutMs: this.limits.idleTimeoutMs,
        onOpen: () => owner.onOpen(),
        onRoundTrip: (ms) => {
          if (lane !== Lane.Control) return
          counters.rttMs = ms
          this.options.onRoundTrip?.(id, ms)
        },
        onDrain: () => owner.onDrain(),
        onFrame: (frame) => this.onOutboundFrame(peer, lane, frame, owner),
        onDown: (error) => this.onOutboundDown(peer, lane, error, owner),
        onBytes: (sent, received) => {
          counters.sentBytes += sent
          counters.receivedBytes += received
        },
      })
      owner.connection = connection
      peer.connections.push(connection)
    }
    return peer
  }

  private closePeer(peer: Peer, error: Error): void {
    for (const connection of peer.connections) connection.stop()
    peer.control.onDown()
    peer.append.onDown()
    peer.rpc.failAll(error)
  }

  private onOutboundFrame(peer: Peer, lane: Lane, frame: Frame, owner: RaftLane | RpcLane): void {
    if (owner instanceof RpcLane && owner.onFrame(frame)) return
    this.logger.warn("unexpected frame from peer", { "remote-peer-id": hex(peer.id), lane: Lane[lane], kind: frame.kind })
  }

  private onOutboundDown(peer: Peer, lane: Lane, error: Error, owner: RaftLane | RpcLane): void {
    if (error instanceof MemberRemovedError) this.reportRemoved(error)
    if (owner instanceof RpcLane) {
      owner.onDown(error, isRefusal(error))
      return
    }
    if (lane === Lane.Control && error.message === "connection lost") {
      this.totals.disconnectedTotal++
      this.countersOf(peer.id).disconnects++
    }
    const lost = owner.onDown()
    if (lost > 0) this.countersOf(peer.id).sentFailures += lost
    this.options.onUnreachable(peer.id)
  }

  private reportRemoved(error: MemberRemovedError): void {
    if (this.removedReported) return
    this.removedReported = true
    this.options.onRemoved?.(error)
  }

  private async dialAny(urls: readonly string[], lane: Lane, peerId: NodeId) {
    let lastError: Error = new PeerUnreachableError("peer has no URLs")
    for (const url of urls) {
      try {
        return await dialHandshake({
          address: parsePeerUrl(url),
          tlsClient: this.options.tls?.client,
          timeoutMs: this.limits.dialTimeoutMs,
          lane,
          clusterId: this.clusterIdValue,
          localId: this.options.localId,
          peerId,
        })
      } catch (e) {
        lastError = e as Error
        if (isRefusal(lastError)) break
      }
    }
    throw lastError
  }

  private accept(socket: net.Socket): void {
    if (this.stopped) {
      socket.destroy()
      return
    }
    const check = this.options.tls?.checkPeerCertificate
    if (check !== undefined && socket instanceof tls.TLSSocket) {
      const refusal = check(socket.getPeerCertificate(), socket.remoteAddress)
      if (refusal !== null) {
        this.logger.warn("rejected peer TLS connection", { error: refusal, remote: socket.remoteAddress })
        socket.destroy()
        return
      }
    }
    this.sockets.add(socket)
    socket.on("close", () => this.sockets.delete(socket))
    serveInbound(socket, {
      localId: this.options.localId,
      clusterId: () => this.clusterIdValue,
      isRemoved: (id) => this.options.isRemoved?.(id) ?? false,
      logger: this.logger,
      frameBytesMax: this.limits.frameBytesMax,
      idleTimeoutMs: this.limits.idleTimeoutMs,
      mayLogRefusal: (key) => {
        const now = performance.now()
        const last = this.refusalsLoggedAt.get(key)
        if (last !== undefined && now - last < REFUSAL_LOG_INTERVAL_MS) return false
        this.refusalsLoggedAt.set(key, now)
        return true
      },
      onMessages: (messages, from) => {
        this.countersOf(from).receivedMessages += messages.length
        this.options.onMessages(messages)
      },
      onRequest: (request, from) => this.dispatch(request, from),
      onSnapshotConnection: async (reader, s, from) => {
        s.setTimeout(this.limits.snapshotIdleTimeoutMs, () => s.destroy(new Error("snapshot transfer idle timeout")))
        let ok = false
        const started = performance.now()
        await receiveSnapshot(reader, s, from, {
          localId: this.options.localId,
          dir: this.options.snapshotDir,
          logger: this.logger,
          onSnapshot: async (snapshot) => {
            await this.options.onSnapshot(snapshot)
            ok = true
          },
          onBytes: (id, received, sent) => {
            const c = this.countersOf(id)
            c.receivedBytes += received
            c.sentBytes += sent
          },
        })
        const counters = this.countersOf(from)
        counters.snapshotReceiveSeconds += (performance.now() - started) / 1000
        if (ok) {
          this.totals.snapshotsReceived++
          counters.snapshotsReceived++
        } else {
          this.totals.snapshotReceiveFailures++
          counters.snapshotReceiveFailures++
        }
        this.totals.snapshotReceiveBufferedBytesMax = Math.max(
          this.totals.snapshotReceiveBufferedBytesMax,
          reader.bufferedBytesMax,
        )
      },
      onBytes: (from, received, sent) => {
        const c = this.countersOf(from)
        c.receivedBytes += received
        c.sentBytes += sent
      },
      onMalformed: () => {
        this.totals.malformedFrames++
      },
      onAccepted: (s, from) => {
        let set = this.inboundByPeer.get(from)
        if (set === undefined) this.inboundByPeer.set(from, (set = new Set()))
        set.add(s)
        s.on("close", () => {
          set.delete(s)
          if (set.size === 0 && this.inboundByPeer.get(from) === set) this.inboundByPeer.delete(from)
        })
      },
    })
  }

  private async dispatch(request: RequestFrame, from: NodeId): Promise<Frame> {
    const handler = this.handlers.get(request.method)
    const fail = (code: string | null, message: string): Frame => ({
      kind: FrameKind.Response,
      callId: request.callId,
      payload: null,
      errorCode: code,
      errorMessage: message,
    })
    if (handler === undefined) return fail(null, `unknown peer method ${JSON.stringify(request.method)}`)
    try {
      const payload = await handler(request.payload, from)
      return { kind: FrameKind.Response, callId: request.callId, payload, errorCode: null, errorMessage: null }
    } catch (e) {
      if (e instanceof TskvError) return fail(e.code, e.message)
      return fail(null, (e as Error).message ?? String(e))
    }
  }
}

function isRefusal(error: Error | null): error is Error {
  return (
    error instanceof ClusterIdMismatchError || error instanceof MemberRemovedError || error instanceof MemberIdMismatchError
  )
}

// Re-exported for the server, which only imports this module.
export { ClusterIdMismatchError, MemberRemovedError, PeerUnreachableError, RpcTimeoutError, SnapshotTransferError }
export type { ReceivedSnapshot }
export { DEFAULT_PEER_LIMITS }
export type { CallUrlResult, PeerLimits, PeerMetrics, PeerTlsOptions, PeerTransportMetrics, PeerTransportOptions, RpcHandler } from "./options"
