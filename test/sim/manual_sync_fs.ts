// A FaultFs whose files have fdatasyncAsync, completed by the test (the WAL's
// group commit and its refused syncs under test control).

import type { FileHandle, FsPort, OpenMode } from "../../src/lib/fs_port"
import { FaultFs } from "./fault_fs"

/**
 * FaultFs whose fdatasyncAsync makes durable what was written when it was
 * issued (FaultFs's sync, so a crash loses the rest) and reports back when
 * the test says so.
 */
export class ManualSyncFs implements FsPort {
  readonly inner = new FaultFs({ dirs: ["/data/member"] })
  readonly pending: { file: FileHandle; done: (error: Error | null) => void; error: Error | null }[] = []
  syncs = 0
  failNext: Error | undefined

  open(path: string, mode: OpenMode): FileHandle {
    const file = this.inner.open(path, mode)
    const fdatasyncAsync = (done: (error: Error | null) => void): void => {
      this.syncs++
      let error: Error | null = null
      try {
        file.fdatasync()
      } catch (e) {
        // A rule of the inner FaultFs failed it: reported at complete().
        error = e as Error
      }
      this.pending.push({ file, done, error })
    }
    return new Proxy(file, {
      get(target, key) {
        if (key === "fdatasyncAsync") return fdatasyncAsync
        const v = Reflect.get(target, key) as unknown
        return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v
      },
    })
  }

  /** Completes the oldest fdatasync in flight. */
  complete(): void {
    const p = this.pending.shift()!
    const error = this.failNext ?? p.error
    this.failNext = undefined
    p.done(error)
  }

  readFile(path: string): Uint8Array { return this.inner.readFile(path) }
  rename(source: string, target: string): void { this.inner.rename(source, target) }
  unlink(path: string): void { this.inner.unlink(path) }
  readdir(d: string): string[] { return this.inner.readdir(d) }
  mkdir(d: string): void { this.inner.mkdir(d) }
  fsyncDir(d: string): void { this.inner.fsyncDir(d) }
  stat(path: string): ReturnType<FsPort["stat"]> { return this.inner.stat(path) }
  exists(path: string): boolean { return this.inner.exists(path) }
}
