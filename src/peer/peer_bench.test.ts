// Peer transport throughput on loopback: App messages with 256-B entries
// between two transports. Tiny in every `bun test`; full size with TSKV_BENCH=1.
import { afterEach, expect, test } from "bun:test"
import { rmSync } from "node:fs"
import { join } from "node:path"
import { silentLogger } from "../lib/logger"
import type { Message, NodeId } from "../raft/types"
import { FrameKind, decodeFramePayload, encodeFramePayload } from "./codec"
import { appMessage, tempDir } from "./testing"
import { PeerTransport, type RpcHandler } from "./transport"

const full = process.env.TSKV_BENCH === "1"
const A = 0xa1n
const B = 0xb2n
const cleanups: Array<() => Promise<void>> = []
const receiverHandlers = new Map<NodeId, (method: string, handler: RpcHandler) => void>()

afterEach(async () => {
  for (const c of cleanups.splice(0)) await c()
})

interface Receiver {
  messages: number
  entryBytes: number
  wake: (() => void) | null
}

async function connectedPair(receiver: Receiver): Promise<PeerTransport> {
  const dir = tempDir()
  const make = (id: NodeId, onMessages: (batch: Message[]) => void): PeerTransport =>
    new PeerTransport({
      localId: id,
      clusterId: 1n,
      listenUrls: ["http://127.0.0.1:0"],
      logger: silentLogger,
      snapshotDir: join(dir, String(id)),
      onMessages,
      onSnapshot: async () => {},
      onUnreachable: () => {
        throw new Error("benchmark dropped messages")
      },
    })
  const a = make(A, () => {})
  const b = make(B, (batch) => {
    receiver.messages += batch.length
    for (const m of batch) for (const e of m.entries) receiver.entryBytes += e.data.length
    const w = receiver.wake
    receiver.wake = null
    w?.()
  })
  await a.start()
  await b.start()
  receiverHandlers.set(B, (method, handler) => b.handle(method, handler))
  a.addPeer(B, b.listenUrls())
  b.addPeer(A, a.listenUrls())
  cleanups.push(async () => {
    await a.stop()
    await b.stop()
    rmSync(dir, { recursive: true, force: true })
  })
  return a
}

async function run(name: string, options: { messages: number; entriesPerMessage: number; perSend: number }): Promise<void> {
  const receiver: Receiver = { messages: 0, entryBytes: 0, wake: null }
  const sender = await connectedPair(receiver)
  const window = 2048 // messages in flight: below the 4096-message queue bound
  const template = appMessage({ from: A, to: B, index: 1, entries: options.entriesPerMessage, entryBytes: 256 })
  // Warm up the connection.
  sender.send([template])
  while (receiver.messages < 1) await new Promise<void>((r) => (receiver.wake = r))
  receiver.messages = 0
  receiver.entryBytes = 0
  const start = performance.now()
  let sent = 0
  while (receiver.messages < options.messages) {
    if (sent < options.messages && sent - receiver.messages + options.perSend <= window) {
      const batch: Message[] = []
      for (let i = 0; i < options.perSend && sent < options.messages; i++, sent++) {
        batch.push({ ...template, index: sent * options.entriesPerMessage })
      }
      sender.send(batch)
      if (sent % (options.perSend * 8) === 0) await new Promise<void>((r) => setImmediate(r))
    } else {
      await new Promise<void>((r) => (receiver.wake = r))
    }
  }
  const elapsedMs = performance.now() - start
  const mb = receiver.entryBytes / (1024 * 1024)
  console.log(
    `benchmark: ${name}: ${receiver.messages} messages in ${elapsedMs.toFixed(0)} ms, ` +
      `${((receiver.messages / elapsedMs) * 1000).toFixed(0)} messages/s, ` +
      `${((receiver.messages * options.entriesPerMessage / elapsedMs) * 1000).toFixed(0)} entries/s, ` +
      `${((mb / elapsedMs) * 1000).toFixed(1)} MB/s of entry data`,
  )
  expect(receiver.messages).toBe(options.messages)
}

test("benchmark: peer transport, App messages with one 256-B entry", async () => {
  await run("App x1 256-B entry", { messages: full ? 500_000 : 2_000, entriesPerMessage: 1, perSend: 64 })
}, 120_000)

test("benchmark: peer transport, App messages with 64 entries of 256 B", async () => {
  await run("App x64 256-B entries", { messages: full ? 50_000 : 200, entriesPerMessage: 64, perSend: 8 })
}, 120_000)

test("benchmark: peer codec, encode + decode a frame of 64 App messages with one 256-B entry", () => {
  const n = full ? 20_000 : 200
  const messages = Array.from({ length: 64 }, (_, i) => appMessage({ from: A, to: B, index: i + 1, entryBytes: 256 }))
  let check = 0
  const start = performance.now()
  for (let i = 0; i < n; i++) {
    const frame = decodeFramePayload(encodeFramePayload({ kind: FrameKind.Messages, messages }))
    if (frame.kind === FrameKind.Messages) check += frame.messages.length
  }
  const elapsedMs = performance.now() - start
  console.log(
    `benchmark: codec 64-message frame: ${((n * 64 * 1000) / elapsedMs).toFixed(0)} messages/s encoded+decoded (check ${check})`,
  )
  expect(check).toBe(n * 64)
}, 120_000)

test("benchmark: peer RPC, 256-B calls with 256 in flight", async () => {
  const receiver: Receiver = { messages: 0, entryBytes: 0, wake: null }
  const sender = await connectedPair(receiver)
  const calls = full ? 200_000 : 2_000
  const inFlight = 256
  const payload = new Uint8Array(256).fill(7)
  receiverHandlers.get(B)!("bench.echo", (p) => p)
  let done = 0
  let bytes = 0
  const start = performance.now()
  const worker = async (): Promise<void> => {
    while (done < calls) {
      done++
      const answer = await sender.call(B, "bench.echo", payload, 10_000)
      bytes += answer.length
    }
  }
  await Promise.all(Array.from({ length: inFlight }, worker))
  const elapsedMs = performance.now() - start
  console.log(
    `benchmark: RPC echo: ${done} calls in ${elapsedMs.toFixed(0)} ms, ${((done / elapsedMs) * 1000).toFixed(0)} calls/s (check ${bytes})`,
  )
  expect(bytes).toBe(done * 256)
}, 120_000)
