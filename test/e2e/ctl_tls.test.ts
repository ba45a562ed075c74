// `tskv ctl --cacert/--cert/--key` (and ETCDCTL_CACERT/CERT/KEY) against a
// real etcd 3.4 serving mTLS, compared with real etcdctl 3.4 on the same member.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { spawnSync } from "bun"
import { existsSync } from "node:fs"
import { freePorts } from "../support/ports"
import { writeTestPki } from "../support/pki"
import { etcdctl, hasEtcd, startMember, tskvBinary, type CtlResult, type MemberProcess } from "../support/procs"
import { tempDir } from "../support/tmp"

describe("tskv ctl over mTLS vs etcdctl 3.4", () => {
  const dir = tempDir("ctl-tls-")
  let files: Record<string, string> = {}
  let etcd: MemberProcess
  let ep = ""

  beforeAll(async () => {
    files = await writeTestPki({ dir: dir.path, caName: "ctl-test-ca", clients: ["client"] })
    const [clientPort, peerPort] = (await freePorts(2)) as [number, number]
    const url = `https://127.0.0.1:${clientPort}`
    etcd = await startMember({
      kind: "etcd",
      name: "tls",
      clientPort,
      peerPort,
      waitReady: false,
      extraArgs: [
        `--listen-client-urls=${url}`,
        `--advertise-client-urls=${url}`,
        `--cert-file=${files.serverCert}`,
        `--key-file=${files.serverKey}`,
        `--trusted-ca-file=${files.ca}`,
        "--client-cert-auth=true",
      ],
    })
    ep = `127.0.0.1:${clientPort}`
    const deadline = Date.now() + 20_000
    while (etcdctl(ep, [...tlsFlags(), "endpoint", "health"]).code !== 0) {
      if (Date.now() > deadline || etcd.proc.exitCode !== null) throw new Error(`etcd did not start:\n${etcd.output()}`)
      await Bun.sleep(100)
    }
  }, 30_000)
  afterAll(async () => {
    await etcd?.stop()
    dir.remove()
  })

  const tlsFlags = (): string[] => [`--cacert=${files.ca}`, `--cert=${files.clientCert}`, `--key=${files.clientKey}`]

  function ours(args: string[], env: Record<string, string> = {}): CtlResult {
    const r = spawnSync([tskvBinary, "ctl", `--endpoints=${ep}`, ...args], { env: { ...process.env, ...env } })
    return { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() }
  }

  test("put, get and member list with --cacert/--cert/--key print what etcdctl prints", () => {
    for (const args of [
      ["put", "k", "v"],
      ["get", "k", "-w", "fields"],
      ["member", "list"],
    ]) {
      const real = etcdctl(ep, [...tlsFlags(), ...args])
      const mine = ours([...tlsFlags(), ...args])
      expect(mine.code).toBe(0)
      if (args[0] === "put") expect(mine).toEqual(real)
      else expect(mine.stdout.replace(/"(Revision|ModRevision|Version)" : \d+/g, "")).toBe(real.stdout.replace(/"(Revision|ModRevision|Version)" : \d+/g, ""))
    }
  }, 30_000)

  test("ETCDCTL_CACERT/CERT/KEY configure TLS", () => {
    const env = { ETCDCTL_CACERT: files.ca!, ETCDCTL_CERT: files.clientCert!, ETCDCTL_KEY: files.clientKey! }
    const r = ours(["get", "k", "--print-value-only"], env)
    expect(r).toEqual({ code: 0, stdout: "v\n", stderr: "" })
  }, 30_000)

  test("--insecure-skip-tls-verify accepts a server certificate no trusted CA signed, as etcdctl does", () => {
    const clientOnly = [`--cert=${files.clientCert}`, `--key=${files.clientKey}`]
    const args = ["get", "k", "--print-value-only", "--command-timeout=3s"]
    const real = etcdctl(ep, [...clientOnly, "--insecure-skip-tls-verify", ...args])
    const mine = ours([...clientOnly, "--insecure-skip-tls-verify", ...args])
    expect(real).toEqual({ code: 0, stdout: "v\n", stderr: "" })
    expect(mine).toEqual(real)
    // without it the unknown CA is refused
    const refused = ours([...clientOnly, ...args])
    expect(refused.code).not.toBe(0)
    expect(refused.stderr).toContain("Error:")
  }, 30_000)

  test("without a client certificate the call fails", () => {
    const r = ours([`--cacert=${files.ca}`, "get", "k", "--command-timeout=2s"])
    expect(r.code).not.toBe(0)
    expect(r.stderr).toContain("Error:")
  }, 30_000)
})
