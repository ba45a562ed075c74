import { afterAll, beforeAll, expect, test } from "bun:test"
import { rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { createLogger } from "../lib/logger"
import { writeFileAtomic } from "./files"
import { type CertAndKey, createCa, issueCertificate } from "./pki"
import { handshake, startEchoServer, tempDir } from "./testing"
import { TlsReloader } from "./tls_reloader"

let dir = ""
let caA: CertAndKey
let caB: CertAndKey
let serverA: CertAndKey
let serverB: CertAndKey
let clientA: CertAndKey
let clientB: CertAndKey

beforeAll(async () => {
  dir = tempDir("tskv-certs-reload-")
  caA = await createCa({ commonName: "ca-a" })
  caB = await createCa({ commonName: "ca-b" })
  serverA = await issueCertificate({ ca: caA, kind: "server", commonName: "server-a" })
  serverB = await issueCertificate({ ca: caB, kind: "server", commonName: "server-b" })
  clientA = await issueCertificate({ ca: caA, kind: "client", commonName: "client-a" })
  clientB = await issueCertificate({ ca: caB, kind: "client", commonName: "client-b" })
})

afterAll(() => rmSync(dir, { recursive: true, force: true }))

function capture() {
  const lines: { level: string; msg: string; error?: string }[] = []
  const logger = createLogger({ level: "debug", write: (line) => lines.push(JSON.parse(line)) })
  return { lines, logger }
}

function install(sub: string, server: CertAndKey, ca: CertAndKey) {
  const base = join(dir, sub)
  const paths = { certFile: `${base}-server.crt`, keyFile: `${base}-server.key`, trustedCaFile: `${base}-ca.crt` }
  writeFileAtomic(paths.keyFile, server.keyPem, 0o600)
  writeFileAtomic(paths.certFile, server.certPem, 0o644)
  writeFileAtomic(paths.trustedCaFile, ca.certPem, 0o644)
  return paths
}

const asClient = (leaf: CertAndKey, ca: CertAndKey) => ({ ca: ca.certPem, cert: leaf.certPem, key: leaf.keyPem })

test("TlsReloader: replacing certificate, key and CA on disk switches new connections; a broken file keeps the old ones", async () => {
  const paths = install("swap", serverA, caA)
  const { lines, logger } = capture()
  const reloader = new TlsReloader({ config: { ...paths, clientCertAuth: true }, logger, watchFiles: false })
  const echo = await startEchoServer(reloader.serverOptions())
  reloader.attach(echo.server)
  try {
    expect(await handshake(echo.port, asClient(clientA, caA))).toMatchObject({ serverCn: "server-a", data: "hello client-a" })
    expect(reloader.reloadNow()).toBe("unchanged")

    install("swap", serverB, caB)
    expect(reloader.reloadNow()).toBe("reloaded")
    expect(await handshake(echo.port, asClient(clientB, caB))).toMatchObject({ serverCn: "server-b", data: "hello client-b" })
    // The old CA no longer admits clients.
    expect((await handshake(echo.port, { ...asClient(clientA, caA), ca: caB.certPem })).data).toBe("")
    expect(lines.some((l) => l.msg === "reloaded TLS files")).toBe(true)

    // A truncated key: the reload fails, is reported once, and the current material stays in use.
    writeFileSync(paths.keyFile, "-----BEGIN PRIVATE KEY-----\nAAAA\n")
    expect(reloader.reloadNow()).toBe("failed")
    expect(reloader.reloadNow()).toBe("failed")
    expect(lines.filter((l) => l.level === "error")).toHaveLength(1)
    expect(lines.find((l) => l.level === "error")?.error).toContain("the private key cannot be parsed")
    expect(await handshake(echo.port, asClient(clientB, caB))).toMatchObject({ serverCn: "server-b", data: "hello client-b" })
    expect(reloader.material().leaf.subject).toBe("CN=server-b")

    // A key from another certificate: refused too.
    writeFileSync(paths.keyFile, serverA.keyPem)
    expect(reloader.reloadNow()).toBe("failed")
    expect(await handshake(echo.port, asClient(clientB, caB))).toMatchObject({ serverCn: "server-b" })

    // Fixed: back to a consistent pair.
    install("swap", serverA, caA)
    expect(reloader.reloadNow()).toBe("reloaded")
    expect(await handshake(echo.port, asClient(clientA, caA))).toMatchObject({ serverCn: "server-a", data: "hello client-a" })
    expect(reloader.clientOptions().cert).toBe(serverA.certPem)
  } finally {
    reloader.stop()
    await echo.close()
  }
}, 20_000)

test("TlsReloader.start() notices a replaced CA bundle by itself within the poll period", async () => {
  const paths = install("poll", serverA, caA)
  const { logger } = capture()
  const reloader = new TlsReloader({ config: { ...paths, clientCertAuth: true }, logger, intervalMs: 200 })
  const echo = await startEchoServer(reloader.serverOptions())
  reloader.attach(echo.server)
  const reloaded = new Promise<string>((resolve) => reloader.onReload((m) => resolve(m.caCertificates.map((c) => c.subject).join(","))))
  reloader.start()
  try {
    // Trust both CAs: clients of the new CA get in, old ones still do. (A bundle
    // made by concatenation may lack the newline between blocks.)
    writeFileAtomic(paths.trustedCaFile, caA.certPem.trimEnd() + caB.certPem, 0o644)
    const subjects = await Promise.race([reloaded, Bun.sleep(3000).then(() => "timeout")])
    expect(subjects).toBe("CN=ca-a,CN=ca-b")
    expect(await handshake(echo.port, { ...asClient(clientB, caB), ca: caA.certPem })).toMatchObject({ data: "hello client-b" })
    expect(await handshake(echo.port, asClient(clientA, caA))).toMatchObject({ data: "hello client-a" })
  } finally {
    reloader.stop()
    await echo.close()
  }
}, 10_000)

test("new TlsReloader() refuses unusable files at start", () => {
  const { logger } = capture()
  const paths = install("bad", serverA, caA)
  writeFileSync(paths.certFile, "nope")
  expect(() => new TlsReloader({ config: paths, logger })).toThrow("no PEM certificate found")
})

test("TlsReloader.start() reacts to fs.watch events before the next poll", async () => {
  const paths = install("watch", serverA, caA)
  const { logger } = capture()
  const reloader = new TlsReloader({ config: paths, logger, intervalMs: 60_000 })
  const reloaded = new Promise<string>((resolve) => reloader.onReload((m) => resolve(m.leaf.subject)))
  reloader.start()
  try {
    await Bun.sleep(50)
    const started = performance.now()
    install("watch", serverB, caB)
    expect(await Promise.race([reloaded, Bun.sleep(3000).then(() => "timeout")])).toBe("CN=server-b")
    expect(performance.now() - started).toBeLessThan(2000)
  } finally {
    reloader.stop()
  }
}, 10_000)

test("TlsReloader on a node:http2 secure server (the client port: gRPC + HTTP) swaps the certificate for new sessions", async () => {
  const http2 = await import("node:http2")
  const paths = install("h2", serverA, caA)
  const { logger } = capture()
  const reloader = new TlsReloader({ config: { ...paths, alpnProtocols: ["h2", "http/1.1"] }, logger, watchFiles: false })
  const server = http2.createSecureServer({ ...reloader.serverOptions(), allowHTTP1: true }, (_req, res) => res.end("hi"))
  reloader.attach(server)
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()))
  const address = server.address()
  const port = typeof address === "object" && address !== null ? address.port : 0
  const get = (ca: string) =>
    new Promise<string>((resolve) => {
      const session = http2.connect(`https://127.0.0.1:${port}`, { ca })
      session.on("error", (e) => resolve(`error: ${e.message}`))
      const request = session.request({ ":path": "/" })
      let body = ""
      request.on("data", (chunk: Buffer) => (body += chunk.toString()))
      request.on("end", () => {
        session.close()
        resolve(`${(session.socket as import("node:tls").TLSSocket).getPeerCertificate().subject.CN}: ${body}`)
      })
      request.on("error", (e) => resolve(`error: ${e.message}`))
    })
  try {
    expect(await get(caA.certPem)).toBe("server-a: hi")
    install("h2", serverB, caB)
    expect(reloader.reloadNow()).toBe("reloaded")
    expect(await get(caB.certPem)).toBe("server-b: hi")
    expect(await get(caA.certPem)).toStartWith("error:")
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
}, 10_000)
