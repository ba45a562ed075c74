import { expect, test } from "bun:test"
import { decodeRequest, encodeRequest, RequestKind } from "./request"

test("a request envelope round-trips: kind, 64-bit origin, seq, auth revision, user, body", () => {
  const body = Uint8Array.of(1, 2, 3, 250)
  const env = { kind: RequestKind.Txn, origin: 0xfedcba9876543210n, seq: 2 ** 53 - 1, authRevision: 42, user: "rööt" }
  const data = encodeRequest(env, body)
  expect(data.length).toBe(27 + Buffer.byteLength("rööt") + body.length)
  const decoded = decodeRequest(data)
  expect({ ...decoded, body: [...decoded.body] }).toEqual({ ...env, body: [...body] })
  // The layout stays what older WALs hold: origin, seq and auth revision big-endian.
  expect(Buffer.from(data).readBigUInt64BE(1)).toBe(env.origin)
  expect(Buffer.from(data).readDoubleBE(9)).toBe(env.seq)
  expect(Buffer.from(data).readUInt16BE(25)).toBe(Buffer.byteLength("rööt"))
})

test("decodeRequest() reads a request inside a larger buffer, and refuses short or unknown ones", () => {
  const inner = encodeRequest({ kind: RequestKind.Put, origin: 7n, seq: 9, authRevision: 0, user: "" }, Uint8Array.of(5))
  const outer = new Uint8Array(inner.length + 10)
  outer.set(inner, 4)
  const decoded = decodeRequest(outer.subarray(4, 4 + inner.length))
  expect(decoded.kind).toBe(RequestKind.Put)
  expect(decoded.origin).toBe(7n)
  expect(decoded.seq).toBe(9)
  expect(decoded.user).toBe("")
  expect([...decoded.body]).toEqual([5])
  expect(() => decodeRequest(new Uint8Array(10))).toThrow(/too short/)
  const bad = Uint8Array.from(inner)
  bad[0] = 99
  expect(() => decodeRequest(bad)).toThrow(/unknown request kind/)
})
