import { expect, test } from "bun:test"
import { loadModel, perfVerdict, randomKey, runLoad, summarize, type LoadStats } from "./load_check"

const stats = (s: Partial<LoadStats>): LoadStats => ({ count: 9000, rps: 150, slowestSeconds: 0.2, stddevSeconds: 0.02, errors: new Map(), ...s })

test("loadModel() accepts etcdctl's names and aliases only", () => {
  expect(["s", "small", "m", "medium", "l", "large", "xl", "xLarge"].map(loadModel)).toEqual(["s", "s", "m", "m", "l", "l", "xl", "xl"])
  expect(loadModel("xlarge")).toBeUndefined()
  expect(loadModel("toString")).toBeUndefined()
})

test("summarize() computes pkg/report's RPS, slowest and population standard deviation", () => {
  const s = summarize([0.1, 0.2, 0.3, 0.4], new Map(), 2)
  expect(s.count).toBe(4)
  expect(s.rps).toBe(2)
  expect(s.slowestSeconds).toBe(0.4)
  expect(s.stddevSeconds).toBeCloseTo(Math.sqrt(0.0125), 12)
  expect(summarize([], new Map(), 1)).toEqual({ count: 0, rps: 0, slowestSeconds: 0, stddevSeconds: 0, errors: new Map() })
})

test("perfVerdict() passes above 90% of the rate, slowest <= 0.5 s, stddev <= 0.1 s, no errors", () => {
  expect(perfVerdict(stats({ rps: 149.2 }), 150)).toEqual({
    ok: true,
    lines: ["PASS: Throughput is 150 writes/s", "PASS: Slowest request took 0.200000s", "PASS: Stddev is 0.020000s", "PASS"],
  })
})

test("perfVerdict() fails each threshold with etcdctl's lines", () => {
  expect(perfVerdict(stats({ rps: 135 }), 150)).toEqual({
    ok: false,
    lines: ["FAIL: Throughput too low: 136 writes/s", "PASS: Slowest request took 0.200000s", "PASS: Stddev is 0.020000s", "FAIL"],
  })
  expect(perfVerdict(stats({ slowestSeconds: 0.75, stddevSeconds: 0.125 }), 150).lines).toEqual([
    "PASS: Throughput is 151 writes/s",
    "Slowest request took too long: 0.750000s",
    "Stddev too high: 0.125000s",
    "FAIL",
  ])
  const failed = perfVerdict(stats({ errors: new Map([["context deadline exceeded", 3]]) }), 150)
  expect(failed.ok).toBe(false)
  expect(failed.lines.slice(0, 2)).toEqual(["FAIL: too many errors", "FAIL: ERROR(context deadline exceeded) -> 3"])
})

test("randomKey() is the prefix and a fixed-size key of random leading bytes", () => {
  const key = randomKey("/p/", 256, () => 0.5)
  expect(key.length).toBe(3 + 256)
  expect(new TextDecoder().decode(key.subarray(0, 3))).toBe("/p/")
  expect([...key.subarray(3, 11)]).toEqual(new Array(8).fill(128))
  expect(key.subarray(11).every((b) => b === 0)).toBe(true)
})

/** Runs a paced load on a fake clock whose sleep jumps to the end of the wait; returns when each request was sent. */
async function pacedSendTimes(clientCount: number): Promise<{ sent: number[]; count: number }> {
  let nowMs = 0
  const sent: number[] = []
  const client = async (): Promise<void> => {
    sent.push(nowMs)
    nowMs += 1
  }
  const s = await runLoad({
    clients: new Array(clientCount).fill(client),
    request: () => ({ key: new Uint8Array(1) }),
    pace: { perSecond: 100, durationMs: 1000 },
    now: () => nowMs,
    sleep: async (ms) => {
      nowMs += ms
    },
  })
  expect(s.errors.size).toBe(0)
  return { sent, count: s.count }
}

test("runLoad() paces requests one interval apart until the duration ends", async () => {
  const { sent, count } = await pacedSendTimes(1)
  expect(count).toBe(100)
  for (let i = 1; i < sent.length; i++) expect(sent[i]! - sent[i - 1]!).toBe(10)
})

test("runLoad() keeps the rate with many clients (no catching up beyond the duration)", async () => {
  expect((await pacedSendTimes(3)).count).toBeLessThanOrEqual(100)
  expect((await pacedSendTimes(3)).count).toBeGreaterThanOrEqual(90)
})

test("runLoad() without pace runs every request and counts failures by their text", async () => {
  let left = 10
  let done = 0
  const s = await runLoad({
    clients: [async () => {}, async () => Promise.reject(new Error("boom"))],
    request: () => (left-- > 0 ? { key: new Uint8Array(1) } : undefined),
    onDone: () => done++,
  })
  expect(done).toBe(10)
  expect(s.count + (s.errors.get("boom") ?? 0)).toBe(10)
  expect(s.errors.get("boom")).toBeGreaterThan(0)
})
