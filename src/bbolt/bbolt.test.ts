import { afterEach, expect, test } from "bun:test"
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { tempDir } from "../../test/support/tmp"
import { crc32c, decodeMember, decodeRevision, encodeMember, encodeRevision } from "./etcd_layout"
import { BoltError, decodeMeta, encodeMetaPage, fnv64a } from "./format"
import { BoltReader } from "./reader"
import { boltStatus } from "./status"
import { BoltWriter } from "./writer"

const dirs: { remove(): void }[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) d.remove()
})

function scratch(): string {
  const d = tempDir("tskv-bbolt-test-")
  dirs.push(d)
  return d.path
}

const key = (i: number): Uint8Array => Buffer.from(`key/${String(i).padStart(7, "0")}`)

test("fnv64a() and crc32c() give Go's hash/fnv and hash/crc32 Castagnoli values", () => {
  expect(fnv64a(new Uint8Array(0))).toBe(0xcbf29ce484222325n)
  expect(fnv64a(Buffer.from("a"))).toBe(0xaf63dc4c8601ec8cn)
  expect(crc32c(0, Buffer.from("123456789"))).toBe(0xe3069283)
  // Update() continues a running crc: the same as hashing the concatenation.
  expect(crc32c(crc32c(0, Buffer.from("1234")), Buffer.from("56789"))).toBe(0xe3069283)
})

test("encodeMetaPage() round-trips through decodeMeta(), which refuses a bad checksum, magic or version", () => {
  const meta = { pageBytes: 4096, flags: 0, rootPgid: 7, rootSequence: 0n, freelistPgid: -1, pgid: 9, txid: 5n }
  const page = encodeMetaPage(meta, 1)
  expect(decodeMeta(page, 1)).toEqual(meta)
  const bad = Uint8Array.from(page)
  bad[56] = bad[56]! ^ 1
  expect(() => decodeMeta(bad, 1)).toThrow("checksum error")
  const magic = Uint8Array.from(page)
  magic[16] = magic[16]! ^ 1
  expect(() => decodeMeta(magic, 1)).toThrow("invalid database")
  const version = Uint8Array.from(page)
  version[20] = 3
  expect(() => decodeMeta(version, 1)).toThrow("version mismatch")
})

test("BoltWriter writes a multi-level tree with overflow values and inline buckets that BoltReader reads back in order", () => {
  const path = join(scratch(), "db")
  const writer = new BoltWriter(path)
  writer.bucket("big", [
    [Buffer.from("a"), Buffer.alloc(10_000, 1)],
    [Buffer.from("b"), Buffer.alloc(3 << 20, 2)],
    [Buffer.from("c"), Buffer.from("small")],
  ])
  writer.bucket("empty", [])
  const tree = writer.openBucket("many", { fillPercent: 0.9 })
  for (let i = 0; i < 50_000; i++) tree.put(key(i), Buffer.from(`value-${i}`))
  tree.close()
  writer.bucket("small", [[Buffer.from("x"), Buffer.from("1")]])
  const bytes = writer.finish({ sync: false })

  const reader = BoltReader.open(path)
  try {
    expect(reader.sizeBytes()).toBe(bytes)
    expect(reader.check()).toEqual([])
    const buckets = [...reader.buckets()]
    expect(buckets.map((b) => Buffer.from(b.name).toString())).toEqual(["big", "empty", "many", "small"])
    // Small buckets are inline (in their parent's value), as bbolt writes them.
    expect(buckets.map((b) => b.bucket.root === 0)).toEqual([false, true, false, true])
    const big = [...reader.entries(buckets[0]!.bucket)]
    expect(big.map((e) => [Buffer.from(e.key).toString(), e.value.byteLength, e.value[0]])).toEqual([["a", 10_000, 1], ["b", 3 << 20, 2], ["c", 5, 115]])
    let i = 0
    for (const e of reader.entries(buckets[2]!.bucket)) {
      expect(Buffer.from(e.key).equals(key(i))).toBe(true)
      expect(Buffer.from(e.value).toString()).toBe(`value-${i}`)
      i++
    }
    expect(i).toBe(50_000)
    expect([...reader.entries(buckets[3]!.bucket)].map((e) => Buffer.from(e.value).toString())).toEqual(["1"])
  } finally {
    reader.close()
  }
})

test("BoltReader refuses a truncated file and a page that is not the one the tree points at", () => {
  const dir = scratch()
  const path = join(dir, "db")
  const writer = new BoltWriter(path)
  writer.bucket("key", Array.from({ length: 5000 }, (_, i): [Uint8Array, Uint8Array] => [key(i), Buffer.alloc(40)]))
  writer.finish({ sync: false })
  const whole = readFileSync(path)
  const truncated = join(dir, "truncated")
  writeFileSync(truncated, whole.subarray(0, whole.byteLength - 4096))
  expect(() => BoltReader.open(truncated)).toThrow(`file size too small: ${whole.byteLength - 4096} bytes, the meta says ${whole.byteLength / 4096} pages of 4096`)

  const damaged = join(dir, "damaged")
  const copy = Buffer.from(whole)
  copy.writeBigUInt64LE(999n, 4 * 4096) // page 4's id
  writeFileSync(damaged, copy)
  const reader = BoltReader.open(damaged)
  try {
    expect(reader.check()).toEqual(["page 4: has id 999"])
    expect(() => boltStatus(damaged)).toThrow(BoltError)
    expect(() => boltStatus(damaged)).toThrow("snapshot file integrity check failed. 1 errors found.\npage 4: has id 999")
  } finally {
    reader.close()
  }
})

test("revision keys and member records have etcd's encodings", () => {
  const rev = encodeRevision(0x102, 3)
  expect(Buffer.from(rev).toString("hex")).toBe("0000000000000102" + "5f" + "0000000000000003")
  expect(decodeRevision(rev)).toEqual({ main: 0x102, sub: 3, tombstone: false })
  expect(decodeRevision(encodeRevision(5, 0, true))).toEqual({ main: 5, sub: 0, tombstone: true })
  expect(decodeRevision(Buffer.from("consistent_index"))).toBeUndefined()
  const member = { id: 13668033151171901709n, name: "e", peerUrls: ["http://127.0.0.1:23801"], clientUrls: ["http://127.0.0.1:23791"], isLearner: false }
  // Byte for byte what etcd 3.4 stored in a real members bucket.
  expect(Buffer.from(encodeMember(member)).toString()).toBe(
    '{"id":13668033151171901709,"peerURLs":["http://127.0.0.1:23801"],"name":"e","clientURLs":["http://127.0.0.1:23791"]}',
  )
  expect(decodeMember(encodeMember(member))).toEqual(member)
  expect(Buffer.from(encodeMember({ ...member, name: "", clientUrls: [], isLearner: true })).toString()).toBe(
    '{"id":13668033151171901709,"peerURLs":["http://127.0.0.1:23801"],"isLearner":true}',
  )
})
