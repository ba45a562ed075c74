// What one round of the robustness campaign does, drawn from (seed, round):
// the cluster size, --snapshot-count, the traffic mix, the fault and its
// timing. Everything a round does that is not timing comes from here, so
// `scripts/robustness --seed S --round R` replays round R of seed S.

import { seededPrng, type Prng } from "../../src/lib/prng"

export const FAULT_KINDS = [
  "none",
  "kill-leader",
  "kill-follower",
  "stop-leader",
  "stop-follower",
  "isolate-leader",
  "isolate-follower",
  "one-way-leader",
  "one-way-follower",
  "member-replace",
  "disk-full",
  "snapshot-restart",
] as const
export type FaultKind = (typeof FAULT_KINDS)[number]

/** Faults that a one-member cluster can have (the others need a follower, a partition, a membership change). */
const SINGLE_MEMBER_FAULTS: ReadonlySet<FaultKind> = new Set(["none", "kill-leader", "stop-leader", "disk-full"])

export interface TrafficMix {
  /** Relative weights of the operations on the checked registers. */
  put: number
  get: number
  del: number
  cas: number
  txn: number
}

export interface LeasePlan {
  /** Requested TTL (s); the server may raise it to its minimum. */
  ttl: number
  keys: number
  /** Renew once, this long after the grant (ms), or never. */
  keepAliveAtMs: number | undefined
  /** Revoke this long after the grant (ms) instead of letting it expire. */
  revokeAtMs: number | undefined
  /** When to grant, from the start of the traffic (ms). */
  grantAtMs: number
}

export interface WatchPlan {
  atMs: number
  /** "old": from a revision in the past; "current": from now (start revision 0). */
  from: "old" | "current"
  /** The whole round prefix or one register key. */
  range: "prefix" | "key"
  prevKv: boolean
}

export interface RoundPlan {
  seed: number
  round: number
  size: 1 | 3 | 5
  snapshotCount: number
  fault: FaultKind
  /** From the start of the traffic (ms). */
  faultAtMs: number
  faultHoldMs: number
  trafficMs: number
  /** Clients per member. */
  clientsPerMember: number
  keys: number
  mix: TrafficMix
  leases: LeasePlan[]
  watches: WatchPlan[]
  /** Compactions: when (ms) and how far behind the current revision. */
  compactions: { atMs: number; behind: number; physical: boolean }[]
  defrags: number[]
  /** Which member (index among the current ones) a follower/leader fault picks when there is a choice. */
  victimPick: number
  /** Seed for the clients' operation choices. */
  trafficSeed: number
}

/** A 32-bit seed per (seed, round), so rounds are independent of each other. */
export function roundSeed(seed: number, round: number): number {
  const rng = seededPrng((seed ^ Math.imul(round + 1, 0x9e3779b1)) >>> 0)
  return Math.floor(rng.next() * 0x1_0000_0000) >>> 0
}

function pick<T>(rng: Prng, items: readonly T[]): T {
  return items[rng.int(items.length)]!
}

function between(rng: Prng, lo: number, hi: number): number {
  return lo + rng.int(hi - lo + 1)
}

export interface PlanOptions {
  sizes?: readonly (1 | 3 | 5)[]
  faults?: readonly FaultKind[]
}

/**
 * The fault of round r: rounds walk through the faults in a seeded order (a
 * new shuffle every len(faults) rounds), so a run covers every kind evenly.
 */
function faultOf(seed: number, round: number, faults: readonly FaultKind[]): FaultKind {
  const cycle = Math.floor(round / faults.length)
  const order = [...faults]
  const rng = seededPrng(roundSeed(seed, -1 - cycle))
  for (let i = order.length - 1; i > 0; i--) {
    const j = rng.int(i + 1)
    ;[order[i], order[j]] = [order[j]!, order[i]!]
  }
  return order[round % faults.length]!
}

export function planRound(seed: number, round: number, options: PlanOptions = {}): RoundPlan {
  const faults = options.faults ?? FAULT_KINDS
  const sizes = options.sizes ?? [1, 3, 5]
  const rng = seededPrng(roundSeed(seed, round))
  const fault = faultOf(seed, round, faults)
  const fitting = sizes.filter((s) => s > 1 || SINGLE_MEMBER_FAULTS.has(fault))
  if (fitting.length === 0) throw new Error(`fault ${fault} needs a cluster of 3 or 5, sizes are ${sizes.join(",")}`)
  const size = pick(rng, fitting)
  const trafficMs = between(rng, 2_800, 3_600)
  const faultAtMs = between(rng, 400, 1_000)
  const faultHoldMs = between(rng, 1_300, 2_000)
  // A snapshot-restart needs the leader to cut its log while the follower is away.
  const snapshotCount = fault === "snapshot-restart" ? pick(rng, [20, 40]) : pick(rng, [20, 50, 100, 10_000])
  const weight = (): number => rng.int(5) + 1
  const mix = { put: weight(), get: weight(), del: rng.int(3), cas: weight(), txn: weight() }
  const leases = Array.from({ length: rng.int(4) }, (): LeasePlan => {
    const action = rng.int(4)
    return {
      ttl: pick(rng, [3, 4]),
      keys: 1 + rng.int(3),
      grantAtMs: rng.int(1_200),
      keepAliveAtMs: action === 1 ? between(rng, 500, 1_500) : undefined,
      revokeAtMs: action === 2 ? between(rng, 300, 2_000) : undefined,
    }
  })
  const watches = Array.from({ length: 1 + rng.int(4) }, (): WatchPlan => ({
    atMs: rng.int(trafficMs),
    from: rng.next() < 0.5 ? "old" : "current",
    range: rng.next() < 0.6 ? "prefix" : "key",
    prevKv: rng.next() < 0.7,
  }))
  const compactions = Array.from({ length: rng.int(3) }, () => ({ atMs: between(rng, 500, trafficMs - 500), behind: rng.int(30), physical: rng.next() < 0.5 }))
  const defrags = Array.from({ length: rng.int(2) }, () => between(rng, 300, trafficMs - 300))
  return {
    seed,
    round,
    size,
    snapshotCount,
    fault,
    faultAtMs,
    faultHoldMs,
    trafficMs,
    clientsPerMember: size === 5 ? 1 : 2,
    keys: between(rng, 3, 6),
    mix,
    leases,
    watches,
    compactions,
    defrags,
    victimPick: rng.int(1_000),
    trafficSeed: Math.floor(rng.next() * 0x1_0000_0000) >>> 0,
  }
}

/** One line: what the round does. */
export function describePlan(p: RoundPlan): string {
  return (
    `round ${p.round}: ${p.size} member(s), fault ${p.fault} at ${p.faultAtMs} ms for ${p.faultHoldMs} ms, ` +
    `traffic ${p.trafficMs} ms (${p.keys} keys, mix put ${p.mix.put} get ${p.mix.get} del ${p.mix.del} cas ${p.mix.cas} txn ${p.mix.txn}), ` +
    `--snapshot-count ${p.snapshotCount}, ${p.leases.length} lease(s), ${p.watches.length} late watch(es), ` +
    `${p.compactions.length} compaction(s), ${p.defrags.length} defrag(s)`
  )
}
