import { afterEach, expect, test } from "bun:test"
import { createHash } from "node:crypto"
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { Backend } from "../backend/backend"
import { nodeFsPort } from "../lib/fs_port"
import { MvccStore } from "../mvcc/kv_store"
import { computeClusterId, computeMemberId } from "../server/ids"
import { Membership } from "../server/membership"
import { Snapshotter } from "../snap/snapshotter"
import { Wal } from "../wal/wal"
import { tempDir } from "../../test/support/tmp"
import { parseInitialCluster, restoreSnapshot } from "./restore"
import { inspectSnapshotFile, verifySnapshotFile } from "./snapshot_file"
import { formatStatus, humanizeBytes, snapshotStatus } from "./status"
import { backendPathOf, snapDirOf, walDirOf } from "../lib/data_dir"

const dirs: { remove(): void }[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) d.remove()
})

/** A member's db with keys a..e (revisions 2..6), an old membership and consistent index 1000, saved as Maintenance.Snapshot streams it. */
function snapshotFile(withHash = true): { dir: string; file: string } {
  const d = tempDir("tskv-restore-test-")
  dirs.push(d)
  const backend = Backend.open({ path: join(d.path, "source.db") })
  const store = MvccStore.open({ backend })
  for (const k of ["a", "b", "c", "d", "e"]) {
    const txn = store.write()
    txn.put(Buffer.from(k), Buffer.from(`v-${k}`), 0n)
    txn.end()
  }
  const membership = new Membership(backend)
  membership.add({ id: 0x1234n, name: "old", peerUrls: ["http://10.0.0.1:2380"], clientUrls: ["http://10.0.0.1:2379"], isLearner: false })
  membership.remove(0x99n)
  membership.setClusterId(0xabcn)
  backend.begin()
  backend.setConsistentIndex(1000, 7)
  backend.noteWrites()
  backend.commitDurably()
  const file = join(d.path, "snap.db")
  backend.copyTo(file)
  backend.close()
  if (withHash) appendFileSync(file, createHash("sha256").update(readFileSync(file)).digest())
  return { dir: d.path, file }
}

test("inspectSnapshotFile() finds the trailing sha256; verifySnapshotFile() checks it", () => {
  const { dir, file } = snapshotFile()
  const info = inspectSnapshotFile(file)
  expect(info.expectedSha256?.length).toBe(32)
  expect(info.dbBytes % 512).toBe(0)
  verifySnapshotFile(info, false)
  const bytes = readFileSync(file)
  bytes[100] = bytes[100]! ^ 1
  const damaged = join(dir, "damaged.db")
  writeFileSync(damaged, bytes)
  expect(() => verifySnapshotFile(inspectSnapshotFile(damaged), false)).toThrow(/^expected sha256 \[[\d ]+\], got \[[\d ]+\]$/)
  verifySnapshotFile(inspectSnapshotFile(damaged), true)
  const raw = snapshotFile(false).file
  expect(inspectSnapshotFile(raw).expectedSha256).toBeUndefined()
  expect(() => verifySnapshotFile(inspectSnapshotFile(raw), false)).toThrow("snapshot missing hash but --skip-hash-check=false")
  expect(() => inspectSnapshotFile(join(dir, "none"))).toThrow(`stat ${join(dir, "none")}: no such file or directory`)
})

test("snapshotStatus() of an older SQLite snapshot counts the keys of its etcd-format db, each once; equal contents give equal hashes", () => {
  const a = snapshotStatus(snapshotFile().file)
  const b = snapshotStatus(snapshotFile(false).file)
  expect(a.revision).toBe(6)
  // key: 5 revisions; meta: consistent_index; members, members_removed: 1 each; cluster: clusterVersion; auth: authRevision.
  expect(a.totalKey).toBe(5 + 1 + 1 + 1 + 1 + 1)
  expect(a.hash).toBe(b.hash)
  expect(a.totalSize).toBe(b.totalSize)
  expect(formatStatus(a, "simple")).toBe(`${a.hash.toString(16)}, 6, ${a.totalKey}, ${humanizeBytes(a.totalSize)}\n`)
  expect(JSON.parse(formatStatus(a, "json"))).toEqual({ hash: a.hash, revision: 6, totalKey: a.totalKey, totalSize: a.totalSize })
})

test("humanizeBytes() prints sizes as go-humanize does", () => {
  expect(humanizeBytes(0)).toBe("0 B")
  expect(humanizeBytes(9)).toBe("9 B")
  expect(humanizeBytes(999)).toBe("999 B")
  expect(humanizeBytes(1000)).toBe("1.0 kB")
  expect(humanizeBytes(57344)).toBe("57 kB")
  expect(humanizeBytes(2101248)).toBe("2.1 MB")
  expect(humanizeBytes(249888)).toBe("250 kB")
})

test("formatStatus() table has etcdctl's layout", () => {
  expect(formatStatus({ hash: 0xfe01cf57, revision: 10, totalKey: 7, totalSize: 2101248 }, "table")).toBe(
    [
      "+----------+----------+------------+------------+",
      "|   HASH   | REVISION | TOTAL KEYS | TOTAL SIZE |",
      "+----------+----------+------------+------------+",
      "| fe01cf57 |       10 |          7 |     2.1 MB |",
      "+----------+----------+------------+------------+",
      "",
    ].join("\n"),
  )
})

test("parseInitialCluster() gives etcd's member ids and refuses malformed entries", () => {
  const members = parseInitialCluster("a=http://h1:2380,b=http://h2:2380,a=http://h1:2381", "tok")
  expect(members.map((m) => m.name)).toEqual(["a", "b"])
  expect(members[0]!.id).toBe(computeMemberId(["http://h1:2380", "http://h1:2381"], "tok"))
  expect(() => parseInitialCluster("a", "t")).toThrow("want name=url")
  expect(() => parseInitialCluster("a=not a url", "t")).toThrow("invalid peer URL")
})

test("restoreSnapshot() lays out a data dir: db with the new membership and consistent index, raft snapshot, WAL", () => {
  const { dir, file } = snapshotFile()
  const dataDir = join(dir, "restored")
  const initialCluster = "m1=http://127.0.0.1:1,m2=http://127.0.0.1:2,m3=http://127.0.0.1:3"
  const restored = restoreSnapshot({
    snapshotPath: file,
    name: "m2",
    initialCluster,
    initialClusterToken: "tok",
    initialAdvertisePeerUrls: ["http://127.0.0.1:2"],
    dataDir,
    skipHashCheck: false,
  })
  const ids = [1, 2, 3].map((i) => computeMemberId([`http://127.0.0.1:${i}`], "tok"))
  expect(restored).toEqual({ memberId: ids[1]!, clusterId: computeClusterId(ids), index: 3 })

  const backend = Backend.open({ path: backendPathOf(dataDir) })
  try {
    expect(backend.consistentIndex()).toEqual({ index: 3, term: 1 })
    const membership = new Membership(backend)
    expect(membership.list().length).toBe(3)
    ids.forEach((id, i) => expect(membership.get(id)).toMatchObject({ name: `m${i + 1}`, peerUrls: [`http://127.0.0.1:${i + 1}`], isLearner: false }))
    expect(membership.has(0x1234n)).toBe(false)
    expect(membership.isRemoved(0x99n)).toBe(false)
    expect(membership.clusterId()).toBe(restored.clusterId)
    const store = MvccStore.open({ backend })
    expect(store.currentRevision()).toBe(6)
  } finally {
    backend.close()
  }
  const snap = new Snapshotter({ fs: nodeFsPort, dir: snapDirOf(dataDir) }).load()
  expect(snap?.metadata).toEqual({ index: 3, term: 1, confState: { voters: ids, learners: [] } })
  const walDir = walDirOf(dataDir)
  expect(Wal.validSnapshots({ fs: nodeFsPort, dir: walDir })).toContainEqual({ index: 3, term: 1 })
  const opened = Wal.open({ fs: nodeFsPort, dir: walDir, snapshot: { index: 3, term: 1 } })
  try {
    expect(opened.metadata).toEqual({ memberId: ids[1]!, clusterId: restored.clusterId })
    expect(opened.hardState).toEqual({ term: 1, vote: 0n, commit: 3 })
    expect(opened.entries).toEqual([])
  } finally {
    opened.wal.close()
  }
})

test("restoreSnapshot() refuses a name missing from --initial-cluster, mismatched advertise URLs and a non-empty data dir", () => {
  const { dir, file } = snapshotFile()
  const base = { snapshotPath: file, initialCluster: "m1=http://127.0.0.1:1", initialClusterToken: "t", skipHashCheck: false }
  expect(() => restoreSnapshot({ ...base, name: "zz", initialAdvertisePeerUrls: ["http://127.0.0.1:1"], dataDir: join(dir, "x") })).toThrow(
    `couldn't find local name "zz" in the initial cluster configuration`,
  )
  expect(() => restoreSnapshot({ ...base, name: "m1", initialAdvertisePeerUrls: ["http://127.0.0.1:9"], dataDir: join(dir, "x") })).toThrow(
    "missing from --initial-advertise-peer-urls",
  )
  mkdirSync(join(dir, "full"))
  writeFileSync(join(dir, "full", "f"), "x")
  expect(() => restoreSnapshot({ ...base, name: "m1", initialAdvertisePeerUrls: ["http://127.0.0.1:1"], dataDir: join(dir, "full") })).toThrow(
    `data-dir "${join(dir, "full")}" not empty or could not be read`,
  )
})

test("restoreSnapshot() with --bump-revision and --mark-compacted: the store continues past the bump, older revisions compacted", () => {
  const { dir, file } = snapshotFile()
  const base = { snapshotPath: file, name: "m1", initialCluster: "m1=http://127.0.0.1:1", initialClusterToken: "t", initialAdvertisePeerUrls: ["http://127.0.0.1:1"], skipHashCheck: false }
  expect(() => restoreSnapshot({ ...base, dataDir: join(dir, "no"), bumpRevision: 10 })).toThrow("--bump-revision needs --mark-compacted")
  restoreSnapshot({ ...base, dataDir: join(dir, "bumped"), bumpRevision: 1000, markCompacted: true })
  const backend = Backend.open({ path: backendPathOf(join(dir, "bumped")) })
  try {
    const store = MvccStore.open({ backend })
    expect(store.currentRevision()).toBe(1006)
    expect(store.compactedRevision()).toBe(1006)
    store.finishCompaction()
    const latest = store.rangeRequest({ key: Buffer.from("a"), rangeEnd: Buffer.from("z") })
    expect(latest.kvs.map((kv) => Buffer.from(kv.value).toString())).toEqual(["v-a", "v-b", "v-c", "v-d", "v-e"])
    expect(() => store.rangeRequest({ key: Buffer.from("a"), revision: 5 })).toThrow("required revision has been compacted")
    const txn = store.write()
    txn.put(Buffer.from("after"), Buffer.from("1"), 0n)
    expect(txn.end().revision).toBe(1007)
  } finally {
    backend.close()
  }
})
