// scripts/robustness: the seeded robustness campaign (test/robustness/) over
// 1, 3 and 5 members of dist/tskv. Must run as root (disk-full rounds mount a
// tmpfs).
//
//   scripts/robustness --seed 7 --rounds 500          # the long run
//   scripts/robustness --seed 7 --round 42            # replay one round
//   scripts/robustness --seed 7 --rounds 20 --faults kill-leader,disk-full --sizes 3
//   --json report.json writes the tally; --max-minutes N starts no round after N
//   minutes; --fail-fast stops at the first failing round; exit 1 when a round failed.
import { parseArgs } from "node:util"
import { writeFileSync } from "node:fs"
import { runCampaign, summarize } from "../test/robustness/campaign"
import { FAULT_KINDS, type FaultKind } from "../test/robustness/plan"
import { killAllMembers, requireBinary } from "../test/support/procs"
import { removeAllTempDirs } from "../test/support/tmp"

function fail(message: string): never {
  console.error(`robustness: ${message}`)
  process.exit(2)
}

function parse() {
  try {
    return parseArgs({
      options: {
        seed: { type: "string", default: "1" },
        rounds: { type: "string", default: "20" },
        round: { type: "string", multiple: true },
        sizes: { type: "string" },
        faults: { type: "string" },
        json: { type: "string" },
        "fail-fast": { type: "boolean", default: false },
        "max-minutes": { type: "string" },
      },
    }).values
  } catch (e) {
    fail((e as Error).message)
  }
}

const values = parse()
const seed = Number(values.seed)
const rounds = Number(values.rounds)
if (!Number.isInteger(seed) || seed < 0) fail(`--seed must be a non-negative integer, not ${values.seed}`)
if (!Number.isInteger(rounds) || rounds < 1) fail(`--rounds must be a positive integer, not ${values.rounds}`)
const only = values.round?.map((r) => {
  const n = Number(r)
  if (!Number.isInteger(n) || n < 0) fail(`--round must be a non-negative integer, not ${r}`)
  return n
})
const sizes = values.sizes?.split(",").map((s) => {
  if (s !== "1" && s !== "3" && s !== "5") fail(`--sizes: 1, 3 or 5, not ${s}`)
  return Number(s) as 1 | 3 | 5
})
const faults = values.faults?.split(",").map((f) => {
  if (!(FAULT_KINDS as readonly string[]).includes(f)) fail(`--faults: unknown fault ${f} (${FAULT_KINDS.join(", ")})`)
  return f as FaultKind
})
const maxMinutes = values["max-minutes"] === undefined ? undefined : Number(values["max-minutes"])
if (maxMinutes !== undefined && !(maxMinutes > 0)) fail(`--max-minutes must be a positive number, not ${values["max-minutes"]}`)
requireBinary()
if (process.getuid?.() !== 0) fail("must run as root (disk-full rounds mount a tmpfs)")

let report
try {
  report = await runCampaign({ seed, rounds, ...(only ? { only } : {}), ...(sizes ? { sizes } : {}), ...(faults ? { faults } : {}), failFast: values["fail-fast"], ...(maxMinutes === undefined ? {} : { maxMinutes }) })
} finally {
  await killAllMembers()
  removeAllTempDirs()
}
console.log(summarize(report))
for (const f of report.failed) console.log(`failed: round ${f.round}: ${f.replay}`)
if (values.json !== undefined) writeFileSync(values.json, JSON.stringify(report, null, 2))
process.exit(report.violations === 0 ? 0 : 1)
