// A fault-injecting, in-memory FsPort for durability tests.
//
// Each file has what readers see now (the page cache) and what would survive a
// power loss (the durable image): fsync/fdatasync copy the first to the second,
// and directory entries (creations, renames, unlinks, mkdirs) become durable
// only when their directory is fsynced. `crash()` freezes this file system and
// returns a new one holding only the durable image, optionally with a prefix of
// the unsynced writes (a write torn at any byte offset). Rules make chosen
// operations fail with ENOSPC, EROFS or EIO (a write first writes part of its bytes),
// or crash the machine at that point; `crashAtOp` crashes at the n-th mutating
// operation so a test can crash at every step of a workload.

import { posix } from "node:path"
import type { FileHandle, FileStat, FsPort, OpenMode } from "../../src/lib/fs_port"
import type { Prng } from "../../src/lib/prng"

export type FaultOp = "open" | "write" | "fsync" | "fdatasync" | "truncate" | "preallocate" | "rename" | "unlink" | "mkdir" | "fsyncDir"

export interface FaultRule {
  op: FaultOp
  /** Only operations on this path (or paths matching it). */
  path?: string | RegExp
  /** Fire on the n-th matching operation (1-based, default 1), once. */
  nth?: number
  error: "ENOSPC" | "EROFS" | "EIO" | "crash"
  /** For writes: how many bytes reach the file before the failure (default 0). */
  writeBytes?: number
  /**
   * For fsync/fdatasync: the failure drops the file's unsynced writes from what
   * a later sync makes durable (Linux after a writeback error marks the dirty
   * pages clean: reads still see the data, the next fsync succeeds, a crash
   * loses it: "fsyncgate").
   */
  dropUnsynced?: boolean
}

export interface CrashOptions {
  /**
   * Instead of a prefix: every aligned sector of every unsynced write survives
   * or not at random (disks persist a write's sectors in any order); unsynced
   * size changes all survive.
   */
  sectors?: { prng: Prng; sectorBytes?: number }
  /**
   * Bytes of each file's unsynced writes (in write order) that survive; the rest is
   * lost, and so are the unsynced size changes after the cut. Default 0: only what was fsynced.
   */
  keepUnsyncedBytes?: number | ((path: string) => number)
}

/** Thrown by every operation of a crashed FaultFs. */
export class SimulatedCrash extends Error {
  override readonly name = "SimulatedCrash"
}

class FaultFsError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(`${code}: ${message}`)
  }
}

type Pending = { kind: "write"; position: number; bytes: Uint8Array } | { kind: "resize"; length: number }

class Inode {
  data: Uint8Array = new Uint8Array(0)
  size = 0
  /** The durable image: its bytes are durable.subarray(0, durableSize). */
  durable: Uint8Array = new Uint8Array(0)
  durableSize = 0
  pending: Pending[] = []
  /** The open file holding the lock (flock), if any. */
  lockedBy: object | undefined

  ensureCapacity(length: number): void {
    if (length <= this.data.length) return
    const grown = new Uint8Array(Math.max(length, this.data.length * 2, 4096))
    grown.set(this.data.subarray(0, this.size))
    this.data = grown
  }

  resize(length: number): void {
    this.ensureCapacity(length)
    if (length < this.size) this.data.fill(0, length, this.size)
    this.size = length
    this.pending.push({ kind: "resize", length })
  }

  /** Makes every pending change durable (cost proportional to the changes, not to the file). */
  sync(): void {
    const image = { bytes: this.durable, size: this.durableSize }
    for (const op of this.pending) applyPending(image, op, Number.MAX_SAFE_INTEGER)
    this.durable = image.bytes
    this.durableSize = image.size
    this.pending = []
  }

  /** The durable image plus a random choice of the sectors of the unsynced writes. */
  imageAfterSectorCrash(prng: Prng, sectorBytes: number): Uint8Array {
    const image = { bytes: this.durable.slice(0, this.durableSize), size: this.durableSize }
    for (const op of this.pending) {
      if (op.kind === "resize") {
        applyPending(image, op, 0)
        continue
      }
      const end = op.position + op.bytes.length
      for (let at = op.position; at < end; ) {
        const next = Math.min(end, (Math.floor(at / sectorBytes) + 1) * sectorBytes)
        if (prng.int(2) === 0) {
          applyPending(image, { kind: "write", position: at, bytes: op.bytes.subarray(at - op.position, next - op.position) }, Number.MAX_SAFE_INTEGER)
        }
        at = next
      }
    }
    return image.bytes.slice(0, image.size)
  }

  /** The durable image plus the first `keep` bytes of the unsynced writes. */
  imageAfterCrash(keep: number): Uint8Array {
    const image = { bytes: this.durable.slice(0, this.durableSize), size: this.durableSize }
    let budget = keep
    for (const op of this.pending) {
      if (budget <= 0) break
      budget -= applyPending(image, op, budget)
    }
    return image.bytes.slice(0, image.size)
  }
}

/** Applies a pending change to an image, at most `budget` bytes of a write; returns the bytes written. */
function applyPending(image: { bytes: Uint8Array; size: number }, op: Pending, budget: number): number {
  const end = op.kind === "resize" ? op.length : op.position + Math.min(budget, op.bytes.length)
  if (end > image.bytes.length) {
    const grown = new Uint8Array(Math.max(end, image.bytes.length * 2))
    grown.set(image.bytes.subarray(0, image.size))
    image.bytes = grown
  }
  if (op.kind === "resize") {
    if (op.length < image.size) image.bytes.fill(0, op.length, image.size)
    image.size = op.length
    return 0
  }
  const bytes = op.bytes.subarray(0, Math.min(budget, op.bytes.length))
  image.bytes.set(bytes, op.position)
  if (op.position + bytes.length > image.size) image.size = op.position + bytes.length
  return bytes.length
}

export interface FaultFsOptions {
  /** Directories that exist (durably) from the start. "/" always does. */
  dirs?: string[]
  /** Total bytes the disk holds; writes beyond it fail with ENOSPC. */
  capacityBytes?: number
}

export class FaultFs implements FsPort {
  private readonly names = new Map<string, Inode>()
  private readonly durableNames = new Map<string, Inode>()
  private readonly dirs = new Set<string>(["/"])
  private readonly durableDirs = new Set<string>(["/"])
  private readonly ruleHits = new Map<FaultRule, number>()
  private crashed = false
  /** Mutating operations attempted so far. */
  opCount = 0
  /** Crash when the n-th mutating operation is attempted (it is not performed). */
  crashAtOp: number | undefined
  rules: FaultRule[] = []
  capacityBytes: number

  constructor(options: FaultFsOptions = {}) {
    this.capacityBytes = options.capacityBytes ?? Number.MAX_SAFE_INTEGER
    for (const dir of options.dirs ?? []) {
      for (const d of ancestors(dir)) {
        this.dirs.add(d)
        this.durableDirs.add(d)
      }
    }
  }

  get isCrashed(): boolean {
    return this.crashed
  }

  /** Freezes this file system (every later call throws SimulatedCrash) and returns what a reboot would find. */
  crash(options: CrashOptions = {}): FaultFs {
    this.crashed = true
    const keep = options.keepUnsyncedBytes ?? 0
    const next = new FaultFs({ capacityBytes: this.capacityBytes })
    for (const dir of this.durableDirs) if (ancestors(dir).every((d) => this.durableDirs.has(d))) next.mkdirDurable(dir)
    const images = new Map<Inode, Inode>()
    for (const [path, inode] of this.durableNames) {
      if (!next.dirs.has(posix.dirname(path))) continue
      let copy = images.get(inode)
      if (copy === undefined) {
        copy = new Inode()
        const image =
          options.sectors === undefined
            ? inode.imageAfterCrash(typeof keep === "number" ? keep : keep(path))
            : inode.imageAfterSectorCrash(options.sectors.prng, options.sectors.sectorBytes ?? 512)
        copy.data = image
        copy.size = image.length
        copy.durable = image.slice()
        copy.durableSize = image.length
        images.set(inode, copy)
      }
      next.names.set(path, copy)
      next.durableNames.set(path, copy)
    }
    return next
  }

  /** A copy of what reads see now, all of it durable; this file system carries on. */
  clone(): FaultFs {
    const next = new FaultFs({ capacityBytes: this.capacityBytes })
    for (const dir of this.dirs) next.mkdirDurable(dir)
    const copies = new Map<Inode, Inode>()
    for (const [path, inode] of this.names) {
      let copy = copies.get(inode)
      if (copy === undefined) {
        copy = new Inode()
        copy.data = inode.data.slice(0, inode.size)
        copy.size = inode.size
        copy.durable = copy.data.slice()
        copy.durableSize = inode.size
        copies.set(inode, copy)
      }
      next.names.set(path, copy)
      next.durableNames.set(path, copy)
    }
    return next
  }

  /** Flips bits of a file's bytes, in both the cache and the durable image (bit rot). */
  corrupt(path: string, offset: number, xor = 0xff): void {
    const inode = this.inodeOf(path)
    if (offset >= inode.size) throw new Error(`corrupt: offset ${offset} beyond ${path} (${inode.size} bytes)`)
    inode.data[offset]! ^= xor
    if (offset < inode.durableSize) inode.durable[offset]! ^= xor
  }

  /** Bytes the files use now. */
  usedBytes(): number {
    let used = 0
    for (const inode of new Set(this.names.values())) used += inode.size
    return used
  }

  // --- FsPort -------------------------------------------------------------

  open(path: string, mode: OpenMode): FileHandle {
    this.check(mode === "read" ? undefined : "open", path)
    let inode = this.names.get(path)
    if (mode === "create") {
      if (inode !== undefined) throw new FaultFsError("EEXIST", `file already exists, open '${path}'`)
      if (!this.dirs.has(posix.dirname(path))) throw new FaultFsError("ENOENT", `no such directory, open '${path}'`)
      inode = new Inode()
      this.names.set(path, inode)
    }
    if (inode === undefined) throw new FaultFsError("ENOENT", `no such file or directory, open '${path}'`)
    return new FaultFileHandle(this, path, inode, mode !== "read")
  }

  readFile(path: string): Uint8Array {
    this.check(undefined, path)
    const inode = this.inodeOf(path)
    return inode.data.slice(0, inode.size)
  }

  rename(source: string, target: string): void {
    this.check("rename", source)
    const inode = this.inodeOf(source)
    if (!this.dirs.has(posix.dirname(target))) throw new FaultFsError("ENOENT", `no such directory, rename '${target}'`)
    this.names.delete(source)
    this.names.set(target, inode)
  }

  unlink(path: string): void {
    this.check("unlink", path)
    this.inodeOf(path)
    this.names.delete(path)
  }

  readdir(dir: string): string[] {
    this.check(undefined, dir)
    if (!this.dirs.has(dir)) throw new FaultFsError("ENOENT", `no such file or directory, scandir '${dir}'`)
    const out: string[] = []
    for (const path of this.names.keys()) if (posix.dirname(path) === dir) out.push(posix.basename(path))
    for (const d of this.dirs) if (d !== "/" && posix.dirname(d) === dir) out.push(posix.basename(d))
    return out.sort()
  }

  mkdir(dir: string): void {
    this.check("mkdir", dir)
    for (const d of ancestors(dir)) {
      if (this.names.has(d)) throw new FaultFsError("EEXIST", `file exists, mkdir '${d}'`)
      this.dirs.add(d)
    }
  }

  fsyncDir(dir: string): void {
    this.check("fsyncDir", dir)
    if (!this.dirs.has(dir)) throw new FaultFsError("ENOENT", `no such file or directory, open '${dir}'`)
    for (const path of new Set([...this.names.keys(), ...this.durableNames.keys()])) {
      if (posix.dirname(path) !== dir) continue
      const inode = this.names.get(path)
      if (inode === undefined) this.durableNames.delete(path)
      else this.durableNames.set(path, inode)
    }
    for (const d of new Set([...this.dirs, ...this.durableDirs])) {
      if (d === "/" || posix.dirname(d) !== dir) continue
      if (this.dirs.has(d)) this.durableDirs.add(d)
      else this.durableDirs.delete(d)
    }
  }

  exists(path: string): boolean {
    this.check(undefined, path)
    return this.names.has(path) || this.dirs.has(path)
  }

  stat(path: string): FileStat {
    this.check(undefined, path)
    if (this.dirs.has(path)) return { size: 0, isDirectory: true }
    return { size: this.inodeOf(path).size, isDirectory: false }
  }

  // --- internals ------------------------------------------------------------

  /** Counts a mutating operation and applies crashAtOp and the rules; returns the rule that fired. */
  check(op: FaultOp | undefined, path: string): FaultRule | undefined {
    if (this.crashed) throw new SimulatedCrash("the file system has crashed")
    if (op === undefined) return undefined
    this.opCount++
    if (this.crashAtOp !== undefined && this.opCount >= this.crashAtOp) {
      this.crashed = true
      throw new SimulatedCrash(`crash at operation ${this.opCount} (${op} ${path})`)
    }
    for (const rule of this.rules) {
      if (rule.op !== op || !matches(rule.path, path)) continue
      const hits = (this.ruleHits.get(rule) ?? 0) + 1
      this.ruleHits.set(rule, hits)
      if (hits === (rule.nth ?? 1)) return rule
    }
    return undefined
  }

  fail(rule: FaultRule, op: FaultOp, path: string): never {
    if (rule.error === "crash") {
      this.crashed = true
      throw new SimulatedCrash(`crash during ${op} ${path}`)
    }
    throw new FaultFsError(rule.error, `injected, ${op} '${path}'`)
  }

  spaceLeft(): number {
    return Math.max(0, this.capacityBytes - this.usedBytes())
  }

  private inodeOf(path: string): Inode {
    const inode = this.names.get(path)
    if (inode === undefined) throw new FaultFsError("ENOENT", `no such file or directory, '${path}'`)
    return inode
  }

  private mkdirDurable(dir: string): void {
    this.dirs.add(dir)
    this.durableDirs.add(dir)
  }
}

class FaultFileHandle implements FileHandle {
  private closed = false
  constructor(
    private readonly fs: FaultFs,
    readonly path: string,
    private readonly inode: Inode,
    private readonly writable: boolean,
  ) {}

  size(): number {
    this.live(undefined)
    return this.inode.size
  }

  read(buffer: Uint8Array, position: number): number {
    this.live(undefined)
    const n = Math.max(0, Math.min(buffer.length, this.inode.size - position))
    buffer.set(this.inode.data.subarray(position, position + n))
    return n
  }

  write(data: Uint8Array, position: number): void {
    const rule = this.live("write")
    let length = data.length
    const growth = Math.max(0, position + length - this.inode.size)
    const room = this.fs.spaceLeft()
    let error: "ENOSPC" | undefined
    if (growth > room) {
      length = Math.max(0, length - (growth - room))
      error = "ENOSPC"
    }
    if (rule !== undefined) length = Math.min(length, rule.writeBytes ?? 0)
    if (length > 0) {
      const bytes = data.slice(0, length)
      const end = position + length
      this.inode.ensureCapacity(end)
      this.inode.data.set(bytes, position)
      if (end > this.inode.size) this.inode.size = end
      this.inode.pending.push({ kind: "write", position, bytes })
    }
    if (rule !== undefined) this.fs.fail(rule, "write", this.path)
    if (error !== undefined) throw new FaultFsError(error, `no space left on device, write '${this.path}'`)
  }

  fsync(): void {
    this.sync("fsync")
  }

  fdatasync(): void {
    this.sync("fdatasync")
  }

  private sync(op: "fsync" | "fdatasync"): void {
    const rule = this.live(op)
    if (rule !== undefined) {
      if (rule.dropUnsynced === true) this.inode.pending = []
      this.fs.fail(rule, op, this.path)
    }
    this.inode.sync()
  }

  truncate(length: number): void {
    const rule = this.live("truncate")
    if (rule !== undefined) this.fs.fail(rule, "truncate", this.path)
    this.inode.resize(length)
  }

  preallocate(length: number): void {
    const rule = this.live("preallocate")
    if (rule !== undefined) this.fs.fail(rule, "preallocate", this.path)
    if (length <= this.inode.size) return
    if (length - this.inode.size > this.fs.spaceLeft()) throw new FaultFsError("ENOSPC", `no space left on device, fallocate '${this.path}'`)
    this.inode.resize(length)
  }

  tryLock(): boolean {
    this.live(undefined)
    if (this.inode.lockedBy !== undefined && this.inode.lockedBy !== this) return false
    this.inode.lockedBy = this
    return true
  }

  close(): void {
    this.closed = true
    if (this.inode.lockedBy === this) this.inode.lockedBy = undefined
  }

  private live(op: FaultOp | undefined): FaultRule | undefined {
    if (this.closed) throw new FaultFsError("EBADF", `file closed: ${this.path}`)
    if (op !== undefined && !this.writable) throw new FaultFsError("EBADF", `file opened read-only: ${this.path}`)
    return this.fs.check(op, this.path)
  }
}

function matches(pattern: string | RegExp | undefined, path: string): boolean {
  if (pattern === undefined) return true
  return typeof pattern === "string" ? pattern === path : pattern.test(path)
}

/** "/a/b/c" -> ["/", "/a", "/a/b", "/a/b/c"]. */
function ancestors(dir: string): string[] {
  const out = ["/"]
  let at = ""
  for (const part of dir.split("/").filter((p) => p !== "")) {
    at += `/${part}`
    out.push(at)
  }
  return out
}
