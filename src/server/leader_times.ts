// When leadership changed, as etcd 3.4 records it. Two clocks:
// - electedAt, etcd's leadElectedTime: set only when this member itself
//   becomes leader; parseProposeCtxErr answers "request timed out, possibly
//   due to previous leader failure" for a proposal that started within two
//   election timeouts before it.
// - leaderSince, the v2 stats' leaderInfo.startTime: when this member last saw
//   a new leader (itself, or another); the member's start until then.
// It keeps the leader it last saw, so a change is compared before it is stored.

import { type NodeId, NONE } from "../raft/types"

export class LeaderTimes {
  /** performance.now() when this member last became leader; 0: never. */
  electedAt = 0
  /** performance.now() since when the current leader leads, as this member saw it. */
  leaderSince: number
  private lead: NodeId = NONE

  constructor(startedAt: number) {
    this.leaderSince = startedAt
  }

  /** A Ready's soft state: the leader is `lead` (NONE: none), this member leads or not. */
  observe(options: { lead: NodeId; isLeader: boolean; now: number }): void {
    const newLeader = options.lead !== NONE && options.lead !== this.lead
    this.lead = options.lead
    if (!newLeader) return
    this.leaderSince = options.now
    if (options.isLeader) this.electedAt = options.now
  }

  /** etcd's parseProposeCtxErr: did a proposal started at `startedAt` (performance.now()) time out because the previous leader failed? */
  dueToLeaderFail(startedAt: number, electionMs: number): boolean {
    if (this.electedAt === 0) return false
    return startedAt > this.electedAt - 2 * electionMs && startedAt < this.electedAt
  }
}
