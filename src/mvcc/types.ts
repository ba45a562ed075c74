// Structural copies of the etcd protobuf shapes mvcc reads and produces
// (etcdserverpb / mvccpb), following the shared convention: camelCase field
// names, bytes as Uint8Array, revisions as number, lease ids as bigint. When
// src/pb lands, its decoded messages are assignable to these, so the API layer
// passes requests straight down.

export interface KeyValue {
  key: Uint8Array
  createRevision: number
  modRevision: number
  version: number
  value: Uint8Array
  lease: bigint
}

export enum EventType {
  PUT = 0,
  DELETE = 1,
}

export interface Event {
  type: EventType
  kv?: KeyValue
  prevKv?: KeyValue
}

export interface ResponseHeader {
  clusterId: bigint
  memberId: bigint
  revision: number
  raftTerm: number
}

export enum SortOrder {
  NONE = 0,
  ASCEND = 1,
  DESCEND = 2,
}

export enum SortTarget {
  KEY = 0,
  VERSION = 1,
  CREATE = 2,
  MOD = 3,
  VALUE = 4,
}

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

export enum CompareResult {
  EQUAL = 0,
  GREATER = 1,
  LESS = 2,
  NOT_EQUAL = 3,
}

export enum CompareTarget {
  VERSION = 0,
  CREATE = 1,
  MOD = 2,
  VALUE = 3,
  LEASE = 4,
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

export enum WatchFilterType {
  NOPUT = 0,
  NODELETE = 1,
}

/** Builds a header carrying only a revision; the server fills in the rest. */
export function revisionHeader(revision: number): ResponseHeader {
  return { clusterId: 0n, memberId: 0n, revision, raftTerm: 0 }
}
