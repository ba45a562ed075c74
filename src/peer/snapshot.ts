// Snapshot transfer on its own connection (Lane.Snapshot), so that a large db
// never delays heartbeats or appends:
//   sender:   Hello -> SnapshotHeader {message, sizeBytes} -> sizeBytes raw bytes -> SnapshotTrailer {sha256}
//   receiver: writes the bytes to a temp file as they arrive (the socket pauses
//             while the disk is behind), checks length and sha256, fsyncs,
//             renames to <dir>/<index:016x>.snap.db, fsyncs the dir, hands
//             {message, dbPath} to the server and answers SnapshotResult.

import { createHash, randomBytes } from "node:crypto"
import { createReadStream } from "node:fs"
import * as fs from "node:fs/promises"
import type { Socket } from "node:net"
import { join } from "node:path"
import type { Logger } from "../lib/logger"
import type { Message, NodeId } from "../raft/types"
import { FrameKind, encodeFrame, type Frame } from "./codec"
import { hex } from "./connection"
import { MalformedFrameError, SnapshotTransferError } from "./errors"
import type { StreamReader } from "./framing"

export interface ReceivedSnapshot {
  message: Message
  /** The verified, fsynced db file; the server owns it once onSnapshot resolves (it is deleted if onSnapshot throws). */
  dbPath: string
  /** The db file's fsync, and the whole receive up to the renamed, fsynced file (etcd_snap_db_*). */
  fsyncMs: number
  saveMs: number
}

export interface SnapshotReceiveContext {
  localId: NodeId
  dir: string
  logger: Logger
  onSnapshot: (snapshot: ReceivedSnapshot) => Promise<void>
  onBytes: (from: NodeId, received: number, sent: number) => void
}

const CHUNK_BYTES_MAX = 1024 * 1024

export async function receiveSnapshot(
  reader: StreamReader,
  socket: Socket,
  from: NodeId,
  ctx: SnapshotReceiveContext,
): Promise<void> {
  const { frame: header, wireBytes } = await reader.readFrame()
  ctx.onBytes(from, wireBytes, 0)
  if (header.kind !== FrameKind.SnapshotHeader) throw new MalformedFrameError(`expected snapshot header, got ${header.kind}`)
  const { message, sizeBytes } = header
  if (message.from !== from || message.to !== ctx.localId) {
    throw new MalformedFrameError(`snapshot message ${hex(message.from)}->${hex(message.to)} on a connection of ${hex(from)}`)
  }
  const index = message.snapshot!.metadata.index
  const fields = { "remote-peer-id": hex(from), index, "size-bytes": sizeBytes }
  ctx.logger.info("receiving database snapshot", fields)
  const started = performance.now()
  await fs.mkdir(ctx.dir, { recursive: true })
  const name = `${index.toString(16).padStart(16, "0")}.snap.db`
  const tempPath = join(ctx.dir, `${name}.${randomBytes(4).toString("hex")}.part`)
  const finalPath = join(ctx.dir, name)
  try {
    const file = await fs.open(tempPath, "w", 0o600)
    const hash = createHash("sha256")
    let fsyncMs = 0
    try {
      let remaining = sizeBytes
      while (remaining > 0) {
        const chunk = await reader.readChunk(Math.min(remaining, CHUNK_BYTES_MAX))
        ctx.onBytes(from, chunk.length, 0)
        hash.update(chunk)
        await writeAll(file, chunk)
        remaining -= chunk.length
      }
      const { frame: trailer, wireBytes: trailerBytes } = await reader.readFrame()
      ctx.onBytes(from, trailerBytes, 0)
      if (trailer.kind !== FrameKind.SnapshotTrailer) throw new MalformedFrameError(`expected snapshot trailer, got ${trailer.kind}`)
      const digest = hash.digest()
      if (!digest.equals(trailer.sha256)) throw new SnapshotTransferError("snapshot checksum mismatch")
      const { size } = await file.stat()
      if (size !== sizeBytes) throw new SnapshotTransferError(`snapshot file has ${size} bytes, expected ${sizeBytes}`)
      const syncStarted = performance.now()
      await file.sync()
      fsyncMs = performance.now() - syncStarted
    } finally {
      await file.close()
    }
    await fs.rename(tempPath, finalPath)
    await syncDir(ctx.dir)
    ctx.logger.info("received and saved database snapshot", { ...fields, "took-ms": Math.round(performance.now() - started) })
    await ctx.onSnapshot({ message, dbPath: finalPath, fsyncMs, saveMs: performance.now() - started })
    reply(socket, { kind: FrameKind.SnapshotResult, ok: true, message: "" }, from, ctx)
  } catch (e) {
    const error = e as Error
    ctx.logger.warn("failed to receive database snapshot", { ...fields, error: error.message })
    await fs.rm(tempPath, { force: true })
    // Also after a failed onSnapshot: a server that kept the file has moved it away already.
    await fs.rm(finalPath, { force: true }).catch(() => {})
    reply(socket, { kind: FrameKind.SnapshotResult, ok: false, message: error.message }, from, ctx)
  }
}

function reply(socket: Socket, frame: Frame, from: NodeId, ctx: SnapshotReceiveContext): void {
  if (socket.destroyed) return
  const bytes = encodeFrame(frame)
  ctx.onBytes(from, 0, bytes.length)
  socket.end(bytes)
}

async function writeAll(file: fs.FileHandle, chunk: Buffer): Promise<void> {
  let offset = 0
  while (offset < chunk.length) {
    const { bytesWritten } = await file.write(chunk, offset, chunk.length - offset)
    offset += bytesWritten
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, "r")
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

export interface SnapshotSendContext {
  socket: Socket
  reader: StreamReader
  message: Message
  dbPath: string
  onBytes: (sent: number, received: number) => void
}

/** Streams the db after the handshake and waits for the receiver's verdict. */
export async function streamSnapshot(ctx: SnapshotSendContext): Promise<void> {
  const { socket, reader, message, dbPath } = ctx
  const { size } = await fs.stat(dbPath)
  const write = async (bytes: Uint8Array): Promise<void> => {
    ctx.onBytes(bytes.length, 0)
    if (!socket.write(bytes)) await waitDrain(socket)
  }
  await write(encodeFrame({ kind: FrameKind.SnapshotHeader, message, sizeBytes: size }))
  const hash = createHash("sha256")
  let sent = 0
  for await (const chunk of createReadStream(dbPath, { highWaterMark: CHUNK_BYTES_MAX, end: Math.max(size - 1, 0), start: 0 })) {
    const bytes = chunk as Buffer
    if (size === 0) break
    const part = sent + bytes.length > size ? bytes.subarray(0, size - sent) : bytes
    hash.update(part)
    await write(part)
    sent += part.length
  }
  if (sent !== size) throw new SnapshotTransferError(`db file shrank while sending: sent ${sent} of ${size} bytes`)
  await write(encodeFrame({ kind: FrameKind.SnapshotTrailer, sha256: hash.digest() }))
  const { frame, wireBytes } = await reader.readFrame()
  ctx.onBytes(0, wireBytes)
  if (frame.kind !== FrameKind.SnapshotResult) throw new MalformedFrameError(`expected snapshot result, got ${frame.kind}`)
  if (!frame.ok) throw new SnapshotTransferError(`peer failed to apply the snapshot: ${frame.message}`)
}

function waitDrain(socket: Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (e?: Error): void => {
      socket.off("drain", onDrain)
      socket.off("close", onClose)
      if (e) reject(e)
      else resolve()
    }
    const onDrain = (): void => done()
    const onClose = (): void => done(new SnapshotTransferError("connection closed while sending the snapshot"))
    socket.on("drain", onDrain)
    socket.on("close", onClose)
  })
}
