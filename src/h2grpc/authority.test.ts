// :authority as clients really send it. grpc-go (etcdctl 3.4) dialing one
// endpoint sends the endpoint itself: "http://127.0.0.1:2379", or the socket
// path of a unix:// endpoint. RFC 9113 leaves :authority to the application,
// and etcd serves these; so do we: any value reaches the handler as it was sent.

import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import * as net from "node:net"
import * as tls from "node:tls"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { tempDir } from "../../test/support/tmp"
import { MaintenanceService } from "../pb"
import { frameMessage } from "./framing"
import { GrpcServer, type MethodDescriptor } from "./grpc_server"
import { huffmanEncode } from "./h2/hpack_huffman"
import { ClientListener } from "./listener"

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s)
const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")

/** An HPACK integer with an `n`-bit prefix; `flags` fill the bits above the prefix. */
function hpackInt(value: number, n: number, flags = 0): number[] {
  const max = (1 << n) - 1
  if (value < max) return [flags | value]
  const out = [flags | max]
  let rest = value - max
  while (rest >= 0x80) {
    out.push((rest & 0x7f) | 0x80)
    rest = Math.floor(rest / 0x80)
  }
  out.push(rest)
  return out
}

function hpackString(value: string, huffman: boolean): number[] {
  const bytes = huffman ? huffmanEncode(utf8(value)) : utf8(value)
  return [...hpackInt(bytes.length, 7, huffman ? 0x80 : 0), ...bytes]
}

/** Literal field: `kind` 0x40 incremental indexing (6-bit index), 0x00 without, 0x10 never indexed (4-bit). */
function literal(options: { kind: 0x40 | 0x00 | 0x10; nameIndex?: number; name?: string; value: string; huffman: boolean }): number[] {
  const prefix = options.kind === 0x40 ? 6 : 4
  if (options.nameIndex !== undefined) return [...hpackInt(options.nameIndex, prefix, options.kind), ...hpackString(options.value, options.huffman)]
  return [options.kind, ...hpackString(options.name ?? "", options.huffman), ...hpackString(options.value, options.huffman)]
}

function frame(options: { type: number; flags: number; streamId: number; payload: Uint8Array | number[] }): Buffer {
  const payload = Buffer.from(options.payload)
  const header = Buffer.alloc(9)
  header.writeUIntBE(payload.length, 0, 3)
  header[3] = options.type
  header[4] = options.flags
  header.writeUInt32BE(options.streamId, 5)
  return Buffer.concat([header, payload])
}

interface Field {
  name: string
  value: string
}

/**
 * A little HPACK encoder with a dynamic table (like grpc-go's): an exact match
 * is sent indexed, anything else as a literal with incremental indexing.
 */
class IndexingEncoder {
  private table: Field[] = []
  private size = 0

  encode(fields: Field[], huffman: boolean): number[] {
    const out: number[] = []
    for (const field of fields) {
      const at = this.table.findIndex((f) => f.name === field.name && f.value === field.value)
      if (at >= 0) {
        out.push(...hpackInt(62 + at, 7, 0x80))
        continue
      }
      const nameIndex = { ":authority": 1, ":method": 2, ":path": 4, ":scheme": 6, "content-type": 31 }[field.name]
      out.push(...literal({ kind: 0x40, ...(nameIndex === undefined ? { name: field.name } : { nameIndex }), value: field.value, huffman }))
      this.table.unshift(field)
      this.size += field.name.length + field.value.length + 32
      while (this.size > 4096) {
        const evicted = this.table.pop()!
        this.size -= evicted.name.length + evicted.value.length + 32
      }
    }
    return out
  }
}

const Echo: MethodDescriptor<Uint8Array, Uint8Array> = {
  path: "/test.Echo/Echo",
  requestStream: false,
  responseStream: false,
  requestDeserialize: (bytes) => bytes,
  responseSerialize: (message) => message,
}

test(`the HPACK table stays in step over many requests whose :authority is indexed, evicted and sent again`, async () => {
  const server = new GrpcServer()
  const seen: { authority: unknown; timeout: unknown; body: number }[] = []
  server.addUnary(Echo, (request, call) => {
    seen.push({ authority: call.metadata[":authority"], timeout: call.metadata["grpc-timeout"], body: request[0] ?? -1 })
    return request
  })
  const listener = await ClientListener.listen({ url: "http://127.0.0.1:0", grpc: server })
  const socket = net.connect(listener.port, "127.0.0.1")
  const requests = 300
  try {
    await new Promise<void>((resolve) => socket.once("connect", () => resolve()))
    const authority = (i: number): string => (i % 3 === 0 ? "http://127.0.0.1:2379" : "unix:///run/etcd/client.sock")
    const result = await rawCalls({ socket, requests, authority })
    expect(result.resets).toEqual([])
    expect(result.responses).toBe(requests)
    expect(seen.length).toBe(requests)
    seen.forEach((call, i) => {
      expect(call.authority).toBe(authority(i))
      expect(call.timeout).toBe(`${1000 + i}m`)
      expect(call.body).toBe(i % 256)
    })
  } finally {
    socket.destroy()
    server.shutdown()
    await listener.close(100)
  }
})

/**
 * Unary Echo calls on a raw HTTP/2 connection, headers from IndexingEncoder
 * (Huffman on every other request, a new grpc-timeout each time so that older
 * table entries get evicted). Counts the calls answered and any RST_STREAM/GOAWAY.
 */
async function rawCalls(options: { socket: net.Socket; requests: number; authority: (i: number) => string }): Promise<{ resets: number[]; responses: number }> {
  const { socket, requests } = options
  let received = Buffer.alloc(0)
  const resets: number[] = []
  let responses = 0
  socket.on("data", (chunk: Buffer) => {
    received = Buffer.concat([received, chunk])
    while (received.length >= 9 && received.length >= 9 + received.readUIntBE(0, 3)) {
      const length = received.readUIntBE(0, 3)
      const type = received[3]!
      const flags = received[4]!
      if (type === 4 && (flags & 1) === 0) socket.write(frame({ type: 4, flags: 1, streamId: 0, payload: [] }))
      if (type === 3 || type === 7) resets.push(type)
      if (type === 1 && (flags & 1) === 1) responses++ // trailers end each call
      received = received.subarray(9 + length)
    }
  })
  socket.write(Buffer.concat([PREFACE, frame({ type: 4, flags: 0, streamId: 0, payload: [] })]))
  const encoder = new IndexingEncoder()
  for (let i = 0; i < requests; i++) {
    const streamId = 2 * i + 1
    const fields: Field[] = [
      { name: ":method", value: "POST" },
      { name: ":scheme", value: "http" },
      { name: ":path", value: Echo.path },
      { name: ":authority", value: options.authority(i) },
      { name: "content-type", value: "application/grpc" },
      { name: "grpc-timeout", value: `${1000 + i}m` },
      { name: "x-filler", value: "f".repeat(i % 50) },
    ]
    const block = encoder.encode(fields, i % 2 === 0)
    socket.write(frame({ type: 1, flags: 0x4, streamId, payload: block }))
    socket.write(frame({ type: 0, flags: 0x1, streamId, payload: frameMessage(Uint8Array.of(i % 256)) }))
  }
  for (let t = 0; t < 500 && responses < requests && resets.length === 0; t++) await Bun.sleep(10)
  return { resets, responses }
}

// --- real etcdctl 3.4 (grpc-go 1.33) dialing one endpoint by URL: :authority "http://127.0.0.1:PORT" ---

async function run(argv: string[]): Promise<{ code: number; out: string }> {
  const proc = Bun.spawn(argv, { env: { ...process.env, ETCDCTL_API: "3" }, stdout: "pipe", stderr: "pipe", stdin: "ignore" })
  const timer = setTimeout(() => proc.kill(), 20_000)
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited])
  clearTimeout(timer)
  return { code, out: stdout + stderr }
}

interface Certs {
  ca: string
  cert: string
  key: string
  clientCert: string
  clientKey: string
}

/** A throwaway CA, a server certificate for 127.0.0.1 and a client certificate with CN=root (openssl CLI). */
async function makeCerts(dir: string): Promise<Certs> {
  const p = (name: string): string => join(dir, name)
  await Bun.write(p("server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
  await Bun.write(p("client.ext"), "extendedKeyUsage=clientAuth\n")
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
  const steps = [
    ["openssl", "req", "-x509", ...ec, "-keyout", p("ca.key"), "-out", p("ca.crt"), "-days", "1", "-subj", "/CN=tskv authority test ca"],
    ["openssl", "req", ...ec, "-keyout", p("server.key"), "-out", p("server.csr"), "-subj", "/CN=tskv server"],
    ["openssl", "x509", "-req", "-in", p("server.csr"), "-CA", p("ca.crt"), "-CAkey", p("ca.key"), "-CAcreateserial", "-out", p("server.crt"), "-days", "1", "-extfile", p("server.ext")],
    ["openssl", "req", ...ec, "-keyout", p("client.key"), "-out", p("client.csr"), "-subj", "/CN=root"],
    ["openssl", "x509", "-req", "-in", p("client.csr"), "-CA", p("ca.crt"), "-CAkey", p("ca.key"), "-CAcreateserial", "-out", p("client.crt"), "-days", "1", "-extfile", p("client.ext")],
  ]
  for (const argv of steps) {
    const result = await run(argv)
    if (result.code !== 0) throw new Error(`${argv.join(" ")}: ${result.out}`)
  }
  return { ca: p("ca.crt"), cert: p("server.crt"), key: p("server.key"), clientCert: p("client.crt"), clientKey: p("client.key") }
}

/** Maintenance Status, Defragment and HashKV, answering like a one-member cluster. */
function maintenanceServer(): { server: GrpcServer; authorities: unknown[] } {
  const server = new GrpcServer()
  const authorities: unknown[] = []
  const header = { clusterId: 0xcdf818194e3a8c32n, memberId: 0x8e9e05c52164694dn, revision: 7, raftTerm: 2 }
  server.addUnary(MaintenanceService.Status, (_request, call) => {
    authorities.push(call.metadata[":authority"])
    return { header, version: "3.4.23", dbSize: 20480, leader: header.memberId, raftIndex: 9, raftTerm: 2, raftAppliedIndex: 9, dbSizeInUse: 16384 }
  })
  server.addUnary(MaintenanceService.Defragment, (_request, call) => {
    authorities.push(call.metadata[":authority"])
    return { header }
  })
  server.addUnary(MaintenanceService.HashKV, (_request, call) => {
    authorities.push(call.metadata[":authority"])
    return { header, hash: 1234567, compactRevision: 1 }
  })
  return { server, authorities }
}

describe(`etcdctl 3.4 with a URL endpoint (:authority is the URL)`, () => {
  const dir = tempDir("tskv-authority-")
  let certs: Certs
  const members: { listener: ClientListener; server: GrpcServer; authorities: unknown[] }[] = []

  const start = async (url: string, tls?: boolean): Promise<{ listener: ClientListener; authorities: unknown[] }> => {
    const { server, authorities } = maintenanceServer()
    const tlsOptions = tls === true ? { tls: { key: readFileSync(certs.key), cert: readFileSync(certs.cert) } } : {}
    const listener = await ClientListener.listen({ url, grpc: server, ...tlsOptions })
    members.push({ listener, server, authorities })
    return { listener, authorities }
  }

  beforeAll(async () => {
    certs = await makeCerts(dir.path)
  })

  afterAll(async () => {
    for (const member of members) {
      member.server.shutdown()
      await member.listener.close(100)
    }
    dir.remove()
  })

  test("cleartext http://: endpoint status, defrag and hashkv succeed", async () => {
    const { listener, authorities } = await start("http://127.0.0.1:0")
    const endpoint = `http://127.0.0.1:${listener.port}`
    const status = await run(["etcdctl", `--endpoints=${endpoint}`, "endpoint", "status"])
    expect(status.out).toBe(`${endpoint}, 8e9e05c52164694d, 3.4.23, 20 kB, true, false, 2, 9, 9, \n`)
    expect(status.code).toBe(0)
    const json = await run(["etcdctl", `--endpoints=${endpoint}`, "-w", "json", "endpoint", "status"])
    expect(JSON.parse(json.out)[0].Endpoint).toBe(endpoint)
    const defrag = await run(["etcdctl", `--endpoints=${endpoint}`, "defrag"])
    expect(defrag.out).toBe(`Finished defragmenting etcd member[${endpoint}]\n`)
    const hashkv = await run(["etcdctl", `--endpoints=${endpoint}`, "endpoint", "hashkv"])
    expect(hashkv.out).toBe(`${endpoint}, 1234567\n`)
    expect(authorities).toContain(`http://127.0.0.1:${listener.port}`)
  })

  test("TLS https:// with --cacert: endpoint status and defrag succeed", async () => {
    const { listener, authorities } = await start("https://127.0.0.1:0", true)
    const endpoint = `https://127.0.0.1:${listener.port}`
    const status = await run(["etcdctl", `--endpoints=${endpoint}`, `--cacert=${certs.ca}`, "endpoint", "status"])
    expect(status.out).toBe(`${endpoint}, 8e9e05c52164694d, 3.4.23, 20 kB, true, false, 2, 9, 9, \n`)
    const defrag = await run(["etcdctl", `--endpoints=${endpoint}`, `--cacert=${certs.ca}`, "defrag"])
    expect(defrag.out).toBe(`Finished defragmenting etcd member[${endpoint}]\n`)
    // over TLS grpc-go sends the certificate's server name as :authority: which is also what the handler sees
    expect(authorities).toEqual(["127.0.0.1", "127.0.0.1"])
  })

  test("TLS with a client certificate: calls whose :authority is a URL see the client's CN and address", async () => {
    const server = new GrpcServer()
    const calls: { cn: string | undefined; remote: string | undefined; authority: unknown }[] = []
    server.addUnary(Echo, (request, call) => {
      calls.push({ cn: call.peerCommonName, remote: call.remoteAddress, authority: call.metadata[":authority"] })
      return request
    })
    const mtls = { key: readFileSync(certs.key), cert: readFileSync(certs.cert), ca: readFileSync(certs.ca), requestCert: true, rejectUnauthorized: true }
    const listener = await ClientListener.listen({ url: "https://127.0.0.1:0", grpc: server, tls: mtls })
    members.push({ listener, server, authorities: [] })
    const socket = tls.connect({
      host: "127.0.0.1",
      port: listener.port,
      ALPNProtocols: ["h2"],
      ca: readFileSync(certs.ca),
      cert: readFileSync(certs.clientCert),
      key: readFileSync(certs.clientKey),
    })
    try {
      await new Promise<void>((resolve) => socket.once("secureConnect", () => resolve()))
      const result = await rawCalls({ socket, requests: 20, authority: () => `https://127.0.0.1:${listener.port}` })
      expect(result.resets).toEqual([])
      expect(result.responses).toBe(20)
      expect(calls.length).toBe(20)
      for (const call of calls) expect(call).toEqual({ cn: "root", remote: "127.0.0.1", authority: `https://127.0.0.1:${listener.port}` })
    } finally {
      socket.destroy()
    }
  })

  test("unix:// socket: endpoint status and defrag succeed", async () => {
    const path = join(dir.path, "client.sock")
    const { authorities } = await start(`unix://${path}`)
    const endpoint = `unix://${path}`
    const status = await run(["etcdctl", `--endpoints=${endpoint}`, "endpoint", "status"])
    expect(status.out).toBe(`${endpoint}, 8e9e05c52164694d, 3.4.23, 20 kB, true, false, 2, 9, 9, \n`)
    const defrag = await run(["etcdctl", `--endpoints=${endpoint}`, "defrag"])
    expect(defrag.out).toBe(`Finished defragmenting etcd member[${endpoint}]\n`)
    expect(authorities).toEqual([endpoint, endpoint])
  })
})
