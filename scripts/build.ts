// npm run build: compiles src/main.ts and everything it imports (the generated
// protobuf codecs included) into one executable, dist/tskv. Nothing is read
// from the source tree at run time.
import { $ } from "bun"
import { mkdirSync } from "node:fs"

mkdirSync("dist", { recursive: true })
const started = performance.now()
// Worker threads started by URL are separate entrypoints of the executable (Bun's --compile docs).
const workers = ["src/snapshot/export_worker.ts"]
await $`bun build --compile --minify-syntax --sourcemap=inline src/main.ts ${workers} --outfile dist/tskv`.quiet()
console.error(`built dist/tskv in ${Math.round(performance.now() - started)} ms`)
