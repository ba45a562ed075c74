import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import * as net from "node:net"
import * as tls from "node:tls"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { tempDir } from "../../../../test/support/tmp"
import { MaintenanceService } from "../../../pb"
import { frameMessage } from "./framing"
import { GrpcServer, type MethodDescriptor } from "./grpc_server"
import { huffmanDecode, huffmanEncode } from "./hpack_huffman"
import { ClientListener, HTTP2_ENGINES, type Http2Engine } from "./listener"
import { AuthorityRewriter, AuthorityRewritingSocket, FRAME_PAYLOAD_MAX, authorityAcceptable, handOffHttp2, rewriteHeaderBlock, rewriteHeaderFrames, sanitizeAuthority } from "./authority_rewriter"

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

/** A minimal reference HPACK decoder (RFC 7541) with a dynamic table, to check what a server would see. */
class ReferenceDecoder {
  private static readonly staticNames = [":authority", ":method", ":method", ":path", ":path", ":scheme", ":scheme"]
  private static readonly staticValues = ["", "GET", "POST", "/", "/index.html", "http", "https"]
  readonly table: Field[] = []
  size = 0

  decode(block: Uint8Array): Field[] {
    const out: Field[] = []
    let pos = 0
    const int = (n: number): number => {
      const max = (1 << n) - 1
      let v = block[pos++]! & max
      if (v < max) return v
      for (let shift = 0; ; shift += 7) {
        const b = block[pos++]!
        v += (b & 0x7f) * 2 ** shift
        if ((b & 0x80) === 0) return v
      }
    }
    const str = (): string => {
      const huffman = (block[pos]! & 0x80) !== 0
      const length = int(7)
      const bytes = block.subarray(pos, pos + length)
      pos += length
      return new TextDecoder().decode(huffman ? huffmanDecode(bytes)! : bytes)
    }
    const entry = (index: number): Field => {
      if (index <= 7) return { name: ReferenceDecoder.staticNames[index - 1]!, value: ReferenceDecoder.staticValues[index - 1]! }
      const field = this.table[index - 62]
      if (field === undefined) throw new Error(`index ${index} not in the tables`)
      return field
    }
    while (pos < block.length) {
      const b = block[pos]!
      if ((b & 0x80) !== 0) {
        out.push(entry(int(7)))
      } else if ((b & 0xe0) === 0x20) {
        int(5)
      } else {
        const incremental = (b & 0x40) !== 0
        const index = int(incremental ? 6 : 4)
        const name = index === 0 ? str() : entry(index).name
        const field = { name, value: str() }
        out.push(field)
        if (incremental) {
          this.table.unshift(field)
          this.size += field.name.length + field.value.length + 32
          while (this.size > 4096) {
            const evicted = this.table.pop()!
            this.size -= evicted.name.length + evicted.value.length + 32
          }
        }
      }
    }
    return out
  }
}

test("authorityAcceptable() and sanitizeAuthority() keep host:port and map '/' and the like to '.' at the same length", () => {
  expect(authorityAcceptable(utf8("127.0.0.1:2379"))).toBe(true)
  expect(authorityAcceptable(utf8("[::1]:2379"))).toBe(true)
  expect(authorityAcceptable(utf8("http://127.0.0.1:2379"))).toBe(false)
  expect(new TextDecoder().decode(sanitizeAuthority(utf8("http://127.0.0.1:2379")))).toBe("http:..127.0.0.1:2379")
  expect(new TextDecoder().decode(sanitizeAuthority(utf8("/run/etcd d@x?#")))).toBe(".run.etcd.d.x..")
})

test("rewriteHeaderBlock() rewrites a raw :authority literal with incremental indexing (static name index 1)", () => {
  const block = Uint8Array.from([0x83, 0x86, ...literal({ kind: 0x40, nameIndex: 1, value: "http://127.0.0.1:2379", huffman: false }), 0x84])
  const out = rewriteHeaderBlock(block)!
  expect(new ReferenceDecoder().decode(out)).toEqual([
    { name: ":method", value: "POST" },
    { name: ":scheme", value: "http" },
    { name: ":authority", value: "http:..127.0.0.1:2379" },
    { name: ":path", value: "/" },
  ])
  expect(out.length).toBe(block.length)
})

test("rewriteHeaderBlock() decodes a Huffman-coded value and writes the replacement raw, same decoded length", () => {
  const block = Uint8Array.from(literal({ kind: 0x40, nameIndex: 1, value: "http://127.0.0.1:23790", huffman: true }))
  const out = rewriteHeaderBlock(block)!
  expect(out[1]).toBe(22) // raw (H bit clear), 22 octets
  expect(new ReferenceDecoder().decode(out)).toEqual([{ name: ":authority", value: "http:..127.0.0.1:23790" }])
})

test("rewriteHeaderBlock() finds :authority as a literal name (raw or Huffman) in every literal form", () => {
  for (const kind of [0x40, 0x00, 0x10] as const) {
    for (const huffman of [false, true]) {
      const block = Uint8Array.from([
        ...literal({ kind, name: "x-other", value: "a/b", huffman }),
        ...literal({ kind, name: ":authority", value: "/tmp/etcd.sock", huffman }),
      ])
      const out = rewriteHeaderBlock(block)!
      expect(new ReferenceDecoder().decode(out)).toEqual([
        { name: "x-other", value: "a/b" },
        { name: ":authority", value: ".tmp.etcd.sock" },
      ])
    }
  }
})

test("rewriteHeaderBlock() leaves acceptable, empty and non-authority fields, and malformed blocks alone", () => {
  expect(rewriteHeaderBlock(Uint8Array.from(literal({ kind: 0x40, nameIndex: 1, value: "127.0.0.1:2379", huffman: true })))).toBeUndefined()
  expect(rewriteHeaderBlock(Uint8Array.from(literal({ kind: 0x00, nameIndex: 1, value: "", huffman: false })))).toBeUndefined()
  expect(rewriteHeaderBlock(Uint8Array.from(literal({ kind: 0x40, nameIndex: 4, value: "/etcdserverpb.KV/Range", huffman: false })))).toBeUndefined()
  expect(rewriteHeaderBlock(Uint8Array.from([0xbe, 0x3f, 0xe1, 0x1f]))).toBeUndefined() // indexed 62, table size update 4096
  const good = literal({ kind: 0x40, nameIndex: 1, value: "http://h:1", huffman: false })
  expect(rewriteHeaderBlock(Uint8Array.from(good.slice(0, -3)))).toBeUndefined() // truncated string
  expect(rewriteHeaderBlock(Uint8Array.from([0x41, 0x85, 0xff, 0xff, 0xff, 0xff, 0xff]))).toBeUndefined() // bad Huffman (EOS)
  expect(rewriteHeaderBlock(Uint8Array.from([0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]))).toBeUndefined() // runaway integer
})

test("rewriteHeaderFrames() drops padding, keeps PRIORITY fields and END_STREAM, and joins CONTINUATION frames", () => {
  const block = [0x83, ...literal({ kind: 0x40, nameIndex: 1, value: "http://h:1", huffman: true }), 0x84]
  const priority = [0x80, 0, 0, 3, 200]
  const padded = frame({ type: 1, flags: 0x1 | 0x4 | 0x8 | 0x20, streamId: 5, payload: [4, ...priority, ...block, 0, 0, 0, 0] })
  const out = Buffer.from(rewriteHeaderFrames(padded)!)
  expect(out[3]).toBe(1)
  expect(out[4]).toBe(0x1 | 0x4 | 0x20)
  expect(out.readUInt32BE(5)).toBe(5)
  expect([...out.subarray(9, 14)]).toEqual(priority)
  expect(out.readUIntBE(0, 3)).toBe(out.length - 9)
  expect(new ReferenceDecoder().decode(out.subarray(14))).toEqual([
    { name: ":method", value: "POST" },
    { name: ":authority", value: "http:..h:1" },
    { name: ":path", value: "/" },
  ])
  // the same block across HEADERS + 2 CONTINUATION frames
  const split = Buffer.concat([
    frame({ type: 1, flags: 0, streamId: 7, payload: block.slice(0, 3) }),
    frame({ type: 9, flags: 0, streamId: 7, payload: block.slice(3, 6) }),
    frame({ type: 9, flags: 0x4, streamId: 7, payload: block.slice(6) }),
  ])
  const joined = Buffer.from(rewriteHeaderFrames(split)!)
  expect(joined[4]).toBe(0x4)
  expect(joined.length).toBe(9 + joined.readUIntBE(0, 3))
  expect(new ReferenceDecoder().decode(joined.subarray(9))[1]).toEqual({ name: ":authority", value: "http:..h:1" })
})

test("rewriteHeaderFrames() splits a block grown past 16384 bytes into CONTINUATION frames", () => {
  // a Huffman-coded authority of 7001 bytes (about 4400 coded) goes out raw: the block passes 16384
  const big = "x".repeat(10_000)
  const block = [
    ...literal({ kind: 0x00, name: "x-big", value: big, huffman: false }),
    ...literal({ kind: 0x00, nameIndex: 1, value: "a".repeat(7000) + "/", huffman: true }),
  ]
  const frames = frame({ type: 1, flags: 0x4 | 0x1, streamId: 1, payload: block })
  const out = Buffer.from(rewriteHeaderFrames(frames)!)
  const fragments: Buffer[] = []
  const types: number[] = []
  for (let pos = 0; pos < out.length; ) {
    const length = out.readUIntBE(pos, 3)
    expect(length).toBeLessThanOrEqual(FRAME_PAYLOAD_MAX)
    types.push(out[pos + 3]!)
    if (pos + 9 + length === out.length) expect(out[pos + 4]! & 0x4).toBe(0x4)
    else expect(out[pos + 4]! & 0x4).toBe(0)
    fragments.push(out.subarray(pos + 9, pos + 9 + length))
    pos += 9 + length
  }
  expect(types).toEqual([1, 9])
  expect(out[4]! & 0x1).toBe(0x1)
  const fields = new ReferenceDecoder().decode(Buffer.concat(fragments))
  expect(fields[1]).toEqual({ name: ":authority", value: "a".repeat(7000) + "." })
})

/** A connection's client bytes: preface, SETTINGS, then a HEADERS + DATA per request. */
function clientStream(authorities: string[], huffman: boolean): { input: Buffer; expected: Buffer } {
  const settings = frame({ type: 4, flags: 0, streamId: 0, payload: [0, 4, 0, 0, 0xff, 0xff] })
  const parts: Buffer[] = [PREFACE, settings]
  const expected: Buffer[] = [PREFACE, settings]
  authorities.forEach((authority, i) => {
    const streamId = 2 * i + 1
    const block = Uint8Array.from([0x83, ...literal({ kind: 0x00, nameIndex: 1, value: authority, huffman }), 0x84])
    const headers = frame({ type: 1, flags: 0x4, streamId, payload: block })
    const data = frame({ type: 0, flags: 0x1, streamId, payload: Buffer.alloc(40, i) })
    parts.push(headers, data)
    const rewritten = rewriteHeaderFrames(headers)
    expected.push(rewritten === undefined ? headers : Buffer.from(rewritten), data)
  })
  return { input: Buffer.concat(parts), expected: Buffer.concat(expected) }
}

test("AuthorityRewriter gives the same bytes however the input is split into chunks", () => {
  const { input, expected } = clientStream(["http://127.0.0.1:2379", "127.0.0.1:2379", "/tmp/x.sock"], true)
  expect(expected.equals(input)).toBe(false)
  const run = (chunks: Buffer[]): Buffer => {
    const out: Buffer[] = []
    const rewriter = new AuthorityRewriter((chunk) => out.push(Buffer.from(chunk)))
    for (const chunk of chunks) rewriter.push(chunk)
    expect(rewriter.rewrites).toBe(2)
    return Buffer.concat(out)
  }
  expect(run([input]).equals(expected)).toBe(true)
  expect(run([...input].map((b) => Buffer.from([b]))).equals(expected)).toBe(true)
  for (let cut = 1; cut < input.length; cut++) expect(run([input.subarray(0, cut), input.subarray(cut)]).equals(expected)).toBe(true)
  for (let a = 1; a < input.length; a += 7) {
    for (let b = a + 1; b < input.length; b += 5) expect(run([input.subarray(0, a), input.subarray(a, b), input.subarray(b)]).equals(expected)).toBe(true)
  }
})

test("AuthorityRewriter passes a chunk with nothing to rewrite on as the same Buffer (no copy)", () => {
  const { input, expected } = clientStream(["127.0.0.1:2379", "localhost:2379"], true)
  expect(expected.equals(input)).toBe(true)
  const out: Buffer[] = []
  const rewriter = new AuthorityRewriter((chunk) => out.push(chunk))
  const first = input.subarray(0, 39) // preface and SETTINGS
  const second = input.subarray(39)
  rewriter.push(first)
  rewriter.push(second)
  const large = frame({ type: 0, flags: 0, streamId: 1, payload: Buffer.alloc(100_000) })
  rewriter.push(large)
  expect(out).toEqual([first, second, large])
  expect(out[1]).toBe(second)
  expect(out[2]).toBe(large)
})

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

/** What a handler sees as :authority: the rewriter's sanitised form on Bun's engine, the client's own on ours. */
const seenAuthority = (engine: Http2Engine, sent: string): string => (engine === "bun" ? Buffer.from(sanitizeAuthority(Buffer.from(sent))).toString("latin1") : sent)

for (const engine of HTTP2_ENGINES) test(`[${engine}] the HPACK table stays in step over many requests whose :authority is indexed, evicted and sent again`, async () => {
  const server = new GrpcServer()
  const seen: { authority: unknown; timeout: unknown; body: number }[] = []
  server.addUnary(Echo, (request, call) => {
    seen.push({ authority: call.metadata[":authority"], timeout: call.metadata["grpc-timeout"], body: request[0] ?? -1 })
    return request
  })
  const listener = await ClientListener.listen({ url: "http://127.0.0.1:0", grpc: server, http2: { engine } })
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
      expect(call.authority).toBe(seenAuthority(engine, authority(i)))
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

for (const engine of HTTP2_ENGINES) describe(`[${engine}] etcdctl 3.4 with a URL endpoint (:authority is the URL)`, () => {
  const dir = tempDir("tskv-authority-")
  let certs: Certs
  const members: { listener: ClientListener; server: GrpcServer; authorities: unknown[] }[] = []

  const start = async (url: string, tls?: boolean): Promise<{ listener: ClientListener; authorities: unknown[] }> => {
    const { server, authorities } = maintenanceServer()
    const tlsOptions = tls === true ? { tls: { key: readFileSync(certs.key), cert: readFileSync(certs.cert) } } : {}
    const listener = await ClientListener.listen({ url, grpc: server, ...tlsOptions, http2: { engine } })
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
    expect(authorities).toContain(seenAuthority(engine, `http://127.0.0.1:${listener.port}`))
  })

  test("TLS https:// with --cacert: endpoint status and defrag succeed", async () => {
    const { listener, authorities } = await start("https://127.0.0.1:0", true)
    const endpoint = `https://127.0.0.1:${listener.port}`
    const status = await run(["etcdctl", `--endpoints=${endpoint}`, `--cacert=${certs.ca}`, "endpoint", "status"])
    expect(status.out).toBe(`${endpoint}, 8e9e05c52164694d, 3.4.23, 20 kB, true, false, 2, 9, 9, \n`)
    const defrag = await run(["etcdctl", `--endpoints=${endpoint}`, `--cacert=${certs.ca}`, "defrag"])
    expect(defrag.out).toBe(`Finished defragmenting etcd member[${endpoint}]\n`)
    // over TLS grpc-go sends the certificate's server name as :authority: the calls pass through the rewriter unchanged
    expect(authorities).toEqual(["127.0.0.1", "127.0.0.1"])
  })

  test("TLS with a client certificate: rewritten calls still see the client's CN and address", async () => {
    const server = new GrpcServer()
    const calls: { cn: string | undefined; remote: string | undefined; authority: unknown }[] = []
    server.addUnary(Echo, (request, call) => {
      calls.push({ cn: call.peerCommonName, remote: call.remoteAddress, authority: call.metadata[":authority"] })
      return request
    })
    const mtls = { key: readFileSync(certs.key), cert: readFileSync(certs.cert), ca: readFileSync(certs.ca), requestCert: true, rejectUnauthorized: true }
    const listener = await ClientListener.listen({ url: "https://127.0.0.1:0", grpc: server, tls: mtls, http2: { engine } })
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
      for (const call of calls) expect(call).toEqual({ cn: "root", remote: "127.0.0.1", authority: seenAuthority(engine, `https://127.0.0.1:${listener.port}`) })
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
    expect(authorities).toEqual([seenAuthority(engine, endpoint), seenAuthority(engine, endpoint)])
  })
})

// --- handOffHttp2(): the native socket unless the first header block needs a rewrite ---

interface HandOff {
  client: net.Socket
  /** What the client receives from the server side before the hand-off. */
  fromServer: () => Buffer
  ready: Promise<{ socket: net.Socket | AuthorityRewritingSocket; bytes: () => Buffer }>
  close(): void
}

async function handOffPair(decideWithinMs = 1000): Promise<HandOff> {
  let resolveReady: (value: { socket: net.Socket | AuthorityRewritingSocket; bytes: () => Buffer }) => void = () => {}
  const ready = new Promise<{ socket: net.Socket | AuthorityRewritingSocket; bytes: () => Buffer }>((resolve) => (resolveReady = resolve))
  const accepted: net.Socket[] = []
  const server = net.createServer((socket) => {
    accepted.push(socket)
    handOffHttp2({
      socket,
      decideWithinMs,
      onReady: (handed) => {
        const got: Buffer[] = []
        handed.on("data", (chunk: Buffer) => got.push(chunk))
        resolveReady({ socket: handed, bytes: () => Buffer.concat(got) })
      },
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()))
  const client = net.connect((server.address() as net.AddressInfo).port, "127.0.0.1")
  const received: Buffer[] = []
  client.on("data", (chunk: Buffer) => received.push(chunk))
  await new Promise<void>((resolve) => client.once("connect", () => resolve()))
  return {
    client,
    fromServer: () => Buffer.concat(received),
    ready,
    close: () => {
      client.destroy()
      for (const socket of accepted) socket.destroy()
      server.close()
    },
  }
}

const SETTINGS = frame({ type: 4, flags: 0, streamId: 0, payload: [0, 4, 0, 0, 0xff, 0xff] })
const SETTINGS_ACK = frame({ type: 4, flags: 1, streamId: 0, payload: [] })
const headersWith = (authority: string): Buffer =>
  frame({ type: 1, flags: 0x4 | 0x1, streamId: 1, payload: [0x83, ...literal({ kind: 0x40, nameIndex: 1, value: authority, huffman: true }), 0x84] })

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await Bun.sleep(5)
}

test("handOffHttp2() gives Bun the socket itself when the first request's :authority is fine (no SETTINGS of its own)", async () => {
  const pair = await handOffPair()
  try {
    const sent = Buffer.concat([PREFACE, SETTINGS, headersWith("127.0.0.1:2379")])
    pair.client.write(sent)
    const { socket, bytes } = await pair.ready
    expect(socket).not.toBeInstanceOf(AuthorityRewritingSocket)
    await until(() => bytes().length >= sent.length)
    expect(bytes().equals(sent)).toBe(true)
    expect(pair.fromServer().length).toBe(0)
  } finally {
    pair.close()
  }
})

test("handOffHttp2() answers a waiting client (grpc-go) with an empty SETTINGS and removes its ACK", async () => {
  for (const [authority, rewritten] of [["127.0.0.1:2379", false], ["http://127.0.0.1:2379", true]] as const) {
    const pair = await handOffPair()
    try {
      pair.client.write(Buffer.concat([PREFACE, SETTINGS]))
      await until(() => pair.fromServer().length >= 9)
      expect(pair.fromServer().equals(frame({ type: 4, flags: 0, streamId: 0, payload: [] }))).toBe(true)
      const headers = headersWith(authority)
      pair.client.write(Buffer.concat([SETTINGS_ACK, headers]))
      const { socket, bytes } = await pair.ready
      expect(socket instanceof AuthorityRewritingSocket).toBe(rewritten)
      const expected = Buffer.concat([PREFACE, SETTINGS, rewritten ? Buffer.from(rewriteHeaderFrames(headers)!) : headers])
      await until(() => bytes().length >= expected.length)
      expect(bytes().equals(expected)).toBe(true)
    } finally {
      pair.close()
    }
  }
})

test("handOffHttp2() lets the rewriter drop the ACK that comes after the first request", async () => {
  const pair = await handOffPair()
  try {
    pair.client.write(Buffer.concat([PREFACE, SETTINGS]))
    await until(() => pair.fromServer().length >= 9)
    const headers = headersWith("127.0.0.1:2379")
    pair.client.write(headers)
    const { socket, bytes } = await pair.ready
    expect(socket).toBeInstanceOf(AuthorityRewritingSocket)
    const ping = frame({ type: 6, flags: 0, streamId: 0, payload: Buffer.alloc(8, 1) })
    pair.client.write(Buffer.concat([SETTINGS_ACK, ping, SETTINGS_ACK]))
    const expected = Buffer.concat([PREFACE, SETTINGS, headers, ping, SETTINGS_ACK])
    await until(() => bytes().length >= expected.length)
    expect(bytes().equals(expected)).toBe(true)
  } finally {
    pair.close()
  }
})

test("handOffHttp2() hands a client without a request in time to the rewriter", async () => {
  const pair = await handOffPair(50)
  try {
    pair.client.write(Buffer.concat([PREFACE, SETTINGS]))
    const { socket } = await pair.ready
    expect(socket).toBeInstanceOf(AuthorityRewritingSocket)
  } finally {
    pair.close()
  }
})
