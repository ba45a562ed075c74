// A follower whose backend is gone after a crash (the SQLite db and its -wal
// file never reached the disk: a power cut, or an ext4 that aborted its
// journal, right after the member started): the member restarts from its WAL
// alone, replays the whole log, and must learn every member from the log (the
// bootstrap ConfChange entries carry the member, as etcd's do), reach its
// peers, catch up and serve. Before the fix, it knew no peer: it received the
// leader's heartbeats but could answer nothing (the bug of the read-only data
// dir restart in disk_full.test.ts). Same scenario on etcd 3.4 for comparison.

import { afterEach, expect, test } from "bun:test"
import { rmSync } from "node:fs"
import { join } from "node:path"
import { fromUtf8, utf8 } from "../../src/lib/bytes"
import { Cluster } from "../support/cluster"

let cluster: Cluster | undefined
afterEach(async () => {
  await cluster?.close().catch(() => undefined)
  cluster = undefined
})

for (const kind of ["tskv", "etcd"] as const) {
  test(`${kind}: a follower restarted without its backend (db lost in a crash) rebuilds it from the WAL, reaches its peers and catches up`, async () => {
    const c = (cluster = await Cluster.start({ kind, size: 3 }))
    const leader = (await c.leader()).name
    const victim = c.members.find((m) => m.name !== leader)!.name
    for (let i = 0; i < 30; i++) await c.client(leader).kv.put({ key: utf8(`k${i}`), value: utf8(`v${i}`) })
    await c.waitConverged()
    await c.kill(victim)
    const snapDir = join(c.member(victim).dataDir, kind === "tskv" ? "tskv" : "member", "snap")
    for (const f of ["db", "db-wal", "db-shm"]) rmSync(join(snapDir, f), { force: true })
    for (let i = 30; i < 50; i++) await c.client(leader).kv.put({ key: utf8(`k${i}`), value: utf8(`v${i}`) })
    try {
      await c.restart(victim, 20_000)
      await c.waitConverged(20_000)
    } catch (e) {
      throw new Error(`${String(e)}\n${c.member(victim).process?.output().slice(-4_000)}`)
    }
    const r = await c.client(victim).kv.range({ key: utf8("k"), rangeEnd: utf8("l"), serializable: true })
    expect(r.count).toBe(50)
    expect(fromUtf8(r.kvs.find((kv) => fromUtf8(kv.key) === "k49")!.value)).toBe("v49")
    // It knows every member again (names and peer URLs), and takes writes.
    const members = await c.client(victim).cluster.memberList({})
    expect(members.members.map((m) => m.name).sort()).toEqual(c.members.map((m) => m.name).sort())
    for (const m of members.members) expect(m.peerURLs.length).toBe(1)
    await c.client(victim).kv.put({ key: utf8("after"), value: utf8("x") })
  }, 60_000)
}
