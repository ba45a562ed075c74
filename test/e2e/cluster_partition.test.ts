// Partition: one member's peer traffic (a follower's, or the leader's) is cut by the fault proxy while a
// concurrent client history (puts, linearizable gets, CAS txns on a few keys,
// on every member) is recorded. The cut-off member refuses linearizable
// requests with etcd 3.4's errors, the majority keeps going, after healing
// every member converges to the same HashKV, and the history is linearizable.
//
// The expected errors were measured on etcd 3.4.23 with this very test
// (TSKV_CLUSTER_KINDS=etcd). Once the isolated follower has no leader (its
// election timeout passed; 3.4 has no pre-vote, so it campaigns), after the
// request timeout (7 s = 5 s + 2 election timeouts) a linearizable Range fails
// with Unavailable "etcdserver: request timed out", a Put with Unknown
// "context deadline exceeded" (the proposal waits for a leader until the
// deadline); with metadata hasleader=true a Range fails at once with
// Unavailable "etcdserver: no leader"; a serializable Range is answered
// locally. (Right after the cut, while the follower still follows the old
// leader, a Put fails with "etcdserver: request timed out" instead.)

import { afterEach, describe, expect, test } from "bun:test"
import { status } from "@grpc/grpc-js"
import { utf8 } from "../../src/lib/bytes"
import { Cluster, clusterKinds, eventually, failureOf } from "../support/cluster"
import { assertLinearizable, History, runWorkload } from "../support/linearizability"

let cluster: Cluster | undefined
afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

/** What etcd 3.4 answers on a member cut off from its peers once it has no leader (see above). */
const MINORITY_ERRORS = {
  get: { code: status.UNAVAILABLE, message: "etcdserver: request timed out" },
  put: { code: status.UNKNOWN, message: "context deadline exceeded" },
  requireLeader: { code: status.UNAVAILABLE, message: "etcdserver: no leader" },
  serializable: "ok",
}


describe("cluster partition", () => {
  for (const [kind, role] of clusterKinds().flatMap((k) => [[k, "follower"] as const, [k, "leader"] as const])) {
    test(`${kind}: an isolated ${role} refuses linearizable requests, the majority keeps going, after healing HashKV agrees, the history is linearizable`, async () => {
      const c = (cluster = await Cluster.start({ kind, size: 3, faults: true }))
      try {
        const leader = await c.leader()
        // All peer traffic goes through the proxy, which knows who dials.
        for (const m of c.members) expect({ m: m.name, seen: (c.proxy!.accepted.get(m.name) ?? 0) > 0 }).toEqual({ m: m.name, seen: true })
        // An isolated leader steps down once it has not heard from a quorum for an election timeout (CheckQuorum).
        const victim = role === "leader" ? leader.name : c.members.find((m) => m.name !== leader.name)!.name
        const majority = c.members.map((m) => m.name).filter((n) => n !== victim)

        const history = new History()
        const clients = c.members.flatMap((m) => [c.newClient(m.name), c.newClient(m.name)])
        let done = false
        let minority: unknown
        const workload = runWorkload({ clients, keys: ["k0", "k1", "k2"], history, done: () => done, opTimeoutMs: 3_000, pauseMs: 5 })
        try {
          await Bun.sleep(1_000)
          c.proxy!.isolate(victim)
          const partitionedAt = history.now()

          // The minority notices: no heartbeats for an election timeout, it has no leader (3.4: no pre-vote).
          await eventually(`${victim} reports no leader`, async () => ((await c.status(victim)).leader === 0n ? true : undefined), 15_000)
          // Linearizable requests fail with etcd's errors, serializable reads still answer.
          const probe = c.newClient(victim, 20_000)
          const [get, put, requireLeader, serializable] = await Promise.all([
            failureOf(() => probe.kv.range({ key: utf8("k0") })),
            failureOf(() => probe.kv.put({ key: utf8("k0"), value: utf8("minority") })),
            failureOf(() => probe.kv.range({ key: utf8("k0") }, { requireLeader: true })),
            failureOf(() => probe.kv.range({ key: utf8("k0"), serializable: true })),
          ])
          probe.close()
          minority = { get, put, requireLeader, serializable }
          // (Compared at the end, so that a difference in the errors does not hide the rest of the scenario.)

          // The majority kept going meanwhile: writes through both majority members were acknowledged.
          await Bun.sleep(Math.max(0, partitionedAt + 6_000 - history.now()))
          const healedAt = history.now()
          const majorityClients = new Set(c.members.flatMap((m, i) => (majority.includes(m.name) ? [2 * i, 2 * i + 1] : [])))
          const ackedDuringPartition = history.entries.filter(
            (e) => majorityClients.has(e.client) && e.op.kind !== "get" && e.outcome !== undefined && e.invokeMs > partitionedAt + 2_000 && e.completeMs < healedAt,
          )
          expect(ackedDuringPartition.length).toBeGreaterThan(10)
          const leaderNow = await c.leader({ among: majority })
          expect(majority).toContain(leaderNow.name)

          c.proxy!.heal()
          await c.leader({ timeoutMs: 20_000 })
          await Bun.sleep(1_000)
        } finally {
          done = true
          await workload
          for (const cl of clients) cl.close()
        }
        await c.waitConverged(20_000)
        assertLinearizable(history.entries, 100)
        expect(minority).toEqual(MINORITY_ERRORS)
      } catch (e) {
        console.error(c.logs())
        throw e
      }
    }, 90_000)
  }

  for (const kind of clusterKinds()) {
    test(`${kind}: one-way loss (the leader's bytes to one follower dropped, then links delayed), after healing HashKV agrees, the history is linearizable`, async () => {
      const c = (cluster = await Cluster.start({ kind, size: 3, faults: true }))
      try {
        const leader = await c.leader()
        const [victim, other] = c.members.map((m) => m.name).filter((n) => n !== leader.name) as [string, string]
        const history = new History()
        const clients = c.members.flatMap((m) => [c.newClient(m.name), c.newClient(m.name)])
        let done = false
        const workload = runWorkload({ clients, keys: ["k0", "k1", "k2"], history, done: () => done, opTimeoutMs: 3_000, pauseMs: 5 })
        try {
          await Bun.sleep(1_000)
          // The victim hears nothing from the leader but can still talk to everyone (it campaigns).
          const droppedAt = Date.now()
          c.proxy!.dropOneWay(leader.name, victim)
          // The fault bites: without heartbeats the victim loses its leader and campaigns.
          await eventually(`${victim} loses its leader`, async () => ((await c.status(victim)).leader === 0n ? true : undefined), 10_000)
          await Bun.sleep(Math.max(0, droppedAt + 4_000 - Date.now()))
          c.proxy!.heal()
          // Then slow links: 150 ms each way between the leader and the other follower.
          c.proxy!.delay(leader.name, other, 150)
          c.proxy!.delay(other, leader.name, 150)
          await Bun.sleep(3_000)
          c.proxy!.heal()
          await c.leader({ timeoutMs: 20_000 })
          await Bun.sleep(1_000)
        } finally {
          done = true
          await workload
          for (const cl of clients) cl.close()
        }
        await c.waitConverged(20_000)
        assertLinearizable(history.entries, 100)
      } catch (e) {
        console.error(c.logs())
        throw e
      }
    }, 90_000)
  }
})
