// The bbolt file format (go.etcd.io/bbolt 1.3, as etcd 3.4 and 3.5 write it
// on amd64: little-endian, 4096-byte pages).
//
//   page      id u64 | flags u16 | count u16 | overflow u32 | data...
//             a page of n+1 contiguous pages has overflow n
//   meta      (pages 0 and 1, at data) magic u32 | version u32 | pageSize u32 |
//             flags u32 | root bucket {root u64, sequence u64} | freelist u64 |
//             pgid u64 (high water mark) | txid u64 | checksum u64 (fnv64a of the 56 bytes before)
//   branch    count elements {pos u32, ksize u32, pgid u64}, then the keys
//   leaf      count elements {flags u32, pos u32, ksize u32, vsize u32}, then
//             key and value bytes; pos is counted from the element itself;
//             flags 1: the value is a bucket
//   bucket    value {root u64, sequence u64}; root 0: an inline bucket, whose
//             leaf page follows in the value itself
//   freelist  count pgids u64 (count 0xFFFF: the first u64 is the count)

export const PAGE_HEADER_BYTES = 16
export const ELEMENT_BYTES = 16
export const BUCKET_HEADER_BYTES = 16
export const META_BYTES = 64
export const MAGIC = 0xed0cdaed
export const VERSION = 2
export const DEFAULT_PAGE_BYTES = 4096

export const BRANCH_PAGE = 0x01
export const LEAF_PAGE = 0x02
export const META_PAGE = 0x04
export const FREELIST_PAGE = 0x10
export const BUCKET_LEAF_FLAG = 0x01
/** meta.freelist when the freelist is not written (NoFreelistSync). */
export const NO_FREELIST = 0xffff_ffff_ffff_ffffn

export class BoltError extends Error {
  override readonly name = "BoltError"
}

export interface Meta {
  pageBytes: number
  flags: number
  rootPgid: number
  rootSequence: bigint
  /** -1: no freelist page (NoFreelistSync). */
  freelistPgid: number
  /** Pages in the file (the high water mark). */
  pgid: number
  txid: bigint
}

const FNV_OFFSET = 0xcbf29ce484222325n
const FNV_PRIME = 0x100000001b3n
const MASK64 = 0xffff_ffff_ffff_ffffn

/** fnv-1a, 64 bits (hash/fnv New64a), over meta's 56 bytes before the checksum. */
export function fnv64a(bytes: Uint8Array): bigint {
  let h = FNV_OFFSET
  for (const b of bytes) h = ((h ^ BigInt(b)) * FNV_PRIME) & MASK64
  return h
}

/** Decodes and validates the meta of page bytes `page` (a whole page or more). */
export function decodeMeta(page: Uint8Array, pgid: number): Meta {
  const view = new DataView(page.buffer, page.byteOffset, page.byteLength)
  if (page.byteLength < PAGE_HEADER_BYTES + META_BYTES) throw new BoltError("invalid database")
  if ((view.getUint16(8, true) & META_PAGE) === 0 || Number(view.getBigUint64(0, true)) !== pgid) throw new BoltError(`meta page ${pgid}: invalid page type`)
  const at = PAGE_HEADER_BYTES
  if (view.getUint32(at, true) !== MAGIC) throw new BoltError("invalid database")
  if (view.getUint32(at + 4, true) !== VERSION) throw new BoltError("version mismatch")
  const checksum = view.getBigUint64(at + 56, true)
  if (fnv64a(page.subarray(at, at + 56)) !== checksum) throw new BoltError("checksum error")
  const freelist = view.getBigUint64(at + 32, true)
  return {
    pageBytes: view.getUint32(at + 8, true),
    flags: view.getUint32(at + 12, true),
    rootPgid: Number(view.getBigUint64(at + 16, true)),
    rootSequence: view.getBigUint64(at + 24, true),
    freelistPgid: freelist === NO_FREELIST ? -1 : Number(freelist),
    pgid: Number(view.getBigUint64(at + 40, true)),
    txid: view.getBigUint64(at + 48, true),
  }
}

/** A meta page of `pageBytes` bytes with its checksum. */
export function encodeMetaPage(meta: Meta, pgid: number): Uint8Array {
  const page = new Uint8Array(meta.pageBytes)
  const view = new DataView(page.buffer)
  view.setBigUint64(0, BigInt(pgid), true)
  view.setUint16(8, META_PAGE, true)
  const at = PAGE_HEADER_BYTES
  view.setUint32(at, MAGIC, true)
  view.setUint32(at + 4, VERSION, true)
  view.setUint32(at + 8, meta.pageBytes, true)
  view.setUint32(at + 12, meta.flags, true)
  view.setBigUint64(at + 16, BigInt(meta.rootPgid), true)
  view.setBigUint64(at + 24, meta.rootSequence, true)
  view.setBigUint64(at + 32, meta.freelistPgid < 0 ? NO_FREELIST : BigInt(meta.freelistPgid), true)
  view.setBigUint64(at + 40, BigInt(meta.pgid), true)
  view.setBigUint64(at + 48, meta.txid, true)
  view.setBigUint64(at + 56, fnv64a(page.subarray(at, at + 56)), true)
  return page
}
