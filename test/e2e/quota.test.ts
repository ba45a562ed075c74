// --quota-backend-bytes and the NOSPACE alarm, with real etcdctl: writes fail
// with etcd's error once the backend is over quota, the alarm is sticky,
// reads and deletes keep working, and compact + defrag + disarm recover.

import { afterAll, expect, test } from "bun:test"
import { etcdctl, type MemberProcess, startMember } from "../support/procs"

let member: MemberProcess | undefined
afterAll(async () => {
  await member?.stop()
})

test("NOSPACE: writes refused over quota, alarm listed, recovery by compact, defrag and disarm", async () => {
  member = await startMember({ kind: "tskv", name: "quota", extraArgs: ["--quota-backend-bytes=1048576"] })
  const ep = member.clientUrl.replace("http://", "")
  const value = "x".repeat(64 * 1024)
  let failed: ReturnType<typeof etcdctl> | undefined
  for (let i = 0; i < 64 && !failed; i++) {
    const r = etcdctl(ep, ["put", `big/${i}`, value])
    if (r.code !== 0) failed = r
  }
  expect(failed?.stderr).toContain("Error: etcdserver: mvcc: database space exceeded")
  const alarms = etcdctl(ep, ["alarm", "list"])
  expect(alarms.stdout).toMatch(/^memberID:\d+ alarm:NOSPACE \n$/)
  expect(etcdctl(ep, ["put", "small", "v"]).stderr).toContain("Error: etcdserver: mvcc: database space exceeded")
  expect(etcdctl(ep, ["lease", "grant", "10"]).stderr).toContain("Error: failed to grant lease (etcdserver: mvcc: database space exceeded)")
  // Reads and deletes keep working.
  expect(etcdctl(ep, ["get", "big/0", "--keys-only"]).stdout).toBe("big/0\n\n")
  expect(etcdctl(ep, ["del", "big/", "--prefix"]).code).toBe(0)
  // The alarm is sticky until disarmed.
  expect(etcdctl(ep, ["put", "small", "v"]).code).not.toBe(0)
  const rev = JSON.parse(etcdctl(ep, ["get", "small", "-w", "json"]).stdout).header.revision as number
  expect(etcdctl(ep, ["compaction", String(rev), "--physical"]).stdout).toBe(`compacted revision ${rev}\n`)
  expect(etcdctl(ep, ["defrag"]).code).toBe(0)
  expect(etcdctl(ep, ["alarm", "disarm"]).stdout).toMatch(/^memberID:\d+ alarm:NOSPACE \n$/)
  expect(etcdctl(ep, ["alarm", "list"]).stdout).toBe("")
  expect(etcdctl(ep, ["put", "small", "v"]).stdout).toBe("OK\n")
}, 60_000)
