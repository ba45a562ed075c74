import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { X509Certificate } from "node:crypto"
import { existsSync, readFileSync, rmSync, statSync } from "node:fs"
import { createServer } from "node:net"
import { join } from "node:path"
import { ensureSelfSignedCert } from "./auto_tls"
import { type CertsIo, runCertsCommand } from "./certs_command"
import { handshake, startEchoServer, tempDir } from "./testing"
import { loadTlsMaterial, serverTlsOptions } from "./tls"

let dir = ""
beforeAll(() => {
  dir = tempDir("tskv-certs-cmd-")
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = ""
  let err = ""
  const io: CertsIo = { out: (t) => (out += t), err: (t) => (err += t) }
  const code = await runCertsCommand(argv, io)
  return { code, out, err }
}

const cert = (path: string) => new X509Certificate(readFileSync(path))
const mode = (path: string) => statSync(path).mode & 0o777
const serverAuth = "1.3.6.1.5.5.7.3.1"
const clientAuth = "1.3.6.1.5.5.7.3.2"

describe("tskv certs cluster", () => {
  let out = ""
  let result: { code: number; out: string; err: string }
  beforeAll(async () => {
    out = join(dir, "cluster")
    result = await run("cluster", "--member", "a=10.0.0.1", "--member=b=10.0.0.2,b.example", "--member", "c=127.0.0.1", "--out", out)
  })

  test("writes the CA, server and peer certificates per member and the client certificates, keys 0600", () => {
    expect(result.err).toBe("")
    expect(result.code).toBe(0)
    const expected = [
      "ca.crt", "ca.key",
      ...["a", "b", "c"].flatMap((m) => [`${m}/server.crt`, `${m}/server.key`, `${m}/peer.crt`, `${m}/peer.key`]),
      "clients/root.crt", "clients/root.key", "clients/kube-apiserver-etcd-client.crt", "clients/kube-apiserver-etcd-client.key",
    ]
    for (const file of expected) {
      const path = join(out, file)
      expect(existsSync(path)).toBe(true)
      expect(mode(path)).toBe(file.endsWith(".key") ? 0o600 : 0o644)
      expect(result.out).toContain(`wrote ${path}`)
    }
  })

  test("certificates chain to the CA with the right SANs and extended key usages", () => {
    const ca = cert(join(out, "ca.crt"))
    expect(ca.ca).toBe(true)
    const serverB = cert(join(out, "b/server.crt"))
    expect(serverB.checkIssued(ca) && serverB.verify(ca.publicKey)).toBe(true)
    expect(serverB.subject).toBe("CN=b")
    for (const ip of ["10.0.0.2", "127.0.0.1", "::1"]) expect(serverB.checkIP(ip)).toBe(ip)
    for (const host of ["b.example", "localhost"]) expect(serverB.checkHost(host)).toBe(host)
    expect(serverB.checkIP("10.0.0.1")).toBeUndefined()
    expect(serverB.keyUsage).toContain(serverAuth)
    const peerA = cert(join(out, "a/peer.crt"))
    expect(peerA.keyUsage).toEqual([serverAuth, clientAuth])
    expect(peerA.checkIP("10.0.0.1")).toBe("10.0.0.1")
    const root = cert(join(out, "clients/root.crt"))
    expect(root.subject).toBe("CN=root")
    expect(root.keyUsage).toEqual([clientAuth])
    expect(root.verify(ca.publicKey)).toBe(true)
    const apiserver = cert(join(out, "clients/kube-apiserver-etcd-client.crt"))
    expect(apiserver.subject).toBe("CN=kube-apiserver-etcd-client\nO=system:masters")
  })

  test("the summary names the flags that use each file and shows how to start the members", () => {
    expect(result.out).toContain("--trusted-ca-file and --peer-trusted-ca-file on every member")
    expect(result.out).toContain("--cert-file on member a")
    expect(result.out).toContain("--peer-key-file on member b")
    expect(result.out).toContain("kube-apiserver --etcd-certfile")
    expect(result.out).toContain("--initial-cluster a=https://10.0.0.1:2380,b=https://10.0.0.2:2380,c=https://127.0.0.1:2380")
  })

  test("a second run refuses to overwrite; --force reuses the CA and replaces the leaves", async () => {
    const again = await run("cluster", "--member", "a=10.0.0.1", "--out", out)
    expect(again.code).toBe(2)
    expect(again.err).toContain("already exists (use --force to replace it)")
    const caBefore = readFileSync(join(out, "ca.crt"), "utf8")
    const forced = await run("cluster", "--member", "a=10.0.0.1", "--out", out, "--force")
    expect(forced.code).toBe(0)
    expect(forced.out).toContain(`using the existing CA ${join(out, "ca.crt")}`)
    expect(readFileSync(join(out, "ca.crt"), "utf8")).toBe(caBefore)
    expect(cert(join(out, "a/server.crt")).verify(cert(join(out, "ca.crt")).publicKey)).toBe(true)
  })

  test("the written files make a working mutual TLS connection", async () => {
    const material = loadTlsMaterial({ certFile: join(out, "c/server.crt"), keyFile: join(out, "c/server.key"), trustedCaFile: join(out, "ca.crt") })
    const echo = await startEchoServer(serverTlsOptions(material, { clientCertAuth: true }))
    try {
      const ca = readFileSync(join(out, "ca.crt"), "utf8")
      const result = await handshake(echo.port, {
        ca,
        cert: readFileSync(join(out, "clients/root.crt")),
        key: readFileSync(join(out, "clients/root.key")),
      })
      expect(result).toMatchObject({ serverCn: "c", data: "hello root" })
    } finally {
      await echo.close()
    }
  })
})

describe("tskv certs init-ca and issue", () => {
  test("init-ca then issue server, peer and client (rsa)", async () => {
    const out = join(dir, "pki")
    expect((await run("init-ca", "--out", out, "--cn", "my-ca", "--key-type", "rsa")).code).toBe(0)
    expect(cert(join(out, "ca.crt")).subject).toBe("CN=my-ca")
    expect(mode(join(out, "ca.key"))).toBe(0o600)
    expect((await run("init-ca", "--out", out)).code).toBe(2)
    const issued = await run("issue", "server", "--name", "m1", "--san", "10.1.0.1,m1.example", "--san", "fd00::9", "--out", out, "--days", "30")
    expect(issued.code).toBe(0)
    const server = cert(join(out, "m1/server.crt"))
    expect(server.checkIP("fd00::9")).toBe("fd00::9")
    expect(server.checkHost("m1.example")).toBe("m1.example")
    expect(server.publicKey.asymmetricKeyType).toBe("ec")
    expect(Math.round((Date.parse(server.validTo) - Date.parse(server.validFrom)) / 86_400_000)).toBe(30)
    expect((await run("issue", "peer", "--name", "m1", "--out", out, "--key-type", "rsa")).code).toBe(0)
    expect(cert(join(out, "m1/peer.crt")).publicKey.asymmetricKeyType).toBe("rsa")
    expect((await run("issue", "client", "--name", "alice", "--org", "dev", "--out", out)).code).toBe(0)
    expect(cert(join(out, "clients/alice.crt")).subject).toBe("CN=alice\nO=dev")
    expect(cert(join(out, "clients/alice.crt")).verify(cert(join(out, "ca.crt")).publicKey)).toBe(true)
  })

  const usageCases: [argv: string[], code: number, message: string][] = [
    [[], 2, "Usage:"],
    [["bogus"], 2, 'unknown command "bogus"'],
    [["issue", "server"], 2, "--name NAME is required"],
    [["issue", "thing", "--name", "x"], 2, "expected issue server, issue peer or issue client"],
    [["issue", "server", "--name", "x", "--out", "/nonexistent-tskv"], 2, "CA files /nonexistent-tskv/ca.crt and /nonexistent-tskv/ca.key not found"],
    [["cluster"], 2, "at least one --member NAME=IP|DNS is required"],
    [["cluster", "--member", "a"], 2, 'invalid --member "a"'],
    [["cluster", "--member", "a=not a host"], 2, 'invalid SAN "not a host"'],
    [["cluster", "--member", "a=10.0.0.1", "--member", "a=10.0.0.2"], 2, "member a is given twice"],
    [["init-ca", "--key-type", "dsa"], 2, 'invalid value "dsa" for flag --key-type: expected ecdsa or rsa'],
    [["init-ca", "--days", "0"], 2, 'invalid value "0" for flag --days'],
    [["init-ca", "--wat"], 2, "unknown flag: --wat"],
  ]
  for (const [argv, code, message] of usageCases) {
    test(`tskv certs ${argv.join(" ")} -> exit ${code}: ${message}`, async () => {
      const result = await run(...argv)
      expect(result.code).toBe(code)
      expect(result.err).toContain(message)
    })
  }

  test("--help prints the usage to stdout", async () => {
    const result = await run("--help")
    expect(result.code).toBe(0)
    expect(result.out).toContain("tskv certs cluster --member NAME=IP|DNS")
  })
})

test("ensureSelfSignedCert() writes <data-dir>/fixtures/peer once and reuses it", async () => {
  const dataDir = join(dir, "auto.tskv")
  const files = await ensureSelfSignedCert({ dataDir, side: "peer", hosts: ["127.0.0.1", "node1.example", "0.0.0.0"], validityYears: 2 })
  expect(files).toEqual({ certFile: join(dataDir, "fixtures/peer/cert.pem"), keyFile: join(dataDir, "fixtures/peer/key.pem") })
  expect(mode(files.keyFile)).toBe(0o600)
  const generated = cert(files.certFile)
  expect(generated.checkIP("127.0.0.1")).toBe("127.0.0.1")
  expect(generated.checkHost("node1.example")).toBe("node1.example")
  expect(generated.keyUsage).toEqual([serverAuth, clientAuth])
  expect(Math.round((Date.parse(generated.validTo) - Date.parse(generated.validFrom)) / 86_400_000)).toBe(730)
  const before = readFileSync(files.certFile, "utf8")
  await ensureSelfSignedCert({ dataDir, side: "peer", hosts: ["127.0.0.1"], validityYears: 1 })
  expect(readFileSync(files.certFile, "utf8")).toBe(before)
  expect(loadTlsMaterial(files).leaf.subject).toBe("CN=tskv\nO=tskv")
})

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}

async function etcdctl(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const proc = Bun.spawn(["etcdctl", ...args], { env: { ...process.env, ETCDCTL_API: "3" }, stdout: "pipe", stderr: "pipe" })
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited])
  return { code, out, err }
}

test("real etcd 3.4 and etcdctl (Go TLS) accept the certificates of tskv certs cluster", async () => {
  const out = join(dir, "etcd-pki")
  expect((await run("cluster", "--member", "e1=127.0.0.1", "--out", out)).code).toBe(0)
  const [clientPort, peerPort] = [await freePort(), await freePort()]
  const clientUrl = `https://127.0.0.1:${clientPort}`
  const peerUrl = `https://127.0.0.1:${peerPort}`
  const etcd = Bun.spawn(
    [
      "etcd", "--name", "e1", "--data-dir", join(dir, "e1.etcd"),
      "--cert-file", join(out, "e1/server.crt"), "--key-file", join(out, "e1/server.key"),
      "--trusted-ca-file", join(out, "ca.crt"), "--client-cert-auth",
      "--peer-cert-file", join(out, "e1/peer.crt"), "--peer-key-file", join(out, "e1/peer.key"),
      "--peer-trusted-ca-file", join(out, "ca.crt"), "--peer-client-cert-auth",
      "--listen-client-urls", clientUrl, "--advertise-client-urls", clientUrl,
      "--listen-peer-urls", peerUrl, "--initial-advertise-peer-urls", peerUrl,
      "--initial-cluster", `e1=${peerUrl}`,
    ],
    { stdout: "ignore", stderr: "pipe" },
  )
  const tlsArgs = ["--endpoints", clientUrl, "--cacert", join(out, "ca.crt"), "--cert", join(out, "clients/root.crt"), "--key", join(out, "clients/root.key")]
  try {
    let health = { code: -1, out: "", err: "" }
    for (let i = 0; i < 50 && health.code !== 0; i++) {
      await Bun.sleep(200)
      health = await etcdctl([...tlsArgs, "--dial-timeout", "1s", "endpoint", "health"])
    }
    expect(health.err).toContain("is healthy")
    expect((await etcdctl([...tlsArgs, "put", "k", "v"])).out).toBe("OK\n")
    expect((await etcdctl([...tlsArgs, "get", "k"])).out).toBe("k\nv\n")
    const noCert = await etcdctl(["--endpoints", clientUrl, "--cacert", join(out, "ca.crt"), "--dial-timeout", "1s", "--command-timeout", "2s", "get", "k"])
    expect(noCert.code).not.toBe(0)
  } finally {
    etcd.kill()
    await etcd.exited
  }
}, 30_000)

test("real etcd 3.4: two members join over peer mutual TLS with tskv certs cluster peer certificates", async () => {
  const out = join(dir, "etcd-peers")
  expect((await run("cluster", "--member", "p1=127.0.0.1", "--member", "p2=127.0.0.1", "--out", out)).code).toBe(0)
  const ports = { p1: [await freePort(), await freePort()], p2: [await freePort(), await freePort()] }
  const peerUrl = (name: "p1" | "p2") => `https://127.0.0.1:${ports[name][1]}`
  const clientUrl = (name: "p1" | "p2") => `https://127.0.0.1:${ports[name][0]}`
  const initialCluster = `p1=${peerUrl("p1")},p2=${peerUrl("p2")}`
  const start = (name: "p1" | "p2") =>
    Bun.spawn(
      [
        "etcd", "--name", name, "--data-dir", join(dir, `${name}.etcd`),
        "--cert-file", join(out, name, "server.crt"), "--key-file", join(out, name, "server.key"),
        "--trusted-ca-file", join(out, "ca.crt"), "--client-cert-auth",
        "--peer-cert-file", join(out, name, "peer.crt"), "--peer-key-file", join(out, name, "peer.key"),
        "--peer-trusted-ca-file", join(out, "ca.crt"), "--peer-client-cert-auth",
        "--listen-client-urls", clientUrl(name), "--advertise-client-urls", clientUrl(name),
        "--listen-peer-urls", peerUrl(name), "--initial-advertise-peer-urls", peerUrl(name),
        "--initial-cluster", initialCluster, "--initial-cluster-token", "tskv-certs-test",
      ],
      { stdout: "ignore", stderr: "ignore" },
    )
  const members = [start("p1"), start("p2")]
  const tlsArgs = ["--cacert", join(out, "ca.crt"), "--cert", join(out, "clients/root.crt"), "--key", join(out, "clients/root.key")]
  try {
    let put = { code: -1, out: "", err: "" }
    for (let i = 0; i < 75 && put.code !== 0; i++) {
      await Bun.sleep(200)
      put = await etcdctl(["--endpoints", clientUrl("p1"), ...tlsArgs, "--dial-timeout", "1s", "--command-timeout", "2s", "put", "k", "v"])
    }
    expect(put.out).toBe("OK\n")
    const get = await etcdctl(["--endpoints", clientUrl("p2"), ...tlsArgs, "get", "k", "--print-value-only"])
    expect(get.out).toBe("v\n")
    const list = await etcdctl(["--endpoints", clientUrl("p2"), ...tlsArgs, "member", "list"])
    expect(list.out.trim().split("\n")).toHaveLength(2)
    expect(list.out).toContain(", started, p1, ")
    expect(list.out).toContain(", started, p2, ")
  } finally {
    for (const member of members) member.kill()
    await Promise.all(members.map((m) => m.exited))
  }
}, 40_000)
