// npm run build: compiles src/main.ts and everything it imports (the generated
// protobuf codecs included) into one executable, dist/tskv. Nothing is read
// from the source tree at run time.
import { $ } from "bun"
import { mkdirSync } from "node:fs"

mkdirSync("dist", { recursive: true })
const started = performance.now()
await $`bun build --compile --minify-syntax --sourcemap=inline src/main.ts --outfile dist/tskv`.quiet()
console.error(`built dist/tskv in ${Math.round(performance.now() - started)} ms`)
