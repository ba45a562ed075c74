// CBOR payloads of WAL records. Decoded values are `unknown` and are checked
// for shape at once; entry data is copied out of the segment buffer.

import { Decoder, Encoder } from "cbor-x"
import type { Entry, HardState } from "../raft/types"
import { EntryType } from "../raft/types"

export interface WalMetadata {
  memberId: bigint
  clusterId: bigint
}

export interface WalSnapshot {
  index: number
  term: number
}

export class ShapeError extends Error {}

const encoder = new Encoder({ useRecords: false, tagUint8Array: false, mapsAsObjects: true })
const decoder = new Decoder({ useRecords: false, mapsAsObjects: true })

/** The CBOR of `value`; only valid until the next call (it is the encoder's buffer). */
export function encodeValue(value: unknown): Uint8Array {
  return encoder.encode(value)
}

export function decodeValue(bytes: Uint8Array): unknown {
  try {
    return decoder.decode(bytes) as unknown
  } catch (e) {
    throw new ShapeError(`undecodable CBOR: ${e instanceof Error ? e.message : String(e)}`)
  }
}

type HardStateWire = [number, bigint, number]
type EntryWire = [number, number, number, Uint8Array]

export function hardStateWire(hs: HardState): HardStateWire {
  return [hs.term, hs.vote, hs.commit]
}

export function entryWire(e: Entry): EntryWire {
  return [e.term, e.index, e.type, e.data]
}

export function batchWire(hs: HardState | undefined, entries: readonly Entry[]): unknown {
  return [hs === undefined ? null : hardStateWire(hs), entries.map(entryWire)]
}

/** An upper bound of the bytes writeBatch() needs. */
export function batchBytesMax(entries: readonly Entry[]): number {
  let n = 1 + 28 + 9
  for (const e of entries) n += 1 + 9 + 9 + 1 + 9 + e.data.length
  return n
}

/**
 * Writes the CBOR of batchWire(hs, entries) into `out` at `at` without
 * building it first (save() is on the path of every write); returns the end.
 * `out` must have batchBytesMax(entries) bytes from `at`. cbor-x decodes it.
 */
export function writeBatch(out: Uint8Array, at: number, hs: HardState | undefined, entries: readonly Entry[]): number {
  let p = at
  out[p++] = 0x82
  if (hs === undefined) {
    out[p++] = 0xf6
  } else {
    out[p++] = 0x83
    p = writeHead(out, p, 0x00, hs.term)
    p = writeBigUint(out, p, hs.vote)
    p = writeHead(out, p, 0x00, hs.commit)
  }
  p = writeHead(out, p, 0x80, entries.length)
  for (const e of entries) {
    out[p++] = 0x84
    p = writeHead(out, p, 0x00, e.term)
    p = writeHead(out, p, 0x00, e.index)
    p = writeHead(out, p, 0x00, e.type)
    p = writeHead(out, p, 0x40, e.data.length)
    out.set(e.data, p)
    p += e.data.length
  }
  return p
}

/** A CBOR head: major type `major` (already shifted) with argument `n`, a safe integer. */
function writeHead(out: Uint8Array, p: number, major: number, n: number): number {
  if (n < 24) {
    out[p] = major | n
    return p + 1
  }
  if (n < 0x100) {
    out[p] = major | 24
    out[p + 1] = n
    return p + 2
  }
  if (n < 0x10000) {
    out[p] = major | 25
    out[p + 1] = n >>> 8
    out[p + 2] = n & 0xff
    return p + 3
  }
  if (n < 0x1_0000_0000) {
    out[p] = major | 26
    writeU32(out, p + 1, n)
    return p + 5
  }
  out[p] = major | 27
  writeU32(out, p + 1, Math.floor(n / 0x1_0000_0000))
  writeU32(out, p + 5, n >>> 0)
  return p + 9
}

function writeBigUint(out: Uint8Array, p: number, n: bigint): number {
  if (n <= BigInt(Number.MAX_SAFE_INTEGER)) return writeHead(out, p, 0x00, Number(n))
  out[p] = 27
  writeU32(out, p + 1, Number(n >> 32n))
  writeU32(out, p + 5, Number(n & 0xffffffffn))
  return p + 9
}

function writeU32(out: Uint8Array, p: number, n: number): void {
  out[p] = n >>> 24
  out[p + 1] = (n >>> 16) & 0xff
  out[p + 2] = (n >>> 8) & 0xff
  out[p + 3] = n & 0xff
}

export function segmentWire(metadata: WalMetadata, hs: HardState | undefined): unknown {
  return [metadata.memberId, metadata.clusterId, hs === undefined ? null : hardStateWire(hs)]
}

export function parseBatch(value: unknown): { hardState: HardState | undefined; entries: Entry[] } {
  const [hs, entries] = tuple(value, 2, "batch")
  if (!Array.isArray(entries)) throw new ShapeError("batch entries are not an array")
  return { hardState: hs === null ? undefined : parseHardState(hs), entries: entries.map(parseEntry) }
}

/** Only the hard state of a batch (entries are neither checked nor copied). */
export function parseBatchHardState(value: unknown): HardState | undefined {
  const [hs] = tuple(value, 2, "batch")
  return hs === null ? undefined : parseHardState(hs)
}

export function parseSegmentHeader(value: unknown): { metadata: WalMetadata; hardState: HardState | undefined } {
  const [memberId, clusterId, hs] = tuple(value, 3, "segment header")
  return {
    metadata: { memberId: id(memberId, "member id"), clusterId: id(clusterId, "cluster id") },
    hardState: hs === null ? undefined : parseHardState(hs),
  }
}

export function parseSnapshot(value: unknown): WalSnapshot {
  const [index, term] = tuple(value, 2, "snapshot")
  return { index: count(index, "snapshot index"), term: count(term, "snapshot term") }
}

function parseHardState(value: unknown): HardState {
  const [term, vote, commit] = tuple(value, 3, "hard state")
  return { term: count(term, "term"), vote: id(vote, "vote"), commit: count(commit, "commit") }
}

function parseEntry(value: unknown): Entry {
  const [term, index, type, data] = tuple(value, 4, "entry")
  if (type !== EntryType.Normal && type !== EntryType.ConfChange) throw new ShapeError(`entry type ${String(type)}`)
  if (!(data instanceof Uint8Array)) throw new ShapeError("entry data is not bytes")
  return { term: count(term, "entry term"), index: count(index, "entry index"), type, data: new Uint8Array(data) }
}

function tuple(value: unknown, length: number, what: string): unknown[] {
  if (!Array.isArray(value) || value.length !== length) throw new ShapeError(`${what} is not an array of ${length}`)
  return value
}

function count(value: unknown, what: string): number {
  // CBOR's 8-byte integers decode as bigint.
  if (typeof value === "bigint" && value >= 0n && value <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(value)
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) throw new ShapeError(`${what} ${String(value)}`)
  return value
}

function id(value: unknown, what: string): bigint {
  if (typeof value === "bigint" && value >= 0n && value < 1n << 64n) return value
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) return BigInt(value)
  throw new ShapeError(`${what} ${String(value)}`)
}
