// Changing the cluster's membership and leadership on request (etcd's
// AddMember, RemoveMember, UpdateMember, PromoteMember, MoveLeader, and the
// leader's hand-over before it stops): the checks of --strict-reconfig-check
// and --max-learners, then a conf change through raft, answered once it is
// applied on this member (apply_entries.ts).

import { TskvError } from "../lib/errors"
import { ProposalDroppedError } from "../raft/errors"
import { ConfChangeType, type NodeId } from "../raft/types"
import type { ConfChangeContext } from "./apply_entries"
import type { ServerCore } from "./core"
import { computeMemberId } from "./ids"
import type { Member } from "./membership"
import { encodeCbor } from "./request"

/** etcd's HealthInterval: a peer link up for this long counts as connected for reconfiguration checks. */
const HEALTH_INTERVAL_MS = 5000

export class MemberAdmin {
  constructor(private readonly core: ServerCore) {}

  /** Whether the link to `id` has been up since at least `sinceMs` (this member always is). */
  private connectedSince(id: NodeId, sinceMs: number): boolean {
    if (id === this.core.memberId) return true
    const since = this.core.peers?.activeSince(id) ?? 0
    return since > 0 && since <= sinceMs
  }

  /** etcd: voters that published their attributes (have a name) count as started. */
  private startedVoters(exclude?: NodeId): number {
    return this.core.membership.voters().filter((m) => m.id !== exclude && m.name !== "").length
  }

  async memberAdd(peerUrls: string[], isLearner: boolean): Promise<Member> {
    if (peerUrls.length === 0 || !peerUrls.every(validPeerUrl)) throw new TskvError("memberBadURLs")
    for (const url of peerUrls) if (this.core.membership.byPeerUrl(url)) throw new TskvError("peerURLExist")
    if (isLearner && this.core.membership.learners().length >= this.core.config.maxLearners) throw new TskvError("tooManyLearners")
    if (!isLearner && this.core.config.strictReconfigCheck) {
      // etcd's mayAddMember: quorum of the new voter set must be started, and every voter connected lately.
      const voters = this.core.membership.voters().length + 1
      // (etcd's exception: a second voter may join a one-member cluster, the way back from --force-new-cluster or a restore.)
      const restoring = voters === 2 && this.startedVoters() === 1
      if (!restoring && this.startedVoters() < Math.floor(voters / 2) + 1) throw new TskvError("memberNotEnoughStarted")
      const since = performance.now() - HEALTH_INTERVAL_MS
      if (!this.core.membership.voters().every((m) => this.connectedSince(m.id, since))) throw new TskvError("unhealthy")
    }
    const id = computeMemberId(peerUrls, this.core.config.initialClusterToken, Math.floor(Date.now() / 1000))
    if (this.core.membership.has(id)) throw new TskvError("memberExist")
    const member: Member = { id, name: "", peerUrls: [...peerUrls], clientUrls: [], isLearner }
    await this.proposeConfChange(isLearner ? ConfChangeType.AddLearnerNode : ConfChangeType.AddNode, id, {
      member: { id, name: "", peerUrls: member.peerUrls, isLearner },
    })
    return member
  }

  async memberRemove(id: NodeId): Promise<void> {
    const m = this.core.membership.get(id)
    if (!m) throw new TskvError("memberNotFound")
    if (!m.isLearner && this.core.config.strictReconfigCheck) {
      // etcd's mayRemoveMember.
      const voters = this.core.membership.voters()
      const remaining = voters.length - 1
      if (remaining > 0 && this.startedVoters(id) < Math.floor(remaining / 2) + 1) throw new TskvError("memberNotEnoughStarted")
      const down = id !== this.core.memberId && (this.core.peers?.activeSince(id) ?? 0) === 0
      if (!down) {
        const since = performance.now() - HEALTH_INTERVAL_MS
        const active = voters.filter((v) => this.connectedSince(v.id, since)).length
        if (active - 1 < 1 + Math.floor((voters.length - 1) / 2)) throw new TskvError("unhealthy")
      }
    }
    await this.proposeConfChange(ConfChangeType.RemoveNode, id, {})
  }

  async memberUpdate(id: NodeId, peerUrls: string[]): Promise<void> {
    if (!this.core.membership.has(id)) throw new TskvError("memberNotFound")
    if (peerUrls.length === 0 || !peerUrls.every(validPeerUrl)) throw new TskvError("memberBadURLs")
    for (const url of peerUrls) {
      const owner = this.core.membership.byPeerUrl(url)
      if (owner && owner.id !== id) throw new TskvError("peerURLExist")
    }
    await this.proposeConfChange(ConfChangeType.UpdateNode, id, { peerUrls: [...peerUrls] })
  }

  /** Promotes a learner once it caught up (etcd: its match index >= 90% of the leader's); runs on the leader. */
  async memberPromote(id: NodeId): Promise<void> {
    if (!this.core.isLeader()) {
      if (!this.core.hooks.forwardMemberPromote) throw new TskvError("notLeader")
      return await this.core.hooks.forwardMemberPromote(id)
    }
    const m = this.core.membership.get(id)
    if (!m) throw new TskvError("memberNotFound")
    if (!m.isLearner) throw new TskvError("memberNotLearner")
    const status = this.core.node.status()
    const learner = status.progress.get(id)
    const leader = status.progress.get(this.core.memberId)
    if (!learner || !leader || learner.match < leader.match * 0.9) throw new TskvError("learnerNotReady")
    await this.proposeConfChange(ConfChangeType.AddNode, id, {})
  }

  /**
   * Before a graceful stop the leader hands leadership to the most up-to-date
   * voter, so the cluster does not wait out an election timeout.
   */
  async transferLeadershipForShutdown(): Promise<void> {
    if (this.core.stopped || !this.core.isLeader()) return
    const status = this.core.node.status()
    let best: { id: NodeId; match: number } | undefined
    for (const [id, pr] of status.progress) {
      if (id === this.core.memberId || pr.isLearner) continue
      if (!best || pr.match > best.match) best = { id, match: pr.match }
    }
    if (!best) return
    this.core.logger.info("handing leadership over before stopping", { to: best.id })
    this.core.node.transferLeader(best.id)
    this.core.kick()
    const deadline = performance.now() + this.core.config.electionMs
    while (this.core.lead !== best.id && performance.now() < deadline && !this.core.stopped) await Bun.sleep(this.core.config.heartbeatMs / 2)
  }

  /** Hands leadership to `target` and waits until it took over (Maintenance.MoveLeader). */
  async moveLeader(target: NodeId): Promise<void> {
    if (!this.core.isLeader()) throw new TskvError("notLeader")
    const m = this.core.membership.get(target)
    if (!m || m.isLearner) throw new TskvError("badLeaderTransferee")
    if (target === this.core.memberId) return
    this.core.node.transferLeader(target)
    this.core.kick()
    const deadline = performance.now() + this.core.requestTimeoutMs()
    while (this.core.lead !== target) {
      if (performance.now() > deadline) throw new TskvError("timeoutDueToLeaderFail")
      await Bun.sleep(this.core.config.heartbeatMs)
    }
  }

  /** Proposes a membership change and resolves when it is applied here. */
  private async proposeConfChange(type: ConfChangeType, nodeId: NodeId, ctx: Omit<ConfChangeContext, "origin" | "seq">): Promise<void> {
    if (this.core.stopped) throw new TskvError("stopped")
    // etcd's configure(): the clock starts before the proposal waits for a leader.
    const started = performance.now()
    if (!this.core.hasLeader()) await this.core.waitForLeader(this.core.config.electionMs * 2)
    const seq = this.core.ids.take()
    const context: ConfChangeContext = { origin: this.core.memberId, seq, ...ctx }
    const result = this.core.waiters.register(seq)
    try {
      this.core.node.proposeConfChange({ type, nodeId, context: encodeCbor(context) })
    } catch (e) {
      this.core.waiters.fail(seq, e)
    }
    this.core.kick()
    const timer = setTimeout(() => this.core.waiters.fail(seq, this.core.timeoutError(started)), this.core.requestTimeoutMs())
    try {
      const r = await result
      if (!r.ok) throw r.error
    } catch (e) {
      if (e instanceof ProposalDroppedError) {
        if (e.reason === "confChangePending") throw new TskvError("timeout")
        throw new TskvError(e.reason === "noLeader" ? "noLeader" : "leaderChanged")
      }
      throw e
    } finally {
      clearTimeout(timer)
    }
  }
}

function validPeerUrl(url: string): boolean {
  try {
    const u = new URL(url)
    return (u.protocol === "http:" || u.protocol === "https:") && u.hostname !== "" && u.port !== "" && (u.pathname === "" || u.pathname === "/")
  } catch {
    return false
  }
}
