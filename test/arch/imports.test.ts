import { expect, test } from "bun:test"
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { allowed, checkImports } from "../../scripts/check_imports"

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

test("the rooms table of docs/ARCHITECTURE.md draws exactly the arrows check_imports enforces", () => {
  const doc = readFileSync(resolve(import.meta.dir, "../../docs/ARCHITECTURE.md"), "utf8")
  const table = /<!-- rooms:begin -->([\s\S]*?)<!-- rooms:end -->/.exec(doc)?.[1] ?? ""
  const drawn: Record<string, string[]> = {}
  for (const line of table.split("\n")) {
    const cells = line.split("|").map((c) => c.trim())
    const room = cells[1]
    if (room === undefined || room === "" || room === "room" || room.startsWith("---")) continue
    drawn[room] = (cells[2] ?? "").split(",").map((r) => r.trim()).filter((r) => r !== "").sort()
  }
  const enforced = Object.fromEntries(Object.entries(allowed).filter(([room]) => room !== "main").map(([room, to]) => [room, [...to].sort()]))
  expect(drawn).toEqual(enforced)
})

test("every room under src/ has a row in check_imports (a new room is not left unchecked)", () => {
  const src = resolve(import.meta.dir, "../../src")
  const rooms = readdirSync(src, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name)
  expect(rooms.filter((r) => allowed[r] === undefined)).toEqual([])
})
