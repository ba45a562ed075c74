// --cipher-suites takes Go's (IANA) cipher suite names, as etcd does; node:tls
// takes OpenSSL names. As in Go, the list restricts TLS 1.2 only: TLS 1.3
// suites are always enabled (etcd refuses --cipher-suites with TLS 1.3 only).

const goToOpenssl: Readonly<Record<string, string>> = {
  TLS_RSA_WITH_3DES_EDE_CBC_SHA: "DES-CBC3-SHA",
  TLS_RSA_WITH_AES_128_CBC_SHA: "AES128-SHA",
  TLS_RSA_WITH_AES_256_CBC_SHA: "AES256-SHA",
  TLS_RSA_WITH_AES_128_CBC_SHA256: "AES128-SHA256",
  TLS_RSA_WITH_AES_128_GCM_SHA256: "AES128-GCM-SHA256",
  TLS_RSA_WITH_AES_256_GCM_SHA384: "AES256-GCM-SHA384",
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA: "ECDHE-ECDSA-AES128-SHA",
  TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA: "ECDHE-ECDSA-AES256-SHA",
  TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA: "ECDHE-RSA-DES-CBC3-SHA",
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA: "ECDHE-RSA-AES128-SHA",
  TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA: "ECDHE-RSA-AES256-SHA",
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256: "ECDHE-ECDSA-AES128-SHA256",
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256: "ECDHE-RSA-AES128-SHA256",
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: "ECDHE-RSA-AES128-GCM-SHA256",
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: "ECDHE-ECDSA-AES128-GCM-SHA256",
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: "ECDHE-RSA-AES256-GCM-SHA384",
  TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: "ECDHE-ECDSA-AES256-GCM-SHA384",
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305: "ECDHE-RSA-CHACHA20-POLY1305",
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: "ECDHE-RSA-CHACHA20-POLY1305",
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305: "ECDHE-ECDSA-CHACHA20-POLY1305",
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: "ECDHE-ECDSA-CHACHA20-POLY1305",
}

/** Suites Go knows but OpenSSL 3 no longer offers; refused with a clear message. */
const withdrawn = new Set([
  "TLS_RSA_WITH_RC4_128_SHA",
  "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
  "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
])

/** TLS 1.3 suites, always enabled (Go does not let them be configured either). */
export const tls13Suites = ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"] as const

export type CipherSuitesResult = { ok: true; ciphers: string } | { ok: false; message: string }

/**
 * Maps etcd's --cipher-suites names to a node:tls `ciphers` string (order
 * kept: it is the server's preference). An empty list means the defaults
 * (returns ciphers "").
 */
export function cipherSuitesToOpenssl(names: readonly string[]): CipherSuitesResult {
  if (names.length === 0) return { ok: true, ciphers: "" }
  const openssl: string[] = []
  for (const name of names) {
    if (withdrawn.has(name)) return { ok: false, message: `cipher suite ${name} is not supported yet (RC4 is not offered by OpenSSL 3)` }
    const mapped = goToOpenssl[name]
    if (mapped === undefined) return { ok: false, message: `unexpected TLS cipher suite ${name}` }
    if (!openssl.includes(mapped)) openssl.push(mapped)
  }
  return { ok: true, ciphers: [...tls13Suites, ...openssl].join(":") }
}

/** Every --cipher-suites name tskv accepts. */
export function knownCipherSuites(): string[] {
  return Object.keys(goToOpenssl)
}
