// The runbook for a cluster that lost its quorum for good (README, "Disaster
// recovery"): two of three members are killed and never come back; the third
// restarts with --force-new-cluster as a one-member cluster with every write it
// acknowledged; it restarts once more without the flag; two fresh members are
// added back with `member add`; HashKV is equal on all three.

import { afterEach, expect, test } from "bun:test"
import { fromUtf8, utf8 } from "../../src/lib/bytes"
import { Cluster, clusterKinds } from "../support/cluster"
import { etcdctl, waitHealthy } from "../support/procs"

let cluster: Cluster | undefined
afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

// TSKV_CLUSTER_KINDS=tskv,etcd runs the same runbook against etcd 3.4 (it passes there too).
for (const kind of clusterKinds()) {
  test(`${kind}: --force-new-cluster on the survivor of a lost quorum keeps every acknowledged write; two members added back converge`, async () => {
    const c = (cluster = await Cluster.start({ kind, size: 3, snapshotCount: 100 }))
    const leader = await c.leader()
    const survivor = c.members.find((m) => m.name !== leader.name)!.name
    const lost = c.members.map((m) => m.name).filter((n) => n !== survivor)

    // Acknowledged writes through the survivor while the other two are killed: a member answers a
    // write once it applied it, so each of them is committed in the survivor's own WAL.
    const acked = new Map<string, string>()
    let done = false
    const writer = c.newClient(survivor, 2_000)
    const writes = (async () => {
      for (let i = 0; !done && i < 5_000; i++) {
        try {
          await writer.kv.put({ key: utf8(`acked/${i}`), value: utf8(`v${i}`) })
          acked.set(`acked/${i}`, `v${i}`)
        } catch {
          await Bun.sleep(20)
        }
      }
    })()
    // At least 50 acknowledged writes before the kill (bounded: a loaded machine writes slowly).
    for (const deadline = Date.now() + 15_000; acked.size < 50 && Date.now() < deadline; ) await Bun.sleep(50)
    await Promise.all(lost.map((n) => c.kill(n)))
    await Bun.sleep(500)
    done = true
    await writes
    writer.close()
    for (const n of lost) await c.forget(n)
    expect(acked.size).toBeGreaterThanOrEqual(50)

    // No quorum: writes fail. The survivor is stopped and started as a new one-member cluster.
    expect(etcdctl(c.member(survivor).clientUrl, ["put", "x", "y", "--command-timeout=2s"]).code).not.toBe(0)
    await c.kill(survivor)
    await c.restart(survivor, 30_000, ["--force-new-cluster"])
    const members = JSON.parse(etcdctl(c.member(survivor).clientUrl, ["member", "list", "-w", "json"]).stdout).members as { name: string }[]
    expect(members.map((m) => m.name)).toEqual([survivor])
    const check = async (name: string): Promise<void> => {
      const r = await c.client(name).kv.range({ key: utf8("acked/"), rangeEnd: utf8("acked0"), serializable: true })
      const got = new Map(r.kvs.map((kv) => [fromUtf8(kv.key), fromUtf8(kv.value)]))
      const missing = [...acked.keys()].filter((k) => got.get(k) !== acked.get(k))
      expect({ name, missing }).toEqual({ name, missing: [] })
    }
    await check(survivor)
    expect(etcdctl(c.member(survivor).clientUrl, ["put", "after", "force"]).code).toBe(0)

    // The flag is for one start: the member restarts without it on the same data dir.
    await c.kill(survivor)
    await c.restart(survivor)
    expect(etcdctl(c.member(survivor).clientUrl, ["get", "after", "--print-value-only"]).stdout).toBe("force\n")

    // Two fresh members, one at a time, with empty data dirs.
    for (const name of ["m4", "m5"]) {
      const { member } = await c.addMember({ name, via: survivor })
      await waitHealthy(member.process!, 30_000)
    }
    await c.waitConverged(30_000)
    const hashes = c.ctlHashKV()
    expect([...hashes.keys()].sort()).toEqual([survivor, "m4", "m5"].sort())
    expect(new Set(hashes.values()).size).toBe(1)
    for (const name of ["m4", "m5"]) await check(name)
    console.log(`${kind}: ${acked.size} acknowledged writes kept through --force-new-cluster; 3 members converged`)
  }, 120_000)
}
