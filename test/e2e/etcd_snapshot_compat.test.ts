// etcd-format snapshots both ways, judged by real etcd 3.4 and etcdctl:
//   etcd -> `etcdctl snapshot save` -> `tskv snapshot restore` -> tskv -> `etcdctl snapshot save`
//        -> `etcdctl snapshot restore` -> etcd
// Every hop serves the same keys with the same revisions, versions and
// leases, the same users and roles, the same compaction point, and HashKV
// agrees; `tskv snapshot status` prints what `etcdctl snapshot status` prints
// for the same file.

import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test"
import { spawnSync } from "bun"
import { existsSync, readdirSync, statSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { EtcdClient } from "../../src/client"
import { freePorts } from "../support/ports"
import { etcdctl, type MemberProcess, startMember, tskvBinary } from "../support/procs"
import { tempDir } from "../support/tmp"

setDefaultTimeout(60_000)

const started: MemberProcess[] = []
const dirs: { remove(): void }[] = []
afterAll(async () => {
  for (const m of started) await m.stop("SIGKILL")
  for (const d of dirs) d.remove()
})

function scratch(): string {
  const d = tempDir("tskv-etcd-snapshot-")
  dirs.push(d)
  return d.path
}

function run(cmd: string[], env: Record<string, string> = {}): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(cmd, { stdin: "ignore", env: { ...process.env, ETCDCTL_API: "3", ...env } })
  return { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() }
}

function ok(r: { code: number; stdout: string; stderr: string }): string {
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr}${r.stdout}`)
  return r.stdout
}

/** A snapshot restored into a new data dir by `kind`'s tool, and a member of that kind started on it. */
async function restoreAndStart(kind: "tskv" | "etcd", file: string, extra: string[] = []): Promise<MemberProcess> {
  const [clientPort, peerPort] = (await freePorts(2)) as [number, number]
  const peerUrl = `http://127.0.0.1:${peerPort}`
  const dataDir = join(scratch(), "data")
  const args = ["snapshot", "restore", file, `--data-dir=${dataDir}`, "--name=r", `--initial-cluster=r=${peerUrl}`, `--initial-advertise-peer-urls=${peerUrl}`, ...extra]
  ok(kind === "tskv" ? run([tskvBinary, ...args]) : run(["etcdctl", ...args]))
  const m = await startMember({ kind, name: "r", dataDir, clientPort, peerPort })
  started.push(m)
  return m
}

function ctl(m: MemberProcess, args: string[]): string {
  return ok(etcdctl(m.clientUrl, args))
}

/** Everything a client can see: keys (with revisions, versions, leases) now and at an older revision, leases, users, roles. */
function observe(m: MemberProcess, oldRevision: number): Record<string, unknown> {
  const all = JSON.parse(ctl(m, ["get", "", "--from-key", "-w", "json"])) as { header: { revision: number }; kvs?: unknown[] }
  const old = JSON.parse(ctl(m, ["get", "", "--from-key", "-w", "json", `--rev=${oldRevision}`])) as { kvs?: unknown[] }
  const leases = ctl(m, ["lease", "list"]).split("\n").slice(1).filter((l) => l !== "").sort()
  const leaseTtls = leases.map((id) => JSON.parse(ctl(m, ["lease", "timetolive", id, "--keys", "-w", "json"])) as { granted_ttl: number; keys?: string[] })
  const users = ctl(m, ["user", "list"])
  const roles = ctl(m, ["role", "list"])
  const userRoles = users.split("\n").filter((u) => u !== "").map((u) => ctl(m, ["user", "get", u]))
  const rolePerms = roles.split("\n").filter((r) => r !== "").map((r) => ctl(m, ["role", "get", r]))
  const compacted = etcdctl(m.clientUrl, ["get", "k", "--rev=2"])
  return {
    revision: all.header.revision,
    kvs: all.kvs,
    old: old.kvs,
    leases,
    leaseTtls: leaseTtls.map((l) => ({ granted: l.granted_ttl, keys: l.keys })),
    users,
    roles,
    userRoles,
    rolePerms,
    compacted: compacted.stderr.trim().split("\n").at(-1),
  }
}

function hashKV(m: MemberProcess, revision: number): { hash: number; compact_revision: number } {
  const out = JSON.parse(ctl(m, ["endpoint", "hashkv", `--rev=${revision}`, "-w", "json"])) as { HashKV: { hash: number; compact_revision: number } }[]
  return { hash: out[0]!.HashKV.hash, compact_revision: out[0]!.HashKV.compact_revision }
}

function save(m: MemberProcess, file: string): void {
  ok(etcdctl(m.clientUrl, ["snapshot", "save", file]))
}

function statusBoth(file: string): { etcd: string; tskv: string } {
  return { etcd: ok(run(["etcdctl", "snapshot", "status", file, "-w", "json"])), tskv: ok(run([tskvBinary, "snapshot", "status", file, "-w", "json"])) }
}

describe("etcd-format snapshots", () => {
  let oldRevision = 0
  let etcdSnapshot = ""
  let etcdState: Record<string, unknown> = {}
  let etcdHash = { hash: 0, compact_revision: 0 }

  test("etcd 3.4 -> tskv: keys, history, leases, users, roles and the compaction point survive; status prints what etcdctl prints", async () => {
    const etcd = await startMember({ kind: "etcd", name: "src" })
    started.push(etcd)
    ctl(etcd, ["put", "k", "v1"])
    for (let i = 0; i < 30; i++) ctl(etcd, ["put", `key/${i}`, `value-${i}`])
    ctl(etcd, ["put", "k", "v2"])
    ctl(etcd, ["del", "key/3"])
    ctl(etcd, ["put", "big", "x".repeat(20_000)])
    const lease = ctl(etcd, ["lease", "grant", "3600"]).split(" ")[1]!
    ctl(etcd, ["put", "leased", "l", `--lease=${lease}`])
    ctl(etcd, ["role", "add", "reader"])
    ctl(etcd, ["role", "grant-permission", "reader", "read", "key/", "--prefix"])
    ctl(etcd, ["user", "add", "alice:secret"])
    ctl(etcd, ["user", "grant-role", "alice", "reader"])
    const compactAt = JSON.parse(ctl(etcd, ["get", "k", "-w", "json"])).header.revision as number
    ctl(etcd, ["compact", String(compactAt - 5)])
    ctl(etcd, ["put", "k", "v3"])
    oldRevision = compactAt - 1
    etcdState = observe(etcd, oldRevision)
    etcdHash = hashKV(etcd, 0)
    etcdSnapshot = join(scratch(), "etcd.db")
    save(etcd, etcdSnapshot)
    await etcd.stop()

    const status = statusBoth(etcdSnapshot)
    expect(status.tskv).toBe(status.etcd)
    for (const format of ["simple", "table"]) {
      expect(ok(run([tskvBinary, "snapshot", "status", etcdSnapshot, "-w", format]))).toBe(ok(run(["etcdctl", "snapshot", "status", etcdSnapshot, "-w", format])))
      // etcdctl's own spelling, through tskv ctl (global flags before the command too).
      expect(ok(run([tskvBinary, "ctl", "-w", format, "snapshot", "status", etcdSnapshot]))).toBe(ok(run(["etcdctl", "-w", format, "snapshot", "status", etcdSnapshot])))
    }

    const tskv = await restoreAndStart("tskv", etcdSnapshot)
    expect(observe(tskv, oldRevision)).toEqual(etcdState)
    // Revisions continue from etcd's.
    const put = JSON.parse(ctl(tskv, ["put", "after", "x", "-w", "json"])) as { header: { revision: number } }
    expect(put.header.revision).toBe((etcdState.revision as number) + 1)
    ok(etcdctl(tskv.clientUrl, ["del", "after"]))

    // tskv -> etcd: the snapshot tskv streams, restored by etcdctl, served by etcd.
    const tskvSnapshot = join(scratch(), "tskv.db")
    save(tskv, tskvSnapshot)
    expect(statSync(tskvSnapshot).size % 512).toBe(32)
    const tskvStatus = JSON.parse(statusBoth(tskvSnapshot).etcd) as { revision: number; totalKey: number }
    expect(ok(run([tskvBinary, "snapshot", "status", tskvSnapshot, "-w", "json"]))).toBe(statusBoth(tskvSnapshot).etcd)
    // Two more revisions (the put and delete of "after") and one more key-bucket row each.
    expect(tskvStatus.revision).toBe((etcdState.revision as number) + 2)
    const back = await restoreAndStart("etcd", tskvSnapshot)
    const backState = observe(back, oldRevision)
    expect({ ...backState, revision: 0 } as Record<string, unknown>).toEqual({ ...etcdState, revision: 0 })
    expect(backState.revision).toBe((etcdState.revision as number) + 2)
    // etcd's HashKV hashes the key bucket's bytes: the etcd that came back through tskv has etcd's very bytes.
    expect(hashKV(back, etcdState.revision as number)).toEqual(etcdHash)
  })

  test("tskv -> etcd -> tskv: the same keys, revisions, versions, leases and users", async () => {
    const tskv = await startMember({ kind: "tskv", name: "t" })
    started.push(tskv)
    for (let i = 0; i < 20; i++) ctl(tskv, ["put", `key/${i % 7}`, `v${i}`])
    ctl(tskv, ["put", "k", "v"])
    ctl(tskv, ["del", "key/6"])
    const lease = ctl(tskv, ["lease", "grant", "900"]).split(" ")[1]!
    ctl(tskv, ["put", "leased", "l", `--lease=${lease}`])
    ctl(tskv, ["role", "add", "reader"])
    ctl(tskv, ["role", "grant-permission", "reader", "readwrite", "key/0"])
    ctl(tskv, ["user", "add", "alice:pw"])
    ctl(tskv, ["user", "grant-role", "alice", "reader"])
    ctl(tskv, ["compact", "5"])
    const before = observe(tskv, 10)
    const file = join(scratch(), "t.db")
    save(tskv, file)
    const etcd = await restoreAndStart("etcd", file)
    expect(observe(etcd, 10)).toEqual(before)
    const again = join(scratch(), "e.db")
    save(etcd, again)
    const tskv2 = await restoreAndStart("tskv", again)
    expect(observe(tskv2, 10)).toEqual(before)
    expect(hashKV(tskv2, 0)).toEqual(hashKV(tskv, 0))
  })

  test("a stopped etcd member's member/snap/db restores with --skip-hash-check; a truncated or damaged file is refused and nothing is written", async () => {
    const etcd = await startMember({ kind: "etcd", name: "dir" })
    started.push(etcd)
    for (let i = 0; i < 10; i++) ctl(etcd, ["put", `d/${i}`, `v${i}`])
    const state = observe(etcd, 5)
    await etcd.stop()
    const db = join(etcd.dataDir, "member", "snap", "db")
    const withoutHash = run([tskvBinary, "snapshot", "restore", db, `--data-dir=${join(scratch(), "x")}`])
    expect(withoutHash.stderr).toBe("Error: snapshot missing hash but --skip-hash-check=false\n")
    // tskv ctl snapshot restore is tskv snapshot restore (etcdctl 3.4 has the command too).
    const viaCtl = run([tskvBinary, "ctl", "snapshot", "restore", db, `--data-dir=${join(scratch(), "via-ctl")}`])
    expect(viaCtl.stderr).toBe("Error: snapshot missing hash but --skip-hash-check=false\n")
    const tskv = await restoreAndStart("tskv", db, ["--skip-hash-check"])
    expect(observe(tskv, 5)).toEqual(state)
    expect(ok(run([tskvBinary, "snapshot", "status", db]))).toBe(ok(run(["etcdctl", "snapshot", "status", db])))

    const dir = scratch()
    const truncated = join(dir, "truncated.db")
    const whole = new Uint8Array(await Bun.file(db).arrayBuffer())
    const cut = Math.floor(whole.byteLength / 2 / 4096) * 4096
    writeFileSync(truncated, whole.subarray(0, cut))
    const target = join(dir, "restored")
    const r1 = run([tskvBinary, "snapshot", "restore", truncated, "--skip-hash-check", `--data-dir=${target}`])
    expect(r1.code).toBe(1)
    expect(r1.stderr).toBe(`Error: file size too small: ${cut} bytes, the meta says ${whole.byteLength / 4096} pages of 4096\n`)
    expect(existsSync(target)).toBe(false)
    const s1 = run([tskvBinary, "snapshot", "status", truncated])
    expect(s1.code).toBe(1)
    expect(s1.stderr).toMatch(/^Error: file size too small/)

    const damaged = join(dir, "damaged.db")
    const bytes = new Uint8Array(await Bun.file(db).arrayBuffer())
    for (const at of [0, 1]) bytes[at * 4096 + 16 + 40] = bytes[at * 4096 + 16 + 40]! ^ 0xff // both metas' pgid
    writeFileSync(damaged, bytes)
    const r2 = run([tskvBinary, "snapshot", "restore", damaged, "--skip-hash-check", `--data-dir=${target}`])
    expect(r2).toEqual({ code: 1, stdout: "", stderr: "Error: checksum error\n" })
    expect(existsSync(target)).toBe(false)
    expect(readdirSync(dir).sort()).toEqual(["damaged.db", "truncated.db"])
  })
})

test("tskv ctl snapshot save on a terminal draws a progress bar up to 100%; the file is an etcd snapshot", async () => {
  const m = await startMember({ kind: "tskv", name: "bar" })
  started.push(m)
  const client = etcdctl(m.clientUrl, ["put", "seed", "x"])
  expect(client.code).toBe(0)
  const value = "v".repeat(30_000)
  for (let i = 0; i < 30; i++) expect(etcdctl(m.clientUrl, ["put", `bar/${i}`, value]).code).toBe(0)
  const file = join(scratch(), "bar.db")
  // script(1) gives the command a pseudo-terminal, as a user's shell would.
  const r = run(["script", "-qec", `${tskvBinary} ctl --endpoints=${m.clientUrl} snapshot save ${file}`, "/dev/null"])
  expect(r.code).toBe(0)
  const frames = r.stdout.split("\r").filter((f) => f.startsWith("["))
  expect(frames.length).toBeGreaterThan(2)
  expect(frames.at(-1)).toMatch(/^\[={20}\] 100% [\d.]+ [kM]B \/ [\d.]+ [kM]B/)
  expect(r.stdout).toContain(`Snapshot saved at ${file}`)
  const status = JSON.parse(ok(run(["etcdctl", "snapshot", "status", file, "-w", "json"]))) as { revision: number; totalKey: number }
  expect(status.revision).toBe(32)
})

test("a snapshot taken while writes go on is the state at one revision: restored, it serves what the source served at that revision", async () => {
  const m = await startMember({ kind: "tskv", name: "busy" })
  started.push(m)
  const client = new EtcdClient({ endpoints: [m.clientUrl] })
  try {
    const value = new Uint8Array(200).fill(120)
    let stop = false
    let puts = 0
    const writers = Array.from({ length: 4 }, async (_, w) => {
      for (let i = 0; !stop && i < 100_000; i++) {
        await client.kv.put({ key: new TextEncoder().encode(`busy/${w}/${i % 500}`), value })
        puts++
      }
    })
    // Counted, not timed: a loaded machine may need seconds for the first puts.
    const waitPuts = async (n: number): Promise<void> => {
      for (const deadline = Date.now() + 20_000; puts < n && Date.now() < deadline; ) await Bun.sleep(10)
    }
    await waitPuts(20)
    const file = join(scratch(), "busy.db")
    // Spawned without blocking this process: the writers go on while etcdctl downloads.
    const saving = Bun.spawn(["etcdctl", `--endpoints=${m.clientUrl}`, "snapshot", "save", file], { stdout: "ignore", stderr: "ignore", env: { ...process.env, ETCDCTL_API: "3" } })
    expect(await saving.exited).toBe(0)
    const afterSave = puts
    await waitPuts(afterSave + 5)
    stop = true
    await Promise.all(writers)
    const status = JSON.parse(ok(run(["etcdctl", "snapshot", "status", file, "-w", "json"]))) as { revision: number }
    const atSnapshot = JSON.parse(ctl(m, ["get", "busy/", "--prefix", "-w", "json", `--rev=${status.revision}`])) as { header: { revision: number }; kvs: unknown[] }
    // Writes went on during and after the save.
    expect(status.revision).toBeGreaterThan(20)
    expect(atSnapshot.header.revision).toBeGreaterThan(status.revision)
    const restored = await restoreAndStart("tskv", file)
    const now = JSON.parse(ctl(restored, ["get", "busy/", "--prefix", "-w", "json"])) as { header: { revision: number }; kvs: unknown[] }
    expect(now.header.revision).toBe(status.revision)
    expect(now.kvs).toEqual(atSnapshot.kvs)
  } finally {
    client.close()
  }
})
