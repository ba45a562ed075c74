// Checks the API layer runs before proposing a request (etcd api/v3rpc/key.go:
// checkRangeRequest, checkPutRequest, checkDeleteRequest, checkTxnRequest,
// checkIntervals). They need no state; the checks that do (lease exists,
// ignore_* on a missing key, compacted/future revisions) run at apply time.

import { compareBytes, isZeroByte, keyString as keyId } from "../lib/bytes"
import { TskvError } from "../lib/errors"
import { type DeleteRangeRequest, type PutRequest, type RangeRequest, type RequestOp, SortTarget, type TxnRequest } from "./types"

/** etcd --max-txn-ops default. */
export const MAX_TXN_OPS_DEFAULT = 128

export function checkRangeRequest(req: RangeRequest): void {
  if (req.key.length === 0) throw new TskvError("emptyKey")
  // etcd 3.4 takes any sort order number (3.5 refuses unknown ones); an unknown target is refused
  if (!((req.sortTarget ?? 0) in SortTarget)) throw new TskvError("invalidSortOption")
}

export function checkPutRequest(req: PutRequest): void {
  if (req.key.length === 0) throw new TskvError("emptyKey")
  if (req.ignoreValue && req.value !== undefined && req.value.length !== 0) throw new TskvError("valueProvided")
  if (req.ignoreLease && req.lease !== undefined && req.lease !== 0n) throw new TskvError("leaseProvided")
}

export function checkDeleteRangeRequest(req: DeleteRangeRequest): void {
  if (req.key.length === 0) throw new TskvError("emptyKey")
}

/** Sizes, empty keys and the duplicate-key rule for a whole Txn, nested txns included. */
export function checkTxnRequest(req: TxnRequest, maxTxnOps = MAX_TXN_OPS_DEFAULT): void {
  checkTxnShape(req, maxTxnOps)
  checkIntervals(req.success)
  checkIntervals(req.failure)
}

function checkTxnShape(req: TxnRequest, maxTxnOps: number): void {
  const ops = Math.max(req.compare.length, req.success.length, req.failure.length)
  if (ops > maxTxnOps) throw new TskvError("tooManyOps")
  for (const compare of req.compare) if (compare.key.length === 0) throw new TskvError("emptyKey")
  // Nested txns are checked against the budget that is left (etcd: maxTxnOps - opc).
  for (const op of req.success) checkRequestOp(op, maxTxnOps - ops)
  for (const op of req.failure) checkRequestOp(op, maxTxnOps - ops)
}

function checkRequestOp(op: RequestOp, maxTxnOps: number): void {
  if (op.requestRange) return checkRangeRequest(op.requestRange)
  if (op.requestPut) return checkPutRequest(op.requestPut)
  if (op.requestDeleteRange) return checkDeleteRangeRequest(op.requestDeleteRange)
  if (op.requestTxn) return checkTxnShape(op.requestTxn, maxTxnOps)
  throw new TskvError("keyNotFound") // an empty RequestOp
}

/**
 * A delete's interval as etcd's interval tree sees it: a point, or
 * [key, rangeEnd). etcd builds "[key, \0)" for a from-key delete, an interval
 * that contains nothing, so such deletes never conflict; we keep that.
 */
interface Interval {
  begin: Uint8Array
  end: Uint8Array | undefined
}

function intersects(intervals: readonly Interval[], key: Uint8Array): boolean {
  for (const iv of intervals) {
    if (iv.end === undefined) {
      if (compareBytes(iv.begin, key) === 0) return true
    } else if (compareBytes(iv.begin, key) <= 0 && compareBytes(key, iv.end) < 0) {
      return true
    }
  }
  return false
}


/** The duplicate-key rule: a key put twice, or put and deleted, in one branch (nested txns included). */
function checkIntervals(ops: readonly RequestOp[]): { puts: Map<string, Uint8Array>; dels: Interval[] } {
  const dels: Interval[] = []
  for (const op of ops) {
    const del = op.requestDeleteRange
    if (!del) continue
    const end = del.rangeEnd !== undefined && del.rangeEnd.length > 0 ? del.rangeEnd : undefined
    if (end !== undefined && isZeroByte(end)) continue // "[key, \0)": contains no key, see above
    dels.push({ begin: del.key, end })
  }
  const puts = new Map<string, Uint8Array>()
  for (const op of ops) {
    const txn = op.requestTxn
    if (!txn) continue
    const then = checkIntervals(txn.success)
    const other = checkIntervals(txn.failure)
    for (const [id, key] of then.puts) {
      if (puts.has(id) || intersects(dels, key)) throw new TskvError("duplicateKey")
      puts.set(id, key)
    }
    for (const [id, key] of other.puts) {
      // then and else of one nested txn exclude each other: the same key in both is fine
      if (puts.has(id) && !then.puts.has(id)) throw new TskvError("duplicateKey")
      if (intersects(dels, key)) throw new TskvError("duplicateKey")
      puts.set(id, key)
    }
    dels.push(...then.dels, ...other.dels)
  }
  for (const op of ops) {
    const put = op.requestPut
    if (!put) continue
    const id = keyId(put.key)
    if (puts.has(id) || intersects(dels, put.key)) throw new TskvError("duplicateKey")
    puts.set(id, put.key)
  }
  return { puts, dels }
}
