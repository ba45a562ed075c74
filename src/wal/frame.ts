// The framing of WAL records. Each record is a 16-byte header and a payload:
//
//   0  u32  payload length
//   4  u8   record type
//   5  u8   flags: bit 0 set when the writer fsyncs the record before its
//           save() returns (entries, term or vote changes, snapshot markers)
//   6  2    zero
//   8  u32  crc: crc32 of header bytes 0..7 and the payload, chained from the
//           crc of the previous record (a segment header record chains from the
//           u32 at the start of its own payload: the crc that ended the
//           previous segment)
//  12  u32  crc32 of header bytes 0..11, so that a length (and the flags) can
//           be trusted before the payload is checked
//
// Preallocated space reads as zeros, and an all-zero header is never valid.

export const HEADER_BYTES = 16
/** A payload larger than this is refused on write and treated as garbage on read. */
export const MAX_PAYLOAD_BYTES = 1 << 30

export enum RecordType {
  /** First record of every segment: u32 previous crc, then CBOR {metadata, hard state}. */
  Segment = 1,
  /** One save(): CBOR [hard state or null, entries]. */
  Batch = 2,
  /** A raft snapshot was taken: CBOR [index, term]. */
  Snapshot = 3,
}

export const FLAG_SYNCED = 1

export function crc32(bytes: Uint8Array, seed: number): number {
  return Bun.hash.crc32(bytes, seed) >>> 0
}

/**
 * Fills in the header of a record whose payload already sits at
 * `buffer[at + HEADER_BYTES ..][..payloadBytes]`; returns the record's crc.
 */
export function sealRecord(buffer: Uint8Array, at: number, record: { type: RecordType; flags: number; payloadBytes: number; prevCrc: number }): number {
  const view = new DataView(buffer.buffer, buffer.byteOffset + at, HEADER_BYTES)
  view.setUint32(0, record.payloadBytes, true)
  view.setUint32(4, record.type | (record.flags << 8), true)
  const head = buffer.subarray(at, at + 8)
  const payload = buffer.subarray(at + HEADER_BYTES, at + HEADER_BYTES + record.payloadBytes)
  const seed =
    record.type === RecordType.Segment ? new DataView(buffer.buffer, buffer.byteOffset + at + HEADER_BYTES, 4).getUint32(0, true) : record.prevCrc
  const crc = crc32(payload, crc32(head, seed))
  view.setUint32(8, crc, true)
  view.setUint32(12, crc32(buffer.subarray(at, at + 12), 0), true)
  return crc
}

/** What an intact header says. */
export interface RecordHeader {
  type: RecordType
  flags: number
  /** Offset just past the record. */
  end: number
}

/** The header at `bytes[at]` if it is intact (checksum, type, flags, length), else undefined. */
export function readHeader(bytes: Uint8Array, at: number): RecordHeader | undefined {
  if (at + HEADER_BYTES > bytes.length) return undefined
  // Cheap filters first: the reserved bytes are zero, the type and flags known.
  if (bytes[at + 6] !== 0 || bytes[at + 7] !== 0) return undefined
  const type = bytes[at + 4]!
  if (type !== RecordType.Segment && type !== RecordType.Batch && type !== RecordType.Snapshot) return undefined
  const flags = bytes[at + 5]!
  if ((flags & ~FLAG_SYNCED) !== 0) return undefined
  const view = new DataView(bytes.buffer, bytes.byteOffset + at, HEADER_BYTES)
  const length = view.getUint32(0, true)
  if (length > MAX_PAYLOAD_BYTES) return undefined
  if (crc32(bytes.subarray(at, at + 12), 0) !== view.getUint32(12, true)) return undefined
  return { type: type as RecordType, flags, end: at + HEADER_BYTES + length }
}

export type RecordRead =
  | { ok: true; type: RecordType; payloadStart: number; end: number; crc: number; storedPrevCrc: number }
  | { ok: false; reason: string; /** The damaged record's header, when that is intact. */ header: RecordHeader | undefined }

/** Reads and checks the record at `bytes[at]`. `prevCrc` is the crc of the record before it. */
export function readRecord(bytes: Uint8Array, at: number, prevCrc: number): RecordRead {
  if (at + HEADER_BYTES > bytes.length) return { ok: false, reason: "truncated record header", header: undefined }
  const header = readHeader(bytes, at)
  if (header === undefined) return { ok: false, reason: "damaged record header", header: undefined }
  const { type, end } = header
  if (end > bytes.length) return { ok: false, reason: "truncated record", header }
  const payloadStart = at + HEADER_BYTES
  let storedPrevCrc = prevCrc
  if (type === RecordType.Segment) {
    if (end - payloadStart < 4) return { ok: false, reason: "segment header record too short", header }
    storedPrevCrc = new DataView(bytes.buffer, bytes.byteOffset + payloadStart, 4).getUint32(0, true)
  }
  const crc = crc32(bytes.subarray(payloadStart, end), crc32(bytes.subarray(at, at + 8), storedPrevCrc))
  if (crc !== new DataView(bytes.buffer, bytes.byteOffset + at + 8, 4).getUint32(0, true)) return { ok: false, reason: "crc mismatch", header }
  return { ok: true, type, payloadStart, end, crc, storedPrevCrc }
}

/** Offset just past the last non-zero byte of `bytes` (0 when all are zero). */
export function endOfData(bytes: Uint8Array): number {
  const chunk = 64 * 1024
  const zeros = new Uint8Array(chunk)
  let end = bytes.length
  while (end > 0) {
    const start = Math.max(0, end - chunk)
    if (Buffer.compare(bytes.subarray(start, end), zeros.subarray(0, end - start)) !== 0) break
    end = start
  }
  while (end > 0 && bytes[end - 1] === 0) end--
  return end
}
