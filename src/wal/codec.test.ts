import { describe, expect, test } from "bun:test"
import { decode, Encoder } from "cbor-x"
import type { Entry } from "../raft/types"
import { EntryType } from "../raft/types"
import { batchBytesMax, batchWire, parseBatch, ShapeError, writeBatch, decodeValue, parseSegmentHeader } from "./codec"

const edges = [0, 1, 23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 7, Number.MAX_SAFE_INTEGER]

function encodeBatch(hs: Parameters<typeof writeBatch>[2], entries: Entry[]): Uint8Array {
  const out = new Uint8Array(batchBytesMax(entries) + 10)
  const end = writeBatch(out, 10, hs, entries)
  return out.subarray(10, end)
}

describe("wal codec", () => {
  test("writeBatch() writes CBOR that cbor-x decodes to the batch, at every integer width", () => {
    for (const n of edges) {
      const entries: Entry[] = [
        { term: n, index: n, type: EntryType.ConfChange, data: new Uint8Array(Math.min(n, 70_000) % 300) },
        { term: 1, index: n, type: EntryType.Normal, data: new Uint8Array(Math.min(n, 70_000)).fill(9) },
      ]
      for (const vote of [0n, 23n, BigInt(n), 2n ** 63n + 1n, 2n ** 64n - 1n]) {
        const hs = { term: n, vote, commit: n }
        const bytes = encodeBatch(hs, entries)
        expect(parseBatch(decode(bytes))).toEqual({ hardState: hs, entries })
      }
    }
    expect(parseBatch(decode(encodeBatch(undefined, [])))).toEqual({ hardState: undefined, entries: [] })
  })

  test("writeBatch() agrees with cbor-x's own encoding of the batch", () => {
    const entries: Entry[] = [{ term: 3, index: 300, type: EntryType.Normal, data: new Uint8Array([1, 2, 3]) }]
    const encoder = new Encoder({ useRecords: false, tagUint8Array: false })
    const ours = encodeBatch({ term: 3, vote: 2n, commit: 299 }, entries)
    const theirs = decode(encoder.encode(batchWire({ term: 3, vote: 2n, commit: 299 }, entries)))
    expect(parseBatch(decode(ours))).toEqual(parseBatch(theirs))
  })

  test("parseBatch() and parseSegmentHeader() refuse values of the wrong shape", () => {
    const bad: unknown[] = [
      null,
      [1],
      [null, [[1, 2, 0]]],
      [null, [[1, 2, 5, new Uint8Array(0)]]],
      [null, [[-1, 2, 0, new Uint8Array(0)]]],
      [null, [[1.5, 2, 0, new Uint8Array(0)]]],
      [null, [[1, 2, 0, "text"]]],
      [[1, 2], []],
      [[1, -1n, 2], []],
    ]
    for (const value of bad) expect(() => parseBatch(value)).toThrow(ShapeError)
    expect(() => parseSegmentHeader([1n, "x", null])).toThrow(ShapeError)
    expect(() => decodeValue(new Uint8Array([0x9f]))).toThrow(ShapeError)
  })
})
