// The file-system port that wal/ and snap/ write through, so that tests can
// tear writes, lose unsynced data and fill the disk (test/sim/fault_fs.ts).
// Every call is synchronous: node:fs sync calls are faster than async ones in
// Bun for small writes, and a caller that wants the I/O off its thread runs the
// whole WAL in a Worker instead.

import { dlopen, FFIType } from "bun:ffi"
import * as nodeFs from "node:fs"
import * as nodePath from "node:path"

/** An error from the file system; `code` is the errno name ("ENOSPC", "EIO", "ENOENT", ...). */
export interface FsError extends Error {
  code: string
}

export function isFsError(e: unknown, code?: string): e is FsError {
  return e instanceof Error && typeof (e as Partial<FsError>).code === "string" && (code === undefined || (e as FsError).code === code)
}

/** "read": existing file, read only. "write": existing file, read and write. "create": new file (fails if it exists), read and write. */
export type OpenMode = "read" | "write" | "create"

export interface FileHandle {
  readonly path: string
  size(): number
  /** Reads up to `buffer.length` bytes at `position`; returns how many were read (0 at end of file). */
  read(buffer: Uint8Array, position: number): number
  /** Writes all of `data` at `position` (pwrite), extending the file if needed. */
  write(data: Uint8Array, position: number): void
  fsync(): void
  fdatasync(): void
  /** fdatasync on the thread pool (optional; callers fall back to fdatasync()). */
  fdatasyncAsync?(done: (error: Error | null) => void): void
  truncate(length: number): void
  /** Makes the file at least `length` bytes long, the new bytes reading as zeros, with its blocks allocated. */
  preallocate(length: number): void
  /**
   * Takes an exclusive advisory lock on the file without waiting (flock);
   * false when another open file description holds it. Released on close.
   */
  tryLock(): boolean
  close(): void
}

export interface FileStat {
  size: number
  isDirectory: boolean
}

export interface FsPort {
  open(path: string, mode: OpenMode): FileHandle
  readFile(path: string): Uint8Array
  rename(source: string, target: string): void
  unlink(path: string): void
  /** Names (not paths) of the entries of `dir`, sorted. */
  readdir(dir: string): string[]
  /** Creates `dir` and its missing parents. */
  mkdir(dir: string): void
  /** Makes the entries of `dir` (creations, renames, unlinks) durable. */
  fsyncDir(dir: string): void
  exists(path: string): boolean
  stat(path: string): FileStat
}

/**
 * Creates `dir` and its missing parents, and fsyncs every directory on its
 * path, so that it survives a crash even if a parent was created by someone
 * who did not fsync. Used once, when a WAL or snapshot directory is made.
 */
export function mkdirDurable(fs: FsPort, dir: string): void {
  fs.mkdir(dir)
  for (let d = dir; ; d = nodePath.dirname(d)) {
    const parent = nodePath.dirname(d)
    if (parent === d) break
    fs.fsyncDir(parent)
  }
}

/** Writes `data` to a new file durably: temp file, fsync, rename, directory fsync. Returns the file's fsync time in ms. */
export function writeFileAtomic(fs: FsPort, path: string, data: Uint8Array): number {
  const temp = `${path}.tmp`
  if (fs.exists(temp)) fs.unlink(temp)
  const file = fs.open(temp, "create")
  let fsyncMs: number
  try {
    file.write(data, 0)
    const started = performance.now()
    file.fsync()
    fsyncMs = performance.now() - started
  } finally {
    file.close()
  }
  fs.rename(temp, path)
  fs.fsyncDir(nodePath.dirname(path))
  return fsyncMs
}

// ---------------------------------------------------------------------------
// The real implementation, on node:fs sync calls.

interface Libc {
  fallocate(fd: number, mode: number, offset: number, length: number): number
  flock(fd: number, operation: number): number
}
let libc: Libc | null | undefined

/** fallocate(2) and flock(2) through bun:ffi on Linux; null where not available (zeros are written, no locks taken). */
function loadLibc(): Libc | null {
  if (libc !== undefined) return libc
  libc = null
  if (process.platform !== "linux") return null
  try {
    const lib = dlopen("libc.so.6", {
      fallocate: { args: [FFIType.i32, FFIType.i32, FFIType.i64, FFIType.i64], returns: FFIType.i32 },
      flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    })
    const { fallocate, flock } = lib.symbols
    libc = {
      fallocate: (fd, mode, offset, length) => fallocate(fd, mode, offset, length) as number,
      flock: (fd, operation) => flock(fd, operation) as number,
    }
  } catch {
    libc = null
  }
  return libc
}

const LOCK_EX = 2
const LOCK_NB = 4

const ZERO_CHUNK = new Uint8Array(1 << 20)

class NodeFileHandle implements FileHandle {
  private closed = false
  constructor(
    readonly path: string,
    private readonly fd: number,
  ) {}

  size(): number {
    return nodeFs.fstatSync(this.fd).size
  }

  read(buffer: Uint8Array, position: number): number {
    return nodeFs.readSync(this.fd, buffer, 0, buffer.length, position)
  }

  write(data: Uint8Array, position: number): void {
    let done = 0
    while (done < data.length) {
      done += nodeFs.writeSync(this.fd, data, done, data.length - done, position + done)
    }
  }

  fsync(): void {
    nodeFs.fsyncSync(this.fd)
  }

  fdatasync(): void {
    nodeFs.fdatasyncSync(this.fd)
  }

  fdatasyncAsync(done: (error: Error | null) => void): void {
    nodeFs.fdatasync(this.fd, (e) => done(e ?? null))
  }

  truncate(length: number): void {
    nodeFs.ftruncateSync(this.fd, length)
  }

  preallocate(length: number): void {
    const size = this.size()
    if (size >= length) return
    const c = loadLibc()
    if (c !== null && c.fallocate(this.fd, 0, size, length - size) === 0) return
    // No fallocate (or the file system refused it): write zeros.
    for (let at = size; at < length; at += ZERO_CHUNK.length) {
      this.write(ZERO_CHUNK.subarray(0, Math.min(ZERO_CHUNK.length, length - at)), at)
    }
  }

  tryLock(): boolean {
    const c = loadLibc()
    return c === null || c.flock(this.fd, LOCK_EX | LOCK_NB) === 0
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    nodeFs.closeSync(this.fd)
  }
}

const openFlags: Record<OpenMode, string> = { read: "r", write: "r+", create: "wx+" }

export const nodeFsPort: FsPort = {
  open: (path, mode) => new NodeFileHandle(path, nodeFs.openSync(path, openFlags[mode], 0o600)),
  readFile: (path) => {
    // One read into a buffer of the file's size: faster than readFileSync for large segments.
    const fd = nodeFs.openSync(path, "r")
    try {
      const buffer = Buffer.allocUnsafe(nodeFs.fstatSync(fd).size)
      let done = 0
      while (done < buffer.length) {
        const n = nodeFs.readSync(fd, buffer, done, buffer.length - done, done)
        if (n === 0) break
        done += n
      }
      return done === buffer.length ? buffer : buffer.subarray(0, done)
    } finally {
      nodeFs.closeSync(fd)
    }
  },
  rename: (source, target) => nodeFs.renameSync(source, target),
  unlink: (path) => nodeFs.unlinkSync(path),
  readdir: (dir) => nodeFs.readdirSync(dir).sort(),
  mkdir: (dir) => void nodeFs.mkdirSync(dir, { recursive: true, mode: 0o700 }),
  fsyncDir: (dir) => {
    const fd = nodeFs.openSync(dir, "r")
    try {
      nodeFs.fsyncSync(fd)
    } finally {
      nodeFs.closeSync(fd)
    }
  },
  exists: (path) => nodeFs.existsSync(path),
  stat: (path) => {
    const s = nodeFs.statSync(path)
    return { size: s.size, isDirectory: s.isDirectory() }
  },
}
