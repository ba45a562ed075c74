// `tskv certs` through the compiled binary: the files written, their modes,
// the certificates' contents (issuer, SANs, key usages, key type) and the
// summary naming the flags that use each file.

import { afterAll, beforeAll, expect, test } from "bun:test"
import { spawnSync } from "bun"
import { X509Certificate, createPrivateKey } from "node:crypto"
import { readFileSync, readdirSync, statSync } from "node:fs"
import { join, relative } from "node:path"
import { requireBinary, tskvBinary } from "../support/procs"
import { tempDir } from "../support/tmp"

const dir = tempDir("certs-e2e-")
beforeAll(() => requireBinary())
afterAll(() => dir.remove())

function certs(args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync([tskvBinary, "certs", ...args], { cwd: dir.path })
  return { code: r.exitCode ?? -1, out: r.stdout.toString(), err: r.stderr.toString() }
}

function files(root: string): Record<string, number> {
  const found: Record<string, number> = {}
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const path = join(d, name)
      const st = statSync(path)
      if (st.isDirectory()) walk(path)
      else found[relative(root, path)] = st.mode & 0o777
    }
  }
  walk(root)
  return found
}

const cert = (path: string): X509Certificate => new X509Certificate(readFileSync(join(dir.path, path)))

test("tskv certs cluster writes a CA, server and peer pairs per member and client pairs; keys 0600; a summary with the flags", () => {
  const r = certs(["cluster", "--member", "a=127.0.0.1", "--member", "b=10.0.0.2,b.example", "--client", "alice", "--out", "pki"])
  expect(r).toMatchObject({ code: 0, err: "" })
  const pair = (base: string) => ({ [`${base}.crt`]: 0o644, [`${base}.key`]: 0o600 })
  expect(files(join(dir.path, "pki"))).toEqual({
    ...pair("ca"),
    ...pair("a/server"),
    ...pair("a/peer"),
    ...pair("b/server"),
    ...pair("b/peer"),
    ...pair("clients/root"),
    ...pair("clients/kube-apiserver-etcd-client"),
    ...pair("clients/alice"),
  })
  // The summary: one line per file written, keys marked 0600, and the flag that uses it.
  const wrote = r.out.split("\n").filter((l) => l.startsWith("wrote "))
  expect(wrote.length).toBe(16)
  expect(r.out).toMatch(/wrote pki\/ca\.key +\(0600\) CA key/)
  expect(r.out).toMatch(/wrote pki\/b\/peer\.crt .*--peer-cert-file on member b/)
  expect(r.out).toMatch(/wrote pki\/a\/server\.key +\(0600\) .*--key-file on member a/)
  expect(r.out).toContain("--trusted-ca-file")
  expect(r.out).toContain("--initial-cluster a=https://127.0.0.1:2380,b=https://10.0.0.2:2380")
  expect(r.out).toContain("etcdctl --endpoints https://127.0.0.1:2379,https://10.0.0.2:2379 --cacert pki/ca.crt --cert pki/clients/root.crt --key pki/clients/root.key")
  // What was issued: signed by the CA, the member's SANs plus loopback, the right usages, ECDSA P-256.
  const ca = cert("pki/ca.crt")
  expect(ca.ca).toBe(true)
  for (const path of ["pki/a/server.crt", "pki/b/peer.crt", "pki/clients/alice.crt"]) {
    expect({ path, signed: cert(path).verify(ca.publicKey), issuer: cert(path).issuer }).toEqual({ path, signed: true, issuer: ca.subject })
  }
  const b = cert("pki/b/peer.crt")
  expect(b.subjectAltName?.split(", ").sort()).toEqual(["DNS:b.example", "DNS:localhost", "IP Address:0:0:0:0:0:0:0:1", "IP Address:10.0.0.2", "IP Address:127.0.0.1"].sort())
  expect(cert("pki/clients/alice.crt").subject).toContain("CN=alice")
  expect(cert("pki/clients/kube-apiserver-etcd-client.crt").subject).toContain("CN=kube-apiserver-etcd-client")
  const key = createPrivateKey(readFileSync(join(dir.path, "pki/a/server.key")))
  expect(key.asymmetricKeyType).toBe("ec")
  expect(key.asymmetricKeyDetails?.namedCurve).toBe("prime256v1")
  // Validity: a year for leaves, ten for the CA.
  const days = (c: X509Certificate) => Math.round((Date.parse(c.validTo) - Date.parse(c.validFrom)) / 86_400_000)
  expect(days(ca)).toBeGreaterThanOrEqual(3650)
  expect(days(cert("pki/a/server.crt"))).toBeGreaterThanOrEqual(365)
  expect(days(cert("pki/a/server.crt"))).toBeLessThan(400)
}, 30_000)

test("tskv certs cluster refuses to overwrite without --force and changes nothing", () => {
  const before = readFileSync(join(dir.path, "pki/a/server.crt"), "utf8")
  const r = certs(["cluster", "--member", "a=127.0.0.1", "--out", "pki"])
  expect(r.code).toBe(2)
  expect(r.err).toContain("already exists (use --force to replace it)")
  expect(readFileSync(join(dir.path, "pki/a/server.crt"), "utf8")).toBe(before)
  const forced = certs(["cluster", "--member", "a=127.0.0.1", "--out", "pki", "--force"])
  expect(forced.code).toBe(0)
  expect(readFileSync(join(dir.path, "pki/a/server.crt"), "utf8")).not.toBe(before)
  // The CA is reused: the new certificate chains to the same CA.
  expect(cert("pki/a/server.crt").verify(cert("pki/ca.crt").publicKey)).toBe(true)
}, 30_000)

test("tskv certs init-ca and issue: RSA keys, SANs, modes, summary", () => {
  const init = certs(["init-ca", "--out", "rsa", "--cn", "my-ca", "--key-type", "rsa"])
  expect(init.code).toBe(0)
  expect(init.out).toMatch(/wrote rsa\/ca\.crt +CA certificate/)
  const issue = certs(["issue", "server", "--name", "s1", "--san", "10.1.2.3", "--san", "s1.example", "--out", "rsa", "--key-type", "rsa"])
  expect(issue.code).toBe(0)
  expect(issue.out).toMatch(/wrote rsa\/s1\/server\.key +\(0600\)/)
  expect(files(join(dir.path, "rsa"))).toEqual({ "ca.crt": 0o644, "ca.key": 0o600, "s1/server.crt": 0o644, "s1/server.key": 0o600 })
  const s1 = cert("rsa/s1/server.crt")
  expect(s1.issuer).toContain("CN=my-ca")
  expect(s1.verify(cert("rsa/ca.crt").publicKey)).toBe(true)
  expect(s1.subjectAltName).toContain("IP Address:10.1.2.3")
  expect(s1.subjectAltName).toContain("DNS:s1.example")
  const key = createPrivateKey(readFileSync(join(dir.path, "rsa/s1/server.key")))
  expect(key.asymmetricKeyType).toBe("rsa")
  expect(key.asymmetricKeyDetails?.modulusLength).toBe(2048)
}, 30_000)

test("tskv certs: usage errors exit 2 with a message", () => {
  expect(certs(["bogus"])).toMatchObject({ code: 2, err: expect.stringContaining('unknown command "bogus"') })
  expect(certs(["issue", "server", "--out", "rsa"]).code).toBe(2)
  expect(certs(["cluster", "--member", "bad", "--out", "x"]).code).toBe(2)
  const help = certs(["--help"])
  expect(help.code).toBe(0)
  expect(help.out).toContain("tskv certs cluster --member NAME=IP|DNS")
}, 30_000)
