// A data dir that an earlier start made but never served from: the WAL holds
// its metadata and nothing else (no entry, no term, no snapshot), because the
// start failed before the first Ready was saved (a port in use, a bad flag the
// listeners found). Nothing in it was ever acknowledged, and its member list
// may carry URLs of the failed attempt, so the start makes it again from the flags.

import { existsSync, readdirSync, rmSync } from "node:fs"
import { join } from "node:path"
import type { FsPort } from "../lib/fs_port"
import type { Logger } from "../lib/logger"
import { Wal } from "../wal/wal"

export interface DataDirPaths {
  memberDir: string
  walDir: string
}

/** Whether the WAL in `walDir` is one a start created and never wrote raft state into. */
export function neverServed(fs: FsPort, walDir: string): boolean {
  // (Every WAL starts with the empty snapshot record of index 0.)
  if (Wal.validSnapshots({ fs, dir: walDir }).some((s) => s.index > 0)) return false
  const opened = Wal.open({ fs, dir: walDir })
  opened.wal.close()
  return opened.entries.length === 0 && opened.hardState.term === 0 && opened.hardState.commit === 0
}

/** Removes what the failed start made. */
export function removeHalfMade(paths: DataDirPaths, logger: Logger): void {
  logger.warn("the data dir was made by a start that never served (no raft state in its WAL); making it again", {
    dir: paths.memberDir,
  })
  discardNewDataDir(paths)
}

/** Neither the member dir nor a file in the WAL dir exists: the start about to run makes the data dir. */
export function isNewDataDir(paths: DataDirPaths): boolean {
  if (existsSync(paths.memberDir)) return false
  return !existsSync(paths.walDir) || readdirSync(paths.walDir).length === 0
}

/**
 * Removes the member dir and the WAL (a dedicated --wal-dir itself stays, emptied): after a start
 * that made the data dir failed before serving, no trace of it is left.
 */
export function discardNewDataDir(paths: DataDirPaths): void {
  if (!paths.walDir.startsWith(paths.memberDir + "/") && existsSync(paths.walDir)) {
    for (const name of readdirSync(paths.walDir)) rmSync(join(paths.walDir, name), { recursive: true, force: true })
  }
  rmSync(paths.memberDir, { recursive: true, force: true })
}
