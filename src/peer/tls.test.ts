import { afterAll, afterEach, beforeAll, expect, test } from "bun:test"
import { rmSync } from "node:fs"
import { join } from "node:path"
import { MessageType, type Message } from "../raft/types"
import type { PeerTlsOptions } from "./transport"
import { appMessage, heartbeat, makePki, startMember, stopMembers, tempDir, waitFor, type TestMember, type TestPki } from "./testing"

const A = 0xa1n
const B = 0xb2n
let members: TestMember[] = []
let dir = ""
let pki: TestPki
let otherPki: TestPki

beforeAll(() => {
  dir = tempDir("tskv-peer-tls-")
  pki = makePki(dir, "cluster")
  otherPki = makePki(dir, "other")
})

afterAll(() => rmSync(dir, { recursive: true, force: true }))

afterEach(async () => {
  await stopMembers(...members)
  members = []
})

function mtls(identity: TestPki, trusted: string): PeerTlsOptions {
  return {
    server: () => ({ key: identity.key, cert: identity.cert, ca: trusted, requestCert: true, rejectUnauthorized: true }),
    client: () => ({ key: identity.key, cert: identity.cert, ca: trusted }),
  }
}

async function tlsMember(id: bigint, tls: PeerTlsOptions, snapshotDir?: string): Promise<TestMember> {
  const m = await startMember(id, { listenUrls: ["https://127.0.0.1:0"], tls, ...(snapshotDir ? { snapshotDir } : {}) })
  members.push(m)
  return m
}

test("PeerTransport over mutual TLS delivers messages, calls and snapshots", async () => {
  const a = await tlsMember(A, mtls(pki, pki.ca))
  const b = await tlsMember(B, mtls(pki, pki.ca))
  expect(a.url.startsWith("https://127.0.0.1:")).toBe(true)
  a.transport.addPeer(B, [b.url])
  b.transport.addPeer(A, [a.url])
  for (let i = 1; i <= 50; i++) a.transport.send([appMessage({ from: A, to: B, index: i })])
  a.transport.send([heartbeat(A, B, 7)])
  await waitFor(() => b.received.length === 51)
  expect(b.received.filter((m) => m.type === MessageType.App).map((m) => m.entries[0]!.index)).toEqual(
    Array.from({ length: 50 }, (_, i) => i + 1),
  )
  b.transport.handle("ping", (p) => p)
  expect([...(await a.transport.call(B, "ping", new Uint8Array([5]), 2000))]).toEqual([5])
  const dbPath = join(a.dir, "db")
  await Bun.write(dbPath, new Uint8Array(3 * 1024 * 1024).fill(7))
  const snap: Message = {
    ...heartbeat(A, B, 0),
    type: MessageType.Snap,
    snapshot: { metadata: { index: 10, term: 1, confState: { voters: [A, B], learners: [] } }, data: new Uint8Array() },
  }
  await a.transport.sendSnapshot(snap, dbPath)
  expect(b.snapshots.length).toBe(1)
  const result = await a.transport.callUrl(b.url, "ping", new Uint8Array([6]), 2000)
  expect([...result.payload]).toEqual([6])
}, 20_000)

test("a peer presenting a certificate from another CA cannot connect", async () => {
  const b = await tlsMember(B, mtls(pki, pki.ca))
  // The intruder trusts the cluster CA (so it would accept b's certificate) but its own certificate is from another CA.
  const intruder = await tlsMember(A, mtls(otherPki, pki.ca), undefined)
  intruder.transport.addPeer(B, [b.url])
  intruder.transport.send([heartbeat(A, B, 1)])
  await waitFor(() => intruder.unreachable.length >= 2, 5000, "unreachable reports")
  await Bun.sleep(100)
  expect(b.received).toEqual([])
  expect(b.transport.metrics().peers.find((p) => p.id === A)?.receivedMessages ?? 0).toBe(0)
  const error = await intruder.transport.callUrl(b.url, "x", new Uint8Array(), 1000).catch((e: unknown) => e)
  expect(error).toBeInstanceOf(Error)
  expect(b.logs.has("rejected peer TLS connection")).toBe(true)
  expect(intruder.transport.metrics().activePeers).toBe(0)
}, 20_000)

test("a peer without a client certificate cannot connect when client certs are required", async () => {
  const b = await tlsMember(B, mtls(pki, pki.ca))
  const anonymous = await tlsMember(A, {
    server: mtls(pki, pki.ca).server,
    client: () => ({ ca: pki.ca }),
  })
  const error = await anonymous.transport.callUrl(b.url, "x", new Uint8Array(), 1000).catch((e: unknown) => e)
  expect(error).toBeInstanceOf(Error)
  anonymous.transport.addPeer(B, [b.url])
  anonymous.transport.send([heartbeat(A, B, 1)])
  await Bun.sleep(300)
  expect(b.received).toEqual([])
}, 20_000)

test("PeerTransport.reloadTls() makes new connections use the listener's new certificate", async () => {
  let identity = otherPki
  const b = await tlsMember(B, {
    server: () => ({ key: identity.key, cert: identity.cert, ca: pki.ca, requestCert: true, rejectUnauthorized: true }),
    client: () => ({ key: pki.key, cert: pki.cert, ca: pki.ca }),
  })
  b.transport.handle("ping", (p) => p)
  const a = await tlsMember(A, mtls(pki, pki.ca))
  // b presents a certificate that a does not trust.
  const refused = await a.transport.callUrl(b.url, "ping", new Uint8Array([1]), 1000).catch((e: unknown) => e)
  expect(refused).toBeInstanceOf(Error)
  identity = pki
  b.transport.reloadTls()
  const result = await a.transport.callUrl(b.url, "ping", new Uint8Array([2]), 1000)
  expect([...result.payload]).toEqual([2])
}, 20_000)

test("PeerTlsOptions.checkPeerCertificate refuses a trusted certificate with the wrong CN", async () => {
  const b = await tlsMember(B, {
    ...mtls(pki, pki.ca),
    checkPeerCertificate: (cert) => (cert.subject.CN === "allowed-peer" ? null : `CN ${cert.subject.CN} is not allowed`),
  })
  b.transport.handle("ping", (p) => p)
  const a = await tlsMember(A, mtls(pki, pki.ca))
  const error = await a.transport.callUrl(b.url, "ping", new Uint8Array([1]), 1000).catch((e: unknown) => e)
  expect(error).toBeInstanceOf(Error)
  expect(b.logs.lines.some((l) => l["error"] === "CN cluster-peer is not allowed")).toBe(true)
  const b2 = await tlsMember(0xb3n, {
    ...mtls(pki, pki.ca),
    checkPeerCertificate: (cert) => (cert.subject.CN === "cluster-peer" ? null : `CN ${cert.subject.CN} is not allowed`),
  })
  b2.transport.handle("ping", (p) => p)
  const result = await a.transport.callUrl(b2.url, "ping", new Uint8Array([2]), 1000)
  expect([...result.payload]).toEqual([2])
}, 20_000)
