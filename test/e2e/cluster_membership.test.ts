// Membership changes with real etcdctl, following etcd's runbooks:
// - add a 4th member as a learner (`member add --learner`, start it with the
//   settings etcdctl printed), promote it once it is in sync;
// - remove the leader: the others elect a new one, the removed member stops;
// - replace a member's data dir (a dead disk): kill it, remove it, add it
//   again, start it on an empty dir with --initial-cluster-state existing.

import { afterEach, describe, expect, test } from "bun:test"
import { fromUtf8, utf8 } from "../../src/lib/bytes"
import { Cluster, clusterKinds, eventually, putMany } from "../support/cluster"
import { etcdctl, waitHealthy } from "../support/procs"

let cluster: Cluster | undefined
afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

async function memberView(c: Cluster, via: string): Promise<{ name: string; isLearner: boolean }[]> {
  const list = await c.client(via).cluster.memberList({})
  return list.members.map((m) => ({ name: m.name, isLearner: m.isLearner })).sort((a, b) => a.name.localeCompare(b.name))
}

describe("cluster membership", () => {
  for (const kind of clusterKinds()) {
    test(`${kind}: a 4th member added as learner catches up, refuses writes, is promoted, then votes`, async () => {
      const c = (cluster = await Cluster.start({ kind, size: 3 }))
      try {
        await putMany({ client: c.client("m1"), count: 500, prefix: "pre/", concurrency: 20 })
        const { member, ctl } = await c.addMember({ name: "m4", learner: true })
        expect(ctl.stdout).toMatch(/^Member +[0-9a-f]+ added to cluster +[0-9a-f]+\n/)
        expect(ctl.stdout).toContain('ETCD_INITIAL_CLUSTER_STATE="existing"')
        const id = BigInt(`0x${/^Member +([0-9a-f]+)/.exec(ctl.stdout)![1]}`)
        // Listed at once as a learner (with no name until it has started and published it).
        const listed = (await c.client("m1").cluster.memberList({})).members.find((m) => m.ID === id)
        expect({ isLearner: listed?.isLearner, peerURLs: listed?.peerURLs }).toEqual({ isLearner: true, peerURLs: [member.peerUrl] })
        await eventually("the learner publishes its name", async () => ((await memberView(c, "m1")).some((m) => m.name === "m4") ? true : undefined))
        expect(await memberView(c, "m1")).toEqual([
          { name: "m1", isLearner: false },
          { name: "m2", isLearner: false },
          { name: "m3", isLearner: false },
          { name: "m4", isLearner: true },
        ])
        // (etcdctl prints the ids with %16x: space-padded.)
        // The learner receives the data (serializable reads are allowed on a learner).
        await eventually("the learner has the data", async () => {
          const r = await c.client("m4").kv.range({ key: utf8("pre/"), rangeEnd: utf8("pre0"), countOnly: true, serializable: true })
          return r.count === 500 ? true : undefined
        })
        expect((await c.status("m4")).isLearner).toBe(true)
        // A learner does not serve writes or linearizable reads (etcd's error).
        const put = etcdctl(member.clientUrl, ["put", "x", "y"])
        expect(put.stderr.trim().split("\n").at(-1)).toBe("Error: etcdserver: rpc not supported for learner")
        // Promote once in sync (etcd refuses while it lags: retry).
        const promoted = await eventually("member promote succeeds", async () => {
          const r = etcdctl(c.member("m1").clientUrl, ["member", "promote", id.toString(16)])
          return r.code === 0 ? r : undefined
        })
        expect(promoted.stdout.trim()).toMatch(/^Member +[0-9a-f]+ promoted in cluster +[0-9a-f]+$/)
        expect((await memberView(c, "m2")).map((m) => m.isLearner)).toEqual([false, false, false, false])
        await waitHealthy(member.process!)
        await c.client("m4").kv.put({ key: utf8("from-m4"), value: utf8("voter") })
        for (const m of c.members) {
          const r = await c.client(m.name).kv.range({ key: utf8("from-m4") })
          expect(r.kvs.map((kv) => fromUtf8(kv.value))).toEqual(["voter"])
        }
        await c.waitConverged(20_000)
        // m4 counts in the quorum now: with one of the first three down, 3 of 4 voters still commit.
        const leader = await c.leader()
        await c.kill(["m1", "m2", "m3"].find((n) => n !== leader.name)!)
        await c.client("m4").kv.put({ key: utf8("three-of-four"), value: utf8("ok") })
      } catch (e) {
        console.error(c.logs())
        throw e
      }
    }, 90_000)

    test(`${kind}: removing the leader: the others elect a new leader and keep going, the removed member stops serving`, async () => {
      const c = (cluster = await Cluster.start({ kind, size: 3 }))
      try {
        const leader = await c.leader()
        const others = c.members.map((m) => m.name).filter((n) => n !== leader.name)
        const id = await c.idOf(leader.name)
        const r = await c.removeMember({ name: leader.name, id, via: others[0]! })
        expect(r.stdout.trim()).toMatch(new RegExp(`^Member +${id.toString(16)} removed from cluster +[0-9a-f]+$`))
        const next = await c.leader({ among: others, timeoutMs: 10_000 })
        expect(others).toContain(next.name)
        expect((await memberView(c, others[0]!)).map((m) => m.name)).toEqual(others)
        await c.client(others[1]!).kv.put({ key: utf8("after-remove"), value: utf8("x") })
        // The removed member stops serving: it exits (etcd does) or refuses.
        const removed = c.running(leader.name)
        await eventually(`${leader.name} stops serving`, async () => {
          if (removed.proc.exitCode !== null || removed.proc.signalCode !== null) return true
          try {
            await c.client(leader.name, 1_000).kv.put({ key: utf8("removed"), value: utf8("x") })
            return undefined
          } catch {
            return true
          }
        })
        await c.forget(leader.name)
        await c.waitConverged(10_000)
        const gone = await c.client(others[0]!).kv.range({ key: utf8("removed") })
        expect(gone.kvs).toEqual([])
      } catch (e) {
        console.error(c.logs())
        throw e
      }
    }, 60_000)

    test(`${kind}: replacing a member's data dir (dead disk runbook: remove, add, start empty with state existing) catches it up`, async () => {
      const c = (cluster = await Cluster.start({ kind, size: 3 }))
      try {
        await putMany({ client: c.client("m1"), count: 1_000, prefix: "disk/", concurrency: 20 })
        const leader = await c.leader()
        const victim = c.members.find((m) => m.name !== leader.name)!
        const id = await c.idOf(victim.name)
        await c.kill(victim.name)
        const rm = await c.removeMember({ name: victim.name, id, via: leader.name })
        expect(rm.code).toBe(0)
        // Add it again under the same name, on a new empty data dir.
        const { member } = await c.addMember({ name: victim.name, via: leader.name })
        expect(member.dataDir).not.toBe(victim.dataDir)
        await waitHealthy(member.process!, 30_000)
        const newId = await c.idOf(victim.name)
        expect(newId).not.toBe(id)
        await c.waitConverged(30_000)
        const r = await c.client(victim.name).kv.range({ key: utf8("disk/"), rangeEnd: utf8("disk0"), countOnly: true })
        expect(r.count).toBe(1_000)
        expect((await memberView(c, leader.name)).map((m) => m.name)).toEqual(["m1", "m2", "m3"])
      } catch (e) {
        console.error(c.logs())
        throw e
      }
    }, 90_000)
  }
})
