// v3lock and v3election served by the compiled member: contention between
// two clients (the second holder gets the lock only once the first unlocks
// or its lease expires), campaign/proclaim/leader/observe/resign with etcd's
// errors, and real etcdctl's client-side `lock` and `elect` recipes.

import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test"
import { spawn } from "bun"
import { EtcdClient } from "../../src/client"
import { fromUtf8, utf8 } from "../../src/lib/bytes"
import { freePorts } from "../support/ports"
import { etcdctl, hasEtcd, type MemberProcess, startMember, waitHealthy } from "../support/procs"

// Spawned binaries are slow to start on a loaded 2-core machine.
setDefaultTimeout(30_000)

let member: MemberProcess
let a: EtcdClient
let b: EtcdClient

beforeAll(async () => {
  member = await startMember({ kind: "tskv", name: "locks" })
  a = new EtcdClient({ endpoints: [member.clientUrl], callTimeoutMs: 20_000 })
  b = new EtcdClient({ endpoints: [member.clientUrl], callTimeoutMs: 20_000 })
})

afterAll(async () => {
  a?.close()
  b?.close()
  await member?.stop()
})

/** Resolves with the time it settled; records whether it has settled yet. */
function track<T>(p: Promise<T>): { settled: () => boolean; done: Promise<T> } {
  let settled = false
  const done = p.finally(() => {
    settled = true
  })
  return { settled: () => settled, done }
}

describe("v3lock", () => {
  test("Lock: the second client gets the lock only after the first unlocks", async () => {
    const la = await a.lease.leaseGrant({ TTL: 30 })
    const lb = await b.lease.leaseGrant({ TTL: 30 })
    const first = await a.lock.lock({ name: utf8("mylock"), lease: la.ID })
    expect(fromUtf8(first.key)).toBe(`mylock/${la.ID.toString(16)}`)
    const second = track(b.lock.lock({ name: utf8("mylock"), lease: lb.ID }))
    await Bun.sleep(700)
    expect(second.settled()).toBe(false)
    const unlocked = await a.lock.unlock({ key: first.key })
    const got = await second.done
    expect(fromUtf8(got.key)).toBe(`mylock/${lb.ID.toString(16)}`)
    expect(got.header!.revision).toBeGreaterThanOrEqual(unlocked.header!.revision)
    // The holder's key is there with its lease; the first one's is gone.
    const keys = await a.kv.range({ key: utf8("mylock/"), rangeEnd: utf8("mylock0") })
    expect(keys.kvs.map((kv) => fromUtf8(kv.key))).toEqual([fromUtf8(got.key)])
    expect(keys.kvs[0]!.lease).toBe(lb.ID)
    await b.lock.unlock({ key: got.key })
    await a.lease.leaseRevoke({ ID: la.ID })
    await b.lease.leaseRevoke({ ID: lb.ID })
  })

  test("Lock: the waiter gets the lock when the holder's lease expires", async () => {
    const la = await a.lease.leaseGrant({ TTL: 2 })
    const lb = await b.lease.leaseGrant({ TTL: 30 })
    await a.lock.lock({ name: utf8("expiring"), lease: la.ID })
    const started = Date.now()
    const second = track(b.lock.lock({ name: utf8("expiring"), lease: lb.ID }))
    await Bun.sleep(500)
    expect(second.settled()).toBe(false)
    const got = await second.done
    expect(Date.now() - started).toBeGreaterThan(1000)
    expect(fromUtf8(got.key)).toBe(`expiring/${lb.ID.toString(16)}`)
    await b.lease.leaseRevoke({ ID: lb.ID })
  })

  test("Lock: a waiter whose lease expired while waiting gets \"session expired\", not the lock", async () => {
    const la = await a.lease.leaseGrant({ TTL: 30 })
    const lb = await b.lease.leaseGrant({ TTL: 2 })
    const held = await a.lock.lock({ name: utf8("lapsed"), lease: la.ID })
    const waiting = track(b.lock.lock({ name: utf8("lapsed"), lease: lb.ID }).catch((e: unknown) => e))
    await Bun.sleep(3500)
    expect(waiting.settled()).toBe(false)
    await a.lock.unlock({ key: held.key })
    expect(String(await waiting.done)).toContain("session expired")
    await a.lease.leaseRevoke({ ID: la.ID })
  })

  test("Lock with lease 0 creates a 60 s session lease; the same lease twice is a no-op", async () => {
    const res = await a.lock.lock({ name: utf8("session") })
    const lease = BigInt(`0x${fromUtf8(res.key).slice("session/".length)}`)
    const ttl = await a.lease.leaseTimeToLive({ ID: lease })
    expect(ttl.grantedTTL).toBe(60)
    const again = await a.lock.lock({ name: utf8("session"), lease })
    expect(fromUtf8(again.key)).toBe(fromUtf8(res.key))
    await a.lease.leaseRevoke({ ID: lease })
  })

  test("Lock with an unknown lease fails with etcd's error", async () => {
    const err = await a.lock.lock({ name: utf8("nolease"), lease: 0x1234n }).catch((e: unknown) => e)
    expect(String(err)).toContain("etcdserver: requested lease not found")
  })

  test("a cancelled Lock call removes its waiting key", async () => {
    const la = await a.lease.leaseGrant({ TTL: 30 })
    const lb = await b.lease.leaseGrant({ TTL: 30 })
    const held = await a.lock.lock({ name: utf8("cancel"), lease: la.ID })
    const err = await b.lock.lock({ name: utf8("cancel"), lease: lb.ID }, { timeoutMs: 500 }).catch((e: unknown) => e)
    expect(String(err)).toMatch(/deadline|DEADLINE/i)
    await Bun.sleep(300)
    const keys = await a.kv.range({ key: utf8("cancel/"), rangeEnd: utf8("cancel0") })
    expect(keys.kvs.map((kv) => fromUtf8(kv.key))).toEqual([fromUtf8(held.key)])
    await a.lease.leaseRevoke({ ID: la.ID })
    await b.lease.leaseRevoke({ ID: lb.ID })
  })
})

describe("v3election", () => {
  test("Leader of an empty election: election: no leader", async () => {
    const err = await a.election.leader({ name: utf8("none") }).catch((e: unknown) => e)
    expect(String(err)).toContain("election: no leader")
  })

  test("Proclaim and Resign without a leader: \"leader\" field must be provided", async () => {
    const p = await a.election.proclaim({ value: utf8("x") }).catch((e: unknown) => e)
    expect(String(p)).toContain('"leader" field must be provided')
    const r = await a.election.resign({}).catch((e: unknown) => e)
    expect(String(r)).toContain('"leader" field must be provided')
  })

  test("Campaign, Proclaim, Observe, Resign: leadership passes to the waiting candidate", async () => {
    const la = await a.lease.leaseGrant({ TTL: 30 })
    const lb = await b.lease.leaseGrant({ TTL: 30 })
    const observed: string[] = []
    const observer = b.election.observe({ name: utf8("el") })
    const observing = (async () => {
      for await (const res of observer) {
        observed.push(fromUtf8(res.kv!.value))
        if (observed.length === 4) break
      }
    })()

    const ca = await a.election.campaign({ name: utf8("el"), lease: la.ID, value: utf8("a1") })
    expect(fromUtf8(ca.leader!.key)).toBe(`el/${la.ID.toString(16)}`)
    expect(ca.leader!.lease).toBe(la.ID)
    expect(fromUtf8(ca.leader!.name)).toBe("el")
    const second = track(b.election.campaign({ name: utf8("el"), lease: lb.ID, value: utf8("b1") }))
    await a.election.proclaim({ leader: ca.leader, value: utf8("a2") })
    expect(fromUtf8((await b.election.leader({ name: utf8("el") })).kv!.value)).toBe("a2")
    await Bun.sleep(300)
    expect(second.settled()).toBe(false)

    // A proclaim on a key with another create revision is refused.
    const stale = await a.election.proclaim({ leader: { ...ca.leader!, rev: ca.leader!.rev + 1000 }, value: utf8("x") }).catch((e: unknown) => e)
    expect(String(stale)).toContain("election: not leader")

    await a.election.resign({ leader: ca.leader })
    const cb = await second.done
    expect(fromUtf8(cb.leader!.key)).toBe(`el/${lb.ID.toString(16)}`)
    const leader = await a.election.leader({ name: utf8("el") })
    expect(fromUtf8(leader.kv!.value)).toBe("b1")
    await b.election.proclaim({ leader: cb.leader, value: utf8("b2") })
    await Promise.race([observing, Bun.sleep(5000)])
    expect(observed).toEqual(["a1", "a2", "b1", "b2"])
    observer.close()

    // The old leader's key is gone: its proclaim is refused.
    const gone = await a.election.proclaim({ leader: ca.leader, value: utf8("late") }).catch((e: unknown) => e)
    expect(String(gone)).toContain("election: not leader")
    await b.election.resign({ leader: cb.leader })
    await a.lease.leaseRevoke({ ID: la.ID })
    await b.lease.leaseRevoke({ ID: lb.ID })
  })

  test("Observe on an empty election waits for the first candidate", async () => {
    const observer = a.election.observe({ name: utf8("later") })
    const first = observer.read()
    await Bun.sleep(300)
    const lease = await b.lease.leaseGrant({ TTL: 30 })
    await b.election.campaign({ name: utf8("later"), lease: lease.ID, value: utf8("first") })
    const res = await first
    expect(fromUtf8(res.kv!.value)).toBe("first")
    expect(res.header!.revision).toBe(res.kv!.modRevision)
    observer.close()
    await b.lease.leaseRevoke({ ID: lease.ID })
  })
})

describe.if(hasEtcd())("etcdctl 3.4 lock and elect (client-side recipes) against tskv", () => {
  test("etcdctl lock mylock -- echo hi", () => {
    const r = etcdctl(member.clientUrl, ["lock", "ctl-lock", "--", "echo", "hi"])
    expect(r.stderr).toBe("")
    expect(r.stdout).toBe("hi\n")
    expect(r.code).toBe(0)
  })

  test("etcdctl lock waits for a lock held through the Lock service", async () => {
    const la = await a.lease.leaseGrant({ TTL: 30 })
    const held = await a.lock.lock({ name: utf8("shared"), lease: la.ID })
    const proc = spawn(["etcdctl", `--endpoints=${member.clientUrl}`, "lock", "shared", "--", "echo", "got it"], {
      env: { ...process.env, ETCDCTL_API: "3" },
      stdout: "pipe",
      stderr: "pipe",
    })
    await Bun.sleep(1000)
    expect(proc.exitCode).toBeNull()
    await a.lock.unlock({ key: held.key })
    const code = await Promise.race([proc.exited, Bun.sleep(10_000).then(() => -1)])
    if (code === -1) proc.kill()
    expect(code).toBe(0)
    expect(await new Response(proc.stdout).text()).toBe("got it\n")
    await a.lease.leaseRevoke({ ID: la.ID })
  })

  test("etcdctl elect: a proposal becomes leader, and elect -l observes it", async () => {
    const candidate = spawn(["etcdctl", `--endpoints=${member.clientUrl}`, "elect", "ctl-elect", "p1"], {
      env: { ...process.env, ETCDCTL_API: "3" },
      stdout: "pipe",
      stderr: "pipe",
    })
    const listener = spawn(["etcdctl", `--endpoints=${member.clientUrl}`, "elect", "-l", "ctl-elect"], {
      env: { ...process.env, ETCDCTL_API: "3" },
      stdout: "pipe",
      stderr: "pipe",
    })
    try {
      // The candidate prints the leader key and value once elected.
      const deadline = Date.now() + 10_000
      let leader: Awaited<ReturnType<EtcdClient["election"]["leader"]>> | undefined
      while (Date.now() < deadline) {
        leader = await a.election.leader({ name: utf8("ctl-elect") }).catch(() => undefined)
        if (leader) break
        await Bun.sleep(100)
      }
      expect(fromUtf8(leader!.kv!.value)).toBe("p1")
      await Bun.sleep(500)
    } finally {
      candidate.kill("SIGINT")
      listener.kill("SIGINT")
      await candidate.exited
      await listener.exited
    }
    const candidateOut = await new Response(candidate.stdout).text()
    const listenerOut = await new Response(listener.stdout).text()
    expect(candidateOut).toMatch(/^ctl-elect\/[0-9a-f]+\np1\n/)
    expect(listenerOut).toMatch(/^ctl-elect\/[0-9a-f]+\np1\n/)
    // After SIGINT the candidate resigned: no leader remains.
    const err = await a.election.leader({ name: utf8("ctl-elect") }).catch((e: unknown) => e)
    expect(String(err)).toContain("election: no leader")
  })
})

describe("v3lock and v3election in a 3-member cluster", () => {
  test("a lock held through one member blocks a Lock on another until released; Observe on a third follows", async () => {
    const ports = await freePorts(6)
    const names = ["l1", "l2", "l3"]
    const initialCluster = names.map((n, i) => `${n}=http://127.0.0.1:${ports[2 * i + 1]}`).join(",")
    const members = await Promise.all(
      names.map((name, i) => startMember({ kind: "tskv", name, clientPort: ports[2 * i]!, peerPort: ports[2 * i + 1]!, initialCluster, waitReady: false })),
    )
    const clients = members.map((m) => new EtcdClient({ endpoints: [m.clientUrl], callTimeoutMs: 20_000 }))
    try {
      await Promise.all(members.map((m) => waitHealthy(m, 30_000)))
      const [c1, c2, c3] = clients as [EtcdClient, EtcdClient, EtcdClient]
      const l1 = await c1.lease.leaseGrant({ TTL: 30 })
      const l2 = await c2.lease.leaseGrant({ TTL: 30 })
      const held = await c1.lock.lock({ name: utf8("clock"), lease: l1.ID })
      const waiting = track(c2.lock.lock({ name: utf8("clock"), lease: l2.ID }))
      await Bun.sleep(500)
      expect(waiting.settled()).toBe(false)
      await c3.lock.unlock({ key: held.key })
      expect(fromUtf8((await waiting.done).key)).toBe(`clock/${l2.ID.toString(16)}`)

      const observer = c3.election.observe({ name: utf8("cel") })
      const firstSeen = observer.read()
      await c1.election.campaign({ name: utf8("cel"), lease: l1.ID, value: utf8("from-l1") })
      expect(fromUtf8((await firstSeen).kv!.value)).toBe("from-l1")
      observer.close()
      expect(fromUtf8((await c2.election.leader({ name: utf8("cel") })).kv!.value)).toBe("from-l1")
    } finally {
      for (const c of clients) c.close()
      for (const m of members) await m.stop()
    }
  }, 60_000)
})
