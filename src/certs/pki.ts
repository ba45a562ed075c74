// Certificate generation with @peculiar/x509 over WebCrypto (crypto.subtle):
// a CA and the leaf certificates an etcd-style cluster needs, shaped like
// kubeadm's etcd certificates (ECDSA P-256 by default or RSA 2048, CA 10 years,
// leaves 1 year, serverAuth/clientAuth extended key usages, SANs with IPs and
// DNS names). Keys are PKCS#8 PEM ("PRIVATE KEY"), which Go, OpenSSL, Node and
// Bun all read.

import { createPrivateKey, randomBytes, X509Certificate as NodeX509 } from "node:crypto"
import { isIP } from "node:net"
import { type X509, x509 } from "./x509"

export type KeyType = "ecdsa" | "rsa"
export type LeafKind = "server" | "peer" | "client"

/** A certificate with its private key, both PEM, plus the parsed forms. */
export interface CertAndKey {
  readonly certPem: string
  readonly keyPem: string
  readonly cert: X509.X509Certificate
  readonly privateKey: CryptoKey
}

const dayMs = 24 * 60 * 60 * 1000
/** Backdating absorbs small clock differences between machines (kubeadm does the same). */
const backdateMs = 5 * 60 * 1000
export const caValidityDays = 3650
export const leafValidityDays = 365

const ecdsa = { name: "ECDSA", namedCurve: "P-256" } as const
const ecdsaSign = { name: "ECDSA", hash: "SHA-256" } as const
const rsa = { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" } as const

type Algorithm = Parameters<typeof crypto.subtle.sign>[0]

function generationAlgorithm(keyType: KeyType): Parameters<typeof crypto.subtle.generateKey>[0] {
  return keyType === "rsa" ? rsa : ecdsa
}

function signingAlgorithm(key: CryptoKey): Algorithm {
  return key.algorithm.name === "ECDSA" ? ecdsaSign : { name: "RSASSA-PKCS1-v1_5" }
}

async function generateKeys(keyType: KeyType): Promise<CryptoKeyPair> {
  return (await crypto.subtle.generateKey(generationAlgorithm(keyType), true, ["sign", "verify"])) as CryptoKeyPair
}

async function privateKeyPem(key: CryptoKey): Promise<string> {
  const der = await crypto.subtle.exportKey("pkcs8", key)
  return pemText(x509.PemConverter.encode(der, "PRIVATE KEY"))
}

/** PEM files end with a newline, so that `cat a.crt b.crt > bundle.crt` works. */
function pemText(pem: string): string {
  return pem.endsWith("\n") ? pem : `${pem}\n`
}

/** A positive 128-bit serial number, hex. */
function serialNumber(): string {
  const bytes = randomBytes(16)
  bytes[0] = (bytes[0] ?? 0) & 0x7f | 0x01
  return bytes.toString("hex")
}

export interface Validity {
  /** Default: now minus 5 minutes. */
  readonly notBefore?: Date
  /** Default: notBefore plus the kind's lifetime. */
  readonly notAfter?: Date
  /** Lifetime in days when notAfter is not given. */
  readonly days?: number
}

function validity(options: Validity, defaultDays: number): { notBefore: Date; notAfter: Date } {
  const notBefore = options.notBefore ?? new Date(Date.now() - backdateMs)
  const notAfter = options.notAfter ?? new Date(notBefore.getTime() + (options.days ?? defaultDays) * dayMs + backdateMs)
  return { notBefore, notAfter }
}

/** Escapes a value for an X.500 name string ("CN=a\,b"). */
function dnValue(value: string): string {
  return value.replace(/[,+"\\<>;=#]/g, (c) => `\\${c}`)
}

function subjectName(commonName: string, organization?: string): string {
  return organization === undefined ? `CN=${dnValue(commonName)}` : `CN=${dnValue(commonName)}, O=${dnValue(organization)}`
}

export interface CaOptions extends Validity {
  readonly commonName?: string
  readonly keyType?: KeyType
}

/** A self-signed CA: basicConstraints CA (critical), keyCertSign + cRLSign. */
export async function createCa(options: CaOptions = {}): Promise<CertAndKey> {
  const keys = await generateKeys(options.keyType ?? "ecdsa")
  const { notBefore, notAfter } = validity(options, caValidityDays)
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: subjectName(options.commonName ?? "etcd-ca"),
    notBefore,
    notAfter,
    keys,
    signingAlgorithm: signingAlgorithm(keys.privateKey),
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  })
  return { certPem: pemText(cert.toString("pem")), keyPem: await privateKeyPem(keys.privateKey), cert, privateKey: keys.privateKey }
}

/** Reads a CA certificate and its PKCS#8, SEC1 or PKCS#1 key from PEM. */
export async function loadCa(certPem: string, keyPem: string): Promise<CertAndKey> {
  const cert = new x509.X509Certificate(certPem)
  const nodeKey = createPrivateKey(keyPem)
  const pkcs8 = nodeKey.export({ type: "pkcs8", format: "der" })
  const algorithm = nodeKey.asymmetricKeyType === "ec" ? ecdsa : nodeKey.asymmetricKeyType === "rsa" ? rsa : undefined
  if (algorithm === undefined) throw new Error(`unsupported CA key type ${nodeKey.asymmetricKeyType ?? "unknown"} (expected EC or RSA)`)
  if (!new NodeX509(certPem).checkPrivateKey(nodeKey)) throw new Error("the CA key does not match the CA certificate")
  const privateKey = await crypto.subtle.importKey("pkcs8", pkcs8, algorithm, true, ["sign"])
  return { certPem: pemText(cert.toString("pem")), keyPem: await privateKeyPem(privateKey), cert, privateKey }
}

export interface LeafOptions extends Validity {
  readonly ca: CertAndKey
  readonly kind: LeafKind
  readonly commonName: string
  readonly organization?: string
  /** IP addresses and DNS names; server and peer certificates always get 127.0.0.1, ::1 and localhost too. */
  readonly sans?: readonly string[]
  readonly keyType?: KeyType
}

/** The default SANs of server and peer certificates (kubeadm adds the same). */
export const loopbackSans = ["localhost", "127.0.0.1", "::1"] as const

/**
 * Extended key usages, as kubeadm gives them: a server certificate carries
 * clientAuth too, because etcd (and tskv) present --cert-file when they dial
 * themselves or other members as a client unless --client-cert-file is given.
 */
export function extendedKeyUsages(kind: LeafKind): X509.ExtendedKeyUsage[] {
  switch (kind) {
    case "server":
    case "peer":
      return [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]
    case "client":
      return [x509.ExtendedKeyUsage.clientAuth]
  }
}

/** A leaf certificate signed by the CA. */
export async function issueCertificate(options: LeafOptions): Promise<CertAndKey> {
  const keys = await generateKeys(options.keyType ?? "ecdsa")
  const { notBefore, notAfter } = validity(options, leafValidityDays)
  const sans = sanList(options.kind, options.sans ?? [])
  const usages =
    keys.privateKey.algorithm.name === "ECDSA"
      ? x509.KeyUsageFlags.digitalSignature
      : x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment
  const extensions: X509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(usages, true),
    new x509.ExtendedKeyUsageExtension(extendedKeyUsages(options.kind)),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    await x509.AuthorityKeyIdentifierExtension.create(options.ca.cert.publicKey),
  ]
  if (sans.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(sans.map(generalName)))
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: subjectName(options.commonName, options.organization),
    issuer: options.ca.cert.subjectName,
    notBefore,
    notAfter,
    publicKey: keys.publicKey,
    signingKey: options.ca.privateKey,
    signingAlgorithm: signingAlgorithm(options.ca.privateKey),
    extensions,
  })
  return { certPem: pemText(cert.toString("pem")), keyPem: await privateKeyPem(keys.privateKey), cert, privateKey: keys.privateKey }
}

function sanList(kind: LeafKind, given: readonly string[]): string[] {
  const all = kind === "client" ? [...given] : [...given, ...loopbackSans]
  const seen = new Set<string>()
  const result: string[] = []
  for (const raw of all) {
    const san = raw.trim()
    if (san === "") continue
    const key = isIP(san) !== 0 ? `ip:${san}` : `dns:${san.toLowerCase()}`
    if (seen.has(key)) continue
    seen.add(key)
    result.push(san)
  }
  return result
}

function generalName(san: string): X509.JsonGeneralName {
  return isIP(san) !== 0 ? { type: "ip", value: san } : { type: "dns", value: san }
}

/** Checks a SAN given on the command line: an IP address or a DNS name. */
export function validSan(san: string): boolean {
  return isIP(san) !== 0 || /^(\*\.)?([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/.test(san)
}

export interface SelfSignedOptions extends Validity {
  readonly commonName: string
  readonly organization?: string
  readonly sans: readonly string[]
  readonly kind: LeafKind
  readonly keyType?: KeyType
}

/** A self-signed leaf (what --auto-tls and --peer-auto-tls generate). */
export async function createSelfSigned(options: SelfSignedOptions): Promise<CertAndKey> {
  const keys = await generateKeys(options.keyType ?? "ecdsa")
  const { notBefore, notAfter } = validity(options, leafValidityDays)
  const sans = sanList(options.kind, options.sans)
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: subjectName(options.commonName, options.organization),
    notBefore,
    notAfter,
    keys,
    signingAlgorithm: signingAlgorithm(keys.privateKey),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension(extendedKeyUsages(options.kind)),
      new x509.SubjectAlternativeNameExtension(sans.map(generalName)),
    ],
  })
  return { certPem: pemText(cert.toString("pem")), keyPem: await privateKeyPem(keys.privateKey), cert, privateKey: keys.privateKey }
}

/** A CRL signed by the CA revoking the given certificates (for tests and `tskv certs` users who need one). */
export async function createCrl(options: { ca: CertAndKey; revoked: readonly CertAndKey[]; nextUpdateDays?: number }): Promise<string> {
  const thisUpdate = new Date(Date.now() - backdateMs)
  const crl = await x509.X509CrlGenerator.create({
    issuer: options.ca.cert.subjectName,
    thisUpdate,
    nextUpdate: new Date(thisUpdate.getTime() + (options.nextUpdateDays ?? 30) * dayMs),
    // A reason code on every entry: @peculiar/x509 otherwise writes an empty
    // crlEntryExtensions SEQUENCE, which BoringSSL (Bun) refuses to parse.
    entries: options.revoked.map((r) => ({
      serialNumber: r.cert.serialNumber,
      revocationDate: thisUpdate,
      reason: x509.X509CrlReason.cessationOfOperation,
    })),
    signingKey: options.ca.privateKey,
    signingAlgorithm: signingAlgorithm(options.ca.privateKey),
  })
  // OpenSSL (and Go) want the "X509 CRL" PEM label.
  return pemText(x509.PemConverter.encode(crl.rawData, "X509 CRL"))
}
