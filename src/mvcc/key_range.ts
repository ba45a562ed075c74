// etcd's key range rules (§1.2): range_end empty = exactly key; "\0" = every
// key >= key; otherwise [key, range_end) byte-wise. Normalized once, so SQL and
// in-memory matching agree.

import { compareBytes, isZeroByte } from "../lib/bytes"

export type KeyRange =
  | { readonly kind: "one"; readonly key: Uint8Array }
  | { readonly kind: "from"; readonly key: Uint8Array }
  | { readonly kind: "between"; readonly key: Uint8Array; readonly end: Uint8Array }
  | { readonly kind: "empty" }

export function keyRange(key: Uint8Array, rangeEnd: Uint8Array | undefined): KeyRange {
  if (rangeEnd === undefined || rangeEnd.length === 0) return { kind: "one", key }
  if (isZeroByte(rangeEnd)) return { kind: "from", key }
  if (compareBytes(key, rangeEnd) >= 0) return { kind: "empty" }
  return { kind: "between", key, end: rangeEnd }
}

export function inRange(range: KeyRange, key: Uint8Array): boolean {
  switch (range.kind) {
    case "one":
      return compareBytes(key, range.key) === 0
    case "from":
      return compareBytes(key, range.key) >= 0
    case "between":
      return compareBytes(key, range.key) >= 0 && compareBytes(key, range.end) < 0
    case "empty":
      return false
  }
}

/** SQL condition on column `column` and its parameters. */
export function rangeSql(range: KeyRange, column: string): { where: string; params: Uint8Array[] } {
  switch (range.kind) {
    case "one":
      return { where: `${column} = ?`, params: [range.key] }
    case "from":
      return { where: `${column} >= ?`, params: [range.key] }
    case "between":
      return { where: `${column} >= ? AND ${column} < ?`, params: [range.key, range.end] }
    case "empty":
      return { where: "0", params: [] }
  }
}
