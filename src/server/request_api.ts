// The request API's way into raft (etcd's v3_server.go): a request becomes a
// proposal whose waiter is answered when this member applies it; a
// linearizable read waits for a ReadIndex round; the quota check before a
// write raises the NOSPACE alarm through raft.

import { isTskvError, TskvError } from "../lib/errors"
import * as pb from "../pb"
import type { NodeId } from "../raft/types"
import type { ServerCore } from "./core"
import { encodeRequest, RequestKind } from "./request"

/** etcd: proposals fail fast when apply lags commit by more than this. */
const MAX_GAP_BETWEEN_APPLY_AND_COMMIT = 5000

/** Who a request runs as (auth), recorded in the raft entry. */
export interface RequestAuth {
  user: string
  revision: number
}

export class RequestApi {
  constructor(
    private readonly core: ServerCore,
    /** Queues an encoded request for the Ready loop's next batch (ready_loop.ts). */
    private readonly queue: (data: Uint8Array) => void,
  ) {}

  /**
   * Proposes a request through raft and resolves with the result of applying
   * it on this member. Errors: TskvError (etcd's) only.
   */
  async propose(kind: RequestKind, body: Uint8Array, auth?: RequestAuth): Promise<unknown> {
    if (this.core.stopped) throw new TskvError("stopped")
    const storageProblem = this.core.writeProblem()
    if (storageProblem !== undefined) throw new TskvError("storageUnavailable", storageProblem)
    if (this.core.committedIndex - this.core.appliedIndex > MAX_GAP_BETWEEN_APPLY_AND_COMMIT) throw new TskvError("tooManyRequests")
    const seq = this.core.ids.take()
    const data = encodeRequest({ kind, origin: this.core.memberId, seq, authRevision: auth?.revision ?? 0, user: auth?.user ?? "" }, body)
    if (data.length > this.core.config.maxRequestBytes) throw new TskvError("requestTooLarge")
    // Like etcd 3.4, a proposal waits for a leader up to the request timeout, then fails with the raw context error.
    const started = performance.now()
    if (!this.core.hasLeader()) await this.core.waitForLeader(this.core.requestTimeoutMs(), () => new TskvError("proposalNoLeader"))
    const result = this.core.waiters.register(seq)
    this.queue(data)
    this.core.counters.proposalsPending++
    this.core.kick()
    const remaining = Math.max(1, this.core.requestTimeoutMs() - (performance.now() - started))
    const timer = setTimeout(() => this.core.waiters.fail(seq, this.core.timeoutError(started)), remaining)
    try {
      const r = await result
      if (!r.ok) throw r.error
      return r.response
    } catch (e) {
      if (isTskvError(e)) this.core.counters.proposalsFailed++
      throw e
    } finally {
      clearTimeout(timer)
      this.core.counters.proposalsPending--
    }
  }

  /**
   * The quota check etcd makes before proposing a write: when the backend
   * would pass --quota-backend-bytes, raise the NOSPACE alarm (through raft,
   * once) and refuse the write. `costBytes` is etcd's estimate of the write.
   */
  async checkQuota(costBytes: number): Promise<void> {
    if (this.core.alarms.has(pb.AlarmType.NOSPACE)) throw new TskvError("noSpace")
    if (costBytes === 0) return
    if (this.core.backend.sizeBytes() + costBytes <= this.core.config.quotaBackendBytes) return
    this.core.logger.warn("backend quota exceeded; raising the NOSPACE alarm", { quota: this.core.config.quotaBackendBytes, size: this.core.backend.sizeBytes() })
    try {
      await this.propose(RequestKind.Alarm, pb.encodeAlarmRequest({ action: pb.AlarmRequest_AlarmAction.ACTIVATE, memberID: this.core.memberId, alarm: pb.AlarmType.NOSPACE }))
    } catch (e) {
      this.core.logger.warn("raising the NOSPACE alarm failed", { error: e })
    }
    throw new TskvError("noSpace")
  }

  /** Raises an alarm for a member through raft (NOSPACE, CORRUPT). */
  async raiseAlarm(alarm: pb.AlarmType, memberId: NodeId): Promise<void> {
    await this.propose(RequestKind.Alarm, pb.encodeAlarmRequest({ action: pb.AlarmRequest_AlarmAction.ACTIVATE, memberID: memberId, alarm }))
  }

  /** Waits until a read at this moment is linearizable on this member. */
  async linearizableBarrier(): Promise<void> {
    if (this.core.stopped) throw new TskvError("stopped")
    // Without a leader the ReadIndex round is retried until the request timeout (etcd: "request timed out").
    let timer: ReturnType<typeof setTimeout> | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new TskvError("timeout")), this.core.requestTimeoutMs())
    })
    try {
      this.core.kick()
      await Promise.race([this.core.reads.wait(), timeout])
    } catch (e) {
      this.core.counters.readIndexesFailed++
      throw e
    } finally {
      clearTimeout(timer)
    }
  }
}
