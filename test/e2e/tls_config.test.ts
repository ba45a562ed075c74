// The TLS settings reach the member from every source etcd reads them from:
// ETCD_* environment variables and the --config-file security blocks
// (client-transport-security, peer-transport-security), plus
// --cipher-suites and --tls-min-version / --tls-max-version on the wire.

import { afterAll, beforeAll, expect, test } from "bun:test"
import { spawnSync } from "bun"
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import * as tls from "node:tls"
import { etcdctl, type MemberProcess, requireBinary, startMember, tskvBinary } from "../support/procs"
import { freePorts } from "../support/ports"
import { tempDir } from "../support/tmp"

const dir = tempDir("tls-config-e2e-")
const pki = join(dir.path, "pki")
const processes: MemberProcess[] = []

beforeAll(() => {
  requireBinary()
  const r = spawnSync([tskvBinary, "certs", "cluster", "--member", "a=127.0.0.1", "--out", pki])
  if (r.exitCode !== 0) throw new Error(`tskv certs cluster failed: ${r.stderr.toString()}`)
})

afterAll(async () => {
  await Promise.all(processes.map((m) => m.stop()))
  dir.remove()
})

const timeouts = ["--dial-timeout=2s", "--command-timeout=4s"]
const root = [`--cacert=${join(pki, "ca.crt")}`, `--cert=${join(pki, "clients/root.crt")}`, `--key=${join(pki, "clients/root.key")}`, ...timeouts]

async function waitHealthy(m: MemberProcess, ep: string): Promise<void> {
  const deadline = Date.now() + 20_000
  while (etcdctl(ep, [...root, "endpoint", "health"]).code !== 0) {
    if (Date.now() > deadline || m.proc.exitCode !== null) throw new Error(`member did not become healthy:\n${m.output()}`)
    await Bun.sleep(100)
  }
}

interface Negotiated {
  protocol?: string
  cipher?: string
  error?: string
}

/** What a handshake with the client port negotiates, as root. */
function negotiate(port: number, options: tls.ConnectionOptions): Promise<Negotiated> {
  return new Promise((resolve) => {
    const socket = tls.connect(
      {
        host: "127.0.0.1",
        port,
        ca: readFileSync(join(pki, "ca.crt")),
        cert: readFileSync(join(pki, "clients/root.crt")),
        key: readFileSync(join(pki, "clients/root.key")),
        ...options,
      },
      () => {
        resolve({ protocol: socket.getProtocol() ?? "", cipher: socket.getCipher().name })
        socket.destroy()
      },
    )
    socket.on("error", (e) => resolve({ error: e.message }))
    socket.setTimeout(3000, () => {
      socket.destroy()
      resolve({ error: "timeout" })
    })
  })
}

test("client TLS from ETCD_* variables, with ETCD_TLS_MIN_VERSION=TLS1.3", async () => {
  const [clientPort, peerPort] = (await freePorts(2)) as [number, number]
  const url = `https://127.0.0.1:${clientPort}`
  const m = await startMember({
    kind: "tskv",
    name: "a",
    clientPort,
    peerPort,
    waitReady: false,
    extraArgs: [`--listen-client-urls=${url}`, `--advertise-client-urls=${url}`],
    env: {
      ETCD_CERT_FILE: join(pki, "a/server.crt"),
      ETCD_KEY_FILE: join(pki, "a/server.key"),
      ETCD_TRUSTED_CA_FILE: join(pki, "ca.crt"),
      ETCD_CLIENT_CERT_AUTH: "true",
      ETCD_TLS_MIN_VERSION: "TLS1.3",
    },
  })
  processes.push(m)
  const ep = `127.0.0.1:${clientPort}`
  await waitHealthy(m, ep)
  expect(etcdctl(ep, [...root, "put", "from-env", "yes"]).code).toBe(0)
  // Client certificates are required (ETCD_CLIENT_CERT_AUTH).
  expect(etcdctl(ep, [`--cacert=${join(pki, "ca.crt")}`, ...timeouts, "get", "from-env"]).code).toBe(1)
  expect(await negotiate(clientPort, {})).toMatchObject({ protocol: "TLSv1.3" })
  expect((await negotiate(clientPort, { maxVersion: "TLSv1.2" })).error).toBeDefined()
  await Bun.sleep(50)
  expect(m.output()).toContain("ETCD_CERT_FILE")
  await m.stop()
}, 40_000)

test("--config-file: client-transport-security and peer-transport-security blocks, cipher-suites and tls-max-version", async () => {
  const [clientPort, peerPort] = (await freePorts(2)) as [number, number]
  const dataDir = join(dir.path, "a.tskv")
  mkdirSync(dataDir, { recursive: true, mode: 0o700 })
  const client = `https://127.0.0.1:${clientPort}`
  const peer = `https://127.0.0.1:${peerPort}`
  const configFile = join(dir.path, "tskv.yaml")
  writeFileSync(
    configFile,
    [
      "name: a",
      `data-dir: ${dataDir}`,
      `listen-client-urls: ${client}`,
      `advertise-client-urls: ${client}`,
      `listen-peer-urls: ${peer}`,
      `initial-advertise-peer-urls: ${peer}`,
      `initial-cluster: a=${peer}`,
      "initial-cluster-state: new",
      "client-transport-security:",
      `  cert-file: ${join(pki, "a/server.crt")}`,
      `  key-file: ${join(pki, "a/server.key")}`,
      `  trusted-ca-file: ${join(pki, "ca.crt")}`,
      "  client-cert-auth: true",
      "peer-transport-security:",
      `  cert-file: ${join(pki, "a/peer.crt")}`,
      `  key-file: ${join(pki, "a/peer.key")}`,
      `  trusted-ca-file: ${join(pki, "ca.crt")}`,
      "  client-cert-auth: true",
      "  allowed-cn: a",
      "cipher-suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384]",
      "tls-max-version: TLS1.2",
      "",
    ].join("\n"),
  )
  // Other flags are ignored when --config-file is given (etcd's rule): everything comes from the file.
  const m = await startMember({ kind: "tskv", name: "a", dataDir, clientPort, peerPort, waitReady: false, extraArgs: [`--config-file=${configFile}`] })
  processes.push(m)
  const ep = `127.0.0.1:${clientPort}`
  await waitHealthy(m, ep)
  expect(etcdctl(ep, [...root, "put", "from-file", "yes"]).code).toBe(0)
  expect(etcdctl(ep, [...root, "get", "from-file", "--print-value-only"]).stdout).toBe("yes\n")
  expect(await negotiate(clientPort, {})).toEqual({ protocol: "TLSv1.2", cipher: "ECDHE-ECDSA-AES128-GCM-SHA256" })
  // A suite outside the list is refused.
  expect((await negotiate(clientPort, { ciphers: "ECDHE-ECDSA-CHACHA20-POLY1305", maxVersion: "TLSv1.2" })).error).toBeDefined()
  // The peer port is TLS with client certificates, CN "a" only: member a's peer certificate is accepted, b's CN is not.
  const list = etcdctl(ep, [...root, "member", "list"])
  expect(list.stdout).toContain(`a, ${peer}, ${client}`)
  const peerOk = await negotiate(peerPort, { cert: readFileSync(join(pki, "a/peer.crt")), key: readFileSync(join(pki, "a/peer.key")) })
  expect(peerOk.protocol).toBe("TLSv1.2")
  await Bun.sleep(300)
  expect(m.output()).not.toContain("rejected peer TLS connection")
  // b's certificate: same CA, CN "b": the handshake completes, then the member drops it (allowed-cn).
  const other = spawnSync([tskvBinary, "certs", "issue", "peer", "--name", "b", "--san", "127.0.0.1", "--out", pki])
  expect(other.exitCode).toBe(0)
  await negotiate(peerPort, { cert: readFileSync(join(pki, "b/peer.crt")), key: readFileSync(join(pki, "b/peer.key")) })
  const deadline = Date.now() + 5000
  while (!m.output().includes("is not one of the allowed CNs a") && Date.now() < deadline) await Bun.sleep(50)
  expect(m.output()).toMatch(/rejected peer TLS connection.*CN \\"b\\" is not one of the allowed CNs a/)
  await m.stop()
}, 40_000)

test("an unreadable or mismatched TLS file stops the start before the data dir is created", async () => {
  const cases = {
    "missing client certificate": ["--cert-file=/nonexistent/server.crt", `--key-file=${join(pki, "a/server.key")}`],
    "client key of another certificate": [`--cert-file=${join(pki, "a/server.crt")}`, `--key-file=${join(pki, "a/peer.key")}`],
    "missing peer key": [`--peer-cert-file=${join(pki, "a/peer.crt")}`, "--peer-key-file=/nonexistent/peer.key"],
  }
  for (const [what, flags] of Object.entries(cases)) {
    const [clientPort, peerPort] = (await freePorts(2)) as [number, number]
    const dataDir = join(dir.path, `bad-${clientPort}`)
    // Only the side under test is https.
    const peerSide = flags[0]?.startsWith("--peer") === true
    const client = `${peerSide ? "http" : "https"}://127.0.0.1:${clientPort}`
    const peer = `${peerSide ? "https" : "http"}://127.0.0.1:${peerPort}`
    const r = spawnSync([
      tskvBinary,
      "--name=a",
      `--data-dir=${dataDir}`,
      `--listen-client-urls=${client}`,
      `--advertise-client-urls=${client}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=a=${peer}`,
      ...flags,
    ], { timeout: 20_000 })
    expect({ what, code: r.exitCode, dataDir: existsSync(dataDir) }).toEqual({ what, code: 1, dataDir: false })
    expect(r.stderr.toString()).toMatch(/cannot read (certificate|key) file \/nonexistent|does not match the certificate/)
  }
}, 60_000)
