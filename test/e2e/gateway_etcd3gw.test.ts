// python3-etcd3gw (OpenStack's client of the /v3 JSON gateway, the base of tooz's
// etcd3gw driver) against the compiled member and against etcd 3.4: the same steps
// (put/get, a lease sent back as a JSON number past 2^53, keepalive, lock, revoke)
// print the same lines on both. Needs Debian's python3-etcd3gw (.ci/packages.d/gateway).
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test"
import { spawnSync } from "bun"
import { join } from "node:path"
import { type MemberProcess, startMember } from "../support/procs"

setDefaultTimeout(60_000)

const script = join(import.meta.dir, "gateway_clients/etcd3gw_check.py")
let etcd: MemberProcess
let tskv: MemberProcess

beforeAll(async () => {
  ;[etcd, tskv] = await Promise.all([startMember({ kind: "etcd", name: "gw3" }), startMember({ kind: "tskv", name: "gw3" })])
})

afterAll(async () => {
  await etcd?.stop()
  await tskv?.stop()
})

function run(m: MemberProcess): { code: number; out: string } {
  const r = spawnSync(["/usr/bin/python3", script, "127.0.0.1", String(m.clientPort)], { timeout: 30_000 })
  return { code: r.exitCode ?? -1, out: r.stdout.toString() + r.stderr.toString() }
}

test("python3-etcd3gw does the same on tskv as on etcd 3.4", () => {
  const e = run(etcd)
  expect(e.code).toBe(0)
  expect(e.out).toContain("('refresh', 30)")
  expect(run(tskv)).toEqual(e)
})
