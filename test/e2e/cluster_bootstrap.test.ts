// Cluster bootstrap: 3 and 5 members started with the same --initial-cluster
// elect one leader, and a write on any member is read (linearizably) on every
// member. The 3-member case also runs against real etcd 3.4 as a self-check
// of the harness (test/support/cluster.ts).

import { afterEach, describe, expect, test } from "bun:test"
import { fromUtf8, utf8 } from "../../src/lib/bytes"
import { Cluster } from "../support/cluster"
import { etcdctl, hasEtcd } from "../support/procs"

let cluster: Cluster | undefined
afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

async function writeEverywhereReadEverywhere(c: Cluster): Promise<void> {
  const names = c.members.map((m) => m.name)
  for (const writer of names) {
    const key = `boot/${writer}`
    const put = await c.client(writer).kv.put({ key: utf8(key), value: utf8(`from ${writer}`) })
    for (const reader of names) {
      const res = await c.client(reader).kv.range({ key: utf8(key) })
      expect({ reader, value: res.kvs.map((kv) => fromUtf8(kv.value)) }).toEqual({ reader, value: [`from ${writer}`] })
      // A linearizable read is at least as new as the write it follows.
      expect(res.header!.revision).toBeGreaterThanOrEqual(put.header!.revision)
    }
  }
}

async function checkBootstrap(c: Cluster): Promise<void> {
  const leader = await c.leader()
  expect(c.members.map((m) => m.name)).toContain(leader.name)
  // Every member knows every member, with the advertised peer URLs, none a learner.
  for (const m of c.members) {
    const list = await c.client(m.name).cluster.memberList({})
    const seen = list.members.map((x) => ({ name: x.name, peerURLs: x.peerURLs, isLearner: x.isLearner }))
    seen.sort((a, b) => a.name.localeCompare(b.name))
    expect(seen).toEqual(c.members.map((x) => ({ name: x.name, peerURLs: [x.peerUrl], isLearner: false })))
  }
  // One cluster id, distinct member ids.
  const statuses = await Promise.all(c.members.map((m) => c.status(m.name)))
  expect(new Set(statuses.map((s) => s.header!.clusterId)).size).toBe(1)
  expect(new Set(statuses.map((s) => s.header!.memberId)).size).toBe(c.members.length)
  await writeEverywhereReadEverywhere(c)
  // etcdctl sees the same: endpoint status lists exactly one leader.
  const status = etcdctl(
    c.members.map((m) => m.clientUrl),
    ["endpoint", "status", "-w", "json"],
  )
  expect(status.code).toBe(0)
  const rows = JSON.parse(status.stdout) as { Status: { leader: string | number; header: { member_id: string | number } } }[]
  expect(rows.filter((r) => String(r.Status.leader) === String(r.Status.header.member_id)).length).toBe(1)
  await c.waitConverged(10_000)
}

describe("cluster bootstrap", () => {
  test("harness self-check: 3 etcd 3.4 members bootstrap; a write on any member is read on every member", async () => {
    if (!hasEtcd()) throw new Error("real etcd 3.4 is required (apt-get install etcd-server etcd-client)")
    cluster = await Cluster.start({ kind: "etcd", size: 3 })
    await checkBootstrap(cluster)
  }, 60_000)

  test("3 tskv members bootstrap; a write on any member is read linearizably on every member", async () => {
    cluster = await Cluster.start({ kind: "tskv", size: 3 })
    try {
      await checkBootstrap(cluster)
    } catch (e) {
      console.error(cluster.logs())
      throw e
    }
  }, 60_000)

  test("5 tskv members bootstrap; a write on any member is read linearizably on every member", async () => {
    cluster = await Cluster.start({ kind: "tskv", size: 5 })
    try {
      await checkBootstrap(cluster)
    } catch (e) {
      console.error(cluster.logs())
      throw e
    }
  }, 60_000)
})
