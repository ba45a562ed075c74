// Where tskv keeps its files in a data dir:
//
//   <data-dir>/tskv/wal/<seq>-<index>.wal     raft log segments (or --wal-dir)
//   <data-dir>/tskv/snap/<term>-<index>.snap  raft snapshot metadata
//   <data-dir>/tskv/snap/db                   the backend (SQLite)
//
// Not etcd's `member/`: etcd's tools open <data-dir>/member/snap/db,
// member/snap/*.snap and member/wal/*.wal as their own formats, and they
// changed tskv's files when they found them there (etcdctl backup renamed a
// .snap to .snap.broken, defrag panicked on the db). Under `tskv/` they find
// nothing and say so. A data dir made by an older tskv (`member/` holding a
// SQLite db) is moved to the new name on start, in one rename.

import { closeSync, existsSync, fsyncSync, openSync, readSync, renameSync } from "node:fs"
import { join } from "node:path"

/** The directory under the data dir that holds the member's files. */
export const MEMBER_DIR_NAME = "tskv"
/** Where tskv kept them before (etcd's name). */
const LEGACY_MEMBER_DIR_NAME = "member"

export class DataDirError extends Error {
  override readonly name = "DataDirError"
}

export function memberDirOf(dataDir: string): string {
  return join(dataDir, MEMBER_DIR_NAME)
}

export function snapDirOf(dataDir: string): string {
  return join(memberDirOf(dataDir), "snap")
}

/** --wal-dir, or <data-dir>/tskv/wal when it is empty. */
export function walDirOf(dataDir: string, walDir = ""): string {
  return walDir !== "" ? walDir : join(memberDirOf(dataDir), "wal")
}

export function backendPathOf(dataDir: string): string {
  return join(snapDirOf(dataDir), "db")
}

/**
 * Moves an older tskv data dir (`member/`) to `tskv/`. Returns true when it
 * moved one. Refuses a data dir of etcd's own (member/snap/db is a bbolt file):
 * tskv would otherwise start a new member beside etcd's data.
 */
export function migrateDataDir(dataDir: string): boolean {
  const legacy = join(dataDir, LEGACY_MEMBER_DIR_NAME)
  if (existsSync(memberDirOf(dataDir)) || !existsSync(legacy)) return false
  const db = join(legacy, "snap", "db")
  if (existsSync(db) && !isSqlite(db)) {
    throw new DataDirError(
      `${dataDir} is an etcd data dir (${db} is not a tskv db); tskv does not start on it: ` +
        `import it with 'tskv snapshot restore ${db} --skip-hash-check' into a new data dir`,
    )
  }
  renameSync(legacy, memberDirOf(dataDir))
  const fd = openSync(dataDir, "r")
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  return true
}

function isSqlite(path: string): boolean {
  const head = Buffer.alloc(16)
  const fd = openSync(path, "r")
  try {
    // An empty file is a db SQLite has not written yet.
    const n = readSync(fd, head, 0, 16, 0)
    return n === 0 || (n === 16 && head.toString("latin1") === "SQLite format 3\0")
  } finally {
    closeSync(fd)
  }
}
