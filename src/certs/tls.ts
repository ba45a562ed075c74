// Loading and checking PEM certificates, keys, CA bundles and CRLs into
// node:tls options, for the client listener (gRPC + HTTP), the peer listener
// and for dialing. Works the same with node:tls, node:http2 and
// @grpc/grpc-js (ServerCredentials.updateSecureContextOptions) under Bun.

import { createHash, createPrivateKey, X509Certificate } from "node:crypto"
import { lookup } from "node:dns/promises"
import { readFileSync } from "node:fs"
import { isIP } from "node:net"
import * as tls from "node:tls"
import { cipherSuitesToOpenssl } from "./cipher_suites"

export interface TlsFiles {
  readonly certFile: string
  readonly keyFile: string
  /** CA bundle that client (or peer) certificates must chain to; "" = none. */
  readonly trustedCaFile?: string
  /** Certificate revocation list, PEM; "" = none. */
  readonly crlFile?: string
}

export interface TlsPolicy {
  /** Require and verify a client certificate (--client-cert-auth, --peer-client-cert-auth). */
  readonly clientCertAuth?: boolean
  /** etcd/Go names (--cipher-suites). */
  readonly cipherSuites?: readonly string[]
  readonly minVersion?: "TLSv1.2" | "TLSv1.3"
  /** "" = no maximum. */
  readonly maxVersion?: "" | "TLSv1.2" | "TLSv1.3"
  /** ALPN protocols offered by a server (e.g. ["h2", "http/1.1"]). */
  readonly alpnProtocols?: readonly string[]
}

export type TlsConfig = TlsFiles & TlsPolicy

/** What was read from disk, checked. */
export interface TlsMaterial {
  readonly cert: string
  readonly key: string
  /** "" when there is no CA bundle. */
  readonly ca: string
  readonly crl: string
  /** The first certificate of the cert file. */
  readonly leaf: X509Certificate
  readonly caCertificates: readonly X509Certificate[]
  /** sha256 over every file's bytes: equal material, equal fingerprint. */
  readonly fingerprint: string
  /** Problems that do not stop the material from being used (an expired certificate ...). */
  readonly warnings: readonly string[]
}

export class TlsMaterialError extends Error {
  override readonly name = "TlsMaterialError"
}

const pemCertificate = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g

/** Splits a PEM bundle into certificates; throws on an unparsable one. */
export function parseCertificates(pem: string, what: string): X509Certificate[] {
  const blocks = pem.match(pemCertificate) ?? []
  if (blocks.length === 0) throw new TlsMaterialError(`${what}: no PEM certificate found`)
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block)
    } catch (e) {
      throw new TlsMaterialError(`${what}: certificate ${i + 1} cannot be parsed: ${errorText(e)}`)
    }
  })
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, "utf8")
  } catch (e) {
    throw new TlsMaterialError(`cannot read ${what} ${path}: ${errorText(e)}`)
  }
}

/**
 * Reads and checks the files: the certificate parses, the key parses and
 * matches it, the CA bundle holds at least one certificate, and node:tls
 * accepts the lot. Throws TlsMaterialError naming the file.
 */
export function loadTlsMaterial(files: TlsFiles, now: Date = new Date()): TlsMaterial {
  if (files.certFile === "" || files.keyFile === "") throw new TlsMaterialError("a certificate file and a key file are both required")
  const cert = readText(files.certFile, "certificate file")
  const key = readText(files.keyFile, "key file")
  const caText = files.trustedCaFile ? readText(files.trustedCaFile, "trusted CA file") : ""
  const crl = files.crlFile ? readText(files.crlFile, "CRL file") : ""
  const chain = parseCertificates(cert, `certificate file ${files.certFile}`)
  const leaf = chain[0] as X509Certificate
  let privateKey: ReturnType<typeof createPrivateKey>
  try {
    privateKey = createPrivateKey(key)
  } catch (e) {
    throw new TlsMaterialError(`key file ${files.keyFile}: the private key cannot be parsed: ${errorText(e)}`)
  }
  if (!leaf.checkPrivateKey(privateKey)) {
    throw new TlsMaterialError(`key file ${files.keyFile} does not match the certificate in ${files.certFile}`)
  }
  const caCertificates = files.trustedCaFile ? parseCertificates(caText, `trusted CA file ${files.trustedCaFile}`) : []
  // One PEM block per line group: bundles made by `cat a.crt b.crt` may lack the newline between blocks.
  const ca = (caText.match(pemCertificate) ?? []).join("\n")
  try {
    tls.createSecureContext({ cert, key, ...(ca !== "" ? { ca } : {}), ...(crl !== "" ? { crl } : {}) })
  } catch (e) {
    throw new TlsMaterialError(`TLS files ${[files.certFile, files.keyFile, files.trustedCaFile, files.crlFile].filter(Boolean).join(", ")} are not usable: ${errorText(e)}`)
  }
  const warnings: string[] = []
  if (new Date(leaf.validTo) < now) warnings.push(`certificate ${files.certFile} expired at ${leaf.validTo}`)
  if (new Date(leaf.validFrom) > now) warnings.push(`certificate ${files.certFile} is not valid before ${leaf.validFrom}`)
  const fingerprint = createHash("sha256").update(cert).update("\0").update(key).update("\0").update(ca).update("\0").update(crl).digest("hex")
  return { cert, key, ca, crl, leaf, caCertificates, fingerprint, warnings }
}

/** The options of a tls.SecureContext (what setSecureContext and grpc-js take). */
export function secureContextOptions(material: TlsMaterial, policy: TlsPolicy = {}): tls.SecureContextOptions {
  const options: tls.SecureContextOptions = {
    cert: material.cert,
    key: material.key,
    minVersion: policy.minVersion ?? "TLSv1.2",
  }
  if (material.ca !== "") options.ca = material.ca
  if (material.crl !== "") options.crl = material.crl
  if (policy.maxVersion) options.maxVersion = policy.maxVersion
  const ciphers = cipherSuitesToOpenssl(policy.cipherSuites ?? [])
  if (!ciphers.ok) throw new TlsMaterialError(ciphers.message)
  if (ciphers.ciphers !== "") {
    options.ciphers = ciphers.ciphers
    options.honorCipherOrder = true
  }
  return options
}

/** Options for tls.createServer / http2.createSecureServer. */
export function serverTlsOptions(material: TlsMaterial, policy: TlsPolicy = {}): tls.TlsOptions {
  const options: tls.TlsOptions = {
    ...secureContextOptions(material, policy),
    requestCert: policy.clientCertAuth === true,
    rejectUnauthorized: policy.clientCertAuth === true,
  }
  if (policy.alpnProtocols) options.ALPNProtocols = [...policy.alpnProtocols]
  return options
}

export interface ClientTlsSettings extends TlsPolicy {
  /** Do not verify the server (peer auto-TLS, as etcd's InsecureSkipVerify). */
  readonly insecureSkipVerify?: boolean
  readonly servername?: string
}

/**
 * Options for tls.connect / http2.connect. `material` holds the client
 * certificate (may be undefined for server-only verification) and the CA
 * bundle used to verify the server.
 */
export function clientTlsOptions(material: TlsMaterial | undefined, settings: ClientTlsSettings = {}): tls.ConnectionOptions {
  const options: tls.ConnectionOptions = {
    minVersion: settings.minVersion ?? "TLSv1.2",
    rejectUnauthorized: settings.insecureSkipVerify !== true,
  }
  if (material !== undefined) {
    options.cert = material.cert
    options.key = material.key
    if (material.ca !== "") options.ca = material.ca
  }
  if (settings.maxVersion) options.maxVersion = settings.maxVersion
  if (settings.servername !== undefined) options.servername = settings.servername
  const ciphers = cipherSuitesToOpenssl(settings.cipherSuites ?? [])
  if (ciphers.ok && ciphers.ciphers !== "") options.ciphers = ciphers.ciphers
  return options
}

/**
 * The verified client certificate's CN (etcd's rule: with --client-cert-auth
 * and no token, the CN is the user). undefined when the connection is not
 * TLS, the certificate was not verified, or it has no CN.
 */
export function verifiedPeerCommonName(socket: unknown): string | undefined {
  if (!(socket instanceof tls.TLSSocket) || !socket.authorized) return undefined
  return certificateCommonName(socket.getPeerCertificate())
}

/**
 * The CN of a peer certificate as node:tls reports it (e.g. grpc-js
 * `call.getAuthContext().sslPeerCertificate`). Only meaningful when the
 * listener requires and verifies client certificates (--client-cert-auth):
 * without verification a CN proves nothing.
 */
export function certificateCommonName(cert: tls.PeerCertificate | null | undefined): string | undefined {
  if (cert === null || cert === undefined || typeof cert !== "object" || cert.subject === undefined) return undefined
  const cn: unknown = cert.subject.CN
  if (typeof cn === "string" && cn !== "") return cn
  if (Array.isArray(cn) && typeof cn[0] === "string" && cn[0] !== "") return cn[0]
  return undefined
}

export interface AllowedPeerPolicy {
  /** --peer-cert-allowed-cn: the client certificate's CN must be one of these (empty = any). */
  readonly allowedCn?: readonly string[]
  /** --peer-cert-allowed-hostname / --client-cert-allowed-hostname: the certificate must be valid for one of these (empty = any). */
  readonly allowedHostname?: readonly string[]
}

export type AllowedPeerResult = { readonly ok: true } | { readonly ok: false; readonly reason: string }

/**
 * Checks a verified client certificate against --peer-cert-allowed-cn and
 * --*-cert-allowed-hostname, as etcd does after the handshake. Call it on
 * every accepted TLS connection (tls 'secureConnection') and close the
 * socket when it fails.
 */
export function checkAllowedPeer(socket: tls.TLSSocket, policy: AllowedPeerPolicy): AllowedPeerResult {
  if ((policy.allowedCn ?? []).length === 0 && (policy.allowedHostname ?? []).length === 0) return { ok: true }
  if (!socket.authorized) return { ok: false, reason: "client certificate not verified" }
  return checkAllowedCertificate(socket.getPeerCertificate(), policy)
}

/** checkAllowedPeer on a certificate the handshake already verified. */
export function checkAllowedCertificate(cert: tls.PeerCertificate, policy: AllowedPeerPolicy): AllowedPeerResult {
  const allowedCn = policy.allowedCn ?? []
  const allowedHostname = policy.allowedHostname ?? []
  if (allowedCn.length > 0) {
    const cn = certificateCommonName(cert)
    if (cn === undefined || !allowedCn.includes(cn)) {
      return { ok: false, reason: `client certificate CN ${JSON.stringify(cn ?? "")} is not one of the allowed CNs ${allowedCn.join(",")}` }
    }
  }
  if (allowedHostname.length > 0) {
    const matches = allowedHostname.some((host) => tls.checkServerIdentity(host, cert) === undefined)
    if (!matches) return { ok: false, reason: `client certificate is not valid for any allowed hostname ${allowedHostname.join(",")}` }
  }
  return { ok: true }
}

/**
 * DNS names resolved in the background, for synchronous SAN checks: lookup()
 * answers what is known and starts resolving what is not (refreshed every
 * refreshMs). "localhost" is the loopback addresses without a lookup.
 */
export class ResolvedNames {
  private readonly known = new Map<string, { addresses: readonly string[]; at: number }>()
  private readonly pending = new Set<string>()

  constructor(
    private readonly resolve: HostLookup = systemLookup,
    private readonly refreshMs = 60_000,
  ) {}

  lookup(name: string): readonly string[] {
    if (name.toLowerCase() === "localhost") return ["127.0.0.1", "::1"]
    const entry = this.known.get(name)
    if ((entry === undefined || performance.now() - entry.at > this.refreshMs) && !this.pending.has(name)) {
      this.pending.add(name)
      this.resolve(name)
        .then((addresses) => this.known.set(name, { addresses: addresses.map(normalizeIp), at: performance.now() }))
        // A failed lookup is retried after 5 s rather than after refreshMs.
        .catch(() => this.known.set(name, { addresses: [], at: performance.now() - Math.max(0, this.refreshMs - 5_000) }))
        .finally(() => this.pending.delete(name))
    }
    return entry?.addresses ?? []
  }
}

/** checkSanAgainstAddress without waiting: DNS SANs match only once resolved (see ResolvedNames). */
export function checkSanSync(options: { readonly subjectAltName: string; readonly remote: string; readonly resolved: ResolvedNames }): AllowedPeerResult {
  const entries = options.subjectAltName.split(",").map((e) => e.trim()).filter((e) => e !== "")
  const ips = entries.filter((e) => e.startsWith("IP Address:")).map((e) => normalizeIp(e.slice("IP Address:".length)))
  const dnsNames = entries.filter((e) => e.startsWith("DNS:")).map((e) => e.slice("DNS:".length))
  if (ips.length === 0 && dnsNames.length === 0) return { ok: true }
  const address = normalizeIp(options.remote)
  if (ips.includes(address)) return { ok: true }
  for (const name of dnsNames) {
    if (!name.includes("*") && options.resolved.lookup(name).includes(address)) return { ok: true }
  }
  return { ok: false, reason: `tls: "${address}" does not match any of the certificate's IP addresses or DNS names (${[...ips, ...dnsNames].join(", ")})` }
}

export type HostLookup = (host: string) => Promise<readonly string[]>

const systemLookup: HostLookup = async (host) => (await lookup(host, { all: true })).map((a) => a.address)

/**
 * etcd's peer check (pkg/transport checkCertSAN, skipped with
 * --peer-skip-client-san-verification): a client certificate with SANs must
 * name the address the connection comes from, as an IP SAN or as a DNS SAN
 * that resolves to it. A certificate without SANs passes.
 */
export async function checkClientSan(socket: tls.TLSSocket, resolve: HostLookup = systemLookup): Promise<AllowedPeerResult> {
  const cert = socket.getPeerCertificate()
  const remote = normalizeIp(socket.remoteAddress ?? "")
  return checkSanAgainstAddress({ subjectAltName: cert?.subjectaltname ?? "", remote, resolve })
}

/** The SAN rule on its own ("DNS:a, IP Address:10.0.0.1" as node:tls writes it). */
export async function checkSanAgainstAddress(options: {
  readonly subjectAltName: string
  readonly remote: string
  readonly resolve?: HostLookup
}): Promise<AllowedPeerResult> {
  const { subjectAltName, remote, resolve = systemLookup } = options
  const entries = subjectAltName.split(",").map((e) => e.trim()).filter((e) => e !== "")
  const ips = entries.filter((e) => e.startsWith("IP Address:")).map((e) => normalizeIp(e.slice("IP Address:".length)))
  const dnsNames = entries.filter((e) => e.startsWith("DNS:")).map((e) => e.slice("DNS:".length))
  if (ips.length === 0 && dnsNames.length === 0) return { ok: true }
  const address = normalizeIp(remote)
  if (ips.includes(address)) return { ok: true }
  for (const name of dnsNames) {
    if (name.includes("*")) continue
    try {
      if ((await resolve(name)).map(normalizeIp).includes(address)) return { ok: true }
    } catch {
      // An unresolvable name simply does not match.
    }
  }
  return { ok: false, reason: `tls: "${address}" does not match any of the certificate's IP addresses or DNS names (${[...ips, ...dnsNames].join(", ")})` }
}

/** "::ffff:10.0.0.1" -> "10.0.0.1"; IPv6 to its canonical lower-case form. */
function normalizeIp(address: string): string {
  const trimmed = address.trim().replace(/^\[|\]$/g, "")
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(trimmed)
  if (mapped?.[1] !== undefined) return mapped[1]
  if (isIP(trimmed) === 6) {
    try {
      return new URL(`http://[${trimmed}]/`).hostname.slice(1, -1)
    } catch {
      return trimmed.toLowerCase()
    }
  }
  return trimmed
}

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e)
}
