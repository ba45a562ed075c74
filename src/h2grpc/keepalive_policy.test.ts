import { describe, expect, test } from "bun:test"
import {
  effectiveKeepalive,
  PING_MIN_TIME_DEFAULT_MS,
  PING_MIN_TIME_NO_STREAM_MS,
  PingEnforcer,
  type PingerStep,
  SERVER_PING_INTERVAL_DEFAULT_MS,
  SERVER_PING_TIMEOUT_DEFAULT_MS,
  ServerPinger,
} from "./keepalive_policy"

describe("PingEnforcer (grpc-go's handlePing)", () => {
  test("PingEnforcer.onPing() without a stream: the first ping is free, the 4th within 2 h is the third strike", () => {
    const p = new PingEnforcer(5000)
    const t = 1_000_000
    expect([p.onPing(t, 0, 0), p.onPing(t + 1000, 0, 0), p.onPing(t + 2000, 0, 0), p.onPing(t + 60_000, 0, 0)]).toEqual([false, false, false, true])
  })

  test("PingEnforcer.onPing() without a stream: pings 2 h apart are never strikes, whatever the minimum", () => {
    const p = new PingEnforcer(1)
    for (let i = 0; i < 10; i++) expect(p.onPing(i * PING_MIN_TIME_NO_STREAM_MS, 0, 0)).toBe(false)
    expect(p.onPing(10 * PING_MIN_TIME_NO_STREAM_MS - 1 + PING_MIN_TIME_NO_STREAM_MS, 0, 0)).toBe(false)
  })

  test("PingEnforcer.onPing() with a stream open: the minimum time applies", () => {
    const lax = new PingEnforcer(100)
    for (let i = 0; i < 10; i++) expect(lax.onPing(i * 100, 1, 0)).toBe(false)
    const strict = new PingEnforcer(5000)
    expect([0, 4999, 9998, 14997].map((t) => strict.onPing(t, 1, 0))).toEqual([false, false, false, true])
  })

  test("PingEnforcer.onPing() a ping at exactly the minimum after the previous one is no strike", () => {
    const p = new PingEnforcer(5000)
    for (let i = 0; i < 10; i++) expect(p.onPing(i * 5000, 2, 0)).toBe(false)
  })

  test("PingEnforcer.onPing() a ping after any HEADERS or DATA write clears the strikes (one BDP ping per response)", () => {
    const p = new PingEnforcer(5000)
    let writes = 0
    for (let i = 0; i < 1000; i++) {
      writes += 3 // HEADERS, DATA, trailers
      expect(p.onPing(i, 0, writes)).toBe(false)
    }
  })

  test("PingEnforcer.onPing() two strikes, a write, then three strikes more: the GOAWAY comes only then", () => {
    const p = new PingEnforcer(5000)
    expect([p.onPing(0, 0, 0), p.onPing(1, 0, 0), p.onPing(2, 0, 0)]).toEqual([false, false, false])
    expect(p.onPing(3, 0, 1)).toBe(false) // after a write: reset, no strike
    expect([p.onPing(4, 0, 1), p.onPing(5, 0, 1), p.onPing(6, 0, 1)]).toEqual([false, false, true])
  })
})

describe("effectiveKeepalive() (etcd's flags through grpc-go's defaults)", () => {
  test("effectiveKeepalive() keeps values above 0", () => {
    expect(effectiveKeepalive({ minTimeMs: 5000, intervalMs: 1000, timeoutMs: 2000 })).toEqual({ minTimeMs: 5000, intervalMs: 1000, timeoutMs: 2000 })
  })
  test("effectiveKeepalive() a min time of 0 is grpc-go's default of 5 min, not unlimited", () => {
    expect(effectiveKeepalive({ minTimeMs: 0, intervalMs: 1000, timeoutMs: 2000 }).minTimeMs).toBe(PING_MIN_TIME_DEFAULT_MS)
  })
  test("effectiveKeepalive() an interval or a timeout of 0 leaves grpc-go's 2 h and 20 s for both", () => {
    for (const [i, t] of [[0, 2000], [1000, 0], [0, 0]] as const)
      expect(effectiveKeepalive({ minTimeMs: 1, intervalMs: i, timeoutMs: t })).toEqual({
        minTimeMs: 1,
        intervalMs: SERVER_PING_INTERVAL_DEFAULT_MS,
        timeoutMs: SERVER_PING_TIMEOUT_DEFAULT_MS,
      })
  })
})

describe("ServerPinger (grpc-go's keepalive loop)", () => {
  /** Runs the pinger's timer until `untilMs`, with reads at the given times; returns what it did and when. */
  function run(p: ServerPinger, reads: number[], untilMs: number): string[] {
    const out: string[] = []
    let at = p.firstAtMs()
    while (at <= untilMs) {
      const lastRead = Math.max(0, ...reads.filter((r) => r <= at))
      const s: PingerStep = p.step(at, lastRead)
      if (s.action === "close") {
        out.push(`close@${at}`)
        break
      }
      if (s.action === "ping") out.push(`ping@${at}`)
      at = s.nextMs
    }
    return out
  }

  test("ServerPinger.step() pings after an interval with nothing read and closes after the timeout", () => {
    expect(run(new ServerPinger(1000, 1000, 0), [], 10_000)).toEqual(["ping@1000", "close@2000"])
    expect(run(new ServerPinger(1000, 3000, 0), [], 10_000)).toEqual(["ping@1000", "close@4000"])
  })

  test("ServerPinger.step() a read (the ACK or anything else) within the timeout keeps the connection", () => {
    // The client answers each ping 10 ms later.
    const acks = [1010, 2020, 3030, 4040, 5050, 6060, 7070, 8080, 9090]
    expect(run(new ServerPinger(1000, 1000, 0), acks, 9500)).toEqual(["ping@1000", "ping@2010", "ping@3020", "ping@4030", "ping@5040", "ping@6050", "ping@7060", "ping@8070", "ping@9080"])
  })

  test("ServerPinger.step() a busy connection is never pinged: the next check is an interval after the last read", () => {
    const reads = Array.from({ length: 100 }, (_, i) => i * 100)
    expect(run(new ServerPinger(1000, 1000, 0), reads, 9900)).toEqual([])
  })
})
