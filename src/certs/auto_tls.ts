// --auto-tls / --peer-auto-tls: a self-signed certificate generated on first
// start into <data-dir>/fixtures/client or <data-dir>/fixtures/peer (cert.pem,
// key.pem), as etcd does, and reused on later starts. Nothing verifies a
// self-signed certificate: clients of an auto-TLS listener must skip
// verification (etcd's InsecureSkipVerify for peers), so this only encrypts.

import { existsSync, mkdirSync } from "node:fs"
import { join } from "node:path"
import { createSelfSigned } from "./pki"
import type { TlsFiles } from "./tls"
import { writePemFiles } from "./files"

export interface AutoTlsOptions {
  readonly dataDir: string
  readonly side: "client" | "peer"
  /** Host names and IPs of the listen URLs (they become SANs). */
  readonly hosts: readonly string[]
  /** --self-signed-cert-validity, in years. */
  readonly validityYears: number
  readonly now?: Date
}

export async function ensureSelfSignedCert(options: AutoTlsOptions): Promise<TlsFiles> {
  const dir = join(options.dataDir, "fixtures", options.side)
  const certFile = join(dir, "cert.pem")
  const keyFile = join(dir, "key.pem")
  if (existsSync(certFile) && existsSync(keyFile)) return { certFile, keyFile }
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const notBefore = new Date((options.now ?? new Date()).getTime() - 5 * 60 * 1000)
  const notAfter = new Date(notBefore.getTime() + options.validityYears * 365 * 24 * 60 * 60 * 1000)
  const generated = await createSelfSigned({
    commonName: "tskv",
    organization: "tskv",
    sans: options.hosts.filter((h) => h !== "" && h !== "0.0.0.0" && h !== "::"),
    kind: options.side === "peer" ? "peer" : "server",
    notBefore,
    notAfter,
  })
  writePemFiles({ certFile, keyFile, certPem: generated.certPem, keyPem: generated.keyPem })
  return { certFile, keyFile }
}
