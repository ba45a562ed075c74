import { expect, test } from "bun:test"
import { resolve } from "node:path"
import { checkImports } from "../../scripts/check_imports"

test("every import in src/ follows the room arrows of ARCHITECTURE.md", () => {
  const violations = checkImports(resolve(import.meta.dir, "../..")).map((v) => `${v.file}: ${v.from} -> ${v.to} (${v.imported})`)
  expect(violations).toEqual([])
})
