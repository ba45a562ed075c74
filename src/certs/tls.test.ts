import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import * as tls from "node:tls"
import { type CertAndKey, createCa, createCrl, issueCertificate } from "./pki"
import { type EchoServer, handshake, startEchoServer, tempDir } from "./testing"
import { certificateCommonName, checkAllowedPeer, checkClientSan, checkSanAgainstAddress, checkSanSync, clientTlsOptions, loadTlsMaterial, ResolvedNames, serverTlsOptions, type TlsMaterial } from "./tls"

let dir = ""
let ca: CertAndKey
let otherCa: CertAndKey
let server: CertAndKey
let root: CertAndKey
let stranger: CertAndKey
let expired: CertAndKey

function write(name: string, text: string): string {
  const path = join(dir, name)
  writeFileSync(path, text)
  return path
}

function files(leaf: CertAndKey, name: string, trusted?: CertAndKey) {
  return {
    certFile: write(`${name}.crt`, leaf.certPem),
    keyFile: write(`${name}.key`, leaf.keyPem),
    ...(trusted !== undefined ? { trustedCaFile: write(`${name}-ca.crt`, trusted.certPem) } : {}),
  }
}

beforeAll(async () => {
  dir = tempDir("tskv-certs-tls-")
  ca = await createCa()
  otherCa = await createCa({ commonName: "other-ca" })
  server = await issueCertificate({ ca, kind: "server", commonName: "member-a", sans: ["127.0.0.1"] })
  root = await issueCertificate({ ca, kind: "client", commonName: "root" })
  stranger = await issueCertificate({ ca: otherCa, kind: "client", commonName: "root" })
  expired = await issueCertificate({
    ca,
    kind: "client",
    commonName: "old",
    notBefore: new Date(Date.now() - 10 * 86_400_000),
    notAfter: new Date(Date.now() - 86_400_000),
  })
})

afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe("mutual TLS on 127.0.0.1 with generated certificates", () => {
  let echo: EchoServer
  let serverMaterial: TlsMaterial
  beforeAll(async () => {
    serverMaterial = loadTlsMaterial(files(server, "server", ca))
    echo = await startEchoServer(serverTlsOptions(serverMaterial, { clientCertAuth: true }))
  })
  afterAll(() => echo.close())

  const client = (leaf?: CertAndKey) =>
    clientTlsOptions(leaf === undefined ? undefined : loadTlsMaterial(files(leaf, `client-${leaf.cert.serialNumber}`, ca)), {}) as tls.ConnectionOptions

  test("a client certificate from the CA is accepted and its CN is the verified identity", async () => {
    const result = await handshake(echo.port, client(root))
    expect(result.serverCn).toBe("member-a")
    expect(result.data).toBe("hello root")
  })

  test("a client without a certificate is refused", async () => {
    const result = await handshake(echo.port, { ...client(), ca: ca.certPem })
    expect(result.data).toBe("")
  })

  test("a client certificate from another CA is refused", async () => {
    const result = await handshake(echo.port, { ...client(stranger), ca: ca.certPem })
    expect(result.data).toBe("")
    expect(echo.clientErrors.some((e) => /verify|certificate/i.test(e))).toBe(true)
  })

  test("an expired client certificate is refused", async () => {
    const before = echo.clientErrors.length
    const result = await handshake(echo.port, { ...client(expired), ca: ca.certPem })
    expect(result.data).toBe("")
    expect(echo.clientErrors.slice(before).some((e) => /expired/i.test(e))).toBe(true)
  })

  test("the client refuses a server whose CA it does not trust", async () => {
    const result = await handshake(echo.port, { ...client(root), ca: otherCa.certPem })
    expect(result.serverCn).toBeUndefined()
    expect(result.error).toBeDefined()
  })
})

describe("TLS policy", () => {
  test("--cipher-suites and --tls-max-version reach the handshake", async () => {
    const material = loadTlsMaterial(files(server, "server-policy", ca))
    const echo = await startEchoServer(
      serverTlsOptions(material, { cipherSuites: ["TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"], maxVersion: "TLSv1.2" }),
    )
    try {
      const result = await handshake(echo.port, { ca: ca.certPem })
      expect(result.protocol).toBe("TLSv1.2")
      expect(result.cipher).toBe("ECDHE-ECDSA-AES256-GCM-SHA384")
      expect(result.data).toBe("hello -")
      const refused = await handshake(echo.port, { ca: ca.certPem, ciphers: "ECDHE-ECDSA-AES128-GCM-SHA256", maxVersion: "TLSv1.2" })
      expect(refused.serverCn).toBeUndefined()
    } finally {
      await echo.close()
    }
  })

  test("--tls-min-version TLS1.3 refuses a TLS 1.2 client", async () => {
    const echo = await startEchoServer(serverTlsOptions(loadTlsMaterial(files(server, "server-13", ca)), { minVersion: "TLSv1.3" }))
    try {
      expect((await handshake(echo.port, { ca: ca.certPem })).protocol).toBe("TLSv1.3")
      expect((await handshake(echo.port, { ca: ca.certPem, maxVersion: "TLSv1.2" })).serverCn).toBeUndefined()
    } finally {
      await echo.close()
    }
  })
})

describe("loadTlsMaterial()", () => {
  test("reads and checks certificate, key and CA bundle", () => {
    const material = loadTlsMaterial(files(server, "ok", ca))
    expect(material.leaf.subject).toBe("CN=member-a")
    expect(material.caCertificates.map((c) => c.subject)).toEqual(["CN=etcd-ca"])
    expect(material.warnings).toEqual([])
    expect(material.fingerprint).toBe(loadTlsMaterial(files(server, "ok2", ca)).fingerprint)
  })

  test("a key that does not match the certificate is refused, naming the files", () => {
    const paths = { certFile: write("m.crt", server.certPem), keyFile: write("m.key", root.keyPem) }
    expect(() => loadTlsMaterial(paths)).toThrow(`key file ${paths.keyFile} does not match the certificate in ${paths.certFile}`)
  })

  test("garbage, missing files and an empty CA bundle are refused", () => {
    expect(() => loadTlsMaterial({ certFile: write("g.crt", "garbage"), keyFile: write("g.key", server.keyPem) })).toThrow("no PEM certificate found")
    expect(() => loadTlsMaterial({ certFile: write("k.crt", server.certPem), keyFile: write("k.key", "nope") })).toThrow("the private key cannot be parsed")
    expect(() => loadTlsMaterial({ certFile: join(dir, "missing.crt"), keyFile: write("x.key", server.keyPem) })).toThrow(`cannot read certificate file ${join(dir, "missing.crt")}`)
    expect(() => loadTlsMaterial({ ...files(server, "e"), trustedCaFile: write("empty-ca.crt", "") })).toThrow("no PEM certificate found")
  })

  test("an expired certificate loads with a warning", () => {
    const material = loadTlsMaterial(files(expired, "expired"))
    expect(material.warnings[0]).toContain("expired at")
  })
})

describe("checkAllowedPeer()", () => {
  test("--peer-cert-allowed-cn and --peer-cert-allowed-hostname decide after the handshake", async () => {
    const peerA = await issueCertificate({ ca, kind: "peer", commonName: "member-a", sans: ["a.cluster.local"] })
    const decisions: string[] = []
    const material = loadTlsMaterial(files(server, "peer-server", ca))
    const policies = [{ allowedCn: ["member-a"] }, { allowedCn: ["member-b"] }, { allowedHostname: ["a.cluster.local"] }, { allowedHostname: ["b.cluster.local"] }, {}]
    let next = 0
    const peerServer = tls.createServer(serverTlsOptions(material, { clientCertAuth: true }), (socket) => {
      const result = checkAllowedPeer(socket, policies[next++] ?? {})
      decisions.push(result.ok ? "ok" : result.reason)
      socket.end()
    })
    await new Promise<void>((resolve) => peerServer.listen(0, "127.0.0.1", () => resolve()))
    const address = peerServer.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    try {
      for (let i = 0; i < policies.length; i++) await handshake(port, { ca: ca.certPem, cert: peerA.certPem, key: peerA.keyPem })
    } finally {
      await new Promise<void>((resolve) => peerServer.close(() => resolve()))
    }
    expect(decisions).toEqual([
      "ok",
      'client certificate CN "member-a" is not one of the allowed CNs member-b',
      "ok",
      "client certificate is not valid for any allowed hostname b.cluster.local",
      "ok",
    ])
  })
})

test("--client-crl-file: a revoked client certificate is refused, others are accepted", async () => {
  const revoked = await issueCertificate({ ca, kind: "client", commonName: "revoked" })
  const crlFile = write("ca.crl", await createCrl({ ca, revoked: [revoked] }))
  const material = loadTlsMaterial({ ...files(server, "crl-server", ca), crlFile })
  const echo = await startEchoServer(serverTlsOptions(material, { clientCertAuth: true }))
  try {
    expect((await handshake(echo.port, { ca: ca.certPem, cert: root.certPem, key: root.keyPem })).data).toBe("hello root")
    expect((await handshake(echo.port, { ca: ca.certPem, cert: revoked.certPem, key: revoked.keyPem })).data).toBe("")
    expect(echo.clientErrors.some((e) => /revoked/i.test(e))).toBe(true)
  } finally {
    await echo.close()
  }
})

test("certificateCommonName() reads the CN of a node:tls peer certificate (grpc-js auth context)", () => {
  const base = { subject: { CN: "root" } } as unknown as tls.PeerCertificate
  expect(certificateCommonName(base)).toBe("root")
  expect(certificateCommonName({ subject: { CN: ["a", "b"] } } as unknown as tls.PeerCertificate)).toBe("a")
  expect(certificateCommonName({ subject: { O: "x" } } as unknown as tls.PeerCertificate)).toBeUndefined()
  expect(certificateCommonName({} as tls.PeerCertificate)).toBeUndefined()
  expect(certificateCommonName(undefined)).toBeUndefined()
})

describe("client certificate SAN check (peers)", () => {
  const resolver = async (host: string) => (host === "a.cluster.local" ? ["10.0.0.1"] : host === "v6.local" ? ["fd00::1"] : [])
  const cases: [san: string, remote: string, ok: boolean][] = [
    ["IP Address:10.0.0.1, DNS:localhost", "10.0.0.1", true],
    ["IP Address:10.0.0.1", "::ffff:10.0.0.1", true],
    ["IP Address:FD00:0:0:0:0:0:0:1", "fd00::1", true],
    ["IP Address:10.0.0.2", "10.0.0.1", false],
    ["DNS:a.cluster.local", "10.0.0.1", true],
    ["DNS:v6.local", "FD00::1", true],
    ["DNS:b.cluster.local, DNS:*.cluster.local", "10.0.0.1", false],
    ["", "10.0.0.1", true],
  ]
  for (const [san, remote, ok] of cases) {
    test(`SANs "${san}" from ${remote}: ${ok ? "accepted" : "refused"}`, async () => {
      expect((await checkSanAgainstAddress({ subjectAltName: san, remote, resolve: resolver })).ok).toBe(ok)
    })
  }

  test("checkClientSan() on a real connection from 127.0.0.1", async () => {
    const good = await issueCertificate({ ca, kind: "peer", commonName: "p1", sans: [] })
    const far = await issueCertificate({ ca, kind: "client", commonName: "p2", sans: ["10.9.9.9"] })
    const results: boolean[] = []
    const material = loadTlsMaterial(files(server, "san-server", ca))
    const peerServer = tls.createServer(serverTlsOptions(material, { clientCertAuth: true }), (socket) => {
      void checkClientSan(socket).then((r) => {
        results.push(r.ok)
        socket.end()
      })
    })
    await new Promise<void>((resolve) => peerServer.listen(0, "127.0.0.1", () => resolve()))
    const address = peerServer.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    try {
      await handshake(port, { ca: ca.certPem, cert: good.certPem, key: good.keyPem })
      await handshake(port, { ca: ca.certPem, cert: far.certPem, key: far.keyPem })
    } finally {
      await new Promise<void>((resolve) => peerServer.close(() => resolve()))
    }
    expect(results).toEqual([true, false])
  })
})

describe("checkSanSync() and ResolvedNames", () => {
  test("IP SANs match at once; a DNS SAN matches once its name is resolved in the background", async () => {
    const lookups: string[] = []
    const resolved = new ResolvedNames(async (name) => {
      lookups.push(name)
      return name === "peer.example" ? ["10.0.0.7"] : []
    })
    const san = "DNS:peer.example, IP Address:10.0.0.1"
    expect(checkSanSync({ subjectAltName: san, remote: "10.0.0.1", resolved })).toEqual({ ok: true })
    expect(checkSanSync({ subjectAltName: san, remote: "::ffff:10.0.0.1", resolved })).toEqual({ ok: true })
    expect(checkSanSync({ subjectAltName: san, remote: "10.0.0.7", resolved }).ok).toBe(false)
    await Bun.sleep(5)
    expect(checkSanSync({ subjectAltName: san, remote: "10.0.0.7", resolved })).toEqual({ ok: true })
    expect(checkSanSync({ subjectAltName: san, remote: "10.0.0.8", resolved })).toMatchObject({ ok: false, reason: expect.stringContaining('"10.0.0.8" does not match') })
    expect(lookups).toEqual(["peer.example"])
  })

  test("localhost needs no lookup; a certificate without SANs passes", () => {
    const resolved = new ResolvedNames(async () => {
      throw new Error("no lookups expected")
    })
    expect(checkSanSync({ subjectAltName: "DNS:localhost", remote: "127.0.0.1", resolved })).toEqual({ ok: true })
    expect(checkSanSync({ subjectAltName: "DNS:localhost", remote: "::1", resolved })).toEqual({ ok: true })
    expect(checkSanSync({ subjectAltName: "", remote: "10.1.1.1", resolved })).toEqual({ ok: true })
  })
})
