// A test PKI on disk: one CA, a server certificate and one client
// certificate per common name, as PEM files in a directory, for the tests
// that start TLS members and point etcdctl and tskv ctl at them.

import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { createCa, issueCertificate } from "../../src/certs/pki"

/**
 * Writes ca.crt, server.crt/.key and <cn>.crt/.key for each client common
 * name into `dir`; returns the paths as { ca, serverCert, serverKey, <cn>Cert, <cn>Key }.
 */
export async function writeTestPki(options: { dir: string; caName: string; clients: readonly string[] }): Promise<Record<string, string>> {
  const write = (name: string, text: string): string => {
    const path = join(options.dir, name)
    writeFileSync(path, text)
    return path
  }
  const ca = await createCa({ commonName: options.caName })
  const files: Record<string, string> = { ca: write("ca.crt", ca.certPem) }
  const server = await issueCertificate({ ca, kind: "server", commonName: "server" })
  files.serverCert = write("server.crt", server.certPem)
  files.serverKey = write("server.key", server.keyPem)
  for (const cn of options.clients) {
    const c = await issueCertificate({ ca, kind: "client", commonName: cn })
    files[`${cn}Cert`] = write(`${cn}.crt`, c.certPem)
    files[`${cn}Key`] = write(`${cn}.key`, c.keyPem)
  }
  return files
}
