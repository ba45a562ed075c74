import { expect, test } from "bun:test"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { checkImports } from "../../scripts/check_imports"

test("every import in src/ follows the room arrows of ARCHITECTURE.md", () => {
  const violations = checkImports(resolve(import.meta.dir, "../..")).map((v) => `${v.file}: ${v.from} -> ${v.to} (${v.imported})`)
  expect(violations).toEqual([])
})

test("checkImports() flags product code that imports test support, and lets a test file do it", () => {
  const root = mkdtempSync(join(tmpdir(), "tskv-arch-"))
  try {
    mkdirSync(join(root, "src/raft"), { recursive: true })
    mkdirSync(join(root, "test/sim"), { recursive: true })
    writeFileSync(join(root, "test/sim/helper.ts"), "export const x = 1\n")
    writeFileSync(join(root, "src/raft/scenario.ts"), 'import { x } from "../../test/sim/helper"\nexport const y = x\n')
    writeFileSync(join(root, "src/raft/scenario.test.ts"), 'import { x } from "../../test/sim/helper"\nexport const z = x\n')
    expect(checkImports(root)).toEqual([{ file: "src/raft/scenario.ts", imported: "../../test/sim/helper", from: "raft", to: "test" }])
  } finally {
    rmSync(root, { recursive: true, force: true })
  }
})
