// A tskv db (a consistent SQLite copy of a member's backend) as the bbolt db
// etcd 3.4 would hold for the same state: what Maintenance.Snapshot streams,
// so that etcdctl's snapshot status and restore take it for etcd's own.
// Rows are read in order with SQLite cursors and written page by page
// (bbolt/writer.ts): memory stays bounded whatever the size of the db. The
// work runs in slices (exportSteps() yields between them) so that a member
// can convert while it keeps serving.

import { Database } from "bun:sqlite"
import { rmSync } from "node:fs"
import {
  encodeAlarmMember, encodeLease, encodeMember, encodeRevision, encodeUint64, type LeaseRecord,
} from "../bbolt/etcd_layout"
import { BoltWriter } from "../bbolt/writer"
import { encodeRole, encodeUser } from "../pb/authpb"
import { encodeKeyValue } from "../pb/mvccpb"

/** etcd's cluster version for a 3.4 cluster (the cluster bucket). */
export const ETCD_CLUSTER_VERSION = "3.4.0"

/** Rows converted between two yields of exportSteps(). */
const ROWS_PER_STEP = 20_000

export interface ExportOptions {
  /**
   * The tskv SQLite db to read: a path (opened read-only), or an open
   * connection inside a read transaction, whose snapshot of the db is what
   * gets converted (a serving member's own file: no copy needed).
   */
  source: string | Database
  /** The bbolt file to create (must not exist). */
  targetPath: string
  /** Called after each slice with the key-bucket rows done so far. */
  onProgress?: (rows: number) => void
  /** fsync the file at the end (default true; false for a temp file that is streamed and dropped). */
  sync?: boolean
}

export interface ExportResult {
  bytes: number
  rows: number
}

/** Converts in one go (the CLI and tests). */
export function exportEtcdDb(options: ExportOptions): ExportResult {
  const steps = exportSteps(options)
  for (;;) {
    const next = steps.next()
    if (next.done) return next.value
  }
}

/** Converts, giving the event loop a turn between slices (a serving member). */
export async function exportEtcdDbAsync(options: ExportOptions): Promise<ExportResult> {
  const steps = exportSteps(options)
  for (;;) {
    const next = steps.next()
    if (next.done) return next.value
    await new Promise((resolve) => setImmediate(resolve))
  }
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

/** The conversion as a generator: each yield is a point where the caller may pause. */
export function* exportSteps(options: ExportOptions): Generator<void, ExportResult> {
  const owned = typeof options.source === "string"
  const db = typeof options.source === "string" ? new Database(options.source, { readonly: true, strict: true }) : options.source
  const writer = new BoltWriter(options.targetPath)
  let rows = 0
  try {
    const tables = new Set(db.query<{ name: string }, []>("SELECT name FROM sqlite_master WHERE type = 'table'").all().map((t) => t.name))
    const has = (t: string): boolean => tables.has(t)
    const meta = (key: string): Uint8Array | undefined => db.query<{ value: Uint8Array }, [string]>("SELECT value FROM meta WHERE key = ?").get(key)?.value

    writer.bucket("alarm", has("alarms") ? alarmEntries(db) : [])
    writer.bucket("auth", authEntries(meta))
    writer.bucket("authRoles", has("auth_role") ? roleEntries(db) : [])
    writer.bucket("authUsers", has("auth_user") ? userEntries(db) : [])
    writer.bucket("cluster", [[Buffer.from("clusterVersion"), Buffer.from(ETCD_CLUSTER_VERSION)]])

    const keys = writer.openBucket("key", { fillPercent: 0.9 })
    if (has("mvcc_kv")) {
      const scan = db.query<KvRow, []>(
        // Row ids are in revision order (kv_store.ts), so no sort: ORDER BY main, sub made SQLite
        // build a temp B-tree of every row first. put() asserts the order all the same.
        "SELECT key, main, sub, create_rev AS cr, version AS ver, CAST(lease AS TEXT) AS lease, value FROM mvcc_kv ORDER BY id",
      )
      for (const row of scan.iterate()) {
        if (row.ver === 0) {
          keys.put(encodeRevision(row.main, row.sub, true), encodeKeyValue({ key: row.key }))
        } else {
          const kv = encodeKeyValue({
            key: row.key, createRevision: row.cr, modRevision: row.main, version: row.ver, value: row.value,
            lease: row.lease === null ? 0n : BigInt(row.lease),
          })
          keys.put(encodeRevision(row.main, row.sub), kv)
        }
        if (++rows % ROWS_PER_STEP === 0) {
          options.onProgress?.(rows)
          yield
        }
      }
    }
    keys.close()
    options.onProgress?.(rows)

    writer.bucket("lease", has("lease") ? leaseEntries(db) : [])
    writer.bucket("members", has("members") ? memberEntries(db) : [])
    writer.bucket("members_removed", has("members_removed") ? removedEntries(db) : [])
    writer.bucket("meta", metaEntries(meta))
    const bytes = writer.finish({ sync: options.sync !== false })
    return { bytes, rows }
  } catch (e) {
    writer.abort()
    rmSync(options.targetPath, { force: true })
    throw e
  } finally {
    if (owned) db.close()
  }
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

type Entry = [Uint8Array, Uint8Array]

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
