// Which permissions a KV, Txn, Watch or Lease request needs, as etcd decides
// (server/etcdserver/apply/auth.go, txn auth): Range and compares need READ,
// Put and DeleteRange need WRITE, prev_kv also needs READ, a Txn needs all of
// that for every compare and every op of BOTH branches (nested txns too,
// whichever branch would run), a Put with a lease needs WRITE on every key
// already attached to that lease, and LeaseRevoke / LeaseTimeToLive need
// WRITE / READ on every attached key unless the user is an admin.
// The server calls these before proposing and again at apply time (with the
// AuthInfo carried in the entry), like etcd. Each throws a TskvError.

import type { AuthStore } from "./store"
import type { AuthInfo } from "./types"

// Structural subsets of etcdserverpb messages (the shared pb convention).
export interface RangeRequestLike {
  key: Uint8Array
  rangeEnd: Uint8Array
}
export interface PutRequestLike {
  key: Uint8Array
  lease: bigint
  prevKv: boolean
}
export interface DeleteRangeRequestLike {
  key: Uint8Array
  rangeEnd: Uint8Array
  prevKv: boolean
}
export interface CompareLike {
  key: Uint8Array
  rangeEnd: Uint8Array
}
export interface RequestOpLike {
  requestRange?: RangeRequestLike
  requestPut?: PutRequestLike
  requestDeleteRange?: DeleteRangeRequestLike
  requestTxn?: TxnRequestLike
}
export interface TxnRequestLike {
  compare: readonly CompareLike[]
  success: readonly RequestOpLike[]
  failure: readonly RequestOpLike[]
}
export interface WatchCreateRequestLike {
  key: Uint8Array
  rangeEnd: Uint8Array
}

/** The keys attached to a lease ([] for none or an unknown lease): Lessor.keysOf. */
export type LeaseKeys = (leaseId: bigint) => readonly Uint8Array[]

const NO_END = new Uint8Array(0)

export function checkRange(auth: AuthStore, info: AuthInfo | null, r: RangeRequestLike): void {
  auth.isRangePermitted(info, r.key, r.rangeEnd)
}

export function checkPut(auth: AuthStore, info: AuthInfo | null, r: PutRequestLike, leaseKeys: LeaseKeys): void {
  auth.isPutPermitted(info, r.key)
  // A lease holding keys this user cannot write could not be revoked by it:
  // attaching it to a new key is refused too. (Not even listed with auth off:
  // a lease shared by thousands of keys made every put with it O(keys).)
  if (r.lease !== 0n && auth.isEnabled()) for (const key of leaseKeys(r.lease)) auth.isPutPermitted(info, key)
  if (r.prevKv) auth.isRangePermitted(info, r.key, NO_END)
}

export function checkDeleteRange(auth: AuthStore, info: AuthInfo | null, r: DeleteRangeRequestLike): void {
  auth.isDeleteRangePermitted(info, r.key, r.rangeEnd)
  if (r.prevKv) auth.isRangePermitted(info, r.key, r.rangeEnd)
}

/** Every compare and every op of both branches, recursively: a forbidden op in the branch not taken still fails the txn. */
export function checkTxn(auth: AuthStore, info: AuthInfo | null, r: TxnRequestLike, leaseKeys: LeaseKeys): void {
  for (const c of r.compare) auth.isRangePermitted(info, c.key, c.rangeEnd)
  for (const op of r.success) checkRequestOp(auth, info, op, leaseKeys)
  for (const op of r.failure) checkRequestOp(auth, info, op, leaseKeys)
}

function checkRequestOp(auth: AuthStore, info: AuthInfo | null, op: RequestOpLike, leaseKeys: LeaseKeys): void {
  if (op.requestRange !== undefined) checkRange(auth, info, op.requestRange)
  else if (op.requestPut !== undefined) checkPut(auth, info, op.requestPut, leaseKeys)
  else if (op.requestDeleteRange !== undefined) checkDeleteRange(auth, info, op.requestDeleteRange)
  else if (op.requestTxn !== undefined) checkTxn(auth, info, op.requestTxn, leaseKeys)
}

export function checkWatch(auth: AuthStore, info: AuthInfo | null, r: WatchCreateRequestLike): void {
  auth.isRangePermitted(info, r.key, r.rangeEnd)
}

/** LeaseRevoke deletes every attached key: WRITE on each (admins pass). */
export function checkLeaseRevoke(auth: AuthStore, info: AuthInfo | null, attachedKeys: readonly Uint8Array[]): void {
  if (!auth.isEnabled()) return
  for (const key of attachedKeys) auth.isPutPermitted(info, key)
}

/** LeaseTimeToLive may list the attached keys: READ on each (admins pass); userEmpty without credentials. */
export function checkLeaseTimeToLive(auth: AuthStore, info: AuthInfo | null, attachedKeys: readonly Uint8Array[]): void {
  if (!auth.isEnabled()) return
  if (info === null) auth.isAdminPermitted(info) // throws userEmpty
  for (const key of attachedKeys) auth.isRangePermitted(info, key, NO_END)
}
