// The member: the only place where raft meets the disk, the network and the
// clock. It owns the Ready loop (WAL save -> send -> apply -> advance),
// proposal waiters, linearizable reads, lease expiry, compaction steps and
// backend commits, and offers the request API that api/grpc calls.

import { dataDirProbe, STORAGE_CHECK_MS, StorageGuard } from "./storage_guard"
import { join } from "node:path"
import type { Backend } from "../backend/backend"
import type { Config } from "../config/config"
import type { Clock } from "../lib/clock"
import { isTskvError, TskvError } from "../lib/errors"
import type { Logger } from "../lib/logger"
import type { Lessor } from "../lease/lessor"
import type { KvApplier } from "../mvcc/kv_applier"
import type { MvccStore } from "../mvcc/kv_store"
import type { WatchableStore } from "../mvcc/watchable_store"
import type { RaftNode } from "../raft/raft_node"
import { type Message, type NodeId, StateType } from "../raft/types"
import type { Snapshotter } from "../snap/snapshotter"
import type { Alarms } from "./alarms"
import { type PeerSender, type ServerCounters, ServerCore, type ServerHooks, type ServerParts } from "./core"
import { EntryApplier } from "./apply_entries"
import { Compactor } from "./compactor"
import type { Member, Membership } from "./membership"
import { type DecodedRequest, encodeCbor, RequestKind } from "./request"
import { MemberAdmin } from "./member_admin"
import { ReadyLoop } from "./ready_loop"
import { type RequestAuth, RequestApi } from "./request_api"
import { Snapshots } from "./snapshots"
import * as pb from "../pb"
import type { AuthStore } from "../auth/store"
import type { V2Store } from "../v2store/store"
import { encodeV2Request, v2Request } from "../v2store/apply"

/** etcd: the leader checks for expired leases every 500 ms. */
const LEASE_CHECK_MS = 500

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
  private markReady: () => void = () => {}
  private readonly ready = new Promise<void>((resolve) => (this.markReady = resolve))

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
  /** When the current leader was learned (performance.now()). */
  get leaderElectedAt(): number {
    return this.core.leaderElectedAt
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
      finishSnapshot: () => this.snapshots.finishSnapshot(),
    })
    this.snapshots = new Snapshots(core, (messages) => this.loop.stepMessages(messages))
    this.members = new MemberAdmin(core)
    this.requests = new RequestApi(core, (data) => this.loop.queueProposal(data))
  }

  /** Connects the peer transport and tells it about every other member. */
  setPeers(peers: PeerSender): void {
    this.core.peers = peers
    for (const m of this.membership.list()) if (m.id !== this.memberId) peers.addPeer(m.id, m.peerUrls)
  }

  /** The members this member can reach now (and itself): etcd's "started" members for --strict-reconfig-check. */
  isReachable(id: NodeId): boolean {
    return this.core.isReachable(id)
  }

  setAuthApplier(applyAuth: (req: DecodedRequest) => unknown): void {
    this.apply.setAuthApplier(applyAuth)
  }

  /** Starts ticking and serving. */
  start(): void {
    const c = this.config
    this.core.timers.push(setInterval(() => this.loop.tick(), c.heartbeatMs))
    this.core.timers.push(setInterval(() => this.commitBatch(), Math.max(1, c.backendBatchIntervalMs)))
    this.core.timers.push(setInterval(() => this.compactionStep(), Math.max(1, c.compactionSleepIntervalMs)))
    this.core.timers.push(setInterval(() => this.leaseDuties(), LEASE_CHECK_MS))
    this.core.timers.push(setInterval(() => this.v2Sync(), LEASE_CHECK_MS))
    this.core.storageGuard = new StorageGuard(dataDirProbe(c.dataDir))
    this.core.timers.push(setInterval(() => this.checkStorage(), STORAGE_CHECK_MS))
    const compactor = new Compactor(c.autoCompaction, {
      clock: this.clock,
      currentRevision: () => this.store.currentRevision(),
      compactedRevision: () => this.store.compactedRevision(),
      isLeader: () => this.isLeader(),
      compact: async (revision) => {
        try {
          await this.propose(RequestKind.Compaction, pb.encodeCompactionRequest({ revision }))
          this.logger.info("auto-compaction done", { revision })
        } catch (e) {
          this.logger.warn("auto-compaction failed", { revision, error: e })
        }
      },
    })
    if (compactor.enabled()) this.core.timers.push(setInterval(() => void compactor.tick(), compactor.tickIntervalMs()))
    if (c.watchProgressNotifyIntervalMs > 0) {
      this.core.timers.push(setInterval(() => this.watchable.notifyProgress(), c.watchProgressNotifyIntervalMs))
    }
    this.kick()
    void this.publishAttributes()
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

  // ---- the Ready loop

  /** Schedules one pass of the Ready loop after the current I/O callbacks (batching). */
  kick(): void {
    this.core.kick()
  }

  /** A raft message from a peer. */
  stepMessages(messages: readonly Message[]): void {
    this.loop.stepMessages(messages)
  }

  /** Calls `listener` whenever this member loses its leader; returns the unsubscribe function. */
  onLeaderLost(listener: () => void): () => void {
    return this.core.onLeaderLost(listener)
  }

  // ---- background duties

  private compactionStep(): void {
    if (this.core.stopped || this.loop.busy()) return
    if (this.store.compactionPending()) {
      this.store.compactStep()
      this.backend.commitIfFull()
    }
  }

  private leaseDuties(): void {
    if (this.core.stopped || !this.isLeader()) return
    for (const id of this.lessor.expired(1000)) {
      this.counters.leaseExpired++
      void this.proposeInternal(RequestKind.LeaseRevoke, { ID: id })
    }
    const checkpoints = this.lessor.dueCheckpoints(1000)
    if (checkpoints.length > 0) {
      void this.proposeInternal(RequestKind.LeaseCheckpoint, { checkpoints: checkpoints.map((c) => ({ ID: c.ID, remaining_TTL: c.remainingTTL })) })
    }
  }

  /** etcd's v2 SYNC: while v2 keys have a TTL, the leader proposes its time; every member expires keys at it. */
  private v2Sync(): void {
    if (this.core.stopped || !this.isLeader() || this.v2?.hasTtlKeys() !== true) return
    this.propose(RequestKind.V2, encodeV2Request(v2Request({ method: "SYNC", timeMs: this.clock.wallNow() }))).catch((e) => this.logger.warn("v2 sync failed", { error: e }))
  }

  /**
   * The backend's periodic commit. While the data dir cannot take writes the
   * batch stays open (a COMMIT that fails makes SQLite drop it, and the member
   * would have to stop and replay); a failure stops the member cleanly.
   */
  private commitBatch(): void {
    if (this.core.stopped || this.core.storageGuard?.problem() !== undefined) return
    try {
      this.backend.commit()
    } catch (e) {
      this.core.fatal(e)
    }
  }

  private checkStorage(): void {
    if (this.core.stopped || this.core.storageGuard === undefined || !this.core.storageGuard.check()) return
    const problem = this.core.storageGuard.problem()
    if (problem === undefined) {
      this.logger.info("the data dir takes writes again; catching up")
      this.kick()
      return
    }
    this.logger.warn("the data dir cannot take writes: refusing proposals, handing leadership over, pausing the raft log", { problem })
    void this.members.transferLeadershipForShutdown()
  }

  private async proposeInternal(kind: RequestKind, body: unknown): Promise<void> {
    let bytes: Uint8Array
    if (kind === RequestKind.LeaseRevoke) bytes = pb.encodeLeaseRevokeRequest(body as pb.LeaseRevokeRequestInit)
    else if (kind === RequestKind.LeaseCheckpoint) bytes = pb.encodeLeaseCheckpointRequest(body as pb.LeaseCheckpointRequestInit)
    else throw new Error(`no internal proposal of kind ${kind}`)
    try {
      await this.propose(kind, bytes)
    } catch (e) {
      if (!isTskvError(e, "leaseNotFound") && !isTskvError(e, "storageUnavailable")) this.logger.warn("internal proposal failed", { kind: RequestKind[kind], error: e })
    }
  }

  /** Resolves once this member serves: its attributes are published through raft (etcd: ReadyNotify). */
  readyNotify(): Promise<void> {
    return this.ready
  }

  /** Publishes this member's name and client URLs through raft until it sticks (etcd: publish). */
  private async publishAttributes(): Promise<void> {
    const clientUrls = this.config.advertiseClientUrls.map((u) => u.text)
    while (!this.core.stopped) {
      const me = this.membership.get(this.memberId)
      try {
        // Attributes already in the state (a restart): a linearizable read shows that the cluster has a leader and this member caught up.
        if (me && me.name === this.config.name && sameList(me.clientUrls, clientUrls)) await this.linearizableBarrier()
        else await this.propose(RequestKind.MemberAttributes, encodeCbor({ id: this.memberId, name: this.config.name, clientUrls }))
        this.markReady()
        return
      } catch (e) {
        if (this.core.stopped) return
        this.logger.warn("publishing member attributes failed, retrying", { error: e })
        await Bun.sleep(500)
      }
    }
  }

  // ---- peers and membership

  reportUnreachable(id: NodeId): void {
    if (this.core.stopped) return
    this.node.reportUnreachable(id)
    this.kick()
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

  dataDirPath(...parts: string[]): string {
    return join(this.config.dataDir, ...parts)
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}
