// etcd's buckets in its bbolt db and the encodings of their keys and values
// (etcd 3.4 mvcc/backend users; 3.5 adds meta/term and meta/confState):
//
//   key              revision main(8 BE) '_' sub(8 BE) [+ 't' tombstone] -> mvccpb.KeyValue
//                    (a tombstone's KeyValue holds only the key)
//   meta             consistent_index (8 BE), scheduledCompactRev and
//                    finishedCompactRev (revision keys, sub 0), 3.5: term (8 BE), confState (JSON)
//   lease            lease id (8 BE) -> leasepb.Lease {ID, TTL, RemainingTTL}
//   members          member id (%x) -> JSON {id, peerURLs, name, clientURLs, isLearner}
//   members_removed  member id (%x) -> "removed"
//   cluster          clusterVersion -> "3.4.0"
//   auth             authEnabled -> {1} or {0}, authRevision (8 BE)
//   authUsers        name -> authpb.User;  authRoles: name -> authpb.Role
//   alarm            etcdserverpb.AlarmMember {MemberID, Alarm} -> empty

export const BUCKETS = ["alarm", "auth", "authRoles", "authUsers", "cluster", "key", "lease", "members", "members_removed", "meta"] as const

export const REVISION_BYTES = 17
export const TOMBSTONE_MARK = 0x74 // 't'

export interface Revision {
  main: number
  sub: number
  tombstone: boolean
}

export function encodeRevision(main: number, sub: number, tombstone = false): Uint8Array {
  const buf = new Uint8Array(tombstone ? REVISION_BYTES + 1 : REVISION_BYTES)
  writeRevision(buf, 0, { main, sub, tombstone })
  return buf
}

/** Writes a revision key at `at` (REVISION_BYTES, one more for a tombstone); returns the offset after it. */
export function writeRevision(buf: Uint8Array, at: number, rev: Revision): number {
  // Big-endian, two 32-bit halves each (revisions are safe integers): no BigInt, no DataView, per row of a 1M-key export.
  writeUint64(buf, at, rev.main)
  buf[at + 8] = 0x5f // '_'
  writeUint64(buf, at + 9, rev.sub)
  if (!rev.tombstone) return at + REVISION_BYTES
  buf[at + REVISION_BYTES] = TOMBSTONE_MARK
  return at + REVISION_BYTES + 1
}

function writeUint64(buf: Uint8Array, at: number, v: number): void {
  const hi = Math.floor(v / 2 ** 32)
  const lo = v >>> 0
  buf[at] = hi >>> 24
  buf[at + 1] = hi >>> 16
  buf[at + 2] = hi >>> 8
  buf[at + 3] = hi
  buf[at + 4] = lo >>> 24
  buf[at + 5] = lo >>> 16
  buf[at + 6] = lo >>> 8
  buf[at + 7] = lo
}

/** A key of the key bucket; undefined when it is not one. */
export function decodeRevision(key: Uint8Array): Revision | undefined {
  const tombstone = key.byteLength === REVISION_BYTES + 1 && key[REVISION_BYTES] === TOMBSTONE_MARK
  if (key.byteLength !== REVISION_BYTES && !tombstone) return undefined
  if (key[8] !== 0x5f) return undefined
  const view = new DataView(key.buffer, key.byteOffset, key.byteLength)
  return { main: Number(view.getBigInt64(0)), sub: Number(view.getBigInt64(9)), tombstone }
}

export function encodeUint64(value: number | bigint): Uint8Array {
  const buf = new Uint8Array(8)
  new DataView(buf.buffer).setBigUint64(0, BigInt(value))
  return buf
}

export function decodeUint64(bytes: Uint8Array): bigint {
  if (bytes.byteLength !== 8) throw new Error(`want 8 bytes, got ${bytes.byteLength}`)
  return new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0)
}

// ---------------------------------------------------------------- protobuf bits

function varint(out: number[], value: bigint): void {
  let v = BigInt.asUintN(64, value)
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80)
    v >>= 7n
  }
  out.push(Number(v))
}

function readVarint(bytes: Uint8Array, at: { pos: number }): bigint {
  let result = 0n
  for (let shift = 0n; shift < 70n; shift += 7n) {
    if (at.pos >= bytes.byteLength) throw new Error("truncated varint")
    const b = bytes[at.pos++]!
    result |= BigInt(b & 0x7f) << shift
    if ((b & 0x80) === 0) return BigInt.asUintN(64, result)
  }
  throw new Error("varint too long")
}

/** The varint fields of a message (other wire types skipped). */
function varintFields(bytes: Uint8Array): Map<number, bigint> {
  const fields = new Map<number, bigint>()
  const at = { pos: 0 }
  while (at.pos < bytes.byteLength) {
    const tag = Number(readVarint(bytes, at))
    const field = tag >>> 3
    switch (tag & 7) {
      case 0:
        fields.set(field, readVarint(bytes, at))
        break
      case 2:
        at.pos += Number(readVarint(bytes, at))
        break
      case 1:
        at.pos += 8
        break
      case 5:
        at.pos += 4
        break
      default:
        throw new Error(`bad wire type in field ${field}`)
    }
  }
  if (at.pos !== bytes.byteLength) throw new Error("truncated message")
  return fields
}

/** leasepb.Lease. */
export interface LeaseRecord {
  id: bigint
  ttl: number
  remainingTtl: number
}

export function encodeLease(lease: LeaseRecord): Uint8Array {
  const out: number[] = []
  if (lease.id !== 0n) {
    out.push(0x08)
    varint(out, lease.id)
  }
  if (lease.ttl !== 0) {
    out.push(0x10)
    varint(out, BigInt(lease.ttl))
  }
  if (lease.remainingTtl !== 0) {
    out.push(0x18)
    varint(out, BigInt(lease.remainingTtl))
  }
  return Uint8Array.from(out)
}

export function decodeLease(bytes: Uint8Array): LeaseRecord {
  const f = varintFields(bytes)
  return { id: BigInt.asIntN(64, f.get(1) ?? 0n), ttl: Number(BigInt.asIntN(64, f.get(2) ?? 0n)), remainingTtl: Number(BigInt.asIntN(64, f.get(3) ?? 0n)) }
}

/** etcdserverpb.AlarmMember, the key of the alarm bucket. */
export function encodeAlarmMember(memberId: bigint, alarm: number): Uint8Array {
  const out: number[] = []
  if (memberId !== 0n) {
    out.push(0x08)
    varint(out, memberId)
  }
  if (alarm !== 0) {
    out.push(0x10)
    varint(out, BigInt(alarm))
  }
  return Uint8Array.from(out)
}

export function decodeAlarmMember(bytes: Uint8Array): { memberId: bigint; alarm: number } {
  const f = varintFields(bytes)
  return { memberId: f.get(1) ?? 0n, alarm: Number(f.get(2) ?? 0n) }
}

// ---------------------------------------------------------------- members

export interface MemberRecord {
  id: bigint
  name: string
  peerUrls: string[]
  clientUrls: string[]
  isLearner: boolean
}

/** etcd's json.Marshal(membership.Member): omitempty name, clientURLs and isLearner; id a bare uint64. */
export function encodeMember(m: MemberRecord): Uint8Array {
  let json = `{"id":${m.id.toString()},"peerURLs":${JSON.stringify(m.peerUrls)}`
  if (m.isLearner) json += `,"isLearner":true`
  if (m.name !== "") json += `,"name":${JSON.stringify(m.name)}`
  if (m.clientUrls.length > 0) json += `,"clientURLs":${JSON.stringify(m.clientUrls)}`
  return Buffer.from(`${json}}`)
}

export function decodeMember(bytes: Uint8Array): MemberRecord {
  const text = Buffer.from(bytes).toString("utf8")
  // The id is a uint64 that a JS number cannot hold: read its digits as they are.
  const id = /"id"\s*:\s*(\d+)/.exec(text)?.[1]
  if (id === undefined) throw new Error(`member without an id: ${text}`)
  const parsed = JSON.parse(text) as { peerURLs?: unknown; name?: unknown; clientURLs?: unknown; isLearner?: unknown }
  const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((s): s is string => typeof s === "string") : [])
  return {
    id: BigInt(id),
    name: typeof parsed.name === "string" ? parsed.name : "",
    peerUrls: strings(parsed.peerURLs),
    clientUrls: strings(parsed.clientURLs),
    isLearner: parsed.isLearner === true,
  }
}

// ---------------------------------------------------------------- snapshot status

const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256)
  for (let i = 0; i < 256; i++) {
    let c = i
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1
    table[i] = c >>> 0
  }
  return table
})()

/** crc32 with the Castagnoli polynomial, continued from `crc` (Go's crc32.Update). */
export function crc32c(crc: number, bytes: Uint8Array): number {
  let c = ~crc >>> 0
  for (let i = 0; i < bytes.byteLength; i++) c = CRC32C_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8)
  return ~c >>> 0
}
