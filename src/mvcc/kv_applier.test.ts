import { expect, test } from "bun:test"
import { Backend } from "../backend/backend"
import { fromUtf8, utf8, ZERO_BYTE } from "../lib/bytes"
import { isTskvError } from "../lib/errors"
import { KvApplier } from "./kv_applier"
import { type Change, MvccStore } from "./kv_store"
import { type Compare, CompareResult, CompareTarget, type RequestOp, type TxnRequest } from "./types"

const b = utf8

function setup() {
  const store = MvccStore.open({ backend: Backend.open({ path: ":memory:" }) })
  return { store, kv: new KvApplier({ store, leaseExists: (id) => id === 7n }) }
}

function expectCode(fn: () => unknown, code: string): void {
  try {
    fn()
  } catch (e) {
    expect(isTskvError(e) ? e.code : String(e)).toBe(code)
    return
  }
  throw new Error(`expected ${code}`)
}

const put = (key: string, value = "v", extra: object = {}): RequestOp => ({ requestPut: { key: b(key), value: b(value), ...extra } })
const get = (key: string, extra: object = {}): RequestOp => ({ requestRange: { key: b(key), ...extra } })
const del = (key: string, rangeEnd?: string): RequestOp => ({ requestDeleteRange: rangeEnd === undefined ? { key: b(key) } : { key: b(key), rangeEnd: b(rangeEnd) } })
const cmp = (key: string, target: CompareTarget, result: CompareResult, value: Partial<Compare>): Compare => ({ key: b(key), target, result, ...value })
const txn = (compare: Compare[], success: RequestOp[], failure: RequestOp[] = []): TxnRequest => ({ compare, success, failure })

test("Txn: all writes share one revision; ops see earlier writes; headers as etcd 3.4", () => {
  const { kv, store } = setup()
  kv.put({ key: b("a"), value: b("1") }) // 2
  const r = kv.txn(txn([], [get("a"), put("b", "2"), get("b"), del("zz"), put("c")]))
  expect(r.succeeded).toBe(true)
  expect(r.header?.revision).toBe(3)
  expect(r.responses.map((o) => o.responseRange?.header?.revision ?? o.responsePut?.header?.revision ?? o.responseDeleteRange?.header?.revision)).toEqual([2, 3, 3, 3, 3])
  expect(fromUtf8(r.responses[2]!.responseRange!.kvs[0]!.value)).toBe("2")
  expect(store.range(b("c"), undefined).kvs[0]?.modRevision).toBe(3)
  expect(store.currentRevision()).toBe(3)
})

test("Txn: a read-only txn or one whose writes changed nothing does not bump the revision", () => {
  const { kv, store } = setup()
  kv.put({ key: b("a"), value: b("1") })
  expect(kv.txn(txn([], [get("a")])).header?.revision).toBe(2)
  expect(kv.txn(txn([], [del("zz"), get("a")])).header?.revision).toBe(2)
  expect(store.currentRevision()).toBe(2)
})

test("Txn compares: value/version/create/mod/lease with = != < >; a missing key compares as zero, value compare false", () => {
  const { kv } = setup()
  kv.put({ key: b("a"), value: b("m"), lease: 7n }) // 2
  kv.put({ key: b("a"), value: b("m"), lease: 7n }) // 3
  const ok = (c: Compare): boolean => kv.txn(txn([c], [])).succeeded
  expect(ok(cmp("a", CompareTarget.VALUE, CompareResult.EQUAL, { value: b("m") }))).toBe(true)
  expect(ok(cmp("a", CompareTarget.VALUE, CompareResult.GREATER, { value: b("a") }))).toBe(true)
  expect(ok(cmp("a", CompareTarget.VALUE, CompareResult.LESS, { value: b("a") }))).toBe(false)
  expect(ok(cmp("a", CompareTarget.VERSION, CompareResult.EQUAL, { version: 2 }))).toBe(true)
  expect(ok(cmp("a", CompareTarget.CREATE, CompareResult.EQUAL, { createRevision: 2 }))).toBe(true)
  expect(ok(cmp("a", CompareTarget.MOD, CompareResult.GREATER, { modRevision: 2 }))).toBe(true)
  expect(ok(cmp("a", CompareTarget.MOD, CompareResult.NOT_EQUAL, { modRevision: 3 }))).toBe(false)
  expect(ok(cmp("a", CompareTarget.LEASE, CompareResult.EQUAL, { lease: 7n }))).toBe(true)
  expect(ok(cmp("zz", CompareTarget.CREATE, CompareResult.EQUAL, { createRevision: 0 }))).toBe(true)
  expect(ok(cmp("zz", CompareTarget.VERSION, CompareResult.EQUAL, { version: 0 }))).toBe(true)
  expect(ok(cmp("zz", CompareTarget.VALUE, CompareResult.NOT_EQUAL, { value: b("x") }))).toBe(false)
  expect(ok(cmp("zz", CompareTarget.VALUE, CompareResult.EQUAL, { value: b("") }))).toBe(false)
})

test("Txn compare with range_end must hold for every key in the range", () => {
  const { kv } = setup()
  kv.put({ key: b("p/1"), value: b("1") })
  kv.put({ key: b("p/2"), value: b("2") })
  const range = { rangeEnd: b("p0") }
  expect(kv.txn(txn([cmp("p/", CompareTarget.VALUE, CompareResult.GREATER, { value: b("0"), ...range })], [])).succeeded).toBe(true)
  expect(kv.txn(txn([cmp("p/", CompareTarget.VALUE, CompareResult.GREATER, { value: b("1"), ...range })], [])).succeeded).toBe(false)
})

test("Txn: failure branch; nested txns' compares see the state before the txn", () => {
  const { kv, store } = setup()
  const nested: TxnRequest = txn([cmp("x", CompareTarget.VERSION, CompareResult.EQUAL, { version: 0 })], [put("inner-then")], [put("inner-else")])
  const r = kv.txn(txn([cmp("a", CompareTarget.VERSION, CompareResult.GREATER, { version: 0 })], [], [put("x"), { requestTxn: nested }]))
  expect(r.succeeded).toBe(false)
  expect(r.responses[1]?.responseTxn?.succeeded).toBe(true)
  expect(r.responses[1]?.responseTxn?.header?.revision).toBe(2)
  expect(store.range(b("inner-then"), undefined).count).toBe(1)
  expect(store.range(b("inner-else"), undefined).count).toBe(0)
})

test("Txn fails whole, writing nothing, on a compacted or future range, a missing lease, ignore_value on a missing key", () => {
  const { kv, store } = setup()
  for (let i = 0; i < 4; i++) kv.put({ key: b("k"), value: b(String(i)) })
  store.compact(3)
  const changes: Change[] = []
  store.onChanges((_r, c) => changes.push(...c))
  expectCode(() => kv.txn(txn([], [put("w"), get("k", { revision: 2 })])), "compacted")
  expectCode(() => kv.txn(txn([], [put("w"), get("k", { revision: 9 })])), "futureRev")
  expectCode(() => kv.txn(txn([], [put("w"), put("l", "v", { lease: 8n })])), "leaseNotFound")
  expectCode(() => kv.txn(txn([], [put("w"), put("nope", "", { ignoreValue: true })])), "keyNotFound")
  expect(changes).toEqual([])
  expect(store.currentRevision()).toBe(5)
  expect(kv.txn(txn([], [put("w"), put("l", "v", { lease: 7n }), get("k", { revision: 3 })])).header?.revision).toBe(6)
})

test("Txn on the whole keyspace: delete everything then read", () => {
  const { kv, store } = setup()
  kv.put({ key: b("a"), value: b("1") })
  kv.put({ key: b("b"), value: b("1") })
  const r = kv.txn(txn([], [{ requestDeleteRange: { key: ZERO_BYTE, rangeEnd: ZERO_BYTE, prevKv: true } }, get("a")]))
  expect(r.responses[0]?.responseDeleteRange?.deleted).toBe(2)
  expect(r.responses[0]?.responseDeleteRange?.prevKvs.length).toBe(2)
  expect(r.responses[1]?.responseRange?.kvs).toEqual([])
  expect(store.keyCount()).toBe(0)
})
