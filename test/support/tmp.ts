// Temporary directories for tests. Every directory made here is removed when
// the test process exits, whatever the tests did: members' data dirs hold a
// preallocated 64 MB WAL segment each, and a whole suite starts hundreds of
// members, so leaking them fills the disk.
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const made = new Set<string>()
process.on("exit", () => {
  for (const path of made) rmSync(path, { recursive: true, force: true })
})

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
