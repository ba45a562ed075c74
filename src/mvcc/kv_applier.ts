// Applies KV requests to the store with etcd's semantics (etcdserver apply.go
// in 3.4): Range, Put, DeleteRange and Txn with compares, nested txns and one
// revision for all writes. Requests were validated by validate.ts before they
// were proposed; the checks that need state run here, before anything is
// written, so a failed request leaves no trace.

import { TskvError } from "../lib/errors"
import { compareBytes } from "../lib/bytes"
import { executeRange, type MvccStore, type WriteTxn } from "./kv_store"
import {
  type Compare,
  CompareResult,
  CompareTarget,
  type DeleteRangeRequest,
  type DeleteRangeResponse,
  type KeyValue,
  type PutRequest,
  type PutResponse,
  type RangeRequest,
  type RangeResponse,
  type RequestOp,
  type ResponseOp,
  revisionHeader,
  SortTarget,
  type TxnRequest,
  type TxnResponse,
} from "./types"

export interface KvApplierOptions {
  store: MvccStore
  /** Whether a lease exists (the lessor answers); a put with an unknown lease fails with leaseNotFound. */
  leaseExists?: (lease: bigint) => boolean
}

export class KvApplier {
  private readonly store: MvccStore
  private readonly leaseExists: (lease: bigint) => boolean

  constructor(options: KvApplierOptions) {
    this.store = options.store
    this.leaseExists = options.leaseExists ?? (() => false)
  }

  range(req: RangeRequest): RangeResponse {
    return this.store.rangeRequest(req)
  }

  put(req: PutRequest): PutResponse {
    this.checkPut(req)
    const txn = this.store.write()
    const prevKv = putOp(txn, req)
    const { revision } = txn.end()
    return withPrev({ header: revisionHeader(revision) }, prevKv)
  }

  deleteRange(req: DeleteRangeRequest): DeleteRangeResponse {
    const txn = this.store.write()
    const result = txn.deleteRange(req.key, req.rangeEnd, { prevKv: req.prevKv ?? false })
    const { revision } = txn.end()
    return { header: revisionHeader(revision), deleted: result.deleted, prevKvs: result.prevKvs }
  }

  txn(req: TxnRequest): TxnResponse {
    const path = new Map<TxnRequest, boolean>()
    this.choosePath(req, path)
    this.checkRequests(req, path)
    if (isReadOnly(req)) {
      const revision = (): number => this.store.currentRevision()
      const response = runOps(req, path, { range: (r) => this.store.rangeRequest(r), revision })
      response.header = revisionHeader(this.store.currentRevision())
      return response
    }
    const txn = this.store.write()
    const response = runOps(req, path, { range: (r) => txn.rangeRequest(r), revision: () => txn.readRevision(), txn })
    const { revision } = txn.end()
    response.header = revisionHeader(revision)
    return response
  }

  /** Evaluates every compare on the chosen path against the state before the txn (etcd compareToPath). */
  private choosePath(req: TxnRequest, path: Map<TxnRequest, boolean>): void {
    const succeeded = req.compare.every((c) => this.applyCompare(c))
    path.set(req, succeeded)
    for (const op of succeeded ? req.success : req.failure) if (op.requestTxn) this.choosePath(op.requestTxn, path)
  }

  private applyCompare(c: Compare): boolean {
    // Only a value compare needs the values.
    const { kvs } = this.store.range(c.key, c.rangeEnd, { keysOnly: c.target !== CompareTarget.VALUE })
    if (kvs.length === 0) {
      // A value compare on a missing key is always false; the rest compare a zero KeyValue.
      if (c.target === CompareTarget.VALUE) return false
      return compareKv(c, { key: c.key, createRevision: 0, modRevision: 0, version: 0, value: new Uint8Array(0), lease: 0n })
    }
    return kvs.every((kv) => compareKv(c, kv))
  }

  /** Stateful checks on the chosen path, before any write (etcd checkRequests). */
  private checkRequests(req: TxnRequest, path: Map<TxnRequest, boolean>): void {
    for (const op of path.get(req) ? req.success : req.failure) {
      if (op.requestTxn) this.checkRequests(op.requestTxn, path)
      else if (op.requestPut) this.checkPut(op.requestPut)
      else if (op.requestRange) this.checkRange(op.requestRange)
    }
  }

  private checkRange(req: RangeRequest): void {
    const rev = req.revision ?? 0
    if (rev > this.store.currentRevision()) throw new TskvError("futureRev")
    if (rev > 0 && rev < this.store.compactedRevision()) throw new TskvError("compacted")
    if (!((req.sortTarget ?? 0) in SortTarget)) throw new TskvError("invalidSortOption")
  }

  private checkPut(req: PutRequest): void {
    if (req.ignoreValue || req.ignoreLease) {
      if (this.store.range(req.key, undefined, { countOnly: true }).count === 0) throw new TskvError("keyNotFound")
    }
    const lease = req.lease ?? 0n
    if (!req.ignoreLease && lease !== 0n && !this.leaseExists(lease)) throw new TskvError("leaseNotFound")
  }
}

interface OpRunner {
  range: (req: RangeRequest) => RangeResponse
  revision: () => number
  txn?: WriteTxn
}

function runOps(req: TxnRequest, path: Map<TxnRequest, boolean>, runner: OpRunner): TxnResponse {
  const succeeded = path.get(req) ?? false
  const responses: ResponseOp[] = []
  for (const op of succeeded ? req.success : req.failure) responses.push(runOp(op, path, runner))
  return { succeeded, responses }
}

function runOp(op: RequestOp, path: Map<TxnRequest, boolean>, runner: OpRunner): ResponseOp {
  if (op.requestRange) return { responseRange: runner.range(op.requestRange) }
  const txn = runner.txn
  if (op.requestTxn) {
    const nested = runOps(op.requestTxn, path, runner)
    nested.header = revisionHeader(runner.revision())
    return { responseTxn: nested }
  }
  if (txn === undefined) throw new TskvError("keyNotFound")
  if (op.requestPut) {
    const prevKv = putOp(txn, op.requestPut)
    return { responsePut: withPrev({ header: revisionHeader(txn.readRevision()) }, prevKv) }
  }
  if (op.requestDeleteRange) {
    const del = op.requestDeleteRange
    const result = txn.deleteRange(del.key, del.rangeEnd, { prevKv: del.prevKv ?? false })
    return { responseDeleteRange: { header: revisionHeader(txn.readRevision()), deleted: result.deleted, prevKvs: result.prevKvs } }
  }
  throw new TskvError("keyNotFound")
}

function putOp(txn: WriteTxn, req: PutRequest): KeyValue | undefined {
  return txn.put(req.key, req.value ?? new Uint8Array(0), req.lease ?? 0n, {
    prevKv: req.prevKv ?? false,
    ignoreValue: req.ignoreValue ?? false,
    ignoreLease: req.ignoreLease ?? false,
  })
}

function withPrev(response: PutResponse, prevKv: KeyValue | undefined): PutResponse {
  if (prevKv !== undefined) response.prevKv = prevKv
  return response
}

/** A txn with no put or delete anywhere in it (both branches, nested included) runs as a read. */
export function isReadOnly(req: TxnRequest): boolean {
  const readOnly = (ops: readonly RequestOp[]): boolean =>
    ops.every((op) => (op.requestTxn ? isReadOnly(op.requestTxn) : op.requestPut === undefined && op.requestDeleteRange === undefined))
  return readOnly(req.success) && readOnly(req.failure)
}

function compareKv(c: Compare, kv: KeyValue): boolean {
  let result: number
  switch (c.target) {
    case CompareTarget.VALUE:
      result = compareBytes(kv.value, c.value ?? new Uint8Array(0))
      break
    case CompareTarget.CREATE:
      result = Math.sign(kv.createRevision - (c.createRevision ?? 0))
      break
    case CompareTarget.MOD:
      result = Math.sign(kv.modRevision - (c.modRevision ?? 0))
      break
    case CompareTarget.VERSION:
      result = Math.sign(kv.version - (c.version ?? 0))
      break
    case CompareTarget.LEASE: {
      const lease = c.lease ?? 0n
      result = kv.lease === lease ? 0 : kv.lease > lease ? 1 : -1
      break
    }
    default:
      return false
  }
  switch (c.result) {
    case CompareResult.EQUAL:
      return result === 0
    case CompareResult.NOT_EQUAL:
      return result !== 0
    case CompareResult.GREATER:
      return result > 0
    case CompareResult.LESS:
      return result < 0
    default:
      return true
  }
}

