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
