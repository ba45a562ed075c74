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

export function segmentWire(metadata: WalMetadata, hs: HardState | undefined): unknown {
  return [metadata.memberId, metadata.clusterId, hs === undefined ? null : hardStateWire(hs)]
}

export function parseBatch(value: unknown): { hardState: HardState | undefined; entries: Entry[] } {
  const [hs, entries] = tuple(value, 2, "batch")
  if (!Array.isArray(entries)) throw new ShapeError("batch entries are not an array")
  return { hardState: hs === null ? undefined : parseHardState(hs), entries: entries.map(parseEntry) }
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
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) throw new ShapeError(`${what} ${String(value)}`)
  return value
}

function id(value: unknown, what: string): bigint {
  if (typeof value === "bigint" && value >= 0n && value < 1n << 64n) return value
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) return BigInt(value)
  throw new ShapeError(`${what} ${String(value)}`)
}
