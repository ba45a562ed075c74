import { expect, test } from "bun:test"
import { FakeClock } from "../lib/clock"
import { Compactor, REVISION_COMPACTION_PERIOD_MS } from "./compactor"

function setup(mode: ConstructorParameters<typeof Compactor>[0]) {
  const clock = new FakeClock()
  const state = { rev: 1, compacted: 0, leader: true, compactions: [] as number[] }
  const c = new Compactor(mode, {
    clock,
    currentRevision: () => state.rev,
    compactedRevision: () => state.compacted,
    isLeader: () => state.leader,
    compact: async (rev) => {
      state.compactions.push(rev)
      state.compacted = rev
    },
  })
  return { clock, state, c }
}

test("Compactor in revision mode compacts to current - retention every 5 minutes", async () => {
  const { clock, state, c } = setup({ mode: "revision", retentionRevisions: 100 })
  state.rev = 1000
  await c.tick()
  expect(state.compactions).toEqual([])
  clock.advance(REVISION_COMPACTION_PERIOD_MS)
  await c.tick()
  expect(state.compactions).toEqual([900])
  state.rev = 950
  clock.advance(REVISION_COMPACTION_PERIOD_MS)
  await c.tick()
  expect(state.compactions).toEqual([900])
})

test("Compactor in periodic mode keeps one retention of history", async () => {
  const { clock, state, c } = setup({ mode: "periodic", retentionMs: 10_000 })
  for (let t = 0; t < 10; t++) {
    state.rev = 10 + t * 10
    await c.tick()
    clock.advance(1000)
  }
  expect(state.compactions).toEqual([])
  state.rev = 200
  await c.tick()
  // The revision sampled 10 s ago (at t=0) is 10.
  expect(state.compactions).toEqual([10])
  clock.advance(1000)
  await c.tick()
  expect(state.compactions).toEqual([10, 20])
})

test("Compactor does nothing on a follower or when retention is 0", async () => {
  const off = setup({ mode: "periodic", retentionMs: 0 })
  off.clock.advance(1e9)
  await off.c.tick()
  expect(off.state.compactions).toEqual([])
  const follower = setup({ mode: "revision", retentionRevisions: 1 })
  follower.state.leader = false
  follower.state.rev = 100
  follower.clock.advance(REVISION_COMPACTION_PERIOD_MS)
  await follower.c.tick()
  expect(follower.state.compactions).toEqual([])
})
