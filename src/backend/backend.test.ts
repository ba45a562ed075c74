import { expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Backend } from "./backend"

test("Backend.commit() writes the consistent index in the same transaction as the state", () => {
  const dir = mkdtempSync(join(tmpdir(), "tskv-backend-"))
  try {
    const path = join(dir, "db")
    const b = Backend.open({ path })
    b.db.exec("CREATE TABLE t (k TEXT)")
    b.begin()
    b.db.query("INSERT INTO t VALUES ('a')").run()
    b.setConsistentIndex(7, 2)
    b.commit()
    b.begin()
    b.db.query("INSERT INTO t VALUES ('b')").run()
    b.setConsistentIndex(8, 2)
    // Simulated crash: the batch is never committed.
    b.db.close()
    const reopened = Backend.open({ path })
    expect(reopened.consistentIndex()).toEqual({ index: 7, term: 2 })
    expect(reopened.db.query("SELECT count(*) AS n FROM t").get()).toEqual({ n: 1 })
    reopened.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test("Backend.commitIfFull() commits once noteWrites() counted the batch limit, never noteWrites() itself", () => {
  const b = Backend.open({ path: ":memory:", batchLimit: 2 })
  b.db.exec("CREATE TABLE t (k TEXT)")
  b.begin()
  b.db.query("INSERT INTO t VALUES ('a')").run()
  b.noteWrites()
  b.commitIfFull()
  expect(b.db.inTransaction).toBe(true)
  b.noteWrites()
  expect(b.db.inTransaction).toBe(true)
  b.commitIfFull()
  expect(b.db.inTransaction).toBe(false)
  b.close()
})

test("Backend.copyTo() writes a consistent copy that opens as a backend", () => {
  const dir = mkdtempSync(join(tmpdir(), "tskv-backend-"))
  try {
    const b = Backend.open({ path: join(dir, "db") })
    b.db.exec("CREATE TABLE t (k TEXT)")
    b.begin()
    b.db.query("INSERT INTO t VALUES ('a')").run()
    b.setConsistentIndex(3, 1)
    b.copyTo(join(dir, "copy"))
    const copy = Backend.open({ path: join(dir, "copy") })
    expect(copy.consistentIndex()).toEqual({ index: 3, term: 1 })
    expect(copy.sizeBytes()).toBeGreaterThan(0)
    expect(copy.sizeInUseBytes()).toBeLessThanOrEqual(copy.sizeBytes())
    copy.close()
    b.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test("Backend.replaceContentsFrom() takes every row of a snapshot db and its consistent index, statements stay valid", () => {
  const dir = mkdtempSync(join(tmpdir(), "tskv-backend-"))
  try {
    const source = Backend.open({ path: join(dir, "source") })
    source.db.exec("CREATE TABLE t (k TEXT)")
    source.begin()
    source.db.query("INSERT INTO t VALUES ('from-leader')").run()
    source.setConsistentIndex(42, 3)
    source.copyTo(join(dir, "snap.db"))
    source.close()

    const target = Backend.open({ path: join(dir, "target") })
    target.db.exec("CREATE TABLE t (k TEXT)")
    const count = target.db.query<{ n: number }, []>("SELECT count(*) AS n FROM t")
    target.begin()
    target.db.query("INSERT INTO t VALUES ('old-1')").run()
    target.db.query("INSERT INTO t VALUES ('old-2')").run()
    target.setConsistentIndex(5, 1)
    target.commit()
    target.replaceContentsFrom(join(dir, "snap.db"))
    expect(target.consistentIndex()).toEqual({ index: 42, term: 3 })
    expect(count.get()).toEqual({ n: 1 })
    expect(target.db.query("SELECT k FROM t").get()).toEqual({ k: "from-leader" })
    target.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test("Backend.commit() persists a consistent index that moved without any write", () => {
  const dir = mkdtempSync(join(tmpdir(), "tskv-backend-"))
  try {
    const path = join(dir, "db")
    const b = Backend.open({ path })
    b.setConsistentIndex(9, 2)
    b.commit()
    b.db.close()
    expect(Backend.open({ path }).consistentIndex()).toEqual({ index: 9, term: 2 })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
