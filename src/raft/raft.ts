// The Raft state machine (Ongaro & Ousterhout §5; Ongaro's thesis §3, §4.2.2,
// §6.4, §9.6; etcd-io/raft's design). Pure: no I/O, no clock, no randomness
// of its own. Input is step(message) and tick(); output is the messages in
// `msgs`, the read states in `readStates` and the log's unstable and
// committed entries, which RaftNode packs into a Ready.
//
// Membership changes are single-server changes (thesis §4.1, §4.3), and take
// effect when the entry is applied (applyConfChange), as in etcd. Why it is
// safe:
//  - Any two configurations that differ by one voter have overlapping
//    majorities, so two leaders cannot be elected in one term even when
//    members disagree on which of two adjacent configurations is current.
//  - Members never disagree by more than one step: a leader accepts a new
//    ConfChange only after it has applied every earlier one
//    (pendingConfIndex <= applied), and on election it sets pendingConfIndex
//    to its last index, so it first applies its own term's empty entry and
//    with it every change an earlier leader left uncommitted. This is the
//    fix for the single-server-change bug found by Ongaro (raft-dev, 2015):
//    a new leader must commit an entry of its term before changing the
//    configuration.
//  - A member with a committed but unapplied ConfChange does not campaign,
//    so it cannot win with a stale configuration.

import { assert } from "../lib/assert"
import type { Prng } from "../lib/prng"
import { decodeConfChange } from "./conf_change_codec"
import { CompactedError, ProposalDroppedError, ReadIndexDroppedError, SnapshotTemporarilyUnavailableError } from "./errors"
import { RaftLog } from "./log"
import { Progress } from "./progress"
import type { Storage } from "./storage"
import type { ConfChange, ConfState, Entry, Message, NodeId, ReadState, Snapshot } from "./types"
import { ConfChangeType, EntryType, MessageType, NONE, StateType } from "./types"

export interface RaftOptions {
  id: NodeId
  /** Initial voters, used only when storage holds no configuration (a fresh cluster). */
  peers?: readonly NodeId[]
  learners?: readonly NodeId[]
  storage: Storage
  prng: Prng
  /** Ticks without hearing from a leader before campaigning (randomized in [n, 2n)). Default 10. */
  electionTicks?: number
  /** Ticks between a leader's heartbeats. Default 1. */
  heartbeatTicks?: number
  /** Thesis §9.6: ask before disrupting. Default true. */
  preVote?: boolean
  /** Thesis §6.2: a leader that has not heard from a quorum for an election timeout steps down. Default true. */
  checkQuorum?: boolean
  maxSizePerMsgBytes?: number
  maxInflightMsgs?: number
  /** Upper bound of committed entries handed out per Ready. Default 16 MiB. */
  maxCommittedBytesPerReady?: number
  /** The last index the application has applied (restart). */
  applied?: number
}

/** The context of a Vote sent because of a leader transfer: it bypasses the leader lease. */
export const CAMPAIGN_TRANSFER = new TextEncoder().encode("CampaignTransfer")

const NO_ENTRIES: Entry[] = Object.freeze([]) as unknown as Entry[]
const EMPTY_DATA = new Uint8Array(0)

type CampaignType = "preElection" | "election" | "transfer"
type VoteResult = "won" | "lost" | "pending"

interface ReadRequest {
  index: number
  /** Who asked: NONE (or the leader itself) for a local request. */
  from: NodeId
  ctx: Uint8Array
  acks: Set<NodeId>
}

function bytesKey(b: Uint8Array): string {
  let s = ""
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]!)
  return s
}

function equalBytes(a: Uint8Array | undefined, b: Uint8Array): boolean {
  if (a === undefined || a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

export class Raft {
  readonly id: NodeId
  term = 0
  vote: NodeId = NONE
  lead: NodeId = NONE
  state: StateType = StateType.Follower
  readonly log: RaftLog
  /** Progress of every voter and learner (the leader's view; kept on all members for the configuration). */
  readonly prs = new Map<NodeId, Progress>()
  readonly voters = new Set<NodeId>()
  readonly learners = new Set<NodeId>()
  private readonly votes = new Map<NodeId, boolean>()
  msgs: Message[] = []
  readStates: ReadState[] = []

  readonly electionTimeout: number
  readonly heartbeatTimeout: number
  private randomizedElectionTimeout = 0
  electionElapsed = 0
  private heartbeatElapsed = 0
  readonly preVote: boolean
  readonly checkQuorum: boolean
  private readonly maxMsgSize: number
  private readonly maxInflight: number
  private readonly prng: Prng

  leadTransferee: NodeId = NONE
  /** Index of the last ConfChange the leader appended (or its last index at election). */
  pendingConfIndex = 0
  /** Leader: entries were appended since the last broadcast; flushAppends() sends them in batches. */
  private appendPending = false

  private readonly pendingReads = new Map<string, ReadRequest>()
  private readQueue: string[] = []
  private readRoundKey: string | undefined = undefined
  private pendingReadIndexMessages: Message[] = []

  constructor(options: RaftOptions) {
    this.id = options.id
    assert(this.id !== NONE, "raft id must not be 0")
    this.electionTimeout = options.electionTicks ?? 10
    this.heartbeatTimeout = options.heartbeatTicks ?? 1
    assert(this.heartbeatTimeout > 0, "heartbeatTicks must be > 0")
    assert(this.electionTimeout > this.heartbeatTimeout, "electionTicks must be > heartbeatTicks")
    this.preVote = options.preVote ?? true
    this.checkQuorum = options.checkQuorum ?? true
    this.maxMsgSize = options.maxSizePerMsgBytes ?? 1024 * 1024
    this.maxInflight = options.maxInflightMsgs ?? 512
    assert(this.maxInflight > 0, "maxInflightMsgs must be > 0")
    this.prng = options.prng
    this.log = new RaftLog(options.storage, options.maxCommittedBytesPerReady ?? 16 * 1024 * 1024)

    const { hardState, confState } = options.storage.initialState()
    let voters = confState.voters
    let learners = confState.learners
    if (voters.length === 0 && learners.length === 0) {
      voters = [...(options.peers ?? [])]
      learners = [...(options.learners ?? [])]
    }
    for (const v of voters) this.addProgress(v, false)
    for (const l of learners) this.addProgress(l, true)
    if (hardState.term !== 0 || hardState.commit !== 0) {
      assert(hardState.commit >= this.log.committed, () =>
        `hardState.commit ${hardState.commit} below snapshot index ${this.log.committed}`)
      assert(hardState.commit <= this.log.lastIndex(), () =>
        `hardState.commit ${hardState.commit} beyond last index ${this.log.lastIndex()}`)
      this.log.committed = hardState.commit
      this.term = hardState.term
      this.vote = hardState.vote
    }
    if (options.applied !== undefined && options.applied > this.log.committed) {
      // The application may apply committed entries while the hard state that records their
      // commit is still being written (the server does, during the fsync): after a crash its
      // applied index can be ahead of the durable commit index. Applied entries were committed,
      // and the commit index is volatile state in Raft, so it is raised to what was applied.
      assert(options.applied <= this.log.lastIndex(), () =>
        `applied ${options.applied} beyond last index ${this.log.lastIndex()}`)
      this.log.committed = options.applied
    }
    if (options.applied !== undefined && options.applied > 0) this.log.appliedTo(options.applied)
    this.becomeFollower(this.term, NONE)
  }

  // ---- configuration -------------------------------------------------------

  private addProgress(id: NodeId, isLearner: boolean): void {
    if (id === this.id) this.removedVoter = false
    const existing = this.prs.get(id)
    if (existing !== undefined) {
      if (!isLearner && existing.isLearner) {
        existing.isLearner = false
        this.learners.delete(id)
        this.voters.add(id)
      }
      return
    }
    const pr = new Progress({ next: this.log.lastIndex() + 1, maxInflightMsgs: this.maxInflight, isLearner })
    pr.recentActive = true
    this.prs.set(id, pr)
    if (isLearner) this.learners.add(id)
    else this.voters.add(id)
  }

  private removeProgress(id: NodeId): void {
    this.prs.delete(id)
    this.voters.delete(id)
    this.learners.delete(id)
  }

  confState(): ConfState {
    return { voters: [...this.voters], learners: [...this.learners] }
  }

  /**
   * A voter that applied its own removal may still be needed: the others may
   * not know that the removal committed, and it may hold the longest log
   * (thesis §4.2.2: a server not in its latest configuration still starts
   * elections, without counting its own vote). Cleared when it is added back.
   */
  private removedVoter = false

  promotable(): boolean {
    return this.voters.has(this.id) || this.removedVoter
  }

  private quorum(): number {
    return Math.floor(this.voters.size / 2) + 1
  }

  /**
   * Applies a committed ConfChange (single-server change; see the header).
   * Idempotent: re-applying a change already in effect changes nothing.
   */
  applyConfChange(cc: ConfChange): ConfState {
    switch (cc.type) {
      case ConfChangeType.AddNode:
        this.addProgress(cc.nodeId, false)
        break
      case ConfChangeType.AddLearnerNode:
        // Demoting a voter is not supported; a learner add for a voter changes nothing.
        if (!this.voters.has(cc.nodeId)) this.addProgress(cc.nodeId, true)
        break
      case ConfChangeType.RemoveNode:
        if (cc.nodeId === this.id && this.voters.has(this.id)) this.removedVoter = true
        this.removeProgress(cc.nodeId)
        break
      case ConfChangeType.UpdateNode:
        break
    }
    if (this.state === StateType.Leader) {
      if (!this.prs.has(this.id)) {
        // The leader removed itself. It refuses proposals from now on but
        // keeps leading until it has handed leadership to a caught-up voter
        // (TimeoutNow, retried every election timeout): stepping down at once
        // could leave the rest without the commit of the removal, or without
        // the entries only this member holds, and unable to elect anyone.
        this.bcastAppend()
        this.handOverAfterRemoval()
      } else if (this.voters.size > 0) {
        if (this.maybeCommit()) this.bcastAppend()
        else for (const [id, pr] of this.prs) if (id !== this.id) this.sendAppend(id, pr, false)
        if (this.leadTransferee !== NONE && !this.voters.has(this.leadTransferee)) this.abortLeaderTransfer()
        this.releaseReads()
      }
    }
    return this.confState()
  }

  /** Rebuilds the configuration from a snapshot's ConfState. */
  private restoreConf(cs: ConfState): void {
    this.prs.clear()
    this.voters.clear()
    this.learners.clear()
    for (const v of cs.voters) this.addProgress(v, false)
    for (const l of cs.learners) this.addProgress(l, true)
  }

  // ---- state transitions -----------------------------------------------------

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term
      this.vote = NONE
    }
    this.lead = NONE
    this.electionElapsed = 0
    this.heartbeatElapsed = 0
    this.randomizedElectionTimeout = this.electionTimeout + this.prng.int(this.electionTimeout)
    this.abortLeaderTransfer()
    this.votes.clear()
    const last = this.log.lastIndex()
    for (const [id, pr] of this.prs) {
      const fresh = new Progress({ next: last + 1, maxInflightMsgs: this.maxInflight, isLearner: pr.isLearner })
      if (id === this.id) fresh.match = this.log.persistedIndex()
      this.prs.set(id, fresh)
    }
    this.pendingConfIndex = 0
    this.appendPending = false
    this.pendingReads.clear()
    this.readQueue = []
    this.readRoundKey = undefined
    this.pendingReadIndexMessages = []
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.reset(term)
    this.lead = lead
    this.state = StateType.Follower
  }

  private becomeCandidate(): void {
    assert(this.state !== StateType.Leader, "invalid transition leader -> candidate")
    this.reset(this.term + 1)
    this.vote = this.id
    this.state = StateType.Candidate
  }

  private becomePreCandidate(): void {
    assert(this.state !== StateType.Leader, "invalid transition leader -> pre-candidate")
    // Neither the term nor the vote changes (thesis §9.6).
    this.votes.clear()
    this.lead = NONE
    this.state = StateType.PreCandidate
  }

  private becomeLeader(): void {
    assert(this.state !== StateType.Follower, "invalid transition follower -> leader")
    this.reset(this.term)
    this.lead = this.id
    this.state = StateType.Leader
    this.prs.get(this.id)?.becomeReplicate()
    // No ConfChange until everything up to here, including the empty entry, is applied.
    this.pendingConfIndex = this.log.lastIndex()
    // §5.4.2 / thesis §6.4: an empty entry of the new term commits the earlier ones.
    this.appendEntries([{ term: 0, index: 0, type: EntryType.Normal, data: EMPTY_DATA }])
    // A removed member leads only to hand over (see promotable()).
    if (!this.prs.has(this.id)) this.handOverAfterRemoval()
  }

  // ---- ticks -------------------------------------------------------------

  tick(): void {
    if (this.state === StateType.Leader) this.tickHeartbeat()
    else this.tickElection()
  }

  private tickElection(): void {
    this.electionElapsed++
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0
      this.step(this.local(MessageType.Hup))
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++
    this.electionElapsed++
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0
      if (this.checkQuorum) this.step(this.local(MessageType.CheckQuorum))
      // A transfer that did not finish within an election timeout is abandoned (thesis §3.10).
      if (this.state === StateType.Leader && this.leadTransferee !== NONE) this.abortLeaderTransfer()
      if (this.state === StateType.Leader && !this.prs.has(this.id)) this.handOverAfterRemoval()
    }
    if (this.state !== StateType.Leader) return
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0
      this.step(this.local(MessageType.Beat))
    }
  }

  private local(type: MessageType): Message {
    return this.message(type, NONE, { from: this.id, term: 0 })
  }

  // ---- messages ------------------------------------------------------------

  private message(type: MessageType, to: NodeId, fields: Partial<Message>): Message {
    // Built field by field: an object spread here costs a fifth of the hot path.
    const m: Message = {
      type,
      from: this.id,
      to,
      term: fields.term ?? this.term,
      logTerm: fields.logTerm ?? 0,
      index: fields.index ?? 0,
      entries: fields.entries ?? NO_ENTRIES,
      commit: fields.commit ?? 0,
      reject: fields.reject ?? false,
      rejectHint: fields.rejectHint ?? 0,
    }
    if (fields.from !== undefined) m.from = fields.from
    if (fields.context !== undefined) m.context = fields.context
    if (fields.snapshot !== undefined) m.snapshot = fields.snapshot
    return m
  }

  private send(m: Message): void {
    this.msgs.push(m)
  }

  // ---- step --------------------------------------------------------------

  step(m: Message): void {
    if (m.term === 0) {
      // local message, or a forwarded proposal / read index
    } else if (m.term > this.term) {
      if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
        const force = equalBytes(m.context, CAMPAIGN_TRANSFER)
        const inLease = this.checkQuorum && this.lead !== NONE && this.electionElapsed < this.electionTimeout
        // Thesis §4.2.3: a member that heard from a leader recently ignores requests to vote.
        if (!force && inLease) return
      }
      if (m.type === MessageType.PreVote) {
        // Never change the term for a pre-vote request.
      } else if (m.type === MessageType.PreVoteResp && !m.reject) {
        // A granted pre-vote carries the future term; counted below without changing ours.
      } else if (m.type === MessageType.App || m.type === MessageType.Heartbeat || m.type === MessageType.Snap) {
        this.becomeFollower(m.term, m.from)
      } else {
        this.becomeFollower(m.term, NONE)
      }
    } else if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === MessageType.Heartbeat || m.type === MessageType.App)) {
        // A stale leader, perhaps cut off by check-quorum elsewhere or unable to
        // win with pre-vote: tell it the newer term so it steps down.
        this.send(this.message(MessageType.AppResp, m.from, {}))
      } else if (m.type === MessageType.PreVote) {
        this.send(this.message(MessageType.PreVoteResp, m.from, { reject: true }))
      }
      return
    }

    switch (m.type) {
      case MessageType.Hup:
        this.hup(m.context !== undefined && equalBytes(m.context, CAMPAIGN_TRANSFER) ? "transfer" : undefined)
        return
      case MessageType.Vote:
      case MessageType.PreVote: {
        const canVote =
          this.vote === m.from ||
          (this.vote === NONE && this.lead === NONE) ||
          (m.type === MessageType.PreVote && m.term > this.term)
        const respType = m.type === MessageType.Vote ? MessageType.VoteResp : MessageType.PreVoteResp
        // §5.4.1: vote only for a candidate whose log is at least as up to date.
        if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
          this.send(this.message(respType, m.from, { term: m.term }))
          if (m.type === MessageType.Vote) {
            this.electionElapsed = 0
            this.vote = m.from
          }
        } else {
          this.send(this.message(respType, m.from, { reject: true }))
        }
        return
      }
      default:
        break
    }
    switch (this.state) {
      case StateType.Leader:
        this.stepLeader(m)
        break
      case StateType.Candidate:
      case StateType.PreCandidate:
        this.stepCandidate(m)
        break
      case StateType.Follower:
        this.stepFollower(m)
        break
    }
  }

  private hup(kind: "transfer" | undefined): void {
    if (this.state === StateType.Leader) return
    if (!this.promotable()) return
    if (this.hasUnappliedConfChanges()) return
    if (kind === "transfer") this.campaign("transfer")
    else this.campaign(this.preVote ? "preElection" : "election")
  }

  private hasUnappliedConfChanges(): boolean {
    const lo = Math.max(this.log.applied + 1, this.log.firstIndex())
    if (this.log.committed < lo) return false
    for (const e of this.log.slice(lo, this.log.committed + 1, Number.POSITIVE_INFINITY)) {
      if (e.type === EntryType.ConfChange) return true
    }
    return false
  }

  private campaign(kind: CampaignType): void {
    let voteMsg: MessageType
    let term: number
    if (kind === "preElection") {
      this.becomePreCandidate()
      voteMsg = MessageType.PreVote
      term = this.term + 1 // the term we would campaign at; ours does not change
    } else {
      this.becomeCandidate()
      voteMsg = MessageType.Vote
      term = this.term
    }
    const respType = voteMsg === MessageType.Vote ? MessageType.VoteResp : MessageType.PreVoteResp
    if (this.poll(this.id, respType, true) === "won") {
      if (kind === "preElection") this.campaign("election")
      else this.becomeLeader()
      return
    }
    const lastIndex = this.log.lastIndex()
    const lastTerm = this.log.lastTerm()
    for (const id of this.voters) {
      if (id === this.id) continue
      const fields: Partial<Message> = { term, index: lastIndex, logTerm: lastTerm }
      if (kind === "transfer") fields.context = CAMPAIGN_TRANSFER
      this.send(this.message(voteMsg, id, fields))
    }
  }

  private poll(id: NodeId, _type: MessageType, granted: boolean): VoteResult {
    if (!this.votes.has(id)) this.votes.set(id, granted)
    let yes = 0
    let no = 0
    for (const v of this.voters) {
      const g = this.votes.get(v)
      if (g === true) yes++
      else if (g === false) no++
    }
    const q = this.quorum()
    if (yes >= q) return "won"
    if (no > this.voters.size - q) return "lost"
    return "pending"
  }

  // ---- leader ----------------------------------------------------------------

  private stepLeader(m: Message): void {
    switch (m.type) {
      case MessageType.Beat:
        this.bcastHeartbeat(this.lastPendingReadCtx())
        return
      case MessageType.CheckQuorum:
        if (!this.quorumActive()) {
          this.becomeFollower(this.term, NONE)
        }
        for (const [id, pr] of this.prs) if (id !== this.id) pr.recentActive = false
        return
      case MessageType.Prop:
        this.leaderPropose(m)
        return
      case MessageType.ReadIndex:
        this.leaderReadIndex(m)
        return
      case MessageType.App:
      case MessageType.Heartbeat:
      case MessageType.Snap:
        assert(false, () => `two leaders in term ${this.term}: ${this.id} and ${m.from}`)
        return
      default:
        break
    }
    const pr = this.prs.get(m.from)
    if (pr === undefined) return
    switch (m.type) {
      case MessageType.AppResp:
        this.handleAppendResponse(m, pr)
        return
      case MessageType.HeartbeatResp:
        pr.recentActive = true
        pr.probeSent = false
        // The follower is alive; if the window is full its acknowledgements
        // were probably lost: free a slot so that the next append re-syncs it.
        if (pr.state === "replicate" && pr.inflights.full()) pr.inflights.freeFirstOne()
        if (pr.match < this.log.lastIndex()) this.sendAppend(m.from, pr, true)
        if (m.context !== undefined && m.context.length > 0) this.ackRead(m.from, m.context)
        return
      case MessageType.SnapStatus:
        if (pr.state !== "snapshot") return
        if (m.reject) pr.pendingSnapshot = 0
        pr.becomeProbe()
        // Wait for a heartbeat response before probing again.
        pr.probeSent = true
        return
      case MessageType.Unreachable:
        if (pr.state === "replicate") pr.becomeProbe()
        return
      case MessageType.TransferLeader:
        this.leaderTransfer(m.from, pr)
        return
      default:
        return
    }
  }

  private leaderPropose(m: Message): void {
    assert(m.entries.length > 0, "proposal without entries")
    if (!this.prs.has(this.id)) throw new ProposalDroppedError("removed")
    if (this.leadTransferee !== NONE) throw new ProposalDroppedError("leaderTransfer")
    let confIndex = 0
    for (let k = 0; k < m.entries.length; k++) {
      if (m.entries[k]!.type !== EntryType.ConfChange) continue
      if (this.pendingConfIndex > this.log.applied || confIndex !== 0) throw new ProposalDroppedError("confChangePending")
      confIndex = this.log.lastIndex() + k + 1
    }
    if (confIndex !== 0) this.pendingConfIndex = confIndex
    this.appendEntries(m.entries)
  }

  /** Appends new entries of this term; they go out in batches at the next flushAppends(). */
  private appendEntries(es: readonly Entry[]): void {
    assert(this.state === StateType.Leader, "only a leader appends new entries")
    let index = this.log.lastIndex()
    const fresh: Entry[] = new Array<Entry>(es.length)
    for (let k = 0; k < es.length; k++) {
      const e = es[k]!
      fresh[k] = { term: this.term, index: ++index, type: e.type, data: e.data }
    }
    this.log.append(fresh)
    // The leader counts its own entries only once they are persisted (advance()).
    this.appendPending = true
  }

  /** Sends appended-but-unsent entries to every follower, batched per message. */
  flushAppends(): void {
    if (!this.appendPending) return
    this.appendPending = false
    if (this.state === StateType.Leader) this.bcastAppend()
  }

  /** The server persisted entries up to the log's persisted index: count the leader's own copy. */
  onPersisted(): void {
    if (this.state !== StateType.Leader) return
    const pr = this.prs.get(this.id)
    if (pr === undefined) return
    if (pr.maybeUpdate(this.log.persistedIndex()) && this.maybeCommit()) this.bcastAppend()
  }

  private quorumActive(): boolean {
    let active = 0
    for (const id of this.voters) {
      if (id === this.id || this.prs.get(id)?.recentActive === true) active++
    }
    return active >= this.quorum()
  }

  private readonly matchScratch: number[] = []

  /** Commits the largest index a quorum of voters has persisted, if it is of this term. */
  private maybeCommit(): boolean {
    const matches = this.matchScratch
    matches.length = 0
    for (const id of this.voters) matches.push(this.prs.get(id)?.match ?? 0)
    if (matches.length === 0) return false
    matches.sort((a, b) => b - a)
    const mci = matches[this.quorum() - 1]!
    const committed = this.log.maybeCommit(mci, this.term)
    if (committed) this.releaseReads()
    return committed
  }

  private handleAppendResponse(m: Message, pr: Progress): void {
    pr.recentActive = true
    if (m.reject) {
      // Fast back-tracking: jump to the follower's hint of its last matching index.
      let nextProbe = m.rejectHint
      if (m.logTerm > 0) nextProbe = this.log.findConflictByTerm(m.rejectHint, m.logTerm)[0]
      if (pr.maybeDecrTo(m.index, nextProbe)) {
        if (pr.state === "replicate") pr.becomeProbe()
        this.sendAppend(m.from, pr, true)
      }
      return
    }
    const oldPaused = pr.isPaused()
    if (!pr.maybeUpdate(m.index)) return
    if (pr.state === "probe") pr.becomeReplicate()
    else if (pr.state === "snapshot" && pr.match >= pr.pendingSnapshot) {
      pr.becomeProbe()
      pr.becomeReplicate()
    } else if (pr.state === "replicate") pr.inflights.freeLE(m.index)

    if (this.maybeCommit()) this.bcastAppend()
    else if (oldPaused) this.sendAppend(m.from, pr, true)
    // Stream whatever the window allows now.
    while (this.sendAppend(m.from, pr, false)) {}
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
      this.send(this.message(MessageType.TimeoutNow, m.from, {}))
    }
  }

  /**
   * Sends the entries `to` is missing (or a snapshot when they are
   * compacted). With sendIfEmpty false, sends only when there are entries.
   */
  private sendAppend(to: NodeId, pr: Progress, sendIfEmpty: boolean): boolean {
    if (pr.isPaused()) return false
    const prevIndex = pr.next - 1
    const prevTerm = this.log.term(prevIndex)
    let ents: Entry[] | undefined
    if (prevTerm !== undefined) {
      try {
        ents = this.log.entries(pr.next, this.maxMsgSize)
      } catch (e) {
        if (!(e instanceof CompactedError)) throw e
      }
    }
    if (prevTerm === undefined || ents === undefined) return this.sendSnapshot(to, pr)
    if (ents.length === 0 && !sendIfEmpty) return false
    this.send(this.message(MessageType.App, to, {
      index: prevIndex,
      logTerm: prevTerm,
      entries: ents,
      commit: this.log.committed,
    }))
    if (ents.length > 0) {
      const last = ents[ents.length - 1]!.index
      if (pr.state === "replicate") {
        pr.optimisticUpdate(last)
        pr.inflights.add(last)
      } else if (pr.state === "probe") {
        pr.probeSent = true
      }
    }
    return true
  }

  private sendSnapshot(to: NodeId, pr: Progress): boolean {
    if (!pr.recentActive) return false
    let snapshot: Snapshot
    try {
      snapshot = this.log.snapshot()
    } catch (e) {
      if (e instanceof SnapshotTemporarilyUnavailableError) return false
      throw e
    }
    assert(snapshot.metadata.index > 0, "need a non-empty snapshot to catch up a follower")
    pr.becomeSnapshot(snapshot.metadata.index)
    this.send(this.message(MessageType.Snap, to, { snapshot }))
    return true
  }

  bcastAppend(): void {
    for (const [id, pr] of this.prs) {
      if (id === this.id) continue
      this.sendAppend(id, pr, true)
      // A replicating follower gets everything the inflight window allows, in maxSizePerMsg batches.
      if (pr.state === "replicate") while (this.sendAppend(id, pr, false)) {}
    }
  }

  private bcastHeartbeat(ctx: Uint8Array | undefined): void {
    for (const [id, pr] of this.prs) {
      if (id === this.id) continue
      // Never tell a follower to commit beyond what it is known to have.
      const fields: Partial<Message> = { commit: Math.min(pr.match, this.log.committed) }
      if (ctx !== undefined) fields.context = ctx
      this.send(this.message(MessageType.Heartbeat, id, fields))
    }
  }

  private leaderTransfer(transferee: NodeId, pr: Progress): void {
    if (pr.isLearner) return
    if (this.leadTransferee !== NONE) {
      if (this.leadTransferee === transferee) return
      this.abortLeaderTransfer()
    }
    if (transferee === this.id) return
    // The transfer must finish within an election timeout (see tickHeartbeat).
    this.electionElapsed = 0
    this.leadTransferee = transferee
    if (pr.match === this.log.lastIndex()) this.send(this.message(MessageType.TimeoutNow, transferee, {}))
    else this.sendAppend(transferee, pr, true)
  }

  /** A removed leader transfers leadership to the most up-to-date voter. */
  private handOverAfterRemoval(): void {
    let best: NodeId = NONE
    let bestMatch = -1
    for (const id of this.voters) {
      const match = this.prs.get(id)!.match
      if (match > bestMatch) {
        best = id
        bestMatch = match
      }
    }
    if (best !== NONE) this.leaderTransfer(best, this.prs.get(best)!)
  }

  abortLeaderTransfer(): void {
    this.leadTransferee = NONE
  }

  // ---- read index (thesis §6.4) -------------------------------------------------

  private committedEntryInCurrentTerm(): boolean {
    return this.log.term(this.log.committed) === this.term
  }

  private leaderReadIndex(m: Message): void {
    const ctx = m.context ?? EMPTY_DATA
    // A new leader does not know the commit index until it commits an entry of its term.
    // A lone voter too: what it applied before a restart may be beyond the commit index it
    // had persisted (a pipelined member applies before the hard state is durable).
    if (!this.committedEntryInCurrentTerm()) {
      this.pendingReadIndexMessages.push(m)
      return
    }
    if (this.voters.size === 1 && this.voters.has(this.id)) {
      this.respondRead({ index: this.log.committed, from: m.from, ctx, acks: new Set() })
      return
    }
    const key = bytesKey(ctx)
    if (this.pendingReads.has(key)) return
    this.pendingReads.set(key, { index: this.log.committed, from: m.from, ctx, acks: new Set([this.id]) })
    this.readQueue.push(key)
    // One heartbeat round serves every read queued while it is out; the next
    // round (or the next regular heartbeat) carries the newest pending context.
    if (this.readRoundKey === undefined) {
      this.readRoundKey = key
      this.bcastHeartbeat(ctx)
    }
  }

  private lastPendingReadCtx(): Uint8Array | undefined {
    const key = this.readQueue[this.readQueue.length - 1]
    return key === undefined ? undefined : this.pendingReads.get(key)?.ctx
  }

  private ackRead(from: NodeId, ctx: Uint8Array): void {
    const key = bytesKey(ctx)
    const req = this.pendingReads.get(key)
    if (req === undefined) return
    req.acks.add(from)
    let yes = 0
    for (const id of this.voters) if (req.acks.has(id)) yes++
    if (yes < this.quorum()) return
    // Everything queued before this request is confirmed too.
    let k = 0
    while (k < this.readQueue.length) {
      const qk = this.readQueue[k]!
      k++
      const r = this.pendingReads.get(qk)!
      this.pendingReads.delete(qk)
      this.respondRead(r)
      if (qk === key) break
    }
    this.readQueue = this.readQueue.slice(k)
    if (this.readRoundKey !== undefined && !this.pendingReads.has(this.readRoundKey)) {
      this.readRoundKey = undefined
      const next = this.lastPendingReadCtx()
      if (next !== undefined) {
        this.readRoundKey = this.readQueue[this.readQueue.length - 1]
        this.bcastHeartbeat(next)
      }
    }
  }

  private respondRead(r: ReadRequest): void {
    if (r.from === NONE || r.from === this.id) {
      this.readStates.push({ index: r.index, requestCtx: r.ctx })
    } else {
      this.send(this.message(MessageType.ReadIndexResp, r.from, { index: r.index, context: r.ctx }))
    }
  }

  /** After the first commit of the term, serve the reads that waited for it. */
  private releaseReads(): void {
    if (this.pendingReadIndexMessages.length === 0 || !this.committedEntryInCurrentTerm()) return
    const waiting = this.pendingReadIndexMessages
    this.pendingReadIndexMessages = []
    for (const m of waiting) this.leaderReadIndex(m)
  }

  // ---- candidate -----------------------------------------------------------------

  private stepCandidate(m: Message): void {
    const myResp = this.state === StateType.PreCandidate ? MessageType.PreVoteResp : MessageType.VoteResp
    switch (m.type) {
      case MessageType.Prop:
        throw new ProposalDroppedError("noLeader")
      case MessageType.ReadIndex:
        throw new ReadIndexDroppedError("noLeader")
      case MessageType.App:
        this.becomeFollower(m.term, m.from)
        this.handleAppendEntries(m)
        return
      case MessageType.Heartbeat:
        this.becomeFollower(m.term, m.from)
        this.handleHeartbeat(m)
        return
      case MessageType.Snap:
        this.becomeFollower(m.term, m.from)
        this.handleSnapshot(m)
        return
      case MessageType.PreVoteResp:
      case MessageType.VoteResp: {
        if (m.type !== myResp) return
        const result = this.poll(m.from, m.type, !m.reject)
        if (result === "won") {
          if (this.state === StateType.PreCandidate) this.campaign("election")
          else {
            this.becomeLeader()
            this.flushAppends()
          }
        } else if (result === "lost") {
          // A pre-vote rejection carries our own term, so the term stays.
          this.becomeFollower(this.term, NONE)
        }
        return
      }
      default:
        return
    }
  }

  // ---- follower ------------------------------------------------------------------

  private stepFollower(m: Message): void {
    switch (m.type) {
      case MessageType.Prop:
        if (this.lead === NONE) throw new ProposalDroppedError("noLeader")
        if (!this.prs.has(this.id) && this.prs.size > 0) throw new ProposalDroppedError("removed")
        this.send({ ...m, to: this.lead, from: this.id, term: 0 })
        return
      case MessageType.App:
        this.electionElapsed = 0
        this.lead = m.from
        this.handleAppendEntries(m)
        return
      case MessageType.Heartbeat:
        this.electionElapsed = 0
        this.lead = m.from
        this.handleHeartbeat(m)
        return
      case MessageType.Snap:
        this.electionElapsed = 0
        this.lead = m.from
        this.handleSnapshot(m)
        return
      case MessageType.TransferLeader:
        // Not forwarded: its `from` names the transferee, not this member, and the peer
        // transport only carries messages from the member that sends them. The server asks
        // the leader itself (MoveLeader is refused elsewhere with "not leader").
        return
      case MessageType.TimeoutNow:
        // Thesis §3.10: campaign at once, skipping pre-vote, bypassing leases.
        this.hup("transfer")
        return
      case MessageType.ReadIndex:
        // A read another member sent while this one led (queued across a pause): dropped,
        // its sender retries with the leader it knows. Only our own reads are forwarded.
        if (m.from !== this.id) return
        if (this.lead === NONE) throw new ReadIndexDroppedError("noLeader")
        this.send({ ...m, to: this.lead, term: 0 })
        return
      case MessageType.ReadIndexResp:
        this.readStates.push({ index: m.index, requestCtx: m.context ?? EMPTY_DATA })
        return
      default:
        return
    }
  }

  private handleAppendEntries(m: Message): void {
    assert(this.state !== StateType.Leader, "a leader never takes entries from another member (append-only)")
    if (m.index < this.log.committed) {
      this.send(this.message(MessageType.AppResp, m.from, { index: this.log.committed }))
      return
    }
    const lastNew = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries)
    if (lastNew !== undefined) {
      this.send(this.message(MessageType.AppResp, m.from, { index: lastNew }))
      return
    }
    // Reject with a hint: the last index at or below m.index whose term is <= m.logTerm.
    const [hintIndex, hintTerm] = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm)
    this.send(this.message(MessageType.AppResp, m.from, {
      index: m.index,
      reject: true,
      rejectHint: hintIndex,
      logTerm: hintTerm,
    }))
  }

  private handleHeartbeat(m: Message): void {
    this.log.commitTo(Math.min(m.commit, this.log.lastIndex()))
    const fields: Partial<Message> = {}
    if (m.context !== undefined) fields.context = m.context
    this.send(this.message(MessageType.HeartbeatResp, m.from, fields))
  }

  private handleSnapshot(m: Message): void {
    const s = m.snapshot
    assert(s !== undefined, "snapshot message without snapshot")
    if (this.restore(s)) {
      this.send(this.message(MessageType.AppResp, m.from, { index: this.log.lastIndex() }))
    } else {
      this.send(this.message(MessageType.AppResp, m.from, { index: this.log.committed }))
    }
  }

  /** Installs a snapshot; false when it brings nothing new. */
  private restore(s: Snapshot): boolean {
    const { index, term, confState } = s.metadata
    if (index <= this.log.committed) return false
    if (!confState.voters.includes(this.id) && !confState.learners.includes(this.id)) return false
    if (this.log.matchTerm(index, term)) {
      // Our log already holds the snapshot's last entry: just fast-forward the commit.
      this.log.commitTo(index)
      return false
    }
    this.log.restore(s)
    this.restoreConf(confState)
    return true
  }

  // ---- misc -------------------------------------------------------------------

  /** Replays ConfChange entries in (snapshot, applied] so the configuration matches `applied` (restart). */
  replayConfChanges(upTo: number): void {
    const lo = this.log.firstIndex()
    if (upTo < lo) return
    for (const e of this.log.slice(lo, upTo + 1, Number.POSITIVE_INFINITY)) {
      if (e.type === EntryType.ConfChange) this.applyConfChange(decodeConfChange(e.data))
    }
  }
}
