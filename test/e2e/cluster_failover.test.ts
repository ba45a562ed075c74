// Failover: kill -9 the leader of a 3-member cluster under a concurrent client
// history. A new leader is elected within two election timeouts, writes
// resume, no acknowledged write is lost, the old leader restarts on its data
// dir and catches up (HashKV equal on every member), and the history is
// linearizable. The same history check around a leader stopped with SIGSTOP
// past an election and woken up again. Also: a graceful stop (SIGTERM) of the leader hands
// leadership over first, so the others need no election timeout.

import { afterEach, describe, expect, test } from "bun:test"
import { fromUtf8, utf8 } from "../../src/lib/bytes"
import { Cluster, clusterKinds, ELECTION_TIMEOUT_MS } from "../support/cluster"
import { etcdctl } from "../support/procs"
import { assertLinearizable, History, runWorkload } from "../support/linearizability"

let cluster: Cluster | undefined
afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

/** Slack for the Status polling and a loaded 2-core machine on top of the election bound. */
const MEASUREMENT_SLACK_MS = 1_000

describe("cluster failover", () => {
  for (const kind of clusterKinds()) {
    test(`${kind}: kill -9 the leader: new leader within two election timeouts, writes resume, no acknowledged write lost, the old leader catches up`, async () => {
      const c = (cluster = await Cluster.start({ kind, size: 3 }))
      try {
        const leader = await c.leader()
        const survivors = c.members.map((m) => m.name).filter((n) => n !== leader.name)
        const termBefore = (await c.status(survivors[0]!)).raftTerm

        // Acknowledged writes of unique keys through a survivor, and a register history on every member.
        const history = new History()
        const clients = c.members.flatMap((m) => [c.newClient(m.name), c.newClient(m.name)])
        const ackedKeys: string[] = []
        let done = false
        const writer = c.newClient(survivors[0]!, 3_000)
        const acked = (async () => {
          for (let i = 0; !done; i++) {
            try {
              await writer.kv.put({ key: utf8(`acked/${i}`), value: utf8(`v${i}`) })
              ackedKeys.push(`acked/${i}`)
            } catch {
              await Bun.sleep(50)
            }
          }
        })()
        const workload = runWorkload({ clients, keys: ["k0", "k1", "k2"], history, done: () => done, opTimeoutMs: 3_000, pauseMs: 5 })
        let electionMs: number
        try {
          await Bun.sleep(1_000)
          const killedAt = performance.now()
          await c.kill(leader.name)
          const next = await c.leader({ among: survivors, timeoutMs: 10_000 })
          electionMs = performance.now() - killedAt
          expect(survivors).toContain(next.name)
          expect((await c.status(next.name)).raftTerm).toBeGreaterThan(termBefore)
          // Writes resume, on both survivors.
          for (const n of survivors) await c.client(n).kv.put({ key: utf8(`after/${n}`), value: utf8("x") })
          await Bun.sleep(500)
          await c.restart(leader.name)
          await Bun.sleep(1_000)
        } finally {
          done = true
          await Promise.all([workload, acked])
          for (const cl of [...clients, writer]) cl.close()
        }
        console.log(`${kind}: new leader ${electionMs}ms after kill -9 of ${leader.name}; ${ackedKeys.length} acknowledged writes`)
        expect(electionMs).toBeLessThanOrEqual(2 * ELECTION_TIMEOUT_MS + MEASUREMENT_SLACK_MS)

        // The old leader caught up: same HashKV on every member.
        await c.waitConverged(30_000)
        // As an operator sees it: etcdctl endpoint hashkv agrees on all three.
        const hashes = c.ctlHashKV()
        expect([...hashes.keys()].sort()).toEqual(c.members.map((m) => m.name).sort())
        expect(new Set(hashes.values()).size).toBe(1)
        // No acknowledged write is lost, on any member (the restarted one included).
        expect(ackedKeys.length).toBeGreaterThan(10)
        for (const m of c.members) {
          const res = await c.client(m.name).kv.range({ key: utf8("acked/"), rangeEnd: utf8("acked0") })
          const present = new Set(res.kvs.map((kv) => fromUtf8(kv.key)))
          const lost = ackedKeys.filter((k) => !present.has(k))
          expect({ member: m.name, lost }).toEqual({ member: m.name, lost: [] })
        }
        assertLinearizable(history.entries, 100)
      } catch (e) {
        console.error(c.logs())
        throw e
      }
    }, 90_000)

    test(`${kind}: SIGSTOP the leader past an election, SIGCONT: the stale leader serves no stale reads, the history is linearizable`, async () => {
      const c = (cluster = await Cluster.start({ kind, size: 3 }))
      try {
        const leader = await c.leader()
        const others = c.members.map((m) => m.name).filter((n) => n !== leader.name)
        const history = new History()
        const clients = c.members.flatMap((m) => [c.newClient(m.name), c.newClient(m.name)])
        let done = false
        const workload = runWorkload({ clients, keys: ["k0", "k1"], history, done: () => done, opTimeoutMs: 3_000, pauseMs: 5 })
        try {
          await Bun.sleep(1_000)
          c.pause(leader.name)
          const next = await c.leader({ among: others, timeoutMs: 10_000 })
          expect(others).toContain(next.name)
          await Bun.sleep(1_000)
          // Woken up, the old leader still believes it leads until it hears the new term.
          c.resume(leader.name)
          await Bun.sleep(2_000)
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
    }, 60_000)

    test(`${kind}: etcdctl move-leader transfers leadership to the chosen follower`, async () => {
      const c = (cluster = await Cluster.start({ kind, size: 3 }))
      try {
        const leader = await c.leader()
        const target = c.members.find((m) => m.name !== leader.name)!
        const [fromId, toId] = [await c.idOf(leader.name), await c.idOf(target.name)]
        const r = etcdctl(
          c.members.map((m) => m.clientUrl),
          ["move-leader", toId.toString(16)],
        )
        expect({ code: r.code, stdout: r.stdout.trim() }).toEqual({
          code: 0,
          stdout: `Leadership transferred from ${fromId.toString(16)} to ${toId.toString(16)}`,
        })
        expect((await c.leader({ timeoutMs: 5_000 })).name).toBe(target.name)
        await c.client(leader.name).kv.put({ key: utf8("after-move"), value: utf8("x") })
      } catch (e) {
        console.error(c.logs())
        throw e
      }
    }, 60_000)

    test(`${kind}: SIGTERM of the leader hands leadership over before it exits`, async () => {
      const c = (cluster = await Cluster.start({ kind, size: 3 }))
      try {
        const leader = await c.leader()
        const survivors = c.members.map((m) => m.name).filter((n) => n !== leader.name)
        const stoppedAt = performance.now()
        await c.terminate(leader.name) // etcd exits 143 (it re-raises SIGTERM)
        const next = await c.leader({ among: survivors, timeoutMs: 10_000 })
        const handoverMs = performance.now() - stoppedAt
        console.log(`${kind}: leader after SIGTERM of ${leader.name} known ${handoverMs}ms later`)
        expect(survivors).toContain(next.name)
        // A transfer, not an election: faster than the shortest election timeout.
        expect(handoverMs).toBeLessThan(ELECTION_TIMEOUT_MS)
        await c.client(next.name).kv.put({ key: utf8("after"), value: utf8("x") })
      } catch (e) {
        console.error(c.logs())
        throw e
      }
    }, 60_000)
  }
})
