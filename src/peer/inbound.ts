// The accepting side of a peer connection: check the Hello (cluster id,
// removed member, addressed member), answer Accept or Refuse, then serve the
// lane: deliver raft message batches, answer pings and RPC requests, or hand
// the socket to the snapshot receiver.

import type { Socket } from "node:net"
import { silentLogger, type Logger } from "../lib/logger"
import { MessageType, type Message, type NodeId } from "../raft/types"
import {
  FrameKind,
  Lane,
  PROTOCOL_VERSION,
  RefuseReason,
  encodeFrame,
  type Frame,
  type HelloFrame,
  type RequestFrame,
} from "./codec"
import { CLUSTER_ID_MISMATCH_TEXT, MalformedFrameError, MemberRemovedError } from "./errors"
import { FrameReader, StreamReader } from "./framing"
import { hex } from "./connection"

export interface InboundContext {
  localId: NodeId
  clusterId: () => bigint
  isRemoved: (id: NodeId) => boolean
  logger: Logger
  frameBytesMax: number
  /** Whether a refusal for `key` may be logged now (a refused peer redials every second on three lanes). */
  mayLogRefusal: (key: string) => boolean
  /** Dialers ping every lane; a connection silent for this long is dead. */
  idleTimeoutMs: number
  onMessages: (messages: Message[], from: NodeId) => void
  onRequest: (request: RequestFrame, from: NodeId) => Promise<Frame>
  onSnapshotConnection: (reader: StreamReader, socket: Socket, from: NodeId) => Promise<void>
  onBytes: (from: NodeId, received: number, sent: number) => void
  onMalformed: () => void
  /** The handshake succeeded: the connection belongs to `from` (closed when that peer is removed). */
  onAccepted: (socket: Socket, from: NodeId) => void
}

/** Message types that never cross the network (raft-local inputs), or that have their own lane. */
const NOT_ON_RAFT_LANES = new Set<MessageType>([
  MessageType.Hup,
  MessageType.Beat,
  MessageType.Unreachable,
  MessageType.SnapStatus,
  MessageType.CheckQuorum,
  MessageType.Snap,
])

export function serveInbound(socket: Socket, ctx: InboundContext): void {
  socket.setNoDelay(true)
  const onIdle = (): void => {
    ctx.logger.warn("closing idle peer connection", { "remote-peer-id": remote ? hex(remote.from) : "unknown" })
    socket.destroy()
  }
  socket.on("timeout", onIdle)
  socket.setTimeout(ctx.idleTimeoutMs)
  let remote: HelloFrame | null = null
  let pendingBytes = 0
  // Replies produced in one synchronous run (RPC answers, pongs) share one write.
  let outgoing: Buffer[] = []
  const flush = (): void => {
    const frames = outgoing
    outgoing = []
    if (socket.destroyed || frames.length === 0) return
    const bytes = frames.length === 1 ? frames[0]! : Buffer.concat(frames)
    if (remote) ctx.onBytes(remote.from, 0, bytes.length)
    socket.write(bytes)
  }
  const send = (frame: Frame): void => {
    if (socket.destroyed) return
    outgoing.push(encodeFrame(frame))
    if (outgoing.length === 1) queueMicrotask(flush)
  }
  const refuse = (reason: RefuseReason, message: string): void => {
    send({ kind: FrameKind.Refuse, reason, message })
    flush()
    socket.end()
    reader.takeRest()
  }
  const onHello = (frame: Frame): void => {
    if (frame.kind !== FrameKind.Hello) throw new MalformedFrameError(`expected hello, got frame kind ${frame.kind}`)
    const fields = {
      "local-member-id": hex(ctx.localId),
      "remote-peer-id": hex(frame.from),
      lane: Lane[frame.lane],
    }
    const refusalLogger = ctx.mayLogRefusal(hex(frame.from)) ? ctx.logger : silentLogger
    if (frame.version !== PROTOCOL_VERSION) {
      refusalLogger.warn("refused peer connection: unsupported protocol version", { ...fields, version: frame.version })
      refuse(RefuseReason.BadRequest, `unsupported peer protocol version ${frame.version}`)
      return
    }
    const localClusterId = ctx.clusterId()
    const joining = frame.clusterId === 0n && frame.lane === Lane.Rpc
    if (localClusterId !== 0n && frame.clusterId !== localClusterId && !joining) {
      refusalLogger.warn(CLUSTER_ID_MISMATCH_TEXT, {
        ...fields,
        "local-member-cluster-id": hex(localClusterId),
        "remote-peer-cluster-id": hex(frame.clusterId),
      })
      refuse(
        RefuseReason.ClusterIdMismatch,
        `local cluster id ${hex(localClusterId)}, remote cluster id ${hex(frame.clusterId)}`,
      )
      return
    }
    if (ctx.isRemoved(frame.from)) {
      refusalLogger.warn("refused peer connection: the member was removed", fields)
      refuse(RefuseReason.MemberRemoved, new MemberRemovedError().message)
      return
    }
    if (frame.to !== ctx.localId && !(frame.to === 0n && frame.lane === Lane.Rpc)) {
      refusalLogger.warn("refused peer connection addressed to another member", { ...fields, to: hex(frame.to) })
      refuse(RefuseReason.MemberIdMismatch, `member ${hex(ctx.localId)} is not ${hex(frame.to)}`)
      return
    }
    remote = frame
    ctx.onAccepted(socket, frame.from)
    ctx.onBytes(frame.from, pendingBytes, 0)
    send({ kind: FrameKind.Accept, clusterId: localClusterId, memberId: ctx.localId })
    flush()
    if (frame.lane === Lane.Snapshot) {
      socket.off("data", onData)
      socket.off("timeout", onIdle) // the snapshot receiver sets its own
      const streamReader = new StreamReader(socket, reader.takeRest(), undefined, ctx.frameBytesMax)
      ctx.onSnapshotConnection(streamReader, socket, frame.from).catch((e: unknown) => {
        ctx.logger.warn("snapshot receive failed", { ...fields, error: (e as Error).message })
        socket.destroy()
      })
    }
  }
  const onLaneFrame = (hello: HelloFrame, frame: Frame): void => {
    if (frame.kind === FrameKind.Ping) {
      send({ kind: FrameKind.Pong, seq: frame.seq })
      return
    }
    if (hello.lane === Lane.Rpc) {
      if (frame.kind !== FrameKind.Request) throw new MalformedFrameError(`unexpected frame kind ${frame.kind} on rpc lane`)
      ctx.onRequest(frame, hello.from).then(send, (e: unknown) => {
        ctx.logger.error("rpc dispatch failed", { error: (e as Error).message })
      })
      return
    }
    if (frame.kind !== FrameKind.Messages) throw new MalformedFrameError(`unexpected frame kind ${frame.kind} on raft lane`)
    for (const m of frame.messages) checkMessage(m, hello.from, ctx.localId)
    ctx.onMessages(frame.messages, hello.from)
  }
  const reader = new FrameReader((frame) => {
    if (remote === null) onHello(frame)
    else onLaneFrame(remote, frame)
  }, ctx.frameBytesMax)
  const onData = (chunk: Buffer): void => {
    if (remote) ctx.onBytes(remote.from, chunk.length, 0)
    else pendingBytes += chunk.length
    try {
      reader.push(chunk)
    } catch (e) {
      const error = e as Error
      const level = error instanceof MalformedFrameError ? "warn" : "error"
      if (error instanceof MalformedFrameError) ctx.onMalformed()
      ctx.logger[level]("closing peer connection after a bad frame", {
        "remote-peer-id": remote ? hex(remote.from) : "unknown",
        remote: `${socket.remoteAddress}:${socket.remotePort}`,
        error: error.message,
      })
      socket.destroy()
    }
  }
  socket.on("data", onData)
  socket.on("error", () => {}) // 'close' follows
}

function checkMessage(m: Message, from: NodeId, localId: NodeId): void {
  if (NOT_ON_RAFT_LANES.has(m.type)) throw new MalformedFrameError(`message type ${MessageType[m.type]} not accepted from a peer`)
  if (m.from !== from) throw new MalformedFrameError(`message from ${hex(m.from)} on a connection of ${hex(from)}`)
  if (m.to !== localId) throw new MalformedFrameError(`message to ${hex(m.to)} delivered to ${hex(localId)}`)
}
