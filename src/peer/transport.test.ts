import { afterEach, expect, test } from "bun:test"
import { encode as cborEncode } from "cbor-x"
import * as net from "node:net"
import { MessageType, type Message } from "../raft/types"
import { Lane, PROTOCOL_VERSION, FrameKind, encodeFrame } from "./codec"
import { dialHandshake } from "./connection"
import { FrameReader } from "./framing"
import { ClusterIdMismatchError, MemberRemovedError, PeerUnreachableError, RpcTimeoutError } from "./errors"
import { TskvError } from "../lib/errors"
import { FaultProxy, appMessage, heartbeat, startMember, stopMembers, waitFor, type TestMember } from "./testing"
import { parsePeerUrl } from "./url"

const A = 0xa1n
const B = 0xb2n
let members: TestMember[] = []

async function pair(overridesB: Parameters<typeof startMember>[1] = {}): Promise<[TestMember, TestMember]> {
  const a = await startMember(A)
  const b = await startMember(B, overridesB)
  members.push(a, b)
  a.transport.addPeer(B, [b.url])
  b.transport.addPeer(A, [a.url])
  return [a, b]
}

afterEach(async () => {
  await stopMembers(...members)
  members = []
})

test("PeerTransport.send() delivers messages in order between two transports", async () => {
  const [a, b] = await pair()
  const sent: Message[] = []
  for (let i = 1; i <= 500; i++) {
    const m = appMessage({ from: A, to: B, index: i })
    sent.push(m)
    a.transport.send([m])
    if (i % 50 === 0) await Bun.sleep(1)
  }
  await waitFor(() => b.received.length === 500, 5000, "500 messages")
  expect(b.received.map((m) => m.index)).toEqual(sent.map((m) => m.index))
  expect(b.received[7]).toEqual(sent[7]!)
  a.transport.send([heartbeat(A, B, 9)])
  await waitFor(() => b.received.length === 501)
  expect(b.received[500]!.type).toBe(MessageType.Heartbeat)
})

test("PeerTransport.send() writes the messages of one synchronous run as one batch", async () => {
  const [a, b] = await pair()
  a.transport.send([heartbeat(A, B, 0)])
  await waitFor(() => b.received.length === 1)
  const batchesBefore = b.batches
  for (let i = 1; i <= 100; i++) a.transport.send([appMessage({ from: A, to: B, index: i })])
  await waitFor(() => b.received.length === 101)
  expect(b.batches - batchesBefore).toBe(1)
})

test("PeerTransport reconnects after the peer's listener restarts", async () => {
  const [a, b] = await pair()
  a.transport.send([heartbeat(A, B, 1)])
  await waitFor(() => b.received.length === 1)
  const url = b.url
  await b.transport.stop()
  await waitFor(() => a.unreachable.includes(B), 3000, "unreachable report")
  const port = parsePeerUrl(url).port
  const b2 = await startMember(B, { listenUrls: [url] })
  members.push(b2)
  expect(parsePeerUrl(b2.url).port).toBe(port)
  await waitFor(() => a.transport.metrics().activePeers === 1, 5000, "reconnect")
  a.transport.send([heartbeat(A, B, 2)])
  await waitFor(() => b2.received.length === 1)
  expect(b2.received[0]!.commit).toBe(2)
  expect(a.transport.metrics().disconnectedTotal).toBeGreaterThanOrEqual(1)
})

test("PeerTransport.send() drops messages and reports unreachable when the queue is full", async () => {
  const a = await startMember(A, { limits: { queueMessagesMax: 8 } })
  const b = await startMember(B)
  members.push(a, b)
  a.transport.addPeer(B, [b.url])
  // Still connecting: the first 8 messages fit in the queue, the rest are dropped.
  const batch = []
  for (let i = 1; i <= 20; i++) batch.push(appMessage({ from: A, to: B, index: i }))
  a.transport.send(batch)
  expect(a.unreachable).toEqual([B])
  const peer = a.transport.metrics().peers.find((p) => p.id === B)!
  expect(peer.sentFailures).toBe(12)
  await waitFor(() => b.received.length === 8)
  expect(b.received.map((m) => m.entries[0]!.index)).toEqual([1, 2, 3, 4, 5, 6, 7, 8])
})

test("PeerTransport.send() to a peer that is down reports unreachable at once", async () => {
  // A long backoff keeps the peer in "down" state after the first failed dial.
  const a = await startMember(A, { limits: { dialTimeoutMs: 200, backoffMinMs: 10_000, backoffMaxMs: 10_000 } })
  members.push(a)
  const closed = net.createServer()
  await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r))
  const port = (closed.address() as net.AddressInfo).port
  await new Promise<void>((r) => closed.close(() => r()))
  a.transport.addPeer(B, [`http://127.0.0.1:${port}`])
  await waitFor(() => a.unreachable.length > 0, 3000, "dial failure")
  const before = a.unreachable.length
  a.transport.send([heartbeat(A, B, 1)])
  expect(a.unreachable.length).toBe(before + 1)
})

test("heartbeats are not delayed behind bulk appends", async () => {
  const [a, b] = await pair()
  a.transport.send([heartbeat(A, B, 0)])
  await waitFor(() => b.received.length === 1)
  // 16 MiB of appends queued at once, then a heartbeat.
  const bulk: Message[] = []
  for (let i = 0; i < 32; i++) bulk.push(appMessage({ from: A, to: B, index: 1 + i * 32, entries: 32, entryBytes: 16 * 1024 }))
  a.transport.send(bulk)
  a.transport.send([heartbeat(A, B, 42)])
  await waitFor(() => b.received.some((m) => m.type === MessageType.Heartbeat && m.commit === 42), 10_000)
  const appsBeforeHeartbeat = b.received.findIndex((m) => m.commit === 42) - 1
  expect(appsBeforeHeartbeat).toBeLessThan(32)
  await waitFor(() => b.received.length === 34, 20_000, "all appends")
}, 30_000)

test("a peer of another cluster is refused with 'request cluster ID mismatch', logged on both sides", async () => {
  const a = await startMember(A)
  const b = await startMember(B, { clusterId: 0xbadn })
  members.push(a, b)
  a.transport.addPeer(B, [b.url])
  await waitFor(() => a.logs.has("request cluster ID mismatch") && b.logs.has("request cluster ID mismatch"), 3000)
  a.transport.send([heartbeat(A, B, 1)])
  await Bun.sleep(50)
  expect(b.received).toEqual([])
  const error = await a.transport.call(B, "x", new Uint8Array(), 500).catch((e: unknown) => e)
  expect(error).toBeInstanceOf(ClusterIdMismatchError)
  expect((error as Error).message).toBe("request cluster ID mismatch")
  // Redials on three lanes are refused again and again, but logged once per 10 s.
  await Bun.sleep(300)
  expect(b.logs.lines.filter((l) => l["msg"] === "request cluster ID mismatch").length).toBe(1)
  const line = b.logs.lines.find((l) => l["msg"] === "request cluster ID mismatch")!
  expect(line["remote-peer-cluster-id"]).toBe("c1")
  expect(line["local-member-cluster-id"]).toBe("bad")
})

test("a removed member is told so and gets MemberRemovedError", async () => {
  const a = await startMember(A)
  const b = await startMember(B, { isRemoved: (id) => id === A })
  members.push(a, b)
  a.transport.addPeer(B, [b.url])
  await waitFor(() => a.removed.length > 0, 3000, "removed report")
  expect(a.removed[0]).toBeInstanceOf(MemberRemovedError)
  expect(a.removed[0]!.message).toBe("the member has been permanently removed from the cluster")
  const error = await a.transport.call(B, "x", new Uint8Array(), 500).catch((e: unknown) => e)
  expect(error).toBeInstanceOf(MemberRemovedError)
  expect(a.removed.length).toBe(1)
})

test("a member removed while connected learns it when the peer drops it", async () => {
  let removed = false
  const [a, b] = await pair({ isRemoved: (id) => removed && id === A })
  a.transport.send([heartbeat(A, B, 1)])
  await waitFor(() => b.received.length === 1)
  expect(a.removed).toEqual([])
  removed = true
  b.transport.removePeer(A)
  await waitFor(() => a.removed.length === 1, 3000, "removed report")
  expect(a.removed[0]).toBeInstanceOf(MemberRemovedError)
  expect(b.transport.hasPeer(A)).toBe(false)
})

test("PeerTransport.call() reaches the peer's handler and returns its answer or its TskvError", async () => {
  const [a, b] = await pair()
  b.transport.handle("echo", (payload, from) => new Uint8Array([...payload, Number(from & 0xffn)]))
  b.transport.handle("fail", () => {
    throw new TskvError("notLeader")
  })
  b.transport.handle("crash", async () => {
    throw new Error("boom")
  })
  const answer = await a.transport.call(B, "echo", new Uint8Array([1, 2]), 1000)
  expect([...answer]).toEqual([1, 2, 0xa1])
  const results = await Promise.all(
    Array.from({ length: 200 }, (_, i) => a.transport.call(B, "echo", new Uint8Array([i & 0xff]), 2000)),
  )
  expect(results.map((r) => r[0])).toEqual(Array.from({ length: 200 }, (_, i) => i & 0xff))
  const failed = await a.transport.call(B, "fail", new Uint8Array(), 1000).catch((e: unknown) => e)
  expect(failed).toBeInstanceOf(TskvError)
  expect((failed as TskvError).code).toBe("notLeader")
  expect((failed as Error).message).toBe("etcdserver: not leader")
  const crashed = await a.transport.call(B, "crash", new Uint8Array(), 1000).catch((e: unknown) => e)
  expect((crashed as Error).message).toBe("boom")
  const unknown = await a.transport.call(B, "nope", new Uint8Array(), 1000).catch((e: unknown) => e)
  expect((unknown as Error).message).toContain("unknown peer method")
})

test("PeerTransport.call() times out when the handler does not answer", async () => {
  const [a, b] = await pair()
  b.transport.handle("slow", () => new Promise<Uint8Array>((resolve) => setTimeout(() => resolve(new Uint8Array([1])), 1500)))
  const started = performance.now()
  const error = await a.transport.call(B, "slow", new Uint8Array(), 100).catch((e: unknown) => e)
  expect(error).toBeInstanceOf(RpcTimeoutError)
  expect(performance.now() - started).toBeLessThan(1000)
  // The late answer is ignored and the connection keeps working.
  await Bun.sleep(1500)
  b.transport.handle("fast", () => new Uint8Array([7]))
  expect([...(await a.transport.call(B, "fast", new Uint8Array(), 1000))]).toEqual([7])
})

test("PeerTransport.call() fails with 'too many requests' beyond the pending bound", async () => {
  const a = await startMember(A, { limits: { rpcPendingMax: 4 } })
  const b = await startMember(B)
  members.push(a, b)
  a.transport.addPeer(B, [b.url])
  b.transport.handle("slow", () => new Promise<Uint8Array>((resolve) => setTimeout(() => resolve(new Uint8Array([1])), 200)))
  const results = await Promise.allSettled(Array.from({ length: 6 }, () => a.transport.call(B, "slow", new Uint8Array(), 2000)))
  expect(results.filter((r) => r.status === "fulfilled").length).toBe(4)
  const rejected = results.filter((r): r is PromiseRejectedResult => r.status === "rejected")
  expect(rejected.map((r) => (r.reason as TskvError).code)).toEqual(["tooManyRequests", "tooManyRequests"])
})

test("PeerTransport.addPeer() and updatePeer() refuse URLs that are not http(s)://host:port", async () => {
  const [a] = await pair()
  expect(() => a.transport.addPeer(0x99n, ["unix:///tmp/x"])).toThrow("must use http or https")
  expect(() => a.transport.addPeer(0x99n, ["http://127.0.0.1"])).toThrow("has no port")
  expect(() => a.transport.updatePeer(B, ["not a url"])).toThrow("invalid peer URL")
  expect(a.transport.hasPeer(0x99n)).toBe(false)
})

test("PeerTransport.updatePeer() moves a peer to its new URL", async () => {
  const [a, b] = await pair()
  a.transport.send([heartbeat(A, B, 1)])
  await waitFor(() => b.received.length === 1)
  await b.transport.stop()
  await waitFor(() => a.transport.metrics().peers[0]!.disconnects === 1, 3000, "disconnect noticed")
  const moved = await startMember(B)
  members.push(moved)
  a.transport.updatePeer(B, [moved.url])
  await waitFor(() => a.transport.metrics().activePeers === 1, 5000, "reconnect to the new URL")
  a.transport.send([heartbeat(A, B, 2)])
  await waitFor(() => moved.received.length === 1)
  expect(moved.received[0]!.commit).toBe(2)
})

test("PeerTransport.call() to an unknown peer fails with PeerUnreachableError", async () => {
  const [a] = await pair()
  const error = await a.transport.call(0x99n, "x", new Uint8Array(), 100).catch((e: unknown) => e)
  expect(error).toBeInstanceOf(PeerUnreachableError)
})

test("PeerTransport.callUrl() lets a joining member call a peer without knowing ids or the cluster id", async () => {
  const b = await startMember(B)
  const joiner = await startMember(0x77n, { clusterId: 0n })
  members.push(b, joiner)
  b.transport.handle("members", () => new Uint8Array([42]))
  const result = await joiner.transport.callUrl(b.url, "members", new Uint8Array(), 1000)
  expect([...result.payload]).toEqual([42])
  expect(result.clusterId).toBe(0xc1n)
  expect(result.memberId).toBe(B)
})

test("a malformed frame closes that connection and the member keeps serving", async () => {
  const [a, b] = await pair()
  const rawSend = async (bytes: Uint8Array): Promise<void> => {
    const { socket } = await dialHandshake({
      address: parsePeerUrl(b.url),
      tlsClient: undefined,
      timeoutMs: 1000,
      lane: Lane.Control,
      clusterId: 0xc1n,
      localId: A,
      peerId: B,
    })
    const closed = new Promise<void>((r) => socket.once("close", () => r()))
    socket.write(bytes)
    await closed
  }
  const frame = (payload: Uint8Array): Buffer => {
    const out = Buffer.alloc(4 + payload.length)
    out.writeUInt32BE(payload.length)
    out.set(payload, 4)
    return out
  }
  // Not CBOR at all.
  await rawSend(frame(new Uint8Array([0, 0, 0, 3, 0xff, 0xfe, 0x00])))
  // CBOR of the wrong shape: a message with a string term.
  const envelope = cborEncode([FrameKind.Messages, A, B, [[MessageType.Heartbeat, "1", 0, 0, 0, 0, false, 0, null, null]]])
  await rawSend(frame(Buffer.concat([Buffer.from([0, 0, 0, envelope.length]), envelope])))
  // A length prefix over the limit.
  const huge = Buffer.alloc(8)
  huge.writeUInt32BE(0xffff_fff0)
  await rawSend(huge)
  // A message claiming to come from someone else.
  await rawSend(encodeFrame({ kind: FrameKind.Messages, messages: [heartbeat(0x55n, B, 1)] }))
  // A raft-local message type.
  await rawSend(encodeFrame({ kind: FrameKind.Messages, messages: [{ ...heartbeat(A, B, 1), type: MessageType.Hup }] }))
  expect(b.received).toEqual([])
  expect(b.transport.metrics().malformedFrames).toBe(5)
  a.transport.send([heartbeat(A, B, 3)])
  await waitFor(() => b.received.length === 1)
})

test("a hello with an unsupported protocol version is refused", async () => {
  const b = await startMember(B)
  members.push(b)
  const { port } = parsePeerUrl(b.url)
  const socket = net.connect({ host: "127.0.0.1", port })
  const chunks: Buffer[] = []
  socket.on("data", (c: Buffer) => chunks.push(c))
  const closed = new Promise<void>((r) => socket.once("close", () => r()))
  socket.write(
    encodeFrame({ kind: FrameKind.Hello, version: PROTOCOL_VERSION + 1, lane: Lane.Control, clusterId: 0xc1n, from: A, to: B }),
  )
  await closed
  expect(Buffer.concat(chunks).toString("latin1")).toContain("unsupported peer protocol version")
})

test("PeerTransport.metrics() counts bytes, messages and round-trip time per peer", async () => {
  const [a, b] = await pair()
  a.transport.send([appMessage({ from: A, to: B, index: 1, entryBytes: 1000 })])
  await waitFor(() => b.received.length === 1)
  await waitFor(() => (a.transport.metrics().peers.find((p) => p.id === B)?.rttMs ?? -1) >= 0, 3000, "rtt")
  const mine = a.transport.metrics().peers.find((p) => p.id === B)!
  const theirs = b.transport.metrics().peers.find((p) => p.id === A)!
  expect(mine.sentBytes).toBeGreaterThan(1000)
  expect(theirs.receivedBytes).toBeGreaterThan(1000)
  expect(mine.sentMessages).toBe(1)
  expect(theirs.receivedMessages).toBe(1)
  expect(mine.active).toBe(true)
  expect(a.transport.metrics().activePeers).toBe(1)
  expect(a.transport.activeSince(B)).toBeGreaterThan(0)
  expect(a.transport.activeSince(B)).toBeLessThanOrEqual(performance.now())
  expect(a.transport.activeSince(0x99n)).toBe(0)
  await b.transport.stop()
  await waitFor(() => a.transport.activeSince(B) === 0, 3000, "inactive")
  expect(a.transport.metrics().activePeers).toBe(0)
})

test("a connection on which the peer stops answering pings is closed and redialed", async () => {
  const a = await startMember(A, { limits: { pingIntervalMs: 50, idleTimeoutMs: 250 } })
  members.push(a)
  let accepted = 0
  const sockets: net.Socket[] = []
  // A peer that completes the handshake and then never answers.
  const mute = net.createServer((socket) => {
    sockets.push(socket)
    const reader = new FrameReader((frame) => {
      if (frame.kind !== FrameKind.Hello || frame.lane !== Lane.Control) return
      accepted++
      socket.write(encodeFrame({ kind: FrameKind.Accept, clusterId: 0xc1n, memberId: B }))
    })
    socket.on("data", (chunk: Buffer) => {
      try {
        reader.push(chunk)
      } catch {
        // pings after the hello: ignored
      }
    })
    socket.on("error", () => {})
  })
  await new Promise<void>((r) => mute.listen(0, "127.0.0.1", r))
  try {
    const port = (mute.address() as net.AddressInfo).port
    a.transport.addPeer(B, [`http://127.0.0.1:${port}`])
    await waitFor(() => accepted >= 2, 3000, "redial")
    expect(a.logs.has("peer connection idle, closing it")).toBe(true)
  } finally {
    for (const s of sockets) s.destroy()
    await new Promise<void>((r) => mute.close(() => r()))
  }
})

test("an inbound connection that stays silent is closed", async () => {
  const b = await startMember(B, { limits: { idleTimeoutMs: 200 } })
  members.push(b)
  const { socket } = await dialHandshake({
    address: parsePeerUrl(b.url),
    tlsClient: undefined,
    timeoutMs: 1000,
    lane: Lane.Control,
    clusterId: 0xc1n,
    localId: A,
    peerId: B,
  })
  const started = performance.now()
  await new Promise<void>((r) => socket.once("close", () => r()))
  expect(performance.now() - started).toBeGreaterThanOrEqual(150)
  expect(b.logs.has("closing idle peer connection")).toBe(true)
})

test("three transports in a full mesh deliver every batch to the right member, in order per sender", async () => {
  const ids = [0x11n, 0x22n, 0x33n]
  const trio = await Promise.all(ids.map((id) => startMember(id)))
  members.push(...trio)
  for (const [i, m] of trio.entries()) {
    for (const [j, other] of trio.entries()) if (i !== j) m.transport.addPeer(ids[j]!, [other.url])
  }
  for (let round = 1; round <= 100; round++) {
    for (const [i, m] of trio.entries()) {
      // One Ready's worth: an append and a heartbeat to each other member.
      const batch = ids
        .filter((_, j) => j !== i)
        .flatMap((to) => [appMessage({ from: ids[i]!, to, index: round }), heartbeat(ids[i]!, to, round)])
      m.transport.send(batch)
    }
    if (round % 10 === 0) await Bun.sleep(1)
  }
  await waitFor(() => trio.every((m) => m.received.length === 400), 5000, "all messages")
  for (const [i, m] of trio.entries()) {
    expect(m.received.every((msg) => msg.to === ids[i])).toBe(true)
    for (const from of ids.filter((_, j) => j !== i)) {
      const apps = m.received.filter((msg) => msg.from === from && msg.type === MessageType.App)
      const beats = m.received.filter((msg) => msg.from === from && msg.type === MessageType.Heartbeat)
      expect(apps.map((msg) => msg.entries[0]!.index)).toEqual(Array.from({ length: 100 }, (_, k) => k + 1))
      expect(beats.map((msg) => msg.commit)).toEqual(Array.from({ length: 100 }, (_, k) => k + 1))
    }
  }
})

test("a black-holed peer link is detected, reported unreachable, and recovers after the partition heals", async () => {
  const limits = { pingIntervalMs: 50, idleTimeoutMs: 300, dialTimeoutMs: 300, backoffMinMs: 20, backoffMaxMs: 100 }
  const a = await startMember(A, { limits })
  // b's own idle timer is long, so that it is a's pings that detect the partition.
  const b = await startMember(B, { limits: { idleTimeoutMs: 60_000 } })
  members.push(a, b)
  const proxy = new FaultProxy(parsePeerUrl(b.url))
  await proxy.start()
  try {
    a.transport.addPeer(B, [proxy.url])
    a.transport.send([heartbeat(A, B, 1)])
    await waitFor(() => b.received.length === 1)
    proxy.blackhole = true
    const unreachableBefore = a.unreachable.length
    await waitFor(() => a.transport.activeSince(B) === 0, 3000, "partition detected")
    expect(a.unreachable.length).toBeGreaterThan(unreachableBefore)
    expect(a.logs.has("peer connection idle, closing it")).toBe(true)
    a.transport.send([heartbeat(A, B, 2)])
    await Bun.sleep(100)
    proxy.blackhole = false
    await waitFor(() => a.transport.activeSince(B) > 0, 5000, "healed")
    a.transport.send([heartbeat(A, B, 3)])
    await waitFor(() => b.received.some((m) => m.commit === 3), 3000, "delivery after heal")
  } finally {
    await proxy.stop()
  }
})
