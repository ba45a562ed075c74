// RaftNode: the facade the server drives (etcd's RawNode). One Ready at a
// time:
//
//   while (node.hasReady()) {
//     const rd = node.ready()
//     // 1. Durability. Persist rd.hardState, rd.entries and rd.snapshot (one
//     //    fsync when rd.mustSync), then add them to the MemoryStorage
//     //    (applySnapshot, append, setHardState).
//     // 2. Send rd.messages. Messages for which sendableBeforePersist(m) is
//     //    true (App, Snap and Heartbeat: only a leader sends them) may go out
//     //    before or in parallel with step 1 (thesis §10.2.1): the leader counts
//     //    its own log toward a commit only after advance() reports it
//     //    persisted, so a message never depends on the leader's own fsync.
//     //    Every other message (vote grants, append acknowledgements, ...)
//     //    promises that step 1 is done and must wait for it.
//     // 3. Apply rd.snapshot (if any) and then rd.committedEntries, in order,
//     //    only after step 1: a committed entry may be in this very Ready's
//     //    rd.entries. For a ConfChange entry call applyConfChange().
//     //    Serve the reads in rd.readStates once applied >= readState.index.
//     // 4. node.advance(rd).
//   }
//
// Between ready() and advance() the server may keep calling tick(), step()
// and propose(); their output goes into the next Ready.
//
// Pipelined (RaftNodeOptions.pipelined): the server need not wait for a
// Ready's fsync before it takes the next one.
//
//   while (node.hasReady()) {
//     const rd = node.ready()
//     // Send the sendableBeforePersist() messages; start persisting rd (its
//     // writes go to the WAL in Ready order); apply rd.committedEntries now:
//     // they are all persisted on this member already (they stop at what
//     // persisted() reported, not at the commit index). Then:
//     node.accept(rd)
//   }
//   // ... later, once rd is durable (and, with a snapshot, installed), in
//   // the order the Readies were accepted: add rd's entries, hard state and
//   // snapshot to the MemoryStorage, node.persisted(rd), and send rd's other
//   // messages. A Ready with a snapshot is the last one until it is
//   // persisted (hasReady() is false meanwhile).
//
// The rules are the same as above: nothing this member promises (an append
// acknowledgement, a vote) leaves before the Ready that holds it is durable,
// and the leader counts its own log toward a commit only once persisted()
// says so. A Ready's persisted() implies that every earlier one is durable
// (one WAL, written in order).

import { assert } from "../lib/assert"
import { encodeConfChange } from "./conf_change_codec"
import { ProposalDroppedError, ReadIndexDroppedError } from "./errors"
import type { ProgressState } from "./progress"
import { Raft, type RaftOptions } from "./raft"
import type { ConfChange, ConfState, Entry, HardState, Message, NodeId, ReadState, Snapshot, SoftState } from "./types"
import { ConfChangeType, EntryType, MessageType, NONE, StateType } from "./types"

/**
 * The node takes raft's options (see RaftOptions in raft.ts). With `peers` and
 * empty storage, the node writes one AddNode ConfChange entry per peer (sorted
 * by id, so every member writes the same entries) at term 1 and commits them;
 * on a restart, `applied` is the last index the application applied, and
 * ConfChange entries between the snapshot and it are replayed.
 */
export type RaftNodeOptions = RaftOptions & {
  /** accept() and persisted() instead of advance(): several Readies may be persisting at once (see the header). */
  pipelined?: boolean
  /**
   * The context of each bootstrap ConfChange entry (etcd: the member's JSON),
   * so that an application replaying the log from its start learns every
   * member from the log alone. Default: empty.
   */
  bootstrapContext?: (nodeId: NodeId) => Uint8Array
}

export interface Ready {
  /** Leader and role, when they changed since the last Ready. */
  softState?: SoftState
  /** To persist before sending (see the header), when it changed. */
  hardState?: HardState
  /** Linearizable reads that became possible (serve once applied >= index). */
  readStates: ReadState[]
  /** To persist (and append to storage) before sending dependent messages. */
  entries: Entry[]
  /** To persist and then apply, before committedEntries. */
  snapshot?: Snapshot
  /** To apply, in order, after persisting this Ready. */
  committedEntries: Entry[]
  messages: Message[]
  /** The hard state's term or vote changed, or there are entries: fsync before sending. */
  mustSync: boolean
}

/** True for messages that may be sent before the Ready that carries them is persisted. */
export function sendableBeforePersist(m: Message): boolean {
  return m.type === MessageType.App || m.type === MessageType.Snap || m.type === MessageType.Heartbeat
}

export interface ProgressStatus {
  match: number
  next: number
  state: ProgressState
  isLearner: boolean
  recentActive: boolean
  pendingSnapshot: number
  inflight: number
}

export interface RaftStatus {
  id: NodeId
  term: number
  vote: NodeId
  commit: number
  lead: NodeId
  state: StateType
  applied: number
  lastIndex: number
  leadTransferee: NodeId
  config: ConfState
  /** Per member, on the leader only. */
  progress: Map<NodeId, ProgressStatus>
}

const LOCAL_TYPES = new Set([
  MessageType.Hup,
  MessageType.Beat,
  MessageType.Unreachable,
  MessageType.SnapStatus,
  MessageType.CheckQuorum,
])

function blankMessage(type: MessageType, from: NodeId, to: NodeId): Message {
  return { type, from, to, term: 0, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0 }
}

export class RaftNode {
  readonly raft: Raft
  private prevSoft: SoftState
  private prevHard: HardState
  private outstanding = false
  readonly pipelined: boolean
  /** Pipelined: the Readies accepted and not yet persisted, oldest first. */
  private readonly persisting: Ready[] = []

  constructor(options: RaftNodeOptions) {
    this.pipelined = options.pipelined ?? false
    const storage = options.storage
    const bootstrap = storage.lastIndex() === 0 && storage.firstIndex() === 1 &&
      storage.initialState().confState.voters.length === 0 &&
      ((options.peers?.length ?? 0) > 0 || (options.learners?.length ?? 0) > 0)
    const raftOptions = {
      id: options.id,
      storage,
      prng: options.prng,
      ...(options.electionTicks !== undefined ? { electionTicks: options.electionTicks } : {}),
      ...(options.heartbeatTicks !== undefined ? { heartbeatTicks: options.heartbeatTicks } : {}),
      ...(options.preVote !== undefined ? { preVote: options.preVote } : {}),
      ...(options.checkQuorum !== undefined ? { checkQuorum: options.checkQuorum } : {}),
      ...(options.maxSizePerMsgBytes !== undefined ? { maxSizePerMsgBytes: options.maxSizePerMsgBytes } : {}),
      ...(options.maxInflightMsgs !== undefined ? { maxInflightMsgs: options.maxInflightMsgs } : {}),
      ...(options.maxCommittedBytesPerReady !== undefined ? { maxCommittedBytesPerReady: options.maxCommittedBytesPerReady } : {}),
      ...(options.applied !== undefined ? { applied: options.applied } : {}),
    }
    this.raft = new Raft(bootstrap ? { ...raftOptions, peers: options.peers ?? [], learners: options.learners ?? [] } : raftOptions)
    if (bootstrap) {
      this.bootstrap(options.peers ?? [], options.learners ?? [], options.bootstrapContext ?? (() => new Uint8Array(0)))
    } else if (options.applied !== undefined) {
      this.raft.replayConfChanges(options.applied)
    }
    this.prevSoft = { lead: NONE, state: StateType.Follower }
    this.prevHard = storage.initialState().hardState
  }

  private bootstrap(peers: readonly NodeId[], learners: readonly NodeId[], context: (nodeId: NodeId) => Uint8Array): void {
    const sorted = (ids: readonly NodeId[]): NodeId[] => [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    const changes: ConfChange[] = [
      ...sorted(peers).map((nodeId) => ({ type: ConfChangeType.AddNode, nodeId, context: context(nodeId) })),
      ...sorted(learners).map((nodeId) => ({ type: ConfChangeType.AddLearnerNode, nodeId, context: context(nodeId) })),
    ]
    const entries = changes.map((cc, k): Entry => ({
      term: 1,
      index: k + 1,
      type: EntryType.ConfChange,
      data: encodeConfChange(cc),
    }))
    this.raft.becomeFollower(1, NONE)
    this.raft.log.append(entries)
    this.raft.log.commitTo(entries.length)
  }

  tick(): void {
    this.raft.tick()
  }

  /** A message from a peer. Proposals and reads the leader drops on the way are ignored here. */
  step(m: Message): void {
    assert(!LOCAL_TYPES.has(m.type), () => `local message type ${MessageType[m.type]} from the network`)
    try {
      this.raft.step(m)
    } catch (e) {
      if (e instanceof ProposalDroppedError || e instanceof ReadIndexDroppedError) return
      throw e
    }
  }

  /**
   * Proposes application data. On a follower the proposal is forwarded to
   * the leader (it may still be lost: the server keeps a timeout). Throws
   * ProposalDroppedError when there is no leader, a leader transfer is in
   * progress, or this member was removed.
   */
  propose(data: Uint8Array): void {
    const m = blankMessage(MessageType.Prop, this.raft.id, NONE)
    m.entries = [{ term: 0, index: 0, type: EntryType.Normal, data }]
    this.raft.step(m)
  }

  /** Proposes several entries in one step (they travel in one message). */
  proposeBatch(datas: readonly Uint8Array[]): void {
    if (datas.length === 0) return
    const m = blankMessage(MessageType.Prop, this.raft.id, NONE)
    m.entries = datas.map((data) => ({ term: 0, index: 0, type: EntryType.Normal, data }))
    this.raft.step(m)
  }

  /**
   * Proposes a membership change; it takes effect when the server applies
   * the entry and calls applyConfChange(). Besides propose()'s errors, the
   * leader throws ProposalDroppedError("confChangePending") while an earlier
   * change is not yet applied.
   */
  proposeConfChange(cc: ConfChange): void {
    const m = blankMessage(MessageType.Prop, this.raft.id, NONE)
    m.entries = [{ term: 0, index: 0, type: EntryType.ConfChange, data: encodeConfChange(cc) }]
    this.raft.step(m)
  }

  applyConfChange(cc: ConfChange): ConfState {
    return this.raft.applyConfChange(cc)
  }

  /**
   * Asks for a read index; the answer arrives as a ReadState with the same
   * ctx (unique per request) in a later Ready. Throws ReadIndexDroppedError
   * when no leader is known. A request can be lost silently (leader change,
   * lost message): the server retries with a new ctx after a timeout.
   */
  readIndex(ctx: Uint8Array): void {
    const m = blankMessage(MessageType.ReadIndex, this.raft.id, NONE)
    m.context = ctx
    this.raft.step(m)
  }

  /** Asks the leader to hand leadership to `to` (a voter). Ignored when no leader is known. */
  transferLeader(to: NodeId): void {
    this.raft.step(blankMessage(MessageType.TransferLeader, to, NONE))
  }

  /** Starts an election now (pre-vote first when enabled). */
  campaign(): void {
    this.raft.step(blankMessage(MessageType.Hup, this.raft.id, NONE))
  }

  reportUnreachable(id: NodeId): void {
    this.raft.step(blankMessage(MessageType.Unreachable, id, NONE))
  }

  reportSnapshot(id: NodeId, ok: boolean): void {
    const m = blankMessage(MessageType.SnapStatus, id, NONE)
    m.reject = !ok
    this.raft.step(m)
  }

  private softState(): SoftState {
    return { lead: this.raft.lead, state: this.raft.state }
  }

  private hardState(): HardState {
    return { term: this.raft.term, vote: this.raft.vote, commit: this.raft.log.committed }
  }

  hasReady(): boolean {
    if (this.outstanding) return false
    const r = this.raft
    if (r.log.unstable.snapshotInProgress) return false
    r.flushAppends()
    if (r.msgs.length > 0 || r.readStates.length > 0) return true
    if (r.log.unstable.snapshot !== undefined || r.log.unstableEntries().length > 0) return true
    if (r.log.hasNextCommittedEnts(this.pipelined)) return true
    const hs = this.prevHard
    if (hs.term !== r.term || hs.vote !== r.vote || hs.commit !== r.log.committed) return true
    return this.prevSoft.lead !== r.lead || this.prevSoft.state !== r.state
  }

  ready(): Ready {
    assert(!this.outstanding, "ready() called again before advance()")
    const r = this.raft
    assert(!r.log.unstable.snapshotInProgress, "ready() while a Ready with a snapshot is being persisted")
    r.flushAppends()
    const entries = r.log.unstableEntries().slice()
    const rd: Ready = {
      readStates: r.readStates,
      entries,
      committedEntries: r.log.nextCommittedEnts(this.pipelined),
      messages: r.msgs,
      mustSync: false,
    }
    r.readStates = []
    r.msgs = []
    const snap = r.log.unstable.snapshot
    if (snap !== undefined) rd.snapshot = snap
    const soft = this.softState()
    if (soft.lead !== this.prevSoft.lead || soft.state !== this.prevSoft.state) {
      rd.softState = soft
      this.prevSoft = soft
    }
    const hs = this.hardState()
    const prev = this.prevHard
    if (hs.term !== prev.term || hs.vote !== prev.vote || hs.commit !== prev.commit) {
      rd.hardState = hs
      rd.mustSync = hs.term !== prev.term || hs.vote !== prev.vote
      this.prevHard = hs
    }
    if (entries.length > 0) rd.mustSync = true
    this.checkInvariants()
    this.outstanding = true
    return rd
  }

  /** Checked at every Ready: applied <= committed <= last index (kept on in production). */
  private checkInvariants(): void {
    const log = this.raft.log
    assert(log.applied <= log.committed, () => `applied ${log.applied} > committed ${log.committed}`)
    assert(log.committed <= log.lastIndex(), () => `committed ${log.committed} > last index ${log.lastIndex()}`)
  }

  /** The server finished the Ready: persisted, sent, applied. */
  advance(rd: Ready): void {
    assert(this.outstanding, "advance() without ready()")
    assert(!this.pipelined, "advance() on a pipelined node: accept() and persisted()")
    this.outstanding = false
    this.markStable(rd)
    const applied = rd.committedEntries[rd.committedEntries.length - 1]
    if (applied !== undefined) this.raft.log.appliedTo(applied.index)
    this.raft.onPersisted()
    this.checkInvariants()
  }

  /** rd's entries and snapshot are on stable storage (and the snapshot applied). */
  private markStable(rd: Ready): void {
    const log = this.raft.log
    const last = rd.entries[rd.entries.length - 1]
    if (last !== undefined) log.stableTo(last.index, last.term)
    if (rd.snapshot !== undefined) {
      log.stableSnapTo(rd.snapshot.metadata.index)
      if (rd.snapshot.metadata.index > log.applied) log.appliedTo(rd.snapshot.metadata.index)
    }
  }

  /**
   * Pipelined: the server took `rd` (early messages sent, persisting
   * started, committed entries applied); the next Ready may follow at once.
   */
  accept(rd: Ready): void {
    assert(this.pipelined, "accept() on a node that is not pipelined: advance()")
    assert(this.outstanding, "accept() without ready()")
    this.outstanding = false
    const log = this.raft.log
    const last = rd.entries[rd.entries.length - 1]
    log.unstable.acceptInProgress(last?.index, last?.term ?? 0, rd.snapshot !== undefined)
    const applied = rd.committedEntries[rd.committedEntries.length - 1]
    if (applied !== undefined) log.appliedTo(applied.index)
    this.persisting.push(rd)
    this.checkInvariants()
  }

  /** Pipelined: `rd` (the oldest accepted Ready not yet reported) is durable, and its snapshot installed. */
  persisted(rd: Ready): void {
    assert(this.persisting[0] === rd, "persisted() out of the order of accept()")
    this.persisting.shift()
    this.markStable(rd)
    this.raft.onPersisted()
    this.checkInvariants()
  }

  /** Pipelined: how many accepted Readies are not yet persisted. */
  get persistingCount(): number {
    return this.persisting.length
  }

  status(): RaftStatus {
    const r = this.raft
    const progress = new Map<NodeId, ProgressStatus>()
    if (r.state === StateType.Leader) {
      for (const [id, pr] of r.prs) {
        progress.set(id, {
          match: pr.match,
          next: pr.next,
          state: pr.state,
          isLearner: pr.isLearner,
          recentActive: pr.recentActive,
          pendingSnapshot: pr.pendingSnapshot,
          inflight: pr.inflights.count,
        })
      }
    }
    return {
      id: r.id,
      term: r.term,
      vote: r.vote,
      commit: r.log.committed,
      lead: r.lead,
      state: r.state,
      applied: r.log.applied,
      lastIndex: r.log.lastIndex(),
      leadTransferee: r.leadTransferee,
      config: r.confState(),
      progress,
    }
  }
}
