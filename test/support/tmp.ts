// Temporary directories for tests. Every directory made here is removed after
// the last test (test/support/cleanup.ts, preloaded by bunfig.toml), whatever
// the tests did: members' data dirs hold a preallocated 64 MB WAL segment each,
// and a whole suite starts hundreds of members, so leaking them fills the disk.
// (bun test fires no process "exit" event, hence the preloaded afterAll.)
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const made = new Set<string>()

/** Removes every directory tempDir() made that is still there. */
export function removeAllTempDirs(): void {
  for (const path of made) {
    try {
      rmSync(path, { recursive: true, force: true })
    } catch {
      // A process that was just killed may still hold a file open; nothing more to do.
    }
  }
  made.clear()
}

export function tempDir(prefix = "tskv-test-"): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix))
  made.add(path)
  return {
    path,
    remove: () => {
      rmSync(path, { recursive: true, force: true })
      made.delete(path)
    },
  }
}
