import { describe, expect, test } from "bun:test"
import { X509Certificate } from "node:crypto"
import { createCa, createSelfSigned, issueCertificate, loadCa, validSan } from "./pki"

const serverAuth = "1.3.6.1.5.5.7.3.1"
const clientAuth = "1.3.6.1.5.5.7.3.2"
const dayMs = 86_400_000

describe("createCa()", () => {
  test("makes a self-signed ECDSA P-256 CA valid for 10 years", async () => {
    const ca = await createCa()
    const cert = new X509Certificate(ca.certPem)
    expect(cert.ca).toBe(true)
    expect(cert.subject).toBe("CN=etcd-ca")
    expect(cert.issuer).toBe("CN=etcd-ca")
    expect(cert.verify(cert.publicKey)).toBe(true)
    expect(cert.publicKey.asymmetricKeyType).toBe("ec")
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe("prime256v1")
    const lifetimeDays = (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / dayMs
    expect(Math.round(lifetimeDays)).toBe(3650)
    expect(ca.keyPem).toStartWith("-----BEGIN PRIVATE KEY-----")
  })

  test("--key-type rsa makes an RSA 2048 CA", async () => {
    const ca = await createCa({ keyType: "rsa", commonName: "my-ca" })
    const cert = new X509Certificate(ca.certPem)
    expect(cert.publicKey.asymmetricKeyType).toBe("rsa")
    expect(cert.publicKey.asymmetricKeyDetails?.modulusLength).toBe(2048)
    expect(cert.subject).toBe("CN=my-ca")
  })
})

describe("issueCertificate()", () => {
  test("server certificates: signed by the CA, SANs with the loopback names, serverAuth (and clientAuth, as kubeadm)", async () => {
    const ca = await createCa()
    const issued = await issueCertificate({ ca, kind: "server", commonName: "a", sans: ["10.0.0.1", "a.example", "fd00::1"] })
    const cert = new X509Certificate(issued.certPem)
    const caCert = new X509Certificate(ca.certPem)
    expect(cert.ca).toBe(false)
    expect(cert.subject).toBe("CN=a")
    expect(cert.issuer).toBe(caCert.subject)
    expect(cert.checkIssued(caCert)).toBe(true)
    expect(cert.verify(caCert.publicKey)).toBe(true)
    expect(cert.keyUsage).toEqual([serverAuth, clientAuth])
    for (const name of ["10.0.0.1", "127.0.0.1"]) expect(cert.checkIP(name)).toBe(name)
    for (const name of ["a.example", "localhost"]) expect(cert.checkHost(name)).toBe(name)
    expect(cert.checkIP("fd00::1")).toBe("fd00::1")
    expect(cert.checkIP("::1")).toBe("::1")
    expect(Math.round((Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / dayMs)).toBe(365)
  })

  test("peer certificates carry serverAuth and clientAuth", async () => {
    const ca = await createCa()
    const cert = new X509Certificate((await issueCertificate({ ca, kind: "peer", commonName: "a", sans: ["10.0.0.1"] })).certPem)
    expect(cert.keyUsage).toEqual([serverAuth, clientAuth])
    expect(cert.checkIP("10.0.0.1")).toBe("10.0.0.1")
  })

  test("client certificates carry clientAuth only and no loopback SANs", async () => {
    const ca = await createCa()
    const cert = new X509Certificate((await issueCertificate({ ca, kind: "client", commonName: "root", organization: "system:masters" })).certPem)
    expect(cert.keyUsage).toEqual([clientAuth])
    expect(cert.subject).toBe("CN=root\nO=system:masters")
    expect(cert.subjectAltName).toBeUndefined()
  })

  test("an RSA leaf under an ECDSA CA, and explicit validity dates", async () => {
    const ca = await createCa()
    const notBefore = new Date(Date.now() - 10 * dayMs)
    const notAfter = new Date(Date.now() - dayMs)
    const cert = new X509Certificate(
      (await issueCertificate({ ca, kind: "client", commonName: "old", keyType: "rsa", notBefore, notAfter })).certPem,
    )
    expect(cert.publicKey.asymmetricKeyType).toBe("rsa")
    expect(Date.parse(cert.validTo)).toBe(Math.floor(notAfter.getTime() / 1000) * 1000)
  })
})

describe("loadCa()", () => {
  test("reads back a CA written as PEM and signs with it", async () => {
    const ca = await createCa({ keyType: "rsa" })
    const loaded = await loadCa(ca.certPem, ca.keyPem)
    const leaf = new X509Certificate((await issueCertificate({ ca: loaded, kind: "server", commonName: "x" })).certPem)
    expect(leaf.verify(new X509Certificate(ca.certPem).publicKey)).toBe(true)
  })

  test("refuses a key that does not belong to the certificate", async () => {
    const [a, b] = [await createCa(), await createCa()]
    await expect(loadCa(a.certPem, b.keyPem)).rejects.toThrow("the CA key does not match the CA certificate")
  })
})

test("createSelfSigned() makes a self-signed leaf with the given SANs", async () => {
  const self = await createSelfSigned({ commonName: "tskv", sans: ["10.1.1.1"], kind: "peer" })
  const cert = new X509Certificate(self.certPem)
  expect(cert.ca).toBe(false)
  expect(cert.verify(cert.publicKey)).toBe(true)
  expect(cert.checkIP("10.1.1.1")).toBe("10.1.1.1")
  expect(cert.keyUsage).toEqual([serverAuth, clientAuth])
})

test("validSan() accepts IPs and DNS names, refuses the rest", () => {
  for (const san of ["10.0.0.1", "::1", "a.example", "*.a.example", "node-1"]) expect(validSan(san)).toBe(true)
  for (const san of ["a b", "http://x", "a..b", ""]) expect(validSan(san)).toBe(false)
})
