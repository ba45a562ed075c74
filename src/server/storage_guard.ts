// The data dir's file system under a running member: nearly full, or made
// read-only (ext4's errors=remount-ro, a remount). Checked a few times a
// second. While it cannot take writes, the member refuses proposals with a
// clear error (Unavailable: clients go to another member), a leader hands
// its leadership over, and a follower stops persisting and applying (the
// cluster goes on without it, as without a stopped member) instead of hitting
// ENOSPC/EROFS in the middle of a WAL append or a backend commit, which stops
// the member. Reads of what it has applied (serializable) are served all the
// while. Once the space is back, it persists what the leader sent meanwhile
// and catches up by itself: no restart, no alarm to disarm.
//
// The reserve is what a few backend batches and a snapshot record need; a WAL
// segment cut still needs a whole segment (64 MB) and stops the member if it
// fails, as in etcd.

import { statfsSync, utimesSync } from "node:fs"

/** Below this many free bytes the data dir counts as full. */
export const STORAGE_RESERVE_BYTES = 8 * 1024 * 1024
export const STORAGE_CHECK_MS = 100

export interface StorageProbe {
  /** Bytes an unprivileged writer may still allocate. */
  freeBytes(): number
  /** Whether files can be written (false on a read-only file system). */
  writable(): boolean
}

export function dataDirProbe(dir: string): StorageProbe {
  return {
    freeBytes: () => {
      const s = statfsSync(dir)
      return Number(s.bavail) * Number(s.bsize)
    },
    // A real metadata write: access(W_OK) says yes on an ext4 that went read-only after an error.
    writable: () => {
      try {
        const now = new Date()
        utimesSync(dir, now, now)
        return true
      } catch (e) {
        return (e as NodeJS.ErrnoException).code !== "EROFS"
      }
    },
  }
}

const MiB = 1024 * 1024

export class StorageGuard {
  private current: string | undefined

  constructor(
    private readonly probe: StorageProbe,
    private readonly reserveBytes = STORAGE_RESERVE_BYTES,
  ) {}

  /** Probes the file system; returns true when the answer changed. */
  check(): boolean {
    const before = this.current
    this.current = this.diagnose()
    return before !== this.current
  }

  /** Why the data dir cannot take writes now (undefined: it can). */
  problem(): string | undefined {
    return this.current
  }

  private diagnose(): string | undefined {
    let free: number
    try {
      if (!this.probe.writable()) return "the data dir is on a read-only file system"
      free = this.probe.freeBytes()
    } catch (e) {
      return `the data dir cannot be examined: ${(e as Error).message}`
    }
    if (free < this.reserveBytes) return `no space left on the data dir's device (${(free / MiB).toFixed(1)} MiB free, ${(this.reserveBytes / MiB).toFixed(0)} MiB needed)`
    return undefined
  }
}
