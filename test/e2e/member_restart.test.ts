// Restart determinism of the compiled member (issue 3, through the binary):
// - N mixed txns, kill -9 with no clean shutdown, restart: identical keys,
//   revisions, leases and HashKV (now and at a past revision); the revision
//   continues.
// - SIGTERM during a stream of puts: exit code 0, every acknowledged put is
//   there after a restart.
// - A 3-member cluster killed -9 all at once under load: after the restart
//   every acknowledged write is there and the members' HashKV agree.

import { afterAll, expect, test } from "bun:test"
import { EtcdClient } from "../../src/client"
import { fromUtf8, utf8 } from "../../src/lib/bytes"
import { seededPrng } from "../../src/lib/prng"
import { Compare_CompareResult, Compare_CompareTarget } from "../../src/pb"
import { Cluster } from "../support/cluster"
import { etcdctl, type MemberProcess, startMember } from "../support/procs"

const started: MemberProcess[] = []
const clusters: Cluster[] = []
afterAll(async () => {
  for (const m of started) await m.stop("SIGKILL")
  for (const c of clusters) await c.close()
})

async function restartOn(previous: MemberProcess, extraArgs: string[] = []): Promise<MemberProcess> {
  const m = await startMember({
    kind: "tskv",
    name: previous.name,
    dataDir: previous.dataDir,
    clientPort: previous.clientPort,
    peerPort: previous.peerPort,
    extraArgs,
  })
  started.push(m)
  return m
}

interface State {
  revision: number
  compactRevision: number
  hash: number
  pastHash: number
  kvs: string
  leases: string
}

async function stateOf(client: EtcdClient, pastRevision: number): Promise<State> {
  const all = await client.kv.range({ key: new Uint8Array([0]), rangeEnd: new Uint8Array([0]) })
  const kvs = all.kvs.map((kv) => [fromUtf8(kv.key), fromUtf8(kv.value), kv.createRevision, kv.modRevision, kv.version, String(kv.lease)])
  const hash = await client.maintenance.hashKV({ revision: 0 })
  const past = await client.maintenance.hashKV({ revision: pastRevision })
  const leases = await client.lease.leaseLeases()
  return {
    revision: all.header?.revision ?? -1,
    compactRevision: hash.compactRevision,
    hash: hash.hash,
    pastHash: past.hash,
    kvs: JSON.stringify(kvs),
    leases: JSON.stringify(leases.leases.map((l) => String(l.ID)).sort()),
  }
}

/** A deterministic mix of puts, deletes, txns, leases and one compaction. */
async function mixedLoad(client: EtcdClient, count: number, seed: number): Promise<number> {
  const prng = seededPrng(seed)
  const lease = await client.lease.leaseGrant({ TTL: 3600 })
  let compactedAt = 0
  for (let i = 0; i < count; i++) {
    const index = prng.int(40)
    const key = utf8(`mix/${index}`)
    const other = utf8(`mix/${(index + 1 + prng.int(39)) % 40}`)
    switch (prng.int(6)) {
      case 0:
      case 1:
        await client.kv.put({ key, value: utf8(`v${i}`) })
        break
      case 2:
        await client.kv.deleteRange({ key, prevKv: true })
        break
      case 3:
        await client.kv.txn({
          compare: [{ key, target: Compare_CompareTarget.VERSION, result: Compare_CompareResult.GREATER, version: 1 }],
          success: [{ requestPut: { key, value: utf8(`t${i}`) } }, { requestDeleteRange: { key: other } }],
          failure: [{ requestPut: { key, value: utf8(`f${i}`) } }, { requestRange: { key } }],
        })
        break
      case 4:
        await client.kv.put({ key, value: utf8(`l${i}`), lease: lease.ID })
        break
      default:
        await client.kv.deleteRange({ key: utf8("mix/1"), rangeEnd: utf8("mix/2") })
    }
    if (i === Math.floor(count / 2)) {
      const rev = (await client.kv.range({ key: utf8("mix/0") })).header?.revision ?? 0
      await client.kv.compact({ revision: rev - 10 })
      compactedAt = rev - 10
    }
  }
  return compactedAt
}

test("kill -9 after N mixed txns: the restarted member has identical state and HashKV; the revision continues", async () => {
  const first = await startMember({ kind: "tskv", name: "determinism", extraArgs: ["--snapshot-count=150"] })
  started.push(first)
  const client = new EtcdClient({ endpoints: [first.clientUrl], callTimeoutMs: 5000 })
  const compactedAt = await mixedLoad(client, 400, 7)
  const pastRevision = compactedAt + 20
  const before = await stateOf(client, pastRevision)
  client.close()
  expect(before.compactRevision).toBe(compactedAt)
  first.proc.kill("SIGKILL")
  await first.proc.exited

  const second = await restartOn(first, ["--snapshot-count=150"])
  const again = new EtcdClient({ endpoints: [second.clientUrl], callTimeoutMs: 5000 })
  expect(await stateOf(again, pastRevision)).toEqual(before)
  const ctlHash = (m: MemberProcess): number => JSON.parse(etcdctl(m.clientUrl, ["endpoint", "hashkv", "-w", "json"]).stdout)[0].HashKV.hash
  expect(ctlHash(second)).toBe(before.hash)
  const next = await again.kv.put({ key: utf8("after"), value: utf8("x") })
  expect(next.header?.revision).toBe(before.revision + 1)
  again.close()

  // And once more after a clean stop: the same state again.
  expect(await second.stop()).toBe(0)
  const third = await restartOn(second)
  const last = new EtcdClient({ endpoints: [third.clientUrl], callTimeoutMs: 5000 })
  const after = await stateOf(last, pastRevision)
  expect(after.revision).toBe(before.revision + 1)
  expect(after.pastHash).toBe(before.pastHash)
  last.close()
}, 60_000)

interface Acked {
  key: string
  value: string
}

/** Writers put one key at a time (with a pause) until told to stop or the member goes away. */
function slowWrites(client: EtcdClient, writers: number, stop: { now: boolean }, pauseMs: number, prefix = ""): { acked: Acked[]; failed: number; done: Promise<void> } {
  const acked: Acked[] = []
  const result = { acked, failed: 0, done: Promise.resolve() }
  result.done = Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      for (let i = 0; !stop.now; i++) {
        const key = `slow/${prefix}${w}/${i}`
        const value = `${w}:${i}`
        try {
          await client.kv.put({ key: utf8(key), value: utf8(value) })
          acked.push({ key, value })
        } catch {
          result.failed++
          return
        }
        if (pauseMs > 0) await Bun.sleep(pauseMs)
      }
    }),
  ).then(() => undefined)
  return result
}

async function missing(client: EtcdClient, acked: Acked[]): Promise<Acked[]> {
  const res = await client.kv.range({ key: utf8("slow/"), rangeEnd: utf8("slow0") })
  const have = new Map(res.kvs.map((kv) => [fromUtf8(kv.key), fromUtf8(kv.value)]))
  return acked.filter((a) => have.get(a.key) !== a.value)
}

test("SIGTERM during a stream of puts: exit 0, every acknowledged put is there after a restart", async () => {
  const first = await startMember({ kind: "tskv", name: "graceful" })
  started.push(first)
  const client = new EtcdClient({ endpoints: [first.clientUrl], callTimeoutMs: 5000 })
  const stop = { now: false }
  const load = slowWrites(client, 8, stop, 2)
  await Bun.sleep(1000)
  first.proc.kill("SIGTERM")
  const code = await first.proc.exited
  stop.now = true
  await load.done
  client.close()
  expect(code).toBe(0)
  await logged(first, "received signal; shutting down")
  expect(load.acked.length).toBeGreaterThan(100)

  const second = await restartOn(first)
  const again = new EtcdClient({ endpoints: [second.clientUrl], callTimeoutMs: 5000 })
  expect(await missing(again, load.acked)).toEqual([])
  again.close()
}, 60_000)

test("3 members killed -9 at once under load: every acknowledged write survives, HashKV agree", async () => {
  const c = await Cluster.start({ kind: "tskv", size: 3 })
  clusters.push(c)
  const clients = c.members.map((m) => new EtcdClient({ endpoints: [m.clientUrl], callTimeoutMs: 5000 }))
  const stop = { now: false }
  const loads = clients.map((client, i) => slowWrites(client, 4, stop, 0, `m${i}-`))
  await Bun.sleep(1500)
  await Promise.all(c.members.map((m) => c.kill(m.name)))
  stop.now = true
  await Promise.all(loads.map((l) => l.done))
  for (const client of clients) client.close()
  const acked = loads.flatMap((l) => l.acked)
  expect(acked.length).toBeGreaterThan(50)

  await Promise.all(c.members.map((m) => c.restart(m.name)))
  await c.leader({ timeoutMs: 15_000 })
  const converged = await c.waitConverged(30_000)
  expect(converged.revision).toBeGreaterThan(acked.length)
  for (const m of c.members) {
    const reader = new EtcdClient({ endpoints: [m.clientUrl], callTimeoutMs: 5000 })
    expect(await missing(reader, acked)).toEqual([])
    reader.close()
  }
}, 120_000)

test("SIGINT stops the member as gracefully as SIGTERM: exit 0, the data intact", async () => {
  const first = await startMember({ kind: "tskv", name: "sigint" })
  started.push(first)
  expect(etcdctl(first.clientUrl, ["put", "k", "v"]).stdout).toBe("OK\n")
  first.proc.kill("SIGINT")
  expect(await first.proc.exited).toBe(0)
  await logged(first, '"signal":"SIGINT"')
  const second = await restartOn(first)
  expect(etcdctl(second.clientUrl, ["get", "k", "--print-value-only"]).stdout).toBe("v\n")
}, 30_000)

/** The member's log reaches us through a pipe that may still hold the last lines when it exits. */
async function logged(m: { output(): string }, text: string): Promise<void> {
  for (let i = 0; i < 50 && !m.output().includes(text); i++) await Bun.sleep(20)
  expect(m.output()).toContain(text)
}
