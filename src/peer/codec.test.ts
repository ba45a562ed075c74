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
import { AssertionError } from "../lib/assert"
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
  { kind: FrameKind.Messages, messages: [full, { ...minimal, from: full.from, to: full.to }, full] },
  { kind: FrameKind.Messages, messages: [minimal] },
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

/** A frame payload from an arbitrary CBOR envelope and tail. */
function payloadOf(envelope: unknown, tail: Uint8Array = new Uint8Array()): Buffer {
  const cbor = cborEncode(envelope)
  const out = Buffer.alloc(4 + cbor.length + tail.length)
  out.writeUInt32BE(cbor.length)
  out.set(cbor, 4)
  out.set(tail, 4 + cbor.length)
  return out
}

function entryRecord(options: { termHigh?: number; term?: number; index?: number; type?: number; length?: number; data?: number }): Buffer {
  const data = Buffer.alloc(options.data ?? 0)
  const out = Buffer.alloc(21 + data.length)
  out.writeUInt32BE(options.termHigh ?? 0, 0)
  out.writeUInt32BE(options.term ?? 1, 4)
  out.writeUInt32BE(options.index ?? 1, 12)
  out[16] = options.type ?? 0
  out.writeUInt32BE(options.length ?? data.length, 17)
  out.set(data, 21)
  return out
}

/** A message tuple inside a Messages frame: [type, term, logTerm, index, entryCount, commit, reject, rejectHint, snapshot, context]. */
const m = (over: Record<number, unknown>): unknown[] => {
  const base: unknown[] = [MessageType.Heartbeat, 0, 0, 0, 0, 0, false, 0, null, null]
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
  ["message type out of range", [FrameKind.Messages, 2n, 1n, [m({ 0: 19 })]]],
  ["term as string", [FrameKind.Messages, 2n, 1n, [m({ 1: "1" })]]],
  ["term not an integer", [FrameKind.Messages, 2n, 1n, [m({ 1: 1.5 })]]],
  ["term unsafe", [FrameKind.Messages, 2n, 1n, [m({ 1: 2 ** 53 })]]],
  ["index negative", [FrameKind.Messages, 2n, 1n, [m({ 3: -1 })]]],
  ["reject as number", [FrameKind.Messages, 2n, 1n, [m({ 6: 1 })]]],
  ["entry count as string", [FrameKind.Messages, 2n, 1n, [m({ 4: "x" })]]],
  ["context as array", [FrameKind.Messages, 2n, 1n, [m({ 9: [1] })]]],
  ["snapshot with bad voters", [FrameKind.Messages, 2n, 1n, [m({ 8: [1, 1, [1], [], new Uint8Array()] })]]],
  ["messages not an array", [FrameKind.Messages, 2n, 1n, {}]],
  ["an empty batch", [FrameKind.Messages, 2n, 1n, []]],
  ["a numeric sender", [FrameKind.Messages, 2, 1n, [m({})]]],
  ["a message with 12 fields", [FrameKind.Messages, 2n, 1n, [[...m({}), null, null]]]],
  ["response with payload and error", [FrameKind.Response, 1, new Uint8Array(), null, "x"]],
  ["response with neither", [FrameKind.Response, 1, null, null, null]],
  ["snapshot header with a non-Snap message", [FrameKind.SnapshotHeader, [MessageType.Heartbeat, 2n, 1n, 0, 0, 0, 0, 0, false, 0, null, null], 10]],
  ["short sha256", [FrameKind.SnapshotTrailer, new Uint8Array(31)]],
  ["method not a string", [FrameKind.Request, 1, 5, new Uint8Array()]],
]

for (const [what, value] of malformed) {
  test(`decodeFramePayload() rejects a frame with ${what}`, () => {
    expect(() => decodeFramePayload(payloadOf(value))).toThrow(MalformedFrameError)
  })
}

const badTails: Array<[string, number, Buffer]> = [
  ["more entries than records", 2, entryRecord({ data: 3 })],
  ["a huge entry count", 2 ** 40, entryRecord({})],
  ["a truncated entry header", 1, entryRecord({}).subarray(0, 15)],
  ["entry data longer than the frame", 1, entryRecord({ length: 100, data: 3 })],
  ["an entry type out of range", 1, entryRecord({ type: 2 })],
  ["an entry term above 2^53", 1, entryRecord({ termHigh: 0x20_0000 })],
  ["trailing bytes after the entries", 1, Buffer.concat([entryRecord({ data: 2 }), Buffer.from([0])])],
]

for (const [what, count, tail] of badTails) {
  test(`decodeFramePayload() rejects a frame with ${what}`, () => {
    expect(() => decodeFramePayload(payloadOf([FrameKind.Messages, 2n, 1n, [m({ 4: count })]], tail))).toThrow(MalformedFrameError)
  })
}

test("decodeFramePayload() reads entries from the tail in message order", () => {
  const tail = Buffer.concat([entryRecord({ index: 5, data: 2 }), entryRecord({ index: 6, type: 1 }), entryRecord({ index: 9, data: 1 })])
  const frame = decodeFramePayload(payloadOf([FrameKind.Messages, 2n, 1n, [m({ 4: 2 }), m({ 4: 0 }), m({ 4: 1 })]], tail))
  const messages = (frame as { messages: Message[] }).messages
  expect(messages.map((x) => x.entries.map((e) => [e.index, e.type, e.data.length]))).toEqual([
    [[5, 0, 2], [6, 1, 0]],
    [],
    [[9, 0, 1]],
  ])
})

test("encodeFrame() refuses a Messages frame that mixes senders or peers", () => {
  expect(() => encodeFrame({ kind: FrameKind.Messages, messages: [minimal, { ...minimal, to: 5n }] })).toThrow(AssertionError)
  expect(() => encodeFrame({ kind: FrameKind.Messages, messages: [] })).toThrow(AssertionError)
})

test("decodeFramePayload() rejects an envelope length that does not fit", () => {
  const payload = payloadOf([FrameKind.Ping, 1])
  payload.writeUInt32BE(payload.length, 0)
  expect(() => decodeFramePayload(payload)).toThrow(MalformedFrameError)
  expect(() => decodeFramePayload(new Uint8Array([0, 0]))).toThrow(MalformedFrameError)
})

test("decodeFramePayload() rejects bytes that are not CBOR", () => {
  expect(() => decodeFramePayload(new Uint8Array([0, 0, 0, 2, 0x9f, 0x01]))).toThrow(MalformedFrameError)
  expect(() => decodeFramePayload(new Uint8Array([0, 0, 0, 9, 0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]))).toThrow(
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
