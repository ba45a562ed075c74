// Applies committed raft entries to the state: mvcc, leases, alarms,
// membership attributes and auth. Deterministic: the same entry gives the same
// result on every member (errors included), because every member applies
// the same log. The result of an entry goes to the waiter of the member that
// proposed it.

import type { AuthStore } from "../auth/store"
import type { Backend } from "../backend/backend"
import { TskvError } from "../lib/errors"
import type { Lessor } from "../lease/lessor"
import type { KvApplier } from "../mvcc/kv_applier"
import { isReadOnly } from "../mvcc/kv_applier"
import type { MvccStore } from "../mvcc/kv_store"
import * as pb from "../pb"
import type { NodeId } from "../raft/types"
import { applyV2, decodeV2Request } from "../v2store/apply"
import type { V2Store } from "../v2store/store"
import type { Alarms } from "./alarms"
import type { Membership } from "./membership"
import { type DecodedRequest, decodeMemberAttributes, RequestKind } from "./request"

export interface ApplierDeps {
  backend: Backend
  store: MvccStore
  kv: KvApplier
  lessor: Lessor
  alarms: Alarms
  membership: Membership
  auth?: AuthStore
  v2?: V2Store
  /** Applies an auth mutation (server/auth_apply.ts); undefined until auth is wired. */
  applyAuth?: (req: DecodedRequest) => unknown
  /** Counts for etcd's mvcc and lease metrics. */
  counters?: { mvccPut: number; mvccDelete: number; mvccRange: number; mvccTxn: number; leaseGranted: number; leaseRevoked: number; mvccPutBytes: number }
  /** Each granted lease's TTL in seconds (etcd_debugging_lease_ttl_total). */
  onLeaseGrant?: (ttlSeconds: number) => void
  /** Called when NOSPACE or another alarm changes, to update metrics and health. */
  onAlarmChange?: () => void
}

/** What apply hands to the waiter: a response object, or the error to return. */
export type ApplyResult = { ok: true; response: unknown } | { ok: false; error: unknown }

export class Applier {
  constructor(private readonly deps: ApplierDeps) {}

  /** Wires the auth applier (built after the server, because it needs the applied index). */
  setAuthApplier(applyAuth: (req: DecodedRequest) => unknown): void {
    this.deps.applyAuth = applyAuth
  }

  apply(req: DecodedRequest): ApplyResult {
    try {
      const response = this.dispatch(req)
      this.count(req, response)
      return { ok: true, response }
    } catch (error) {
      if (error instanceof TskvError) return { ok: false, error }
      throw error
    }
  }

  private dispatch(req: DecodedRequest): unknown {
    const d = this.deps
    switch (req.kind) {
      case RequestKind.Put: {
        this.checkAuthRevision(req)
        this.checkSpace()
        return d.kv.put(pb.decodePutRequest(req.body))
      }
      case RequestKind.DeleteRange:
        this.checkAuthRevision(req)
        if (this.deps.alarms.has(pb.AlarmType.CORRUPT)) throw new TskvError("corrupt")
        return d.kv.deleteRange(pb.decodeDeleteRangeRequest(req.body))
      case RequestKind.Txn: {
        this.checkAuthRevision(req)
        const txn = pb.decodeTxnRequest(req.body)
        if (!isReadOnly(txn)) this.checkSpace()
        return d.kv.txn(txn)
      }
      case RequestKind.Compaction: {
        const c = pb.decodeCompactionRequest(req.body)
        d.store.compact(c.revision)
        return { header: { revision: d.store.currentRevision() } } satisfies pb.CompactionResponseInit
      }
      case RequestKind.LeaseGrant: {
        this.checkSpace()
        const g = pb.decodeLeaseGrantRequest(req.body)
        const granted = d.lessor.grant(g.ID, g.TTL)
        return { header: { revision: d.store.currentRevision() }, ID: granted.ID, TTL: granted.TTL, error: "" }
      }
      case RequestKind.LeaseRevoke: {
        const r = pb.decodeLeaseRevokeRequest(req.body)
        d.lessor.revoke(r.ID)
        return { header: { revision: d.store.currentRevision() } } satisfies pb.LeaseRevokeResponseInit
      }
      case RequestKind.LeaseCheckpoint: {
        const c = pb.decodeLeaseCheckpointRequest(req.body)
        for (const cp of c.checkpoints) {
          if (d.lessor.has(cp.ID)) d.lessor.checkpoint(cp.ID, cp.remaining_TTL)
        }
        return { header: { revision: d.store.currentRevision() } }
      }
      case RequestKind.Alarm:
        return this.applyAlarm(pb.decodeAlarmRequest(req.body))
      case RequestKind.MemberAttributes: {
        const attrs = decodeMemberAttributes(req.body)
        d.membership.setAttributes(attrs.id, attrs.name, attrs.clientUrls)
        d.v2?.recordInternalWrites(1)
        return {}
      }
      case RequestKind.Auth:
        if (!d.applyAuth) throw new TskvError("notCapable", "auth requests are not wired")
        return d.applyAuth(req)
      case RequestKind.Noop:
        return {}
      case RequestKind.V2:
        if (!d.v2) throw new TskvError("notCapable", "no v2 store")
        return applyV2(d.v2, decodeV2Request(req.body))
    }
  }

  /** etcd's mvcc and lease counters, by applied request (txn ops counted one by one, as mvcc does). */
  private count(req: DecodedRequest, response: unknown): void {
    const c = this.deps.counters
    if (!c) return
    switch (req.kind) {
      case RequestKind.Put:
        c.mvccPut++
        c.mvccPutBytes += req.body.length
        return
      case RequestKind.DeleteRange:
        c.mvccDelete++
        return
      case RequestKind.Txn:
        countTxnOps(c, response as pb.TxnResponse)
        return
      case RequestKind.LeaseGrant:
        c.leaseGranted++
        this.deps.onLeaseGrant?.(Number((response as { TTL?: number | bigint }).TTL ?? 0))
        return
      case RequestKind.LeaseRevoke:
        c.leaseRevoked++
        return
      default:
    }
  }

  /** etcd re-checks the auth revision at apply: a token older than the auth store is refused. */
  private checkAuthRevision(req: DecodedRequest): void {
    const auth = this.deps.auth
    if (!auth || !auth.isEnabled() || req.user === "") return
    if (req.authRevision < auth.revision()) throw new TskvError("authOldRevision")
  }

  /** Writes are refused while NOSPACE (the quota) or CORRUPT (a member's state differs) is raised. */
  private checkSpace(): void {
    if (this.deps.alarms.has(pb.AlarmType.CORRUPT)) throw new TskvError("corrupt")
    if (this.deps.alarms.has(pb.AlarmType.NOSPACE)) throw new TskvError("noSpace")
  }

  private applyAlarm(a: pb.AlarmRequest): pb.AlarmResponseInit {
    const alarms = this.deps.alarms
    const header = { revision: this.deps.store.currentRevision() }
    switch (a.action) {
      case pb.AlarmRequest_AlarmAction.GET:
        return { header, alarms: alarms.list(a.alarm) }
      case pb.AlarmRequest_AlarmAction.ACTIVATE: {
        if (a.alarm === pb.AlarmType.NONE) return { header, alarms: [] }
        const raised = alarms.activate(a.memberID as NodeId, a.alarm)
        this.deps.onAlarmChange?.()
        return { header, alarms: raised ? [raised] : [] }
      }
      case pb.AlarmRequest_AlarmAction.DEACTIVATE: {
        const targets = a.alarm === pb.AlarmType.NONE ? alarms.list().filter((x) => x.memberID === a.memberID) : [{ memberID: a.memberID, alarm: a.alarm }]
        const cleared = targets.flatMap((t) => alarms.deactivate(t.memberID, t.alarm) ?? [])
        this.deps.onAlarmChange?.()
        return { header, alarms: cleared }
      }
      default:
        return { header, alarms: [] }
    }
  }
}

/** Counts the operations a txn executed (its responses: only the branch that ran, nested txns included). */
export function countTxnOps(c: { mvccPut: number; mvccDelete: number; mvccRange: number; mvccTxn: number }, res: pb.TxnResponse): void {
  c.mvccTxn++
  for (const r of res.responses) {
    if (r.responsePut) c.mvccPut++
    else if (r.responseDeleteRange) c.mvccDelete++
    else if (r.responseRange) c.mvccRange++
    else if (r.responseTxn) countTxnOps(c, r.responseTxn)
  }
}
