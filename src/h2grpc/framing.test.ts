import { expect, test } from "bun:test"
import { gzipSync } from "node:zlib"
import { decompressorFor, encodeGrpcMessage, frameMessage, MessageReader, parseGrpcTimeoutMs } from "./framing"
import { GrpcError, GrpcStatus } from "./status"

function collect(reader: MessageReader, chunks: Buffer[]): string[] {
  const out: string[] = []
  for (const chunk of chunks) reader.push(chunk, (m) => out.push(Buffer.from(m).toString()))
  return out
}

test("frameMessage() writes flag 0 and the big-endian length before the payload", () => {
  expect([...frameMessage(Buffer.from("abc"))]).toEqual([0, 0, 0, 0, 3, 97, 98, 99])
})

test("MessageReader reassembles messages split anywhere, byte by byte", () => {
  const stream = Buffer.concat([frameMessage(Buffer.from("hello")), frameMessage(Buffer.alloc(0)), frameMessage(Buffer.from("world!"))])
  const bytes = [...stream].map((b) => Buffer.from([b]))
  const reader = new MessageReader(1024, undefined)
  expect(collect(reader, bytes)).toEqual(["hello", "", "world!"])
  expect(reader.idle).toBe(true)
})

test("MessageReader yields several messages from one chunk and keeps a partial tail", () => {
  const a = frameMessage(Buffer.from("one"))
  const b = frameMessage(Buffer.from("two"))
  const reader = new MessageReader(1024, undefined)
  expect(collect(reader, [Buffer.concat([a, b.subarray(0, 6)])])).toEqual(["one"])
  expect(reader.idle).toBe(false)
  expect(collect(reader, [b.subarray(6)])).toEqual(["two"])
})

test("MessageReader refuses a message above the maximum with RESOURCE_EXHAUSTED before buffering it", () => {
  const reader = new MessageReader(4, undefined)
  const prefix = Buffer.from([0, 0, 0, 0, 5])
  expect(() => reader.push(prefix, () => {})).toThrow(new GrpcError(GrpcStatus.RESOURCE_EXHAUSTED, "grpc: received message larger than max (5 vs. 4)"))
})

test("MessageReader decompresses gzip messages and refuses compressed ones without an encoding", () => {
  const compressed = gzipSync(Buffer.from("zipped"))
  const frame = frameMessage(compressed)
  frame[0] = 1
  expect(collect(new MessageReader(1024, decompressorFor("gzip")), [frame])).toEqual(["zipped"])
  expect(() => collect(new MessageReader(1024, undefined), [frame])).toThrow("grpc: compressed flag set with identity or empty encoding")
  expect(() => decompressorFor("snappy")).toThrow('grpc: Decompressor is not installed for grpc-encoding "snappy"')
})

test("parseGrpcTimeoutMs() reads every unit and rejects malformed values", () => {
  expect(parseGrpcTimeoutMs("5S")).toBe(5000)
  expect(parseGrpcTimeoutMs("250m")).toBe(250)
  expect(parseGrpcTimeoutMs("2M")).toBe(120_000)
  expect(parseGrpcTimeoutMs("1H")).toBe(3_600_000)
  expect(parseGrpcTimeoutMs("1500u")).toBe(1.5)
  expect(parseGrpcTimeoutMs("1000000n")).toBe(1)
  expect(parseGrpcTimeoutMs("5")).toBeUndefined()
  expect(parseGrpcTimeoutMs("5x")).toBeUndefined()
  expect(parseGrpcTimeoutMs("123456789S")).toBeUndefined()
  expect(parseGrpcTimeoutMs(undefined)).toBeUndefined()
})

test("encodeGrpcMessage() percent-encodes '%', controls and non-ASCII as UTF-8", () => {
  expect(encodeGrpcMessage("etcdserver: key is not provided")).toBe("etcdserver: key is not provided")
  expect(encodeGrpcMessage("100% done\n")).toBe("100%25 done%0A")
  expect(encodeGrpcMessage("é")).toBe("%C3%A9")
})
