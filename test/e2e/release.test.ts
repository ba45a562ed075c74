// npm run release: the archive holds what etcd's does (the binary, the client
// as tskvctl, README, LICENSE, and deploy/), SHA256SUMS checks it, and on a
// "clean machine" (an empty dir, an empty environment: env -i) the extracted
// binary serves and its tskvctl talks to it, with nothing but the archive.

import { afterAll, expect, test } from "bun:test"
import { spawn, spawnSync, type Subprocess } from "bun"
import { readdirSync, readFileSync, readlinkSync } from "node:fs"
import { join } from "node:path"
import { freePorts } from "../support/ports"
import { collectOutput, repoRoot, requireBinary } from "../support/procs"
import { tempDir } from "../support/tmp"

const running: Subprocess[] = []
afterAll(async () => {
  for (const p of running) p.kill("SIGKILL")
  await Promise.all(running.map((p) => p.exited))
})

function ok(argv: string[], options: { cwd?: string; env?: Record<string, string> } = {}): string {
  const r = spawnSync(argv, { cwd: options.cwd ?? repoRoot, env: options.env ?? process.env, timeout: 60_000 })
  if (r.exitCode !== 0) throw new Error(`${argv.join(" ")} failed (${r.exitCode}): ${r.stdout.toString()}${r.stderr.toString()}`)
  return r.stdout.toString()
}

test("npm run release: the archive and SHA256SUMS; extracted into an empty dir it runs with an empty environment", async () => {
  requireBinary()
  const pkg = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { version: string; scripts: Record<string, string> }
  expect(pkg.scripts.release).toBe("bun scripts/release.ts")
  const out = tempDir("release-").path
  // (--no-build: the suite already built dist/tskv; rebuilding would race the other tests that run it.)
  ok([process.execPath, "scripts/release.ts", "--no-build", "--out", out])
  const name = `tskv-v${pkg.version}-linux-amd64`
  expect(readdirSync(out).sort()).toEqual(["SHA256SUMS", `${name}.tar.gz`])
  expect(ok(["sha256sum", "-c", "SHA256SUMS"], { cwd: out })).toBe(`${name}.tar.gz: OK\n`)

  const listing = ok(["tar", "tzvf", join(out, `${name}.tar.gz`)]).trim().split("\n")
  const paths = listing.map((l) => l.split(/\s+/).slice(5).join(" "))
  for (const p of [`${name}/tskv`, `${name}/tskvctl -> tskv`, `${name}/README.md`, `${name}/LICENSE`, `${name}/deploy/systemd/tskv.service`, `${name}/deploy/kubernetes/static-pod.yaml`, `${name}/deploy/kubernetes/statefulset.yaml`, `${name}/deploy/docker/Dockerfile`]) {
    expect(paths).toContain(p)
  }
  for (const l of listing) expect(l).toContain(" 0/0 ")

  // README's install steps: extract with --strip-components=1 into an empty dir, then run.
  const machine = tempDir("clean-machine-").path
  ok(["tar", "xzf", join(out, `${name}.tar.gz`), "-C", machine, "--strip-components=1"])
  expect(readdirSync(machine).sort()).toEqual(["LICENSE", "README.md", "deploy", "tskv", "tskvctl"])
  expect(readlinkSync(join(machine, "tskvctl"))).toBe("tskv")
  expect(readFileSync(join(machine, "LICENSE"), "utf8")).toContain("Apache License\n                           Version 2.0, January 2004")
  const clean = ["env", "-i"]
  expect(ok([...clean, "./tskv", "--version"], { cwd: machine })).toContain(`tskv Version: ${pkg.version}`)
  expect(ok([...clean, "./tskvctl", "version"], { cwd: machine })).toContain("etcdctl version: 3.4")

  const [client, peer] = (await freePorts(2)) as [number, number]
  const c = `http://127.0.0.1:${client}`
  const p = `http://127.0.0.1:${peer}`
  const member = spawn([...clean, "./tskv", "--name=n1", "--data-dir=n1.tskv", `--listen-client-urls=${c}`, `--advertise-client-urls=${c}`, `--listen-peer-urls=${p}`, `--initial-advertise-peer-urls=${p}`, `--initial-cluster=n1=${p}`], {
    cwd: machine,
    stdio: ["ignore", "pipe", "pipe"],
  })
  running.push(member)
  const output = collectOutput(member)
  const ctl = [...clean, "./tskvctl", `--endpoints=127.0.0.1:${client}`]
  const deadline = Date.now() + 20_000
  let put = spawnSync([...ctl, "put", "foo", "bar"], { cwd: machine })
  while (put.exitCode !== 0 && Date.now() < deadline) {
    if (member.exitCode !== null) throw new Error(`tskv exited ${member.exitCode}: ${output()}`)
    await Bun.sleep(200)
    put = spawnSync([...ctl, "put", "foo", "bar"], { cwd: machine })
  }
  expect(put.stdout.toString()).toBe("OK\n")
  expect(ok([...ctl, "get", "foo"], { cwd: machine })).toBe("foo\nbar\n")
  member.kill("SIGTERM")
  expect(await member.exited).toBe(0)
  expect(readdirSync(join(machine, "n1.tskv", "tskv")).sort()).toContain("wal")
}, 90_000)
