// Bad input against the running binary, side by side with real etcd 3.4: each
// case must get etcd's error (same gRPC code and text, same etcdctl output),
// and the member must go on serving the next request.

import { afterAll, beforeAll, expect, test } from "bun:test"
import { Client, credentials, Metadata, type ServiceError } from "@grpc/grpc-js"
import { connect } from "node:net"
import { EtcdClient } from "../../src/client"
import { utf8 } from "../../src/lib/bytes"
import { etcdctl, hasEtcd, type MemberProcess, startMember } from "../support/procs"

type Kind = "etcd" | "tskv"
const members = {} as Record<Kind, MemberProcess>
const kinds: Kind[] = ["etcd", "tskv"]

beforeAll(async () => {
  if (!hasEtcd()) throw new Error("etcd 3.4 (/usr/bin/etcd, etcdctl) is required")
  for (const kind of kinds) members[kind] = await startMember({ kind, name: `bad-${kind}` })
}, 60_000)
afterAll(async () => {
  for (const kind of kinds) await members[kind]?.stop()
})

const host = (kind: Kind): string => members[kind].clientUrl.replace("http://", "")

/** etcdctl's output with its client-side retry log lines (JSON) removed. */
function ctl(kind: Kind, args: string[], input?: string): { code: number; stdout: string; stderr: string } {
  const r = etcdctl(host(kind), args, input)
  const stderr = r.stderr
    .split("\n")
    .filter((l) => !l.startsWith("{"))
    .join("\n")
  return { code: r.code, stdout: r.stdout, stderr }
}

/** Runs the same etcdctl command on both; they must print the same; returns etcd's. */
function same(args: string[], input?: string): { code: number; stdout: string; stderr: string } {
  const [etcd, tskv] = kinds.map((k) => ctl(k, args, input)) as [ReturnType<typeof ctl>, ReturnType<typeof ctl>]
  expect(tskv).toEqual(etcd)
  return etcd
}

async function stillServes(kind: Kind = "tskv"): Promise<void> {
  const key = `alive/${Math.random()}`
  expect(ctl(kind, ["put", key, "v"]).stdout).toBe("OK\n")
  expect(ctl(kind, ["get", key, "--print-value-only"]).stdout).toBe("v\n")
}

async function clientError(kind: Kind, call: (c: EtcdClient) => Promise<unknown>): Promise<string> {
  const client = new EtcdClient({ endpoints: [members[kind].clientUrl], callTimeoutMs: 5000 })
  try {
    await call(client)
    return "no error"
  } catch (e) {
    const err = e as { grpcCode?: number; code?: unknown; message: string }
    return `${String(err.grpcCode ?? err.code)} ${err.message}`
  } finally {
    client.close()
  }
}

test("a put over --max-request-bytes: 'etcdserver: request is too large'", async () => {
  const value = "x".repeat(1_600_000)
  const r = same(["put", "big"], value)
  expect(r.stderr).toBe("Error: etcdserver: request is too large\n")
  await stillServes()
})

test("a request beyond the gRPC receive limit (max-request-bytes + 512 KiB): ResourceExhausted, as etcd", async () => {
  // etcdctl refuses to send over 2 MiB itself; src/client has no send limit.
  const value = new Uint8Array(2_200_000).fill(0x78)
  const [etcd, tskv] = await Promise.all(kinds.map((k) => clientError(k, (c) => c.kv.put({ key: utf8("huge"), value }))))
  expect(tskv).toBe(etcd as string)
  expect(etcd).toBe("8 RESOURCE_EXHAUSTED: grpc: received message larger than max (2200011 vs. 2097152)")
  await stillServes()
})

test("too many operations in a txn (> 128)", async () => {
  const ops = Array.from({ length: 129 }, (_, i) => `put t${i} v`).join("\n")
  const r = same(["txn"], `\n${ops}\n\n\n`)
  expect(r.stderr).toBe("Error: etcdserver: too many operations in txn request\n")
  await stillServes()
})

test("an empty key: 'etcdserver: key is not provided' (InvalidArgument) through src/client", async () => {
  const [etcd, tskv] = await Promise.all(kinds.map((k) => clientError(k, (c) => c.kv.put({ key: new Uint8Array(0), value: utf8("v") }))))
  expect(tskv).toBe(etcd as string)
  expect(etcd).toContain("etcdserver: key is not provided")
  const [etcdRange, tskvRange] = await Promise.all(kinds.map((k) => clientError(k, (c) => c.kv.range({ key: new Uint8Array(0) }))))
  expect(tskvRange).toBe(etcdRange as string)
  await stillServes()
})

test("future and compacted revisions", async () => {
  for (const kind of kinds) {
    for (let i = 0; i < 5; i++) ctl(kind, ["put", "rev", `v${i}`])
  }
  const future = same(["get", "rev", "--rev=100000"])
  expect(future.stderr).toBe("Error: etcdserver: mvcc: required revision is a future revision\n")
  for (const kind of kinds) {
    const rev = JSON.parse(ctl(kind, ["get", "rev", "-w", "json"]).stdout).header.revision as number
    expect(ctl(kind, ["compaction", String(rev - 1)]).code).toBe(0)
  }
  const compacted = same(["get", "rev", "--rev=2"])
  expect(compacted.stderr).toBe("Error: etcdserver: mvcc: required revision has been compacted\n")
  const again = same(["compaction", "2"])
  expect(again.stderr).toBe("Error: etcdserver: mvcc: required revision has been compacted\n")
  await stillServes()
})

test("an unknown lease: put, revoke, keep-alive, timetolive", async () => {
  const put = same(["put", "k", "v", "--lease=1234abcd"])
  expect(put.stderr).toBe("Error: etcdserver: requested lease not found\n")
  const revoke = same(["lease", "revoke", "1234abcd"])
  expect(revoke.stderr).toBe("Error: failed to revoke lease (etcdserver: requested lease not found)\n")
  same(["lease", "timetolive", "1234abcd"])
  expect(same(["lease", "keep-alive", "--once", "1234abcd"]).stderr).toBe("Error: etcdserver: requested lease not found\n")
  const [etcd, tskv] = await Promise.all(kinds.map((k) => clientError(k, (c) => c.lease.leaseRevoke({ ID: 0x1234abcdn }))))
  expect(tskv).toBe(etcd as string)
  await stillServes()
})

/** Writes raw bytes to the client port; returns what came back before the server closed (or 1 s passed). */
async function rawExchange(kind: Kind, bytes: Uint8Array): Promise<string> {
  return await new Promise((resolve) => {
    const socket = connect(members[kind].clientPort, "127.0.0.1")
    let got = ""
    const done = (): void => {
      socket.destroy()
      resolve(got)
    }
    const timer = setTimeout(done, 1000)
    socket.on("data", (d) => (got += d.toString("latin1")))
    socket.on("close", () => {
      clearTimeout(timer)
      done()
    })
    socket.on("error", () => {})
    socket.write(bytes)
  })
}

test("HTTP/1 junk on the client port: the connection is closed (tskv: after a 400), the member keeps serving", async () => {
  const junk = utf8("HELLO THERE \x01\x02\x03\r\n\r\n")
  const [etcd, tskv] = await Promise.all(kinds.map((k) => rawExchange(k, junk)))
  // etcd's connection multiplexer drops what it cannot classify; tskv's HTTP/1 parser answers 400 and closes.
  expect(etcd).toBe("")
  expect(tskv).toBe("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
  const get = utf8("GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n")
  const [etcdGet, tskvGet] = await Promise.all(kinds.map((k) => rawExchange(k, get)))
  expect(etcdGet).toStartWith("HTTP/1.1 404 Not Found\r\n")
  expect(tskvGet).toStartWith("HTTP/1.1 404 Not Found\r\n")
  await stillServes()
  await stillServes("etcd")
})

test("a broken HTTP/2 preface and garbage frames: the connection is closed, the member keeps serving", async () => {
  const preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
  const broken = utf8("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n")
  const garbageFrames = new Uint8Array([...utf8(preface), 0xff, 0xff, 0xff, 0x99, 0x00, 0x7f, 0xff, 0xff, 0xff, 1, 2, 3])
  for (const bytes of [broken, garbageFrames]) {
    await Promise.all(kinds.map((k) => rawExchange(k, bytes)))
    await stillServes()
  }
})

function rawUnary(kind: Kind, path: string, body: Uint8Array): Promise<{ code: number; details: string }> {
  const client = new Client(host(kind), credentials.createInsecure())
  const identity = (b: Buffer): Buffer => b
  return new Promise((resolve) => {
    client.makeUnaryRequest(path, identity, identity, Buffer.from(body), new Metadata(), {}, (err: ServiceError | null) => {
      client.close()
      resolve(err ? { code: err.code, details: err.details } : { code: 0, details: "" })
    })
  })
}

test("a malformed protobuf request gets the same gRPC status as etcd 3.4", async () => {
  // Field 1 (key) claims 255 bytes but the message ends: a truncated length-delimited field.
  const truncated = new Uint8Array([0x0a, 0xff, 0x01, 0x61])
  // Wire type 7 does not exist.
  const badWireType = new Uint8Array([0x0f, 0x00])
  for (const body of [truncated, badWireType]) {
    for (const path of ["/etcdserverpb.KV/Put", "/etcdserverpb.KV/Range"]) {
      const [etcd, tskv] = await Promise.all(kinds.map((k) => rawUnary(k, path, body)))
      expect(etcd?.code).not.toBe(0)
      // Same code (INTERNAL) and prefix; the decoder's own words after it differ (Go's proto vs tskv's pb).
      expect({ path, ...tskv }).toEqual({ path, code: etcd?.code as number, details: expect.stringMatching(/^grpc: error unmarshalling request: /) })
      expect(etcd?.details).toStartWith("grpc: error unmarshalling request: ")
    }
  }
  await stillServes()
})

test("more refused requests print what etcd prints: duplicate txn keys, ignore-value on a missing key, huge lease TTL, lease with ignore-lease", async () => {
  const dup = same(["txn"], "\nput d 1\nput d 2\n\n\n")
  expect(dup.stderr).toBe("Error: etcdserver: duplicate key given in txn request\n")
  const ignoreValue = same(["put", "missing-key", "--ignore-value"])
  expect(ignoreValue.stderr).toBe("Error: etcdserver: key not found\n")
  const ttl = same(["lease", "grant", "9000000001"])
  expect(ttl.stderr).toBe("Error: failed to grant lease (etcdserver: too large lease TTL)\n")
  same(["put", "k", "--ignore-lease", "--lease=1234abcd", "v"])
  await stillServes()
})

test("a watch from a compacted revision is cancelled with etcd's words", async () => {
  for (const kind of kinds) {
    for (let i = 0; i < 3; i++) ctl(kind, ["put", "w", `v${i}`])
    const rev = JSON.parse(ctl(kind, ["get", "w", "-w", "json"]).stdout).header.revision as number
    expect(ctl(kind, ["compaction", String(rev)]).code).toBe(0)
  }
  const r = same(["watch", "w", "--rev=2"])
  expect(r.stdout + r.stderr).toContain("required revision has been compacted")
  await stillServes()
})
