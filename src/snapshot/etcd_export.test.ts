import { afterEach, expect, test } from "bun:test"
import { createHash } from "node:crypto"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { tempDir } from "../../test/support/tmp"
import { encodeLease, encodeRevision, encodeUint64 } from "../bbolt/etcd_layout"
import { BoltReader } from "../bbolt/reader"
import { BoltWriter } from "../bbolt/writer"
import { encodeKeyValue } from "../pb/mvccpb"
import { exportEtcdDb } from "./etcd_export"
import { importEtcdDb } from "./etcd_import"
import { EtcdExportWorker } from "./export_stream"

const dirs: { remove(): void }[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) d.remove()
})

const b = (s: string): Uint8Array => Buffer.from(s)

/**
 * A tskv db (imported from an etcd db) with 3000 revisions: values from empty
 * to 20 KiB (overflow pages), tombstones, leases up to 2^63-1, several
 * revisions of one key.
 */
function tskvDb(dir: string): string {
  const etcd = join(dir, "etcd.db")
  const w = new BoltWriter(etcd)
  w.bucket("cluster", [[b("clusterVersion"), b("3.4.0")]])
  const keys = w.openBucket("key", { fillPercent: 0.9 })
  const leases = [0n, 0x55n, 0x7fff_ffff_ffff_ffffn, 0x1234_5678_9abc_defn]
  for (let rev = 2; rev < 3002; rev++) {
    const key = b(`k/${rev % 700}`)
    if (rev % 97 === 0) {
      keys.put(encodeRevision(rev, 0, true), encodeKeyValue({ key }))
      continue
    }
    const valueBytes = rev % 211 === 0 ? 20_000 + rev : rev % 50
    keys.put(
      encodeRevision(rev, 0),
      encodeKeyValue({ key, createRevision: rev, modRevision: rev, version: 1, value: new Uint8Array(valueBytes).fill(rev & 0xff), lease: leases[rev % 4]! }),
    )
  }
  keys.close()
  w.bucket("lease", leases.slice(1).sort((x, y) => (x < y ? -1 : 1)).map((id): [Uint8Array, Uint8Array] => [encodeUint64(id), encodeLease({ id, ttl: 60, remainingTtl: 0 })]))
  w.bucket("meta", [[b("consistent_index"), encodeUint64(9)]])
  w.finish({ sync: false })
  const target = join(dir, "tskv.db")
  importEtcdDb({ sourcePath: etcd, sourceBytes: Bun.file(etcd).size, targetPath: target })
  return target
}

test("exportEtcdDb() to a stream gives, chunk by chunk, the bytes of the file it writes (planned metas, pages across chunks)", () => {
  const d = tempDir("tskv-export-test-")
  dirs.push(d)
  const source = tskvDb(d.path)
  const file = join(d.path, "out.db")
  const result = exportEtcdDb({ source, target: file, sync: false })
  const whole = readFileSync(file)
  expect(result.bytes).toBe(whole.byteLength)
  expect(result.rows).toBe(3000)

  const chunks: Uint8Array[] = []
  let size = 0
  // Two pages a chunk: overflow pages (the 20 KiB values) straddle chunks.
  const streamed = exportEtcdDb({ source, target: { size: (bytes) => ((size = bytes), 8192), chunk: (c) => chunks.push(c) } })
  expect(streamed).toEqual(result)
  expect(size).toBe(whole.byteLength)
  expect(chunks.slice(0, -1).every((c) => c.byteLength === 8192)).toBe(true)
  expect(Buffer.concat(chunks).equals(whole)).toBe(true)

  const reader = BoltReader.open(file)
  try {
    expect(reader.check()).toEqual([])
    const keyBucket = reader.bucket("key")!
    expect([...reader.entries(keyBucket)].length).toBe(3000)
  } finally {
    reader.close()
  }
})

test("EtcdExportWorker streams the db from its worker thread with its sha256", async () => {
  const d = tempDir("tskv-export-test-")
  dirs.push(d)
  const source = tskvDb(d.path)
  const file = join(d.path, "out.db")
  exportEtcdDb({ source, target: file, sync: false })
  const whole = readFileSync(file)

  const ex = new EtcdExportWorker({ dbPath: source, chunkBytes: 16384 })
  try {
    await ex.pinned
    expect(await ex.exported).toBe(whole.byteLength)
    const chunks: Uint8Array[] = []
    for (let c; (c = await ex.next()) !== undefined; ) {
      chunks.push(c.bytes)
      expect(c.remaining).toBe(whole.byteLength - Buffer.concat(chunks).byteLength)
    }
    expect(Buffer.concat(chunks).equals(whole)).toBe(true)
    expect(Buffer.from(ex.sha256!).equals(createHash("sha256").update(whole).digest())).toBe(true)
  } finally {
    ex.close()
  }
})

test("EtcdExportWorker.close() in the middle of the stream ends it with an error", async () => {
  const d = tempDir("tskv-export-test-")
  dirs.push(d)
  const ex = new EtcdExportWorker({ dbPath: tskvDb(d.path), chunkBytes: 4096 })
  await ex.exported
  expect((await ex.next())?.bytes.byteLength).toBe(4096)
  ex.close()
  expect(ex.next()).rejects.toThrow("snapshot export closed")
})
