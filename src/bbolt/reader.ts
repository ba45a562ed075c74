// Reads a bbolt file page by page through a private read-only mapping of it
// (pread when it cannot be mapped): pages are views, not copies, and a 1M-key
// db is not 90k read syscalls per pass. Buckets and their entries come out in
// key order from a depth-first walk of the B+tree.
// Every page is checked against the meta before use (in bounds, its own id,
// the type expected), so a damaged or truncated file gives a BoltError, not
// garbage.

import { closeSync, fstatSync, openSync, readSync } from "node:fs"
import {
  BoltError, BRANCH_PAGE, BUCKET_HEADER_BYTES, BUCKET_LEAF_FLAG, decodeMeta, ELEMENT_BYTES, FREELIST_PAGE, LEAF_PAGE,
  type Meta, PAGE_HEADER_BYTES,
} from "./format"

export interface BoltEntry {
  key: Uint8Array
  value: Uint8Array
  isBucket: boolean
}

/** Where a bucket's tree is: a root page, or the leaf page inline in its value. */
export type BucketRef = { root: number; inline: Uint8Array | undefined }

export interface BoltReaderOptions {
  /** Bytes of the file that belong to the db (a snapshot's sha256 trailer excluded). Default: the file size. */
  bytes?: number
}

export class BoltReader {
  readonly meta: Meta
  readonly bytes: number
  private readonly fd: number
  private readonly map: Uint8Array | undefined

  private constructor(fd: number, bytes: number, map: Uint8Array | undefined) {
    this.fd = fd
    this.bytes = bytes
    this.map = map !== undefined && map.byteLength >= bytes ? map : undefined
    this.meta = this.pickMeta()
    if (this.meta.pgid * this.meta.pageBytes > bytes) {
      throw new BoltError(`file size too small: ${bytes} bytes, the meta says ${this.meta.pgid} pages of ${this.meta.pageBytes}`)
    }
  }

  static open(path: string, options: BoltReaderOptions = {}): BoltReader {
    const fd = openSync(path, "r")
    try {
      const size = fstatSync(fd).size
      let map: Uint8Array | undefined
      try {
        map = size > 0 ? Bun.mmap(path, { shared: false }) : undefined
      } catch {
        map = undefined
      }
      return new BoltReader(fd, options.bytes ?? size, map)
    } catch (e) {
      closeSync(fd)
      throw e
    }
  }

  close(): void {
    closeSync(this.fd)
  }

  /** Bytes in use by the db: pages up to the high water mark (bbolt's tx.Size()). */
  sizeBytes(): number {
    return this.meta.pgid * this.meta.pageBytes
  }

  /** The valid meta with the higher txid (bbolt's choice). */
  private pickMeta(): Meta {
    if (this.bytes < 1024) throw new BoltError("invalid database")
    const first = this.read(0, 4096)
    let meta0: Meta | undefined
    let error: unknown
    try {
      meta0 = decodeMeta(first, 0)
    } catch (e) {
      error = e
    }
    // The page size comes from meta 0, or from the default when meta 0 is damaged (bbolt does the same).
    const pageBytes = meta0?.pageBytes ?? 4096
    if (pageBytes < 1024 || pageBytes > 65536 || (pageBytes & (pageBytes - 1)) !== 0) throw new BoltError("invalid database")
    let meta1: Meta | undefined
    try {
      meta1 = decodeMeta(this.read(pageBytes, pageBytes), 1)
    } catch (e) {
      error ??= e
    }
    if (meta0 !== undefined && meta1 !== undefined) return meta1.txid > meta0.txid ? meta1 : meta0
    const meta = meta0 ?? meta1
    if (meta === undefined) throw error instanceof BoltError ? error : new BoltError("invalid database")
    return meta
  }

  private read(offset: number, length: number): Uint8Array {
    if (offset + length > this.bytes) throw new BoltError(`unexpected end of file: ${length} bytes at ${offset} of ${this.bytes}`)
    if (this.map !== undefined) return this.map.subarray(offset, offset + length)
    const buf = new Uint8Array(length)
    for (let done = 0; done < length; ) {
      const n = readSync(this.fd, buf, done, length - done, offset + done)
      if (n === 0) throw new BoltError(`unexpected end of file at ${offset + done}`)
      done += n
    }
    return buf
  }

  /** Page `pgid` with its overflow pages, checked. */
  page(pgid: number): Uint8Array {
    const size = this.meta.pageBytes
    if (!Number.isSafeInteger(pgid) || pgid < 2 || pgid >= this.meta.pgid) throw new BoltError(`page ${pgid}: out of bounds: ${this.meta.pgid}`)
    const head = this.read(pgid * size, size)
    const view = new DataView(head.buffer, head.byteOffset, size)
    const id = Number(view.getBigUint64(0, true))
    if (id !== pgid) throw new BoltError(`page ${pgid}: has id ${id}`)
    const overflow = view.getUint32(12, true)
    if (overflow === 0) return head
    if (pgid + overflow >= this.meta.pgid) throw new BoltError(`page ${pgid}: overflow ${overflow} past the high water mark ${this.meta.pgid}`)
    if (this.map !== undefined) return this.read(pgid * size, (overflow + 1) * size)
    const whole = new Uint8Array((overflow + 1) * size)
    whole.set(head)
    whole.set(this.read((pgid + 1) * size, overflow * size), size)
    return whole
  }

  /** The root bucket (its entries are the top-level buckets). */
  root(): BucketRef {
    return { root: this.meta.rootPgid, inline: undefined }
  }

  /** The top-level buckets in name order. */
  *buckets(): Generator<{ name: Uint8Array; bucket: BucketRef }> {
    for (const e of this.entries(this.root())) {
      if (!e.isBucket) throw new BoltError(`the root bucket holds a key that is not a bucket: ${JSON.stringify(Buffer.from(e.key).toString("latin1"))}`)
      yield { name: e.key, bucket: bucketRef(e.value) }
    }
  }

  /** A top-level bucket by name. */
  bucket(name: string): BucketRef | undefined {
    const wanted = Buffer.from(name)
    for (const b of this.buckets()) if (wanted.equals(b.name)) return b.bucket
    return undefined
  }

  /** Every entry of the bucket, in key order. */
  *entries(bucket: BucketRef): Generator<BoltEntry> {
    if (bucket.inline !== undefined) {
      yield* leafEntries(bucket.inline, 0)
      return
    }
    yield* this.walk(bucket.root, 0)
  }

  private *walk(pgid: number, depth: number): Generator<BoltEntry> {
    if (depth > 64) throw new BoltError(`page ${pgid}: tree deeper than 64 levels (a cycle?)`)
    const page = this.page(pgid)
    const view = new DataView(page.buffer, page.byteOffset, page.byteLength)
    const flags = view.getUint16(8, true)
    const count = view.getUint16(10, true)
    if (flags & LEAF_PAGE) {
      yield* leafEntries(page, pgid)
      return
    }
    if ((flags & BRANCH_PAGE) === 0) throw new BoltError(`page ${pgid}: invalid type: ${flags}`)
    if (PAGE_HEADER_BYTES + count * ELEMENT_BYTES > page.byteLength) throw new BoltError(`page ${pgid}: ${count} elements overrun the page`)
    const children: number[] = []
    for (let i = 0; i < count; i++) children.push(Number(view.getBigUint64(PAGE_HEADER_BYTES + i * ELEMENT_BYTES + 8, true)))
    for (const child of children) yield* this.walk(child, depth + 1)
  }

  /**
   * bbolt's tx.Check(): every page below the high water mark is reachable
   * exactly once or free. Returns the problems found (none: an intact file).
   */
  check(): string[] {
    const problems: string[] = []
    const reachable = new Uint8Array(this.meta.pgid)
    const freed = new Uint8Array(this.meta.pgid)
    reachable[0] = reachable[1] = 1
    try {
      if (this.meta.freelistPgid >= 0) {
        const page = this.page(this.meta.freelistPgid)
        const overflow = new DataView(page.buffer, page.byteOffset, page.byteLength).getUint32(12, true)
        for (let i = 0; i <= overflow; i++) reachable[this.meta.freelistPgid + i] = 1
        for (const id of freelistIds(page, this.meta.freelistPgid)) {
          if (id >= this.meta.pgid) problems.push(`page ${id}: freed page out of bounds`)
          else if (freed[id]) problems.push(`page ${id}: already freed`)
          else freed[id] = 1
        }
      }
      this.checkBucket(this.root(), reachable, freed, problems)
    } catch (e) {
      problems.push(e instanceof Error ? e.message : String(e))
      return problems
    }
    // Without a freelist page (etcd's NoFreelistSync) bbolt takes every unreachable page for free.
    if (this.meta.freelistPgid < 0) return problems
    for (let i = 0; i < this.meta.pgid; i++) if (!reachable[i] && !freed[i]) problems.push(`page ${i}: unreachable unfreed`)
    return problems
  }

  private checkBucket(bucket: BucketRef, reachable: Uint8Array, freed: Uint8Array, problems: string[]): void {
    if (bucket.inline !== undefined) {
      for (const e of leafEntries(bucket.inline, 0)) if (e.isBucket) this.checkBucket(bucketRef(e.value), reachable, freed, problems)
      return
    }
    const visit = (pgid: number, depth: number): void => {
      if (depth > 64) throw new BoltError(`page ${pgid}: tree deeper than 64 levels (a cycle?)`)
      const page = this.page(pgid)
      const view = new DataView(page.buffer, page.byteOffset, page.byteLength)
      const overflow = view.getUint32(12, true)
      for (let i = 0; i <= overflow; i++) {
        if (reachable[pgid + i]) problems.push(`page ${pgid + i}: multiple references`)
        reachable[pgid + i] = 1
      }
      if (freed[pgid]) problems.push(`page ${pgid}: reachable freed`)
      const flags = view.getUint16(8, true)
      if (flags & LEAF_PAGE) {
        for (const e of leafEntries(page, pgid)) if (e.isBucket) this.checkBucket(bucketRef(e.value), reachable, freed, problems)
        return
      }
      if ((flags & BRANCH_PAGE) === 0) throw new BoltError(`page ${pgid}: invalid type: ${flags}`)
      const count = view.getUint16(10, true)
      for (let i = 0; i < count; i++) visit(Number(view.getBigUint64(PAGE_HEADER_BYTES + i * ELEMENT_BYTES + 8, true)), depth + 1)
    }
    visit(bucket.root, 0)
  }
}

/** A bucket's value: {root, sequence}, and for root 0 the inline leaf page. */
export function bucketRef(value: Uint8Array): BucketRef {
  if (value.byteLength < BUCKET_HEADER_BYTES) throw new BoltError(`bucket value of ${value.byteLength} bytes`)
  const root = Number(new DataView(value.buffer, value.byteOffset, 8).getBigUint64(0, true))
  if (root !== 0) return { root, inline: undefined }
  const inline = value.subarray(BUCKET_HEADER_BYTES)
  if (inline.byteLength < PAGE_HEADER_BYTES) throw new BoltError("inline bucket shorter than a page header")
  return { root: 0, inline }
}

function* leafEntries(page: Uint8Array, pgid: number): Generator<BoltEntry> {
  const view = new DataView(page.buffer, page.byteOffset, page.byteLength)
  const flags = view.getUint16(8, true)
  if ((flags & LEAF_PAGE) === 0) throw new BoltError(`page ${pgid}: invalid type: ${flags}, want a leaf`)
  const count = view.getUint16(10, true)
  for (let i = 0; i < count; i++) {
    const at = PAGE_HEADER_BYTES + i * ELEMENT_BYTES
    if (at + ELEMENT_BYTES > page.byteLength) throw new BoltError(`page ${pgid}: ${count} elements overrun the page`)
    const elementFlags = view.getUint32(at, true)
    const pos = view.getUint32(at + 4, true)
    const ksize = view.getUint32(at + 8, true)
    const vsize = view.getUint32(at + 12, true)
    const start = at + pos
    if (start + ksize + vsize > page.byteLength) throw new BoltError(`page ${pgid}: element ${i} overruns the page`)
    yield {
      key: page.subarray(start, start + ksize),
      value: page.subarray(start + ksize, start + ksize + vsize),
      isBucket: (elementFlags & BUCKET_LEAF_FLAG) !== 0,
    }
  }
}

function freelistIds(page: Uint8Array, pgid: number): number[] {
  const view = new DataView(page.buffer, page.byteOffset, page.byteLength)
  if ((view.getUint16(8, true) & FREELIST_PAGE) === 0) throw new BoltError(`page ${pgid}: invalid freelist page type`)
  let count = view.getUint16(10, true)
  let at = PAGE_HEADER_BYTES
  if (count === 0xffff) {
    count = Number(view.getBigUint64(at, true))
    at += 8
  }
  if (at + count * 8 > page.byteLength) throw new BoltError(`page ${pgid}: freelist of ${count} overruns the page`)
  const ids: number[] = []
  for (let i = 0; i < count; i++) ids.push(Number(view.getBigUint64(at + i * 8, true)))
  return ids
}
