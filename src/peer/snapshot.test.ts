import { afterEach, expect, test } from "bun:test"
import { createHash, randomBytes } from "node:crypto"
import { createReadStream, existsSync, readdirSync, statSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { MessageType, type Message } from "../raft/types"
import { FrameKind, Lane, encodeFrame } from "./codec"
import { dialHandshake } from "./connection"
import { SnapshotTransferError } from "./errors"
import { StreamReader } from "./framing"
import { streamSnapshot } from "./snapshot"
import { startMember, stopMembers, tempDir, waitFor, type TestMember } from "./testing"
import { parsePeerUrl } from "./url"

const A = 0xa1n
const B = 0xb2n
let members: TestMember[] = []

afterEach(async () => {
  await stopMembers(...members)
  members = []
})

function snapMessage(index: number): Message {
  return {
    type: MessageType.Snap,
    from: A,
    to: B,
    term: 3,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    snapshot: { metadata: { index, term: 3, confState: { voters: [A, B], learners: [] } }, data: new Uint8Array([9]) },
  }
}

function writeRandomFile(path: string, bytes: number): string {
  const hash = createHash("sha256")
  const chunk = 1024 * 1024
  const parts: Buffer[] = []
  for (let done = 0; done < bytes; done += chunk) {
    const part = randomBytes(Math.min(chunk, bytes - done))
    hash.update(part)
    parts.push(part)
  }
  writeFileSync(path, Buffer.concat(parts))
  return hash.digest("hex")
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256")
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer)
  return hash.digest("hex")
}

test("PeerTransport.sendSnapshot() streams a multi-MiB db that the receiver verifies and saves with bounded buffering", async () => {
  const a = await startMember(A)
  const b = await startMember(B)
  members.push(a, b)
  a.transport.addPeer(B, [b.url])
  const dbPath = join(a.dir, "db")
  const size = 24 * 1024 * 1024 + 123
  const digest = writeRandomFile(dbPath, size)
  await a.transport.sendSnapshot(snapMessage(0x1234), dbPath)
  expect(b.snapshots.length).toBe(1)
  const received = b.snapshots[0]!
  expect(received.message).toEqual(snapMessage(0x1234))
  expect(received.dbPath).toBe(join(b.dir, "snap", "0000000000001234.snap.db"))
  expect(statSync(received.dbPath).size).toBe(size)
  expect(await sha256File(received.dbPath)).toBe(digest)
  expect(readdirSync(join(b.dir, "snap")).filter((f) => f.endsWith(".part"))).toEqual([])
  expect(a.transport.metrics().snapshotsSent).toBe(1)
  expect(b.transport.metrics().snapshotsReceived).toBe(1)
  const receiverSide = b.transport.metrics().peers.find((p) => p.id === A)!
  expect(receiverSide.receivedBytes).toBeGreaterThan(size)
  expect(receiverSide.snapshotsReceived).toBe(1)
  expect(receiverSide.snapshotReceiveSeconds).toBeGreaterThan(0)
  const senderSide = a.transport.metrics().peers.find((p) => p.id === B)!
  expect(senderSide.snapshotsSent).toBe(1)
  expect(senderSide.snapshotSendFailures).toBe(0)
}, 30_000)

test("receiveSnapshot() keeps at most about 1 MiB buffered while the disk is behind", async () => {
  // Drive the receiver through a raw handshake so that the reader's high-water mark is observable.
  const b = await startMember(B)
  members.push(b)
  const dir = tempDir()
  const dbPath = join(dir, "db")
  const size = 16 * 1024 * 1024
  writeRandomFile(dbPath, size)
  const handshaked = await dialHandshake({
    address: parsePeerUrl(b.url),
    tlsClient: undefined,
    timeoutMs: 1000,
    lane: Lane.Snapshot,
    clusterId: 0xc1n,
    localId: A,
    peerId: B,
  })
  const reader = new StreamReader(handshaked.socket, handshaked.rest)
  let sentBytes = 0
  await streamSnapshot({
    socket: handshaked.socket,
    reader,
    message: snapMessage(7),
    dbPath,
    onBytes: (sent) => (sentBytes += sent),
  })
  handshaked.socket.destroy()
  expect(sentBytes).toBeGreaterThan(size)
  expect(b.snapshots.length).toBe(1)
  // The receiver never held more than its high-water mark (1 MiB) plus one socket chunk.
  const buffered = b.transport.metrics().snapshotReceiveBufferedBytesMax
  expect(buffered).toBeGreaterThan(0)
  expect(buffered).toBeLessThan(2 * 1024 * 1024)
}, 30_000)

test("PeerTransport.sendSnapshot() fails when the receiver's server rejects the snapshot, and no file is left", async () => {
  const a = await startMember(A)
  const b = await startMember(B, {
    onSnapshot: async () => {
      throw new Error("apply failed")
    },
  })
  members.push(a, b)
  a.transport.addPeer(B, [b.url])
  const dbPath = join(a.dir, "db")
  writeRandomFile(dbPath, 100_000)
  const error = await a.transport.sendSnapshot(snapMessage(5), dbPath).catch((e: unknown) => e)
  expect(error).toBeInstanceOf(SnapshotTransferError)
  expect((error as Error).message).toContain("apply failed")
  expect(a.transport.metrics().snapshotSendFailures).toBe(1)
  expect(b.transport.metrics().snapshotReceiveFailures).toBe(1)
  expect(readdirSync(join(b.dir, "snap"))).toEqual([])
})

test("receiveSnapshot() rejects a stream whose checksum does not match", async () => {
  const b = await startMember(B)
  members.push(b)
  const dir = tempDir()
  const dbPath = join(dir, "db")
  writeRandomFile(dbPath, 300_000)
  const handshaked = await dialHandshake({
    address: parsePeerUrl(b.url),
    tlsClient: undefined,
    timeoutMs: 1000,
    lane: Lane.Snapshot,
    clusterId: 0xc1n,
    localId: A,
    peerId: B,
  })
  // Corrupt the bytes in flight: flip one byte of every written chunk after the header.
  const socket = handshaked.socket
  const write = socket.write.bind(socket) as (chunk: Uint8Array) => boolean
  let calls = 0
  socket.write = ((chunk: Uint8Array) => {
    calls++
    if (calls === 2) {
      const copy = Buffer.from(chunk)
      copy[10] = copy[10]! ^ 0xff
      return write(copy)
    }
    return write(chunk)
  }) as typeof socket.write
  const reader = new StreamReader(socket, handshaked.rest)
  const error = await streamSnapshot({ socket, reader, message: snapMessage(8), dbPath, onBytes: () => {} }).catch(
    (e: unknown) => e,
  )
  socket.destroy()
  expect((error as Error).message).toContain("checksum mismatch")
  expect(b.snapshots).toEqual([])
  await waitFor(() => b.transport.metrics().snapshotReceiveFailures === 1)
  expect(existsSync(join(b.dir, "snap", "0000000000000008.snap.db"))).toBe(false)
  expect(readdirSync(join(b.dir, "snap"))).toEqual([])
})

test("PeerTransport.sendSnapshot() to a peer that went away fails", async () => {
  const a = await startMember(A, { limits: { dialTimeoutMs: 200 } })
  const b = await startMember(B)
  members.push(a, b)
  a.transport.addPeer(B, [b.url])
  await b.transport.stop()
  const dbPath = join(a.dir, "db")
  writeRandomFile(dbPath, 1000)
  const error = await a.transport.sendSnapshot(snapMessage(5), dbPath).catch((e: unknown) => e)
  expect(error).toBeInstanceOf(SnapshotTransferError)
})

test("receiveSnapshot() discards a transfer cut off midway", async () => {
  const b = await startMember(B)
  members.push(b)
  const handshaked = await dialHandshake({
    address: parsePeerUrl(b.url),
    tlsClient: undefined,
    timeoutMs: 1000,
    lane: Lane.Snapshot,
    clusterId: 0xc1n,
    localId: A,
    peerId: B,
  })
  const socket = handshaked.socket
  socket.write(encodeFrame({ kind: FrameKind.SnapshotHeader, message: snapMessage(9), sizeBytes: 10 * 1024 * 1024 }))
  await new Promise<void>((r) => socket.write(Buffer.alloc(1024 * 1024, 1), () => r()))
  const snapDir = join(b.dir, "snap")
  await waitFor(() => existsSync(snapDir) && readdirSync(snapDir).length === 1, 3000, "temp file")
  socket.destroy()
  await waitFor(() => b.transport.metrics().snapshotReceiveFailures === 1, 3000, "failure")
  expect(b.snapshots).toEqual([])
  expect(readdirSync(join(b.dir, "snap"))).toEqual([])
})
