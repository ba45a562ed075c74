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
    // The newest acknowledged value of every key is the value now stored, at the acknowledged revision.
    const newest = new Map<string, Acked>()
    for (const a of acked) {
      const prev = newest.get(a.key)
      if (!prev || prev.revision < a.revision) newest.set(a.key, a)
    }
    for (const a of newest.values()) {
      const res = await after.kv.range({ key: utf8(a.key) })
      const kv = res.kvs[0]
      expect(kv).toBeDefined()
      // A later, unacknowledged put may have landed; it can only be newer.
      expect(kv!.modRevision).toBeGreaterThanOrEqual(a.revision)
      if (kv!.modRevision === a.revision) expect(fromUtf8(kv!.value)).toBe(a.value)
    }
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
