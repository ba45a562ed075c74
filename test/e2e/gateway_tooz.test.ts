// OpenStack tooz's etcd3gw coordination driver (Debian python3-tooz, built on
// python3-etcd3gw) against the compiled member and against etcd 3.4: locks between two
// coordinators, heartbeats, group create/join/members/capabilities/leave/delete, and a
// membership lease left to expire print the same lines on both.
// Needs Debian's python3-tooz (.ci/packages.d/gateway).
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test"
import { spawn } from "bun"
import { join } from "node:path"
import { type MemberProcess, startMember } from "../support/procs"

setDefaultTimeout(60_000)

const script = join(import.meta.dir, "gateway_clients/tooz_check.py")
let etcd: MemberProcess
let tskv: MemberProcess

beforeAll(async () => {
  ;[etcd, tskv] = await Promise.all([startMember({ kind: "etcd", name: "gwtz" }), startMember({ kind: "tskv", name: "gwtz" })])
})

afterAll(async () => {
  await etcd?.stop()
  await tskv?.stop()
})

async function run(m: MemberProcess): Promise<{ code: number; out: string }> {
  const p = spawn(["/usr/bin/python3", script, "127.0.0.1", String(m.clientPort)], { stdout: "pipe", stderr: "pipe", timeout: 40_000 })
  const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()])
  return { code: await p.exited, out: out + err }
}

test("tooz locks and groups over etcd3gw do the same on tskv as on etcd 3.4", async () => {
  const [e, t] = await Promise.all([run(etcd), run(tskv)])
  expect(e.code).toBe(0)
  expect(e.out).toContain("('members-with-3', ['m1', 'm3'])")
  expect(e.out).toContain("('members-after-expiry', ['m1'])")
  expect(e.out).toContain("('l2-acquire-busy', False)")
  expect(t).toEqual(e)
})
