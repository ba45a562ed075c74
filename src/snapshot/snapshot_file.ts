// A snapshot file as Maintenance.Snapshot streams it (and etcdctl snapshot
// save writes it): the db, then the sha256 of the db (32 bytes). The db is an
// etcd-format bbolt file (what tskv streams now, and etcd) or a SQLite file
// (tskv snapshots before the bbolt format), either a whole number of pages
// (≥ 512 bytes each), so a file whose size is 32 more than a multiple of 512
// carries the hash (etcd's test: size % 512 == sha256.Size).

import { createHash } from "node:crypto"
import { closeSync, fsyncSync, openSync, readSync, statSync, writeSync } from "node:fs"

export const SHA256_BYTES = 32

export class SnapshotFileError extends Error {
  override readonly name = "SnapshotFileError"
}

export interface SnapshotFile {
  path: string
  /** Bytes of the db (the file without the trailing hash). */
  dbBytes: number
  /** The sha256 the file ends with, if it has one. */
  expectedSha256: Uint8Array | undefined
}

/** Describes the file; throws etcd's `stat <path>: no such file or directory` when it is missing. */
export function inspectSnapshotFile(path: string): SnapshotFile {
  let size: number
  try {
    size = statSync(path).size
  } catch {
    throw new SnapshotFileError(`stat ${path}: no such file or directory`)
  }
  const hasHash = size % 512 === SHA256_BYTES
  if (!hasHash) return { path, dbBytes: size, expectedSha256: undefined }
  const trailer = new Uint8Array(SHA256_BYTES)
  const fd = openSync(path, "r")
  try {
    readSync(fd, trailer, 0, SHA256_BYTES, size - SHA256_BYTES)
  } finally {
    closeSync(fd)
  }
  return { path, dbBytes: size - SHA256_BYTES, expectedSha256: trailer }
}

export type DbFormat = "bbolt" | "sqlite" | "unknown"

/** What the db of the file is, from its first bytes (bbolt's meta magic at byte 16, SQLite's header). */
export function detectDbFormat(file: SnapshotFile): DbFormat {
  const head = new Uint8Array(32)
  const fd = openSync(file.path, "r")
  try {
    if (readSync(fd, head, 0, head.length, 0) < head.length) return "unknown"
  } finally {
    closeSync(fd)
  }
  if (Buffer.from(head.subarray(0, 16)).toString("latin1") === "SQLite format 3\0") return "sqlite"
  if (new DataView(head.buffer).getUint32(16, true) === 0xed0cdaed) return "bbolt"
  return "unknown"
}

/**
 * Checks the trailing hash against the db (etcd's restore check): a file
 * without one is refused unless `skipHashCheck`.
 */
export function verifySnapshotFile(file: SnapshotFile, skipHashCheck: boolean): void {
  if (skipHashCheck) return
  if (file.expectedSha256 === undefined) throw new SnapshotFileError("snapshot missing hash but --skip-hash-check=false")
  const actual = sha256Of(file.path, file.dbBytes)
  if (Buffer.compare(actual, file.expectedSha256) !== 0) {
    throw new SnapshotFileError(`expected sha256 ${goBytes(file.expectedSha256)}, got ${goBytes(actual)}`)
  }
}

/** Copies the db part of the file to `targetPath`. */
export function copyDb(file: SnapshotFile, targetPath: string): void {
  const source = openSync(file.path, "r")
  const target = openSync(targetPath, "wx", 0o600)
  try {
    const buf = Buffer.allocUnsafe(1 << 20)
    for (let at = 0; at < file.dbBytes; ) {
      const n = readSync(source, buf, 0, Math.min(buf.length, file.dbBytes - at), at)
      if (n === 0) throw new SnapshotFileError(`${file.path}: short read at ${at}`)
      for (let off = 0; off < n; ) off += writeSync(target, buf, off, n - off, at + off)
      at += n
    }
    fsyncSync(target)
  } finally {
    closeSync(source)
    closeSync(target)
  }
}

function sha256Of(path: string, bytes: number): Buffer {
  const hash = createHash("sha256")
  const fd = openSync(path, "r")
  try {
    const buf = Buffer.allocUnsafe(1 << 20)
    for (let at = 0; at < bytes; ) {
      const n = readSync(fd, buf, 0, Math.min(buf.length, bytes - at), at)
      if (n === 0) throw new SnapshotFileError(`${path}: short read at ${at}`)
      hash.update(buf.subarray(0, n))
      at += n
    }
  } finally {
    closeSync(fd)
  }
  return hash.digest()
}

/** A byte slice as Go's %v prints it: [1 2 3]. */
function goBytes(bytes: Uint8Array): string {
  return `[${Array.from(bytes).join(" ")}]`
}
