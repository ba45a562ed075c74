// The Ready loop: the only code that drives raft. Pipelined (RaftNode's
// accept()/persisted()): a Ready is taken as soon as raft has one, while
// earlier ones are still being made durable. Taking one: the messages that
// may leave before the local fsync are sent (the leader's appends, thesis
// §10.2.1), its entries and hard state are written to the WAL (saves during an
// fdatasync share the next one: group commit), and the committed entries it
// carries are applied at once (raft hands out only entries this member has
// persisted). Once its fdatasync ends, in order: raft's storage, persisted(),
// then the messages that promise durability (append acknowledgements, votes).

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
  /** Whether a snapshot's backend state became durable and finishSnapshot() should record it. */
  snapshotToFinish(): boolean
  /** Records that snapshot (with the WAL idle: it writes to the WAL). */
  finishSnapshot(): void
}

/** A Ready whose WAL save was written and waits for its fdatasync. */
interface Saving {
  rd: Ready
  /** The messages that leave once it is durable. */
  late: Message[]
  durable: boolean
  /** Its fdatasync was refused: durable only once Wal.recover() wrote it again. */
  refused: boolean
}

/** A Ready taken from raft and not accepted yet: its save was refused, or it carries a snapshot and waits for the saves before it. */
interface Held {
  rd: Ready
  late: Message[]
  /** The received snapshot's .snap file and WAL marker are written (persistReceivedSnapshot). */
  snapshotPersisted: boolean
  /** The WAL refused the save: only the retry timer saves it again. */
  refused: boolean
}

export class ReadyLoop {
  private pendingProposals: Uint8Array[] = []
  private processing = false
  private startCampaignDone = false
  /** Accepted Readies whose save is not reported durable to raft yet, oldest first. */
  private readonly saving: Saving[] = []
  private held: Held | undefined
  /** A retry of Wal.recover() is scheduled. */
  private recovering = false

  constructor(
    private readonly core: ServerCore,
    private readonly parts: ReadyLoopParts,
  ) {
    core.runReadyLoop = () => this.run()
  }

  /** One pass: every Ready raft has, taken in order, until it has none (or one is held). */
  private run(): void {
    const core = this.core
    if (this.processing || core.stopped || this.storagePaused()) return
    this.processing = true
    try {
      this.pass()
    } catch (e) {
      core.fatal(e)
    }
    this.processing = false
  }

  private pass(): void {
    const core = this.core
    if (this.held !== undefined && !this.resumeHeld()) return
    if (this.parts.snapshotToFinish()) {
      // Its WAL record needs the WAL idle: no new Ready until the saves in flight are durable.
      if (!this.walIdle()) return
      this.parts.finishSnapshot()
    }
    this.flushProposals()
    while (core.node.hasReady()) {
      if (!this.take(core.node.ready())) return
      this.flushProposals()
    }
    this.campaignIfAlone()
  }

  /** Takes a Ready from raft; false when it is held (resumed by a later pass). */
  private take(rd: Ready): boolean {
    const core = this.core
    if (rd.softState) core.onSoftState(rd.softState.lead, rd.softState.state)
    const late: Message[] = []
    const early: Message[] = []
    for (const m of rd.messages) {
      if (m.type === MessageType.Heartbeat && !core.isReachable(m.to)) core.counters.heartbeatSendFailures++
      if (m.type === MessageType.Snap) this.parts.sendSnapshot(m)
      else (sendableBeforePersist(m) ? early : late).push(m)
    }
    if (early.length > 0) {
      // Out now, not after this turn's WAL write and apply: the followers' fsyncs overlap ours.
      core.peers?.send(early)
      core.peers?.flush()
    }
    this.held = { rd, late, snapshotPersisted: false, refused: false }
    return this.resumeHeld()
  }

  /**
   * Saves the held Ready and accepts it; false while it must wait: for the
   * saves before it (a received snapshot replaces raft's storage), or for the
   * WAL to take writes again.
   */
  private resumeHeld(): boolean {
    const held = this.held!
    const rd = held.rd
    if (held.refused) return false
    if (rd.snapshot !== undefined && !held.snapshotPersisted) {
      if (!this.walIdle()) return false
      this.parts.persistReceivedSnapshot(rd.snapshot)
      held.snapshotPersisted = true
    }
    const saving: Saving = { rd, late: held.late, durable: false, refused: false }
    let inline = true
    let error: Error | null = null
    let refusedInline: WalWriteRefused | undefined
    try {
      this.core.wal.saveAsync(rd.hardState, rd.entries, (e) => {
        if (e instanceof WalWriteRefused) {
          saving.refused = true
          if (inline) refusedInline = e
          else this.syncRefused(e)
          return
        }
        if (inline) {
          error = e
          saving.durable = true
          return
        }
        if (this.core.stopped) return
        if (e !== null) return this.core.fatal(e)
        saving.durable = true
        this.drain()
      })
    } catch (e) {
      if (!(e instanceof WalWriteRefused)) throw e
      this.refused(e, "the WAL refuses writes; this member waits, saving the same entries again until they go through")
      held.refused = true
      setTimeout(() => this.retrySave(), STORAGE_CHECK_MS)
      return false
    }
    inline = false
    if (error !== null) throw error
    this.held = undefined
    // A save that went through after a refused fdatasync: the WAL recovered first (Wal.recover()).
    this.recovered()
    this.accept(saving)
    if (refusedInline !== undefined) this.syncRefused(refusedInline)
    return true
  }

  /** The WAL refuses writes: proposals are refused (those queued failed) until it takes them again. */
  private refused(e: WalWriteRefused, message: string): void {
    const core = this.core
    if (core.walRefusal === undefined) core.logger.warn(message, { error: e.fsError.message })
    core.walRefusal = `the WAL cannot write to the data dir (${e.fsError.message})`
    const queued = this.pendingProposals
    this.pendingProposals = []
    const error = new TskvError("storageUnavailable", core.walRefusal)
    for (const data of queued) core.waiters.fail(decodeRequest(data).seq, error)
  }

  /**
   * The fdatasync of accepted Readies was refused: what it covered may not be
   * on disk. What depends on it (raft's storage, persisted(), the messages
   * that promise durability) waits until the WAL has written those records
   * again into a fresh segment and synced them (Wal.recover(), retried).
   */
  private syncRefused(e: WalWriteRefused): void {
    if (this.core.stopped) return
    this.refused(e, "the WAL's fdatasync was refused; this member holds what depended on it and refuses proposals until the WAL can write it again into a new segment")
    if (this.recovering) return
    this.recovering = true
    setTimeout(() => this.retryRecover(), STORAGE_CHECK_MS)
  }

  private retryRecover(): void {
    this.recovering = false
    if (this.core.stopped) return
    try {
      this.core.wal.recover()
    } catch (e) {
      if (!(e instanceof WalWriteRefused)) return this.core.fatal(e)
      this.recovering = true
      setTimeout(() => this.retryRecover(), STORAGE_CHECK_MS)
      return
    }
    this.recovered()
    this.core.kick()
  }

  /** Once the WAL recovered: the Readies whose fdatasync was refused are durable (rewritten and synced). */
  private recovered(): void {
    if (this.core.wal.needsRecovery()) return
    let any = false
    for (const s of this.saving) {
      if (!s.refused) continue
      s.refused = false
      s.durable = true
      any = true
    }
    if (this.core.walRefusal !== undefined) {
      this.core.logger.info("the WAL takes writes again")
      this.core.walRefusal = undefined
    }
    if (any) this.drain()
  }

  /** No save in flight: the WAL takes a snapshot record. */
  private walIdle(): boolean {
    return this.saving.length === 0 && this.core.wal.idle()
  }

  private retrySave(): void {
    if (this.core.stopped || this.held === undefined) return
    this.held.refused = false
    this.run()
  }

  /** The Ready's save is written: apply what it commits (persisted here already), then raft may hand out the next one. */
  private accept(saving: Saving): void {
    const core = this.core
    const rd = saving.rd
    if (rd.hardState) {
      core.term = rd.hardState.term
      core.committedIndex = rd.hardState.commit
    }
    this.saving.push(saving)
    if (rd.committedEntries.length > 0) this.parts.applyEntries(rd.committedEntries)
    for (const rs of rd.readStates) core.reads.onReadState(rs.requestCtx, rs.index)
    core.node.accept(rd)
    core.reads.onApplied(core.appliedIndex)
    this.parts.maybeSnapshot()
    if (saving.durable) this.drain()
  }

  /**
   * The Readies whose fdatasync ended, in order: raft's storage, the received
   * snapshot's install, persisted(), then their messages that promise
   * durability. The next pass takes what raft has now (a commit, say).
   */
  private drain(): void {
    const core = this.core
    let moved = false
    try {
      while (this.saving.length > 0 && this.saving[0]!.durable) {
        const { rd, late } = this.saving.shift()!
        if (rd.hardState) core.storage.setHardState(rd.hardState)
        if (rd.entries.length > 0) core.storage.append(rd.entries)
        if (rd.snapshot) this.parts.installReceivedSnapshot(rd.snapshot)
        core.node.persisted(rd)
        if (late.length > 0) core.peers?.send(late)
        moved = true
      }
    } catch (e) {
      core.fatal(e)
      return
    }
    if (moved) core.kick()
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
    return this.processing || this.held !== undefined || this.saving.length > 0
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
