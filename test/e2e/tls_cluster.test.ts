// A 3-member cluster of the compiled binary with mutual TLS on both the
// client and the peer listeners, all certificates from `tskv certs cluster`:
// real etcdctl works against every member, writes replicate, and a member
// whose peer certificate comes from another CA cannot join (the cluster keeps
// serving; the intruder is never started as a member). Also --peer-auto-tls.

import { afterAll, beforeAll, expect, test } from "bun:test"
import { spawnSync } from "bun"
import { X509Certificate } from "node:crypto"
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import * as tls from "node:tls"
import { createCa, issueCertificate, loadCa } from "../../src/certs/pki"
import { etcdctl, type MemberProcess, requireBinary, startMember, tskvBinary } from "../support/procs"
import { freePorts } from "../support/ports"
import { tempDir } from "../support/tmp"

const dir = tempDir("tls-cluster-e2e-")
const pki = join(dir.path, "pki")
const names = ["a", "b", "c"] as const
const processes: MemberProcess[] = []
const endpoints: Record<string, string> = {}
const peerPorts: Record<string, number> = {}
let initialCluster = ""

beforeAll(() => {
  requireBinary()
  const r = spawnSync([tskvBinary, "certs", "cluster", ...names.flatMap((n) => ["--member", `${n}=127.0.0.1`]), "--out", pki])
  if (r.exitCode !== 0) throw new Error(`tskv certs cluster failed: ${r.stderr.toString()}`)
})

afterAll(async () => {
  await Promise.all(processes.map((m) => m.stop()))
  dir.remove()
})

const timeouts = ["--dial-timeout=2s", "--command-timeout=5s"]
const root = (): string[] => [`--cacert=${join(pki, "ca.crt")}`, `--cert=${join(pki, "clients/root.crt")}`, `--key=${join(pki, "clients/root.key")}`, ...timeouts]

interface TlsFiles {
  serverCert: string
  serverKey: string
  peerCert: string
  peerKey: string
  ca: string
}

const filesOf = (name: string): TlsFiles => ({
  serverCert: join(pki, name, "server.crt"),
  serverKey: join(pki, name, "server.key"),
  peerCert: join(pki, name, "peer.crt"),
  peerKey: join(pki, name, "peer.key"),
  ca: join(pki, "ca.crt"),
})

function tlsArgs(options: { files: TlsFiles; clientPort: number; peerPort: number }): string[] {
  const { files, clientPort, peerPort } = options
  const client = `https://127.0.0.1:${clientPort}`
  const peer = `https://127.0.0.1:${peerPort}`
  return [
    `--cert-file=${files.serverCert}`,
    `--key-file=${files.serverKey}`,
    `--trusted-ca-file=${files.ca}`,
    "--client-cert-auth",
    `--peer-cert-file=${files.peerCert}`,
    `--peer-key-file=${files.peerKey}`,
    `--peer-trusted-ca-file=${files.ca}`,
    "--peer-client-cert-auth",
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
  ]
}

async function waitFor(what: string, ok: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!ok()) {
    const dead = processes.find((m) => m.proc.exitCode !== null && m.name !== "intruder")
    if (Date.now() > deadline || dead !== undefined) {
      throw new Error(`${what} did not happen:\n${processes.map((m) => `--- ${m.name} (exit ${m.proc.exitCode})\n${m.output()}`).join("\n")}`)
    }
    await Bun.sleep(200)
  }
}

test("3 members with mTLS on both listeners from `tskv certs cluster`: etcdctl works, writes replicate", async () => {
  const ports = await freePorts(names.length * 2)
  initialCluster = names.map((n, i) => `${n}=https://127.0.0.1:${ports[i * 2 + 1]}`).join(",")
  for (const [i, name] of names.entries()) {
    const clientPort = ports[i * 2] as number
    const peerPort = ports[i * 2 + 1] as number
    endpoints[name] = `127.0.0.1:${clientPort}`
    processes.push(
      await startMember({
        kind: "tskv",
        name,
        clientPort,
        peerPort,
        waitReady: false,
        initialCluster,
        // Peer certificates must be valid for "localhost" (tskv certs puts it in every server/peer certificate, not in client ones).
        extraArgs: [...tlsArgs({ files: filesOf(name), clientPort, peerPort }), "--peer-cert-allowed-hostname=localhost"],
      }),
    )
    peerPorts[name] = peerPort
  }
  const all = names.map((n) => endpoints[n] as string)
  await waitFor("a healthy cluster", () => etcdctl(all, [...root(), "endpoint", "health"]).code === 0)
  expect(etcdctl(endpoints.a as string, [...root(), "put", "replicated", "over-tls"])).toMatchObject({ code: 0, stdout: "OK\n" })
  for (const n of names) {
    expect({ n, out: etcdctl(endpoints[n] as string, [...root(), "get", "replicated", "--print-value-only"]).stdout }).toEqual({ n, out: "over-tls\n" })
  }
  expect(etcdctl(endpoints.c as string, [...root(), "put", "from-c", "1"]).code).toBe(0)
  expect(etcdctl(endpoints.b as string, [...root(), "get", "from-c", "--print-value-only"]).stdout).toBe("1\n")
  const list = etcdctl(endpoints.b as string, [...root(), "member", "list", "-w", "json"])
  expect(list.code).toBe(0)
  const members = (JSON.parse(list.stdout) as { members: { name: string; peerURLs: string[]; clientURLs: string[] }[] }).members
  expect(members.map((m) => m.name).sort()).toEqual(["a", "b", "c"])
  for (const m of members) expect(m.peerURLs[0]).toStartWith("https://127.0.0.1:")
  const status = etcdctl(all, [...root(), "endpoint", "status", "-w", "json"])
  expect(status.code).toBe(0)
  const rows = JSON.parse(status.stdout) as { Status: { leader: string | number; header: { member_id: string | number } } }[]
  expect(rows.filter((r) => String(r.Status.leader) === String(r.Status.header.member_id)).length).toBe(1)
}, 90_000)

test("every member's client port refuses no certificate, another CA's certificate and an expired one", async () => {
  const other = await createCa({ commonName: "other-ca" })
  const otherClient = await issueCertificate({ ca: other, kind: "client", commonName: "root" })
  const ca = await loadCa(readFileSync(join(pki, "ca.crt"), "utf8"), readFileSync(join(pki, "ca.key"), "utf8"))
  const expired = await issueCertificate({ ca, kind: "client", commonName: "root", notBefore: new Date(Date.now() - 10 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000) })
  const identities: Record<string, { cert?: string; key?: string }> = {
    none: {},
    otherCa: { cert: write("other-root.crt", otherClient.certPem), key: write("other-root.key", otherClient.keyPem) },
    expired: { cert: write("expired-root.crt", expired.certPem), key: write("expired-root.key", expired.keyPem) },
  }
  for (const n of names) {
    const port = Number((endpoints[n] as string).split(":")[1])
    for (const [who, id] of Object.entries(identities)) {
      const options: tls.ConnectionOptions = id.cert !== undefined && id.key !== undefined ? { cert: readFileSync(id.cert), key: readFileSync(id.key) } : {}
      expect({ n, who, answered: await answersHttp(port, options) }).toEqual({ n, who, answered: false })
      const flags = id.cert !== undefined ? [`--cert=${id.cert}`, `--key=${id.key}`] : []
      if (n === "b") expect({ who, code: etcdctl(endpoints[n] as string, [`--cacert=${join(pki, "ca.crt")}`, ...flags, "--dial-timeout=1s", "--command-timeout=2s", "get", "replicated"]).code }).toEqual({ who, code: 1 })
    }
    // The right client is served by the same check.
    const rootId = { cert: readFileSync(join(pki, "clients/root.crt")), key: readFileSync(join(pki, "clients/root.key")) }
    expect({ n, answered: await answersHttp(port, rootId) }).toEqual({ n, answered: true })
  }
}, 60_000)

/** Whether the client port answers an HTTP request after a handshake with `identity`. */
function answersHttp(port: number, identity: tls.ConnectionOptions): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: "127.0.0.1", port, ca: readFileSync(join(pki, "ca.crt")), ...identity }, () => {
      socket.write("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    })
    socket.on("data", () => {
      socket.destroy()
      resolve(true)
    })
    socket.on("error", () => resolve(false))
    socket.on("close", () => resolve(false))
    socket.setTimeout(5000, () => {
      socket.destroy()
      resolve(false)
    })
  })
}

/**
 * Adds member d (as etcd requires before a join) and starts it with `files`:
 * it must never become a started member, and the cluster must keep serving.
 */
async function expectIntruderRefused(label: string, files: TlsFiles): Promise<void> {
  const [clientPort, peerPort] = (await freePorts(2)) as [number, number]
  const dPeerUrl = `https://127.0.0.1:${peerPort}`
  const added = etcdctl(endpoints.a as string, [...root(), "member", "add", "d", `--peer-urls=${dPeerUrl}`, "-w", "json"])
  expect(added.code).toBe(0)
  const intruder = await startMember({
    kind: "tskv",
    name: "intruder",
    clientPort,
    peerPort,
    waitReady: false,
    initialCluster: `${initialCluster},intruder=${dPeerUrl}`,
    initialClusterState: "existing",
    extraArgs: tlsArgs({ files, clientPort, peerPort }),
  })
  processes.push(intruder)
  // Whatever the intruder does for up to 8 s, the members refuse its TLS connections and it never starts.
  const deadline = Date.now() + 8_000
  while (Date.now() < deadline && intruder.proc.exitCode === null) await Bun.sleep(200)
  const list = etcdctl(endpoints.b as string, [...root(), "member", "list", "-w", "json"])
  expect(list.code).toBe(0)
  const members = (JSON.parse(list.stdout) as { members: { name?: string; peerURLs: string[]; clientURLs?: string[] }[] }).members
  const d = members.find((m) => m.peerURLs.includes(dPeerUrl))
  // Added but never started: no name, no client URLs (etcd's "unstarted").
  expect({ label, name: d?.name ?? "", clientURLs: d?.clientURLs ?? [] }).toEqual({ label, name: "", clientURLs: [] })
  // The three members still serve reads and writes (3 of 4 voters are a quorum).
  expect(etcdctl(endpoints.c as string, [...root(), "put", `after-${label}`, "ok"]).code).toBe(0)
  for (const n of names) expect(etcdctl(endpoints[n] as string, [...root(), "get", `after-${label}`, "--print-value-only"]).stdout).toBe("ok\n")
  expect(intruder.output()).not.toContain('"msg":"ready to serve client requests"')
  await intruder.stop("SIGKILL")
  // (IDs are uint64: read them from the text, JSON numbers lose precision.)
  const removeId = /"member":\{"ID":(\d+)/.exec(added.stdout)?.[1] ?? "0"
  expect(etcdctl(endpoints.a as string, [...root(), "member", "remove", BigInt(removeId).toString(16)]).code).toBe(0)
}

function write(name: string, text: string): string {
  const path = join(dir.path, name)
  writeFileSync(path, text, { mode: 0o600 })
  return path
}

test("a member whose peer certificate comes from another CA cannot join; the cluster keeps working", async () => {
  const other = await createCa({ commonName: "intruder-ca" })
  const peer = await issueCertificate({ ca: other, kind: "peer", commonName: "d", sans: ["127.0.0.1"] })
  const server = await issueCertificate({ ca: other, kind: "server", commonName: "d", sans: ["127.0.0.1"] })
  await expectIntruderRefused("other-ca", {
    serverCert: write("d-server.crt", server.certPem),
    serverKey: write("d-server.key", server.keyPem),
    peerCert: write("d-peer.crt", peer.certPem),
    peerKey: write("d-peer.key", peer.keyPem),
    // It trusts the cluster's CA too (ca.crt is public): only its own certificates are wrong.
    ca: write("d-ca.crt", `${other.certPem}\n${readFileSync(join(pki, "ca.crt"), "utf8")}`),
  })
  const refusals = names.map((n) => processes.find((m) => m.name === n)?.output() ?? "").join("")
  expect(refusals).toContain("rejected peer TLS connection")
}, 60_000)

test("--peer-cert-allowed-hostname: a client certificate of the cluster's own CA cannot be used to join", async () => {
  const before = names.map((n) => processes.find((m) => m.name === n)?.output() ?? "").join("").split("not valid for any allowed hostname").length
  await expectIntruderRefused("client-cert", {
    serverCert: join(pki, "clients/root.crt"),
    serverKey: join(pki, "clients/root.key"),
    peerCert: join(pki, "clients/root.crt"),
    peerKey: join(pki, "clients/root.key"),
    ca: join(pki, "ca.crt"),
  })
  const after = names.map((n) => processes.find((m) => m.name === n)?.output() ?? "").join("").split("not valid for any allowed hostname").length
  expect(after).toBeGreaterThan(before)
}, 60_000)

test("peer certificate rotation: a re-issued peer certificate is served to new peer connections without a restart", async () => {
  const a = processes.find((m) => m.name === "a") as MemberProcess
  const pid = a.proc.pid
  const r = spawnSync([tskvBinary, "certs", "issue", "peer", "--name", "a", "--san", "127.0.0.1", "--out", pki, "--force"])
  expect(r.exitCode).toBe(0)
  const expected = new X509Certificate(readFileSync(join(pki, "a/peer.crt"))).fingerprint256
  let served = ""
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline && served !== expected) {
    served = await peerFingerprint(peerPorts.a as number)
    if (served !== expected) await Bun.sleep(200)
  }
  expect(served).toBe(expected)
  expect(a.output()).toContain("reloaded peer TLS configuration")
  // The cluster keeps replicating through a, same process.
  expect(etcdctl(endpoints.a as string, [...root(), "put", "after-rotation", "ok"]).code).toBe(0)
  for (const n of names) expect(etcdctl(endpoints[n] as string, [...root(), "get", "after-rotation", "--print-value-only"]).stdout).toBe("ok\n")
  expect(a.proc.pid).toBe(pid)
  expect(a.proc.exitCode).toBeNull()
}, 60_000)

test("a broken new peer key keeps the old peer certificate in use, reported in the log", async () => {
  const a = processes.find((m) => m.name === "a") as MemberProcess
  const before = await peerFingerprint(peerPorts.a as number)
  const good = readFileSync(join(pki, "a/peer.key"), "utf8")
  writeFileSync(join(pki, "a/peer.key"), "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
  try {
    const deadline = Date.now() + 10_000
    while (!/"tls":"peer".*failed to reload TLS files|failed to reload TLS files.*"tls":"peer"/.test(a.output()) && Date.now() < deadline) await Bun.sleep(100)
    expect(a.output()).toMatch(/failed to reload TLS files; keeping the previous certificate, key and CA.*"tls":"peer"/)
    expect(await peerFingerprint(peerPorts.a as number)).toBe(before)
    expect(etcdctl(endpoints.a as string, [...root(), "put", "broken-peer-key", "ok"]).code).toBe(0)
    expect(etcdctl(endpoints.c as string, [...root(), "get", "broken-peer-key", "--print-value-only"]).stdout).toBe("ok\n")
  } finally {
    writeFileSync(join(pki, "a/peer.key"), good, { mode: 0o600 })
  }
}, 60_000)

test("peer CA bundle rotation: a bundle with a new CA is trusted by the peer listeners without a restart", async () => {
  const ca2 = await createCa({ commonName: "next-ca" })
  const next = await issueCertificate({ ca: ca2, kind: "peer", commonName: "b", sans: ["127.0.0.1"] })
  const identity = { cert: next.certPem, key: next.keyPem }
  for (const n of names) expect({ n, outcome: await peerHandshake(peerPorts[n] as number, identity) }).toEqual({ n, outcome: "refused" })
  // The operator appends the new CA to the bundle every member reads.
  const bundle = `${readFileSync(join(pki, "ca.crt"), "utf8")}\n${ca2.certPem}`
  writeFileSync(join(pki, "ca.crt.next"), bundle)
  renameSync(join(pki, "ca.crt.next"), join(pki, "ca.crt"))
  for (const n of names) {
    const deadline = Date.now() + 10_000
    let outcome = ""
    while (outcome !== "accepted" && Date.now() < deadline) {
      outcome = await peerHandshake(peerPorts[n] as number, identity)
      if (outcome !== "accepted") await Bun.sleep(200)
    }
    expect({ n, outcome }).toEqual({ n, outcome: "accepted" })
  }
  // The old CA's certificates still work on both listeners.
  expect(etcdctl(endpoints.b as string, [...root(), "put", "after-ca-rotation", "ok"]).code).toBe(0)
  for (const n of names) expect(etcdctl(endpoints[n] as string, [...root(), "get", "after-ca-rotation", "--print-value-only"]).stdout).toBe("ok\n")
}, 60_000)

/** Presents `identity` to a peer listener: "accepted" when the connection is still open after 1.5 s (a refusal comes sooner, even under load). */
function peerHandshake(port: number, identity: tls.ConnectionOptions): Promise<string> {
  return new Promise((resolve) => {
    let timer: ReturnType<typeof setTimeout> | undefined
    const socket = tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false, ...identity }, () => {
      timer = setTimeout(() => {
        socket.destroy()
        resolve("accepted")
      }, 1500)
    })
    const refused = (): void => {
      if (timer !== undefined) clearTimeout(timer)
      resolve("refused")
    }
    socket.on("error", refused)
    socket.on("close", refused)
  })
}

/** The certificate a peer listener presents (sha256), presenting a valid member certificate of our own. */
function peerFingerprint(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = tls.connect(
      { host: "127.0.0.1", port, rejectUnauthorized: false, cert: readFileSync(join(pki, "b/peer.crt")), key: readFileSync(join(pki, "b/peer.key")) },
      () => {
        resolve(socket.getPeerCertificate().fingerprint256)
        socket.destroy()
      },
    )
    socket.on("error", () => resolve(""))
    socket.setTimeout(3000, () => {
      socket.destroy()
      resolve("")
    })
  })
}

test("--peer-auto-tls: 3 members with self-signed peer certificates replicate over encrypted peer connections", async () => {
  const ports = await freePorts(6)
  const autoNames = ["p1", "p2", "p3"]
  const cluster = autoNames.map((n, i) => `${n}=https://127.0.0.1:${ports[i * 2 + 1]}`).join(",")
  const started: MemberProcess[] = []
  for (const [i, name] of autoNames.entries()) {
    const peer = `https://127.0.0.1:${ports[i * 2 + 1]}`
    const m = await startMember({
      kind: "tskv",
      name,
      clientPort: ports[i * 2] as number,
      peerPort: ports[i * 2 + 1] as number,
      waitReady: false,
      initialCluster: cluster,
      extraArgs: ["--peer-auto-tls", `--listen-peer-urls=${peer}`, `--initial-advertise-peer-urls=${peer}`],
    })
    processes.push(m)
    started.push(m)
  }
  const clientUrls = started.map((m) => m.clientUrl)
  await waitFor("a healthy auto-TLS cluster", () => etcdctl(clientUrls, [...timeouts, "endpoint", "health"]).code === 0)
  expect(etcdctl(clientUrls[0] as string, [...timeouts, "put", "auto", "peer-tls"]).code).toBe(0)
  for (const url of clientUrls) expect(etcdctl(url, [...timeouts, "get", "auto", "--print-value-only"]).stdout).toBe("peer-tls\n")
  for (const m of started) expect(existsSync(join(m.dataDir, "fixtures/peer/cert.pem"))).toBe(true)
  // The peer port speaks TLS only: a plain-text peer request gets no answer.
  const plain = await fetch(`http://127.0.0.1:${ports[1]}/members`, { signal: AbortSignal.timeout(2000) }).then(
    (r) => `status ${r.status}`,
    () => "refused",
  )
  expect(plain).toBe("refused")
  for (const m of started) await m.stop()
}, 90_000)
