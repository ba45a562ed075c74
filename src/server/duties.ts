// What the member does by itself, on timers: raft's tick, the backend's
// batch commit, compaction steps, the leader's lease expiry and checkpoints
// and v2 SYNC, the storage guard's probe, auto-compaction, watch progress
// notifications; and publishing this member's attributes once it starts.

import { BackendWriteRefused } from "../backend/backend"
import { isTskvError } from "../lib/errors"
import * as pb from "../pb"
import { encodeV2Request, v2Request } from "../v2store/apply"
import { Compactor } from "./compactor"
import type { ServerCore } from "./core"
import type { MemberAdmin } from "./member_admin"
import type { ReadyLoop } from "./ready_loop"
import { encodeCbor, RequestKind } from "./request"
import type { RequestApi } from "./request_api"
import { dataDirProbe, STORAGE_CHECK_MS, StorageGuard } from "./storage_guard"

/** etcd: the leader checks for expired leases every 500 ms. */
const LEASE_CHECK_MS = 500

export interface DutiesParts {
  loop: ReadyLoop
  requests: RequestApi
  members: MemberAdmin
}

export class Duties {
  private markReady: () => void = () => {}
  private readonly ready = new Promise<void>((resolve) => (this.markReady = resolve))

  constructor(
    private readonly core: ServerCore,
    private readonly parts: DutiesParts,
  ) {}

  /** Starts the timers (raft's tick among them) and the publishing of this member's attributes. */
  start(): void {
    const c = this.core.config
    this.core.timers.push(setInterval(() => this.parts.loop.tick(), c.heartbeatMs))
    this.core.timers.push(setInterval(() => this.commitBatch(), Math.max(1, c.backendBatchIntervalMs)))
    this.core.timers.push(setInterval(() => this.compactionStep(), Math.max(1, c.compactionSleepIntervalMs)))
    this.core.timers.push(setInterval(() => this.leaseDuties(), LEASE_CHECK_MS))
    this.core.timers.push(setInterval(() => this.v2Sync(), LEASE_CHECK_MS))
    this.core.storageGuard = new StorageGuard(dataDirProbe(c.dataDir))
    this.core.timers.push(setInterval(() => this.checkStorage(), STORAGE_CHECK_MS))
    const compactor = new Compactor(c.autoCompaction, {
      clock: this.core.clock,
      currentRevision: () => this.core.store.currentRevision(),
      compactedRevision: () => this.core.store.compactedRevision(),
      isLeader: () => this.core.isLeader(),
      compact: async (revision) => {
        try {
          await this.parts.requests.propose(RequestKind.Compaction, pb.encodeCompactionRequest({ revision }))
          this.core.logger.info("auto-compaction done", { revision })
        } catch (e) {
          this.core.logger.warn("auto-compaction failed", { revision, error: e })
        }
      },
    })
    if (compactor.enabled()) this.core.timers.push(setInterval(() => void compactor.tick(), compactor.tickIntervalMs()))
    if (c.watchProgressNotifyIntervalMs > 0) {
      this.core.timers.push(setInterval(() => this.core.watchable.notifyProgress(), c.watchProgressNotifyIntervalMs))
    }
    this.core.kick()
    void this.publishAttributes()
  }

  private compactionStep(): void {
    if (this.core.stopped || this.parts.loop.busy()) return
    if (this.core.store.compactionPending()) {
      try {
        this.core.store.compactStep()
        this.core.backend.commitIfFull()
      } catch (e) {
        // The batch was rolled back and is being applied again (apply_entries.ts); the step comes again.
        if (!(e instanceof BackendWriteRefused)) this.core.fatal(e)
      }
    }
  }

  private leaseDuties(): void {
    if (this.core.stopped || !this.core.isLeader()) return
    for (const id of this.core.lessor.expired(1000)) {
      this.core.counters.leaseExpired++
      void this.proposeInternal(RequestKind.LeaseRevoke, { ID: id })
    }
    const checkpoints = this.core.lessor.dueCheckpoints(1000)
    if (checkpoints.length > 0) {
      void this.proposeInternal(RequestKind.LeaseCheckpoint, { checkpoints: checkpoints.map((c) => ({ ID: c.ID, remaining_TTL: c.remainingTTL })) })
    }
  }

  /** etcd's v2 SYNC: while v2 keys have a TTL, the leader proposes its time; every member expires keys at it. */
  private v2Sync(): void {
    if (this.core.stopped || !this.core.isLeader() || this.core.v2?.hasTtlKeys() !== true) return
    this.parts.requests.propose(RequestKind.V2, encodeV2Request(v2Request({ method: "SYNC", timeMs: this.core.clock.wallNow() }))).catch((e) => this.core.logger.warn("v2 sync failed", { error: e }))
  }

  /**
   * The backend's periodic commit. While the data dir cannot take writes the
   * batch stays open (a COMMIT that fails makes SQLite drop it, and the
   * entries since the last commit must be applied again). The data dir is
   * probed right before (two syscalls): a file system that went read-only or
   * full since the last periodic check holds the batch too. A COMMIT the disk
   * refuses all the same (the kernel's own few milliseconds of turning the
   * file system read-only) is recovered from (BackendWriteRefused); any other
   * failure stops the member.
   */
  private commitBatch(): void {
    this.checkStorage()
    if (this.core.stopped || this.core.storageGuard?.problem() !== undefined) return
    try {
      this.core.backend.commit()
    } catch (e) {
      if (!(e instanceof BackendWriteRefused)) this.core.fatal(e)
    }
  }

  private checkStorage(): void {
    if (this.core.stopped || this.core.storageGuard === undefined || !this.core.storageGuard.check()) return
    const problem = this.core.storageGuard.problem()
    if (problem === undefined) {
      this.core.logger.info("the data dir takes writes again; catching up")
      this.core.kick()
      return
    }
    this.core.logger.warn("the data dir cannot take writes: refusing proposals, handing leadership over, pausing the raft log", { problem })
    void this.parts.members.transferLeadershipForShutdown()
  }

  /** Proposals the member makes by itself (lease expiry, checkpoints); failures are logged only. */
  private async proposeInternal(kind: RequestKind, body: unknown): Promise<void> {
    let bytes: Uint8Array
    if (kind === RequestKind.LeaseRevoke) bytes = pb.encodeLeaseRevokeRequest(body as pb.LeaseRevokeRequestInit)
    else if (kind === RequestKind.LeaseCheckpoint) bytes = pb.encodeLeaseCheckpointRequest(body as pb.LeaseCheckpointRequestInit)
    else throw new Error(`no internal proposal of kind ${kind}`)
    try {
      await this.parts.requests.propose(kind, bytes)
    } catch (e) {
      if (!isTskvError(e, "leaseNotFound") && !isTskvError(e, "storageUnavailable")) this.core.logger.warn("internal proposal failed", { kind: RequestKind[kind], error: e })
    }
  }

  /** Resolves once this member serves: its attributes are published through raft (etcd: ReadyNotify). */
  readyNotify(): Promise<void> {
    return this.ready
  }

  /** Publishes this member's name and client URLs through raft until it sticks (etcd: publish). */
  private async publishAttributes(): Promise<void> {
    const clientUrls = this.core.config.advertiseClientUrls.map((u) => u.text)
    while (!this.core.stopped) {
      const me = this.core.membership.get(this.core.memberId)
      try {
        // Attributes already in the state (a restart): a linearizable read shows that the cluster has a leader and this member caught up.
        if (me && me.name === this.core.config.name && sameList(me.clientUrls, clientUrls)) await this.parts.requests.linearizableBarrier()
        else await this.parts.requests.propose(RequestKind.MemberAttributes, encodeCbor({ id: this.core.memberId, name: this.core.config.name, clientUrls }))
        this.markReady()
        return
      } catch (e) {
        if (this.core.stopped) return
        this.core.logger.warn("publishing member attributes failed, retrying", { error: e })
        await Bun.sleep(500)
      }
    }
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}
