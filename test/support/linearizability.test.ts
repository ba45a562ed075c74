import { describe as group, expect, test } from "bun:test"
import { checkKey, checkLinearizable, describe, History, type HistoryEntry, type Op, type Outcome } from "./linearizability"
import { seededPrng } from "../../src/lib/prng"

const put = (key: string, value: string): Op => ({ kind: "put", key, value })
const get = (key: string): Op => ({ kind: "get", key })
const cas = (key: string, expected: string | null, value: string): Op => ({ kind: "cas", key, expected, value })
const ok: Outcome = { kind: "put" }
const got = (value: string | null): Outcome => ({ kind: "get", value })
const swapped = (succeeded: boolean): Outcome => ({ kind: "cas", succeeded })

function e(client: number, op: Op, invokeMs: number, completeMs: number, outcome: Outcome | undefined): HistoryEntry {
  return { client, op, invokeMs, completeMs, outcome }
}

group("checkLinearizable()", () => {
  test("accepts a sequential history that follows the register", () => {
    const h = [
      e(0, get("a"), 0, 1, got(null)),
      e(0, put("a", "1"), 2, 3, ok),
      e(0, get("a"), 4, 5, got("1")),
      e(0, cas("a", "1", "2"), 6, 7, swapped(true)),
      e(0, cas("a", "1", "3"), 8, 9, swapped(false)),
      e(0, get("a"), 10, 11, got("2")),
    ]
    expect(checkLinearizable(h)).toEqual({ ok: true, keys: 1, operations: 6 })
  })

  test("rejects a stale read after a completed write (the classic follower-read bug)", () => {
    const h = [e(0, put("a", "1"), 0, 1, ok), e(0, put("a", "2"), 2, 3, ok), e(1, get("a"), 4, 5, got("1"))]
    const r = checkLinearizable(h)
    expect(r.ok).toBe(false)
    if (!r.ok) expect(r.key).toBe("a")
  })

  test("accepts either value for a read concurrent with a write", () => {
    for (const seen of [null, "1"]) {
      const h = [e(0, put("a", "1"), 0, 10, ok), e(1, get("a"), 2, 5, got(seen))]
      expect(checkLinearizable(h).ok).toBe(true)
    }
  })

  test("rejects two reads that see concurrent writes in opposite orders after both completed", () => {
    const h = [
      e(0, put("a", "1"), 0, 10, ok),
      e(1, put("a", "2"), 0, 10, ok),
      e(2, get("a"), 11, 12, got("1")),
      e(3, get("a"), 13, 14, got("2")),
    ]
    expect(checkLinearizable(h).ok).toBe(false)
  })

  test("rejects a value that was never written", () => {
    expect(checkLinearizable([e(0, get("a"), 0, 1, got("ghost"))]).ok).toBe(false)
  })

  test("rejects two successful CAS from the same expected value (lost update)", () => {
    const h = [
      e(0, put("a", "0"), 0, 1, ok),
      e(1, cas("a", "0", "x"), 2, 10, swapped(true)),
      e(2, cas("a", "0", "y"), 2, 10, swapped(true)),
    ]
    expect(checkLinearizable(h).ok).toBe(false)
  })

  test("rejects a CAS that failed although the value matched and nothing was concurrent", () => {
    const h = [e(0, put("a", "0"), 0, 1, ok), e(1, cas("a", "0", "x"), 2, 3, swapped(false))]
    expect(checkLinearizable(h).ok).toBe(false)
  })

  test("a CAS on an absent key (expected null) succeeds once", () => {
    const good = [e(0, cas("a", null, "x"), 0, 1, swapped(true)), e(1, cas("a", null, "y"), 2, 3, swapped(false))]
    const bad = [e(0, cas("a", null, "x"), 0, 1, swapped(true)), e(1, cas("a", null, "y"), 2, 3, swapped(true))]
    expect(checkLinearizable(good).ok).toBe(true)
    expect(checkLinearizable(bad).ok).toBe(false)
  })

  test("a delete reports whether the key was there; a second delete of the same key deletes nothing", () => {
    const del = (key: string): Op => ({ kind: "del", key })
    const deleted = (n: number): Outcome => ({ kind: "del", deleted: n })
    const good = [e(0, put("a", "1"), 0, 1, ok), e(0, del("a"), 2, 3, deleted(1)), e(1, del("a"), 4, 5, deleted(0)), e(1, get("a"), 6, 7, got(null))]
    const twice = [e(0, put("a", "1"), 0, 1, ok), e(0, del("a"), 2, 3, deleted(1)), e(1, del("a"), 4, 5, deleted(1))]
    const stale = [e(0, put("a", "1"), 0, 1, ok), e(0, del("a"), 2, 3, deleted(1)), e(1, get("a"), 4, 5, got("1"))]
    expect(checkLinearizable(good).ok).toBe(true)
    expect(checkLinearizable(twice).ok).toBe(false)
    expect(checkLinearizable(stale).ok).toBe(false)
  })

  test("a one-key txn: compare on value, absence or presence; put or delete on success; the failure branch reads the value", () => {
    const txn = (key: string, expected: string | null | { present: true }, value: string | null): Op => ({ kind: "txn", key, expected, value })
    const res = (succeeded: boolean, read: string | null = null): Outcome => ({ kind: "txn", succeeded, read })
    const good = [
      e(0, txn("a", null, "1"), 0, 1, res(true)),
      e(0, txn("a", { present: true }, null), 2, 3, res(true)),
      e(1, txn("a", { present: true }, "x"), 4, 5, res(false, null)),
      e(1, put("a", "2"), 6, 7, ok),
      e(2, txn("a", "1", "3"), 8, 9, res(false, "2")),
      e(2, txn("a", "2", "3"), 10, 11, res(true)),
      e(0, get("a"), 12, 13, got("3")),
    ]
    expect(checkLinearizable(good).ok).toBe(true)
    // The failure branch read a value the key did not have.
    expect(checkLinearizable([e(0, put("a", "2"), 0, 1, ok), e(1, txn("a", "1", "3"), 2, 3, res(false, "1"))]).ok).toBe(false)
    // A presence compare that succeeded on an absent key.
    expect(checkLinearizable([e(0, txn("a", { present: true }, "x"), 0, 1, res(true))]).ok).toBe(false)
    // A delete by txn that was not seen.
    expect(checkLinearizable([e(0, put("a", "1"), 0, 1, ok), e(0, txn("a", "1", null), 2, 3, res(true)), e(1, get("a"), 4, 5, got("1"))]).ok).toBe(false)
  })

  test("an unknown-outcome write may take effect late, or never", () => {
    const late = [e(0, put("a", "1"), 0, Infinity, undefined), e(1, get("a"), 5, 6, got(null)), e(1, get("a"), 7, 8, got("1"))]
    const never = [e(0, put("a", "1"), 0, Infinity, undefined), e(1, get("a"), 5, 6, got(null))]
    expect(checkLinearizable(late).ok).toBe(true)
    expect(checkLinearizable(never).ok).toBe(true)
  })

  test("an unknown-outcome write cannot take effect before it was invoked", () => {
    const h = [e(1, get("a"), 0, 1, got("1")), e(0, put("a", "1"), 5, Infinity, undefined)]
    expect(checkLinearizable(h).ok).toBe(false)
  })

  test("once an unknown write has been seen it cannot be unseen", () => {
    const h = [
      e(0, put("a", "0"), 0, 1, ok),
      e(0, put("a", "1"), 2, Infinity, undefined),
      e(1, get("a"), 5, 6, got("1")),
      e(1, get("a"), 7, 8, got("0")),
    ]
    expect(checkLinearizable(h).ok).toBe(false)
  })

  test("failed gets are dropped; keys are checked separately", () => {
    const h = [
      e(0, put("a", "1"), 0, 1, ok),
      e(0, get("a"), 2, Infinity, undefined),
      e(1, put("b", "1"), 0, 1, ok),
      e(1, get("b"), 2, 3, got("1")),
      e(2, get("a"), 2, 3, got("1")),
    ]
    expect(checkLinearizable(h)).toEqual({ ok: true, keys: 2, operations: 4 })
  })

  test("the failure names the operations around the violation", () => {
    const h = [e(0, put("a", "1"), 0, 1, ok), e(1, get("a"), 4, 5, got(null))]
    const r = checkLinearizable(h)
    expect(r.ok).toBe(false)
    if (!r.ok) expect(describe(r.operations)).toContain("get(a) -> <absent>")
  })

  test("a long random history produced by a real register is linearizable, and a corrupted copy is not", () => {
    // Simulated clients against one atomic register, each op taking effect at a random point of its interval.
    const prng = seededPrng(7)
    const h: HistoryEntry[] = []
    let value: string | null = null
    const clients = 5
    const busyUntil = new Array<number>(clients).fill(0)
    const pending: { at: number; apply: () => void }[] = []
    for (let i = 0; i < 2_000; i++) {
      const c = i % clients
      const invokeMs = busyUntil[c]! + prng.next() * 3
      const completeMs = invokeMs + 1 + prng.next() * 10
      const atMs = invokeMs + prng.next() * (completeMs - invokeMs)
      busyUntil[c] = completeMs
      const dice = prng.next()
      const entry = e(c, get("k"), invokeMs, completeMs, undefined)
      if (dice < 0.4) {
        entry.op = put("k", `v${i}`)
        entry.outcome = ok
        pending.push({ at: atMs, apply: () => (value = `v${i}`) })
      } else if (dice < 0.8) {
        pending.push({ at: atMs, apply: () => (entry.outcome = got(value)) })
      } else {
        const expected = prng.next() < 0.5 ? value : `v${i - 1}`
        entry.op = cas("k", expected, `v${i}`)
        pending.push({
          at: atMs,
          apply: () => {
            const matches = value === (entry.op as { expected: string | null }).expected
            entry.outcome = swapped(matches)
            if (matches) value = `v${i}`
          },
        })
      }
      h.push(entry)
    }
    for (const p of pending.sort((a, b) => a.at - b.at)) p.apply()
    expect(checkLinearizable(h).ok).toBe(true)
    // Corrupt one read late in the history into a stale value that had been overwritten long before.
    const reads = h.filter((x) => x.outcome?.kind === "get" && x.invokeMs > h[1_500]!.completeMs)
    const puts = h.filter((x) => x.op.kind === "put" && x.completeMs < h[200]!.invokeMs)
    const victim = reads[0]!
    victim.outcome = got((puts[0]!.op as { value: string }).value)
    expect(checkKey(h).ok).toBe(false)
  })
})

group("History", () => {
  test("record() keeps times and outcomes, and makes failures unknown", async () => {
    const history = new History()
    await history.record(0, put("a", "1"), async () => ok)
    await history.record(1, put("a", "2"), async () => {
      throw new Error("timeout")
    })
    expect(history.entries[0]!.outcome).toEqual(ok)
    expect(history.entries[0]!.completeMs).toBeGreaterThanOrEqual(history.entries[0]!.invokeMs)
    expect(history.entries[1]!.outcome).toBeUndefined()
    expect(history.entries[1]!.completeMs).toBe(Infinity)
    expect(history.known).toBe(1)
  })
})
