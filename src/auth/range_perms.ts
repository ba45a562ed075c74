// etcd's unified range permission cache: for each user, the union of the key
// intervals its roles may READ and may WRITE. A request range is allowed when
// that union covers it entirely, however the roles split it up.
//
// Keys are compared byte-wise. An interval end of `null` is +infinity (a
// permission or request range_end of "\0"); a single-key permission is the
// interval [key, key + "\0").

import { PermissionType, type Permission } from "./types"

interface Interval {
  begin: Uint8Array
  /** Exclusive; null = no upper bound. */
  end: Uint8Array | null
}

export function isOpenEnded(rangeEnd: Uint8Array): boolean {
  return rangeEnd.length === 1 && rangeEnd[0] === 0
}

/**
 * etcd 3.5+'s check on a granted permission: a non-empty key, and a range end
 * that is empty (one key), "\0" (from key) or greater than the key.
 */
export function isValidPermissionRange(key: Uint8Array, rangeEnd: Uint8Array): boolean {
  if (key.length === 0) return false
  if (rangeEnd.length === 0) return true
  if (Buffer.compare(key, rangeEnd) < 0) return true
  return isOpenEnded(rangeEnd)
}

function permissionInterval(perm: Permission): Interval {
  if (perm.rangeEnd.length === 0) return { begin: perm.key, end: pointEnd(perm.key) }
  return { begin: perm.key, end: isOpenEnded(perm.rangeEnd) ? null : perm.rangeEnd }
}

function pointEnd(key: Uint8Array): Uint8Array {
  const end = new Uint8Array(key.length + 1)
  end.set(key)
  return end
}

/** a < b for interval ends, null being +infinity. */
function endCompare(a: Uint8Array | null, b: Uint8Array | null): number {
  if (a === null) return b === null ? 0 : 1
  if (b === null) return -1
  return Buffer.compare(a, b)
}

/** A sorted list of disjoint, non-touching intervals. */
class IntervalUnion {
  private readonly merged: Interval[]

  constructor(intervals: Interval[]) {
    const sorted = intervals
      .filter((i) => i.end === null || Buffer.compare(i.begin, i.end) < 0)
      .sort((a, b) => Buffer.compare(a.begin, b.begin))
    const merged: Interval[] = []
    for (const ivl of sorted) {
      const last = merged[merged.length - 1]
      // Touching intervals merge too: [a, b) ∪ [b, c) = [a, c).
      if (last !== undefined && endCompare(last.end, ivl.begin) >= 0) {
        if (endCompare(ivl.end, last.end) > 0) last.end = ivl.end
      } else {
        merged.push({ begin: ivl.begin, end: ivl.end })
      }
    }
    this.merged = merged
  }

  /** The merged interval holding `key`, if any. */
  private find(key: Uint8Array): Interval | undefined {
    let lo = 0
    let hi = this.merged.length - 1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      const ivl = this.merged[mid]!
      if (Buffer.compare(ivl.begin, key) > 0) hi = mid - 1
      else if (endCompare(ivl.end, key) <= 0) lo = mid + 1
      else return ivl
    }
    return undefined
  }

  containsPoint(key: Uint8Array): boolean {
    return this.find(key) !== undefined
  }

  /** Whether [begin, end) lies inside the union; end null = +infinity. */
  covers(begin: Uint8Array, end: Uint8Array | null): boolean {
    const ivl = this.find(begin)
    if (ivl === undefined) return false
    return endCompare(ivl.end, end) >= 0
  }
}

export class RangePermissions {
  private readonly read: IntervalUnion
  private readonly write: IntervalUnion

  constructor(perms: readonly Permission[]) {
    const read: Interval[] = []
    const write: Interval[] = []
    for (const perm of perms) {
      const ivl = permissionInterval(perm)
      if (perm.permType === PermissionType.READ || perm.permType === PermissionType.READWRITE) read.push(ivl)
      if (perm.permType === PermissionType.WRITE || perm.permType === PermissionType.READWRITE) write.push(ivl)
    }
    this.read = new IntervalUnion(read)
    this.write = new IntervalUnion(write)
  }

  /**
   * Whether the request range (etcd's range_end rules: empty = the key alone,
   * "\0" = every key from `key` on) is covered for the READ or WRITE type.
   * A range whose end is not above its key selects no key; it is allowed only
   * if its key is, so an inverted range cannot be used to probe.
   */
  permits(type: PermissionType.READ | PermissionType.WRITE, key: Uint8Array, rangeEnd: Uint8Array): boolean {
    const union = type === PermissionType.READ ? this.read : this.write
    if (rangeEnd.length === 0) return union.containsPoint(key)
    if (isOpenEnded(rangeEnd)) return union.covers(key, null)
    if (Buffer.compare(rangeEnd, key) <= 0) return union.containsPoint(key)
    return union.covers(key, rangeEnd)
  }
}
