import { afterEach, expect, test } from "bun:test"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Backend } from "../backend/backend"
import { nodeFsPort } from "../lib/fs_port"
import { defragDataDir, OfflineDefragError } from "./offline_defrag"
import { backendPathOf, snapDirOf, walDirOf } from "../lib/data_dir"

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

/** A data dir whose db had 4 MiB written and then deleted (free pages to reclaim). */
function dataDirWithGarbage(): string {
  const dataDir = mkdtempSync(join(tmpdir(), "tskv-offline-defrag-"))
  dirs.push(dataDir)
  mkdirSync(snapDirOf(dataDir), { recursive: true })
  const backend = Backend.open({ path: backendPathOf(dataDir) })
  backend.db.exec("CREATE TABLE filler (k INTEGER PRIMARY KEY, v BLOB)")
  const insert = backend.db.query("INSERT INTO filler (k, v) VALUES (?, ?)")
  backend.begin()
  for (let i = 0; i < 1024; i++) insert.run(i, new Uint8Array(4096))
  backend.commit()
  backend.begin()
  backend.db.exec("DELETE FROM filler")
  backend.close()
  return dataDir
}

test("defragDataDir() rewrites a stopped member's db smaller and keeps it readable", () => {
  const dataDir = dataDirWithGarbage()
  const { beforeBytes, afterBytes } = defragDataDir(dataDir)
  expect(beforeBytes).toBeGreaterThan(4 * 2 ** 20)
  expect(afterBytes).toBeLessThan(beforeBytes / 10)
  const backend = Backend.open({ path: backendPathOf(dataDir) })
  expect(backend.db.query("SELECT count(*) AS n FROM filler").get()).toEqual({ n: 0 })
  backend.close()
})

test("defragDataDir() refuses while the newest WAL segment is locked by a running member", () => {
  const dataDir = dataDirWithGarbage()
  const walDir = walDirOf(dataDir)
  mkdirSync(walDir)
  writeFileSync(join(walDir, "0000000000000000-0000000000000000.wal"), "")
  writeFileSync(join(walDir, "0000000000000001-0000000000000010.wal"), "")
  const member = nodeFsPort.open(join(walDir, "0000000000000001-0000000000000010.wal"), "write")
  expect(member.tryLock()).toBe(true)
  try {
    expect(() => defragDataDir(dataDir)).toThrow(OfflineDefragError)
    expect(() => defragDataDir(dataDir)).toThrow(/0000000000000001-0000000000000010.wal is locked: an etcd member is running/)
  } finally {
    member.close()
  }
  expect(defragDataDir(dataDir).afterBytes).toBeGreaterThan(0)
})

test("defragDataDir() does not create a db that is missing", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "tskv-offline-defrag-"))
  dirs.push(dataDir)
  expect(() => defragDataDir(dataDir)).toThrow(`open ${backendPathOf(dataDir)}: no such file or directory`)
})
