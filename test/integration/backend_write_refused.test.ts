// A backend COMMIT the disk refuses (SQLITE_FULL, SQLITE_IOERR: the kernel's
// few milliseconds of turning a file system read-only, a disk that filled
// faster than the storage check) does not stop the member: SQLite rolled the
// batch back, the member reloads its state from the db and applies the entries
// since its last commit again from raft's log, and holds the batch until a
// COMMIT goes through. Nothing acknowledged is lost, revisions come back the
// same, and a restart finds everything. The member runs in this process (no
// listeners); the refused COMMIT is injected into its SQLite connection.

import { afterEach, expect, test } from "bun:test"
import { join } from "node:path"
import { parseConfig } from "../../src/config/parse"
import { fromUtf8, utf8 } from "../../src/lib/bytes"
import { systemClock } from "../../src/lib/clock"
import { silentLogger } from "../../src/lib/logger"
import * as pb from "../../src/pb"
import { bootstrapServer } from "../../src/server/bootstrap"
import { RequestKind } from "../../src/server/request"
import type { EtcdServer } from "../../src/server/server"
import { tempDir } from "../support/tmp"

const servers: EtcdServer[] = []
afterEach(async () => {
  for (const s of servers.splice(0)) await s.stop().catch(() => undefined)
})

async function start(dataDir: string, extra: string[] = []): Promise<EtcdServer> {
  const peer = "http://127.0.0.1:1" // never bound: the member runs alone, in this process
  const parsed = parseConfig(
    [`--name=a`, `--data-dir=${dataDir}`, "--listen-client-urls=http://127.0.0.1:2", "--advertise-client-urls=http://127.0.0.1:2", `--listen-peer-urls=${peer}`, `--initial-advertise-peer-urls=${peer}`, `--initial-cluster=a=${peer}`, ...extra],
    {},
  )
  if (parsed.kind !== "config") throw new Error(`config: ${JSON.stringify(parsed)}`)
  const server = await bootstrapServer({ config: parsed.config, logger: silentLogger, clock: systemClock })
  servers.push(server)
  server.start()
  await server.readyNotify()
  return server
}

async function put(server: EtcdServer, key: string, value: string): Promise<number> {
  const r = (await server.propose(RequestKind.Put, pb.encodePutRequest({ key: utf8(key), value: utf8(value) }))) as { header?: { revision?: number } }
  return Number(r.header?.revision ?? 0)
}

/** Makes the next `count` COMMITs of the backend fail as SQLite fails them on a full disk. */
function refuseCommits(server: EtcdServer, count: number, code = "SQLITE_FULL"): { refused: number } {
  const db = server.backend.db
  const exec = db.exec.bind(db)
  const state = { refused: 0 }
  db.exec = ((sql: string, ...rest: unknown[]) => {
    if (sql === "COMMIT" && state.refused < count) {
      state.refused++
      throw Object.assign(new Error(code === "SQLITE_FULL" ? "database or disk is full" : "disk I/O error"), { code })
    }
    return (exec as (s: string, ...r: unknown[]) => unknown)(sql, ...rest)
  }) as typeof db.exec
  return state
}

function values(server: EtcdServer): Map<string, { value: string; modRevision: number }> {
  const r = server.store.range(utf8("k"), utf8("l"))
  return new Map(r.kvs.map((kv) => [fromUtf8(kv.key), { value: fromUtf8(kv.value), modRevision: Number(kv.modRevision) }]))
}

/** Stops the member and starts it again on its data dir: the same keys and the same revision. */
async function expectSameAfterRestart(server: EtcdServer, dataDir: string, state: ReturnType<typeof values>): Promise<void> {
  const revision = server.store.currentRevision()
  await server.stop()
  const again = await start(dataDir)
  expect(values(again)).toEqual(state)
  expect(again.store.currentRevision()).toBe(revision)
}

for (const code of ["SQLITE_FULL", "SQLITE_IOERR_WRITE"]) {
  test(`Backend: a ${code} COMMIT, periodic and inside apply (--backend-batch-limit), rolls the batch back; the member applies the entries again from raft's log, keeps serving, and loses nothing across a restart`, async () => {
    const dataDir = join(tempDir("lost-batch-").path, "data")
    const server = await start(dataDir, ["--backend-batch-limit=7", "--snapshot-count=40"])
    for (let i = 0; i < 20; i++) await put(server, `k${i}`, `v${i}`)
    const refused = refuseCommits(server, 6, code)
    const revisions: number[] = []
    for (let i = 20; i < 60; i++) revisions.push(await put(server, `k${i}`, `v${i}`))
    // Revisions went on one by one through the lost batches.
    expect(revisions).toEqual(Array.from({ length: 40 }, (_, i) => revisions[0]! + i))
    await Bun.sleep(300) // a periodic COMMIT or two, after the refused ones
    expect(refused.refused).toBe(6)
    expect(server.isStopped()).toBe(false)
    expect(server.backend.batchLost()).toBe(false)
    const before = values(server)
    expect(before.size).toBe(60)
    for (let i = 0; i < 60; i++) expect(before.get(`k${i}`)?.value).toBe(`v${i}`)
    const revision = server.store.currentRevision()
    // Consistent with the db: the same state after a restart that replays nothing but what the db lacks.
    await server.stop()
    const again = await start(dataDir)
    expect(values(again)).toEqual(before)
    expect(again.store.currentRevision()).toBe(revision)
    expect(await put(again, "k-after", "x")).toBe(revision + 1)
  }, 30_000)
}

test("Backend: a refused COMMIT under a steady write load (periodic commits refused for a while) keeps every acknowledged put and every revision", async () => {
  const dataDir = join(tempDir("lost-batch-").path, "data")
  const server = await start(dataDir, ["--backend-batch-interval=50ms"])
  const acked: string[] = []
  let stop = false
  const writers = Array.from({ length: 4 }, async (_, w) => {
    for (let i = 0; !stop; i++) {
      await put(server, `k${w}-${i}`, `v${w}-${i}`)
      acked.push(`k${w}-${i}`)
    }
  })
  await Bun.sleep(200)
  const refused = refuseCommits(server, 5)
  await Bun.sleep(1_000)
  stop = true
  await Promise.all(writers)
  expect(refused.refused).toBe(5)
  expect(server.isStopped()).toBe(false)
  const state = values(server)
  expect(acked.filter((k) => !state.has(k))).toEqual([])
  await expectSameAfterRestart(server, dataDir, state)
}, 30_000)

// Found by the long campaign (seed 2029, round 227, on a build before the refused-COMMIT handling):
// a Defragment on a full data dir failed its COMMIT with SQLITE_FULL and, two seconds later, the next
// periodic commit stopped the member. The defragment must fail alone: an error for its caller, the
// member serving on and nothing lost.
test("Backend: a Defragment whose COMMIT and VACUUM the full disk refuses fails alone: the member keeps serving and loses nothing", async () => {
  const dataDir = join(tempDir("lost-batch-").path, "data")
  const server = await start(dataDir, ["--backend-batch-interval=50ms"])
  for (let i = 0; i < 10; i++) await put(server, `k${i}`, `v${i}`)
  const db = server.backend.db
  const exec = db.exec.bind(db)
  let refusing = true
  db.exec = ((sql: string, ...rest: unknown[]) => {
    if (refusing && (sql === "COMMIT" || sql === "VACUUM")) throw Object.assign(new Error("database or disk is full"), { code: "SQLITE_FULL" })
    return (exec as (s: string, ...r: unknown[]) => unknown)(sql, ...rest)
  }) as typeof db.exec
  await put(server, "k10", "v10") // in the open batch when the defragment commits
  expect(() => server.defragment()).toThrow()
  await Bun.sleep(300) // periodic commits, refused too
  expect(server.isStopped()).toBe(false)
  refusing = false // space given back
  await Bun.sleep(300)
  expect(server.isStopped()).toBe(false)
  server.defragment()
  for (let i = 11; i < 15; i++) await put(server, `k${i}`, `v${i}`)
  const state = values(server)
  expect(state.size).toBe(15)
  await expectSameAfterRestart(server, dataDir, state)
}, 30_000)
