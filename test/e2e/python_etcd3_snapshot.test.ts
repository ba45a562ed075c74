// python-etcd3 (Debian's python3-etcd3) takes a snapshot of tskv, and real
// etcdctl reads it (its test_snapshot), with the same revision, key count and
// size class as for an etcd 3.4 member given the same writes.

import { afterAll, expect, setDefaultTimeout, test } from "bun:test"
import { spawnSync } from "bun"
import { join } from "node:path"
import { humanizeBytes } from "../../src/lib/humanize"
import { type MemberProcess, startMember } from "../support/procs"

setDefaultTimeout(60_000)

const started: MemberProcess[] = []
afterAll(async () => {
  for (const m of started) await m.stop("SIGKILL")
})

interface Result {
  status: { hash: number; revision: number; totalKey: number; totalSize: number }
  revision: number
  size: number
}

async function snapshotWithPython(kind: "tskv" | "etcd"): Promise<Result> {
  const m = await startMember({ kind, name: "py" })
  started.push(m)
  // Debian's python3 (/usr/bin/python3) is the one python3-etcd3 is installed for.
  const r = spawnSync(["/usr/bin/python3", join(import.meta.dir, "python", "etcd3_snapshot.py"), m.clientUrl.replace("http://", "")], { stdin: "ignore" })
  if (r.exitCode !== 0) throw new Error(`python-etcd3 snapshot test failed (${r.exitCode}):\n${r.stderr.toString()}${r.stdout.toString()}`)
  await m.stop()
  return JSON.parse(r.stdout.toString()) as Result
}

test("python-etcd3's snapshot test passes against tskv, and etcdctl reads what it read from etcd 3.4", async () => {
  const ours = await snapshotWithPython("tskv")
  const theirs = await snapshotWithPython("etcd")
  expect(ours.status.revision).toBe(ours.revision)
  // The file is the db and its sha256.
  expect(ours.size).toBe(ours.status.totalSize + 32)
  expect({ revision: ours.status.revision, totalKey: ours.status.totalKey }).toEqual({ revision: theirs.status.revision, totalKey: theirs.status.totalKey })
  expect(humanizeBytes(ours.status.totalSize).split(" ")[1]).toBe(humanizeBytes(theirs.status.totalSize).split(" ")[1])
})
