// Segment file names: `<seq>-<index>.wal`, both 16 hex digits. `seq` counts
// segments from 0; `index` is the raft index of the first entry the segment
// was cut for (the last index saved before it, plus one; 0 for the first).

import { WalError } from "./errors"

export interface SegmentName {
  seq: number
  index: number
  name: string
}

const pattern = /^([0-9a-f]{16})-([0-9a-f]{16})\.wal$/

export function segmentName(seq: number, index: number): string {
  return `${hex16(seq)}-${hex16(index)}.wal`
}

export function parseSegmentName(name: string): SegmentName | undefined {
  const m = pattern.exec(name)
  if (m === null) return undefined
  const seq = Number.parseInt(m[1]!, 16)
  const index = Number.parseInt(m[2]!, 16)
  if (!Number.isSafeInteger(seq) || !Number.isSafeInteger(index)) return undefined
  return { seq, index, name }
}

/**
 * The segments named in `names` (other files ignored), in order. Throws when
 * their sequence numbers are not consecutive: a segment is missing. (Their
 * indexes may go down: raft can replace an uncommitted tail after a cut.)
 */
export function sortSegments(names: readonly string[], dir: string): SegmentName[] {
  const segments = names.map(parseSegmentName).filter((s): s is SegmentName => s !== undefined)
  segments.sort((a, b) => a.seq - b.seq)
  for (let i = 1; i < segments.length; i++) {
    const prev = segments[i - 1]!
    const next = segments[i]!
    if (next.seq !== prev.seq + 1) {
      throw new WalError(`segment missing: ${prev.name} is followed by ${next.name}`, `${dir}/${next.name}`, 0)
    }
  }
  return segments
}

/** Position of the last segment whose index is at or below `index` (where reading from a snapshot at `index` starts); -1 if none. */
export function searchIndex(segments: readonly SegmentName[], index: number): number {
  for (let i = segments.length - 1; i >= 0; i--) if (segments[i]!.index <= index) return i
  return -1
}

function hex16(n: number): string {
  return n.toString(16).padStart(16, "0")
}
