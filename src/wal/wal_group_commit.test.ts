// saveAsync() as group commit: saves that arrive while an fdatasync is in
// flight are written at once and share the next one; their callbacks run in
// the order of the saves; a failed sync fails every save that waited on it.

import { describe, expect, test } from "bun:test"
import type { Entry, HardState } from "../raft/types"
import { EntryType } from "../raft/types"
import { ManualSyncFs } from "../../test/sim/manual_sync_fs"
import { Wal } from "./wal"

const dir = "/data/member/wal"
const metadata = { memberId: 1n, clusterId: 2n }

function entries(from: number, to: number, term = 1, size = 1): Entry[] {
  const out: Entry[] = []
  for (let i = from; i <= to; i++) out.push({ term, index: i, type: EntryType.Normal, data: new Uint8Array(size).fill(i & 0xff) })
  return out
}
const hs = (term: number, commit: number): HardState => ({ term, vote: 1n, commit })

describe("Wal.saveAsync: group commit", () => {
  test("saves during an fdatasync share the next one; callbacks run in save order", () => {
    const fs = new ManualSyncFs()
    const wal = Wal.create({ fs, dir, metadata })
    const order: string[] = []
    wal.saveAsync(hs(1, 0), entries(1, 2), () => order.push("a"))
    expect(fs.syncs).toBe(1)
    wal.saveAsync(hs(1, 1), entries(3, 4), () => order.push("b"))
    wal.saveAsync(hs(1, 2), [], () => order.push("c (commit only)"))
    wal.saveAsync(hs(1, 2), entries(5, 5), () => order.push("d"))
    expect(fs.syncs).toBe(1) // b, c, d wait for a's sync to end
    expect(wal.idle()).toBe(false)
    fs.complete()
    expect(order).toEqual(["a"])
    expect(fs.syncs).toBe(2) // one fdatasync for b and d
    fs.complete()
    expect(order).toEqual(["a", "b", "c (commit only)", "d"])
    expect(wal.idle()).toBe(true)
    // A commit-only save with nothing waiting is done at once.
    let now = false
    wal.saveAsync(hs(1, 5), [], () => (now = true))
    expect(now).toBe(true)
    wal.close()
    const opened = Wal.open({ fs: fs.inner, dir })
    expect(opened.entries).toEqual(entries(1, 5))
    expect(opened.hardState).toEqual(hs(1, 5))
    opened.wal.close()
  })

  test("a save from inside a callback starts the next sync, behind the saves already waiting", () => {
    const fs = new ManualSyncFs()
    const wal = Wal.create({ fs, dir, metadata })
    const order: string[] = []
    wal.saveAsync(hs(1, 0), entries(1, 1), () => {
      order.push("a")
      wal.saveAsync(hs(1, 1), entries(3, 3), () => order.push("c"))
    })
    wal.saveAsync(hs(1, 0), entries(2, 2), () => order.push("b"))
    fs.complete()
    expect(order).toEqual(["a"])
    expect(fs.pending).toHaveLength(1) // b and c in one sync
    fs.complete()
    expect(order).toEqual(["a", "b", "c"])
    wal.close()
  })

  test("a failed fdatasync fails the saves it covered and those waiting behind it; the WAL refuses more", () => {
    const fs = new ManualSyncFs()
    const wal = Wal.create({ fs, dir, metadata })
    const results: (string | null)[] = []
    wal.saveAsync(hs(1, 0), entries(1, 1), (e) => results.push(e?.message ?? null))
    wal.saveAsync(hs(1, 0), entries(2, 2), (e) => results.push(e?.message ?? null))
    fs.failNext = new Error("EIO: fdatasync")
    fs.complete()
    expect(results).toEqual(["EIO: fdatasync", "EIO: fdatasync"])
    expect(() => wal.saveAsync(hs(1, 0), entries(3, 3), () => {})).toThrow("an earlier write failed")
  })

  test("a full segment is cut once no fdatasync is in flight on it, and every save stays readable", () => {
    const fs = new ManualSyncFs()
    const wal = Wal.create({ fs, dir, metadata, segmentBytes: 4096 })
    let done = 0
    let index = 1
    for (let round = 0; round < 20; round++) {
      for (let k = 0; k < 3; k++) {
        wal.saveAsync(hs(1, index - 1), entries(index, index + 9, 1, 100), () => done++)
        index += 10
      }
      while (fs.pending.length > 0) fs.complete()
    }
    expect(done).toBe(60)
    expect(wal.segmentNames().length).toBeGreaterThan(10)
    wal.close()
    const opened = Wal.open({ fs: fs.inner, dir })
    expect(opened.entries).toEqual(entries(1, index - 1, 1, 100))
    opened.wal.close()
  })

  test("a save written after the fdatasync in flight was issued is not covered by it", () => {
    const fs = new ManualSyncFs()
    const wal = Wal.create({ fs, dir, metadata })
    let acked = 0
    wal.saveAsync(hs(1, 0), entries(1, 2), () => acked++)
    wal.saveAsync(hs(1, 2), entries(3, 4), () => acked++)
    expect(fs.syncs).toBe(1)
    // Crash before anything was reported: the second save had no fdatasync of its own yet.
    const rebooted = fs.inner.crash()
    expect(acked).toBe(0)
    const opened = Wal.open({ fs: rebooted, dir })
    expect(opened.entries).toEqual(entries(1, 2))
    opened.wal.close()
  })

  test("save() and saveSnapshot() refuse to run while a saveAsync() waits", () => {
    const fs = new ManualSyncFs()
    const wal = Wal.create({ fs, dir, metadata })
    wal.saveAsync(hs(1, 0), entries(1, 1), () => {})
    expect(() => wal.save(hs(1, 1), entries(2, 2))).toThrow("save() while saveAsync()")
    expect(() => wal.saveSnapshot({ index: 1, term: 1 })).toThrow("saveSnapshot() while saveAsync()")
    fs.complete()
    wal.save(hs(1, 1), entries(2, 2))
    wal.close()
  })
})
