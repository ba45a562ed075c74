// Auto-compaction (--auto-compaction-mode, --auto-compaction-retention), as
// etcd's v3compactor does it:
// - revision: every 5 minutes, compact to (current revision - retention).
// - periodic: sample the current revision every retention/10 (at most every
//   hour for long retentions) and compact to the revision sampled a whole
//   retention ago, so that `retention` worth of history is always kept.
// Time comes from an injected clock and tick() is called by the server's
// timer, so the schedule is tested with a fake clock.

import type { AutoCompaction } from "../config/config"
import type { Clock } from "../lib/clock"

export const REVISION_COMPACTION_PERIOD_MS = 5 * 60_000
const HOUR_MS = 60 * 60_000

export interface CompactorDeps {
  clock: Clock
  currentRevision(): number
  compactedRevision(): number
  /** Proposes Compact(revision) through raft (only the leader compacts). */
  compact(revision: number): Promise<void>
  isLeader(): boolean
}

export class Compactor {
  private readonly samples: { atMs: number; revision: number }[] = []
  private lastRunMs: number
  private running = false

  constructor(
    private readonly mode: AutoCompaction,
    private readonly deps: CompactorDeps,
  ) {
    this.lastRunMs = deps.clock.now()
  }

  enabled(): boolean {
    return this.mode.mode === "periodic" ? this.mode.retentionMs > 0 : this.mode.retentionRevisions > 0
  }

  /** How often the server should call tick(). */
  tickIntervalMs(): number {
    if (this.mode.mode === "revision") return Math.min(REVISION_COMPACTION_PERIOD_MS, 1000)
    return Math.max(1, Math.min(this.samplePeriodMs(), 1000))
  }

  private samplePeriodMs(): number {
    if (this.mode.mode !== "periodic") return REVISION_COMPACTION_PERIOD_MS
    return this.mode.retentionMs > HOUR_MS ? HOUR_MS : Math.max(1, this.mode.retentionMs / 10)
  }

  /** The revision to compact to now, or undefined (also updates the samples). */
  due(): number | undefined {
    if (!this.enabled() || !this.deps.isLeader()) return undefined
    const now = this.deps.clock.now()
    if (this.mode.mode === "revision") {
      if (now - this.lastRunMs < REVISION_COMPACTION_PERIOD_MS) return undefined
      this.lastRunMs = now
      const target = this.deps.currentRevision() - this.mode.retentionRevisions
      return target > this.deps.compactedRevision() ? target : undefined
    }
    const last = this.samples[this.samples.length - 1]
    if (last === undefined || now - last.atMs >= this.samplePeriodMs()) {
      this.samples.push({ atMs: now, revision: this.deps.currentRevision() })
    }
    let target: number | undefined
    while (this.samples.length > 0 && now - this.samples[0]!.atMs >= this.mode.retentionMs) {
      target = this.samples.shift()!.revision
    }
    return target !== undefined && target > this.deps.compactedRevision() ? target : undefined
  }

  async tick(): Promise<void> {
    if (this.running) return
    const target = this.due()
    if (target === undefined) return
    this.running = true
    try {
      await this.deps.compact(target)
    } finally {
      this.running = false
    }
  }
}
