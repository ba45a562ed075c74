import { describe, expect, test } from "bun:test"
import { LeaderTimes } from "./leader_times"

const ELECTION_MS = 1_000

describe("LeaderTimes", () => {
  test("LeaderTimes.observe() moves leaderSince on a new leader only, not on the same leader seen again", () => {
    const t = new LeaderTimes(5)
    expect(t.leaderSince).toBe(5)
    t.observe({ lead: 2n, isLeader: false, now: 100 })
    expect(t.leaderSince).toBe(100)
    t.observe({ lead: 2n, isLeader: false, now: 200 })
    expect(t.leaderSince).toBe(100)
    t.observe({ lead: 3n, isLeader: false, now: 300 })
    expect(t.leaderSince).toBe(300)
  })

  test("LeaderTimes.observe() keeps leaderSince while there is no leader; the same leader after none is a new term", () => {
    const t = new LeaderTimes(0)
    t.observe({ lead: 2n, isLeader: false, now: 100 })
    t.observe({ lead: 0n, isLeader: false, now: 150 })
    expect(t.leaderSince).toBe(100)
    t.observe({ lead: 2n, isLeader: false, now: 400 })
    expect(t.leaderSince).toBe(400)
  })

  test("LeaderTimes.observe() sets electedAt only when this member becomes leader (etcd's leadElectedTime)", () => {
    const t = new LeaderTimes(0)
    t.observe({ lead: 2n, isLeader: false, now: 100 })
    expect(t.electedAt).toBe(0)
    t.observe({ lead: 1n, isLeader: true, now: 500 })
    expect(t.electedAt).toBe(500)
    expect(t.leaderSince).toBe(500)
    t.observe({ lead: 1n, isLeader: true, now: 900 })
    expect(t.electedAt).toBe(500)
  })

  test("LeaderTimes.dueToLeaderFail() is true for a proposal started within 2 election timeouts before this member was elected", () => {
    const t = new LeaderTimes(0)
    t.observe({ lead: 2n, isLeader: false, now: 1_000 })
    expect(t.dueToLeaderFail(9_000, ELECTION_MS)).toBe(false)
    t.observe({ lead: 1n, isLeader: true, now: 10_000 })
    expect(t.dueToLeaderFail(9_000, ELECTION_MS)).toBe(true)
    expect(t.dueToLeaderFail(8_001, ELECTION_MS)).toBe(true)
    expect(t.dueToLeaderFail(8_000, ELECTION_MS)).toBe(false)
    expect(t.dueToLeaderFail(7_000, ELECTION_MS)).toBe(false)
    // Started after the election: the new leader was there, the timeout has another cause.
    expect(t.dueToLeaderFail(10_001, ELECTION_MS)).toBe(false)
  })

  test("LeaderTimes.dueToLeaderFail() is false on a member that never led", () => {
    const t = new LeaderTimes(0)
    expect(t.dueToLeaderFail(1, ELECTION_MS)).toBe(false)
    t.observe({ lead: 2n, isLeader: false, now: 10 })
    expect(t.dueToLeaderFail(5, ELECTION_MS)).toBe(false)
  })
})
