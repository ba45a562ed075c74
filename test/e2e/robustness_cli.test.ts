// scripts/robustness's command line: bad flags exit 2 with the reason; --max-minutes stops
// starting rounds; --json writes the tally.
import { expect, test } from "bun:test"
import { spawnSync } from "bun"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { repoRoot } from "../support/procs"
import { tempDir } from "../support/tmp"

function robustness(args: string[]): { code: number; out: string } {
  const r = spawnSync(["bun", "scripts/robustness.ts", ...args], { cwd: repoRoot, env: { ...process.env } })
  return { code: r.exitCode ?? -1, out: r.stdout.toString() + r.stderr.toString() }
}

test("scripts/robustness refuses bad flags (exit 2, the reason)", () => {
  const cases: [string[], string][] = [
    [["--seed", "x"], "--seed must be a non-negative integer, not x"],
    [["--rounds", "0"], "--rounds must be a positive integer, not 0"],
    [["--round=-1"], "--round must be a non-negative integer, not -1"],
    [["--seeds", "1"], "Unknown option '--seeds'"],
    [["--sizes", "2"], "--sizes: 1, 3 or 5, not 2"],
    [["--faults", "meteor"], "--faults: unknown fault meteor"],
    [["--max-minutes", "0"], "--max-minutes must be a positive number, not 0"],
  ]
  for (const [args, message] of cases) {
    const r = robustness(args)
    expect({ args, code: r.code, has: r.out.includes(`robustness: ${message}`) }).toEqual({ args, code: 2, has: true })
  }
})

test("scripts/robustness --max-minutes starts no round after the budget; --json writes the tally", () => {
  const dir = tempDir("robustness-cli-")
  const json = join(dir.path, "report.json")
  const r = robustness(["--seed", "17", "--rounds", "3", "--sizes", "1", "--faults", "none", "--max-minutes", "0.0001", "--json", json])
  expect({ code: r.code, out: r.code === 0 ? "" : r.out }).toEqual({ code: 0, out: "" })
  expect(r.out).toContain("stopping before round 1: --max-minutes 0.0001 passed")
  expect(r.out).toMatch(/seed 17: 1 rounds in .* violations: 0/)
  const report = JSON.parse(readFileSync(json, "utf8")) as { rounds: number; violations: number; faults: Record<string, number>; operations: number }
  expect(report).toMatchObject({ rounds: 1, violations: 0, faults: { none: 1 } })
  expect(report.operations).toBeGreaterThan(50)
}, 60_000)
