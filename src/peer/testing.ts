// Helpers for the peer tests: transports on 127.0.0.1 with free ports, temp
// dirs, message builders, throwaway certificates (openssl CLI), log capture.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import * as net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createLogger, type Logger } from "../lib/logger"
import { EntryType, MessageType, type Message, type NodeId } from "../raft/types"
import { PeerTransport, type PeerTransportOptions } from "./transport"
import type { ReceivedSnapshot } from "./snapshot"

export function tempDir(prefix = "tskv-peer-"): string {
  return mkdtempSync(join(tmpdir(), prefix))
}

export interface LogCapture {
  logger: Logger
  lines: Array<Record<string, unknown>>
  has(msg: string): boolean
}

export function captureLogs(): LogCapture {
  const lines: Array<Record<string, unknown>> = []
  const logger = createLogger({ level: "debug", write: (line) => lines.push(JSON.parse(line) as Record<string, unknown>) })
  return { logger, lines, has: (msg) => lines.some((l) => l["msg"] === msg) }
}

export function appMessage(options: { from: NodeId; to: NodeId; index: number; entries?: number; entryBytes?: number }): Message {
  const count = options.entries ?? 1
  const entryBytes = options.entryBytes ?? 16
  const entries = []
  for (let i = 0; i < count; i++) {
    const data = new Uint8Array(entryBytes).fill((options.index + i) & 0xff)
    entries.push({ term: 1, index: options.index + i, type: EntryType.Normal, data })
  }
  return {
    type: MessageType.App,
    from: options.from,
    to: options.to,
    term: 1,
    logTerm: 1,
    index: options.index - 1,
    entries,
    commit: options.index - 1,
    reject: false,
    rejectHint: 0,
  }
}

export function heartbeat(from: NodeId, to: NodeId, commit: number): Message {
  return {
    type: MessageType.Heartbeat,
    from,
    to,
    term: 1,
    logTerm: 0,
    index: 0,
    entries: [],
    commit,
    reject: false,
    rejectHint: 0,
  }
}

export interface TestMember {
  transport: PeerTransport
  received: Message[]
  batches: number
  unreachable: NodeId[]
  snapshots: ReceivedSnapshot[]
  removed: Error[]
  logs: LogCapture
  dir: string
  url: string
}

export type MemberOverrides = Partial<Omit<PeerTransportOptions, "onMessages" | "onUnreachable" | "onRemoved">>

export async function startMember(id: NodeId, overrides: MemberOverrides = {}): Promise<TestMember> {
  const logs = captureLogs()
  const dir = tempDir()
  const member: TestMember = {
    transport: undefined as unknown as PeerTransport,
    received: [],
    batches: 0,
    unreachable: [],
    snapshots: [],
    removed: [],
    logs,
    dir,
    url: "",
  }
  member.transport = new PeerTransport({
    localId: id,
    clusterId: 0xc1n,
    listenUrls: ["http://127.0.0.1:0"],
    logger: logs.logger,
    snapshotDir: join(dir, "snap"),
    onSnapshot: async (snapshot) => {
      member.snapshots.push(snapshot)
    },
    ...overrides,
    onMessages: (batch) => {
      member.batches++
      member.received.push(...batch)
    },
    onUnreachable: (peer) => member.unreachable.push(peer),
    onRemoved: (error) => member.removed.push(error),
  })
  await member.transport.start()
  member.url = member.transport.listenUrls()[0]!
  return member
}

export async function stopMembers(...members: TestMember[]): Promise<void> {
  for (const m of members) {
    await m.transport.stop()
    rmSync(m.dir, { recursive: true, force: true })
  }
}

/** Polls `condition` every 5 ms; throws after `timeoutMs`. */
export async function waitFor(condition: () => boolean, timeoutMs = 5000, what = "condition"): Promise<void> {
  const deadline = performance.now() + timeoutMs
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await Bun.sleep(5)
  }
}

export interface TestPki {
  ca: string
  cert: string
  key: string
}

/** A CA and a certificate for 127.0.0.1 signed by it (server and client auth), via the openssl CLI. */
export function makePki(dir: string, name: string): TestPki {
  const p = (f: string): string => join(dir, `${name}-${f}`)
  const run = (args: string[]): void => {
    const r = Bun.spawnSync(["openssl", ...args], { stderr: "pipe", stdout: "pipe" })
    if (r.exitCode !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr.toString()}`)
  }
  run(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
    "-subj", `/CN=${name}-ca`, "-keyout", p("ca.key"), "-out", p("ca.crt")])
  run(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", `/CN=${name}-peer`,
    "-keyout", p("peer.key"), "-out", p("peer.csr")])
  writeFileSync(p("ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n")
  run(["x509", "-req", "-in", p("peer.csr"), "-CA", p("ca.crt"), "-CAkey", p("ca.key"), "-CAcreateserial",
    "-days", "2", "-extfile", p("ext.cnf"), "-out", p("peer.crt")])
  return { ca: readFileSync(p("ca.crt"), "utf8"), cert: readFileSync(p("peer.crt"), "utf8"), key: readFileSync(p("peer.key"), "utf8") }
}

/** A TCP proxy in front of a peer port that can black-hole traffic (a partition) and heal. */
export class FaultProxy {
  private server: net.Server | null = null
  private readonly pairs = new Set<[net.Socket, net.Socket]>()
  blackhole = false
  port = 0

  constructor(private readonly target: { host: string; port: number }) {}

  async start(): Promise<void> {
    this.server = net.createServer((client) => {
      const upstream = net.connect(this.target)
      const pair: [net.Socket, net.Socket] = [client, upstream]
      this.pairs.add(pair)
      const forward = (from: net.Socket, to: net.Socket): void => {
        from.on("data", (chunk: Buffer) => {
          if (!this.blackhole) to.write(chunk)
        })
        from.on("close", () => {
          to.destroy()
          this.pairs.delete(pair)
        })
        from.on("error", () => {})
      }
      forward(client, upstream)
      forward(upstream, client)
    })
    await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", r))
    this.port = (this.server.address() as net.AddressInfo).port
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`
  }

  async stop(): Promise<void> {
    for (const [a, b] of this.pairs) {
      a.destroy()
      b.destroy()
    }
    await new Promise<void>((r) => this.server?.close(() => r()) ?? r())
  }
}
