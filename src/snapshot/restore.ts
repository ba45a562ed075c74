// `tskv snapshot restore`: a fresh data dir from a snapshot file, for a new
// cluster (etcd's snapshot restore). The file is an etcd-format bbolt db (a
// snapshot from etcd 3.4/3.5 or tskv, or a stopped etcd member's
// member/snap/db, converted by etcd_import.ts) or an older tskv SQLite one. The db keeps every key, revision, lease
// and auth setting; the membership is replaced by --initial-cluster with a
// new cluster id; the raft log starts over from a snapshot at index n (the
// number of members), term 1, whose configuration is those members, and the
// db's consistent index is set to n so that the member applies nothing twice.
//
//   <data-dir>/tskv/snap/db                       the db (lib/data_dir.ts)
//   <data-dir>/tskv/snap/<term>-<index>.snap      raft snapshot metadata (voters)
//   <data-dir>/tskv/wal/ (or --wal-dir)           WAL: metadata {member, cluster}, snapshot marker, hard state

import { Database } from "bun:sqlite"
import { existsSync, mkdirSync, readdirSync, rmSync } from "node:fs"
import { join } from "node:path"
import { Backend } from "../backend/backend"
import { snapDirOf, walDirOf } from "../lib/data_dir"
import { nodeFsPort } from "../lib/fs_port"
import { encodeNumber, MvccStore } from "../mvcc/kv_store"
import { NONE, type NodeId } from "../raft/types"
import { computeClusterId, computeMemberId } from "../server/ids"
import { Membership } from "../server/membership"
import { Snapshotter } from "../snap/snapshotter"
import { Wal } from "../wal/wal"
import { BoltError } from "../bbolt/format"
import { importEtcdDb } from "./etcd_import"
import { copyDb, detectDbFormat, inspectSnapshotFile, SnapshotFileError, verifySnapshotFile } from "./snapshot_file"

export interface RestoreOptions {
  snapshotPath: string
  name: string
  /** name=url[,name=url...] */
  initialCluster: string
  initialClusterToken: string
  initialAdvertisePeerUrls: string[]
  dataDir: string
  /** Empty: <data-dir>/tskv/wal. */
  walDir?: string
  skipHashCheck: boolean
  /**
   * etcdutl's --bump-revision: the restored store continues from its revision
   * plus this many, so that clients never see a revision again with other
   * data. tskv needs --mark-compacted with it (the skipped revisions read as compacted).
   */
  bumpRevision?: number
  /** etcdutl's --mark-compacted: every revision up to the (bumped) current one reads as compacted. */
  markCompacted?: boolean
}

export interface RestoredMember {
  memberId: NodeId
  clusterId: NodeId
  /** The raft index (and consistent index) the member starts from. */
  index: number
}

export interface ClusterMember {
  id: NodeId
  name: string
  peerUrls: string[]
}

/** The members named by --initial-cluster, with etcd's ids. */
export function parseInitialCluster(text: string, token: string): ClusterMember[] {
  const urlsByName = new Map<string, string[]>()
  for (const part of text.split(",")) {
    const at = part.indexOf("=")
    if (at <= 0 || at === part.length - 1) throw new SnapshotFileError(`invalid --initial-cluster entry ${JSON.stringify(part)} (want name=url)`)
    const name = part.slice(0, at)
    const url = part.slice(at + 1)
    try {
      new URL(url)
    } catch {
      throw new SnapshotFileError(`invalid peer URL ${JSON.stringify(url)} in --initial-cluster`)
    }
    urlsByName.set(name, [...(urlsByName.get(name) ?? []), url])
  }
  const members = [...urlsByName].map(([name, peerUrls]) => ({ id: computeMemberId(peerUrls, token), name, peerUrls }))
  const ids = new Set(members.map((m) => m.id))
  if (ids.size !== members.length) throw new SnapshotFileError("duplicate peer URLs in --initial-cluster")
  return members
}

export function restoreSnapshot(options: RestoreOptions): RestoredMember {
  const members = parseInitialCluster(options.initialCluster, options.initialClusterToken)
  const self = members.find((m) => m.name === options.name)
  if (self === undefined) throw new SnapshotFileError(`couldn't find local name "${options.name}" in the initial cluster configuration`)
  const advertised = [...options.initialAdvertisePeerUrls].sort().join(",")
  if (advertised !== [...self.peerUrls].sort().join(",")) {
    throw new SnapshotFileError(
      `--initial-cluster has ${self.name}=${[...self.peerUrls].sort().join(",")} but missing from --initial-advertise-peer-urls=${advertised}`,
    )
  }
  const bump = options.bumpRevision ?? 0
  if (!Number.isSafeInteger(bump) || bump < 0) throw new SnapshotFileError(`invalid --bump-revision ${bump}`)
  if (bump > 0 && !options.markCompacted) throw new SnapshotFileError("--bump-revision needs --mark-compacted in tskv")
  const file = inspectSnapshotFile(options.snapshotPath)
  verifySnapshotFile(file, options.skipHashCheck)
  if (existsSync(options.dataDir) && readdirSync(options.dataDir).length > 0) {
    throw new SnapshotFileError(`data-dir ${JSON.stringify(options.dataDir)} not empty or could not be read`)
  }
  const walDir = walDirOf(options.dataDir, options.walDir ?? "")
  if (existsSync(walDir) && readdirSync(walDir).length > 0) {
    throw new SnapshotFileError(`wal-dir ${JSON.stringify(walDir)} not empty or could not be read`)
  }
  const clusterId = computeClusterId(members.map((m) => m.id))
  const index = members.length
  const term = 1
  const snapDir = snapDirOf(options.dataDir)
  mkdirSync(snapDir, { recursive: true, mode: 0o700 })
  try {
    rewriteDb(file, join(snapDir, "db"), { members, clusterId, index, term, bump, markCompacted: options.markCompacted ?? false })
    new Snapshotter({ fs: nodeFsPort, dir: snapDir, maxSnapshots: 0 }).save({
      metadata: { index, term, confState: { voters: members.map((m) => m.id), learners: [] } },
      data: new Uint8Array(0),
    })
    mkdirSync(walDir, { recursive: true, mode: 0o700 })
    const wal = Wal.create({ fs: nodeFsPort, dir: walDir, metadata: { memberId: self.id, clusterId } })
    try {
      wal.saveSnapshot({ index, term })
      wal.save({ term, vote: NONE, commit: index }, [])
    } finally {
      wal.close()
    }
  } catch (e) {
    rmSync(options.dataDir, { recursive: true, force: true })
    if (options.walDir) rmSync(options.walDir, { recursive: true, force: true })
    throw e
  }
  return { memberId: self.id, clusterId, index }
}

/** Copies the db and replaces its membership and consistent index. */
function rewriteDb(
  file: ReturnType<typeof inspectSnapshotFile>,
  dbPath: string,
  target: { members: ClusterMember[]; clusterId: NodeId; index: number; term: number; bump: number; markCompacted: boolean },
): void {
  const format = detectDbFormat(file)
  if (format === "bbolt") {
    try {
      importEtcdDb({ sourcePath: file.path, sourceBytes: file.dbBytes, targetPath: dbPath })
    } catch (e) {
      if (e instanceof BoltError) throw new SnapshotFileError(e.message)
      throw e
    }
  } else if (format === "sqlite") {
    copyDb(file, dbPath)
  } else {
    throw new SnapshotFileError("invalid database")
  }
  let backend: Backend
  let revision = 0
  try {
    backend = Backend.open({ path: dbPath })
    const tables = backend.db.query<{ name: string }, []>("SELECT name FROM sqlite_master WHERE type = 'table'").all().map((t) => t.name)
    if (!tables.includes("mvcc_kv")) throw new Error("no mvcc tables")
  } catch {
    throw new SnapshotFileError("invalid database")
  }
  try {
    const membership = new Membership(backend)
    backend.begin()
    backend.db.exec("DELETE FROM members")
    backend.db.exec("DELETE FROM members_removed")
    backend.noteWrites(2)
    membership.reload()
    for (const m of target.members) membership.add({ id: m.id, name: m.name, peerUrls: m.peerUrls, clientUrls: [], isLearner: false })
    membership.setClusterId(target.clusterId)
    backend.commitDurably()
    revision = MvccStore.open({ backend }).currentRevision()
  } finally {
    backend.close()
  }
  // The consistent index goes back to the new log's start: past Backend, which only lets it grow.
  const db = new Database(dbPath, { strict: true })
  try {
    const value = Buffer.alloc(16)
    value.writeBigUInt64BE(BigInt(target.index), 0)
    value.writeBigUInt64BE(BigInt(target.term), 8)
    const setMeta = db.query("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
    setMeta.run("consistent_index", value)
    if (target.markCompacted) {
      // The mvcc store's compaction marker (kv_store.ts): compacted up to here, old rows dropped in the background.
      setMeta.run("mvcc_compact_rev", encodeNumber(revision + target.bump))
      setMeta.run("mvcc_compact_cursor", encodeNumber(0))
    }
    db.exec("PRAGMA wal_checkpoint(TRUNCATE)")
  } finally {
    db.close()
  }
}
