// A member whose data dir fills up, or turns read-only, under it
// (server/storage_guard.ts): it refuses writes with a clear error (gRPC
// Unavailable, so clients go to another member), a leader hands its
// leadership over, reads are still served, nothing acknowledged is lost, and
// once space is back it takes writes again and catches up by itself.
// The file systems are real: a small tmpfs on the data dir (filled with
// fallocate), an ext4 image on a loop device with errors=remount-ro whose
// error is triggered through /sys/fs/ext4/<dev>/trigger_fs_error. Needs root.

import { afterEach, expect, test } from "bun:test"
import { spawnSync } from "bun"
import { mkdirSync, rmSync, statfsSync, unlinkSync } from "node:fs"
import { basename, join } from "node:path"
import { status } from "@grpc/grpc-js"
import { fromUtf8, utf8 } from "../../src/lib/bytes"
import { Cluster, eventually, failureOf } from "../support/cluster"
import { tempDir } from "../support/tmp"
import { mountTmpfs, unmount } from "../robustness/faults"

const MESSAGE = "etcdserver: the data dir cannot take writes (disk full or read-only)"

let cluster: Cluster | undefined
const mounts: string[] = []
afterEach(async () => {
  for (const m of cluster?.members ?? []) if (m.paused) cluster?.resume(m.name)
  for (const m of cluster?.live ?? []) await cluster?.kill(m.name)
  for (const dir of mounts.splice(0)) unmount(dir)
  await cluster?.close().catch(() => undefined)
  cluster = undefined
})

function run(cmd: string[]): string {
  const r = spawnSync(cmd)
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")}: ${r.stderr.toString()}`)
  return r.stdout.toString()
}

/** Leaves `leaveBytes` free on the file system of `dir`; returns the filler's path. */
function fill(dir: string, leaveBytes: number): string {
  const s = statfsSync(dir)
  const filler = join(dir, "filler")
  run(["fallocate", "-l", String(Number(s.bavail) * Number(s.bsize) - leaveBytes), filler])
  return filler
}

/** A fresh ext4 file system (errors=remount-ro) on a loop device mounted on `mnt`; echo 1 > its trigger_fs_error turns it read-only. */
function mountExt4(image: string, mnt: string): string {
  run(["truncate", "-s", "256M", image])
  run(["mkfs.ext4", "-q", "-F", image])
  run(["mount", "-o", "loop,errors=remount-ro", image, mnt])
  mounts.push(mnt)
  return basename(run(["findmnt", "-n", "-o", "SOURCE", mnt]).trim())
}

function triggerFsError(device: string): void {
  run(["sh", "-c", `echo 1 > /sys/fs/ext4/${device}/trigger_fs_error`])
}

/** A one-member cluster whose data dir is on the file system `mount` puts there before the first start. */
async function oneMemberOn(mount: (dataDir: string) => void): Promise<{ c: Cluster; dataDir: string }> {
  let dataDir = ""
  const c = (cluster = await Cluster.start({
    kind: "tskv",
    size: 1,
    prepareDataDir: (m) => {
      if (dataDir !== "") return
      dataDir = m.dataDir
      mount(dataDir)
    },
  }))
  return { c, dataDir }
}

test("one member, disk full: writes refused with a clear error, reads served, nothing lost, writes again once space is back (no restart)", async () => {
  const { c, dataDir } = await oneMemberOn((dir) => {
    mountTmpfs(dir, 100)
    mounts.push(dir)
  })
  const client = c.client("m1")
  for (let i = 0; i < 50; i++) await client.kv.put({ key: utf8(`k${i}`), value: utf8(`v${i}`) })
  const filler = fill(dataDir, 1024 * 1024)
  const refused = await eventually("a put is refused", async () => {
    const f = await failureOf(() => client.kv.put({ key: utf8("zfull"), value: utf8("x") }))
    return f === "ok" ? undefined : f
  }, 5_000)
  expect(refused).toEqual({ code: status.UNAVAILABLE, message: MESSAGE })
  // Txns that write and lease grants are proposals too; reads are served, linearizable ones included.
  expect(await failureOf(() => client.lease.leaseGrant({ TTL: 60 }))).toEqual({ code: status.UNAVAILABLE, message: MESSAGE })
  const all = await client.kv.range({ key: utf8("k"), rangeEnd: utf8("l") })
  expect(all.count).toBe(50)
  expect((await client.kv.range({ key: utf8("k7"), serializable: true })).kvs.map((kv) => fromUtf8(kv.value))).toEqual(["v7"])
  expect(c.crashed()).toEqual([])
  // Space back: writes again, by itself.
  unlinkSync(filler)
  await eventually("a put succeeds again", async () => ((await failureOf(() => client.kv.put({ key: utf8("after"), value: utf8("y") }))) === "ok" ? true : undefined), 5_000)
  expect(c.member("m1").process!.output()).toContain("the data dir cannot take writes")
  // The line is written when the check flips, which the put may beat to the test's end of the pipe.
  await eventually("the log says so", async () => (c.member("m1").process!.output().includes("the data dir takes writes again") ? true : undefined), 5_000)
  // And all of it survives a kill -9.
  await c.kill("m1")
  await c.restart("m1")
  const after = await c.client("m1").kv.range({ key: utf8("a"), rangeEnd: utf8("l") })
  expect(after.count).toBe(51)
}, 60_000)

for (const role of ["leader", "follower"] as const) {
  test(`three members, the ${role}'s disk full: the others go on, it refuses writes and serves reads, then catches up by itself`, async () => {
    const c = (cluster = await Cluster.start({ kind: "tskv", size: 3, snapshotCount: 50, prepareDataDir: (m) => {
      if (mounts.includes(m.dataDir)) return
      mountTmpfs(m.dataDir, 100)
      mounts.push(m.dataDir)
    } }))
    const leader = (await c.leader()).name
    const victim = role === "leader" ? leader : c.members.find((m) => m.name !== leader)!.name
    const others = c.members.map((m) => m.name).filter((n) => n !== victim)
    for (let i = 0; i < 20; i++) await c.client(others[0]!).kv.put({ key: utf8(`k${i}`), value: utf8(`v${i}`) })
    await c.waitConverged()
    const filler = fill(c.member(victim).dataDir, 1024 * 1024)
    await eventually(`${victim} refuses writes`, async () => {
      const f = await failureOf(() => c.client(victim, 2_000).kv.put({ key: utf8("full"), value: utf8("x") }))
      return f !== "ok" && f.message === MESSAGE && f.code === status.UNAVAILABLE ? true : undefined
    }, 5_000)
    // The others elect a leader among themselves (a leader hands over) and take writes.
    const next = await c.leader({ among: others, timeoutMs: 10_000 })
    expect(next.name).not.toBe(victim)
    for (let i = 20; i < 120; i++) await c.client(others[i % 2]!).kv.put({ key: utf8(`k${i}`), value: utf8(`v${i}`) })
    // The full member still answers serializable reads with what it applied.
    const stale = await c.client(victim).kv.range({ key: utf8("k0"), serializable: true })
    expect(stale.kvs.map((kv) => fromUtf8(kv.value))).toEqual(["v0"])
    expect(c.crashed()).toEqual([])
    unlinkSync(filler)
    // It catches up (by entries, or a snapshot: --snapshot-count 50) without a restart.
    const converged = await c.waitConverged(30_000)
    expect(converged.revision).toBeGreaterThanOrEqual(121)
    const r = await c.client(victim).kv.range({ key: utf8("k"), rangeEnd: utf8("l"), serializable: true })
    expect(r.count).toBe(120)
    await c.client(victim).kv.put({ key: utf8("back"), value: utf8("z") })
  }, 90_000)
}

// Then the operator's next step: stop it, unmount, mount the file system again, start it. The copy of
// the data dir onto the ext4 is not synced and the ext4 error aborts its journal, so the backend
// usually comes back without what the page cache held (often an empty db: consistent index 0, as
// after a power cut): the member replays its WAL from the start, learns its peers from the log's
// bootstrap entries (lost_backend.test.ts), and catches up with the leader.
test("three members, a follower's data dir turns read-only (ext4 errors=remount-ro): it refuses writes, serves reads, the others go on; restarted after a remount, it catches up", async () => {
  const tmp = tempDir("ext4-")
  const image = join(tmp.path, "fs.img")
  const mnt = join(tmp.path, "mnt")
  mkdirSync(mnt)
  const device = mountExt4(image, mnt)
  const c = (cluster = await Cluster.start({ kind: "tskv", size: 3 }))
  const leader = (await c.leader()).name
  const victim = c.members.find((m) => m.name !== leader)!.name
  // Move the follower onto the ext4 file system: stop it, copy its data dir there, start it again.
  await c.terminate(victim)
  run(["cp", "-a", c.member(victim).dataDir, join(mnt, "data")])
  c.member(victim).dataDir = join(mnt, "data")
  await c.restart(victim)
  for (let i = 0; i < 20; i++) await c.client(leader).kv.put({ key: utf8(`k${i}`), value: utf8(`v${i}`) })
  await c.waitConverged()
  triggerFsError(device)
  let last: unknown
  await eventually(`${victim} refuses writes`, async () => {
    const f = (last = await failureOf(() => c.client(victim, 2_000).kv.put({ key: utf8("ro"), value: utf8("x") })))
    return f !== "ok" && f.message === MESSAGE ? true : undefined
  }, 5_000).catch((e: unknown) => {
    throw new Error(`${String(e)}; last answer ${JSON.stringify(last)}\n${c.member(victim).process?.output().slice(-3_000)}`)
  })
  for (let i = 20; i < 60; i++) await c.client(leader).kv.put({ key: utf8(`k${i}`), value: utf8(`v${i}`) })
  expect((await c.client(victim).kv.range({ key: utf8("k19"), serializable: true })).kvs.map((kv) => fromUtf8(kv.value))).toEqual(["v19"])
  expect(c.crashed()).toEqual([])
  expect(c.member(victim).process!.output()).toContain("the data dir is on a read-only file system")
  // The other two have every acknowledged write.
  await c.kill(victim)
  for (const m of c.members.filter((m) => m.name !== victim)) {
    expect((await c.client(m.name).kv.range({ key: utf8("k"), rangeEnd: utf8("l"), serializable: true })).count).toBe(60)
  }
  // The operator remounts the file system and starts the member again.
  run(["umount", mnt])
  run(["mount", "-o", "loop,errors=remount-ro", image, mnt])
  try {
    await c.restart(victim)
    await c.waitConverged(30_000)
  } catch (e) {
    throw new Error(`${String(e)}\n${c.member(victim).process?.output().slice(-4_000)}`)
  }
  for (const m of c.members) {
    const r = await c.client(m.name).kv.range({ key: utf8("k"), rangeEnd: utf8("l"), serializable: true })
    expect(r.kvs.map((kv) => fromUtf8(kv.value)).sort()).toEqual(Array.from({ length: 60 }, (_, i) => `v${i}`).sort())
  }
  await c.client(victim).kv.put({ key: utf8("back"), value: utf8("z") })
  expect(c.crashed()).toEqual([])
}, 120_000)

// Under a write load the backend's batch is never empty: the periodic commit probes the data dir
// first and holds the batch (a failed COMMIT makes SQLite drop the batch and stops the member). A
// COMMIT inside the kernel's own few milliseconds of turning the file system read-only can still
// fail (see the notes of issue 17); every acknowledged write survives either way.
test("one member whose data dir turns read-only under a write load: it stays up; SIGTERM stops it cleanly (exit 0, a clear line, no stack trace); after a remount it restarts with every acknowledged write", async () => {
  const tmp = tempDir("ext4-")
  const image = join(tmp.path, "fs.img")
  let device = ""
  const { c, dataDir } = await oneMemberOn((dir) => {
    mkdirSync(dir, { recursive: true })
    device = mountExt4(image, dir)
    rmSync(join(dir, "lost+found"), { recursive: true })
  })
  const client = c.client("m1")
  const acked: string[] = []
  const load = { stop: false }
  const writers = Array.from({ length: 4 }, async (_, w) => {
    for (let i = 0; !load.stop && i < 2_000; i++) {
      const key = `k${w}-${i}`
      if ((await failureOf(() => client.kv.put({ key: utf8(key), value: utf8(key) }))) !== "ok") return
      acked.push(key)
    }
  })
  await eventually("100 puts acknowledged", async () => (acked.length >= 100 ? true : undefined), 10_000)
  triggerFsError(device)
  let last: unknown
  await eventually("m1 refuses writes", async () => {
    const f = (last = await failureOf(() => c.client("m1", 2_000).kv.put({ key: utf8("ro"), value: utf8("x") })))
    return f !== "ok" && f.message === MESSAGE ? true : undefined
  }, 5_000).catch((e: unknown) => {
    throw new Error(`${String(e)}; last answer ${JSON.stringify(last)}\n${(c.member("m1").pastOutput + (c.member("m1").process?.output() ?? "")).slice(-3_000)}`)
  })
  load.stop = true
  await Promise.all(writers)
  expect(c.crashed()).toEqual([])
  const code = await c.terminate("m1")
  const output = c.member("m1").pastOutput
  expect({ code, stackTrace: /\n\s+at /.test(output) || output.includes("shutdown failed") }).toEqual({ code: 0, stackTrace: false })
  const line = output.split("\n").find((l) => l.includes("stopping on a data dir that cannot take writes"))
  expect(line).toContain("the data dir is on a read-only file system")
  run(["umount", dataDir])
  run(["mount", "-o", "loop,errors=remount-ro", image, dataDir])
  await c.restart("m1")
  const r = await c.client("m1").kv.range({ key: utf8("k"), rangeEnd: utf8("l") })
  const present = new Set(r.kvs.map((kv) => fromUtf8(kv.key)))
  expect(acked.filter((k) => !present.has(k))).toEqual([])
}, 60_000)
