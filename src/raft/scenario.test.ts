// Runs every script in src/raft/testdata (the runner is test support: test/sim/raft_scenario.ts). TSKV_REWRITE=1 rewrites the
// expected output in place (review the diff before committing it).

import { expect, test } from "bun:test"
import { readdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { parseScenario, ScenarioRunner } from "../../test/sim/raft_scenario"

const dir = join(import.meta.dir, "testdata")
const files = readdirSync(dir).filter((f) => f.endsWith(".txt")).sort()

for (const file of files) {
  test(`scenario ${file}`, () => {
    const path = join(dir, file)
    const text = readFileSync(path, "utf8")
    const runner = new ScenarioRunner()
    const blocks = parseScenario(text)
    expect(blocks.length).toBeGreaterThan(0)
    if (process.env.TSKV_REWRITE === "1") {
      let out = ""
      const lines = text.split("\n")
      let k = 0
      for (const block of blocks) {
        // Copy comments and blank lines before the block.
        while (k < block.line - 1) out += `${lines[k++]}\n`
        out += `${block.command}\n----\n${runner.run(block.command)}\n`
        k = block.line + 1
        while (k < lines.length && lines[k] !== "") k++
      }
      while (k < lines.length) out += `${lines[k++]}\n`
      writeFileSync(path, out.replace(/\n+$/, "\n"))
      return
    }
    for (const block of blocks) {
      const actual = runner.run(block.command)
      if (actual !== block.expected) {
        throw new Error(`${file}:${block.line}: ${block.command}\n--- expected\n${block.expected}\n--- actual\n${actual}`)
      }
    }
  })
}
