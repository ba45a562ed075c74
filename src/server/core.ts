// The state every part of the member shares (server.ts builds it, the Ready
// loop, apply, snapshots, duties, membership and the request API receive it):
// the rooms it drives, raft's state as of the last Ready, the proposal
// waiters, the ReadIndex rounds, the counters behind the metrics, and the few
// things every part does (kick the Ready loop, stop, stop on a fatal error).

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
import type { RaftNode } from "../raft/raft_node"
import type { MemoryStorage } from "../raft/storage"
import { type Message, type NodeId, NONE, StateType } from "../raft/types"
import type { Snapshotter } from "../snap/snapshotter"
import type { V2Store } from "../v2store/store"
import type { Wal } from "../wal/wal"
import type { Alarms } from "./alarms"
import type { ApplyResult } from "./applier"
import { LeaderTimes } from "./leader_times"
import type { Membership } from "./membership"
import { ReadIndexer } from "./read_index"
import type { StorageGuard } from "./storage_guard"
import { RequestIdGenerator, Waiters } from "./wait"

/** What the member needs of the peer transport (src/peer), passed in by the composition root. */
export interface PeerSender {
  send(messages: Message[]): void
  /** Writes the messages sent so far now rather than at the end of this turn. */
  flush(): void
  /** Streams a db file with a snapshot message; resolves when the receiver installed it. */
  sendSnapshot(message: Message, dbPath: string): Promise<void>
  addPeer(id: NodeId, urls: readonly string[]): void
  removePeer(id: NodeId): void
  updatePeer(id: NodeId, urls: readonly string[]): void
  /** performance.now() since when the link to `id` is up; 0 when down. */
  activeSince(id: NodeId): number
  call(peerId: NodeId, method: string, payload: Uint8Array, timeoutMs: number): Promise<Uint8Array>
}

/** Counts behind etcd's metrics; numbers only, read at scrape time. */
export interface ServerCounters {
  proposalsFailed: number
  leaderChanges: number
  slowApplies: number
  proposalsPending: number
  heartbeatSendFailures: number
  slowReadIndexes: number
  readIndexesFailed: number
  snapshotApplyInProgress: number
  mvccPut: number
  mvccDelete: number
  mvccRange: number
  mvccTxn: number
  leaseGranted: number
  leaseRenewed: number
  leaseRevoked: number
  leaseExpired: number
  /** Bytes of the applied PutRequests (etcd_debugging_mvcc_total_put_size_in_bytes). */
  mvccPutBytes: number
  learnerPromotes: number
  defragInflight: number
}

export interface ServerParts {
  config: Config
  logger: Logger
  clock: Clock
  memberId: NodeId
  clusterId: NodeId
  backend: Backend
  store: MvccStore
  watchable: WatchableStore
  kv: KvApplier
  lessor: Lessor
  alarms: Alarms
  membership: Membership
  auth?: AuthStore
  v2?: V2Store
  node: RaftNode
  storage: MemoryStorage
  wal: Wal
  snapshotter: Snapshotter
  peers?: PeerSender
}

/** Callbacks the wiring sets on the member (metrics, peers, main.ts). */
export interface ServerHooks {
  /** Timings for the disk histograms (set by the metrics wiring). */
  onWalSync: ((ms: number) => void) | undefined
  onDefrag: ((ms: number) => void) | undefined
  onBackendSnapshot: ((ms: number) => void) | undefined
  onLeaseGrant: ((ttlSeconds: number) => void) | undefined
  /** A db snapshot from the leader was received and saved (fsync and total ms), before it is applied. */
  onSnapshotDbSaved: ((fsyncMs: number, saveMs: number) => void) | undefined
  /** Called when the member stops by itself (removed, fatal error). */
  onFatal: ((error: unknown) => void) | undefined
  /** Forwards MemberPromote to the leader (set by the peer wiring). */
  forwardMemberPromote: ((id: bigint) => Promise<void>) | undefined
  /** Forwards a lease keepalive to the leader (set by the peer wiring); undefined on a lone member. */
  forwardLeaseRenew: ((id: bigint) => Promise<number>) | undefined
  /** Called whenever the leader changes (health, metrics, watch streams requiring a leader). */
  onLeaderChange: ((lead: NodeId) => void) | undefined
}

export class ServerCore {
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
  readonly storage: MemoryStorage
  readonly wal: Wal
  readonly snapshotter: Snapshotter
  peers: PeerSender | undefined
  readonly hooks: ServerHooks
  readonly waiters = new Waiters<ApplyResult>()
  readonly ids: RequestIdGenerator
  readonly reads: ReadIndexer
  readonly timers: ReturnType<typeof setInterval>[] = []
  storageGuard: StorageGuard | undefined
  /** Why the WAL refuses writes now (a refused write or fdatasync; the Ready loop holds its Ready until it goes through). */
  walRefusal: string | undefined
  stopped = false

  /** Raft state as of the last Ready. */
  lead: NodeId = NONE
  raftState: StateType = StateType.Follower
  term = 0
  appliedIndex = 0
  committedIndex = 0
  /** When leadership changed: etcd's leadElectedTime and the v2 stats' leaderInfo.startTime. */
  readonly leaderTimes = new LeaderTimes(performance.now())
  /** Index of the newest raft snapshot (the log before it is released). */
  snapshotIndex: number

  /** Metrics the HTTP room reads. */
  readonly counters: ServerCounters = {
    proposalsFailed: 0,
    leaderChanges: 0,
    slowApplies: 0,
    proposalsPending: 0,
    heartbeatSendFailures: 0,
    slowReadIndexes: 0,
    readIndexesFailed: 0,
    snapshotApplyInProgress: 0,
    mvccPut: 0,
    mvccDelete: 0,
    mvccRange: 0,
    mvccTxn: 0,
    leaseGranted: 0,
    mvccPutBytes: 0,
    learnerPromotes: 0,
    defragInflight: 0,
    leaseRenewed: 0,
    leaseRevoked: 0,
    leaseExpired: 0,
  }

  /** One pass of the Ready loop; ready_loop.ts installs it. */
  runReadyLoop: () => void = () => {}
  private scheduled = false
  private leaderWaiters: (() => void)[] = []
  private readonly leaderLostListeners = new Set<() => void>()

  constructor(parts: ServerParts, hooks: ServerHooks) {
    this.config = parts.config
    this.logger = parts.logger
    this.clock = parts.clock
    this.memberId = parts.memberId
    this.clusterId = parts.clusterId
    this.backend = parts.backend
    this.store = parts.store
    this.watchable = parts.watchable
    this.kv = parts.kv
    this.lessor = parts.lessor
    this.alarms = parts.alarms
    this.membership = parts.membership
    this.auth = parts.auth
    this.v2 = parts.v2
    this.node = parts.node
    this.storage = parts.storage
    this.wal = parts.wal
    this.snapshotter = parts.snapshotter
    this.peers = parts.peers
    this.hooks = hooks
    this.snapshotIndex = parts.storage.snapshot().metadata.index
    this.term = parts.storage.initialState().hardState.term
    this.ids = new RequestIdGenerator(Date.now())
    this.appliedIndex = this.backend.consistentIndex().index
    this.reads = new ReadIndexer({
      request: (ctx) => this.node.readIndex(ctx),
      applied: () => this.appliedIndex,
      retryMs: 500,
      onRetry: () => this.counters.slowReadIndexes++,
    })
  }

  /** Schedules one pass of the Ready loop after the current I/O callbacks (batching). */
  kick(): void {
    if (this.scheduled || this.stopped) return
    this.scheduled = true
    setImmediate(() => {
      this.scheduled = false
      this.runReadyLoop()
    })
  }

  /** Stops timers, fails waiters, flushes the backend and closes the WAL. */
  async stop(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    for (const t of this.timers) clearInterval(t)
    const err = new TskvError("stopped")
    this.waiters.failAll(err)
    this.reads.failAll(err)
    for (const w of this.leaderWaiters) w()
    this.leaderWaiters = []
    this.closeStorage()
  }

  /**
   * Closes the backend and the WAL. On a data dir that cannot take writes
   * (read-only, full) the backend's last batch cannot be committed nor the
   * WAL's tail synced: the stop still ends cleanly, with one line saying so
   * (every acknowledged write is in the WAL, synced; the restart replays it).
   */
  private closeStorage(): void {
    const failures: { part: string; error: unknown }[] = []
    for (const [part, close] of [["backend", () => this.backend.close()], ["wal", () => this.wal.close()]] as const) {
      try {
        close()
      } catch (error) {
        failures.push({ part, error })
      }
    }
    if (failures.length === 0) return
    this.storageGuard?.check()
    const problem = this.writeProblem()
    if (problem === undefined) throw failures[0]!.error
    this.logger.warn("stopping on a data dir that cannot take writes: the backend's last batch is not committed and the WAL's tail not synced; every acknowledged write is in the WAL, the restart replays it", {
      problem,
      ...Object.fromEntries(failures.map((f) => [`${f.part}-error`, f.error instanceof Error ? f.error.message : String(f.error)])),
    })
  }

  /** Why this member cannot take writes now (the data dir's file system, or the WAL refusing them); undefined: it can. */
  writeProblem(): string | undefined {
    return this.storageGuard?.problem() ?? this.walRefusal
  }

  fatal(error: unknown): void {
    if (this.stopped) return
    this.logger.error("member stopping on a fatal error", { error: error instanceof Error ? error.stack ?? error.message : String(error) })
    void this.stop().finally(() => this.hooks.onFatal?.(error))
  }

  isLeader(): boolean {
    return this.raftState === StateType.Leader
  }

  hasLeader(): boolean {
    return this.lead !== NONE
  }

  /** The members this member can reach now (and itself): etcd's "started" members for --strict-reconfig-check. */
  isReachable(id: NodeId): boolean {
    if (id === this.memberId) return true
    const since = this.peers?.activeSince(id) ?? 0
    return since > 0
  }

  requestTimeoutMs(): number {
    return 5000 + 2 * this.config.electionMs
  }

  /** etcd's parseProposeCtxErr: why a proposal started at `startedAt` (performance.now()) timed out. */
  timeoutError(startedAt: number): TskvError {
    if (this.leaderTimes.dueToLeaderFail(startedAt, this.config.electionMs)) return new TskvError("timeoutDueToLeaderFail")
    if (this.lead !== NONE && this.lead !== this.memberId && !this.isReachable(this.lead)) return new TskvError("timeoutDueToConnectionLost")
    return new TskvError("timeout")
  }

  waitForLeader(ms: number, onTimeout: () => TskvError = () => new TskvError("noLeader")): Promise<void> {
    if (this.hasLeader()) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.leaderWaiters = this.leaderWaiters.filter((w) => w !== done)
        reject(onTimeout())
      }, ms)
      const done = (): void => {
        clearTimeout(timer)
        if (this.stopped) reject(new TskvError("stopped"))
        else resolve()
      }
      this.leaderWaiters.push(done)
    })
  }

  /** A Ready's soft state: the leader and this member's role changed. */
  onSoftState(lead: NodeId, state: StateType): void {
    const wasLeader = this.raftState === StateType.Leader
    if (lead !== this.lead) {
      this.counters.leaderChanges++
      this.logger.info(lead === NONE ? "lost leader" : "leader elected", { leader: lead, term: this.term })
    }
    this.lead = lead
    this.raftState = state
    if (state === StateType.Leader && !wasLeader) this.lessor.promote(this.config.electionMs)
    if (state !== StateType.Leader && wasLeader) this.lessor.demote()
    this.leaderTimes.observe({ lead, isLeader: state === StateType.Leader, now: performance.now() })
    if (lead !== NONE) {
      const ws = this.leaderWaiters
      this.leaderWaiters = []
      for (const w of ws) w()
    }
    if (lead === NONE) for (const l of this.leaderLostListeners) l()
    this.hooks.onLeaderChange?.(lead)
  }

  /** Calls `listener` whenever this member loses its leader; returns the unsubscribe function. */
  onLeaderLost(listener: () => void): () => void {
    this.leaderLostListeners.add(listener)
    return () => this.leaderLostListeners.delete(listener)
  }
}
