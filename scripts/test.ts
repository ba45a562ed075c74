// npm test: builds dist/tskv (the e2e tests run the compiled binary), runs the
// whole suite with bun test, and ends with one plain "N passed, N failed" line.
import { spawn } from "bun"

const build = Bun.spawnSync(["bun", "scripts/build.ts"], { stdio: ["ignore", "inherit", "inherit"] })
if (build.exitCode !== 0) {
  console.log("build failed")
  console.log("0 passed, 1 failed")
  process.exit(1)
}

const args = ["test", "--timeout", "120000", ...process.argv.slice(2)]
const child = spawn(["bun", ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, FORCE_COLOR: "0" } })
let passed = 0
let failed = 0
let skipped = 0
async function pump(stream: ReadableStream<Uint8Array>, sink: NodeJS.WriteStream): Promise<void> {
  const decoder = new TextDecoder()
  let pending = ""
  for await (const chunk of stream) {
    const text = decoder.decode(chunk, { stream: true })
    sink.write(text)
    pending += text
    const lines = pending.split("\n")
    pending = lines.pop() ?? ""
    for (const line of lines) count(line)
  }
  count(pending)
}
function count(line: string): void {
  const m = /^\s*(\d+) (pass|fail|skip|todo)\s*$/.exec(line)
  if (!m) return
  const n = Number(m[1])
  if (m[2] === "pass") passed = n
  else if (m[2] === "fail") failed = n
  else skipped += n
}
await Promise.all([pump(child.stdout, process.stdout), pump(child.stderr, process.stderr)])
const code = await child.exited
if (code !== 0 && failed === 0) failed = 1
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`)
process.exit(code === 0 ? 0 : 1)
