import { expect, test } from "bun:test"
import { join } from "node:path"
import { tempDir } from "../../test/support/tmp"
import { Backend } from "./backend"

function fill(b: Backend, rows: number): void {
  b.db.exec("CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v BLOB)")
  b.begin()
  const insert = b.db.query("INSERT INTO t (v) VALUES (?)")
  for (let i = 0; i < rows; i++) insert.run(new Uint8Array(500).fill(i % 251))
  b.commit()
}

test("Backend.snapshot() streams a consistent copy in chunks; Backend.restore() rebuilds a db that opens at the same state", () => {
  const dir = tempDir("tskv-backend-snap-")
  try {
    const b = Backend.open({ path: join(dir.path, "db") })
    fill(b, 1000)
    b.begin()
    b.db.query("INSERT INTO t (v) VALUES (?)").run(new Uint8Array(1))
    b.setConsistentIndex(42, 3)
    const snap = b.snapshot(join(dir.path, "db.snap"))
    const chunks = [...snap.chunks(4096)]
    expect(chunks.every((c) => c.byteLength <= 4096)).toBe(true)
    expect(chunks.reduce((n, c) => n + c.byteLength, 0)).toBe(snap.sizeBytes)
    snap.close()
    // writes after the snapshot are not in it
    b.begin()
    b.db.query("INSERT INTO t (v) VALUES (?)").run(new Uint8Array(1))
    b.close()
    const target = join(dir.path, "restored")
    expect(Backend.restore(chunks, target)).toBe(snap.sizeBytes)
    const r = Backend.open({ path: target })
    expect(r.consistentIndex()).toEqual({ index: 42, term: 3 })
    expect(r.db.query("SELECT count(*) AS n FROM t").get()).toEqual({ n: 1001 })
    r.close()
  } finally {
    dir.remove()
  }
})

test("Backend.restore() refuses a torn copy", () => {
  const dir = tempDir("tskv-backend-snap-")
  try {
    const b = Backend.open({ path: join(dir.path, "db") })
    fill(b, 500)
    const snap = b.snapshot(join(dir.path, "db.snap"))
    const chunks = [...snap.chunks(4096)]
    snap.close()
    b.close()
    const torn = chunks.slice(0, Math.floor(chunks.length / 2))
    expect(() => Backend.restore(torn, join(dir.path, "restored"))).toThrow()
  } finally {
    dir.remove()
  }
})

test("Backend.defrag() reclaims free pages in short steps; rewrite packs the file", () => {
  const dir = tempDir("tskv-backend-defrag-")
  try {
    const b = Backend.open({ path: join(dir.path, "db") })
    fill(b, 4000)
    b.begin()
    b.db.exec("DELETE FROM t WHERE k % 4 != 0")
    b.commit()
    const before = b.sizeBytes()
    expect(b.sizeInUseBytes()).toBeLessThan(before)
    const steps = b.defrag({ pagesPerStep: 64 })
    expect(steps.freedBytes).toBeGreaterThan(0)
    expect(b.sizeBytes()).toBe(b.sizeInUseBytes())
    const rewrite = b.defrag({ rewrite: true })
    expect(b.db.query("SELECT count(*) AS n FROM t").get()).toEqual({ n: 1000 })
    console.log(`defrag: incremental pauseMsMax=${steps.pauseMsMax.toFixed(2)} freed=${steps.freedBytes} rewrite pauseMs=${rewrite.pauseMsMax.toFixed(2)} freed=${rewrite.freedBytes}`)
    b.close()
  } finally {
    dir.remove()
  }
})
