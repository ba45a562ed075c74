// npm run release: the release archive as etcd ships its own, for linux-amd64:
//   dist/tskv-v<version>-linux-amd64.tar.gz   tskv-v<version>-linux-amd64/{tskv, tskvctl -> tskv,
//                                             README.md, LICENSE, deploy/}
//   dist/SHA256SUMS                           `sha256sum -c SHA256SUMS` checks it
// Builds dist/tskv first (--no-build: package the dist/tskv that is there).
// --out DIR writes the archive and SHA256SUMS to DIR instead of dist/.
// The archive is reproducible: sorted names, owner root, mtime of the last commit, gzip without a timestamp.

import { spawnSync } from "bun"
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { join, resolve } from "node:path"
import { parseArgs } from "node:util"

const root = resolve(import.meta.dir, "..")
const { values } = parseArgs({ options: { "no-build": { type: "boolean", default: false }, out: { type: "string", default: join(root, "dist") } } })

function run(argv: string[], cwd = root): string {
  const r = spawnSync(argv, { cwd, stdio: ["ignore", "pipe", "pipe"] })
  if (r.exitCode !== 0) throw new Error(`${argv.join(" ")} failed (${r.exitCode}): ${r.stderr.toString()}`)
  return r.stdout.toString()
}

if (process.platform !== "linux" || process.arch !== "x64") throw new Error(`release archives are built on linux-amd64, not ${process.platform}-${process.arch}`)
const version = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string }).version
if (!values["no-build"]) run(["bun", "scripts/build.ts"])
const binary = join(root, "dist", "tskv")
if (!existsSync(binary)) throw new Error(`${binary} is missing: run npm run build, or npm run release without --no-build`)

const name = `tskv-v${version}-linux-amd64`
const out = resolve(values.out ?? join(root, "dist"))
const staging = join(out, `.${name}.staging`)
rmSync(staging, { recursive: true, force: true })
const tree = join(staging, name)
mkdirSync(tree, { recursive: true })
copyFileSync(binary, join(tree, "tskv"))
chmodSync(join(tree, "tskv"), 0o755)
symlinkSync("tskv", join(tree, "tskvctl"))
for (const file of ["README.md", "LICENSE"]) copyFileSync(join(root, file), join(tree, file))
cpSync(join(root, "deploy"), join(tree, "deploy"), { recursive: true })

const commitTime = spawnSync(["git", "log", "-1", "--format=%ct"], { cwd: root }).stdout.toString().trim()
const mtime = process.env.SOURCE_DATE_EPOCH ?? (commitTime !== "" ? commitTime : String(Math.floor(Date.now() / 1000)))
const tar = spawnSync(["tar", "-c", "--sort=name", "--owner=0", "--group=0", "--numeric-owner", `--mtime=@${mtime}`, "-C", staging, name], { stdio: ["ignore", "pipe", "pipe"], maxBuffer: 1 << 30 })
if (tar.exitCode !== 0) throw new Error(`tar failed: ${tar.stderr.toString()}`)
const archive = `${name}.tar.gz`
const gz = Bun.gzipSync(new Uint8Array(tar.stdout), { level: 6 })
writeFileSync(join(out, archive), gz)
rmSync(staging, { recursive: true, force: true })
const sha = new Bun.CryptoHasher("sha256").update(gz).digest("hex")
writeFileSync(join(out, "SHA256SUMS"), `${sha}  ${archive}\n`)
console.error(`${join(out, archive)} (${(gz.length / 1e6).toFixed(1)} MB)\n${sha}  ${archive}`)
