// Corruption checks across members: a member whose key-value history was
// altered on disk is refused at start with --experimental-initial-corrupt-check
// (kubeadm passes it), and with --experimental-corrupt-check-time the leader
// raises the CORRUPT alarm, after which writes fail with etcd's error.

import { Database } from "bun:sqlite"
import { afterEach, expect, test } from "bun:test"
import { join } from "node:path"
import { utf8 } from "../../src/lib/bytes"
import { Cluster, eventually, putMany } from "../support/cluster"
import { etcdctl } from "../support/procs"
import { backendPathOf } from "../../src/lib/data_dir"

let cluster: Cluster | undefined
afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

/** Changes one stored value of a stopped member behind raft's back. */
function tamper(dataDir: string): void {
  const db = new Database(backendPathOf(dataDir))
  const changed = db.query("UPDATE mvcc_kv SET value = ? WHERE id = (SELECT max(id) FROM mvcc_kv WHERE key LIKE 'k/%')").run(utf8("tampered"))
  db.close()
  expect(changed.changes).toBe(1)
}

test("initial corruption check: a member whose data differs from its peers refuses to start", async () => {
  cluster = await Cluster.start({ kind: "tskv", size: 3, extraArgs: ["--experimental-initial-corrupt-check=true"] })
  await putMany({ client: cluster.client("m1"), count: 50, prefix: "k/" })
  await cluster.waitConverged()
  await cluster.terminate("m3")
  tamper(cluster.member("m3").dataDir)
  const error = await cluster.restart("m3", 20_000).then(
    () => undefined,
    (e: Error) => e,
  )
  expect(error?.message).toContain("found data inconsistency with peers")
  await cluster.forget("m3")
  // The healthy majority keeps serving.
  expect((await cluster.client("m1").kv.put({ key: utf8("after"), value: utf8("x") })).header?.revision).toBeGreaterThan(0)
}, 90_000)

test("periodic corruption check: the leader raises CORRUPT and writes fail with etcd's error", async () => {
  cluster = await Cluster.start({ kind: "tskv", size: 3, extraArgs: ["--experimental-corrupt-check-time=1s"] })
  await putMany({ client: cluster.client("m1"), count: 50, prefix: "k/" })
  await cluster.waitConverged()
  await cluster.terminate("m3")
  tamper(cluster.member("m3").dataDir)
  // /health turns 503 ("ALARM CORRUPT") as soon as the alarm is raised, so do not wait for it.
  await cluster.restart("m3", 3_000).catch(() => {})
  const ep = cluster.member("m1").clientUrl
  const alarms = await eventually("CORRUPT alarm", async () => {
    const out = etcdctl(ep, ["alarm", "list"]).stdout
    return out.includes("alarm:CORRUPT") ? out : undefined
  }, 20_000)
  expect(alarms).toMatch(/memberID:\d+ alarm:CORRUPT/)
  expect(etcdctl(ep, ["put", "x", "y"]).stderr).toContain("Error: etcdserver: corrupt cluster")
  // Reads keep working.
  expect(etcdctl(ep, ["get", "k/", "--prefix", "--keys-only", "--limit=1"]).code).toBe(0)
}, 90_000)
