// A tskv db (a consistent SQLite copy of a member's backend) as the bbolt db
// etcd 3.4 would hold for the same state: what Maintenance.Snapshot streams,
// so that etcdctl's snapshot status and restore take it for etcd's own.
// Rows are read in order with SQLite cursors and written page by page
// (bbolt/writer.ts): memory stays bounded whatever the size of the db.
//
// To a file, in one pass (the metas last). To a stream, in two: a plan reads
// only the sizes of the key bucket's rows (length() of the blobs, no bytes)
// and lays the db out, so that its metas and size are known before the first
// byte; then the pages go out in file order as they are made, with no file in
// between. Both passes read in the caller's read transaction, so they see the
// same rows; the writer's meta must come out as the plan's (else the export
// fails before its end, and the client gets an error, not a damaged db).

import { Database } from "bun:sqlite"
import { rmSync } from "node:fs"
import {
  encodeAlarmMember, encodeLease, encodeMember, encodeRevision, encodeUint64, type LeaseRecord, REVISION_BYTES,
  type Revision, writeRevision,
} from "../bbolt/etcd_layout"
import type { Meta } from "../bbolt/format"
import { BoltWriter, type BucketTree, ChunkedSink, metaPages } from "../bbolt/writer"
import { assert } from "../lib/assert"
import { encodeRole, encodeUser } from "../pb/authpb"
import { type KeyValueInit, writeKeyValue } from "../pb/mvccpb"
import { sizeBig, sizeInt64, sizeVarint32 } from "../pb/wire"

/** etcd's cluster version for a 3.4 cluster (the cluster bucket). */
export const ETCD_CLUSTER_VERSION = "3.4.0"

/** Where a streamed export goes: its size first, then its bytes in order. */
export interface ExportStream {
  /** The db's size, from the plan, before the first chunk; returns the bytes per chunk (a multiple of 4096; the last chunk is shorter). */
  size(bytes: number): number
  /** The next bytes of the db (a buffer of its own, which the callee may keep). */
  chunk(bytes: Uint8Array): void
}

export interface ExportOptions {
  /**
   * The tskv SQLite db to read: a path (opened read-only), or an open
   * connection inside a read transaction, whose snapshot of the db is what
   * gets converted (a serving member's own file: no copy needed).
   */
  source: string | Database
  /** The bbolt file to create (must not exist), or the stream to send it to. */
  target: string | ExportStream
  /** fsync the file at the end (default true). */
  sync?: boolean
}

export interface ExportResult {
  bytes: number
  rows: number
}

/** Converts in one go (the CLI and tests). */
export function exportEtcdDb(options: ExportOptions): ExportResult {
  return drain(exportSteps(options))
}

/**
 * The conversion as a generator: a stream's yields each follow a chunk it was
 * given, points where the caller may pause (a file's conversion never yields).
 */
export function* exportSteps(options: ExportOptions): Generator<void, ExportResult> {
  const owned = typeof options.source === "string"
  const db = typeof options.source === "string" ? new Database(options.source, { readonly: true, strict: true }) : options.source
  const target = options.target
  let writer: BoltWriter | undefined
  try {
    const buckets = smallBuckets(db)
    if (typeof target === "string") {
      writer = new BoltWriter(target)
      const rows = drain(writeBuckets(writer, buckets, db, () => false))
      return { bytes: writer.finish({ sync: options.sync !== false }), rows }
    }
    const plan = new BoltWriter(null)
    const rows = drain(writeBuckets(plan, buckets, db, () => false))
    const bytes = plan.finish()
    const chunkBytes = target.size(bytes)
    assert(chunkBytes > 0 && chunkBytes % plan.pageBytes === 0, "snapshot export: chunks of whole pages")
    let chunks = 0
    const sink = new ChunkedSink(chunkBytes, (chunk) => {
      chunks++
      target.chunk(chunk)
    }, false)
    sink.region(2 * plan.pageBytes).set(metaPages(plan.meta!))
    writer = new BoltWriter(sink)
    let seen = 0
    const written = yield* writeBuckets(writer, buckets, db, () => chunks !== seen && (seen = chunks) > 0)
    writer.finish()
    // Else the last chunk is not followed by the end (and its sha256): the client gets an error.
    assert(written === rows && sameMeta(writer.meta!, plan.meta!), "snapshot export: the layout differs from its plan")
    return { bytes, rows }
  } catch (e) {
    writer?.abort()
    if (typeof target === "string") rmSync(target, { force: true })
    throw e
  } finally {
    if (owned) db.close()
  }
}

/** Runs a generator to its end. */
function drain<T>(steps: Generator<void, T>): T {
  for (;;) {
    const next = steps.next()
    if (next.done) return next.value
  }
}

function sameMeta(a: Meta, b: Meta): boolean {
  return a.rootPgid === b.rootPgid && a.pgid === b.pgid && a.pageBytes === b.pageBytes && a.txid === b.txid
}

type Entry = [Uint8Array, Uint8Array]

/** etcd's buckets but key, in name order (key goes between cluster and lease). */
interface SmallBuckets {
  before: [string, Entry[]][]
  after: [string, Entry[]][]
}

function smallBuckets(db: Database): SmallBuckets {
  const tables = new Set(db.query<{ name: string }, []>("SELECT name FROM sqlite_master WHERE type = 'table'").all().map((t) => t.name))
  const has = (t: string): boolean => tables.has(t)
  const meta = (key: string): Uint8Array | undefined => db.query<{ value: Uint8Array }, [string]>("SELECT value FROM meta WHERE key = ?").get(key)?.value
  return {
    before: [
      ["alarm", has("alarms") ? alarmEntries(db) : []],
      ["auth", authEntries(meta)],
      ["authRoles", has("auth_role") ? roleEntries(db) : []],
      ["authUsers", has("auth_user") ? userEntries(db) : []],
      ["cluster", [[Buffer.from("clusterVersion"), Buffer.from(ETCD_CLUSTER_VERSION)]]],
    ],
    after: [
      ["lease", has("lease") ? leaseEntries(db) : []],
      ["members", has("members") ? memberEntries(db) : []],
      ["members_removed", has("members_removed") ? removedEntries(db) : []],
      ["meta", metaEntries(meta)],
    ],
  }
}

/**
 * Writes every bucket (a planning writer: sizes only), yielding after a key
 * row when pause() says so. Returns the key bucket's rows.
 */
function* writeBuckets(writer: BoltWriter, buckets: SmallBuckets, db: Database, pause: () => boolean): Generator<void, number> {
  for (const [name, entries] of buckets.before) writer.bucket(name, entries)
  const keys = writer.openBucket("key", { fillPercent: 0.9 })
  const hasKv = db.query<{ n: number }, []>("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'mvcc_kv'").get()!.n > 0
  let rows = 0
  if (hasKv) rows = writer.planning ? planKeyRows(db, keys) : yield* writeKeyRows(db, keys, pause)
  keys.close()
  for (const [name, entries] of buckets.after) writer.bucket(name, entries)
  return rows
}

interface SizeRow {
  kl: number
  main: number
  cr: number
  ver: number
  lease: string | null
  vl: number
}

interface KvRow {
  key: Uint8Array
  main: number
  sub: number
  cr: number
  ver: number
  lease: string | null
  value: Uint8Array
}

// Row ids are in revision order (kv_store.ts), so no sort: ORDER BY main, sub made SQLite
// build a temp B-tree of every row first. The writer asserts the order all the same.
const SIZES_SQL = "SELECT length(key) AS kl, main, create_rev AS cr, version AS ver, CAST(lease AS TEXT) AS lease, length(value) AS vl FROM mvcc_kv ORDER BY id"
const ROWS_SQL = "SELECT key, main, sub, create_rev AS cr, version AS ver, CAST(lease AS TEXT) AS lease, value FROM mvcc_kv ORDER BY id"

/** The key bucket by sizes: a revision key and an mvccpb.KeyValue per row (a tombstone's holds only the key). */
function planKeyRows(db: Database, keys: BucketTree): number {
  let rows = 0
  for (const r of db.query<SizeRow, []>(SIZES_SQL).iterate()) {
    const lease = r.lease === null ? 0n : BigInt(r.lease)
    keys.reserve(r.ver === 0 ? REVISION_BYTES + 1 : REVISION_BYTES, keyValueBytes(r, lease))
    rows++
  }
  return rows
}

/** The key bucket's rows, each encoded in place in the writer's scratch buffer; yields when pause() says so. */
function* writeKeyRows(db: Database, keys: BucketTree, pause: () => boolean): Generator<void, number> {
  let rows = 0
  const rev: Revision = { main: 0, sub: 0, tombstone: false }
  const kv: KeyValueInit = {}
  for (const r of db.query<KvRow, []>(ROWS_SQL).iterate()) {
    const lease = r.lease === null ? 0n : BigInt(r.lease)
    rev.main = r.main
    rev.sub = r.sub
    rev.tombstone = r.ver === 0
    const keyBytes = rev.tombstone ? REVISION_BYTES + 1 : REVISION_BYTES
    const valueBytes = keyValueBytes({ kl: r.key.byteLength, main: r.main, cr: r.cr, ver: r.ver, vl: r.value.byteLength }, lease)
    const at = keys.reserve(keyBytes, valueBytes)
    const buf = keys.scratch()
    writeRevision(buf, at, rev)
    kv.key = r.key
    kv.createRevision = rev.tombstone ? 0 : r.cr
    kv.modRevision = rev.tombstone ? 0 : r.main
    kv.version = r.ver
    kv.value = rev.tombstone ? undefined : r.value
    kv.lease = rev.tombstone ? 0n : lease
    const end = writeKeyValue(kv, buf, at + keyBytes)
    assert(end === at + keyBytes + valueBytes, "KeyValue size")
    rows++
    if (pause()) yield
  }
  return rows
}

/** The size of a row's mvccpb.KeyValue (default-valued fields are left out; a tombstone's holds only the key). */
function keyValueBytes(r: Omit<SizeRow, "lease">, lease: bigint): number {
  let n = r.kl > 0 ? 1 + sizeVarint32(r.kl) + r.kl : 0
  if (r.ver === 0) return n
  if (r.cr !== 0) n += 1 + sizeInt64(r.cr)
  if (r.main !== 0) n += 1 + sizeInt64(r.main)
  n += 1 + sizeInt64(r.ver)
  if (r.vl > 0) n += 1 + sizeVarint32(r.vl) + r.vl
  if (lease !== 0n) n += 1 + sizeBig(lease)
  return n
}

/**
 * A read-only connection to a live db file pinned at its last commit (a read
 * transaction that has read once): the source of exportEtcdDbAsync() while the
 * member goes on writing through its own connection. end() releases it.
 */
export function pinnedReader(path: string): { db: Database; end(): void } {
  const db = new Database(path, { readonly: true, strict: true })
  db.exec("BEGIN")
  db.query("SELECT count(*) FROM sqlite_master").get()
  return {
    db,
    end: () => {
      db.exec("COMMIT")
      db.close()
    },
  }
}

function sortedByKey(entries: Entry[]): Entry[] {
  return entries.sort((a, b) => Buffer.compare(a[0], b[0]))
}

function alarmEntries(db: Database): Entry[] {
  const rows = db.query<{ member_id: string; alarm: number }, []>("SELECT member_id, alarm FROM alarms").all()
  return sortedByKey(rows.map((r) => [encodeAlarmMember(BigInt(`0x${r.member_id}`), r.alarm), new Uint8Array(0)]))
}

function authEntries(meta: (key: string) => Uint8Array | undefined): Entry[] {
  const entries: Entry[] = []
  const enabled = meta("auth_enabled")
  if (enabled !== undefined) entries.push([Buffer.from("authEnabled"), Uint8Array.of(enabled[0] === 1 ? 1 : 0)])
  const revision = meta("auth_revision")
  entries.push([Buffer.from("authRevision"), revision?.byteLength === 8 ? revision : encodeUint64(1)])
  return entries
}

function roleEntries(db: Database): Entry[] {
  const roles = db.query<{ name: string }, []>("SELECT name FROM auth_role").all()
  const perms = db.query<{ key: Uint8Array; range_end: Uint8Array; perm_type: number }, [string]>(
    "SELECT key, range_end, perm_type FROM auth_perm WHERE role = ? ORDER BY key, range_end",
  )
  return sortedByKey(
    roles.map((r) => [
      Buffer.from(r.name),
      encodeRole({
        name: Buffer.from(r.name),
        keyPermission: perms.all(r.name).map((p) => ({ permType: p.perm_type, key: p.key, rangeEnd: p.range_end })),
      }),
    ]),
  )
}

function userEntries(db: Database): Entry[] {
  const users = db.query<{ name: string; password: string | null; no_password: number; roles: string }, []>(
    "SELECT name, password, no_password, roles FROM auth_user",
  ).all()
  return sortedByKey(
    users.map((u) => [
      Buffer.from(u.name),
      encodeUser({
        name: Buffer.from(u.name),
        password: Buffer.from(u.password ?? ""),
        roles: [...(JSON.parse(u.roles) as string[])].sort(),
        // etcdctl 3.4 always sends the options, so etcd stores them, empty or not.
        options: { noPassword: u.no_password !== 0 },
      }),
    ]),
  )
}

function leaseEntries(db: Database): Entry[] {
  const rows = db.query<{ id: string; ttl: number; remaining_ttl: number }, []>(
    "SELECT CAST(id AS TEXT) AS id, ttl, remaining_ttl FROM lease",
  ).all()
  return sortedByKey(
    rows.map((r) => {
      const lease: LeaseRecord = { id: BigInt(r.id), ttl: r.ttl, remainingTtl: r.remaining_ttl }
      return [encodeUint64(BigInt.asUintN(64, lease.id)), encodeLease(lease)]
    }),
  )
}

function memberEntries(db: Database): Entry[] {
  const rows = db.query<{ id: string; name: string; peer_urls: string; client_urls: string; is_learner: number }, []>(
    "SELECT id, name, peer_urls, client_urls, is_learner FROM members",
  ).all()
  return sortedByKey(
    rows.map((r) => {
      const id = BigInt(`0x${r.id}`)
      const member = {
        id, name: r.name, peerUrls: JSON.parse(r.peer_urls) as string[], clientUrls: JSON.parse(r.client_urls) as string[],
        isLearner: r.is_learner === 1,
      }
      return [Buffer.from(id.toString(16)), encodeMember(member)]
    }),
  )
}

function removedEntries(db: Database): Entry[] {
  const rows = db.query<{ id: string }, []>("SELECT id FROM members_removed").all()
  return sortedByKey(rows.map((r) => [Buffer.from(BigInt(`0x${r.id}`).toString(16)), Buffer.from("removed")]))
}

function metaEntries(meta: (key: string) => Uint8Array | undefined): Entry[] {
  const entries: Entry[] = []
  const ci = meta("consistent_index")
  entries.push([Buffer.from("consistent_index"), ci !== undefined && ci.byteLength >= 8 ? ci.subarray(0, 8) : encodeUint64(0)])
  const compactRaw = meta("mvcc_compact_rev")
  const compacted = compactRaw?.byteLength === 8 ? Number(new DataView(compactRaw.buffer, compactRaw.byteOffset, 8).getBigInt64(0)) : 0
  const cursorRaw = meta("mvcc_compact_cursor")
  const pending = cursorRaw?.byteLength === 8 && new DataView(cursorRaw.buffer, cursorRaw.byteOffset, 8).getBigInt64(0) >= 0n
  if (compacted > 0) {
    // A compaction still deleting rows is "scheduled, not finished": etcd resumes it on start.
    if (!pending) entries.push([Buffer.from("finishedCompactRev"), encodeRevision(compacted, 0)])
    entries.push([Buffer.from("scheduledCompactRev"), encodeRevision(compacted, 0)])
  }
  return entries
}
