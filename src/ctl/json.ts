// etcdctl's -w json: Go's encoding/json of the etcd 3.4 Go structs (gogo
// protobuf types with omitempty json tags, clientv3 wrappers with embedded
// headers). Field lists are those of etcd 3.4, not of our newer protos.
import type {
  AlarmMember,
  DeleteRangeResponse,
  Event,
  HashKVResponse,
  KeyValue,
  Member,
  Permission,
  PutResponse,
  RangeResponse,
  ResponseHeader,
  ResponseOp,
  StatusResponse,
  TxnResponse,
} from "../pb"
import { full, i64, jArray, jObject, om, u64, type JsonText } from "./go_fmt"

export function jHeaderFields(h: ResponseHeader | undefined): [string, JsonText][] {
  if (h === undefined) return []
  return [
    ["cluster_id", om.num(BigInt.asUintN(64, h.clusterId))],
    ["member_id", om.num(BigInt.asUintN(64, h.memberId))],
    ["revision", om.num(h.revision)],
    ["raft_term", om.num(h.raftTerm)],
  ]
}

export function jHeader(h: ResponseHeader | undefined): JsonText {
  return h === undefined ? undefined : jObject(jHeaderFields(h))
}

export function jKv(kv: KeyValue): string {
  return jObject([
    ["key", om.bytes(kv.key)],
    ["create_revision", om.num(kv.createRevision)],
    ["mod_revision", om.num(kv.modRevision)],
    ["version", om.num(kv.version)],
    ["value", om.bytes(kv.value)],
    ["lease", om.num(BigInt.asIntN(64, kv.lease))],
  ])
}

export function jRange(r: RangeResponse): string {
  return jObject([
    ["header", jHeader(r.header)],
    ["kvs", om.arr(r.kvs.map(jKv))],
    ["more", om.bool(r.more)],
    ["count", om.num(r.count)],
  ])
}

export function jPut(r: PutResponse): string {
  return jObject([
    ["header", jHeader(r.header)],
    ["prev_kv", r.prevKv === undefined ? undefined : jKv(r.prevKv)],
  ])
}

export function jDel(r: DeleteRangeResponse): string {
  return jObject([
    ["header", jHeader(r.header)],
    ["deleted", om.num(r.deleted)],
    ["prev_kvs", om.arr(r.prevKvs.map(jKv))],
  ])
}

function jResponseOp(op: ResponseOp): string {
  let inner: string | undefined
  if (op.responseRange !== undefined) inner = jObject([["ResponseRange", jRange(op.responseRange)]])
  else if (op.responsePut !== undefined) inner = jObject([["ResponsePut", jPut(op.responsePut)]])
  else if (op.responseDeleteRange !== undefined) inner = jObject([["ResponseDeleteRange", jDel(op.responseDeleteRange)]])
  else if (op.responseTxn !== undefined) inner = jObject([["ResponseTxn", jTxn(op.responseTxn)]])
  return jObject([["Response", inner ?? "null"]])
}

export function jTxn(r: TxnResponse): string {
  return jObject([
    ["header", jHeader(r.header)],
    ["succeeded", om.bool(r.succeeded)],
    ["responses", om.arr(r.responses.map(jResponseOp))],
  ])
}

export function jEvent(e: Event): string {
  return jObject([
    ["type", om.num(e.type)],
    ["kv", e.kv === undefined ? undefined : jKv(e.kv)],
    ["prev_kv", e.prevKv === undefined ? undefined : jKv(e.prevKv)],
  ])
}

/** clientv3.WatchResponse (3.4): Header by value, Events, CompactRevision, Canceled, Created. */
export function jWatch(r: { header: ResponseHeader | undefined; events: Event[]; compactRevision: number; canceled: boolean; created: boolean }): string {
  return jObject([
    ["Header", jObject(jHeaderFields(r.header))],
    ["Events", r.events.length === 0 ? "null" : jArray(r.events.map(jEvent))],
    ["CompactRevision", full.num(r.compactRevision)],
    ["Canceled", full.bool(r.canceled)],
    ["Created", full.bool(r.created)],
  ])
}

export function jMember(m: Member): string {
  return jObject([
    ["ID", om.num(BigInt.asUintN(64, m.ID))],
    ["name", om.str(m.name)],
    ["peerURLs", om.arr(m.peerURLs.map(full.str))],
    ["clientURLs", om.arr(m.clientURLs.map(full.str))],
    ["isLearner", om.bool(m.isLearner)],
  ])
}

export function jStatus(r: StatusResponse): string {
  return jObject([
    ["header", jHeader(r.header)],
    ["version", om.str(r.version)],
    ["dbSize", om.num(r.dbSize)],
    ["leader", om.num(BigInt.asUintN(64, r.leader))],
    ["raftIndex", om.num(r.raftIndex)],
    ["raftTerm", om.num(r.raftTerm)],
    ["raftAppliedIndex", om.num(r.raftAppliedIndex)],
    ["errors", om.arr(r.errors.map(full.str))],
    ["dbSizeInUse", om.num(r.dbSizeInUse)],
    ["isLearner", om.bool(r.isLearner)],
  ])
}

export function jHashKV(r: HashKVResponse): string {
  return jObject([
    ["header", jHeader(r.header)],
    ["hash", om.num(r.hash)],
    ["compact_revision", om.num(r.compactRevision)],
  ])
}

export function jAlarm(a: AlarmMember): string {
  return jObject([
    ["memberID", om.num(BigInt.asUintN(64, a.memberID))],
    ["alarm", om.num(a.alarm)],
  ])
}

export function jPermission(p: Permission): string {
  return jObject([
    ["permType", om.num(p.permType)],
    ["key", om.bytes(p.key)],
    ["range_end", om.bytes(p.rangeEnd)],
  ])
}

/** A lease id as clientv3.LeaseID (int64). */
export function jLeaseId(id: bigint): string {
  return i64(id)
}

export { u64 }
