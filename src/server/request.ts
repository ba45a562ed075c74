// What goes into a raft entry: one internal request. The body of a client
// request is the same protobuf the client sent (re-encoded by the generated
// codec), so apply decodes with the fast pb decoders; requests that only
// exist inside tskv use CBOR. The envelope carries who proposed it (origin
// member + sequence number, to find the waiter) and, with auth on, the user
// and auth revision it was authorised under (re-checked at apply, as etcd).
//
//   [kind u8][origin u64 BE][seq f64 BE][authRevision f64 BE][userLen u16 BE][user utf8][body]

import { decode as cborDecode, encode as cborEncode } from "cbor-x"
import { assert } from "../lib/assert"
import { fromUtf8, utf8 } from "../lib/bytes"
import * as pb from "../pb"

export enum RequestKind {
  Put = 1,
  DeleteRange = 2,
  Txn = 3,
  Compaction = 4,
  LeaseGrant = 5,
  LeaseRevoke = 6,
  LeaseCheckpoint = 7,
  Alarm = 8,
  /** A member publishes its name and client URLs (CBOR MemberAttributes). */
  MemberAttributes = 9,
  /** Auth mutations (CBOR AuthOp). */
  Auth = 10,
  /** An empty request, to confirm the member can commit (endpoint health). */
  Noop = 11,
  /** A v2 store request (CBOR V2Request, src/v2store/apply.ts). */
  V2 = 12,
}

export interface MemberAttributes {
  id: bigint
  name: string
  clientUrls: string[]
}

export interface RequestEnvelope {
  kind: RequestKind
  origin: bigint
  seq: number
  authRevision: number
  user: string
}

const HEADER_BYTES = 1 + 8 + 8 + 8 + 2

/** Scratch for the envelope's numbers: a typed array's `.buffer` is not free (JSC makes its ArrayBuffer on first use). */
const scratch = new DataView(new ArrayBuffer(8))
const scratchBytes = new Uint8Array(scratch.buffer)

function read8(data: Uint8Array, at: number): DataView {
  for (let i = 0; i < 8; i++) scratchBytes[i] = data[at + i]!
  return scratch
}

function write8(out: Uint8Array, at: number): void {
  for (let i = 0; i < 8; i++) out[at + i] = scratchBytes[i]!
}

export function encodeRequest(env: RequestEnvelope, body: Uint8Array): Uint8Array {
  const user = env.user ? utf8(env.user) : undefined
  const userLen = user?.length ?? 0
  assert(userLen < 0x10000, "user name too long")
  const out = new Uint8Array(HEADER_BYTES + userLen + body.length)
  out[0] = env.kind
  scratch.setBigUint64(0, env.origin)
  write8(out, 1)
  scratch.setFloat64(0, env.seq)
  write8(out, 9)
  scratch.setFloat64(0, env.authRevision)
  write8(out, 17)
  out[25] = userLen >> 8
  out[26] = userLen & 0xff
  if (user) out.set(user, HEADER_BYTES)
  out.set(body, HEADER_BYTES + userLen)
  return out
}

export interface DecodedRequest extends RequestEnvelope {
  body: Uint8Array
}

export function decodeRequest(data: Uint8Array): DecodedRequest {
  assert(data.length >= HEADER_BYTES, () => `raft entry too short for a request: ${data.length} bytes`)
  const kind = data[0] as RequestKind
  assert(kind >= RequestKind.Put && kind <= RequestKind.V2, () => `unknown request kind ${kind}`)
  const userLen = (data[25]! << 8) | data[26]!
  assert(data.length >= HEADER_BYTES + userLen, "raft entry truncated in the user name")
  return {
    kind,
    origin: read8(data, 1).getBigUint64(0),
    seq: read8(data, 9).getFloat64(0),
    authRevision: read8(data, 17).getFloat64(0),
    user: userLen ? fromUtf8(data.subarray(HEADER_BYTES, HEADER_BYTES + userLen)) : "",
    body: data.subarray(HEADER_BYTES + userLen),
  }
}

export function encodeCbor(value: unknown): Uint8Array {
  return cborEncode(value)
}

export function decodeCbor(bytes: Uint8Array): unknown {
  return cborDecode(bytes)
}

export function decodeMemberAttributes(bytes: Uint8Array): MemberAttributes {
  const v = decodeCbor(bytes) as Partial<MemberAttributes> | null
  assert(v !== null && typeof v === "object", "member attributes: not a map")
  assert(typeof v.id === "bigint" || typeof v.id === "number", "member attributes: id")
  assert(typeof v.name === "string", "member attributes: name")
  assert(Array.isArray(v.clientUrls) && v.clientUrls.every((u) => typeof u === "string"), "member attributes: clientUrls")
  return { id: BigInt(v.id), name: v.name, clientUrls: v.clientUrls }
}

export { pb }
