// The etcdctl v2 verbs of `tskv ctl`, mapped onto the v3 API (see
// src/ctl/cmd_v2.ts), against real etcd 3.4; real etcdctl 3.4 reads back
// the v3 keys they wrote.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { spawnSync } from "bun"
import { existsSync } from "node:fs"
import { etcdctl, hasEtcd, startMember, tskvBinary, type CtlResult, type MemberProcess } from "../support/procs"

describe("tskv ctl v2 verbs on v3", () => {
  let etcd: MemberProcess
  let ep = ""
  const ctl = (args: string[], env: Record<string, string> = {}): CtlResult => {
    const r = spawnSync([tskvBinary, "ctl", `--endpoints=${ep}`, ...args], { env: { ...process.env, ...env } })
    return { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() }
  }
  const rev = (): number => Number(/"revision":(\d+)/.exec(etcdctl(ep, ["get", "x", "-w", "json"]).stdout)?.[1])

  beforeAll(async () => {
    etcd = await startMember({ kind: "etcd", name: "v2" })
    ep = etcd.clientUrl.replace("http://", "")
  })
  afterAll(async () => {
    await etcd?.stop()
  }, 30_000)

  test("set, mk, update write v3 keys with a leading slash and print the value", () => {
    expect(ctl(["set", "a/b", "1"])).toEqual({ code: 0, stdout: "1\n", stderr: "" })
    expect(etcdctl(ep, ["get", "/a/b", "--print-value-only"]).stdout).toBe("1\n")
    expect(ctl(["mk", "/a/c", "2"]).stdout).toBe("2\n")
    expect(ctl(["mk", "/a/c", "3"])).toEqual({ code: 4, stdout: "", stderr: `Error:  105: Key already exists (/a/c) [${rev()}]\n` })
    expect(ctl(["update", "/a/b", "9"]).stdout).toBe("9\n")
    expect(ctl(["update", "/a/zz", "1"])).toEqual({ code: 4, stdout: "", stderr: `Error:  100: Key not found (/a/zz) [${rev()}]\n` })
    expect(ctl(["set", "/a/b", "10", "--swap-with-value", "nope"]).code).toBe(4)
    expect(ctl(["set", "/a/b", "10", "--swap-with-value", "9"]).stdout).toBe("10\n")
  }, 30_000)

  test("set --ttl attaches a lease of that TTL", () => {
    expect(ctl(["set", "/ttl", "v", "--ttl", "100"]).code).toBe(0)
    const lease = /"lease":(\d+)/.exec(etcdctl(ep, ["get", "/ttl", "-w", "json"]).stdout)?.[1]
    expect(lease).toBeDefined()
    const ttl = etcdctl(ep, ["lease", "timetolive", BigInt(lease!).toString(16)]).stdout
    expect(ttl).toContain("granted with TTL(100s)")
  }, 30_000)

  test("mkdir, ls (-p, --recursive), rmdir and rm emulate directories on prefixes", () => {
    expect(ctl(["mkdir", "/d"])).toEqual({ code: 0, stdout: "", stderr: "" })
    expect(ctl(["mkdir", "/d"]).code).toBe(4)
    expect(ctl(["set", "/d/x/y", "5"]).code).toBe(0)
    expect(ctl(["ls", "/d"]).stdout).toBe("/d/x\n")
    expect(ctl(["ls", "-p", "/d"]).stdout).toBe("/d/x/\n")
    expect(ctl(["ls", "--recursive", "-p", "/d"]).stdout).toBe("/d/x/\n/d/x/y\n")
    expect(ctl(["ls", "/nothing"]).code).toBe(4)
    expect(ctl(["rmdir", "/d"]).stderr).toStartWith("Error:  108: Directory not empty (/d)")
    expect(ctl(["rm", "/d"]).stderr).toStartWith("Error:  102: Not a file (/d)")
    expect(ctl(["rm", "/d/x/y"]).stdout).toBe("PrevNode.Value: 5\n")
    expect(ctl(["rmdir", "/d"])).toEqual({ code: 0, stdout: "", stderr: "" })
    expect(ctl(["ls", "/"]).stdout).not.toContain("/d")
    expect(ctl(["rm", "/a", "--recursive"]).code).toBe(0)
    expect(etcdctl(ep, ["get", "/a", "--prefix", "--keys-only"]).stdout).toBe("")
  }, 30_000)

  test("without ETCDCTL_API=2, get is the v3 get; with it, the v2 API, which a member without --enable-v2 does not serve", () => {
    ctl(["set", "/g", "val"])
    expect(ctl(["get", "/g"]).stdout).toBe("/g\nval\n")
    const v2 = ctl(["get", "/g"], { ETCDCTL_API: "2" })
    const real = spawnSync(["etcdctl", `--endpoints=http://${ep}`, "get", "/g"], { env: { ...process.env, ETCDCTL_API: "2" } })
    expect(v2.code).toBe(real.exitCode ?? -1)
    expect(v2.stderr.split("\n")[0]).toBe(real.stderr.toString().split("\n")[0]!)
  }, 30_000)

  test("cluster-health reports every member", () => {
    const r = ctl(["cluster-health"])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^member [0-9a-f]+ is healthy: got healthy result from http:\/\/127\.0\.0\.1:\d+\ncluster is healthy\n$/)
  }, 30_000)
})
