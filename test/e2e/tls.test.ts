// Client-port TLS of the compiled binary with real etcdctl and curl:
// certificates from `dist/tskv certs cluster`, mutual TLS (who is refused),
// /health over https, hot rotation of the server certificate and of the CA
// bundle without a restart, a broken new file keeping the old one, and
// --auto-tls.

import { afterAll, beforeAll, expect, test } from "bun:test"
import { spawnSync } from "bun"
import { X509Certificate } from "node:crypto"
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import * as tls from "node:tls"
import { Etcd3 } from "etcd3"
import { createCa, issueCertificate, loadCa } from "../../src/certs/pki"
import { etcdctl, type MemberProcess, requireBinary, startMember, tskvBinary } from "../support/procs"
import { freePorts } from "../support/ports"
import { tempDir } from "../support/tmp"

const dir = tempDir("tls-e2e-")
const pki = join(dir.path, "pki")
const live = join(dir.path, "live")
const members: MemberProcess[] = []
/** Client identities that must be refused: none, another CA's, an expired one. */
const bad: Record<string, string> = {}

function write(name: string, text: string): string {
  const path = join(dir.path, name)
  writeFileSync(path, text)
  return path
}

beforeAll(async () => {
  requireBinary()
  const r = spawnSync([tskvBinary, "certs", "cluster", "--member", "a=127.0.0.1", "--out", pki])
  if (r.exitCode !== 0) throw new Error(`tskv certs cluster failed: ${r.stderr.toString()}`)
  // The live copies the member reads, rotated by the tests.
  mkdirSync(live)
  copyFileSync(join(pki, "a/server.crt"), join(live, "server.crt"))
  copyFileSync(join(pki, "a/server.key"), join(live, "server.key"), 0)
  copyFileSync(join(pki, "ca.crt"), join(live, "ca.crt"))
  const other = await createCa({ commonName: "other-ca" })
  const otherClient = await issueCertificate({ ca: other, kind: "client", commonName: "root" })
  bad.otherCert = write("other-root.crt", otherClient.certPem)
  bad.otherKey = write("other-root.key", otherClient.keyPem)
  const ca = await loadCa(readFileSync(join(pki, "ca.crt"), "utf8"), readFileSync(join(pki, "ca.key"), "utf8"))
  const expired = await issueCertificate({
    ca,
    kind: "client",
    commonName: "root",
    notBefore: new Date(Date.now() - 10 * 86_400_000),
    notAfter: new Date(Date.now() - 86_400_000),
  })
  bad.expiredCert = write("expired-root.crt", expired.certPem)
  bad.expiredKey = write("expired-root.key", expired.keyPem)
})

afterAll(async () => {
  await Promise.all(members.map((m) => m.stop()))
  dir.remove()
})

const rootIdentity = (): string[] => [`--cacert=${join(pki, "ca.crt")}`, `--cert=${join(pki, "clients/root.crt")}`, `--key=${join(pki, "clients/root.key")}`]
const timeouts = ["--dial-timeout=2s", "--command-timeout=4s"]
/** For attempts that must fail: do not wait long for them. */
const quick = ["--dial-timeout=1s", "--command-timeout=2s"]

async function startTlsMember(extraArgs: string[]): Promise<{ m: MemberProcess; ep: string; port: number }> {
  const [clientPort, peerPort] = (await freePorts(2)) as [number, number]
  const url = `https://127.0.0.1:${clientPort}`
  const m = await startMember({
    kind: "tskv",
    name: "a",
    clientPort,
    peerPort,
    waitReady: false,
    extraArgs: [`--listen-client-urls=${url}`, `--advertise-client-urls=${url}`, ...extraArgs],
  })
  members.push(m)
  return { m, ep: `127.0.0.1:${clientPort}`, port: clientPort }
}

async function waitFor(what: string, m: MemberProcess, ok: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await ok())) {
    if (Date.now() > deadline || m.proc.exitCode !== null) throw new Error(`${what} did not happen:\n${m.output()}`)
    await Bun.sleep(100)
  }
}

/** The certificate the server presents to a new connection (sha256 fingerprint), without verifying it. */
function serverFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false }, () => {
      const fp = socket.getPeerCertificate().fingerprint256
      socket.destroy()
      resolve(fp)
    })
    socket.on("error", reject)
    socket.setTimeout(5000, () => {
      socket.destroy()
      reject(new Error("timeout"))
    })
  })
}

function fingerprintOf(certFile: string): string {
  return new X509Certificate(readFileSync(certFile)).fingerprint256
}

/** Sends a request after the handshake: "" when the server answered, else how the connection ended. */
function handshakeError(identity: tls.ConnectionOptions): Promise<string> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: "127.0.0.1", port: main.port, ca: readFileSync(join(pki, "ca.crt")), ...identity }, () => {
      socket.write("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    })
    socket.on("data", () => {
      socket.destroy()
      resolve("")
    })
    socket.on("error", (e: Error & { code?: string }) => resolve(`${e.code ?? ""} ${e.message}`))
    socket.on("close", () => resolve("closed"))
    socket.setTimeout(5000, () => {
      socket.destroy()
      resolve("timeout")
    })
  })
}

function curl(args: string[]): { code: number; out: string } {
  const r = spawnSync(["curl", "-sS", "--max-time", "5", ...args])
  return { code: r.exitCode ?? -1, out: r.stdout.toString() + r.stderr.toString() }
}

let main: { m: MemberProcess; ep: string; port: number }

let metricsPort = 0

test("etcdctl with --cacert --cert --key works against a member with client mTLS from `tskv certs cluster`", async () => {
  metricsPort = (await freePorts(1))[0] as number
  main = await startTlsMember([
    `--listen-metrics-urls=https://127.0.0.1:${metricsPort}`,
    `--cert-file=${join(live, "server.crt")}`,
    `--key-file=${join(live, "server.key")}`,
    `--trusted-ca-file=${join(live, "ca.crt")}`,
    "--client-cert-auth",
  ])
  await waitFor("endpoint health", main.m, () => etcdctl(main.ep, [...rootIdentity(), ...timeouts, "endpoint", "health"]).code === 0)
  const ctl = (args: string[]) => etcdctl(main.ep, [...rootIdentity(), ...timeouts, ...args])
  expect(ctl(["put", "greeting", "hello"])).toMatchObject({ code: 0, stdout: "OK\n" })
  expect(ctl(["get", "greeting"])).toMatchObject({ code: 0, stdout: "greeting\nhello\n" })
  const status = ctl(["endpoint", "status", "-w", "json"])
  expect(status.code).toBe(0)
  expect(JSON.parse(status.stdout)[0].Endpoint).toBe(main.ep)
  const list = ctl(["member", "list"])
  expect(list.code).toBe(0)
  expect(list.stdout).toContain(`a, http://127.0.0.1:${main.m.peerPort}, https://127.0.0.1:${main.port}`)
  // tskv's own etcdctl takes the same flags.
  const own = spawnSync([tskvBinary, "ctl", `--endpoints=${main.ep}`, ...rootIdentity(), ...timeouts, "get", "greeting"])
  expect({ code: own.exitCode, out: own.stdout.toString() }).toEqual({ code: 0, out: "greeting\nhello\n" })
}, 40_000)

test("the client port refuses a client with no certificate, with another CA's, or with an expired one", async () => {
  const ca = `--cacert=${join(pki, "ca.crt")}`
  const attempts = {
    none: etcdctl(main.ep, [ca, ...quick, "get", "greeting"]),
    otherCa: etcdctl(main.ep, [ca, `--cert=${bad.otherCert}`, `--key=${bad.otherKey}`, ...quick, "get", "greeting"]),
    expired: etcdctl(main.ep, [ca, `--cert=${bad.expiredCert}`, `--key=${bad.expiredKey}`, ...quick, "get", "greeting"]),
  }
  for (const [who, r] of Object.entries(attempts)) {
    expect({ who, code: r.code, served: r.stdout.includes("hello") }).toEqual({ who, code: 1, served: false })
  }
  // The same over HTTPS: no response is ever served to them.
  const url = `https://127.0.0.1:${main.port}/health`
  expect(curl(["--cacert", join(pki, "ca.crt"), url]).code).not.toBe(0)
  expect(curl(["--cacert", join(pki, "ca.crt"), "--cert", bad.otherCert ?? "", "--key", bad.otherKey ?? "", url]).code).not.toBe(0)
  expect(curl(["--cacert", join(pki, "ca.crt"), "--cert", bad.expiredCert ?? "", "--key", bad.expiredKey ?? "", url]).code).not.toBe(0)
  // At the TLS level: the handshake ends (an alert, or a reset under Bun's TLS server) and not a byte of HTTP comes back.
  const refusals = {
    none: await handshakeError({}),
    otherCa: await handshakeError({ cert: readFileSync(bad.otherCert ?? ""), key: readFileSync(bad.otherKey ?? "") }),
    expired: await handshakeError({ cert: readFileSync(bad.expiredCert ?? ""), key: readFileSync(bad.expiredKey ?? "") }),
  }
  for (const [who, outcome] of Object.entries(refusals)) expect({ who, answered: outcome === "" || outcome === "timeout" }).toEqual({ who, answered: false })
  expect(refusals.none).toMatch(/certificate required|CERTIFICATE_REQUIRED/i)
  expect(await handshakeError({ cert: readFileSync(join(pki, "clients/root.crt")), key: readFileSync(join(pki, "clients/root.key")) })).toBe("")
  // Still serving the right client.
  expect(etcdctl(main.ep, [...rootIdentity(), ...timeouts, "get", "greeting", "--print-value-only"]).stdout).toBe("hello\n")
}, 40_000)

test("an https metrics URL uses the client TLS: /metrics with the client certificate, refused without", () => {
  const url = `https://127.0.0.1:${metricsPort}/metrics`
  const ok = curl(["--cacert", join(pki, "ca.crt"), "--cert", join(pki, "clients/root.crt"), "--key", join(pki, "clients/root.key"), url])
  expect(ok.code).toBe(0)
  expect(ok.out).toContain("# TYPE")
  expect(curl(["--cacert", join(pki, "ca.crt"), url]).code).not.toBe(0)
})

test("the etcd3 npm client (grpc-js) with the same certificates: put, get, watch; refused without a client certificate", async () => {
  const credentials = (cert?: string, key?: string) => ({
    rootCertificate: readFileSync(join(pki, "ca.crt")),
    ...(cert !== undefined && key !== undefined ? { certChain: readFileSync(cert), privateKey: readFileSync(key) } : {}),
  })
  // (By name: grpc-js sets the TLS server name to the host, and Bun refuses an IP there; the certificate has DNS:localhost.)
  const client = new Etcd3({ hosts: `https://localhost:${main.port}`, credentials: credentials(join(pki, "clients/root.crt"), join(pki, "clients/root.key")) })
  try {
    await client.put("etcd3-key").value("etcd3-value")
    expect(await client.get("etcd3-key").string()).toBe("etcd3-value")
    const watcher = await client.watch().key("etcd3-watched").create()
    const seen = new Promise<string>((resolve) => watcher.on("put", (kv) => resolve(kv.value.toString())))
    await client.put("etcd3-watched").value("changed")
    expect(await seen).toBe("changed")
    await watcher.cancel()
  } finally {
    client.close()
  }
  const anonymous = new Etcd3({ hosts: `https://localhost:${main.port}`, credentials: credentials(), dialTimeout: 2000 })
  try {
    const outcome = await Promise.race([
      anonymous.get("etcd3-key").string().then(
        (v) => `answered ${v}`,
        (e: Error) => `refused: ${e.constructor.name}`,
      ),
      Bun.sleep(10_000).then(() => "timeout"),
    ])
    expect(outcome).toStartWith("refused")
  } finally {
    anonymous.close()
  }
}, 40_000)

test("GET /health over https with the client certificate", () => {
  const r = curl(["--cacert", join(pki, "ca.crt"), "--cert", join(pki, "clients/root.crt"), "--key", join(pki, "clients/root.key"), `https://127.0.0.1:${main.port}/health`])
  expect(r.code).toBe(0)
  expect(JSON.parse(r.out).health).toBe("true")
})

test("a broken new certificate file keeps the old one in use and is logged", async () => {
  const before = await serverFingerprint(main.port)
  expect(before).toBe(fingerprintOf(join(pki, "a/server.crt")))
  writeFileSync(join(live, "server.crt"), "-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n")
  await waitFor("the reload failure log", main.m, () => main.m.output().includes("failed to reload TLS files"), 10_000)
  expect(await serverFingerprint(main.port)).toBe(before)
  expect(etcdctl(main.ep, [...rootIdentity(), ...timeouts, "get", "greeting", "--print-value-only"]).stdout).toBe("hello\n")
  copyFileSync(join(pki, "a/server.crt"), join(live, "server.crt"))
}, 30_000)

test("rotation: a new server certificate and CA bundle on disk are used by new connections, without a restart", async () => {
  const pid = main.m.proc.pid
  const ca2 = await createCa({ commonName: "rotated-ca" })
  const server2 = await issueCertificate({ ca: ca2, kind: "server", commonName: "a-rotated", sans: ["127.0.0.1", "localhost"] })
  const client2 = await issueCertificate({ ca: ca2, kind: "client", commonName: "root" })
  const ca2File = write("ca2.crt", ca2.certPem)
  const client2Cert = write("root2.crt", client2.certPem)
  const client2Key = write("root2.key", client2.keyPem)
  // Key first, then the certificate: between the two the pair does not match and the reload waits.
  writeFileSync(join(live, "server.key"), server2.keyPem, { mode: 0o600 })
  writeFileSync(join(live, "server.crt"), server2.certPem)
  writeFileSync(join(live, "ca.crt"), ca2.certPem)
  const expected = fingerprintOf(join(live, "server.crt"))
  await waitFor("the rotated server certificate", main.m, async () => (await serverFingerprint(main.port)) === expected, 10_000)
  const newIdentity = [`--cacert=${ca2File}`, `--cert=${client2Cert}`, `--key=${client2Key}`, ...timeouts]
  // New CA bundle: a client of the new CA is accepted (the data is still there: same process) ...
  await waitFor("a client of the new CA accepted", main.m, () => etcdctl(main.ep, [...newIdentity, "get", "greeting", "--print-value-only"]).stdout === "hello\n", 10_000)
  expect(etcdctl(main.ep, [...newIdentity, "put", "rotated", "yes"]).code).toBe(0)
  // ... and one of the old CA is refused, whichever server CA it trusts.
  expect(etcdctl(main.ep, [...rootIdentity(), ...quick, "get", "greeting"]).code).toBe(1)
  expect(etcdctl(main.ep, [`--cacert=${ca2File}`, `--cert=${join(pki, "clients/root.crt")}`, `--key=${join(pki, "clients/root.key")}`, ...quick, "get", "greeting"]).code).toBe(1)
  expect(main.m.proc.pid).toBe(pid)
  expect(main.m.proc.exitCode).toBeNull()
  await waitFor("the reload in the log", main.m, () => main.m.output().includes("reloaded TLS files"), 5_000)
}, 60_000)

test("--client-cert-allowed-hostname: only client certificates valid for the name are served", async () => {
  const m = await startTlsMember([
    `--cert-file=${join(pki, "a/server.crt")}`,
    `--key-file=${join(pki, "a/server.key")}`,
    `--trusted-ca-file=${join(pki, "ca.crt")}`,
    "--client-cert-auth",
    "--client-cert-allowed-hostname=root",
  ])
  await waitFor("endpoint health", m.m, () => etcdctl(m.ep, [...rootIdentity(), ...timeouts, "endpoint", "health"]).code === 0)
  const other = [`--cacert=${join(pki, "ca.crt")}`, `--cert=${join(pki, "clients/kube-apiserver-etcd-client.crt")}`, `--key=${join(pki, "clients/kube-apiserver-etcd-client.key")}`]
  expect(etcdctl(m.ep, [...other, ...quick, "put", "k", "v"]).code).toBe(1)
  expect(etcdctl(m.ep, [...rootIdentity(), ...timeouts, "put", "k", "v"]).code).toBe(0)
  // (spawnSync blocked this process: let it read the member's log.)
  await waitFor("the refusal in the log", m.m, () => m.m.output().includes("rejected client TLS connection"), 5_000)
  expect(m.m.output()).toContain("not valid for any allowed hostname root")
  await m.m.stop()
}, 40_000)

test("--auto-tls: a self-signed certificate in <data-dir>/fixtures/client, encrypted client traffic", async () => {
  const auto = await startTlsMember(["--auto-tls"])
  const insecure = ["--insecure-transport=false", "--insecure-skip-tls-verify", ...timeouts]
  await waitFor("endpoint health", auto.m, () => etcdctl(auto.ep, [...insecure, "endpoint", "health"]).code === 0)
  expect(etcdctl(auto.ep, [...insecure, "put", "k", "v"])).toMatchObject({ code: 0, stdout: "OK\n" })
  expect(etcdctl(auto.ep, [...insecure, "get", "k", "--print-value-only"]).stdout).toBe("v\n")
  expect(existsSync(join(auto.m.dataDir, "fixtures/client/cert.pem"))).toBe(true)
  expect(await serverFingerprint(auto.port)).toBe(fingerprintOf(join(auto.m.dataDir, "fixtures/client/cert.pem")))
  // Plain-text clients get nothing; a client that verifies the certificate refuses it.
  expect(etcdctl(auto.ep, [...quick, "get", "k"]).code).toBe(1)
  expect(curl([`https://127.0.0.1:${auto.port}/health`]).code).not.toBe(0)
  expect(JSON.parse(curl(["-k", `https://127.0.0.1:${auto.port}/health`]).out).health).toBe("true")
}, 40_000)
