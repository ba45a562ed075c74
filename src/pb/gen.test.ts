// src/pb is committed generator output: it must be what scripts/gen_proto.ts makes from proto/ now.
import { expect, test } from "bun:test"
import { spawnSync } from "bun"
import { readdirSync, readFileSync } from "node:fs"
import { join, resolve } from "node:path"
import { tempDir } from "../../test/support/tmp"

const GENERATED = ["wire.ts", "mvccpb.ts", "authpb.ts", "etcdserverpb.ts", "v3lockpb.ts", "v3electionpb.ts", "health.ts", "services.ts", "json_runtime.ts", "json.ts", "index.ts"]

test("gen_proto output in src/pb is up to date with proto/ and the generator", () => {
  const repo = resolve(import.meta.dir, "../..")
  const out = tempDir("pb-gen-")
  try {
    const r = spawnSync([process.execPath, join(repo, "scripts/gen_proto.ts"), "--out", out.path], { cwd: repo, stderr: "pipe", stdout: "pipe" })
    expect(r.exitCode).toBe(0)
    expect(readdirSync(out.path).sort()).toEqual([...GENERATED].sort())
    for (const name of GENERATED) {
      const fresh = readFileSync(join(out.path, name), "utf8")
      const committed = readFileSync(join(import.meta.dir, name), "utf8")
      expect(`${name}: ${fresh === committed ? "same" : "differs: run npx bun scripts/gen_proto.ts"}`).toBe(`${name}: same`)
    }
  } finally {
    out.remove()
  }
}, 30_000)
