// The round checks on made-up recordings: each guarantee, broken once, is reported.
import { describe, expect, test } from "bun:test"
import { checkRound, type RoundRecording } from "./checks"
import { FAULT_KINDS, planRound } from "./plan"
import type { AckedWrite, IssuedWrite, LeaseRecord } from "./traffic"
import { type SeenEvent, type SeenKv, Watcher } from "./watchers"

const P = "/robust/0/"
const kv = (key: string, value: string, create: number, mod: number, version: number, lease = "0"): SeenKv => ({ key: P + key, value, createRevision: create, modRevision: mod, version, lease })
const put = (rev: number, now: SeenKv, prev?: SeenKv): SeenEvent => ({ type: "put", revision: rev, kv: now, prevKv: prev, atMs: rev * 10 })
const del = (rev: number, key: string, prev?: SeenKv): SeenEvent => ({ type: "delete", revision: rev, kv: { key: P + key, value: "", createRevision: 0, modRevision: rev, version: 0, lease: "0" }, prevKv: prev, atMs: rev * 10 })

function watcher(name: string, events: SeenEvent[], segments: [number, number][], prevKv = true, key = P, prefix = true): Watcher {
  const w = new Watcher({ name, key, prefix, startRevision: 1, prevKv, resumable: false, memberFor: () => undefined, client: () => undefined as never, now: () => 0 })
  w.events.push(...events)
  w.segments.push(...segments.map(([from, to]) => ({ member: "m1", from, to })))
  return w
}

// Revisions 2..5: a put, a second put, a delete, a put; the final state has b only.
const a1 = kv("a", "v1", 2, 2, 1)
const a2 = kv("a", "v2", 2, 3, 2)
const b1 = kv("b", "v3", 5, 5, 1)
const history = [put(2, a1), put(3, a2, a1), del(4, "a", a2), put(5, b1)]
const issued = new Map<string, IssuedWrite>([
  ["v1", { key: P + "a", outcome: "acked" }],
  ["v2", { key: P + "a", outcome: "unknown" }],
  ["v3", { key: P + "b", outcome: "acked" }],
])
const acked: AckedWrite[] = [
  { revision: 2, key: P + "a", value: "v1", lease: "0" },
  { revision: 4, key: P + "a", value: null, lease: "0" },
  { revision: 5, key: P + "b", value: "v3", lease: "0" },
]
function recording(over: Partial<RoundRecording> = {}): RoundRecording {
  return {
    prefix: P,
    watchers: [watcher("h1", history, [[1, 5]]), watcher("h2", history, [[1, 5]])],
    acked,
    issued,
    leases: [],
    finalRevision: 5,
    finals: [{ member: "m1", revision: 5, kvs: [b1] }],
    compactions: [],
    ...over,
  }
}
const checks = (r: RoundRecording): string[] => [...new Set(checkRound(r).violations.map((v) => v.check))]

describe("checkRound()", () => {
  test("a consistent round has no violation, and the whole log was replayed", () => {
    const r = checkRound(recording())
    expect(r.violations).toEqual([])
    expect(r.completeLog).toBe(true)
    expect(r.events).toBe(8)
  })

  test("an event missed by one watcher is a gap", () => {
    expect(checks(recording({ watchers: [watcher("h1", history, [[1, 5]]), watcher("h2", [history[0]!, history[2]!, history[3]!], [[1, 5]])] }))).toEqual(["watch no gap"])
  })

  test("a watch from exactly a compacted revision may miss the delete at it (etcd 3.4 drops that tombstone); from elsewhere it may not", () => {
    const late = (from: number): Watcher => watcher("late", history.filter((e) => e.revision > from), [[from, 5]])
    expect(checks(recording({ watchers: [watcher("h1", history, [[1, 5]]), late(4)], compactions: [{ revision: 4 }] }))).toEqual([])
    expect(checks(recording({ watchers: [watcher("h1", history, [[1, 5]]), late(4)], compactions: [{ revision: 3 }] }))).toEqual(["watch no gap"])
    expect(checks(recording({ watchers: [watcher("h1", history, [[1, 5]]), late(3)], compactions: [{ revision: 3 }] }))).toEqual(["watch no gap"])
  })

  test("a revision no watcher saw is a gap", () => {
    const missing = history.filter((e) => e.revision !== 3)
    expect(checks(recording({ watchers: [watcher("h1", missing, [[1, 5]])], acked: acked.filter((x) => x.revision !== 3) }))).toContain("watch no gap")
  })

  test("an event delivered twice, or out of order", () => {
    expect(checks(recording({ watchers: [watcher("h1", [...history, history[3]!], [[1, 5]])] }))).toEqual(["watch exactly once"])
    expect(checks(recording({ watchers: [watcher("h1", [...history, history[1]!], [[1, 5]])] }))).toContain("watch order")
  })

  test("a wrong prev_kv", () => {
    const bad = [history[0]!, put(3, a2, kv("a", "v0", 2, 2, 1)), history[2]!, history[3]!]
    expect(checks(recording({ watchers: [watcher("h1", bad, [[1, 5]])] }))).toContain("watch prev_kv")
  })

  test("an event for a txn that answered succeeded=false, and a value nobody wrote", () => {
    const failed = new Map(issued)
    failed.set("v2", { key: P + "a", outcome: "failed" })
    expect(checks(recording({ issued: failed }))).toEqual(["watch committed"])
    const ghost = [history[0]!, put(3, kv("a", "ghost", 2, 3, 2), a1), history[2]!, history[3]!]
    expect(checks(recording({ watchers: [watcher("h1", ghost, [[1, 5]])] }))).toContain("watch committed")
  })

  test("an acknowledged write the watchers did not see at its revision, and a member that lost it", () => {
    expect(checks(recording({ acked: [...acked, { revision: 5, key: P + "a", value: "v9", lease: "0" }] }))).toEqual(["acknowledged write"])
    expect(checks(recording({ finals: [{ member: "m2", revision: 5, kvs: [] }] }))).toEqual(["members keep every write"])
  })

  test("watchers that disagree on an event", () => {
    const other = [history[0]!, put(3, kv("a", "v2", 2, 3, 7), a1), history[2]!, history[3]!]
    expect(checks(recording({ watchers: [watcher("h1", history, [[1, 5]]), watcher("h2", other, [[1, 5]])] }))).toContain("watchers agree")
  })

  test("an event before the watch's start revision, and outside its range", () => {
    expect(checks(recording({ watchers: [watcher("h1", history, [[1, 5]]), watcher("late", [history[0]!], [[3, 5]])] }))).toContain("watch start revision")
    expect(checks(recording({ watchers: [watcher("h1", history, [[1, 5]]), watcher("b only", [history[0]!], [[1, 5]], true, P + "b", false)] }))).toContain("watch range")
  })

  test("leases: keys left on a member, deleted at two revisions, expired before the TTL", () => {
    const l1 = kv("l/1/0", "lv0", 2, 2, 1, "1")
    const l2 = kv("l/1/1", "lv1", 3, 3, 1, "1")
    const events = [put(2, l1), put(3, l2), del(4, "l/1/0", l1), del(5, "l/1/1", l2)]
    const lease: LeaseRecord = { id: 1n, ttl: 3, grantInvokeMs: 0, keys: [P + "l/1/0", P + "l/1/1"], lastRenewMs: 0, latestRenewMs: 0, revoked: "no" }
    const issuedL = new Map<string, IssuedWrite>([
      ["lv0", { key: P + "l/1/0", outcome: "acked" }],
      ["lv1", { key: P + "l/1/1", outcome: "acked" }],
    ])
    const r = recording({ watchers: [watcher("h1", events, [[1, 5]])], issued: issuedL, acked: [], leases: [lease], finals: [{ member: "m1", revision: 5, kvs: [l2] }] })
    expect(checks(r)).toEqual(["members keep every write", "lease keys go", "lease expires once", "lease not early"])
  })
})

describe("planRound()", () => {
  test("the same seed and round give the same plan (a failing round replays); rounds walk through every fault", () => {
    expect(planRound(7, 42)).toEqual(planRound(7, 42))
    expect(planRound(7, 42)).not.toEqual(planRound(8, 42))
    const faults = new Set(Array.from({ length: FAULT_KINDS.length }, (_, i) => planRound(7, i).fault))
    expect(faults.size).toBe(FAULT_KINDS.length)
    for (let i = 0; i < 100; i++) {
      const p = planRound(7, i)
      if (p.size === 1) expect(["none", "kill-leader", "stop-leader", "disk-full"]).toContain(p.fault)
    }
  })

  test("--sizes and --faults narrow the draw; a fault that needs peers and size 1 only is refused", () => {
    for (let i = 0; i < 20; i++) expect(planRound(3, i, { sizes: [3], faults: ["kill-leader"] })).toMatchObject({ size: 3, fault: "kill-leader" })
    expect(() => planRound(3, 0, { sizes: [1], faults: ["isolate-leader"] })).toThrow("needs a cluster of 3 or 5")
  })
})
