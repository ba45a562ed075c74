import { expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Database } from "bun:sqlite"
import { Backend, BackendWriteRefused } from "./backend"
import type { CheckpointReport } from "./checkpointer"

/** A backend with row 'a' committed at index 7 and row 'b' in the open batch at index 8. */
function openWithBatch(path: string): Backend {
  const b = Backend.open({ path })
  b.db.exec("CREATE TABLE t (k TEXT)")
  b.begin()
  b.db.query("INSERT INTO t VALUES ('a')").run()
  b.setConsistentIndex(7, 2)
  b.commit()
  b.begin()
  b.db.query("INSERT INTO t VALUES ('b')").run()
  b.setConsistentIndex(8, 2)
  return b
}

/** Reopened, the db has what openWithBatch() committed and nothing of its open batch. */
function expectOnlyFirstBatch(path: string): void {
  const reopened = Backend.open({ path })
  expect(reopened.consistentIndex()).toEqual({ index: 7, term: 2 })
  expect(reopened.db.query("SELECT count(*) AS n FROM t").get()).toEqual({ n: 1 })
  reopened.close()
}

test("Backend.commit() writes the consistent index in the same transaction as the state", () => {
  const dir = mkdtempSync(join(tmpdir(), "tskv-backend-"))
  try {
    const path = join(dir, "db")
    const b = openWithBatch(path)
    // Simulated crash: the batch is never committed.
    b.db.close()
    expectOnlyFirstBatch(path)
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

async function waitFor(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await Bun.sleep(5)
  }
}

test("checkpointInWorker: COMMIT never checkpoints; the worker copies every committed frame; the -wal file is rewound past restartFrames", async () => {
  const dir = mkdtempSync(join(tmpdir(), "tskv-backend-ckpt-"))
  try {
    const path = join(dir, "db")
    const reports: CheckpointReport[] = []
    const b = Backend.open({ path, checkpointInWorker: true, checkpointRestartFrames: 200, checkpointMinIntervalMs: 0, onCheckpointReport: (r) => reports.push(r) })
    expect(b.db.query("PRAGMA wal_autocheckpoint").values()[0]?.[0]).toBe(0)
    b.db.exec("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")
    const insert = b.db.query("INSERT INTO t (v) VALUES (?)")
    const value = new Uint8Array(3000)
    let maxFrames = 0
    let rewound = false
    for (let batch = 0; batch < 40; batch++) {
      b.begin()
      for (let i = 0; i < 20; i++) insert.run(value)
      b.setConsistentIndex(batch + 1, 1)
      b.commit()
      // as on a busy member, the next batch begins before the worker is done:
      // SQLite cannot rewind the file under an open transaction that saw it unfinished
      b.begin()
      insert.run(value)
      const seen = reports.length
      // a commit that rewound the file asks the worker for nothing: no report comes. The window is
      // wide because a report that comes only after the next commit (a loaded machine) describes a
      // checkpoint that overlapped that commit, and then the log has frames it could not copy.
      await waitFor(() => reports.length > seen, "a checkpoint report", 1000).catch(() => {})
      const last = reports[reports.length - 1]
      if (last !== undefined) {
        if (last.logFrames < maxFrames) rewound = true
        maxFrames = Math.max(maxFrames, last.logFrames)
        expect(last.busy).toBe(false)
        expect(last.checkpointedFrames).toBe(last.logFrames)
      }
    }
    // 20 rows of 3000 bytes are about 20 frames a batch: past 200 frames the backend rewinds the file
    expect(maxFrames).toBeGreaterThan(200)
    expect(maxFrames).toBeLessThan(400)
    expect(rewound).toBe(true)
    b.close()
    const reopened = Backend.open({ path })
    expect(reopened.db.query("SELECT count(*) AS n FROM t").get()).toEqual({ n: 840 })
    expect(reopened.consistentIndex()).toEqual({ index: 40, term: 1 })
    reopened.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test("checkpointInWorker: commitDurably() gets its FULL checkpoint through while the worker checkpoints", async () => {
  const dir = mkdtempSync(join(tmpdir(), "tskv-backend-ckpt-"))
  try {
    const path = join(dir, "db")
    let reports = 0
    const b = Backend.open({ path, checkpointInWorker: true, onCheckpointReport: () => reports++ })
    b.db.exec("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")
    const insert = b.db.query("INSERT INTO t (v) VALUES (?)")
    const value = new Uint8Array(4000)
    for (let round = 0; round < 30; round++) {
      b.begin()
      for (let i = 0; i < 200; i++) insert.run(value)
      b.setConsistentIndex(round + 1, 1)
      b.commit() // the worker starts copying these 200 pages ...
      b.begin()
      insert.run(value)
      b.setConsistentIndex(round + 1, 1)
      b.commitDurably() // ... while this one needs every frame in the db file
      const [busy, log, done] = b.db.query("PRAGMA wal_checkpoint(PASSIVE)").values()[0] as number[]
      expect([busy, log === done]).toEqual([0, true])
      if (round % 10 === 9) await Bun.sleep(1)
    }
    await waitFor(() => reports > 0, "the worker's first report")
    b.close()
    const reopened = Backend.open({ path })
    expect(reopened.db.query("SELECT count(*) AS n FROM t").get()).toEqual({ n: 30 * 201 })
    reopened.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test("commitDurablyAsync() commits at once and calls back after the -wal file's fdatasync (file and :memory:)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "tskv-backend-durable-"))
  try {
    for (const path of [join(dir, "db"), ":memory:"]) {
      const b = Backend.open({ path, checkpointInWorker: true })
      b.db.exec("CREATE TABLE t (k TEXT)")
      b.begin()
      b.db.query("INSERT INTO t VALUES ('a')").run()
      b.setConsistentIndex(5, 1)
      let called = false
      const done = new Promise<Error | null>((resolve) => b.commitDurablyAsync((e) => {
        called = true
        resolve(e)
      }))
      expect(b.db.inTransaction).toBe(false)
      expect(called).toBe(false) // never synchronously: the server finishes its snapshot later
      expect(await done).toBeNull()
      if (path !== ":memory:") {
        const other = new Database(path, { readonly: true })
        expect(other.query("SELECT count(*) AS n FROM t").get()).toEqual({ n: 1 })
        other.close()
      }
      b.close()
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test("Backend.commit() after SQLite rolled the batch back (a write failed: disk full) throws and never writes the consistent index, close() neither", () => {
  const dir = mkdtempSync(join(tmpdir(), "tskv-backend-"))
  try {
    const path = join(dir, "db")
    const b = openWithBatch(path)
    // What SQLite does by itself when a statement of the batch fails with SQLITE_FULL.
    b.db.exec("ROLLBACK")
    expect(() => b.commit()).toThrow("SQLite rolled back the batch")
    expect(b.failed()?.message).toContain("rolled back")
    // Refused from then on; closing does not commit either (the index would skip the lost batch).
    expect(() => b.commit()).toThrow("SQLite rolled back the batch")
    expect(() => b.begin()).toThrow("SQLite rolled back the batch")
    b.close()
    expectOnlyFirstBatch(path)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test("Backend.commit() the disk refuses (SQLITE_FULL) rolls the batch back and refuses writes until reopenBatch(), which goes back to the committed consistent index; the next batch commits", () => {
  const dir = mkdtempSync(join(tmpdir(), "tskv-backend-"))
  try {
    const path = join(dir, "db")
    const b = openWithBatch(path)
    const seen: string[] = []
    b.onWriteRefused = (e) => seen.push(e.message)
    const exec = b.db.exec.bind(b.db)
    let refuse = true
    b.db.exec = ((sql: string) => {
      if (sql === "COMMIT" && refuse) throw Object.assign(new Error("database or disk is full"), { code: "SQLITE_FULL" })
      return exec(sql)
    }) as typeof b.db.exec
    expect(() => b.commit()).toThrow(BackendWriteRefused)
    expect(seen).toEqual(["backend: write refused, batch rolled back: database or disk is full"])
    expect(b.batchLost()).toBe(true)
    expect(b.failed()).toBeUndefined()
    expect(() => b.begin()).toThrow(BackendWriteRefused)
    expect(b.db.inTransaction).toBe(false)
    refuse = false
    expect(b.reopenBatch()).toEqual({ index: 7, term: 2 })
    // The caller applies entry 8 again, then more.
    b.begin()
    b.db.query("INSERT INTO t VALUES ('b')").run()
    b.setConsistentIndex(8, 2)
    b.commit()
    b.close()
    const reopened = Backend.open({ path })
    expect(reopened.consistentIndex()).toEqual({ index: 8, term: 2 })
    expect(reopened.db.query("SELECT count(*) AS n FROM t").get()).toEqual({ n: 2 })
    reopened.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test("Backend.writeFailed() of an error that is not the disk refusing (SQLITE_CORRUPT) stops the backend for good", () => {
  const dir = mkdtempSync(join(tmpdir(), "tskv-backend-"))
  try {
    const path = join(dir, "db")
    const b = openWithBatch(path)
    const e = b.writeFailed(Object.assign(new Error("database disk image is malformed"), { code: "SQLITE_CORRUPT" }))
    expect(e).not.toBeInstanceOf(BackendWriteRefused)
    expect(b.batchLost()).toBe(false)
    expect(() => b.begin()).toThrow("malformed")
    b.close()
    expectOnlyFirstBatch(path)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test("Backend.close() whose last commit fails still closes the db, then throws (the batch is dropped; the WAL replays it)", () => {
  const dir = mkdtempSync(join(tmpdir(), "tskv-backend-"))
  try {
    const path = join(dir, "db")
    const b = openWithBatch(path)
    b.db.exec("ROLLBACK")
    expect(() => b.close()).toThrow("SQLite rolled back the batch")
    expect(() => b.db.query("SELECT 1").get()).toThrow()
    expectOnlyFirstBatch(path)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
