import { describe, expect, test } from "bun:test"
import { createLogger } from "../lib/logger"
import type { Snapshot } from "../raft/types"
import { FaultFs, SimulatedCrash } from "../../test/sim/fault_fs"
import { Snapshotter } from "./snapshotter"

const dir = "/data/member/snap"

function snapshot(term: number, index: number): Snapshot {
  return {
    metadata: { index, term, confState: { voters: [1n, 0xfffffffffffffff1n], learners: [3n] } },
    data: new Uint8Array([index & 0xff, term & 0xff, 42]),
  }
}

function newFs(): FaultFs {
  return new FaultFs({ dirs: ["/data/member"] })
}

describe("Snapshotter", () => {
  test("Snapshotter.load() returns the newest saved snapshot, round-tripping metadata and data", () => {
    const fs = newFs()
    const snap = new Snapshotter({ fs, dir })
    expect(snap.load()).toBeUndefined()
    snap.save(snapshot(1, 10))
    snap.save(snapshot(2, 20))
    snap.save(snapshot(2, 15))
    expect(snap.load()).toEqual(snapshot(2, 20))
    expect(snap.names()).toEqual(["0000000000000002-0000000000000014.snap", "0000000000000002-000000000000000f.snap", "0000000000000001-000000000000000a.snap"])
  })

  test("Snapshotter.save() ignores an empty snapshot", () => {
    const fs = newFs()
    const snap = new Snapshotter({ fs, dir })
    snap.save(snapshot(0, 0))
    expect(snap.names()).toEqual([])
  })

  test("Snapshotter.load() skips a damaged newest file with a warning and renames it *.broken", () => {
    const fs = newFs()
    const lines: string[] = []
    const snap = new Snapshotter({ fs, dir, logger: createLogger({ write: (l) => lines.push(l) }) })
    snap.save(snapshot(1, 10))
    snap.save(snapshot(1, 20))
    const newest = `${dir}/0000000000000001-0000000000000014.snap`
    fs.corrupt(newest, 6)
    expect(snap.load()).toEqual(snapshot(1, 10))
    expect(fs.exists(newest)).toBe(false)
    expect(fs.exists(`${newest}.broken`)).toBe(true)
    expect(lines.some((l) => l.includes("damaged snapshot") && l.includes("crc mismatch"))).toBe(true)
  })

  test("Snapshotter.load() treats an empty file and a file whose name does not match its contents as damaged", () => {
    const fs = newFs()
    const snap = new Snapshotter({ fs, dir })
    snap.save(snapshot(1, 10))
    const empty = fs.open(`${dir}/0000000000000001-0000000000000030.snap`, "create")
    empty.close()
    fs.rename(`${dir}/0000000000000001-000000000000000a.snap`, `${dir}/0000000000000001-0000000000000020.snap`)
    expect(snap.load()).toBeUndefined()
    expect(fs.readdir(dir).filter((n) => n.endsWith(".broken")).length).toBe(2)
  })

  test("Snapshotter.save() keeps only the newest maxSnapshots files and never touches the db", () => {
    const fs = newFs()
    const snap = new Snapshotter({ fs, dir, maxSnapshots: 2 })
    const dbFile = fs.open(`${dir}/db`, "create")
    dbFile.write(new Uint8Array([1, 2, 3]), 0)
    dbFile.close()
    for (let i = 1; i <= 6; i++) snap.save(snapshot(1, i * 10))
    expect(snap.names()).toEqual(["0000000000000001-000000000000003c.snap", "0000000000000001-0000000000000032.snap"])
    expect(fs.readFile(`${dir}/db`)).toEqual(new Uint8Array([1, 2, 3]))
    const unlimited = new Snapshotter({ fs, dir, maxSnapshots: 0 })
    for (let i = 7; i <= 9; i++) unlimited.save(snapshot(1, i * 10))
    expect(unlimited.names().length).toBe(5)
  })

  test("Snapshotter.loadNewestAvailable() returns the newest snapshot that the WAL has a marker for", () => {
    const fs = newFs()
    const snap = new Snapshotter({ fs, dir })
    snap.save(snapshot(1, 10))
    snap.save(snapshot(2, 20))
    expect(snap.loadNewestAvailable([{ index: 0, term: 0 }, { index: 10, term: 1 }])).toEqual(snapshot(1, 10))
    expect(snap.loadNewestAvailable([{ index: 20, term: 1 }])).toBeUndefined()
    expect(snap.loadNewestAvailable([{ index: 10, term: 1 }, { index: 20, term: 2 }])).toEqual(snapshot(2, 20))
  })

  test("Snapshotter.save() interrupted by a crash at any step leaves the old newest or the new one, never a damaged file", () => {
    let crashes = 0
    for (let crashAt = 1; crashAt < 40; crashAt++) {
      const fs = newFs()
      const snap = new Snapshotter({ fs, dir })
      snap.save(snapshot(1, 10))
      fs.crashAtOp = fs.opCount + crashAt
      let saved = false
      try {
        snap.save(snapshot(1, 20))
        saved = true
      } catch (e) {
        expect(e).toBeInstanceOf(SimulatedCrash)
        crashes++
      }
      for (const keep of [0, 3, Number.MAX_SAFE_INTEGER]) {
        const rebooted = fs.crash({ keepUnsyncedBytes: keep })
        const lines: string[] = []
        const loaded = new Snapshotter({ fs: rebooted, dir, logger: createLogger({ write: (l) => lines.push(l) }) }).load()
        expect(lines.filter((l) => l.includes("damaged")), `crash at ${crashAt}, keep ${keep}`).toEqual([])
        if (saved) expect(loaded).toEqual(snapshot(1, 20))
        else expect([snapshot(1, 10), snapshot(1, 20)]).toContainEqual(loaded!)
        expect(rebooted.readdir(dir).filter((n) => n.endsWith(".tmp"))).toEqual([])
      }
      if (saved) break
    }
    expect(crashes).toBeGreaterThan(3)
  })
})
