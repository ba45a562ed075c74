// The JSON mapping (for the /v3 gateway) against real etcd 3.4's grpc-gateway.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { EtcdClient } from "../client"
import { startMember, type MemberProcess } from "../../test/support/procs"
import { tempDir } from "../../test/support/tmp"
import { utf8 } from "../lib/bytes"
import {
  Compare_CompareTarget,
  fromJson,
  KVService,
  LeaseService,
  PbJsonError,
  toJson,
  type RangeRequest,
  type TxnRequest,
} from "./index"

describe("fromJson()", () => {
  test("accepts proto and JSON names, base64 bytes, 64-bit integers as strings or numbers, enum names", () => {
    const a = fromJson<RangeRequest>("etcdserverpb.RangeRequest", { key: "Zm9v", range_end: "AA==", count_only: true, limit: "5" })
    const b = fromJson<RangeRequest>("etcdserverpb.RangeRequest", { key: "Zm9v", rangeEnd: "AA==", countOnly: true, limit: 5 })
    expect(a).toEqual(b)
    expect(Buffer.from(a.key).toString()).toBe("foo")
    expect([...a.rangeEnd]).toEqual([0])
    expect(a.limit).toBe(5)
    expect(a.sortOrder).toBe(0)
    const sorted = fromJson<RangeRequest>("etcdserverpb.RangeRequest", { sort_order: "DESCEND", sort_target: 3 })
    expect([sorted.sortOrder, sorted.sortTarget]).toEqual([2, 3])
  })

  test("a oneof member given as zero is present; nested requests are decoded", () => {
    const txn = fromJson<TxnRequest>("etcdserverpb.TxnRequest", {
      compare: [{ target: "CREATE", key: "Zm9v", createRevision: "0" }],
      success: [{ requestPut: { key: "Zm9v", value: "YmFy", lease: "7587856308154354267" } }],
    })
    expect(txn.compare[0]!.target).toBe(Compare_CompareTarget.CREATE)
    expect(txn.compare[0]!.createRevision).toBe(0)
    expect(txn.success[0]!.requestPut!.lease).toBe(7587856308154354267n)
    expect(txn.failure).toEqual([])
  })

  test("rejects unknown fields, bad base64, out-of-range and unsafe integers", () => {
    expect(() => fromJson("etcdserverpb.RangeRequest", { nope: 1 })).toThrow(PbJsonError)
    expect(() => fromJson("etcdserverpb.RangeRequest", { key: "!!" })).toThrow("not base64")
    expect(() => fromJson("etcdserverpb.RangeRequest", { limit: "9007199254740993" })).toThrow("safe integer")
    expect(() => fromJson("etcdserverpb.LeaseGrantRequest", { ID: "9223372036854775808" })).toThrow("out of range")
    expect(() => fromJson("etcdserverpb.RangeRequest", { sort_order: "SIDEWAYS" })).toThrow("unknown enum value")
    expect(() => fromJson("etcdserverpb.RangeRequest", [])).toThrow("not a JSON object")
  })
})

describe("toJson() matches etcd 3.4's grpc-gateway output", () => {
  let etcd: MemberProcess
  let client: EtcdClient
  const dir = tempDir("pb-json-etcd-")

  beforeAll(async () => {
    etcd = await startMember({ kind: "etcd", dataDir: `${dir.path}/data` })
    client = new EtcdClient({ endpoints: [etcd.clientUrl] })
  }, 30_000)

  afterAll(async () => {
    client?.close()
    await etcd?.stop()
    dir.remove()
  })

  async function gateway(path: string, body: unknown): Promise<unknown> {
    const res = await fetch(`${etcd.clientUrl}${path}`, { method: "POST", body: JSON.stringify(body) })
    expect(res.status).toBe(200)
    return await res.json()
  }

  test("Range, Txn and LeaseTimeToLive responses render like the gateway's, field order included", async () => {
    const lease = await client.lease.leaseGrant({ TTL: 60 })
    await client.kv.put({ key: utf8("foo"), value: utf8("bar"), lease: lease.ID })
    await client.kv.put({ key: utf8("foo2"), value: utf8("") })
    const cases: [typeof KVService.Range | typeof KVService.Txn | typeof LeaseService.LeaseTimeToLive, unknown][] = [
      [KVService.Range, { key: "Zm9v", range_end: "Zm9w" }],
      [KVService.Range, { key: "AA==", range_end: "AA==", count_only: true }],
      [KVService.Txn, { compare: [{ target: "CREATE", key: "Zm9v", createRevision: "0" }], failure: [{ requestRange: { key: "Zm9v" } }] }],
      [LeaseService.LeaseTimeToLive, { ID: lease.ID.toString(), keys: true }],
    ]
    for (const [method, body] of cases) {
      const expected = await gateway(method.gatewayPaths[0]!, body)
      const req = fromJson(method.requestType, body)
      const res = await client.unary(method as typeof KVService.Range, req as unknown as RangeRequest)
      expect(JSON.stringify(toJson(method.responseType, res))).toBe(JSON.stringify(expected))
    }
  })
})
