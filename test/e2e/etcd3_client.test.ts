// The `etcd3` npm client (1.1.2), unchanged, against the compiled member: KV,
// txn, a watch that survives a restart of the member (it resumes from the
// last revision + 1 and misses nothing), a lease kept alive over several
// TTLs, its client-side lock and election recipes, and its typed errors,
// which it picks by the text of etcd's messages.

import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test"
import { Etcd3, EtcdLeaseInvalidError, EtcdLockFailedError, type IKeyValue } from "etcd3"
import { type MemberProcess, startMember } from "../support/procs"

// Spawned binaries are slow to start on a loaded 2-core machine.
setDefaultTimeout(30_000)

let member: MemberProcess
let client: Etcd3

const hostOf = (m: MemberProcess): string => m.clientUrl

beforeAll(async () => {
  member = await startMember({ kind: "tskv", name: "etcd3" })
  client = new Etcd3({ hosts: hostOf(member) })
})

afterAll(async () => {
  client?.close()
  await member?.stop()
})

async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await Bun.sleep(25)
  }
}

describe("etcd3 npm client: KV and txn", () => {
  test("put, get, getAll with prefix, delete, and revisions as strings", async () => {
    await client.put("e3/a").value("1")
    await client.put("e3/b").value("2")
    await client.put("e3/c").value("3")
    expect(await client.get("e3/a").string()).toBe("1")
    expect(await client.get("e3/missing").string()).toBeNull()
    expect(await client.getAll().prefix("e3/").strings()).toEqual({ "e3/a": "1", "e3/b": "2", "e3/c": "3" })
    expect(await client.getAll().prefix("e3/").count()).toBe(3)
    expect(await client.getAll().prefix("e3/").sort("Key", "Descend").limit(2).keys()).toEqual(["e3/c", "e3/b"])
    const res = await client.get("e3/a").exec()
    expect(typeof res.header.revision).toBe("string")
    expect(res.kvs[0]!.version).toBe("1")
    const del = await client.delete().prefix("e3/").exec()
    expect(del.deleted).toBe("3")
    expect(await client.getAll().prefix("e3/").keys()).toEqual([])
  })

  test("txn: compare value, then/else branches", async () => {
    await client.put("e3/txn").value("x")
    const hit = await client.if("e3/txn", "Value", "==", "x").then(client.put("e3/txn").value("y")).else(client.get("e3/txn")).commit()
    expect(hit.succeeded).toBe(true)
    expect(await client.get("e3/txn").string()).toBe("y")
    const miss = await client.if("e3/txn", "Value", "==", "x").then(client.put("e3/txn").value("z")).else(client.get("e3/txn")).commit()
    expect(miss.succeeded).toBe(false)
    const kvs = miss.responses[0]!.response_range!.kvs
    expect(kvs.map((kv) => kv.value.toString())).toEqual(["y"])
    const created = await client.if("e3/new", "Create", "==", 0).then(client.put("e3/new").value("1")).commit()
    expect(created.succeeded).toBe(true)
  })
})

describe("etcd3 npm client: leases", () => {
  test("a 2 s lease stays alive over several TTLs, then its key goes with the revoke", async () => {
    const lease = client.lease(2)
    let lost: Error | undefined
    let renewals = 0
    lease.on("lost", (e) => {
      lost = e
    })
    lease.on("keepaliveSucceeded", () => {
      renewals++
    })
    const id = await lease.grant()
    await lease.put("e3/leased").value("alive")
    await Bun.sleep(5000)
    expect(lost).toBeUndefined()
    expect(renewals).toBeGreaterThanOrEqual(4)
    expect(await client.get("e3/leased").string()).toBe("alive")
    const ttl = await client.leaseClient.leaseTimeToLive({ ID: id })
    expect(Number(ttl.TTL)).toBeGreaterThan(0)
    expect(ttl.grantedTTL).toBe("2")
    await lease.revoke()
    expect(await client.get("e3/leased").string()).toBeNull()
    // Revoking it again: the typed error picked from etcd's message.
    const err = await client.leaseClient.leaseRevoke({ ID: id }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(EtcdLeaseInvalidError)
  }, 15_000)

  test("a lease that is not kept alive expires and its key is deleted", async () => {
    const lease = client.lease(2, { autoKeepAlive: false })
    await lease.grant()
    await lease.put("e3/short").value("x")
    await until(async () => (await client.get("e3/short").string()) === null, 6000, "the lease to expire")
  }, 10_000)
})

describe("etcd3 npm client: lock and election (client-side recipes)", () => {
  test("lock: a second acquire of a held lock fails with EtcdLockFailedError, then succeeds after release", async () => {
    const first = client.lock("e3-lock").ttl(10)
    await first.acquire()
    const second = client.lock("e3-lock").ttl(10)
    const err = await second.acquire().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(EtcdLockFailedError)
    await first.release()
    await second.acquire()
    const ran = await client.lock("e3-other").do(async () => "ran")
    expect(ran).toBe("ran")
    await second.release()
  })

  test("election: campaign, observe the leader change on resign, proclaim", async () => {
    const election = client.election("e3-election", 5)
    const observer = await election.observe()
    const seen: (string | undefined)[] = []
    observer.on("change", (v) => seen.push(v))
    const a = election.campaign("alice")
    await a.wait()
    expect(await election.leader()).toBe("alice")
    const b = election.campaign("bob")
    let bobElected = false
    b.on("elected", () => {
      bobElected = true
    })
    await Bun.sleep(300)
    expect(bobElected).toBe(false)
    await a.proclaim("alice2")
    await until(async () => (await election.leader()) === "alice2", 3000, "the proclaimed value")
    await a.resign()
    await until(() => bobElected, 5000, "bob to be elected")
    expect(await election.leader()).toBe("bob")
    await until(() => seen.includes("bob"), 3000, "the observer to see bob")
    expect(seen.filter((v) => v !== undefined)).toEqual(expect.arrayContaining(["alice", "alice2", "bob"]))
    await observer.cancel()
    await b.resign()
  }, 15_000)
})

describe("etcd3 npm client: typed errors", () => {
  test("etcd's messages become the client's errors", async () => {
    const empty = await client.put("").value("x").catch((e: unknown) => e)
    expect(String(empty)).toContain("etcdserver: key is not provided")
    const rev = Number((await client.put("e3/c1").value("1").exec()).header.revision)
    await client.put("e3/c1").value("2")
    await client.put("e3/c1").value("3")
    await client.kv.compact({ revision: rev + 1 })
    const compacted = await client.get("e3/c1").revision(rev).catch((e: unknown) => e)
    expect(String(compacted)).toContain("etcdserver: mvcc: required revision has been compacted")
    const future = await client.get("e3/c1").revision(rev + 1_000_000).catch((e: unknown) => e)
    expect(String(future)).toContain("etcdserver: mvcc: required revision is a future revision")
    const unknown = await client.leaseClient.leaseRevoke({ ID: "12345" }).catch((e: unknown) => e)
    expect(unknown).toBeInstanceOf(EtcdLeaseInvalidError)
  })
})

describe("etcd3 npm client: watch across a member restart", () => {
  test("the watcher resumes from the last revision + 1 and misses nothing", async () => {
    const watchClient = new Etcd3({ hosts: hostOf(member) })
    const events: string[] = []
    let connected = 0
    let disconnected = 0
    const watcher = await watchClient.watch().prefix("e3w/").create()
    watcher.on("connected", () => connected++)
    watcher.on("disconnected", () => disconnected++)
    watcher.on("put", (kv: IKeyValue) => events.push(`put ${kv.key.toString()}=${kv.value.toString()}@${kv.mod_revision}`))
    watcher.on("delete", (kv: IKeyValue) => events.push(`del ${kv.key.toString()}@${kv.mod_revision}`))
    try {
      const writer = new Etcd3({ hosts: hostOf(member) })
      const expected: string[] = []
      const put = async (w: Etcd3, k: string, v: string): Promise<void> => {
        const r = await w.put(`e3w/${k}`).value(v).exec()
        expected.push(`put e3w/${k}=${v}@${r.header.revision}`)
      }
      await put(writer, "a", "1")
      await put(writer, "b", "1")
      await until(() => events.length === 2, 3000, "the first events")
      writer.close()

      // Restart the member on the same data dir and ports.
      const code = await member.stop()
      expect(code).toBe(0)
      member = await startMember({ kind: "tskv", name: "etcd3", dataDir: member.dataDir, clientPort: member.clientPort, peerPort: member.peerPort })
      // Writes right after the restart, while the watcher may still be reconnecting.
      const writer2 = new Etcd3({ hosts: hostOf(member) })
      await put(writer2, "a", "2")
      await put(writer2, "c", "1")
      const del = await writer2.delete().key("e3w/b").exec()
      expected.push(`del e3w/b@${del.header.revision}`)
      await put(writer2, "d", "1")
      await until(() => events.length >= expected.length, 15_000, "the events after the restart")
      await Bun.sleep(300)
      expect(events).toEqual(expected)
      expect(disconnected).toBeGreaterThanOrEqual(1)
      expect(connected).toBeGreaterThanOrEqual(1)
      writer2.close()
      // The shared client recovers too.
      expect(await client.get("e3w/a").string()).toBe("2")
    } finally {
      await watcher.cancel().catch(() => {})
      watchClient.close()
    }
  }, 40_000)
})
