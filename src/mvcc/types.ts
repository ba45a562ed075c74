// The etcd protobuf shapes mvcc reads and produces. Messages that mvcc returns
// whole (KeyValue, Event, ResponseHeader) and every enum are src/pb's own
// declarations; the requests are declared here with optional fields, so that a
// decoded pb request and a partial one built by the server both pass.

import type { KeyValue } from "../pb/mvccpb"
import type { ResponseHeader } from "../pb/etcdserverpb"

export type { KeyValue, Event } from "../pb/mvccpb"
export type { ResponseHeader }
export { Event_EventType as EventType } from "../pb/mvccpb"
export {
  RangeRequest_SortOrder as SortOrder,
  RangeRequest_SortTarget as SortTarget,
  Compare_CompareResult as CompareResult,
  Compare_CompareTarget as CompareTarget,
  WatchCreateRequest_FilterType as WatchFilterType,
} from "../pb/etcdserverpb"

export interface RangeRequest {
  key: Uint8Array
  rangeEnd?: Uint8Array
  limit?: number
  revision?: number
  sortOrder?: number
  sortTarget?: number
  serializable?: boolean
  keysOnly?: boolean
  countOnly?: boolean
  minModRevision?: number
  maxModRevision?: number
  minCreateRevision?: number
  maxCreateRevision?: number
}

export interface RangeResponse {
  header?: ResponseHeader
  kvs: KeyValue[]
  more: boolean
  count: number
}

export interface PutRequest {
  key: Uint8Array
  value?: Uint8Array
  lease?: bigint
  prevKv?: boolean
  ignoreValue?: boolean
  ignoreLease?: boolean
}

export interface PutResponse {
  header?: ResponseHeader
  prevKv?: KeyValue
}

export interface DeleteRangeRequest {
  key: Uint8Array
  rangeEnd?: Uint8Array
  prevKv?: boolean
}

export interface DeleteRangeResponse {
  header?: ResponseHeader
  deleted: number
  prevKvs: KeyValue[]
}

export interface Compare {
  result: number
  target: number
  key: Uint8Array
  rangeEnd?: Uint8Array
  version?: number
  createRevision?: number
  modRevision?: number
  value?: Uint8Array
  lease?: bigint
}

export interface RequestOp {
  requestRange?: RangeRequest
  requestPut?: PutRequest
  requestDeleteRange?: DeleteRangeRequest
  requestTxn?: TxnRequest
}

export interface ResponseOp {
  responseRange?: RangeResponse
  responsePut?: PutResponse
  responseDeleteRange?: DeleteRangeResponse
  responseTxn?: TxnResponse
}

export interface TxnRequest {
  compare: Compare[]
  success: RequestOp[]
  failure: RequestOp[]
}

export interface TxnResponse {
  header?: ResponseHeader
  succeeded: boolean
  responses: ResponseOp[]
}

/** Builds a header carrying only a revision; the server fills in the rest. */
export function revisionHeader(revision: number): ResponseHeader {
  return { clusterId: 0n, memberId: 0n, revision, raftTerm: 0 }
}
