// The Ready loop: the only code that drives raft. One Ready at a time: the
// messages that may leave before the local fsync are sent, entries and hard
// state go to the WAL (one fdatasync on the thread pool), the other messages
// leave after it, committed entries are applied, then advance().

import { TskvError } from "../lib/errors"
import { ProposalDroppedError } from "../raft/errors"
import { type Ready, sendableBeforePersist } from "../raft/raft_node"
import { type Entry, type Message, MessageType, NONE, type Snapshot } from "../raft/types"
import { WalWriteRefused } from "../wal/errors"
import type { ServerCore } from "./core"
import { decodeRequest } from "./request"
import { STORAGE_CHECK_MS } from "./storage_guard"

/** What the Ready loop hands over to the other parts of the member. */
export interface ReadyLoopParts {
  /** Applies committed entries in order (apply_entries.ts). */
  applyEntries(entries: readonly Entry[]): void
  /** The leader sends a follower a snapshot instead of entries (snapshots.ts). */
  sendSnapshot(m: Message): void
  /** A snapshot from the leader: made durable before raft's state moves past the log ... */
  persistReceivedSnapshot(snap: Snapshot): void
  /** ... and installed as the applied state after the WAL save. */
  installReceivedSnapshot(snap: Snapshot): void
  /** Takes a raft snapshot of the applied state when --snapshot-count entries were applied since the last. */
  maybeSnapshot(): void
  /** Records a snapshot whose backend state became durable (between Readies: it writes to the WAL). */
  finishSnapshot(): void
}

export class ReadyLoop {
  private pendingProposals: Uint8Array[] = []
  private processing = false
  private startCampaignDone = false
  /** Messages of the Ready being saved that leave after its fsync. */
  private lateMessages: Message[] = []
  /** Set while the WAL refuses writes (disk full, read-only): the Ready is saved again until it goes through. */
  private walRefused = false
  /** Committed entries of the Ready being saved already applied by applyPersistedWhileSyncing(). */
  private appliedEarly = 0

  constructor(
    private readonly core: ServerCore,
    private readonly parts: ReadyLoopParts,
  ) {
    core.runReadyLoop = () => this.run()
  }

  /** One pass: every Ready raft has, in order, until it has none (or a save goes on in the background). */
  private run(): void {
    const core = this.core
    if (this.processing || core.stopped || this.storagePaused()) return
    this.processing = true
    try {
      this.parts.finishSnapshot()
      this.flushProposals()
      while (core.node.hasReady()) {
        const rd = core.node.ready()
        if (this.handleReadyStart(rd)) return // resumes in the fdatasync callback
        this.handleReadyFinish(rd)
        this.flushProposals()
      }
      this.campaignIfAlone()
    } catch (e) {
      core.fatal(e)
    }
    this.processing = false
  }

  /** Persists a Ready; true when its fdatasync runs in the background (the loop resumes in its callback). */
  private handleReadyStart(rd: Ready): boolean {
    const core = this.core
    if (rd.softState) core.onSoftState(rd.softState.lead, rd.softState.state)
    // The leader's replication messages may leave before its own fsync (thesis §10.2.1).
    const early: Message[] = []
    const late: Message[] = []
    for (const m of rd.messages) {
      if (m.type === MessageType.Heartbeat && !core.isReachable(m.to)) core.counters.heartbeatSendFailures++
      if (m.type === MessageType.Snap) this.parts.sendSnapshot(m)
      else (sendableBeforePersist(m) ? early : late).push(m)
    }
    if (early.length > 0) core.peers?.send(early)
    this.lateMessages = late
    if (rd.snapshot) this.parts.persistReceivedSnapshot(rd.snapshot)
    return this.saveReady(rd)
  }

  /** After the WAL save: raft's storage, the late messages, apply, advance. */
  private handleReadyFinish(rd: Ready): void {
    const core = this.core
    if (rd.hardState) {
      core.storage.setHardState(rd.hardState)
      core.term = rd.hardState.term
      core.committedIndex = rd.hardState.commit
    }
    if (rd.entries.length > 0) core.storage.append(rd.entries)
    const late = this.lateMessages
    this.lateMessages = []
    if (late.length > 0) core.peers?.send(late)
    if (rd.snapshot) this.parts.installReceivedSnapshot(rd.snapshot)
    const early = this.appliedEarly
    this.appliedEarly = 0
    if (rd.committedEntries.length > early) this.parts.applyEntries(early === 0 ? rd.committedEntries : rd.committedEntries.slice(early))
    for (const rs of rd.readStates) core.reads.onReadState(rs.requestCtx, rs.index)
    core.node.advance(rd)
    core.reads.onApplied(core.appliedIndex)
    this.parts.maybeSnapshot()
  }

  /**
   * The WAL save of a Ready, then its apply; true when that completes later
   * (in the fdatasync callback, or in retrySave() after a refused write).
   */
  private saveReady(rd: Ready): boolean {
    const core = this.core
    let inline = true
    let completedInline = false
    try {
      core.wal.saveAsync(rd.hardState, rd.entries, (error) => {
        if (inline) {
          completedInline = true
          if (error !== null) throw error
          return
        }
        if (core.stopped) return
        if (error !== null) return core.fatal(error)
        this.finishSavedReady(rd)
      })
    } catch (e) {
      if (!(e instanceof WalWriteRefused)) throw e
      if (!this.walRefused) core.logger.warn("the WAL refuses writes; this member waits, saving the same entries again until they go through", { error: e.fsError.message })
      this.walRefused = true
      setTimeout(() => this.retrySave(rd), STORAGE_CHECK_MS)
      return true
    }
    if (this.walRefused) core.logger.info("the WAL takes writes again")
    this.walRefused = false
    inline = false
    if (completedInline) return false
    this.applyPersistedWhileSyncing(rd)
    return true
  }

  private retrySave(rd: Ready): void {
    if (this.core.stopped) return
    try {
      if (this.saveReady(rd)) return
    } catch (e) {
      this.core.fatal(e)
      return
    }
    this.finishSavedReady(rd)
  }

  /** After a save that completed later: apply, then the Ready loop goes on. */
  private finishSavedReady(rd: Ready): void {
    try {
      this.handleReadyFinish(rd)
      this.flushProposals()
    } catch (e) {
      this.core.fatal(e)
      return
    }
    this.processing = false
    this.run()
  }

  /**
   * Applies the committed entries that earlier Readies persisted while this
   * Ready's fdatasync runs on the thread pool, instead of leaving the JS
   * thread idle until it ends: a put is answered one fsync sooner and
   * applying overlaps the disk. Entries of this Ready's own `entries` (a
   * follower may learn their commit in the same message) wait for the fsync,
   * and a Ready with a snapshot is handled in order. The hard state recording
   * the commit may not be durable yet, so after a crash the backend can be
   * ahead of the WAL's commit index: raft restarts with commit = applied.
   */
  private applyPersistedWhileSyncing(rd: Ready): void {
    if (rd.snapshot !== undefined || rd.committedEntries.length === 0) return
    const firstNew = rd.entries[0]?.index ?? Number.POSITIVE_INFINITY
    let n = 0
    while (n < rd.committedEntries.length && rd.committedEntries[n]!.index < firstNew) n++
    if (n === 0) return
    this.parts.applyEntries(n === rd.committedEntries.length ? rd.committedEntries : rd.committedEntries.slice(0, n))
    this.appliedEarly = n
    this.core.reads.onApplied(this.core.appliedIndex)
  }

  /** Queues an encoded request; the next pass hands every queued one to raft as one batch. */
  queueProposal(data: Uint8Array): void {
    this.pendingProposals.push(data)
  }

  private flushProposals(): void {
    if (this.pendingProposals.length === 0) return
    const batch = this.pendingProposals
    this.pendingProposals = []
    try {
      this.core.node.proposeBatch(batch)
    } catch (e) {
      if (!(e instanceof ProposalDroppedError)) throw e
      const error = e.reason === "noLeader" ? new TskvError("noLeader") : e.reason === "removed" ? new TskvError("stopped") : new TskvError("leaderChanged")
      for (const data of batch) this.core.waiters.fail(decodeRequest(data).seq, error)
    }
  }

  /**
   * A lone voter need not wait out an election timeout (etcd's initial
   * election tick advance): once its configuration is applied, it campaigns.
   */
  private campaignIfAlone(): void {
    const core = this.core
    if (this.startCampaignDone || core.lead !== NONE) return
    const voters = core.node.status().config.voters
    if (voters.length === 0) return
    this.startCampaignDone = true
    if (voters.length === 1 && voters[0] === core.memberId) {
      core.node.campaign()
      core.kick()
    }
  }

  /** Whether a pass is under way (its WAL save in flight included): background duties wait. */
  busy(): boolean {
    return this.processing
  }

  /**
   * The data dir cannot take writes (storage_guard.ts): a follower persists
   * and applies nothing until it can; a leader goes on (handing over its
   * leadership, or alone: serving linearizable reads, proposals refused).
   */
  private storagePaused(): boolean {
    return this.core.storageGuard?.problem() !== undefined && !this.core.isLeader()
  }

  /** Raft's clock: one tick per --heartbeat-interval. */
  tick(): void {
    if (this.core.stopped) return
    this.core.node.tick()
    this.core.kick()
  }

  /** Raft messages from a peer. */
  stepMessages(messages: readonly Message[]): void {
    if (this.core.stopped) return
    for (const m of messages) this.core.node.step(m)
    this.core.kick()
  }
}
