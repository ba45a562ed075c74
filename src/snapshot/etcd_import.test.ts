import { afterEach, expect, test } from "bun:test"
import { join } from "node:path"
import { tempDir } from "../../test/support/tmp"
import { Backend } from "../backend/backend"
import { encodeLease, encodeRevision, encodeUint64 } from "../bbolt/etcd_layout"
import { BoltReader } from "../bbolt/reader"
import { BoltWriter } from "../bbolt/writer"
import { MvccStore } from "../mvcc/kv_store"
import { encodeRole, encodeUser } from "../pb/authpb"
import { encodeKeyValue } from "../pb/mvccpb"
import { exportEtcdDb } from "./etcd_export"
import { importEtcdDb } from "./etcd_import"

const dirs: { remove(): void }[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) d.remove()
})

const b = (s: string): Uint8Array => Buffer.from(s)

/** An etcd 3.5 db: meta has term and confState; a compaction at 3 was scheduled but not finished; auth is on. */
function etcd35Db(path: string): void {
  const w = new BoltWriter(path)
  w.bucket("alarm", [])
  w.bucket("auth", [[b("authEnabled"), Uint8Array.of(1)], [b("authRevision"), encodeUint64(7)]])
  w.bucket("authRoles", [[b("root"), encodeRole({ name: b("root") })], [b("ro"), encodeRole({ name: b("ro"), keyPermission: [{ permType: 0, key: b("a"), rangeEnd: b("b") }] })]].sort((x, y) => Buffer.compare(x[0]!, y[0]!)) as [Uint8Array, Uint8Array][])
  w.bucket("authUsers", [
    [b("bob"), encodeUser({ name: b("bob"), roles: ["ro"], options: { noPassword: true } })],
    [b("root"), encodeUser({ name: b("root"), password: b("$2a$10$abcdefghijklmnopqrstuv"), roles: ["root"], options: {} })],
  ])
  w.bucket("cluster", [[b("clusterVersion"), b("3.5.0")]])
  w.bucket("key", [
    [encodeRevision(2, 0), encodeKeyValue({ key: b("a"), createRevision: 2, modRevision: 2, version: 1, value: b("1") })],
    [encodeRevision(3, 0), encodeKeyValue({ key: b("a"), createRevision: 2, modRevision: 3, version: 2, value: b("2") })],
    [encodeRevision(4, 0), encodeKeyValue({ key: b("b"), createRevision: 4, modRevision: 4, version: 1, value: b("x"), lease: 0x55n })],
    [encodeRevision(5, 0, true), encodeKeyValue({ key: b("a") })],
    [encodeRevision(6, 0), encodeKeyValue({ key: b("c"), createRevision: 6, modRevision: 6, version: 1, value: b("y") })],
    [encodeRevision(6, 1), encodeKeyValue({ key: b("d"), createRevision: 6, modRevision: 6, version: 1, value: b("z") })],
  ])
  w.bucket("lease", [[encodeUint64(0x55n), encodeLease({ id: 0x55n, ttl: 60, remainingTtl: 0 })]])
  w.bucket("members", [])
  w.bucket("members_removed", [])
  w.bucket("meta", [
    [b("confState"), b('{"voters":[1]}')],
    [b("consistent_index"), encodeUint64(40)],
    [b("finishedCompactRev"), encodeRevision(2, 0)],
    [b("scheduledCompactRev"), encodeRevision(3, 0)],
    [b("term"), encodeUint64(2)],
  ])
  w.finish({ sync: false })
}

test("importEtcdDb() takes an etcd 3.5 db: every revision, tombstones, leases, users, roles, auth state and a pending compaction", () => {
  const d = tempDir("tskv-import-test-")
  dirs.push(d)
  const source = join(d.path, "etcd.db")
  etcd35Db(source)
  const target = join(d.path, "tskv.db")
  const { size } = Bun.file(source)
  expect(importEtcdDb({ sourcePath: source, sourceBytes: size, targetPath: target })).toEqual({ revisions: 6, revision: 6, compactRevision: 3 })

  const backend = Backend.open({ path: target })
  try {
    const store = MvccStore.open({ backend })
    expect(store.currentRevision()).toBe(6)
    expect(store.compactedRevision()).toBe(3)
    expect(store.compactionPending()).toBe(true)
    const now = store.range(b("a"), b("z"))
    expect(now.kvs.map((kv) => [Buffer.from(kv.key).toString(), kv.createRevision, kv.modRevision, kv.version, Buffer.from(kv.value).toString(), kv.lease])).toEqual([
      ["b", 4, 4, 1, "x", 0x55n],
      ["c", 6, 6, 1, "y", 0n],
      ["d", 6, 6, 1, "z", 0n],
    ])
    expect(store.range(b("a"), undefined, { revision: 4 }).kvs.map((kv) => Buffer.from(kv.value).toString())).toEqual(["2"])
    const db = backend.db
    expect(db.query("SELECT CAST(id AS TEXT) AS id, ttl FROM lease").all()).toEqual([{ id: "85", ttl: 60 }])
    expect(db.query("SELECT CAST(lease_id AS TEXT) AS lease FROM lease_key").all()).toEqual([{ lease: "85" }])
    expect(db.query("SELECT name, password, no_password, roles FROM auth_user ORDER BY name").all()).toEqual([
      { name: "bob", password: null, no_password: 1, roles: '["ro"]' },
      { name: "root", password: "$2a$10$abcdefghijklmnopqrstuv", no_password: 0, roles: '["root"]' },
    ])
    expect(db.query("SELECT role, CAST(key AS TEXT) AS key, CAST(range_end AS TEXT) AS range_end, perm_type FROM auth_perm").all()).toEqual([
      { role: "ro", key: "a", range_end: "b", perm_type: 0 },
    ])
    expect(backend.getMeta("auth_enabled")).toEqual(Uint8Array.of(1))
    expect(backend.getMeta("auth_secret")?.byteLength).toBe(32)
  } finally {
    backend.close()
  }

  // And out again as etcd 3.4 writes it: the same key, lease and auth buckets; scheduled, not finished.
  const back = join(d.path, "back.db")
  exportEtcdDb({ source: target, target: back })
  const bucketsOf = (path: string): Map<string, string[]> => {
    const r = BoltReader.open(path)
    try {
      return new Map([...r.buckets()].map((x) => [Buffer.from(x.name).toString(), [...r.entries(x.bucket)].map((e) => `${Buffer.from(e.key).toString("hex")}=${Buffer.from(e.value).toString("hex")}`)]))
    } finally {
      r.close()
    }
  }
  const before = bucketsOf(source)
  const after = bucketsOf(back)
  for (const name of ["key", "lease", "authUsers", "authRoles", "auth", "alarm"]) expect(after.get(name)).toEqual(before.get(name)!)
  expect(after.get("meta")!.map((e) => Buffer.from(e.split("=")[0]!, "hex").toString())).toEqual(["consistent_index", "scheduledCompactRev"])
})
