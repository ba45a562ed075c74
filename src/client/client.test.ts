// EtcdClient against real etcd 3.4 (/usr/bin/etcd on a free port, temp data dir).
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { status } from "@grpc/grpc-js"
import { freePort } from "../../test/support/ports"
import { startMember, type MemberProcess } from "../../test/support/procs"
import { tempDir } from "../../test/support/tmp"
import { fromUtf8, prefixEnd, utf8 } from "../lib/bytes"
import { TskvError } from "../lib/errors"
import { Compare_CompareResult, Compare_CompareTarget, Event_EventType } from "../pb"
import { EtcdClient } from "./client"
import { GrpcError, grpcCodeOf } from "./errors"

let etcd: MemberProcess
let client: EtcdClient
const dir = tempDir("pb-client-etcd-")

beforeAll(async () => {
  etcd = await startMember({ kind: "etcd", dataDir: `${dir.path}/data` })
  client = new EtcdClient({ endpoints: [etcd.clientUrl], callTimeoutMs: 5_000 })
}, 30_000)

afterAll(async () => {
  client?.close()
  await etcd?.stop()
  dir.remove()
})

describe("EtcdClient against etcd 3.4", () => {
  test("kv.put() then kv.range() returns the value, revisions and header", async () => {
    const put = await client.kv.put({ key: utf8("foo"), value: utf8("bar"), prevKv: true })
    expect(put.header!.revision).toBeGreaterThan(1)
    expect(put.header!.clusterId).not.toBe(0n)
    const got = await client.kv.range({ key: utf8("foo") })
    expect(got.kvs.length).toBe(1)
    const kv = got.kvs[0]!
    expect(fromUtf8(kv.key)).toBe("foo")
    expect(fromUtf8(kv.value)).toBe("bar")
    expect(kv.version).toBe(1)
    expect(kv.modRevision).toBe(put.header!.revision)
    expect(got.count).toBe(1)
    const again = await client.kv.put({ key: utf8("foo"), value: utf8("baz"), prevKv: true })
    expect(fromUtf8(again.prevKv!.value)).toBe("bar")
  })

  test("a 1 MiB value and 200 concurrent puts round-trip", async () => {
    const big = new Uint8Array(1 << 20)
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff
    await client.kv.put({ key: utf8("big"), value: big })
    const got = await client.kv.range({ key: utf8("big") })
    expect(Buffer.compare(got.kvs[0]!.value, big)).toBe(0)
    await client.kv.deleteRange({ key: utf8("big") })
    const puts = await Promise.all(Array.from({ length: 200 }, (_, i) => client.kv.put({ key: utf8(`many/${i}`), value: utf8(String(i)) })))
    expect(new Set(puts.map((p) => p.header!.revision)).size).toBe(200)
    const many = await client.kv.range({ key: utf8("many/"), rangeEnd: prefixEnd(utf8("many/")), countOnly: true })
    expect(many.count).toBe(200)
    await client.kv.deleteRange({ key: utf8("many/"), rangeEnd: prefixEnd(utf8("many/")) })
  })

  test("kv.range() over a prefix with limit, sort and count", async () => {
    for (let i = 0; i < 5; i++) await client.kv.put({ key: utf8(`pre/${i}`), value: utf8(String(i)) })
    const res = await client.kv.range({ key: utf8("pre/"), rangeEnd: prefixEnd(utf8("pre/")), limit: 2, sortOrder: 2 })
    expect(res.kvs.map((kv) => fromUtf8(kv.key))).toEqual(["pre/4", "pre/3"])
    expect(res.more).toBe(true)
    expect(res.count).toBe(5)
    const del = await client.kv.deleteRange({ key: utf8("pre/"), rangeEnd: prefixEnd(utf8("pre/")), prevKv: true })
    expect(del.deleted).toBe(5)
    expect(del.prevKvs.length).toBe(5)
  })

  test("kv.txn() compares and takes the success or failure branch", async () => {
    await client.kv.put({ key: utf8("t"), value: utf8("1") })
    const cmp = { key: utf8("t"), target: Compare_CompareTarget.VALUE, result: Compare_CompareResult.EQUAL, value: utf8("1") }
    const ok = await client.kv.txn({
      compare: [cmp],
      success: [{ requestPut: { key: utf8("t"), value: utf8("2") } }, { requestRange: { key: utf8("t") } }],
      failure: [{ requestRange: { key: utf8("t") } }],
    })
    expect(ok.succeeded).toBe(true)
    expect(ok.responses.length).toBe(2)
    expect(ok.responses[0]!.responsePut).toBeDefined()
    expect(fromUtf8(ok.responses[1]!.responseRange!.kvs[0]!.value)).toBe("2")
    const no = await client.kv.txn({ compare: [cmp], failure: [{ requestRange: { key: utf8("t") } }] })
    expect(no.succeeded).toBe(false)
    expect(fromUtf8(no.responses[0]!.responseRange!.kvs[0]!.value)).toBe("2")
    const versionZero = await client.kv.txn({
      compare: [{ key: utf8("absent"), target: Compare_CompareTarget.VERSION, result: Compare_CompareResult.EQUAL, version: 0 }],
    })
    expect(versionZero.succeeded).toBe(true)
  })

  test("watch() streams put and delete events with prev_kv", async () => {
    const w = client.watch()
    w.create({ key: utf8("w/"), rangeEnd: prefixEnd(utf8("w/")), prevKv: true })
    const created = await w.read()
    expect(created.created).toBe(true)
    await client.kv.put({ key: utf8("w/a"), value: utf8("1") })
    await client.kv.deleteRange({ key: utf8("w/a") })
    const events = []
    while (events.length < 2) events.push(...(await w.read()).events)
    expect(events.map((e) => e.type)).toEqual([Event_EventType.PUT, Event_EventType.DELETE])
    expect(fromUtf8(events[1]!.prevKv!.value)).toBe("1")
    w.cancel(created.watchId)
    const canceled = await w.read()
    expect(canceled.canceled).toBe(true)
    w.close()
    expect((await w.next()).done).toBe(true)
  })

  test("lease: grant, attach, keepAliveOnce, timeToLive with keys, leases, revoke", async () => {
    const grant = await client.lease.leaseGrant({ TTL: 30 })
    expect(grant.ID).toBeGreaterThan(0n)
    expect(grant.TTL).toBe(30)
    await client.kv.put({ key: utf8("leased"), value: utf8("x"), lease: grant.ID })
    const ka = await client.lease.keepAliveOnce(grant.ID)
    expect(ka.ID).toBe(grant.ID)
    expect(ka.TTL).toBe(30)
    const ttl = await client.lease.leaseTimeToLive({ ID: grant.ID, keys: true })
    expect(ttl.grantedTTL).toBe(30)
    expect(ttl.keys.map(fromUtf8)).toEqual(["leased"])
    const leases = await client.lease.leaseLeases()
    expect(leases.leases.map((l) => l.ID)).toContain(grant.ID)
    const got = await client.kv.range({ key: utf8("leased") })
    expect(got.kvs[0]!.lease).toBe(grant.ID)
    await client.lease.leaseRevoke({ ID: grant.ID })
    expect((await client.kv.range({ key: utf8("leased") })).kvs.length).toBe(0)
    const gone = await client.lease.leaseTimeToLive({ ID: grant.ID })
    expect(gone.TTL).toBe(-1)
  })

  test("lease.leaseKeepAlive() stream renews repeatedly", async () => {
    const grant = await client.lease.leaseGrant({ TTL: 10 })
    const ka = client.lease.leaseKeepAlive()
    for (let i = 0; i < 3; i++) {
      ka.send({ ID: grant.ID })
      expect((await ka.read()).TTL).toBe(10)
    }
    ka.close()
    await client.lease.leaseRevoke({ ID: grant.ID })
  })

  test("cluster.memberList() and maintenance.status()", async () => {
    const members = await client.cluster.memberList()
    expect(members.members.length).toBe(1)
    const m = members.members[0]!
    expect(m.name).toBe("default")
    expect(m.clientURLs).toEqual([etcd.clientUrl])
    expect(m.peerURLs).toEqual([etcd.peerUrl])
    const st = await client.maintenance.status()
    expect(st.version).toMatch(/^3\.4\./)
    expect(st.leader).toBe(m.ID)
    expect(st.header!.memberId).toBe(m.ID)
    expect(st.dbSize).toBeGreaterThan(0)
    expect(st.raftIndex).toBeGreaterThan(0)
  })

  test("maintenance.snapshot() streams the whole db", async () => {
    let total = 0
    let last = -1
    for await (const chunk of client.maintenance.snapshot()) {
      total += chunk.blob.length
      last = chunk.remainingBytes
    }
    expect(total).toBeGreaterThan(1000)
    expect(last).toBe(0)
  })

  test("lock and election services", async () => {
    const grant = await client.lease.leaseGrant({ TTL: 30 })
    const lock = await client.lock.lock({ name: utf8("mylock"), lease: grant.ID })
    expect(fromUtf8(lock.key).startsWith("mylock/")).toBe(true)
    await client.lock.unlock({ key: lock.key })
    const camp = await client.election.campaign({ name: utf8("el"), lease: grant.ID, value: utf8("v1") })
    expect(camp.leader!.lease).toBe(grant.ID)
    await client.election.proclaim({ leader: camp.leader, value: utf8("v2") })
    const leader = await client.election.leader({ name: utf8("el") })
    expect(fromUtf8(leader.kv!.value)).toBe("v2")
    await client.election.resign({ leader: camp.leader })
    await client.lease.leaseRevoke({ ID: grant.ID })
  })

  test("health.check() reports SERVING", async () => {
    expect((await client.health.check({})).status).toBe(1)
  })

  test("etcd errors come back as TskvError, others as GrpcError with the code", async () => {
    const empty = await client.kv.put({ key: new Uint8Array(0), value: utf8("x") }).catch((e: unknown) => e)
    expect(empty).toBeInstanceOf(TskvError)
    expect((empty as TskvError).code).toBe("emptyKey")
    expect(grpcCodeOf(empty)).toBe(status.INVALID_ARGUMENT)
    const rev = (await client.kv.put({ key: utf8("c"), value: utf8("1") })).header!.revision
    await client.kv.put({ key: utf8("c"), value: utf8("2") })
    await client.kv.compact({ revision: rev + 1 })
    const compacted = await client.kv.range({ key: utf8("c"), revision: rev }).catch((e: unknown) => e)
    expect((compacted as TskvError).code).toBe("compacted")
    const notFound = await client.lease.leaseRevoke({ ID: 12345n }).catch((e: unknown) => e)
    expect((notFound as TskvError).code).toBe("leaseNotFound")
  })

  test("a dead first endpoint fails over to the next one", async () => {
    const dead = `http://127.0.0.1:${await freePort()}`
    const w0 = new EtcdClient({ endpoints: [dead, etcd.clientUrl], callTimeoutMs: 5_000 })
    try {
      expect((await w0.kv.put({ key: utf8("fo"), value: utf8("0") })).header!.revision).toBeGreaterThan(0)
    } finally {
      w0.close()
    }
    const c = new EtcdClient({ endpoints: [dead, etcd.clientUrl], callTimeoutMs: 5_000 })
    try {
      const res = await c.kv.range({ key: utf8("foo") })
      expect(res.kvs.length).toBe(1)
      // A write fails over too when the dead member could not have received it.
      const put = await c.kv.put({ key: utf8("fo"), value: utf8("1") })
      expect(put.header!.revision).toBeGreaterThan(0)
      expect(c.endpoint).toBe(etcd.clientUrl.slice("http://".length))
    } finally {
      c.close()
    }
    // Streams move to the next endpoint too while nothing has been received.
    const s = new EtcdClient({ endpoints: [dead, etcd.clientUrl] })
    try {
      const w = s.watch()
      w.create({ key: utf8("foo") })
      expect((await w.read()).created).toBe(true)
      w.close()
      let chunks = 0
      for await (const _ of s.maintenance.snapshot()) chunks++
      expect(chunks).toBeGreaterThan(0)
    } finally {
      s.close()
    }
    const only = new EtcdClient({ endpoints: [dead], callTimeoutMs: 2_000 })
    const err = await only.kv.range({ key: utf8("foo") }).catch((e: unknown) => e)
    only.close()
    expect(err).toBeInstanceOf(GrpcError)
    expect((err as GrpcError).grpcCode).toBe(status.UNAVAILABLE)
  })

  test("auth: the client authenticates, sends the token and re-authenticates on an invalid token", async () => {
    await client.auth.userAdd({ name: "root", password: "rootpw" })
    await client.auth.userGrantRole({ user: "root", role: "root" })
    await client.auth.authEnable()
    const authed = new EtcdClient({ endpoints: [etcd.clientUrl], auth: { username: "root", password: "rootpw" } })
    try {
      const anon = await client.kv.range({ key: utf8("foo") }).catch((e: unknown) => e)
      expect((anon as TskvError).code).toBe("userEmpty")
      expect((await authed.kv.range({ key: utf8("foo") })).kvs.length).toBe(1)
      // A simple token the server does not know. Its index (after the dot) must be
      // applied already, or etcd waits for that index until the deadline.
      ;(authed as unknown as { token: string }).token = "bogusbogusbogus.1"
      expect((await authed.kv.range({ key: utf8("foo") })).kvs.length).toBe(1)
      const bad = new EtcdClient({ endpoints: [etcd.clientUrl], auth: { username: "root", password: "wrong" } })
      const failed = await bad.kv.range({ key: utf8("foo") }).catch((e: unknown) => e)
      bad.close()
      expect((failed as TskvError).code).toBe("authFailed")
      // Streams authenticate through call credentials, also on a fresh client.
      const fresh = new EtcdClient({ endpoints: [etcd.clientUrl], auth: { username: "root", password: "rootpw" } })
      const w = fresh.watch()
      w.create({ key: utf8("foo") })
      const created = await w.read()
      expect([created.created, created.canceled]).toEqual([true, false])
      w.close()
      fresh.close()
      // Without a token etcd 3.4 answers the create with created+canceled, watch id -1.
      const anonWatch = client.watch()
      anonWatch.create({ key: utf8("foo") })
      const refused = await anonWatch.read()
      anonWatch.close()
      expect([refused.created, refused.canceled, refused.watchId]).toEqual([true, true, -1])
      expect(refused.cancelReason).toContain("etcdserver: user name is empty")
      await authed.auth.authDisable()
    } finally {
      authed.close()
    }
  }, 30_000)
})
