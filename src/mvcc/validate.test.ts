import { expect, test } from "bun:test"
import { utf8 } from "../lib/bytes"
import { isTskvError } from "../lib/errors"
import type { RequestOp, TxnRequest } from "./types"
import { checkDeleteRangeRequest, checkPutRequest, checkRangeRequest, checkTxnRequest } from "./validate"

const b = utf8
const put = (key: string): RequestOp => ({ requestPut: { key: b(key), value: b("v") } })
const del = (key: string, rangeEnd?: string): RequestOp => ({ requestDeleteRange: rangeEnd === undefined ? { key: b(key) } : { key: b(key), rangeEnd: b(rangeEnd) } })
const get = (key: string): RequestOp => ({ requestRange: { key: b(key) } })
const txn = (success: RequestOp[], failure: RequestOp[] = []): TxnRequest => ({ compare: [], success, failure })
const nested = (success: RequestOp[], failure: RequestOp[] = []): RequestOp => ({ requestTxn: txn(success, failure) })

function codeOf(fn: () => void): string | undefined {
  try {
    fn()
    return undefined
  } catch (e) {
    return isTskvError(e) ? e.code : String(e)
  }
}

test("checkPutRequest/checkRangeRequest/checkDeleteRangeRequest: empty key, ignore_value, ignore_lease, sort option", () => {
  expect(codeOf(() => checkPutRequest({ key: new Uint8Array(0), value: b("v") }))).toBe("emptyKey")
  expect(codeOf(() => checkPutRequest({ key: b("k"), value: b("v"), ignoreValue: true }))).toBe("valueProvided")
  expect(codeOf(() => checkPutRequest({ key: b("k"), ignoreValue: true }))).toBeUndefined()
  expect(codeOf(() => checkPutRequest({ key: b("k"), lease: 5n, ignoreLease: true }))).toBe("leaseProvided")
  expect(codeOf(() => checkRangeRequest({ key: new Uint8Array(0) }))).toBe("emptyKey")
  expect(codeOf(() => checkRangeRequest({ key: b("k"), sortTarget: 7 }))).toBe("invalidSortOption")
  expect(codeOf(() => checkRangeRequest({ key: b("k"), sortOrder: 7 }))).toBeUndefined()
  expect(codeOf(() => checkDeleteRangeRequest({ key: new Uint8Array(0) }))).toBe("emptyKey")
})

test("checkTxnRequest: too many ops per list, nested budget, empty compare key, empty RequestOp", () => {
  const many = Array.from({ length: 129 }, (_, i) => put(`k${i}`))
  expect(codeOf(() => checkTxnRequest(txn(many)))).toBe("tooManyOps")
  expect(codeOf(() => checkTxnRequest(txn(many.slice(0, 128))))).toBeUndefined()
  expect(codeOf(() => checkTxnRequest(txn(many.slice(0, 3)), 2))).toBe("tooManyOps")
  // 2 ops at the top leave 1 for the nested txn
  expect(codeOf(() => checkTxnRequest(txn([put("a"), nested([put("b"), put("c")])]), 3))).toBe("tooManyOps")
  expect(codeOf(() => checkTxnRequest(txn([put("a"), nested([put("b")])]), 3))).toBeUndefined()
  expect(codeOf(() => checkTxnRequest({ compare: [{ key: new Uint8Array(0), result: 0, target: 0 }], success: [], failure: [] }))).toBe("emptyKey")
  expect(codeOf(() => checkTxnRequest(txn([{}])))).toBe("keyNotFound")
  expect(codeOf(() => checkTxnRequest(txn([put("")])))).toBe("emptyKey")
})

test("checkTxnRequest duplicate-key rule: puts and overlapping deletes within a branch, nested included", () => {
  expect(codeOf(() => checkTxnRequest(txn([put("d"), put("d")])))).toBe("duplicateKey")
  expect(codeOf(() => checkTxnRequest(txn([put("d")], [put("d")])))).toBeUndefined()
  expect(codeOf(() => checkTxnRequest(txn([del("a", "z"), put("d")])))).toBe("duplicateKey")
  expect(codeOf(() => checkTxnRequest(txn([del("d"), put("d")])))).toBe("duplicateKey")
  expect(codeOf(() => checkTxnRequest(txn([del("a", "c"), put("d")])))).toBeUndefined()
  expect(codeOf(() => checkTxnRequest(txn([del("a", "z"), del("b")])))).toBeUndefined()
  expect(codeOf(() => checkTxnRequest(txn([get("d"), put("d")])))).toBeUndefined()
  expect(codeOf(() => checkTxnRequest(txn([put("d"), nested([put("d")])])))).toBe("duplicateKey")
  expect(codeOf(() => checkTxnRequest(txn([del("a", "z"), nested([put("d")])])))).toBe("duplicateKey")
  expect(codeOf(() => checkTxnRequest(txn([nested([del("d")]), put("d")])))).toBe("duplicateKey")
  // then and else of one nested txn exclude each other
  expect(codeOf(() => checkTxnRequest(txn([nested([put("d")], [put("d")])])))).toBeUndefined()
  expect(codeOf(() => checkTxnRequest(txn([nested([put("d")]), nested([put("d")])])))).toBe("duplicateKey")
  // etcd builds an interval containing nothing for a from-key delete ("\0" range end)
  expect(codeOf(() => checkTxnRequest(txn([{ requestDeleteRange: { key: b("a"), rangeEnd: new Uint8Array([0]) } }, put("d")])))).toBeUndefined()
})
