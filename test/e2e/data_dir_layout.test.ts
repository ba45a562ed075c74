// tskv's data dir under names etcd's tools do not take for theirs
// (<data-dir>/tskv/, src/lib/data_dir.ts): `ETCDCTL_API=2 etcdctl backup` and
// `etcdctl defrag --data-dir` find nothing and fail without changing a byte;
// a data dir of an older tskv (member/) is moved on start and keeps its data;
// an etcd data dir is refused with a pointer to `tskv snapshot restore`.

import { afterAll, expect, setDefaultTimeout, test } from "bun:test"
import { spawnSync } from "bun"
import { createHash } from "node:crypto"
import { existsSync, readdirSync, readFileSync, renameSync, statSync } from "node:fs"
import { join } from "node:path"
import { etcdctl, type MemberProcess, startMember } from "../support/procs"
import { tempDir } from "../support/tmp"

setDefaultTimeout(60_000)

const started: MemberProcess[] = []
afterAll(async () => {
  for (const m of started) await m.stop("SIGKILL")
})

/** Every file under `dir` with its sha256: what "unchanged" means. */
function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {}
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name)
      if (statSync(p).isDirectory()) walk(p)
      else out[p.slice(dir.length)] = createHash("sha256").update(readFileSync(p)).digest("hex")
    }
  }
  walk(dir)
  return out
}

async function memberWithData(): Promise<MemberProcess> {
  const m = await startMember({ kind: "tskv", name: "layout" })
  started.push(m)
  for (let i = 0; i < 5; i++) expect(etcdctl(m.clientUrl, ["put", `k${i}`, `v${i}`]).code).toBe(0)
  await m.stop()
  return m
}

async function restartOn(m: MemberProcess): Promise<MemberProcess> {
  const again = await startMember({ kind: "tskv", name: "layout", dataDir: m.dataDir, clientPort: m.clientPort, peerPort: m.peerPort })
  started.push(again)
  return again
}

test("a tskv data dir has no member/ for etcd's tools: etcdctl backup and defrag --data-dir fail and change nothing", async () => {
  const m = await memberWithData()
  expect(readdirSync(m.dataDir)).toEqual(["tskv"])
  const before = tree(m.dataDir)
  const backupDir = join(tempDir("tskv-layout-backup-").path, "backup")
  const backup = spawnSync(["etcdctl", "backup", `--data-dir=${m.dataDir}`, `--backup-dir=${backupDir}`], { env: { ...process.env, ETCDCTL_API: "2" } })
  expect(backup.exitCode).not.toBe(0)
  expect(backup.stderr.toString()).toContain(`open ${join(m.dataDir, "member", "snap")}: no such file or directory`)
  const defrag = spawnSync(["etcdctl", "defrag", `--data-dir=${m.dataDir}`], { env: { ...process.env, ETCDCTL_API: "3" } })
  expect(defrag.exitCode).not.toBe(0)
  expect(defrag.stderr.toString()).toContain(`open ${join(m.dataDir, "member", "snap", "db")}: no such file or directory`)
  expect(tree(m.dataDir)).toEqual(before)
  const again = await restartOn(m)
  expect(etcdctl(again.clientUrl, ["get", "k4", "--print-value-only"]).stdout).toBe("v4\n")
  await again.stop()
})

test("a data dir of an older tskv (member/) is moved to tskv/ on start and keeps its data", async () => {
  const m = await memberWithData()
  // The layout before: the same files under member/.
  renameSync(join(m.dataDir, "tskv"), join(m.dataDir, "member"))
  const again = await restartOn(m)
  expect(again.output()).toContain("moved the data dir to its new layout")
  expect(readdirSync(m.dataDir)).toEqual(["tskv"])
  const got = etcdctl(again.clientUrl, ["get", "k", "--prefix", "--print-value-only"])
  expect(got.stdout).toBe("v0\nv1\nv2\nv3\nv4\n")
  expect(etcdctl(again.clientUrl, ["put", "k5", "v5"]).code).toBe(0)
  await again.stop()
})

test("tskv refuses to start on an etcd data dir and says how to import it", async () => {
  const etcd = await startMember({ kind: "etcd", name: "theirs" })
  started.push(etcd)
  await etcd.stop()
  const before = tree(etcd.dataDir)
  const ours = await startMember({ kind: "tskv", name: "theirs", dataDir: etcd.dataDir, waitReady: false })
  started.push(ours)
  expect(await ours.proc.exited).toBe(1)
  const db = join(etcd.dataDir, "member", "snap", "db")
  expect(ours.output()).toContain(`is an etcd data dir (${db} is not a tskv db); tskv does not start on it: import it with 'tskv snapshot restore ${db} --skip-hash-check' into a new data dir`)
  expect(tree(etcd.dataDir)).toEqual(before)
  expect(existsSync(join(etcd.dataDir, "tskv"))).toBe(false)
})
