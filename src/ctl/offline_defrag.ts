// defrag --data-dir: defragments the db of a stopped member in place, as
// etcdctl's defragData opens the bolt file itself. tskv's db is SQLite at
// <data-dir>/tskv/snap/db (lib/data_dir.ts; an older data dir is moved there
// first, as a member's start would); VACUUM rewrites it packed. A running member holds
// an flock on its last WAL segment (src/wal/wal.ts lockLastSegment): that lock
// is taken here for the whole rewrite, so a member cannot start meanwhile, and
// a member that is running makes the command refuse instead of waiting for it
// (etcdctl blocks on bolt's lock until the member stops).
import { existsSync, readdirSync } from "node:fs"
import { join } from "node:path"
import { Backend } from "../backend/backend"
import { backendPathOf, DataDirError, migrateDataDir, walDirOf } from "../lib/data_dir"
import { nodeFsPort, type FileHandle } from "../lib/fs_port"

export class OfflineDefragError extends Error {}

/** Locks the newest WAL segment of the data dir; undefined when there is no WAL (a db alone). */
function lockWal(dataDir: string): FileHandle | undefined {
  const dir = walDirOf(dataDir)
  if (!existsSync(dir)) return undefined
  const segments = readdirSync(dir)
    .filter((name) => name.endsWith(".wal"))
    .sort()
  const last = segments[segments.length - 1]
  if (last === undefined) return undefined
  const file = nodeFsPort.open(join(dir, last), "write")
  if (!file.tryLock()) {
    file.close()
    throw new OfflineDefragError(`${join(dir, last)} is locked: an etcd member is running on this data dir. To defrag a running etcd instance, omit --data-dir.`)
  }
  return file
}

/** Rewrites the member's db packed; returns its sizes before and after. */
export function defragDataDir(dataDir: string): { beforeBytes: number; afterBytes: number } {
  try {
    migrateDataDir(dataDir)
  } catch (e) {
    if (e instanceof DataDirError) throw new OfflineDefragError(e.message)
    throw e
  }
  const dbPath = backendPathOf(dataDir)
  // Backend.open would create a missing db: an empty member is not what the user meant
  if (!existsSync(dbPath)) throw new OfflineDefragError(`open ${dbPath}: no such file or directory`)
  const lock = lockWal(dataDir)
  try {
    const backend = Backend.open({ path: dbPath })
    try {
      const beforeBytes = backend.sizeBytes()
      backend.defrag({ rewrite: true })
      return { beforeBytes, afterBytes: backend.sizeBytes() }
    } finally {
      backend.close()
    }
  } finally {
    lock?.close()
  }
}
