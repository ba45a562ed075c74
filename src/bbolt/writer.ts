// Writes a bbolt db in one pass with bounded memory. Buckets are given one
// after another with their keys in order; each bucket's B+tree is built bottom
// up: a leaf page is written as soon as it is full and its first key goes to a
// pending branch page one level up, which is written when full in turn, so at
// any time only one page per level is in memory. Pages get increasing ids in
// output order from page 2 on; the root bucket's pages come last; no freelist
// page, as etcd writes none.
//
// Where the pages go (a PageSink):
//   - a file (new BoltWriter(path)): the two meta pages are written last, at
//     offsets 0 and 1 page, once the tree is known;
//   - a stream (new BoltWriter(sink)): the metas come first in a stream but
//     depend on the whole tree (its root, its page count), so the db is first
//     laid out by a planning writer (new BoltWriter(null)) fed the sizes of the
//     same elements and no bytes; metaPages(plan.meta) then the pages follow,
//     and the caller checks that the writer's meta came out as the plan's.
//
// Pages are filled as bbolt fills them when keys arrive in order (a node splits
// at fillPercent of a page: 0.5 by default, 0.9 where etcd sets it), so file
// sizes come out close to those of the same data written by etcd. A leaf's
// keys and values are written straight into one scratch buffer (reserve()),
// with no object per element: a 1M-key bucket is a million reserve() calls.

import { closeSync, fsyncSync, openSync, writeSync } from "node:fs"
import { assert } from "../lib/assert"
import {
  BRANCH_PAGE, BUCKET_HEADER_BYTES, BUCKET_LEAF_FLAG, DEFAULT_PAGE_BYTES, ELEMENT_BYTES, encodeMetaPage,
  LEAF_PAGE, type Meta, PAGE_HEADER_BYTES,
} from "./format"

export interface BucketOptions {
  /** bbolt's Bucket.FillPercent (default 0.5). */
  fillPercent?: number
}

/** Where a writer's pages go, in pgid order from page 2 on. */
export interface PageSink {
  /** A zeroed region for the next `bytes` bytes (whole pages), filled by the caller before the next call. */
  region(bytes: number): Uint8Array
  /** Everything asked for so far is filled. */
  end(): void
}

const MIN_KEYS_PER_PAGE = 2
const FILE_BUFFER_BYTES = 1 << 20

/**
 * Bytes handed out in chunks of `chunkBytes` (the last one shorter): a region
 * lies inside one chunk when it fits, else it is copied across chunks once the
 * next region is asked for. reuse: the same buffer for every chunk (emit()
 * must be done with it when it returns); else a new one each time (emit() may
 * keep it, or hand it over to another thread).
 */
export class ChunkedSink implements PageSink {
  private chunk: Uint8Array
  private used = 0
  private straddling: Uint8Array | undefined

  constructor(
    private readonly chunkBytes: number,
    private readonly emit: (chunk: Uint8Array) => void,
    private readonly reuse: boolean,
  ) {
    this.chunk = new Uint8Array(chunkBytes)
  }

  region(bytes: number): Uint8Array {
    this.settle()
    if (this.used + bytes > this.chunk.byteLength) return (this.straddling = new Uint8Array(bytes))
    const region = this.chunk.subarray(this.used, this.used + bytes)
    if (this.reuse) region.fill(0)
    this.used += bytes
    return region
  }

  end(): void {
    this.settle()
    if (this.used > 0) this.emit(this.chunk.subarray(0, this.used))
    this.used = 0
  }

  /** Emits a full chunk and copies a straddling region out (both once the caller is done with them). */
  private settle(): void {
    const big = this.straddling
    this.straddling = undefined
    for (let off = 0; ; ) {
      if (this.used === this.chunk.byteLength) {
        this.emit(this.chunk)
        if (!this.reuse) this.chunk = new Uint8Array(this.chunkBytes)
        this.used = 0
      }
      if (big === undefined || off === big.byteLength) return
      const n = Math.min(big.byteLength - off, this.chunk.byteLength - this.used)
      this.chunk.set(big.subarray(off, off + n), this.used)
      this.used += n
      off += n
    }
  }
}

/** The two meta pages of a db, as bbolt's tx.WriteTo writes them: the same meta twice, the second with a lower txid. */
export function metaPages(meta: Meta): Uint8Array {
  const pages = new Uint8Array(2 * meta.pageBytes)
  pages.set(encodeMetaPage(meta, 0), 0)
  pages.set(encodeMetaPage({ ...meta, txid: meta.txid - 1n }, 1), meta.pageBytes)
  return pages
}

export class BoltWriter {
  readonly pageBytes: number
  /** No sink: a plan, which counts pages and writes no bytes. */
  readonly planning: boolean
  /** The db's meta, once finished. */
  meta: Meta | undefined
  private readonly sink: PageSink | undefined
  private readonly fd: number = -1
  private nextPgid = 2
  /** The top-level buckets' names and values, for the root bucket written last. */
  private readonly rootEntries: [Uint8Array, Uint8Array][] = []
  private lastBucketName: Uint8Array | undefined
  private finished = false

  /** target: a file to create (must not exist), a sink for the data pages, or null for a plan. */
  constructor(target: string | PageSink | null, options: { pageBytes?: number } = {}) {
    this.pageBytes = options.pageBytes ?? DEFAULT_PAGE_BYTES
    this.planning = target === null
    if (typeof target === "string") {
      const fd = openSync(target, "wx", 0o600)
      this.fd = fd
      let position = 2 * this.pageBytes
      this.sink = new ChunkedSink(FILE_BUFFER_BYTES, (chunk) => {
        writeFully(fd, chunk, position)
        position += chunk.byteLength
      }, true)
    } else {
      this.sink = target ?? undefined
    }
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

  /** Like bucket(), for entries that arrive over time: put() (or reserve()) each, then close(). */
  openBucket(name: Uint8Array | string, options: BucketOptions = {}): BucketTree {
    assert(!this.finished, "bucket after finish()")
    const bytes = typeof name === "string" ? Buffer.from(name) : name
    if (this.lastBucketName !== undefined) assert(Buffer.compare(this.lastBucketName, bytes) < 0, "buckets out of order")
    this.lastBucketName = bytes
    return new BucketTree(new TreeBuilder(this, options.fillPercent ?? 0.5), (value) => {
      this.rootEntries.push([bytes, value])
    })
  }

  /**
   * Writes the root bucket; a file also gets its metas (and an fsync unless
   * sync is false) and is closed. Sets meta; returns the db's size in bytes.
   */
  finish(options: { sync?: boolean } = {}): number {
    assert(!this.finished, "finish() twice")
    this.finished = true
    try {
      const root = new TreeBuilder(this, 0.5)
      for (const [name, value] of this.rootEntries) root.put(name, value, BUCKET_LEAF_FLAG)
      const rootPgid = root.finishAsPages()
      this.sink?.end()
      // No freelist page, as etcd (NoFreelistSync): bbolt finds the free pages (none here) when it opens the file.
      this.meta = { pageBytes: this.pageBytes, flags: 0, rootPgid, rootSequence: 0n, freelistPgid: -1, pgid: this.nextPgid, txid: 2n }
      if (this.fd >= 0) {
        writeFully(this.fd, metaPages(this.meta), 0)
        if (options.sync !== false) fsyncSync(this.fd)
      }
      return this.nextPgid * this.pageBytes
    } finally {
      if (this.fd >= 0) closeSync(this.fd)
    }
  }

  /** Closes the file without finishing it (on an error). */
  abort(): void {
    if (this.finished) return
    this.finished = true
    if (this.fd >= 0) closeSync(this.fd)
  }

  /** The next `count` pages: their first pgid and their zeroed bytes (undefined when planning). */
  allocate(count: number): { pgid: number; page: Uint8Array | undefined } {
    const pgid = this.nextPgid
    this.nextPgid += count
    const page = this.sink?.region(count * this.pageBytes)
    if (page !== undefined) new DataView(page.buffer, page.byteOffset, PAGE_HEADER_BYTES).setBigUint64(0, BigInt(pgid), true)
    return { pgid, page }
  }
}

/** One bucket being written: put() (or reserve()) keys in order, then close(). */
export class BucketTree {
  constructor(
    private readonly tree: TreeBuilder,
    private readonly done: (bucketValue: Uint8Array) => void,
  ) {}

  put(key: Uint8Array, value: Uint8Array): void {
    this.tree.put(key, value, 0)
  }

  /**
   * Room for the next element's key and value (keyBytes then valueBytes) in
   * scratch(), at the offset returned; the caller writes them there before
   * the next call (not when planning: then only the sizes count).
   */
  reserve(keyBytes: number, valueBytes: number): number {
    return this.tree.reserve(keyBytes, valueBytes, 0)
  }

  /** The buffer reserve()'s offsets are in (valid until the next reserve()). */
  scratch(): Uint8Array {
    return this.tree.scratch
  }

  close(): void {
    this.done(this.tree.finishAsBucketValue())
  }
}

/** A branch element: the first key of a child page (only its size when planning) and the child's pgid. */
interface BranchElement {
  key: Uint8Array | undefined
  keyBytes: number
  pgid: number
}

interface BranchLevel {
  pending: BranchElement[]
  bytes: number
  pagesWritten: number
}

/**
 * One B+tree under construction. The leaf level lives in flat buffers: its
 * elements' sizes and flags in typed arrays, their keys and values back to
 * back in scratch. Branch levels (one element per page below) hold objects.
 */
class TreeBuilder {
  scratch = new Uint8Array(64 * 1024)
  private readonly threshold: number
  private count = 0
  private dataBytes = 0
  /** Page header, elements and data of the pending leaf. */
  private leafBytes = PAGE_HEADER_BYTES
  private keyBytes = new Uint32Array(256)
  private valueBytes = new Uint32Array(256)
  private flags = new Uint32Array(256)
  private anyBucket = false
  private leafPagesWritten = 0
  /** The last key of the previous leaf page (keys must increase across pages too). */
  private lastKey: Uint8Array | undefined
  private readonly branches: BranchLevel[] = []

  constructor(
    private readonly writer: BoltWriter,
    fillPercent: number,
  ) {
    const fill = Math.min(1, Math.max(0.1, fillPercent))
    this.threshold = Math.floor(writer.pageBytes * fill)
  }

  put(key: Uint8Array, value: Uint8Array, flags: number): void {
    const at = this.reserve(key.byteLength, value.byteLength, flags)
    if (this.writer.planning) return
    this.scratch.set(key, at)
    this.scratch.set(value, at + key.byteLength)
  }

  reserve(keyBytes: number, valueBytes: number, flags: number): number {
    assert(keyBytes > 0, "empty key")
    const size = ELEMENT_BYTES + keyBytes + valueBytes
    // bbolt's split: a node larger than a page is cut where a piece would pass
    // the threshold, keeping at least two keys per piece.
    if (this.count >= MIN_KEYS_PER_PAGE && this.leafBytes + size > this.threshold) this.writeLeaf(false)
    const i = this.count
    if (i === this.keyBytes.length) this.growElements()
    const at = this.dataBytes
    if (!this.writer.planning && at + keyBytes + valueBytes > this.scratch.byteLength) this.growScratch(at + keyBytes + valueBytes)
    this.keyBytes[i] = keyBytes
    this.valueBytes[i] = valueBytes
    this.flags[i] = flags
    if (flags !== 0) this.anyBucket = true
    this.count = i + 1
    this.dataBytes = at + keyBytes + valueBytes
    this.leafBytes += size
    return at
  }

  /** Ends the tree; returns the root's pgid. */
  finishAsPages(): number {
    if (this.leafPagesWritten === 0) return this.writeLeaf(true)
    if (this.count > 0) this.writeLeaf(false)
    for (let i = 0; ; i++) {
      const level = this.branches[i]!
      if (level.pagesWritten === 0) return this.writeBranch(i, true) // everything of this level is pending: the root
      if (level.pending.length > 0) this.writeBranch(i, false)
    }
  }

  /** Ends the tree of a bucket: an inline bucket when bbolt would inline it, else {root, 0}. */
  finishAsBucketValue(): Uint8Array {
    if (this.leafPagesWritten === 0 && this.leafBytes <= this.writer.pageBytes / 4 && !this.anyBucket) {
      // The leaf page, of its exact size, inside the value (its id stays 0).
      const value = new Uint8Array(BUCKET_HEADER_BYTES + this.leafBytes)
      if (!this.writer.planning) this.encodeLeaf(value.subarray(BUCKET_HEADER_BYTES), 0)
      return value
    }
    const root = this.finishAsPages()
    const value = new Uint8Array(BUCKET_HEADER_BYTES)
    new DataView(value.buffer).setBigUint64(0, BigInt(root), true)
    return value
  }

  /** Writes the pending leaf as a page (even an empty one: an empty tree's root); returns its pgid. */
  private writeLeaf(root: boolean): number {
    const { pgid, page } = this.writer.allocate(Math.ceil(this.leafBytes / this.writer.pageBytes))
    let first: Uint8Array | undefined
    if (page !== undefined) {
      this.encodeLeaf(page, page.byteLength / this.writer.pageBytes - 1)
      this.checkOrder()
      first = this.scratch.slice(0, this.keyBytes[0])
    }
    this.leafPagesWritten++
    if (!root) this.addBranch(0, { key: first, keyBytes: this.keyBytes[0]!, pgid })
    this.count = 0
    this.dataBytes = 0
    this.leafBytes = PAGE_HEADER_BYTES
    return pgid
  }

  /** Elements first, then their keys and values, as bbolt's node.write lays them out. */
  private encodeLeaf(page: Uint8Array, overflow: number): void {
    const count = this.count
    assert(count < 0xffff, "too many elements in one page")
    const view = new DataView(page.buffer, page.byteOffset, page.byteLength)
    view.setUint16(8, LEAF_PAGE, true)
    view.setUint16(10, count, true)
    view.setUint32(12, overflow, true)
    const dataStart = PAGE_HEADER_BYTES + count * ELEMENT_BYTES
    let data = dataStart
    for (let i = 0, at = PAGE_HEADER_BYTES; i < count; i++, at += ELEMENT_BYTES) {
      const k = this.keyBytes[i]!
      const v = this.valueBytes[i]!
      view.setUint32(at, this.flags[i]!, true)
      view.setUint32(at + 4, data - at, true)
      view.setUint32(at + 8, k, true)
      view.setUint32(at + 12, v, true)
      data += k + v
    }
    page.set(this.scratch.subarray(0, this.dataBytes), dataStart)
  }

  /** Keys strictly increase within the pending leaf and from the previous leaf page's last key. */
  private checkOrder(): void {
    let previous = this.lastKey
    let at = 0
    for (let i = 0; i < this.count; i++) {
      const key = this.scratch.subarray(at, at + this.keyBytes[i]!)
      if (previous !== undefined) assert(compareBytes(previous, key) < 0, "keys out of order")
      previous = key
      at += this.keyBytes[i]! + this.valueBytes[i]!
    }
    if (previous !== undefined) this.lastKey = previous.slice()
  }

  private addBranch(i: number, e: BranchElement): void {
    while (this.branches.length <= i) this.branches.push({ pending: [], bytes: PAGE_HEADER_BYTES, pagesWritten: 0 })
    const level = this.branches[i]!
    const size = ELEMENT_BYTES + e.keyBytes
    if (level.pending.length >= MIN_KEYS_PER_PAGE && level.bytes + size > this.threshold) this.writeBranch(i, false)
    level.pending.push(e)
    level.bytes += size
  }

  /** Writes branch level i's pending elements as a page, which goes up a level unless it is the root; returns its pgid. */
  private writeBranch(i: number, root: boolean): number {
    const level = this.branches[i]!
    const elements = level.pending
    const { pgid, page } = this.writer.allocate(Math.ceil(level.bytes / this.writer.pageBytes))
    if (page !== undefined) encodeBranch(page, elements, page.byteLength / this.writer.pageBytes - 1)
    level.pending = []
    level.bytes = PAGE_HEADER_BYTES
    level.pagesWritten++
    if (!root) this.addBranch(i + 1, { key: elements[0]!.key, keyBytes: elements[0]!.keyBytes, pgid })
    return pgid
  }

  private growElements(): void {
    const grow = (a: Uint32Array<ArrayBuffer>): Uint32Array<ArrayBuffer> => {
      const b = new Uint32Array(a.length * 2)
      b.set(a)
      return b
    }
    this.keyBytes = grow(this.keyBytes)
    this.valueBytes = grow(this.valueBytes)
    this.flags = grow(this.flags)
  }

  private growScratch(bytes: number): void {
    const bigger = new Uint8Array(Math.max(bytes, this.scratch.byteLength * 2))
    bigger.set(this.scratch.subarray(0, this.dataBytes))
    this.scratch = bigger
  }
}

/** A branch page: elements {pos, ksize, pgid}, then the keys. */
function encodeBranch(page: Uint8Array, elements: readonly BranchElement[], overflow: number): void {
  assert(elements.length < 0xffff, "too many elements in one page")
  const view = new DataView(page.buffer, page.byteOffset, page.byteLength)
  view.setUint16(8, BRANCH_PAGE, true)
  view.setUint16(10, elements.length, true)
  view.setUint32(12, overflow, true)
  let data = PAGE_HEADER_BYTES + elements.length * ELEMENT_BYTES
  elements.forEach((e, i) => {
    const at = PAGE_HEADER_BYTES + i * ELEMENT_BYTES
    view.setUint32(at, data - at, true)
    view.setUint32(at + 4, e.keyBytes, true)
    view.setBigUint64(at + 8, BigInt(e.pgid), true)
    page.set(e.key!, data)
    data += e.keyBytes
  })
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.byteLength, b.byteLength)
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!
  return a.byteLength - b.byteLength
}

function writeFully(fd: number, bytes: Uint8Array, position: number): void {
  for (let off = 0; off < bytes.byteLength; ) off += writeSync(fd, bytes, off, bytes.byteLength - off, position + off)
}
