import { afterAll, beforeAll, expect, test } from "bun:test"
import { X509Certificate } from "node:crypto"
import { readFileSync, rmSync } from "node:fs"
import { join } from "node:path"
import * as nodeTls from "node:tls"
import type { Config } from "../config/config"
import { parseConfig } from "../config/parse"
import { silentLogger } from "../lib/logger"
import { runCertsCommand } from "./certs_command"
import { peerTransportTls, setupMemberTls } from "./member_tls"
import { handshake, startEchoServer, tempDir } from "./testing"

let dir = ""
let pki = ""

beforeAll(async () => {
  dir = tempDir("tskv-member-tls-")
  pki = join(dir, "pki")
  const quiet = { out: () => {}, err: () => {} }
  expect(await runCertsCommand(["cluster", "--member", "m1=127.0.0.1", "--out", pki], quiet)).toBe(0)
})

afterAll(() => rmSync(dir, { recursive: true, force: true }))

function configOf(argv: string[]): Config {
  const result = parseConfig(argv, {})
  if (result.kind !== "config") throw new Error(JSON.stringify(result))
  return result.config
}

test("setupMemberTls() serves the configured certificate with client-cert-auth and dials with --client-cert-file", async () => {
  const config = configOf([
    `--cert-file=${join(pki, "m1/server.crt")}`,
    `--key-file=${join(pki, "m1/server.key")}`,
    `--trusted-ca-file=${join(pki, "ca.crt")}`,
    "--client-cert-auth",
    `--client-cert-file=${join(pki, "clients/root.crt")}`,
    `--client-key-file=${join(pki, "clients/root.key")}`,
    "--cipher-suites=TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "--tls-max-version=TLS1.2",
  ])
  const tls = await setupMemberTls({ config, side: "client", logger: silentLogger })
  if (tls === undefined) throw new Error("expected TLS")
  const echo = await startEchoServer(tls.server.serverOptions())
  tls.server.attach(echo.server)
  try {
    expect(tls.clientCertAuth).toBe(true)
    expect(tls.autoTls).toBe(false)
    expect(tls.dialer.material().leaf.subject).toBe("CN=root")
    const result = await handshake(echo.port, tls.dialer.clientOptions())
    expect(result).toMatchObject({ serverCn: "m1", data: "hello root", protocol: "TLSv1.2", cipher: "ECDHE-ECDSA-AES128-GCM-SHA256" })
  } finally {
    tls.stop()
    await echo.close()
  }
})

test("setupMemberTls() with --peer-auto-tls generates a self-signed certificate in the data dir; dialers skip verification", async () => {
  const dataDir = join(dir, "m2.tskv")
  const config = configOf(["--peer-auto-tls", `--data-dir=${dataDir}`, "--listen-peer-urls=https://127.0.0.1:2380"])
  const tls = await setupMemberTls({ config, side: "peer", logger: silentLogger })
  if (tls === undefined) throw new Error("expected TLS")
  const echo = await startEchoServer(tls.server.serverOptions())
  try {
    expect(tls.autoTls).toBe(true)
    expect(tls.server.material().leaf.checkIP("127.0.0.1")).toBe("127.0.0.1")
    expect(tls.server.material().leaf.subject).toContain("CN=tskv")
    expect(tls.dialer.clientOptions().rejectUnauthorized).toBe(false)
    expect(await handshake(echo.port, tls.dialer.clientOptions())).toMatchObject({ serverCn: "tskv", data: "hello -" })
  } finally {
    tls.stop()
    await echo.close()
  }
})

test("setupMemberTls() is undefined without certificates or auto-TLS", async () => {
  expect(await setupMemberTls({ config: configOf([]), side: "client", logger: silentLogger })).toBeUndefined()
  expect(await setupMemberTls({ config: configOf([]), side: "peer", logger: silentLogger })).toBeUndefined()
})

test("MemberTls.checkConnection() applies --peer-cert-allowed-cn and the peer SAN check", async () => {
  const config = configOf([
    `--peer-cert-file=${join(pki, "m1/peer.crt")}`,
    `--peer-key-file=${join(pki, "m1/peer.key")}`,
    `--peer-trusted-ca-file=${join(pki, "ca.crt")}`,
    "--peer-client-cert-auth",
    "--peer-cert-allowed-cn=m1",
  ])
  const tls = await setupMemberTls({ config, side: "peer", logger: silentLogger })
  if (tls === undefined) throw new Error("expected TLS")
  const results: string[] = []
  const server = nodeTls.createServer(tls.server.serverOptions(), (socket) => {
    void tls.checkConnection(socket).then((r) => {
      results.push(r.ok ? "ok" : r.reason)
      socket.end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()))
  const address = server.address()
  const port = typeof address === "object" && address !== null ? address.port : 0
  try {
    await handshake(port, tls.dialer.clientOptions())
    await handshake(port, { ca: readFileSync(join(pki, "ca.crt")), cert: readFileSync(join(pki, "clients/root.crt")), key: readFileSync(join(pki, "clients/root.key")) })
  } finally {
    tls.stop()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
  expect(results).toEqual(["ok", 'client certificate CN "root" is not one of the allowed CNs m1'])
})

test("peerTransportTls(): refusal by allowed CN and by SANs that do not name the remote address; onReload is called after a reload", async () => {
  const config = configOf([
    `--peer-cert-file=${join(pki, "m1/peer.crt")}`,
    `--peer-key-file=${join(pki, "m1/peer.key")}`,
    `--peer-trusted-ca-file=${join(pki, "ca.crt")}`,
    "--peer-client-cert-auth",
    "--peer-cert-allowed-cn=m1",
  ])
  const tls = await setupMemberTls({ config, side: "peer", logger: silentLogger, reloadIntervalMs: 60_000 })
  if (tls === undefined) throw new Error("expected TLS")
  let reloads = 0
  const peer = peerTransportTls(tls, () => reloads++)
  try {
    const m1 = new X509Certificate(readFileSync(join(pki, "m1/peer.crt"))).toLegacyObject()
    const root = new X509Certificate(readFileSync(join(pki, "clients/root.crt"))).toLegacyObject()
    expect(peer.checkPeerCertificate(m1, "127.0.0.1")).toBeNull()
    expect(peer.checkPeerCertificate(m1, "::ffff:127.0.0.1")).toBeNull()
    expect(peer.checkPeerCertificate(m1, "10.9.9.9")).toContain('"10.9.9.9" does not match')
    expect(peer.checkPeerCertificate(root, "127.0.0.1")).toBe('client certificate CN "root" is not one of the allowed CNs m1')
    expect(peer.server().requestCert).toBe(true)
    expect(peer.client().cert).toContain("BEGIN CERTIFICATE")
    expect(tls.server.reloadNow()).toBe("unchanged")
    expect(reloads).toBe(0)
  } finally {
    tls.stop()
  }
})

test("MemberTls.refusal() with --peer-skip-client-san-verification ignores the remote address", async () => {
  const config = configOf([
    `--peer-cert-file=${join(pki, "m1/peer.crt")}`,
    `--peer-key-file=${join(pki, "m1/peer.key")}`,
    `--peer-trusted-ca-file=${join(pki, "ca.crt")}`,
    "--peer-client-cert-auth",
    "--peer-skip-client-san-verification",
  ])
  const tls = await setupMemberTls({ config, side: "peer", logger: silentLogger })
  if (tls === undefined) throw new Error("expected TLS")
  try {
    const m1 = new X509Certificate(readFileSync(join(pki, "m1/peer.crt"))).toLegacyObject()
    expect(tls.refusal(m1, "10.9.9.9")).toBeNull()
  } finally {
    tls.stop()
  }
})

test("MemberTls.connectionRefusal() applies --client-cert-allowed-hostname on the client side", async () => {
  const config = configOf([
    `--cert-file=${join(pki, "m1/server.crt")}`,
    `--key-file=${join(pki, "m1/server.key")}`,
    `--trusted-ca-file=${join(pki, "ca.crt")}`,
    "--client-cert-auth",
    "--client-cert-allowed-hostname=root",
  ])
  const tls = await setupMemberTls({ config, side: "client", logger: silentLogger })
  if (tls === undefined) throw new Error("expected TLS")
  const results: (string | null)[] = []
  const server = nodeTls.createServer(tls.server.serverOptions(), (socket) => {
    results.push(tls.connectionRefusal(socket))
    socket.end()
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()))
  const address = server.address()
  const port = typeof address === "object" && address !== null ? address.port : 0
  const client = (name: string) => ({ ca: readFileSync(join(pki, "ca.crt")), cert: readFileSync(join(pki, `clients/${name}.crt`)), key: readFileSync(join(pki, `clients/${name}.key`)) })
  try {
    await handshake(port, client("root"))
    await handshake(port, client("kube-apiserver-etcd-client"))
  } finally {
    tls.stop()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
  expect(results).toEqual([null, "client certificate is not valid for any allowed hostname root"])
})

test("peerTransportTls(): onReload runs after the peer files were reloaded (transport.reloadTls)", async () => {
  const copy = join(dir, "reload-pki")
  const quiet = { out: () => {}, err: () => {} }
  expect(await runCertsCommand(["cluster", "--member", "m1=127.0.0.1", "--out", copy], quiet)).toBe(0)
  const config = configOf([`--peer-cert-file=${join(copy, "m1/peer.crt")}`, `--peer-key-file=${join(copy, "m1/peer.key")}`, `--peer-trusted-ca-file=${join(copy, "ca.crt")}`])
  const tls = await setupMemberTls({ config, side: "peer", logger: silentLogger, reloadIntervalMs: 60_000 })
  if (tls === undefined) throw new Error("expected TLS")
  const reloaded: string[] = []
  const peer = peerTransportTls(tls, () => reloaded.push(String(peer.server().cert)))
  try {
    const before = String(peer.server().cert)
    expect(await runCertsCommand(["issue", "peer", "--name", "m1", "--san", "127.0.0.1", "--out", copy, "--force"], quiet)).toBe(0)
    expect(tls.server.reloadNow()).toBe("reloaded")
    expect(reloaded.length).toBe(1)
    expect(reloaded[0]).not.toBe(before)
    expect(reloaded[0]).toBe(readFileSync(join(copy, "m1/peer.crt"), "utf8"))
  } finally {
    tls.stop()
  }
})
