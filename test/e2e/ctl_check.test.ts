// `tskv ctl check perf` and `check datascale` through the compiled binary
// against a tskv member: etcdctl's output lines (the numbers vary, the shape
// and the verdict must agree), the keys removed afterwards, and the errors a
// user can trigger, compared with etcdctl 3.4 byte for byte.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test"
import { spawnSync } from "bun"
import { etcdctl, startMember, tskvBinary, type CtlResult, type MemberProcess } from "../support/procs"

setDefaultTimeout(150_000)

let member: MemberProcess

beforeAll(async () => {
  member = await startMember({ kind: "tskv" })
})

afterAll(async () => {
  await member?.stop()
})

function ctl(who: "tskv" | "etcdctl", args: string[], endpoint = member.clientUrl): CtlResult {
  const argv = who === "tskv" ? [tskvBinary, "ctl", `--endpoints=${endpoint}`, ...args] : ["etcdctl", `--endpoints=${endpoint}`, ...args]
  const r = spawnSync(argv, { env: { ...process.env, ETCDCTL_API: "3" } })
  return { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() }
}

/** stdout without the progress line (its redraws end with "\r" runs and a final newline). */
function linesAfterProgress(stdout: string): string[] {
  return stdout
    .split("\n")
    .filter((l) => !l.includes("\r") && l !== "")
}

describe("ctl check", () => {
  test("check perf --auto-compact --auto-defrag writes at the load's rate for 60 s, prints etcdctl's verdict and removes its keys", () => {
    const endpoint = member.clientUrl.replace("http://", "")
    const r = ctl("tskv", ["check", "perf", "--load=s", "--auto-compact", "--auto-defrag"], endpoint)
    expect(r.stderr).toBe("")
    expect(r.stdout).toMatch(/\r60 \/ 60  100\.00% (59s|1m\ds)\n/)
    const lines = linesAfterProgress(r.stdout)
    expect(lines[0]).toMatch(/^Compacting with revision \d+$/)
    expect(lines[1]).toBe(lines[0]!.replace("Compacting", "Compacted"))
    expect(lines.slice(2, 4)).toEqual([`Defragmenting "${endpoint}"`, `Defragmented "${endpoint}"`])
    // 150 writes/s is far below what a member does: the throughput passes even on a busy machine
    expect(lines[4]).toMatch(/^PASS: Throughput is 1(4\d|5\d) writes\/s$/)
    expect(lines[5]).toMatch(/^(PASS: Slowest request took|Slowest request took too long:) \d+\.\d{6}s$/)
    expect(lines[6]).toMatch(/^(PASS: Stddev is|Stddev too high:) \d+\.\d{6}s$/)
    const passed = lines.slice(4, 7).every((l) => l.startsWith("PASS: "))
    expect(lines.slice(7)).toEqual([passed ? "PASS" : "FAIL"])
    expect(r.code).toBe(passed ? 0 : 1)
    expect(etcdctl(member.clientUrl, ["get", "/etcdctl-check-perf/", "--prefix", "--keys-only"]).stdout).toBe("")
  })

  test("check datascale reports the member's memory growth for the load, in etcdctl's words, and removes its keys", () => {
    const r = ctl("tskv", ["check", "datascale", "--auto-compact"])
    expect(r.stderr).toBe("")
    expect(r.code).toBe(0)
    expect(r.stdout).toStartWith("Start data scale check for work load [10000 key-value pairs, 1024 bytes per key-value, 50 concurrent clients].\n")
    expect(r.stdout).toMatch(/\r10000 \/ 10000  100\.00% \d+s\n/)
    const lines = linesAfterProgress(r.stdout)
    expect(lines[1]).toMatch(/^Compacting with revision \d+$/)
    expect(lines[3]).toMatch(/^PASS: Approximate system memory used : -?\d+\.\d\d MB\.$/)
    expect(etcdctl(member.clientUrl, ["get", "/etcdctl-check-datascale/", "--prefix", "--keys-only"]).stdout).toBe("")
  })

  test("user errors as etcdctl: unknown load, a prefix that holds keys", () => {
    expect(etcdctl(member.clientUrl, ["put", "/etcdctl-check-perf/left", "over"]).code).toBe(0)
    expect(etcdctl(member.clientUrl, ["put", "/mine/x", "1"]).code).toBe(0)
    const cases = [
      ["check", "perf", "--load=huge"],
      ["check", "datascale", "--load=xlarge"],
      ["check", "perf"],
      ["check", "datascale", "--prefix=/mine/"],
    ]
    for (const args of cases) {
      const ours = ctl("tskv", args)
      expect(ours.code).toBeGreaterThan(0)
      expect(ours).toEqual(ctl("etcdctl", args))
    }
    // etcdctl prints its usage text on stdout after a flag error: compare the error and the code
    const ours = ctl("tskv", ["check", "perf", "--load"])
    const theirs = ctl("etcdctl", ["check", "perf", "--load"])
    expect({ code: ours.code, stderr: ours.stderr }).toEqual({ code: theirs.code, stderr: theirs.stderr })
  })

  test("check datascale on an endpoint without a member fails with exit 1", () => {
    const r = ctl("tskv", ["check", "datascale", "--command-timeout=1s"], "127.0.0.1:1")
    expect(r.code).toBe(1)
    expect(r.stderr).toEndWith("Error: context deadline exceeded\n")
  })
})
