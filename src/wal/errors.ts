// Errors that stop a member: the WAL cannot be trusted as it is on disk, or a
// write to it failed. They name the file and the offset so an operator can look.

export class WalError extends Error {
  override readonly name = "WalError"
  constructor(
    message: string,
    /** The segment file concerned, when there is one. */
    readonly file?: string,
    /** Byte offset in `file`. */
    readonly offset?: number,
  ) {
    super(file === undefined ? `wal: ${message}` : `wal: ${message} (file ${file}${offset === undefined ? "" : `, offset ${offset}`})`)
  }
}

/**
 * A write the file system refused before anything of it counted (no space,
 * read-only file system): the WAL is unchanged and usable, the same save may
 * be tried again later.
 */
export class WalWriteRefused extends Error {
  override readonly name = "WalWriteRefused"
  constructor(readonly fsError: Error & { code: string }) {
    super(`wal: write refused: ${fsError.message}`)
  }
}

/** Errno names of writes that may succeed later without anything being lost. */
export const REFUSED_WRITE_CODES: ReadonlySet<string> = new Set(["ENOSPC", "EDQUOT", "EROFS"])

/**
 * Errno names of an fdatasync (and of the recovery after it) that leave the
 * WAL waiting for Wal.recover() instead of stopping the member: those above,
 * and EIO, which ext4 returns for a sync once its journal aborted
 * (errors=remount-ro). A disk that keeps failing keeps the member refusing writes.
 */
export const REFUSED_SYNC_CODES: ReadonlySet<string> = new Set([...REFUSED_WRITE_CODES, "EIO"])
