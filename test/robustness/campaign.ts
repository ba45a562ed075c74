// A robustness campaign: rounds of runRound() drawn from one seed, with a
// tally (rounds, operations checked, watch events, faults by kind,
// violations) and, for every failing round, the command line that replays it.

import { FAULT_KINDS, describePlan, planRound, type FaultKind, type PlanOptions } from "./plan"
import { runRound, type RoundResult } from "./round"

export interface CampaignOptions extends PlanOptions {
  seed: number
  /** Rounds 0..rounds-1, or only these. */
  rounds: number
  only?: number[]
  /** Stop at the first failing round. */
  failFast?: boolean
  /** Start no new round after this many minutes. */
  maxMinutes?: number
  log?: (line: string) => void
}

export interface CampaignReport {
  seed: number
  rounds: number
  operations: number
  events: number
  acked: number
  faults: Record<string, number>
  bySize: Record<string, number>
  diskFullExits: number
  violations: number
  failed: { round: number; replay: string; violations: RoundResult["violations"] }[]
  durationMs: number
}

export function replayCommand(seed: number, round: number, options: PlanOptions): string {
  const extra = [
    options.sizes === undefined ? "" : ` --sizes ${options.sizes.join(",")}`,
    options.faults === undefined ? "" : ` --faults ${options.faults.join(",")}`,
  ].join("")
  return `scripts/robustness --seed ${seed} --round ${round}${extra}`
}

export async function runCampaign(options: CampaignOptions): Promise<CampaignReport> {
  const log = options.log ?? ((line: string) => console.log(line))
  const began = performance.now()
  const report: CampaignReport = {
    seed: options.seed,
    rounds: 0,
    operations: 0,
    events: 0,
    acked: 0,
    faults: Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>,
    bySize: { "1": 0, "3": 0, "5": 0 },
    diskFullExits: 0,
    violations: 0,
    failed: [],
    durationMs: 0,
  }
  const planOptions: PlanOptions = { ...(options.sizes ? { sizes: options.sizes } : {}), ...(options.faults ? { faults: options.faults } : {}) }
  const rounds = options.only ?? Array.from({ length: options.rounds }, (_, i) => i)
  for (const round of rounds) {
    if (options.maxMinutes !== undefined && performance.now() - began > options.maxMinutes * 60_000) {
      log(`stopping before round ${round}: --max-minutes ${options.maxMinutes} passed`)
      break
    }
    const plan = planRound(options.seed, round, planOptions)
    log(describePlan(plan))
    const r = await runRound(plan)
    report.rounds++
    report.operations += r.operations
    report.events += r.events
    report.acked += r.acked
    report.faults[plan.fault] = (report.faults[plan.fault] ?? 0) + 1
    report.bySize[String(plan.size)] = (report.bySize[String(plan.size)] ?? 0) + 1
    if (r.injected?.exitedOnFullDisk) report.diskFullExits++
    const what = r.injected === undefined ? "" : ` ${r.injected.victim} ${r.injected.detail}`
    log(`  ${r.violations.length === 0 ? "ok" : "FAIL"} in ${(r.durationMs / 1000).toFixed(1)} s: ${r.operations} ops linearizable, ${r.events} watch events, ${r.acked} acknowledged writes;${what}`)
    if (r.violations.length > 0) {
      report.violations += r.violations.length
      const replay = replayCommand(options.seed, round, planOptions)
      report.failed.push({ round, replay, violations: r.violations })
      const byCheck = new Map<string, RoundResult["violations"]>()
      for (const v of r.violations) byCheck.set(v.check, [...(byCheck.get(v.check) ?? []), v])
      for (const [check, vs] of byCheck) {
        log(`  ${vs.length} violation(s) of [${check}]`)
        for (const v of vs.slice(0, 3)) log(`    ${v.detail.length > 1_500 ? `${v.detail.slice(0, 1_500)}...` : v.detail}`)
      }
      log(`  replay: ${replay}`)
      if (r.logs !== undefined && process.env.ROBUSTNESS_LOGS === "1") log(r.logs)
      if (options.failFast) break
    }
  }
  report.durationMs = performance.now() - began
  return report
}

export function summarize(r: CampaignReport): string {
  const faults = Object.entries(r.faults)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${n}`)
    .join(", ")
  return (
    `seed ${r.seed}: ${r.rounds} rounds in ${(r.durationMs / 60_000).toFixed(1)} min (members: 1 x${r.bySize["1"]}, 3 x${r.bySize["3"]}, 5 x${r.bySize["5"]}); ` +
    `${r.operations} operations checked linearizable, ${r.events} watch events checked, ${r.acked} acknowledged writes checked; ` +
    `faults: ${faults}; disk-full member exits: ${r.diskFullExits}; violations: ${r.violations}`
  )
}
