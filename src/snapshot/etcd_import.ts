// An etcd bbolt db (a snapshot, or a stopped member's member/snap/db; etcd
// 3.4 or 3.5) as a tskv db: every revision of the key bucket, leases, users,
// roles, alarms and the compaction state. The rooms create their tables as
// they would on a first start; the rows go in with prepared statements inside
// one transaction, read from the bbolt file page by page. Membership and the
// consistent index are left to the restore, which replaces them.

import { createHash } from "node:crypto"
import { Backend } from "../backend/backend"
import { decodeAlarmMember, decodeLease, decodeRevision, decodeUint64, encodeUint64 } from "../bbolt/etcd_layout"
import { BoltError } from "../bbolt/format"
import { BoltReader, type BucketRef } from "../bbolt/reader"
import { AuthStore } from "../auth/store"
import { Lessor } from "../lease/lessor"
import { systemClock } from "../lib/clock"
import { MvccStore, encodeNumber } from "../mvcc/kv_store"
import { decodeRole, decodeUser } from "../pb/authpb"
import { decodeKeyValue } from "../pb/mvccpb"
import { Alarms } from "../server/alarms"
import { Membership } from "../server/membership"

export interface ImportOptions {
  /** The bbolt file. */
  sourcePath: string
  /** Bytes of it that are the db (without a snapshot's sha256 trailer). */
  sourceBytes: number
  /** The tskv db file to create. */
  targetPath: string
}

export interface ImportResult {
  /** Rows of the key bucket (revisions). */
  revisions: number
  /** The store's revision after the import. */
  revision: number
  compactRevision: number
}

/** Buckets an etcd db always has (created by every etcd 3.x on its first start). */
const REQUIRED_BUCKETS = ["key", "meta"]

export function importEtcdDb(options: ImportOptions): ImportResult {
  const reader = BoltReader.open(options.sourcePath, { bytes: options.sourceBytes })
  try {
    const problems = reader.check()
    if (problems.length > 0) throw new BoltError(`snapshot file integrity check failed. ${problems.length} errors found.\n${problems.join("\n")}`)
    const buckets = new Map<string, BucketRef>()
    for (const b of reader.buckets()) buckets.set(Buffer.from(b.name).toString("latin1"), b.bucket)
    for (const name of REQUIRED_BUCKETS) if (!buckets.has(name)) throw new BoltError(`not an etcd db: no ${name} bucket`)
    return importBuckets(reader, buckets, options.targetPath)
  } finally {
    reader.close()
  }
}

function importBuckets(reader: BoltReader, buckets: Map<string, BucketRef>, targetPath: string): ImportResult {
  const entries = function* (name: string) {
    const ref = buckets.get(name)
    if (ref !== undefined) yield* reader.entries(ref)
  }
  const backend = Backend.open({ path: targetPath })
  try {
    // The rooms create their tables (and the auth store its first revision) as on a first start.
    const store = MvccStore.open({ backend })
    new Lessor({ backend, clock: systemClock, deleteKeys: () => {}, minTtlSeconds: 0 })
    new AuthStore({ backend, clock: systemClock })
    new Membership(backend)
    new Alarms(backend)
    backend.commit()
    const db = backend.db
    backend.begin()

    // Rows go in without the key index, which the store builds again in one pass afterwards
    // (MvccStore.open creates what is missing): a third of the time for 1M rows.
    db.exec("DROP INDEX IF EXISTS mvcc_kv_key")
    const insertKv = db.query<unknown, [Uint8Array, number, number, number, number, bigint | null, Uint8Array]>(
      "INSERT INTO mvcc_kv (key, main, sub, create_rev, version, lease, value) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    let revisions = 0
    let lastMain = 0
    for (const e of entries("key")) {
      const rev = decodeRevision(e.key)
      if (rev === undefined) throw new BoltError(`key bucket: ${JSON.stringify(Buffer.from(e.key).toString("latin1"))} is not a revision`)
      const kv = decodeKeyValue(e.value)
      if (rev.tombstone) insertKv.run(kv.key, rev.main, rev.sub, 0, 0, null, new Uint8Array(0))
      else insertKv.run(kv.key, rev.main, rev.sub, kv.createRevision, kv.version, kv.lease === 0n ? null : kv.lease, kv.value)
      revisions++
      lastMain = rev.main
    }
    MvccStore.open({ backend })
    // The live keys: each key's newest row, unless it is a tombstone (SQLite takes the bare columns from the max(id) row).
    db.exec(`INSERT INTO mvcc_latest (key, id, create_rev, version, lease)
      SELECT key, id, create_rev, version, lease FROM (SELECT key, max(id) AS id, create_rev, version, lease FROM mvcc_kv GROUP BY key) WHERE version > 0`)

    const meta = new Map<string, Uint8Array>()
    for (const e of entries("meta")) meta.set(Buffer.from(e.key).toString("latin1"), e.value)
    const finished = compactRevisionOf(meta.get("finishedCompactRev"))
    const scheduled = compactRevisionOf(meta.get("scheduledCompactRev"))
    const compactRevision = Math.max(finished, scheduled)
    if (compactRevision > 0) {
      backend.setMeta("mvcc_compact_rev", encodeNumber(compactRevision))
      // A compaction etcd scheduled but did not finish: tskv's compactor finishes it (from the first row).
      backend.setMeta("mvcc_compact_cursor", encodeNumber(scheduled > finished ? 0 : -1))
    }

    const insertLease = db.query<unknown, [bigint, number, number]>("INSERT INTO lease (id, ttl, remaining_ttl) VALUES (?, ?, ?)")
    for (const e of entries("lease")) {
      const lease = decodeLease(e.value)
      insertLease.run(lease.id, lease.ttl, lease.remainingTtl)
    }
    db.exec("INSERT INTO lease_key (key, lease_id) SELECT key, lease FROM mvcc_latest WHERE lease IS NOT NULL")

    importAuth(backend, entries)

    const insertAlarm = db.query<unknown, [string, number]>("INSERT OR IGNORE INTO alarms (member_id, alarm) VALUES (?, ?)")
    for (const e of entries("alarm")) {
      const a = decodeAlarmMember(e.key)
      insertAlarm.run(a.memberId.toString(16), a.alarm)
    }
    backend.noteWrites(revisions + 1)
    backend.commitDurably()
    store.reload()
    return { revisions, revision: Math.max(1, compactRevision, lastMain), compactRevision }
  } finally {
    backend.close()
  }
}

function importAuth(backend: Backend, entries: (name: string) => Generator<{ key: Uint8Array; value: Uint8Array }>): void {
  const db = backend.db
  // The secret that keys signed tokens is derived from the auth data, so that
  // every member restored from the same file gets the same one.
  const secret = createHash("sha256").update("tskv auth secret from an etcd snapshot")
  let enabled = false
  for (const e of entries("auth")) {
    const name = Buffer.from(e.key).toString("latin1")
    secret.update(e.key).update(e.value)
    if (name === "authEnabled") {
      enabled = e.value[0] === 1
      backend.setMeta("auth_enabled", Uint8Array.of(enabled ? 1 : 0))
    } else if (name === "authRevision") {
      backend.setMeta("auth_revision", encodeUint64(decodeUint64(e.value)))
    }
  }
  const insertUser = db.query<unknown, [string, string | null, number, string]>(
    "INSERT INTO auth_user (name, password, no_password, roles) VALUES (?, ?, ?, ?)",
  )
  for (const e of entries("authUsers")) {
    secret.update(e.key).update(e.value)
    const user = decodeUser(e.value)
    const noPassword = user.options?.noPassword === true
    const password = user.password.byteLength === 0 ? null : Buffer.from(user.password).toString("utf8")
    insertUser.run(Buffer.from(user.name).toString("utf8"), noPassword ? null : password, noPassword ? 1 : 0, JSON.stringify(user.roles))
  }
  const insertRole = db.query<unknown, [string]>("INSERT INTO auth_role (name) VALUES (?)")
  const insertPerm = db.query<unknown, [string, Uint8Array, Uint8Array, number]>(
    "INSERT OR REPLACE INTO auth_perm (role, key, range_end, perm_type) VALUES (?, ?, ?, ?)",
  )
  for (const e of entries("authRoles")) {
    const role = decodeRole(e.value)
    const name = Buffer.from(role.name).toString("utf8")
    insertRole.run(name)
    for (const p of role.keyPermission) insertPerm.run(name, p.key, p.rangeEnd, p.permType)
  }
  if (enabled) backend.setMeta("auth_secret", new Uint8Array(secret.digest()))
}

/** A compact revision of the meta bucket (a revision key, sub 0); 0 when absent. */
function compactRevisionOf(raw: Uint8Array | undefined): number {
  if (raw === undefined) return 0
  const rev = decodeRevision(raw)
  if (rev === undefined) throw new BoltError(`meta bucket: compact revision of ${raw.byteLength} bytes`)
  return rev.main
}
