import { expect, test } from "bun:test"
import { encode as cborEncode } from "cbor-x"
import { EntryType, MessageType, type Message } from "../raft/types"
import {
  FRAME_HEADER_BYTES,
  FrameKind,
  Lane,
  RefuseReason,
  decodeFramePayload,
  encodeFrame,
  encodeFramePayload,
  type Frame,
} from "./codec"
import { MalformedFrameError } from "./errors"
import { FrameReader } from "./framing"

const full: Message = {
  type: MessageType.App,
  from: 0xffff_ffff_ffff_ffffn,
  to: 1n,
  term: Number.MAX_SAFE_INTEGER,
  logTerm: 4,
  index: 99,
  entries: [
    { term: 4, index: 100, type: EntryType.Normal, data: new Uint8Array([1, 2, 3]) },
    { term: 4, index: 101, type: EntryType.ConfChange, data: new Uint8Array() },
  ],
  commit: 98,
  reject: true,
  rejectHint: 7,
  snapshot: {
    metadata: { index: 50, term: 2, confState: { voters: [1n, 2n], learners: [3n] } },
    data: new Uint8Array([5]),
  },
  context: new Uint8Array([0xaa]),
}

const minimal: Message = {
  type: MessageType.Heartbeat,
  from: 2n,
  to: 1n,
  term: 0,
  logTerm: 0,
  index: 0,
  entries: [],
  commit: 0,
  reject: false,
  rejectHint: 0,
}

const frames: Frame[] = [
  { kind: FrameKind.Hello, version: 1, lane: Lane.Append, clusterId: 0x1234_5678_9abc_def0n, from: 1n, to: 0n },
  { kind: FrameKind.Accept, clusterId: 7n, memberId: 9n },
  { kind: FrameKind.Refuse, reason: RefuseReason.MemberRemoved, message: "gone" },
  { kind: FrameKind.Messages, messages: [full, minimal] },
  { kind: FrameKind.Request, callId: 3, method: "lease.keepalive", payload: new Uint8Array([1]) },
  { kind: FrameKind.Response, callId: 3, payload: new Uint8Array([2]), errorCode: null, errorMessage: null },
  { kind: FrameKind.Response, callId: 4, payload: null, errorCode: "notLeader", errorMessage: "etcdserver: not leader" },
  { kind: FrameKind.Ping, seq: 1 },
  { kind: FrameKind.Pong, seq: 1 },
  { kind: FrameKind.SnapshotHeader, message: { ...full, type: MessageType.Snap }, sizeBytes: 1 << 40 },
  { kind: FrameKind.SnapshotTrailer, sha256: new Uint8Array(32).fill(3) },
  { kind: FrameKind.SnapshotResult, ok: false, message: "no space" },
]

test("decodeFramePayload() returns every frame kind as it was encoded", () => {
  for (const frame of frames) {
    const decoded = decodeFramePayload(encodeFramePayload(frame))
    expect(decoded).toEqual(frame)
  }
})

test("decodeFramePayload() keeps optional message fields absent, not undefined", () => {
  const decoded = decodeFramePayload(encodeFramePayload({ kind: FrameKind.Messages, messages: [minimal] }))
  const m = (decoded as { messages: Message[] }).messages[0]!
  expect("snapshot" in m).toBe(false)
  expect("context" in m).toBe(false)
})

const m = (over: Record<number, unknown>): unknown[] => {
  const base: unknown[] = [MessageType.Heartbeat, 2n, 1n, 0, 0, 0, [], 0, false, 0, null, null]
  for (const [i, v] of Object.entries(over)) base[Number(i)] = v
  return base
}

const malformed: Array<[string, unknown]> = [
  ["not an array", { kind: 3 }],
  ["empty", []],
  ["unknown kind", [99]],
  ["negative kind", [-1]],
  ["hello with a numeric id", [FrameKind.Hello, 1, 0, 5, 1n, 2n]],
  ["hello lane out of range", [FrameKind.Hello, 1, 9, 5n, 1n, 2n]],
  ["id over 64 bits", [FrameKind.Accept, 1n << 64n, 1n]],
  ["negative id", [FrameKind.Accept, -1n, 1n]],
  ["missing field", [FrameKind.Accept, 1n]],
  ["extra field", [FrameKind.Ping, 1, 2]],
  ["message type out of range", [FrameKind.Messages, [m({ 0: 19 })]]],
  ["term as string", [FrameKind.Messages, [m({ 3: "1" })]]],
  ["term not an integer", [FrameKind.Messages, [m({ 3: 1.5 })]]],
  ["term unsafe", [FrameKind.Messages, [m({ 3: 2 ** 53 })]]],
  ["index negative", [FrameKind.Messages, [m({ 5: -1 })]]],
  ["reject as number", [FrameKind.Messages, [m({ 8: 1 })]]],
  ["entries not an array", [FrameKind.Messages, [m({ 6: "x" })]]],
  ["entry data as string", [FrameKind.Messages, [m({ 6: [[1, 1, 0, "data"]] })]]],
  ["entry type out of range", [FrameKind.Messages, [m({ 6: [[1, 1, 2, new Uint8Array()]] })]]],
  ["context as array", [FrameKind.Messages, [m({ 11: [1] })]]],
  ["snapshot with bad voters", [FrameKind.Messages, [m({ 10: [1, 1, [1], [], new Uint8Array()] })]]],
  ["messages not an array", [FrameKind.Messages, {}]],
  ["response with payload and error", [FrameKind.Response, 1, new Uint8Array(), null, "x"]],
  ["response with neither", [FrameKind.Response, 1, null, null, null]],
  ["snapshot header with a non-Snap message", [FrameKind.SnapshotHeader, m({}), 10]],
  ["short sha256", [FrameKind.SnapshotTrailer, new Uint8Array(31)]],
  ["method not a string", [FrameKind.Request, 1, 5, new Uint8Array()]],
]

for (const [what, value] of malformed) {
  test(`decodeFramePayload() rejects a frame with ${what}`, () => {
    expect(() => decodeFramePayload(cborEncode(value))).toThrow(MalformedFrameError)
  })
}

test("decodeFramePayload() rejects bytes that are not CBOR", () => {
  expect(() => decodeFramePayload(new Uint8Array([0x9f, 0x01]))).toThrow(MalformedFrameError)
  expect(() => decodeFramePayload(new Uint8Array([0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]))).toThrow(
    MalformedFrameError,
  )
})

test("FrameReader splits frames across arbitrary chunk boundaries", () => {
  const wire = Buffer.concat(frames.map((f) => encodeFrame(f)))
  for (const step of [1, 3, 7, 64, wire.length]) {
    const got: Frame[] = []
    const reader = new FrameReader((f) => got.push(f))
    for (let i = 0; i < wire.length; i += step) reader.push(wire.subarray(i, i + step))
    expect(got).toEqual(frames)
  }
})

test("FrameReader rejects an empty frame and a length over the limit", () => {
  const empty = new FrameReader(() => {})
  expect(() => empty.push(Buffer.alloc(FRAME_HEADER_BYTES))).toThrow(MalformedFrameError)
  const big = new FrameReader(() => {}, 1024)
  const head = Buffer.alloc(FRAME_HEADER_BYTES)
  head.writeUInt32BE(1025)
  expect(() => big.push(head)).toThrow(MalformedFrameError)
})
