import { afterEach, expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Backend } from "../backend/backend"
import { FakeClock } from "../lib/clock"
import { isTskvError } from "../lib/errors"
import { fromUtf8, utf8 } from "../lib/bytes"
import { Lessor, type LessorOptions, MAX_LEASE_TTL_SECONDS, minLeaseTtlSeconds, newLeaseId } from "./lessor"

const open: Backend[] = []
afterEach(() => {
  for (const b of open.splice(0)) b.close()
})

function setup(options: Partial<LessorOptions> = {}) {
  const backend = options.backend ?? Backend.open({ path: ":memory:" })
  open.push(backend)
  const clock = (options.clock as FakeClock | undefined) ?? new FakeClock()
  const deleted: string[][] = []
  const lessor = new Lessor({
    backend,
    clock,
    deleteKeys: (keys) => deleted.push(keys.map(fromUtf8)),
    minTtlSeconds: 2,
    ...options,
  })
  return { backend, clock, lessor, deleted }
}

function errorCode(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (e) {
    if (isTskvError(e)) return e.code
    throw e
  }
  return undefined
}

test("minLeaseTtlSeconds() is ceil(1.5 × election timeout): 2 s for 1000 ms", () => {
  expect(minLeaseTtlSeconds(1000)).toBe(2)
  expect(minLeaseTtlSeconds(100)).toBe(1)
  expect(minLeaseTtlSeconds(5000)).toBe(8)
})

test("newLeaseId() returns a positive int63 and never 0", () => {
  let calls = 0
  const id = newLeaseId((n) => (calls++ === 0 ? new Uint8Array(n) : new Uint8Array(n).fill(0xff)))
  expect(calls).toBe(2)
  expect(id).toBe((1n << 63n) - 1n)
  for (let i = 0; i < 100; i++) {
    const r = newLeaseId()
    expect(r > 0n && r < 1n << 63n).toBe(true)
  }
})

test("Lessor.grant() raises a TTL below the minimum and refuses too large TTLs, id 0 and duplicates", () => {
  const { lessor } = setup()
  expect(lessor.grant(1n, 1)).toEqual({ ID: 1n, TTL: 2 })
  expect(lessor.grant(2n, 0)).toEqual({ ID: 2n, TTL: 2 })
  expect(lessor.grant(3n, MAX_LEASE_TTL_SECONDS)).toEqual({ ID: 3n, TTL: MAX_LEASE_TTL_SECONDS })
  expect(errorCode(() => lessor.grant(4n, MAX_LEASE_TTL_SECONDS + 1))).toBe("leaseTTLTooLarge")
  expect(errorCode(() => lessor.grant(1n, 10))).toBe("leaseExist")
  expect(errorCode(() => lessor.grant(0n, 10))).toBe("leaseNotFound")
  expect(lessor.size).toBe(3)
})

test("Lessor.revoke() deletes the attached keys sorted in one callback and forgets the lease", () => {
  const { lessor, deleted } = setup()
  lessor.grant(7n, 10)
  lessor.attach(7n, utf8("b"))
  lessor.attach(7n, utf8("a"))
  lessor.attach(7n, utf8("c"))
  expect(lessor.revoke(7n).map(fromUtf8)).toEqual(["a", "b", "c"])
  expect(deleted).toEqual([["a", "b", "c"]])
  expect(lessor.has(7n)).toBe(false)
  expect(lessor.leaseOf(utf8("a"))).toBe(0n)
  expect(errorCode(() => lessor.revoke(7n))).toBe("leaseNotFound")
})

test("Lessor.revoke() of a lease without keys does not call deleteKeys (no new revision)", () => {
  const { lessor, deleted } = setup()
  lessor.grant(7n, 10)
  expect(lessor.revoke(7n)).toEqual([])
  expect(deleted).toEqual([])
})

test("Lessor.revoke() tolerates detach() called back by the key deletion", () => {
  const backend = Backend.open({ path: ":memory:" })
  let lessor: Lessor | undefined
  const { lessor: l } = setup({ backend, deleteKeys: (keys) => keys.forEach((k) => lessor!.detach(k)) })
  lessor = l
  l.grant(1n, 10)
  l.attach(1n, utf8("k"))
  expect(l.revoke(1n).map(fromUtf8)).toEqual(["k"])
  expect(backend.db.query("SELECT count(*) AS n FROM lease_key").get()).toEqual({ n: 0 })
})

test("Lessor.attach() moves a key from its old lease: a key has at most one lease", () => {
  const { lessor } = setup()
  lessor.grant(1n, 10)
  lessor.grant(2n, 10)
  lessor.attach(1n, utf8("k"))
  lessor.attach(2n, utf8("k"))
  expect(lessor.leaseOf(utf8("k"))).toBe(2n)
  expect(lessor.keysOf(1n)).toEqual([])
  expect(lessor.keysOf(2n).map(fromUtf8)).toEqual(["k"])
  expect(errorCode(() => lessor.attach(3n, utf8("x")))).toBe("leaseNotFound")
  lessor.detach(utf8("k"))
  lessor.detach(utf8("never-attached"))
  expect(lessor.leaseOf(utf8("k"))).toBe(0n)
  expect(lessor.timeToLive(2n, true).keys).toEqual([])
})

test("Lessor.timeToLive() reports -1 for an unknown lease and truncated remaining seconds on the primary, past the expiry too", () => {
  const { lessor, clock } = setup()
  expect(lessor.timeToLive(99n, true)).toEqual({ ID: 99n, TTL: -1, grantedTTL: 0, keys: [] })
  lessor.promote(0)
  lessor.grant(5n, 30)
  lessor.attach(5n, utf8("lk"))
  clock.advance(500)
  const ttl = lessor.timeToLive(5n, true)
  expect(ttl.TTL).toBe(29)
  expect(ttl.grantedTTL).toBe(30)
  expect(ttl.keys.map(fromUtf8)).toEqual(["lk"])
  expect(lessor.timeToLive(5n, false).keys).toEqual([])
  // Expired, not revoked yet: etcd's truncated remaining seconds (0 within the first second past the expiry), not -1.
  clock.advance(30_000)
  expect(lessor.timeToLive(5n, false).TTL).toBe(0)
  expect(Object.is(lessor.timeToLive(5n, false).TTL, -0)).toBe(false)
  clock.advance(1_000)
  expect(lessor.timeToLive(5n, false).TTL).toBe(-1)
})

test("Lessor.renew() works only on the primary, returns the granted TTL and pushes the expiry out", () => {
  const { lessor, clock } = setup()
  lessor.grant(1n, 10)
  expect(errorCode(() => lessor.renew(1n))).toBe("notLeader")
  lessor.promote(0)
  expect(errorCode(() => lessor.renew(2n))).toBe("leaseNotFound")
  clock.advance(8_000)
  expect(lessor.renew(1n)).toBe(10)
  clock.advance(8_000)
  expect(lessor.expired(100)).toEqual([])
  clock.advance(2_000)
  expect(lessor.expired(100)).toEqual([1n])
  expect(errorCode(() => lessor.renew(1n))).toBe("leaseNotFound")
})

test("Lessor.expired() returns nothing on followers: they never expire leases", () => {
  const { lessor, clock } = setup()
  lessor.grant(1n, 2)
  clock.advance(1_000_000)
  expect(lessor.expired(100)).toEqual([])
  expect(lessor.timeToLive(1n, false).TTL).toBe(2)
})

test("Lessor.expired() returns expired leases in expiry order and offers them again after the retry interval", () => {
  const { lessor, clock } = setup({ expiredRetryMs: 3000 })
  lessor.promote(0)
  lessor.grant(3n, 5)
  lessor.grant(1n, 3)
  lessor.grant(2n, 20)
  clock.advance(5_000)
  expect(lessor.expired(100)).toEqual([1n, 3n])
  expect(lessor.expired(100)).toEqual([])
  clock.advance(3_000)
  expect(lessor.expired(100)).toEqual([1n, 3n])
  lessor.revoke(1n)
  clock.advance(3_000)
  expect(lessor.expired(100)).toEqual([3n])
})

test("Lessor.expired() is rate limited (etcd: 1000 revokes per second)", () => {
  const { lessor, clock } = setup({ revokeRatePerSecond: 10 })
  lessor.promote(0)
  for (let i = 1n; i <= 30n; i++) lessor.grant(i, 2)
  clock.advance(3_000)
  expect(lessor.expired(100).length).toBe(5) // half a second's worth
  expect(lessor.expired(100).length).toBe(0)
  clock.advance(500)
  expect(lessor.expired(3).length).toBe(3)
  clock.advance(10_000)
  expect(lessor.expired(100).length).toBe(5)
})

test("Lessor.promote() extends every lease by the election timeout", () => {
  const { lessor, clock } = setup()
  lessor.grant(1n, 10)
  clock.advance(100_000)
  lessor.promote(1_000)
  clock.advance(10_999)
  expect(lessor.expired(10)).toEqual([])
  clock.advance(1)
  expect(lessor.expired(10)).toEqual([1n])
})

test("Lessor.promote() spreads out piles of leases that would expire together", () => {
  const { lessor, clock } = setup({ revokeRatePerSecond: 8 })
  for (let i = 1n; i <= 12n; i++) lessor.grant(i, 10)
  lessor.promote(0)
  // 3/4 of the rate (6) keep their expiry; later ones are pushed out.
  const ttls = [...Array(12).keys()].map((i) => lessor.timeToLive(BigInt(i + 1), false).TTL)
  expect(ttls.filter((t) => t === 10).length).toBe(6)
  expect(Math.max(...ttls)).toBeGreaterThan(10)
  clock.advance(10_000)
  expect(lessor.expired(100).length).toBe(4) // capped by the rate: 8 / 2
})

test("Lessor.demote() stops expiry; a later promote() starts from the remaining TTL again", () => {
  const { lessor, clock } = setup()
  lessor.promote(0)
  lessor.grant(1n, 10)
  lessor.demote()
  clock.advance(60_000)
  expect(lessor.expired(10)).toEqual([])
  expect(errorCode(() => lessor.renew(1n))).toBe("notLeader")
  lessor.promote(0)
  expect(lessor.timeToLive(1n, false).TTL).toBe(10)
})

test("Lessor.dueCheckpoints() produces remaining TTLs at the interval; applying them survives a leader change", () => {
  const a = setup({ checkpointIntervalMs: 60_000 })
  const b = setup({ checkpointIntervalMs: 60_000, clock: a.clock })
  for (const { lessor } of [a, b]) lessor.grant(1n, 300)
  a.lessor.grant(2n, 30) // shorter than the interval: never checkpointed
  b.lessor.grant(2n, 30)
  a.lessor.promote(0)
  a.clock.advance(59_999)
  expect(a.lessor.dueCheckpoints(10)).toEqual([])
  a.clock.advance(1)
  const cps = a.lessor.dueCheckpoints(10)
  expect(cps).toEqual([{ ID: 1n, remainingTTL: 240 }])
  expect(b.lessor.dueCheckpoints(10)).toEqual([]) // not the primary
  for (const { lessor } of [a, b]) for (const cp of cps) lessor.checkpoint(cp.ID, cp.remainingTTL)
  // The next one is scheduled after applying.
  a.clock.advance(60_000)
  expect(a.lessor.dueCheckpoints(10)).toEqual([{ ID: 1n, remainingTTL: 180 }])
  // Leader change: b takes over from the checkpointed 240 s, not the full 300 s.
  a.lessor.demote()
  b.lessor.promote(1_000)
  expect(b.lessor.timeToLive(1n, false).TTL).toBe(241)
  expect(b.lessor.checkpoint(99n, 5)).toBeUndefined() // unknown: ignored
})

test("Lessor.renew() of a checkpointed lease proposes a checkpoint that clears the remaining TTL", () => {
  const { lessor, clock } = setup({ checkpointIntervalMs: 60_000 })
  lessor.grant(1n, 300)
  lessor.promote(0)
  clock.advance(60_000)
  const [cp] = lessor.dueCheckpoints(10)
  lessor.checkpoint(cp!.ID, cp!.remainingTTL)
  expect(lessor.renew(1n)).toBe(300)
  expect(lessor.timeToLive(1n, false).TTL).toBe(300)
  expect(lessor.dueCheckpoints(10)).toEqual([{ ID: 1n, remainingTTL: 0 }])
  lessor.checkpoint(1n, 0)
  lessor.demote()
  lessor.promote(0)
  expect(lessor.timeToLive(1n, false).TTL).toBe(300)
})

test("Lessor with checkpointIntervalMs null never checkpoints", () => {
  const { lessor, clock } = setup({ checkpointIntervalMs: null })
  lessor.grant(1n, 3000)
  lessor.promote(0)
  clock.advance(600_000)
  expect(lessor.dueCheckpoints(10)).toEqual([])
})

test("Lessor state (leases, checkpointed remaining TTL, attached keys) survives a restart", () => {
  const dir = mkdtempSync(join(tmpdir(), "tskv-lease-"))
  try {
    const path = join(dir, "db")
    const backend = Backend.open({ path })
    const first = new Lessor({ backend, clock: new FakeClock(), deleteKeys: () => {}, minTtlSeconds: 2 })
    const big = (1n << 62n) + 12345n
    first.grant(big, 600)
    first.grant(2n, 60)
    first.attach(big, utf8("x"))
    first.attach(big, new Uint8Array([0, 0xff, 1]))
    first.attach(2n, utf8("y"))
    first.checkpoint(big, 400)
    first.revoke(2n)
    backend.commit()
    backend.close()

    const reopened = Backend.open({ path })
    const clock = new FakeClock()
    const deleted: Uint8Array[][] = []
    const second = new Lessor({ backend: reopened, clock, deleteKeys: (k) => deleted.push(k), minTtlSeconds: 2 })
    expect(second.leases()).toEqual([{ ID: big }])
    expect(second.leaseOf(utf8("x"))).toBe(big)
    expect(second.leaseOf(utf8("y"))).toBe(0n)
    second.promote(0)
    expect(second.timeToLive(big, true)).toEqual({ ID: big, TTL: 400, grantedTTL: 600, keys: [new Uint8Array([0, 0xff, 1]), utf8("x")] })
    second.revoke(big)
    expect(deleted).toEqual([[new Uint8Array([0, 0xff, 1]), utf8("x")]])
    reopened.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test("Lessor writes only inside the backend batch: an uncommitted grant is lost with the batch", () => {
  const dir = mkdtempSync(join(tmpdir(), "tskv-lease-"))
  try {
    const path = join(dir, "db")
    const backend = Backend.open({ path })
    const lessor = new Lessor({ backend, clock: new FakeClock(), deleteKeys: () => {}, minTtlSeconds: 2 })
    lessor.grant(1n, 60)
    backend.commit()
    lessor.grant(2n, 60)
    backend.db.close() // crash before the batch commits
    const reopened = Backend.open({ path })
    const again = new Lessor({ backend: reopened, clock: new FakeClock(), deleteKeys: () => {}, minTtlSeconds: 2 })
    expect(again.leases()).toEqual([{ ID: 1n }])
    reopened.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test("Lessor.leases() lists soonest expiry first on the primary", () => {
  const { lessor } = setup()
  lessor.promote(0)
  lessor.grant(1n, 50)
  lessor.grant(2n, 10)
  lessor.grant(3n, 30)
  expect(lessor.leases()).toEqual([{ ID: 2n }, { ID: 3n }, { ID: 1n }])
})

test("Lessor.grant() accepts a negative client-chosen id (etcd's int64) and persists it", () => {
  const { lessor, backend, clock } = setup()
  lessor.grant(-5n, 10)
  lessor.attach(-5n, utf8("n"))
  const again = new Lessor({ backend, clock, deleteKeys: () => {}, minTtlSeconds: 2 })
  expect(again.leases()).toEqual([{ ID: -5n }])
  expect(again.leaseOf(utf8("n"))).toBe(-5n)
  expect(errorCode(() => lessor.grant(1n << 63n, 10))).toBe("leaseNotFound")
})

test("Lessor.reload(backend) takes the state of an installed snapshot", () => {
  const dir = mkdtempSync(join(tmpdir(), "tskv-lease-"))
  try {
    const { lessor, backend } = setup()
    lessor.grant(1n, 60)
    lessor.attach(1n, utf8("a"))
    backend.copyTo(join(dir, "snap.db"))
    lessor.grant(2n, 60)
    lessor.attach(2n, utf8("a"))
    const installed = Backend.open({ path: join(dir, "snap.db") })
    open.push(installed)
    lessor.promote(0)
    lessor.reload(installed)
    expect(lessor.leases()).toEqual([{ ID: 1n }])
    expect(lessor.leaseOf(utf8("a"))).toBe(1n)
    expect(lessor.timeToLive(1n, false).TTL).toBe(60) // still primary: expiry restarted
    lessor.grant(3n, 60) // writes go to the new backend
    expect(installed.db.query("SELECT count(*) AS n FROM lease").get()).toEqual({ n: 2 })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
