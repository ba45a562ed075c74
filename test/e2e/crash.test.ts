// Crash: kill -9 the compiled member in the middle of a write load of
// acknowledged puts, restart it on the same data dir, and check that every
// acknowledged put is there with its revision, that the revision continues,
// and that history reads at old revisions still answer.

import { afterAll, expect, test } from "bun:test"
import { EtcdClient } from "../../src/client"
import { utf8, fromUtf8 } from "../../src/lib/bytes"
import { type MemberProcess, startMember } from "../support/procs"

const started: MemberProcess[] = []
afterAll(async () => {
  for (const m of started) await m.stop("SIGKILL")
})

interface Acked {
  key: string
  value: string
  revision: number
}

async function writeLoad(client: EtcdClient, writers: number, stopAt: { stop: boolean }): Promise<Acked[]> {
  const acked: Acked[] = []
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      for (let i = 0; !stopAt.stop; i++) {
        const key = `crash/${w}/${i % 50}`
        const value = `${w}-${i}`
        try {
          const res = await client.kv.put({ key: utf8(key), value: utf8(value) })
          acked.push({ key, value, revision: res.header?.revision ?? -1 })
        } catch {
          return // the member died under us: what was not acknowledged may be lost
        }
      }
    }),
  )
  return acked
}

/** The newest acknowledged value of every key is the value now stored, at the acknowledged revision (or a newer, unacknowledged put landed). */
async function expectNewestAckedStored(client: EtcdClient, acked: readonly Acked[]): Promise<void> {
  const newest = new Map<string, Acked>()
  for (const a of acked) {
    const prev = newest.get(a.key)
    if (!prev || prev.revision < a.revision) newest.set(a.key, a)
  }
  for (const a of newest.values()) {
    const kv = (await client.kv.range({ key: utf8(a.key) })).kvs[0]
    expect(kv).toBeDefined()
    expect(kv!.modRevision).toBeGreaterThanOrEqual(a.revision)
    if (kv!.modRevision === a.revision) expect(fromUtf8(kv!.value)).toBe(a.value)
  }
}

test("kill -9 under a write load loses no acknowledged put; revisions continue", async () => {
  const first = await startMember({ kind: "tskv", name: "crash" })
  started.push(first)
  const client = new EtcdClient({ endpoints: [first.clientUrl], callTimeoutMs: 3000 })
  const stop = { stop: false }
  const load = writeLoad(client, 16, stop)
  await Bun.sleep(1500)
  first.proc.kill("SIGKILL")
  await first.proc.exited
  stop.stop = true
  const acked = await load
  client.close()
  expect(acked.length).toBeGreaterThan(100)

  const second = await startMember({
    kind: "tskv",
    name: "crash",
    dataDir: first.dataDir,
    clientPort: first.clientPort,
    peerPort: first.peerPort,
  })
  started.push(second)
  const after = new EtcdClient({ endpoints: [second.clientUrl] })
  try {
    await expectNewestAckedStored(after, acked)
    // Every acknowledged revision is readable in history with its value.
    for (const a of acked.slice(0, 200)) {
      const res = await after.kv.range({ key: utf8(a.key), revision: a.revision })
      expect(fromUtf8(res.kvs[0]!.value)).toBe(a.value)
    }
    const maxAcked = Math.max(...acked.map((a) => a.revision))
    const put = await after.kv.put({ key: utf8("crash/after"), value: utf8("x") })
    expect(put.header!.revision).toBeGreaterThan(maxAcked)
  } finally {
    after.close()
  }
}, 60_000)

// The same, five times over on one data dir, with the member's background
// durability work made as frequent as it gets: a raft snapshot every 300
// entries (the backend made durable by an fdatasync on the thread pool while
// applying goes on), a backend commit every 5 ms (so the backend is often ahead
// of the commit index the WAL has durably recorded: the restart must raise it),
// and SQLite checkpoints on the worker thread. Each kill lands at a different
// moment; every put acknowledged in any round must survive all later crashes.
test("kill -9 five times during snapshots and backend commits loses no acknowledged put", async () => {
  const args = ["--snapshot-count=300", "--backend-batch-interval=5ms", "--snapshot-catchup-entries=100"]
  let member = await startMember({ kind: "tskv", name: "crash5", extraArgs: args })
  started.push(member)
  const acked: Acked[] = []
  let logs = ""
  for (let round = 0; round < 5; round++) {
    const client = new EtcdClient({ endpoints: [member.clientUrl], callTimeoutMs: 3000 })
    const stop = { stop: false }
    const load = writeLoad(client, 8, stop)
    await Bun.sleep(700 + round * 173)
    member.proc.kill("SIGKILL")
    await member.proc.exited
    stop.stop = true
    acked.push(...(await load))
    client.close()
    logs += member.output()
    member = await startMember({
      kind: "tskv",
      name: "crash5",
      dataDir: member.dataDir,
      clientPort: member.clientPort,
      peerPort: member.peerPort,
      extraArgs: args,
    })
    started.push(member)
  }
  expect(acked.length).toBeGreaterThan(500)
  logs += member.output()
  expect(logs).toContain("saved snapshot")
  // Every restart resumed from its data dir. (The backend can only get ahead of the WAL's commit
  // index when the OS loses page-cache writes, not on kill -9: raft.test.ts covers that restart.)
  expect([...logs.matchAll(/"restarting member from its data dir"/g)].length).toBe(5)
  const after = new EtcdClient({ endpoints: [member.clientUrl] })
  try {
    await expectNewestAckedStored(after, acked)
    const maxAcked = Math.max(...acked.map((a) => a.revision))
    const put = await after.kv.put({ key: utf8("crash5/after"), value: utf8("x") })
    expect(put.header!.revision).toBeGreaterThan(maxAcked)
  } finally {
    after.close()
  }
}, 120_000)
