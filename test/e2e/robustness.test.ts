// The robustness campaign in its small form (the long one: scripts/robustness
// --rounds 500): a few seeded rounds over 1, 3 and 5 members of dist/tskv, each
// with traffic, watchers, leases, compaction and one fault, then every check
// of test/robustness/checks.ts, the linearizability of the history, HashKV
// everywhere and a restart of every data dir. Needs root (the disk-full round
// mounts a tmpfs).
import { expect, test } from "bun:test"
import { runCampaign, summarize } from "../robustness/campaign"
import type { FaultKind } from "../robustness/plan"

const SMALL: { seed: number; sizes?: (1 | 3 | 5)[]; faults?: FaultKind[]; rounds: number; only?: number[] }[] = [
  // The round that found acknowledged writes lost: SQLite's COMMIT failed on the full disk and
  // rolled the batch back, the stop then wrote the consistent index without it (src/backend).
  { seed: 1, rounds: 1, only: [0] },
  { seed: 17, sizes: [1], faults: ["kill-leader"], rounds: 1 },
  { seed: 17, sizes: [3], faults: ["member-replace", "one-way-leader"], rounds: 2 },
  { seed: 17, sizes: [5], faults: ["isolate-leader"], rounds: 1 },
]

test("robustness campaign (small): every check holds on 1, 3 and 5 members under kill -9, partitions, a full disk, a member replaced", async () => {
  const lines: string[] = []
  let rounds = 0
  for (const s of SMALL) {
    const report = await runCampaign({ ...s, log: (l) => lines.push(l) })
    lines.push(summarize(report))
    rounds += report.rounds
    expect({ violations: report.violations, log: report.violations === 0 ? "" : lines.join("\n") }).toEqual({ violations: 0, log: "" })
    expect(report.operations).toBeGreaterThan(20) // (fewer on a loaded machine: the traffic runs for a fixed time)
    expect(report.events).toBeGreaterThan(20)
  }
  expect(rounds).toBe(5)
}, 240_000)
