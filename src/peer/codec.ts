// Peer frames: CBOR (cbor-x) payloads inside 4-byte length-prefixed frames.
// Everything a peer sends arrives as `unknown` and is narrowed here, field by
// field, right after cbor-x decodes it; a frame that does not fit its shape is
// a MalformedFrameError (the connection is closed, the member keeps running).
//
// Shapes are positional arrays (smaller and faster than maps):
//   Message  [type, from, to, term, logTerm, index, entries, commit, reject, rejectHint, snapshot|null, context|null]
//   Entry    [term, index, type, data]
//   Snapshot [index, term, voters, learners, data]

import { Encoder } from "cbor-x"
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

function encodeEntry(e: Entry): unknown[] {
  return [e.term, e.index, e.type, e.data]
}

function encodeSnapshot(s: Snapshot): unknown[] {
  return [s.metadata.index, s.metadata.term, s.metadata.confState.voters, s.metadata.confState.learners, s.data]
}

function encodeMessage(m: Message): unknown[] {
  return [
    m.type,
    m.from,
    m.to,
    m.term,
    m.logTerm,
    m.index,
    m.entries.map(encodeEntry),
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
    case FrameKind.Messages:
      return [frame.kind, frame.messages.map(encodeMessage)]
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

/** The CBOR payload of a frame, without the length prefix. */
export function encodeFramePayload(frame: Frame): Uint8Array {
  return encoder.encode(frameBody(frame))
}

/** A frame ready for the socket: 4-byte big-endian length, then the CBOR payload. */
export function encodeFrame(frame: Frame): Buffer {
  const payload = encodeFramePayload(frame)
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length)
  out.writeUInt32BE(payload.length, 0)
  out.set(payload, FRAME_HEADER_BYTES)
  return out
}

/** Rough wire size of a message, used to bound queues and split batches. */
export function estimateMessageBytes(m: Message): number {
  let bytes = 64 + (m.context?.length ?? 0) + (m.snapshot?.data.length ?? 0)
  for (const e of m.entries) bytes += 24 + e.data.length
  return bytes
}

// ---------------------------------------------------------------- decoding

/** Decodes and narrows one frame payload. Throws MalformedFrameError on anything unexpected. */
export function decodeFramePayload(payload: Uint8Array): Frame {
  let raw: unknown
  try {
    raw = encoder.decode(payload)
  } catch (e) {
    throw new MalformedFrameError(`undecodable CBOR: ${(e as Error).message}`)
  }
  return narrowFrame(raw)
}

export function narrowFrame(raw: unknown): Frame {
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
      expectLength(a, 2, "messages")
      const list = asArray(a[1], "messages")
      return { kind, messages: list.map((m, i) => narrowMessage(m, `message ${i}`)) }
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
      const message = narrowMessage(a[1], "snapshot message")
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

export function narrowMessage(raw: unknown, what = "message"): Message {
  const a = asArray(raw, what)
  expectLength(a, 12, what)
  const message: Message = {
    type: asEnum(a[0], MessageType.PreVoteResp, `${what} type`) as MessageType,
    from: asId(a[1], `${what} from`),
    to: asId(a[2], `${what} to`),
    term: asIndex(a[3], `${what} term`),
    logTerm: asIndex(a[4], `${what} logTerm`),
    index: asIndex(a[5], `${what} index`),
    entries: asArray(a[6], `${what} entries`).map((e, i) => narrowEntry(e, `${what} entry ${i}`)),
    commit: asIndex(a[7], `${what} commit`),
    reject: asBool(a[8], `${what} reject`),
    rejectHint: asIndex(a[9], `${what} rejectHint`),
  }
  if (a[10] !== null) message.snapshot = narrowSnapshot(a[10], `${what} snapshot`)
  if (a[11] !== null) message.context = asBytes(a[11], `${what} context`)
  return message
}

function narrowEntry(raw: unknown, what: string): Entry {
  const a = asArray(raw, what)
  expectLength(a, 4, what)
  return {
    term: asIndex(a[0], `${what} term`),
    index: asIndex(a[1], `${what} index`),
    type: asEnum(a[2], EntryType.ConfChange, `${what} type`) as EntryType,
    data: asBytes(a[3], `${what} data`),
  }
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

function asBytes(v: unknown, what: string): Uint8Array {
  if (!(v instanceof Uint8Array)) throw new MalformedFrameError(`${what}: expected bytes`)
  return v
}

function asString(v: unknown, what: string): string {
  if (typeof v !== "string" || v.length > STRING_LENGTH_MAX) throw new MalformedFrameError(`${what}: expected a string`)
  return v
}
