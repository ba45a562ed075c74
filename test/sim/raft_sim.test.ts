// Deterministic simulation of raft clusters of 1, 3 and 5 members under
// faults. TSKV_SIM_SEEDS=n sets the number of seeds per configuration
// (default 500); TSKV_SEED=n replays one seed.
//
// Teeth: letting a leader commit by counting replicas of an entry of an
// earlier term (§5.4.2, raft's Figure 8; make Raft.maybeCommit in src/raft/raft.ts pass
// log.term(mci) instead of this.term) is caught by the leader churn seeds:
// 3 members at seed 6 ("leader 3 of term 7 lacks committed entry 2/4"),
// 5 members at seed 24, about 1 seed in 20 (3 members) and 1 in 60 (5).

import { expect, test } from "bun:test"
import { RaftSimulator } from "./raft_sim"

const oneSeed = process.env.TSKV_SEED
const seedCount = Number(process.env.TSKV_SIM_SEEDS ?? "500")
const seeds = oneSeed !== undefined ? [Number(oneSeed)] : Array.from({ length: seedCount }, (_, k) => k + 1)

for (const members of [1, 3, 5]) {
  test(`sim: ${members}-member raft keeps its invariants and a linearizable history under faults (${seeds.length} seeds)`, () => {
    let ops = 0
    let elections = 0
    const started = performance.now()
    for (const seed of seeds) {
      const sim = new RaftSimulator({ seed, members })
      sim.run()
      ops += sim.completedOps()
      elections += sim.stats.elections
    }
    const ms = Math.round(performance.now() - started)
    console.log(`sim ${members} members: ${seeds.length} seeds, ${ops} client ops completed, ${elections} elections, ${ms} ms`)
    expect(ops).toBeGreaterThan(0)
  }, 170_000)
}
