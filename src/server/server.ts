// The member as the rest of tskv sees it (api/, member/, main.ts): a facade
// over the parts that do the work, each in its own file, all sharing one
// ServerCore (core.ts):
//   ready_loop.ts     drives raft: WAL save -> send -> apply -> advance
//   apply_entries.ts  applies committed entries (applier.ts: the requests)
//   snapshots.ts      raft snapshots, the member's own and the leader's db
//   request_api.ts    proposals, the quota check, linearizable reads
//   member_admin.ts   membership and leadership changes on request
//   duties.ts         timers: tick, batch commits, leases, compaction, storage

import type { AuthStore } from "../auth/store"
import type { Backend } from "../backend/backend"
import type { Config } from "../config/config"
import type { Clock } from "../lib/clock"
import { TskvError } from "../lib/errors"
import type { Logger } from "../lib/logger"
import type { Lessor } from "../lease/lessor"
import type { KvApplier } from "../mvcc/kv_applier"
import type { MvccStore } from "../mvcc/kv_store"
import type { WatchableStore } from "../mvcc/watchable_store"
import type * as pb from "../pb"
import type { RaftNode } from "../raft/raft_node"
import type { Message, NodeId, StateType } from "../raft/types"
import type { Snapshotter } from "../snap/snapshotter"
import type { V2Store } from "../v2store/store"
import type { Alarms } from "./alarms"
import { EntryApplier } from "./apply_entries"
import { type PeerSender, type ServerCounters, ServerCore, type ServerHooks, type ServerParts } from "./core"
import { Duties } from "./duties"
import { MemberAdmin } from "./member_admin"
import type { Member, Membership } from "./membership"
import { ReadyLoop } from "./ready_loop"
import type { DecodedRequest, RequestKind } from "./request"
import { type RequestAuth, RequestApi } from "./request_api"
import { Snapshots } from "./snapshots"

export type { PeerSender, ServerCounters, ServerParts } from "./core"
export type { RequestAuth } from "./request_api"

export class EtcdServer implements ServerHooks {
  readonly config: Config
  readonly logger: Logger
  readonly clock: Clock
  readonly memberId: NodeId
  readonly clusterId: NodeId
  readonly backend: Backend
  readonly store: MvccStore
  readonly watchable: WatchableStore
  readonly kv: KvApplier
  readonly lessor: Lessor
  readonly alarms: Alarms
  readonly membership: Membership
  readonly auth: AuthStore | undefined
  readonly v2: V2Store | undefined
  readonly node: RaftNode
  readonly snapshotter: Snapshotter
  /** Metrics the HTTP room reads. */
  readonly counters: ServerCounters
  private readonly core: ServerCore
  private readonly apply: EntryApplier
  private readonly loop: ReadyLoop
  private readonly snapshots: Snapshots
  private readonly members: MemberAdmin
  private readonly requests: RequestApi
  private readonly duties: Duties

  // ServerHooks: set by the wiring (metrics, peers, main.ts), called by the parts.
  onWalSync: ((ms: number) => void) | undefined
  onDefrag: ((ms: number) => void) | undefined
  onBackendSnapshot: ((ms: number) => void) | undefined
  onLeaseGrant: ((ttlSeconds: number) => void) | undefined
  onSnapshotDbSaved: ((fsyncMs: number, saveMs: number) => void) | undefined
  onFatal: ((error: unknown) => void) | undefined
  forwardMemberPromote: ((id: bigint) => Promise<void>) | undefined
  forwardLeaseRenew: ((id: bigint) => Promise<number>) | undefined
  onLeaderChange: ((lead: NodeId) => void) | undefined

  /** Raft state as of the last Ready. */
  get lead(): NodeId {
    return this.core.lead
  }
  get raftState(): StateType {
    return this.core.raftState
  }
  get term(): number {
    return this.core.term
  }
  get appliedIndex(): number {
    return this.core.appliedIndex
  }
  get committedIndex(): number {
    return this.core.committedIndex
  }
  /** Since when the current leader leads, as this member saw it (performance.now(); the member's start before any). */
  get leaderSince(): number {
    return this.core.leaderTimes.leaderSince
  }

  constructor(parts: ServerParts) {
    const core = new ServerCore(parts, this)
    this.core = core
    this.config = core.config
    this.logger = core.logger
    this.clock = core.clock
    this.memberId = core.memberId
    this.clusterId = core.clusterId
    this.backend = core.backend
    this.store = core.store
    this.watchable = core.watchable
    this.kv = core.kv
    this.lessor = core.lessor
    this.alarms = core.alarms
    this.membership = core.membership
    this.auth = core.auth
    this.v2 = core.v2
    this.node = core.node
    this.snapshotter = core.snapshotter
    this.counters = core.counters
    this.apply = new EntryApplier(core)
    this.loop = new ReadyLoop(core, {
      applyEntries: (entries) => this.apply.applyEntries(entries),
      sendSnapshot: (m) => this.snapshots.sendSnapshot(m),
      persistReceivedSnapshot: (snap) => this.snapshots.persistReceivedSnapshot(snap),
      installReceivedSnapshot: (snap) => this.snapshots.installReceivedSnapshot(snap),
      maybeSnapshot: () => this.snapshots.maybeSnapshot(),
      snapshotToFinish: () => this.snapshots.snapshotToFinish(),
      finishSnapshot: () => this.snapshots.finishSnapshot(),
    })
    this.snapshots = new Snapshots(core, (messages) => this.loop.stepMessages(messages))
    this.members = new MemberAdmin(core)
    this.requests = new RequestApi(core, (data) => this.loop.queueProposal(data))
    this.duties = new Duties(core, { loop: this.loop, requests: this.requests, members: this.members })
  }

  /** Connects the peer transport and tells it about every other member. */
  setPeers(peers: PeerSender): void {
    this.core.peers = peers
    for (const m of this.membership.list()) if (m.id !== this.memberId) peers.addPeer(m.id, m.peerUrls)
  }

  setAuthApplier(applyAuth: (req: DecodedRequest) => unknown): void {
    this.apply.setAuthApplier(applyAuth)
  }

  /** Starts ticking and serving. */
  start(): void {
    this.duties.start()
  }

  /** Stops timers, fails waiters, flushes the backend and closes the WAL. */
  stop(): Promise<void> {
    return this.core.stop()
  }

  isStopped(): boolean {
    return this.core.stopped
  }

  isLeader(): boolean {
    return this.core.isLeader()
  }

  isLearner(): boolean {
    return this.membership.get(this.memberId)?.isLearner ?? false
  }

  hasLeader(): boolean {
    return this.core.hasLeader()
  }

  /** The header every response carries. */
  header(revision = this.store.currentRevision()): pb.ResponseHeader {
    return { clusterId: this.clusterId, memberId: this.memberId, revision, raftTerm: this.core.term }
  }

  // ---- requests

  /**
   * Proposes a request through raft and resolves with the result of applying
   * it on this member. Errors: TskvError (etcd's) only.
   */
  propose(kind: RequestKind, body: Uint8Array, auth?: RequestAuth): Promise<unknown> {
    return this.requests.propose(kind, body, auth)
  }

  /** The quota check etcd makes before proposing a write (--quota-backend-bytes, the NOSPACE alarm). */
  checkQuota(costBytes: number): Promise<void> {
    return this.requests.checkQuota(costBytes)
  }

  /** Raises an alarm for a member through raft (NOSPACE, CORRUPT). */
  raiseAlarm(alarm: pb.AlarmType, memberId: NodeId): Promise<void> {
    return this.requests.raiseAlarm(alarm, memberId)
  }

  /** Waits until a read at this moment is linearizable on this member. */
  linearizableBarrier(): Promise<void> {
    return this.requests.linearizableBarrier()
  }

  /** Resolves once this member applied at least `index`. */
  waitApplied(index: number): Promise<void> {
    return this.apply.waitApplied(index)
  }

  requestTimeoutMs(): number {
    return this.core.requestTimeoutMs()
  }

  // ---- raft, leadership, readiness

  /** A raft message from a peer. */
  stepMessages(messages: readonly Message[]): void {
    this.loop.stepMessages(messages)
  }

  /** Calls `listener` whenever this member loses its leader; returns the unsubscribe function. */
  onLeaderLost(listener: () => void): () => void {
    return this.core.onLeaderLost(listener)
  }

  /** Resolves once this member serves: its attributes are published through raft (etcd: ReadyNotify). */
  readyNotify(): Promise<void> {
    return this.duties.readyNotify()
  }

  // ---- peers and membership

  reportUnreachable(id: NodeId): void {
    if (this.core.stopped) return
    this.node.reportUnreachable(id)
    this.core.kick()
  }

  /** A peer told us this member was removed from the cluster. */
  stopRemoved(reason: string): void {
    this.logger.warn("this member was removed from the cluster; stopping", { reason })
    this.core.fatal(new TskvError("memberRemoved"))
  }

  memberAdd(peerUrls: string[], isLearner: boolean): Promise<Member> {
    return this.members.memberAdd(peerUrls, isLearner)
  }

  memberRemove(id: NodeId): Promise<void> {
    return this.members.memberRemove(id)
  }

  memberUpdate(id: NodeId, peerUrls: string[]): Promise<void> {
    return this.members.memberUpdate(id, peerUrls)
  }

  /** Promotes a learner once it caught up (etcd: its match index >= 90% of the leader's); runs on the leader. */
  memberPromote(id: NodeId): Promise<void> {
    return this.members.memberPromote(id)
  }

  /**
   * Before a graceful stop the leader hands leadership to the most up-to-date
   * voter, so the cluster does not wait out an election timeout.
   */
  transferLeadershipForShutdown(): Promise<void> {
    return this.members.transferLeadershipForShutdown()
  }

  /** Hands leadership to `target` and waits until it took over (Maintenance.MoveLeader). */
  moveLeader(target: NodeId): Promise<void> {
    return this.members.moveLeader(target)
  }

  /** A snapshot (db file + message) arrived from the leader: hand the message to raft; resolve once installed. */
  receiveSnapshot(message: Message, dbPath: string): Promise<void> {
    return this.snapshots.receiveSnapshot(message, dbPath)
  }

  /** A consistent copy of the backend (snapshots to followers and Maintenance.Snapshot), timed. */
  copyBackend(path: string): void {
    this.snapshots.copyBackend(path)
  }

  walBytesWritten(): number {
    return this.core.wal.bytesWritten
  }

  /** Reclaims free space in the backend (Maintenance.Defragment). */
  defragment(): void {
    const started = performance.now()
    this.counters.defragInflight = 1
    try {
      this.backend.commit()
      this.backend.db.exec("VACUUM")
    } finally {
      this.counters.defragInflight = 0
    }
    this.onDefrag?.(performance.now() - started)
  }
}
