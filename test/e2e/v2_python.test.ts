// python3-etcd (Debian's v2 client library) against etcd 3.4 --enable-v2 and
// against tskv --enable-v2: the same script (test/e2e/python/v2_python_etcd.py:
// read, write, CAS, prevExist, directories, in-order keys, TTL expiry and
// refresh, watches, members, stats) must print the same lines on both.
import { describe, expect, test } from "bun:test"
import { spawn } from "bun"
import { existsSync } from "node:fs"
import { join } from "node:path"
import { hasEtcd, startMember } from "../support/procs"

const PYTHON = "/usr/bin/python3"
const SCRIPT = join(import.meta.dir, "python", "v2_python_etcd.py")

async function runScript(kind: "etcd" | "tskv"): Promise<string> {
  const m = await startMember({ kind, name: "py", extraArgs: ["--enable-v2"] })
  try {
    const p = spawn([PYTHON, SCRIPT, "127.0.0.1", String(m.clientPort)], { stdout: "pipe", stderr: "pipe" })
    const timer = setTimeout(() => p.kill(), 40_000)
    const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited])
    clearTimeout(timer)
    return `exit ${code}\n${out}${err}`
  } finally {
    await m.stop()
  }
}

describe("python3-etcd", () => {
  test("read/write/CAS/TTL/watch calls answer on tskv as on etcd 3.4", async () => {
    expect(hasEtcd()).toBe(true)
    // Debian's python3-etcd (.ci/packages.d/v2): missing, the test fails.
    expect(existsSync("/usr/lib/python3/dist-packages/etcd/client.py")).toBe(true)
    const [etcd, tskv] = await Promise.all([runScript("etcd"), runScript("tskv")])
    expect(tskv).toBe(etcd)
    expect(tskv).toStartWith("exit 0\n")
    expect(tskv).toContain("watch expire expire /py/ttl")
    expect(tskv).toContain("write prevValue wrong EtcdCompareFailed Compare failed")
  }, 60_000)
})
