// Snapshot catch-up: a follower is stopped (SIGSTOP) while 20,000 entries are
// written with --snapshot-count=1000, so the leader compacts its log past the
// follower (5000 catch-up entries kept); after SIGCONT the follower catches up
// by receiving a snapshot (etcd_network_snapshot_receive_success), its raft
// index reaches the leader's, and HashKV agrees on every member.

import { afterEach, describe, expect, test } from "bun:test"
import { fromUtf8, utf8 } from "../../src/lib/bytes"
import { Cluster, clusterKinds, eventually, metricSum, putMany } from "../support/cluster"

let cluster: Cluster | undefined
afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

const ENTRIES = 20_000

describe("cluster snapshot catch-up", () => {
  for (const kind of clusterKinds()) {
    test(`${kind}: a follower stopped for ${ENTRIES} entries with --snapshot-count=1000 catches up by snapshot`, async () => {
      const c = (cluster = await Cluster.start({ kind, size: 3, snapshotCount: 1_000 }))
      try {
        const leader = await c.leader()
        const follower = c.members.find((m) => m.name !== leader.name)!
        const receivedBefore = await metricSum(follower.clientUrl, "etcd_network_snapshot_receive_success")
        const savedBefore = await metricSum(follower.clientUrl, "etcd_snap_db_save_total_duration_seconds_count")
        c.pause(follower.name)
        const startedAt = performance.now()
        const revision = await putMany({ client: c.client(leader.name), count: ENTRIES, prefix: "snap/", concurrency: 100 })
        const writeMs = performance.now() - startedAt
        const leaderIndex = (await c.status(leader.name)).raftIndex
        c.resume(follower.name)
        const caughtUpAt = performance.now()
        // (raftIndex, not raftAppliedIndex: etcd 3.4 leaves the latter where it was before a snapshot install.)
        await eventually(
          `${follower.name} reaches the leader's raft index ${leaderIndex}`,
          async () => ((await c.status(follower.name)).raftIndex >= leaderIndex ? true : undefined),
          60_000,
        )
        await c.waitConverged(60_000)
        console.log(`${kind}: ${ENTRIES} puts in ${writeMs.toFixed(0)} ms, follower caught up in ${(performance.now() - caughtUpAt).toFixed(0)} ms`)
        const converged = await c.waitConverged(30_000)
        expect(converged.revision).toBeGreaterThanOrEqual(revision)
        // The follower serves the data it received (serializable: its own state).
        const res = await c.client(follower.name).kv.range({ key: utf8("snap/"), rangeEnd: utf8("snap0"), countOnly: true, serializable: true })
        expect(res.count).toBe(ENTRIES)
        const one = await c.client(follower.name).kv.range({ key: utf8(`snap/${ENTRIES - 1}`), serializable: true })
        expect(one.kvs.map((kv) => fromUtf8(kv.value))).toEqual(["x".repeat(16)])
        // And it keeps following: a new write reaches it.
        await c.client(leader.name).kv.put({ key: utf8("after"), value: utf8("x") })
        await c.waitConverged(10_000)
        // By snapshot, not by replaying the log: the leader no longer had the entries.
        expect(await metricSum(follower.clientUrl, "etcd_network_snapshot_receive_success")).toBeGreaterThan(receivedBefore)
        // etcd_snap_db_* time the received .snap.db on both
        expect(await metricSum(follower.clientUrl, "etcd_snap_db_save_total_duration_seconds_count")).toBeGreaterThan(savedBefore)
        expect(await metricSum(follower.clientUrl, "etcd_snap_db_fsync_duration_seconds_count")).toBeGreaterThan(0)
      } catch (e) {
        console.error(c.logs())
        throw e
      }
    }, 120_000)
  }
})
