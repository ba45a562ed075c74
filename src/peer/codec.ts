// Peer frames: a CBOR (cbor-x) envelope, plus a binary tail with the raft
// entries, inside 4-byte length-prefixed frames (layout at encodeFrame).
// Everything a peer sends arrives as `unknown` and is narrowed here, field by
// field, right after cbor-x decodes it; a frame that does not fit its shape is
// a MalformedFrameError (the connection is closed, the member keeps running).
//
// Shapes are positional arrays (smaller and faster than maps):
//   Messages [kind, from, to, [[type, term, logTerm, index, entryCount, commit, reject, rejectHint, snapshot|null, context|null], ...]]
//   Message  [type, from, to, term, logTerm, index, entryCount, commit, reject, rejectHint, snapshot|null, context|null]
//            (alone, in a SnapshotHeader)
//   Snapshot [index, term, voters, learners, data]

import { Encoder } from "cbor-x"
import { assert } from "../lib/assert"
import {
  EntryType,
  MessageType,
  type ConfState,
  type Entry,
  type Message,
  type NodeId,
  type Snapshot,
} from "../raft/types"
import { MalformedFrameError } from "./errors"

/** Bumped on any incompatible change of the frames below. */
export const PROTOCOL_VERSION = 1

export enum FrameKind {
  Hello = 0,
  Accept = 1,
  Refuse = 2,
  Messages = 3,
  Request = 4,
  Response = 5,
  Ping = 6,
  Pong = 7,
  SnapshotHeader = 8,
  SnapshotTrailer = 9,
  SnapshotResult = 10,
}

/** What a connection carries; chosen by the dialer in its Hello. */
export enum Lane {
  /** Heartbeats, votes, responses, ReadIndex: small and urgent. */
  Control = 0,
  /** App (and forwarded Prop) messages: bulk. */
  Append = 1,
  /** Request/response calls between servers. */
  Rpc = 2,
  /** One snapshot transfer, then the connection closes. */
  Snapshot = 3,
}

export enum RefuseReason {
  ClusterIdMismatch = 0,
  MemberRemoved = 1,
  MemberIdMismatch = 2,
  BadRequest = 3,
}

export interface HelloFrame {
  kind: FrameKind.Hello
  version: number
  lane: Lane
  clusterId: bigint
  from: NodeId
  /** 0n when the dialer does not know the member id yet (joining: fetching the member list). */
  to: NodeId
}
export interface AcceptFrame {
  kind: FrameKind.Accept
  clusterId: bigint
  memberId: NodeId
}
export interface RefuseFrame {
  kind: FrameKind.Refuse
  reason: RefuseReason
  message: string
}
export interface MessagesFrame {
  kind: FrameKind.Messages
  messages: Message[]
}
export interface RequestFrame {
  kind: FrameKind.Request
  callId: number
  method: string
  payload: Uint8Array
}
export interface ResponseFrame {
  kind: FrameKind.Response
  callId: number
  /** Set on success. */
  payload: Uint8Array | null
  /** On failure: a TskvErrorCode when the handler threw a TskvError, else null. */
  errorCode: string | null
  errorMessage: string | null
}
export interface PingFrame {
  kind: FrameKind.Ping
  seq: number
}
export interface PongFrame {
  kind: FrameKind.Pong
  seq: number
}
export interface SnapshotHeaderFrame {
  kind: FrameKind.SnapshotHeader
  message: Message
  sizeBytes: number
}
export interface SnapshotTrailerFrame {
  kind: FrameKind.SnapshotTrailer
  sha256: Uint8Array
}
export interface SnapshotResultFrame {
  kind: FrameKind.SnapshotResult
  ok: boolean
  message: string
}

export type Frame =
  | HelloFrame
  | AcceptFrame
  | RefuseFrame
  | MessagesFrame
  | RequestFrame
  | ResponseFrame
  | PingFrame
  | PongFrame
  | SnapshotHeaderFrame
  | SnapshotTrailerFrame
  | SnapshotResultFrame

export const FRAME_HEADER_BYTES = 4
/** Default upper bound of one frame's payload; a larger length prefix is malformed. */
export const DEFAULT_FRAME_BYTES_MAX = 64 * 1024 * 1024
const STRING_LENGTH_MAX = 64 * 1024
const MAX_UINT64 = 0xffff_ffff_ffff_ffffn

// ---------------------------------------------------------------- encoding

const encoder = new Encoder({ useRecords: false, tagUint8Array: false, structuredClone: false })

/** cbor-x arguments its typings omit: encode modes (encode.js) and decode's end offset. */
interface CborCodec {
  encode(value: unknown, mode: number): Buffer & { start: number; end: number }
  decode(source: Uint8Array, end: number): unknown
}
const cbor = encoder as unknown as CborCodec
/** cbor-x REUSE_BUFFER_MODE | RESET_BUFFER_MODE: encode into the encoder's own buffer, from its start each time. */
const REUSE_AND_RESET_BUFFER = 512 | 1024

/** term u64, index u64, type u8, data length u32, then the data. */
const ENTRY_HEADER_BYTES = 21
const TWO_POW_32 = 0x1_0000_0000

function encodeSnapshot(s: Snapshot): unknown[] {
  return [s.metadata.index, s.metadata.term, s.metadata.confState.voters, s.metadata.confState.learners, s.data]
}

/** A message of a Messages frame: from and to are the frame's. */
function encodeBatchedMessage(m: Message): unknown[] {
  return [
    m.type,
    m.term,
    m.logTerm,
    m.index,
    m.entries.length,
    m.commit,
    m.reject,
    m.rejectHint,
    m.snapshot === undefined ? null : encodeSnapshot(m.snapshot),
    m.context === undefined ? null : m.context,
  ]
}

function encodeMessage(m: Message): unknown[] {
  return [
    m.type,
    m.from,
    m.to,
    m.term,
    m.logTerm,
    m.index,
    m.entries.length,
    m.commit,
    m.reject,
    m.rejectHint,
    m.snapshot === undefined ? null : encodeSnapshot(m.snapshot),
    m.context === undefined ? null : m.context,
  ]
}

function frameBody(frame: Frame): unknown[] {
  switch (frame.kind) {
    case FrameKind.Hello:
      return [frame.kind, frame.version, frame.lane, frame.clusterId, frame.from, frame.to]
    case FrameKind.Accept:
      return [frame.kind, frame.clusterId, frame.memberId]
    case FrameKind.Refuse:
      return [frame.kind, frame.reason, frame.message]
    case FrameKind.Messages: {
      const first = frame.messages[0]
      assert(first !== undefined, "empty Messages frame")
      for (const m of frame.messages) {
        assert(m.from === first.from && m.to === first.to, "a Messages frame carries messages of one sender to one peer")
      }
      return [frame.kind, first.from, first.to, frame.messages.map(encodeBatchedMessage)]
    }
    case FrameKind.Request:
      return [frame.kind, frame.callId, frame.method, frame.payload]
    case FrameKind.Response:
      return [frame.kind, frame.callId, frame.payload, frame.errorCode, frame.errorMessage]
    case FrameKind.Ping:
    case FrameKind.Pong:
      return [frame.kind, frame.seq]
    case FrameKind.SnapshotHeader:
      return [frame.kind, encodeMessage(frame.message), frame.sizeBytes]
    case FrameKind.SnapshotTrailer:
      return [frame.kind, frame.sha256]
    case FrameKind.SnapshotResult:
      return [frame.kind, frame.ok, frame.message]
  }
}

function messagesOf(frame: Frame): readonly Message[] {
  if (frame.kind === FrameKind.Messages) return frame.messages
  if (frame.kind === FrameKind.SnapshotHeader) return [frame.message]
  return []
}

/**
 * A frame ready for the socket:
 *   u32 length of the rest | u32 length of the CBOR envelope | CBOR envelope | entry tail
 * The envelope carries every field except the entries of messages, which
 * follow as binary records (term, index, type, length, data): entries are the
 * bulk of the traffic, and copying their bytes beats encoding them as CBOR.
 */
export function encodeFrame(frame: Frame): Buffer {
  // The encoder's buffer is reused (and reset) on every call: copy out at once.
  const envelope = cbor.encode(frameBody(frame), REUSE_AND_RESET_BUFFER)
  const envelopeBytes = envelope.end - envelope.start
  const messages = messagesOf(frame)
  let tailBytes = 0
  for (const m of messages) for (const e of m.entries) tailBytes += ENTRY_HEADER_BYTES + e.data.length
  const payloadBytes = 4 + envelopeBytes + tailBytes
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payloadBytes)
  out.writeUInt32BE(payloadBytes, 0)
  out.writeUInt32BE(envelopeBytes, 4)
  envelope.copy(out, 8, envelope.start, envelope.end)
  let at = 8 + envelopeBytes
  for (const m of messages) {
    for (const e of m.entries) {
      out.writeUInt32BE(Math.floor(e.term / TWO_POW_32), at)
      out.writeUInt32BE(e.term >>> 0, at + 4)
      out.writeUInt32BE(Math.floor(e.index / TWO_POW_32), at + 8)
      out.writeUInt32BE(e.index >>> 0, at + 12)
      out[at + 16] = e.type
      out.writeUInt32BE(e.data.length, at + 17)
      out.set(e.data, at + ENTRY_HEADER_BYTES)
      at += ENTRY_HEADER_BYTES + e.data.length
    }
  }
  return out
}

/** The frame without its length prefix (what decodeFramePayload takes). */
export function encodeFramePayload(frame: Frame): Uint8Array {
  return encodeFrame(frame).subarray(FRAME_HEADER_BYTES)
}

/** Rough wire size of a message, used to bound queues and split batches. */
export function estimateMessageBytes(m: Message): number {
  let bytes = 64 + (m.context?.length ?? 0) + (m.snapshot?.data.length ?? 0)
  for (const e of m.entries) bytes += ENTRY_HEADER_BYTES + e.data.length
  return bytes
}

// ---------------------------------------------------------------- decoding

/** Reads the binary entry records that follow the envelope. */
class EntryTail {
  private at: number
  constructor(
    private readonly bytes: Uint8Array,
    start: number,
  ) {
    this.at = start
  }

  read(count: number, what: string): Entry[] {
    const bytes = this.bytes
    if (count * ENTRY_HEADER_BYTES > bytes.length - this.at) throw new MalformedFrameError(`${what}: ${count} entries do not fit the frame`)
    const entries: Entry[] = new Array<Entry>(count)
    for (let i = 0; i < count; i++) {
      const at = this.at
      if (at + ENTRY_HEADER_BYTES > bytes.length) throw new MalformedFrameError(`${what}: entry ${i} truncated`)
      const term = readUint64(bytes, at, `${what} entry ${i} term`)
      const index = readUint64(bytes, at + 8, `${what} entry ${i} index`)
      const type = bytes[at + 16]!
      if (type > EntryType.ConfChange) throw new MalformedFrameError(`${what} entry ${i} type: ${type} out of range`)
      const end = at + ENTRY_HEADER_BYTES + readUint32(bytes, at + 17)
      if (end > bytes.length) throw new MalformedFrameError(`${what}: entry ${i} data truncated`)
      entries[i] = { term, index, type, data: bytes.subarray(at + ENTRY_HEADER_BYTES, end) }
      this.at = end
    }
    return entries
  }

  finish(): void {
    if (this.at !== this.bytes.length) throw new MalformedFrameError(`${this.bytes.length - this.at} trailing bytes after the entries`)
  }
}

export function readUint32(bytes: Uint8Array, at: number): number {
  return ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0
}

function readUint64(bytes: Uint8Array, at: number, what: string): number {
  const high = readUint32(bytes, at)
  if (high >= 0x20_0000) throw new MalformedFrameError(`${what}: not a safe integer`)
  return high * TWO_POW_32 + readUint32(bytes, at + 4)
}

/** Decodes and narrows one frame (without its length prefix). Throws MalformedFrameError on anything unexpected. */
export function decodeFramePayload(payload: Uint8Array): Frame {
  if (payload.length < 4) throw new MalformedFrameError("frame shorter than its envelope length")
  return decodeFrameBody(payload.subarray(4), readUint32(payload, 0))
}

/**
 * Decodes a frame's envelope and entry tail (`body`: the payload after its
 * envelope length; it may be a view into a larger socket chunk). Entries get
 * their data from one copy of the tail, so that a raft log holding them pins
 * only that copy, never the socket chunk. Byte fields of the envelope (RPC
 * payloads, contexts) are copied too.
 */
export function decodeFrameBody(body: Uint8Array, envelopeBytes: number): Frame {
  if (envelopeBytes === 0 || envelopeBytes > body.length) {
    throw new MalformedFrameError(`envelope length ${envelopeBytes} does not fit a ${body.length + 4}-byte frame`)
  }
  let raw: unknown
  try {
    raw = cbor.decode(body, envelopeBytes)
  } catch (e) {
    throw new MalformedFrameError(`undecodable CBOR: ${(e as Error).message}`)
  }
  const tail = new EntryTail(envelopeBytes === body.length ? body : body.slice(envelopeBytes), envelopeBytes === body.length ? body.length : 0)
  const frame = narrowFrame(raw, tail)
  tail.finish()
  return frame
}

function narrowFrame(raw: unknown, tail: EntryTail): Frame {
  const a = asArray(raw, "frame")
  if (a.length === 0) throw new MalformedFrameError("empty frame")
  const kind = asEnum(a[0], FrameKind.SnapshotResult, "frame kind") as FrameKind
  switch (kind) {
    case FrameKind.Hello:
      expectLength(a, 6, "hello")
      return {
        kind,
        version: asIndex(a[1], "hello version"),
        lane: asEnum(a[2], Lane.Snapshot, "hello lane") as Lane,
        clusterId: asId(a[3], "hello cluster id"),
        from: asId(a[4], "hello from"),
        to: asId(a[5], "hello to"),
      }
    case FrameKind.Accept:
      expectLength(a, 3, "accept")
      return { kind, clusterId: asId(a[1], "accept cluster id"), memberId: asId(a[2], "accept member id") }
    case FrameKind.Refuse:
      expectLength(a, 3, "refuse")
      return {
        kind,
        reason: asEnum(a[1], RefuseReason.BadRequest, "refuse reason") as RefuseReason,
        message: asString(a[2], "refuse message"),
      }
    case FrameKind.Messages: {
      expectLength(a, 4, "messages")
      const from = asId(a[1], "messages from")
      const to = asId(a[2], "messages to")
      const list = asArray(a[3], "messages")
      if (list.length === 0) throw new MalformedFrameError("messages: empty batch")
      return { kind, messages: list.map((m, i) => narrowBatchedMessage(m, from, to, tail, `message ${i}`)) }
    }
    case FrameKind.Request:
      expectLength(a, 4, "request")
      return {
        kind,
        callId: asIndex(a[1], "call id"),
        method: asString(a[2], "method"),
        payload: asBytes(a[3], "request payload"),
      }
    case FrameKind.Response: {
      expectLength(a, 5, "response")
      const payload = a[2] === null ? null : asBytes(a[2], "response payload")
      const errorCode = a[3] === null ? null : asString(a[3], "error code")
      const errorMessage = a[4] === null ? null : asString(a[4], "error message")
      if ((payload === null) === (errorMessage === null)) {
        throw new MalformedFrameError("response must carry exactly one of payload and error")
      }
      return { kind, callId: asIndex(a[1], "call id"), payload, errorCode, errorMessage }
    }
    case FrameKind.Ping:
    case FrameKind.Pong:
      expectLength(a, 2, "ping")
      return { kind, seq: asIndex(a[1], "ping seq") }
    case FrameKind.SnapshotHeader: {
      expectLength(a, 3, "snapshot header")
      const message = narrowMessage(a[1], tail, "snapshot message")
      if (message.type !== MessageType.Snap || message.snapshot === undefined) {
        throw new MalformedFrameError("snapshot header must carry a Snap message with a snapshot")
      }
      return { kind, message, sizeBytes: asIndex(a[2], "snapshot size") }
    }
    case FrameKind.SnapshotTrailer: {
      expectLength(a, 2, "snapshot trailer")
      const sha256 = asBytes(a[1], "snapshot sha256")
      if (sha256.length !== 32) throw new MalformedFrameError(`snapshot sha256 has ${sha256.length} bytes`)
      return { kind, sha256 }
    }
    case FrameKind.SnapshotResult:
      expectLength(a, 3, "snapshot result")
      return { kind, ok: asBool(a[1], "snapshot ok"), message: asString(a[2], "snapshot result message") }
  }
}

function narrowBatchedMessage(raw: unknown, from: NodeId, to: NodeId, tail: EntryTail, what: string): Message {
  const a = asArray(raw, what)
  expectLength(a, 10, what)
  const message: Message = {
    type: asEnum(a[0], MessageType.PreVoteResp, `${what} type`) as MessageType,
    from,
    to,
    term: asIndex(a[1], `${what} term`),
    logTerm: asIndex(a[2], `${what} logTerm`),
    index: asIndex(a[3], `${what} index`),
    entries: tail.read(asIndex(a[4], `${what} entry count`), what),
    commit: asIndex(a[5], `${what} commit`),
    reject: asBool(a[6], `${what} reject`),
    rejectHint: asIndex(a[7], `${what} rejectHint`),
  }
  if (a[8] !== null) message.snapshot = narrowSnapshot(a[8], `${what} snapshot`)
  if (a[9] !== null) message.context = asBytes(a[9], `${what} context`)
  return message
}

function narrowMessage(raw: unknown, tail: EntryTail, what: string): Message {
  const a = asArray(raw, what)
  expectLength(a, 12, what)
  const message: Message = {
    type: asEnum(a[0], MessageType.PreVoteResp, `${what} type`) as MessageType,
    from: asId(a[1], `${what} from`),
    to: asId(a[2], `${what} to`),
    term: asIndex(a[3], `${what} term`),
    logTerm: asIndex(a[4], `${what} logTerm`),
    index: asIndex(a[5], `${what} index`),
    entries: tail.read(asIndex(a[6], `${what} entry count`), what),
    commit: asIndex(a[7], `${what} commit`),
    reject: asBool(a[8], `${what} reject`),
    rejectHint: asIndex(a[9], `${what} rejectHint`),
  }
  if (a[10] !== null) message.snapshot = narrowSnapshot(a[10], `${what} snapshot`)
  if (a[11] !== null) message.context = asBytes(a[11], `${what} context`)
  return message
}

function narrowSnapshot(raw: unknown, what: string): Snapshot {
  const a = asArray(raw, what)
  expectLength(a, 5, what)
  const confState: ConfState = {
    voters: asArray(a[2], `${what} voters`).map((v) => asId(v, `${what} voter`)),
    learners: asArray(a[3], `${what} learners`).map((v) => asId(v, `${what} learner`)),
  }
  return {
    metadata: { index: asIndex(a[0], `${what} index`), term: asIndex(a[1], `${what} term`), confState },
    data: asBytes(a[4], `${what} data`),
  }
}

function asArray(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) throw new MalformedFrameError(`${what}: expected an array`)
  return v
}

function expectLength(a: unknown[], length: number, what: string): void {
  if (a.length !== length) throw new MalformedFrameError(`${what}: expected ${length} fields, got ${a.length}`)
}

function asIndex(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    throw new MalformedFrameError(`${what}: expected a non-negative safe integer`)
  }
  return v
}

function asEnum(v: unknown, max: number, what: string): number {
  const n = asIndex(v, what)
  if (n > max) throw new MalformedFrameError(`${what}: ${n} out of range`)
  return n
}

function asId(v: unknown, what: string): bigint {
  if (typeof v !== "bigint" || v < 0n || v > MAX_UINT64) {
    throw new MalformedFrameError(`${what}: expected a 64-bit unsigned id`)
  }
  return v
}

function asBool(v: unknown, what: string): boolean {
  if (typeof v !== "boolean") throw new MalformedFrameError(`${what}: expected a boolean`)
  return v
}

/** A copy: the decoded value may be a view into a socket chunk, which must not stay pinned. */
function asBytes(v: unknown, what: string): Uint8Array {
  if (!(v instanceof Uint8Array)) throw new MalformedFrameError(`${what}: expected bytes`)
  return v.slice()
}

function asString(v: unknown, what: string): string {
  if (typeof v !== "string" || v.length > STRING_LENGTH_MAX) throw new MalformedFrameError(`${what}: expected a string`)
  return v
}
