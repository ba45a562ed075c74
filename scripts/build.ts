// npm run build: compiles src/main.ts and everything it imports (the generated
// protobuf codecs included) into one executable, dist/tskv. Nothing is read
// from the source tree at run time.
import { $ } from "bun"
import { mkdirSync } from "node:fs"

mkdirSync("dist", { recursive: true })
const started = performance.now()
// Worker threads started by URL are separate entrypoints of the executable (Bun's --compile docs).
const workers = ["src/snapshot/export_worker.ts"]
// --bytecode: the executable carries JSC bytecode instead of source to parse at every start (a CommonJS
// bundle, hence no top-level await in src/): `tskv ctl version` 227 -> 115 ms CPU; every member start
// and every `tskv ctl` run in the tests pays that.
await $`bun build --compile --bytecode --minify-syntax --sourcemap=inline src/main.ts ${workers} --outfile dist/tskv`.quiet()
console.error(`built dist/tskv in ${Math.round(performance.now() - started)} ms`)
