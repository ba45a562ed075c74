// Writes a bbolt file in one pass with bounded memory. Buckets are given one
// after another with their keys in order; each bucket's B+tree is built bottom
// up: a leaf page is written as soon as it is full and its first key goes to a
// pending branch page one level up, which is written when full in turn, so at
// any time only one page per level is in memory. Pages get increasing ids in
// file order; the root bucket's pages and the two meta pages come last (the
// metas at offsets 0 and 1 page); no freelist page, as etcd writes none.
//
// Pages are filled as bbolt fills them when keys arrive in order (a node splits
// at fillPercent of a page: 0.5 by default, 0.9 where etcd sets it), so file
// sizes come out close to those of the same data written by etcd.

import { closeSync, fsyncSync, openSync, writeSync } from "node:fs"
import { assert } from "../lib/assert"
import {
  BRANCH_PAGE, BUCKET_HEADER_BYTES, BUCKET_LEAF_FLAG, DEFAULT_PAGE_BYTES, ELEMENT_BYTES, encodeMetaPage,
  LEAF_PAGE, PAGE_HEADER_BYTES,
} from "./format"

export interface BucketOptions {
  /** bbolt's Bucket.FillPercent (default 0.5). */
  fillPercent?: number
}

interface Element {
  key: Uint8Array
  /** Leaf: the value; branch: unused. */
  value: Uint8Array
  /** Leaf: element flags; branch: the child's pgid. */
  flagsOrPgid: number
}

const MIN_KEYS_PER_PAGE = 2
const WRITE_BUFFER_BYTES = 1 << 20

export class BoltWriter {
  readonly pageBytes: number
  private readonly fd: number
  private nextPgid = 2
  private readonly buffer: Uint8Array
  private buffered = 0
  private bufferedFromPgid = 2
  private readonly rootEntries: Element[] = []
  private lastBucketName: Uint8Array | undefined
  private finished = false

  constructor(path: string, options: { pageBytes?: number } = {}) {
    this.pageBytes = options.pageBytes ?? DEFAULT_PAGE_BYTES
    this.fd = openSync(path, "wx", 0o600)
    this.buffer = new Uint8Array(WRITE_BUFFER_BYTES)
  }

  /** Pages written so far (the file's size in pages once finished). */
  pages(): number {
    return this.nextPgid
  }

  /**
   * Writes the top-level bucket `name` with `entries` (keys strictly
   * increasing). Buckets must come in name order.
   */
  bucket(name: Uint8Array | string, entries: Iterable<[Uint8Array, Uint8Array]>, options: BucketOptions = {}): void {
    const tree = this.openBucket(name, options)
    for (const [key, value] of entries) tree.put(key, value)
    tree.close()
  }

  /** Like bucket(), for entries that arrive over time: put() each, then close(). */
  openBucket(name: Uint8Array | string, options: BucketOptions = {}): BucketTree {
    assert(!this.finished, "bucket after finish()")
    const bytes = typeof name === "string" ? Buffer.from(name) : name
    if (this.lastBucketName !== undefined) assert(Buffer.compare(this.lastBucketName, bytes) < 0, "buckets out of order")
    this.lastBucketName = bytes
    return new BucketTree(this, options.fillPercent ?? 0.5, (value) => {
      this.rootEntries.push({ key: bytes, value, flagsOrPgid: BUCKET_LEAF_FLAG })
    })
  }

  /** Writes the root bucket, the freelist and the metas; closes the file. Returns its size in bytes. */
  finish(options: { sync?: boolean } = {}): number {
    assert(!this.finished, "finish() twice")
    this.finished = true
    try {
      const root = new TreeBuilder(this, 0.5)
      for (const e of this.rootEntries) root.add(e)
      const rootPgid = root.finishAsPages()
      this.flush()
      // No freelist page, as etcd (NoFreelistSync): bbolt finds the free pages (none here) when it opens the file.
      const freelistPgid = -1
      const meta = { pageBytes: this.pageBytes, flags: 0, rootPgid, rootSequence: 0n, freelistPgid, pgid: this.nextPgid, txid: 2n }
      // As bbolt's tx.WriteTo: the same meta twice, the second with a lower txid.
      writeFully(this.fd, encodeMetaPage(meta, 0), 0)
      writeFully(this.fd, encodeMetaPage({ ...meta, txid: 1n }, 1), this.pageBytes)
      if (options.sync !== false) fsyncSync(this.fd)
      return this.nextPgid * this.pageBytes
    } finally {
      closeSync(this.fd)
    }
  }

  /** Closes the file without finishing it (on an error). */
  abort(): void {
    if (this.finished) return
    this.finished = true
    closeSync(this.fd)
  }

  /** Appends a page (of one or more page sizes); returns its pgid. */
  writePage(page: Uint8Array): number {
    const pgid = this.nextPgid
    const count = page.byteLength / this.pageBytes
    assert(Number.isInteger(count) && count >= 1, "page of a whole number of page sizes")
    new DataView(page.buffer, page.byteOffset, page.byteLength).setBigUint64(0, BigInt(pgid), true)
    if (this.buffered + page.byteLength > this.buffer.byteLength) this.flush()
    this.nextPgid += count
    if (page.byteLength > this.buffer.byteLength) {
      writeFully(this.fd, page, pgid * this.pageBytes)
      this.bufferedFromPgid = this.nextPgid
      return pgid
    }
    this.buffer.set(page, this.buffered)
    this.buffered += page.byteLength
    return pgid
  }

  private flush(): void {
    if (this.buffered > 0) writeFully(this.fd, this.buffer.subarray(0, this.buffered), this.bufferedFromPgid * this.pageBytes)
    this.buffered = 0
    this.bufferedFromPgid = this.nextPgid
  }
}

/** One bucket being written: put() keys in order, then close(). */
export class BucketTree {
  private readonly tree: TreeBuilder
  private last: Uint8Array | undefined

  constructor(
    writer: BoltWriter,
    fillPercent: number,
    private readonly done: (bucketValue: Uint8Array) => void,
  ) {
    this.tree = new TreeBuilder(writer, fillPercent)
  }

  put(key: Uint8Array, value: Uint8Array): void {
    if (this.last !== undefined) assert(Buffer.compare(this.last, key) < 0, "keys out of order")
    assert(key.byteLength > 0, "empty key")
    this.last = key
    this.tree.add({ key, value, flagsOrPgid: 0 })
  }

  close(): void {
    this.done(this.tree.finishAsBucketValue())
  }
}

/** The levels of one B+tree under construction: level 0 holds leaf elements. */
class TreeBuilder {
  private readonly levels: { pending: Element[]; bytes: number; pagesWritten: number }[] = []
  private readonly threshold: number

  constructor(
    private readonly writer: BoltWriter,
    fillPercent: number,
  ) {
    const fill = Math.min(1, Math.max(0.1, fillPercent))
    this.threshold = Math.floor(writer.pageBytes * fill)
  }

  add(e: Element): void {
    this.addAt(0, e)
  }

  private level(i: number): { pending: Element[]; bytes: number; pagesWritten: number } {
    while (this.levels.length <= i) this.levels.push({ pending: [], bytes: PAGE_HEADER_BYTES, pagesWritten: 0 })
    return this.levels[i]!
  }

  private addAt(i: number, e: Element): void {
    const level = this.level(i)
    const size = ELEMENT_BYTES + e.key.byteLength + (i === 0 ? e.value.byteLength : 0)
    // bbolt's split: a node larger than a page is cut where a piece would pass
    // the threshold, keeping at least two keys per piece.
    if (level.pending.length >= MIN_KEYS_PER_PAGE && level.bytes + size > this.threshold) this.writeLevel(i)
    level.pending.push(e)
    level.bytes += size
  }

  private writeLevel(i: number): void {
    const level = this.level(i)
    const first = level.pending[0]!
    const pgid = this.writer.writePage(encodePage(i === 0 ? LEAF_PAGE : BRANCH_PAGE, level.pending, this.writer.pageBytes))
    level.pending = []
    level.bytes = PAGE_HEADER_BYTES
    level.pagesWritten++
    this.addAt(i + 1, { key: first.key, value: first.value, flagsOrPgid: pgid })
  }

  /** Ends the tree; returns the root's pgid. */
  finishAsPages(): number {
    for (let i = 0; ; i++) {
      const level = this.level(i)
      if (level.pagesWritten === 0) {
        // Everything of this level is pending: that node is the root.
        return this.writer.writePage(encodePage(i === 0 ? LEAF_PAGE : BRANCH_PAGE, level.pending, this.writer.pageBytes))
      }
      if (level.pending.length > 0) this.writeLevel(i)
    }
  }

  /** Ends the tree of a bucket: an inline bucket when bbolt would inline it, else {root, 0}. */
  finishAsBucketValue(): Uint8Array {
    const leaf = this.level(0)
    if (this.levels.length === 1 && leaf.pagesWritten === 0 && leaf.bytes <= this.writer.pageBytes / 4 && leaf.pending.every((e) => e.flagsOrPgid === 0)) {
      const page = encodePage(LEAF_PAGE, leaf.pending, leaf.bytes)
      const value = new Uint8Array(BUCKET_HEADER_BYTES + page.byteLength)
      value.set(page, BUCKET_HEADER_BYTES)
      return value
    }
    const root = this.finishAsPages()
    const value = new Uint8Array(BUCKET_HEADER_BYTES)
    new DataView(value.buffer).setBigUint64(0, BigInt(root), true)
    return value
  }
}

/**
 * A leaf or branch page of `elements`; `pageBytes` rounds its size
 * up (an inline page passes its exact size). Elements first, then their keys
 * (and values), as bbolt's node.write lays them out.
 */
function encodePage(flags: number, elements: readonly Element[], pageBytes: number): Uint8Array {
  const isLeaf = flags === LEAF_PAGE
  let size = PAGE_HEADER_BYTES + elements.length * ELEMENT_BYTES
  for (const e of elements) size += e.key.byteLength + (isLeaf ? e.value.byteLength : 0)
  const page = new Uint8Array(Math.ceil(size / pageBytes) * pageBytes)
  const view = new DataView(page.buffer)
  view.setUint16(8, flags, true)
  assert(elements.length < 0xffff, "too many elements in one page")
  view.setUint16(10, elements.length, true)
  view.setUint32(12, page.byteLength / pageBytes - 1, true)
  let data = PAGE_HEADER_BYTES + elements.length * ELEMENT_BYTES
  elements.forEach((e, i) => {
    const at = PAGE_HEADER_BYTES + i * ELEMENT_BYTES
    if (isLeaf) {
      view.setUint32(at, e.flagsOrPgid, true)
      view.setUint32(at + 4, data - at, true)
      view.setUint32(at + 8, e.key.byteLength, true)
      view.setUint32(at + 12, e.value.byteLength, true)
      page.set(e.key, data)
      page.set(e.value, data + e.key.byteLength)
      data += e.key.byteLength + e.value.byteLength
    } else {
      view.setUint32(at, data - at, true)
      view.setUint32(at + 4, e.key.byteLength, true)
      view.setBigUint64(at + 8, BigInt(e.flagsOrPgid), true)
      page.set(e.key, data)
      data += e.key.byteLength
    }
  })
  return page
}

function writeFully(fd: number, bytes: Uint8Array, position: number): void {
  for (let off = 0; off < bytes.byteLength; ) off += writeSync(fd, bytes, off, bytes.byteLength - off, position + off)
}
