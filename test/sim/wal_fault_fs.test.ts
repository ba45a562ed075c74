// The fault model that the WAL and snapshot tests rely on.

import { describe, expect, test } from "bun:test"
import { isFsError } from "../../src/lib/fs_port"
import { seededPrng } from "../../src/lib/prng"
import { FaultFs, SimulatedCrash } from "./fault_fs"

const bytes = (...values: number[]): Uint8Array => new Uint8Array(values)

function fileWith(fs: FaultFs, path: string, data: Uint8Array, sync: boolean): void {
  const file = fs.open(path, "create")
  file.write(data, 0)
  if (sync) file.fsync()
  file.close()
}

describe("FaultFs", () => {
  test("FaultFs.crash() keeps fsynced data and loses unsynced writes", () => {
    const fs = new FaultFs({ dirs: ["/d"] })
    fileWith(fs, "/d/a", bytes(1, 2, 3), true)
    fs.fsyncDir("/d")
    const file = fs.open("/d/a", "write")
    file.write(bytes(9, 9), 1)
    expect(fs.readFile("/d/a")).toEqual(bytes(1, 9, 9))
    const rebooted = fs.crash()
    expect(rebooted.readFile("/d/a")).toEqual(bytes(1, 2, 3))
    expect(() => fs.readFile("/d/a")).toThrow(SimulatedCrash)
  })

  test("FaultFs.crash() with keepUnsyncedBytes keeps that prefix of the unsynced writes", () => {
    const fs = new FaultFs({ dirs: ["/d"] })
    fileWith(fs, "/d/a", bytes(), true)
    fs.fsyncDir("/d")
    const file = fs.open("/d/a", "write")
    file.write(bytes(1, 2, 3), 0)
    file.write(bytes(4, 5), 3)
    expect(fs.crash({ keepUnsyncedBytes: 0 }).readFile("/d/a")).toEqual(bytes())
    expect(fs.crash({ keepUnsyncedBytes: 2 }).readFile("/d/a")).toEqual(bytes(1, 2))
    expect(fs.crash({ keepUnsyncedBytes: 4 }).readFile("/d/a")).toEqual(bytes(1, 2, 3, 4))
    expect(fs.crash({ keepUnsyncedBytes: 99 }).readFile("/d/a")).toEqual(bytes(1, 2, 3, 4, 5))
  })

  test("FaultFs.crash() with sectors keeps a random subset of the unsynced sectors", () => {
    const fs = new FaultFs({ dirs: ["/d"] })
    fileWith(fs, "/d/a", new Uint8Array(64), true)
    fs.fsyncDir("/d")
    fs.open("/d/a", "write").write(new Uint8Array(64).fill(7), 0)
    const image = fs.crash({ sectors: { prng: seededPrng(3), sectorBytes: 8 } }).readFile("/d/a")
    const kept = [0, 1, 2, 3, 4, 5, 6, 7].map((s) => image[s * 8] === 7)
    expect(kept.some((k) => k)).toBe(true)
    expect(kept.some((k) => !k)).toBe(true)
    for (let s = 0; s < 8; s++) expect(new Set(image.subarray(s * 8, s * 8 + 8)).size).toBe(1)
  })

  test("FaultFs makes new names, renames and unlinks durable only with fsyncDir", () => {
    const fs = new FaultFs({ dirs: ["/d"] })
    fileWith(fs, "/d/a", bytes(1), true)
    expect(fs.clone().exists("/d/a")).toBe(true)
    expect(fs.crash().exists("/d/a")).toBe(false)

    const fs2 = new FaultFs({ dirs: ["/d"] })
    fileWith(fs2, "/d/a", bytes(1), true)
    fs2.fsyncDir("/d")
    fs2.rename("/d/a", "/d/b")
    const lost = fs2.crash()
    expect(lost.exists("/d/a")).toBe(true)
    expect(lost.exists("/d/b")).toBe(false)

    const fs3 = new FaultFs({ dirs: ["/d"] })
    fileWith(fs3, "/d/a", bytes(1), true)
    fs3.fsyncDir("/d")
    fs3.rename("/d/a", "/d/b")
    fs3.fsyncDir("/d")
    expect(fs3.crash().readFile("/d/b")).toEqual(bytes(1))
  })

  test("FaultFs makes a new directory durable only when its parent is fsynced", () => {
    const fs = new FaultFs()
    fs.mkdir("/x/y")
    fs.fsyncDir("/x")
    const rebooted = fs.crash()
    expect(rebooted.exists("/x")).toBe(false)
    expect(rebooted.exists("/x/y")).toBe(false)
  })

  test("FaultFs rules fail the n-th matching operation, writing part of a write first", () => {
    const fs = new FaultFs({ dirs: ["/d"] })
    fs.rules = [{ op: "write", path: "/d/a", nth: 2, error: "ENOSPC", writeBytes: 1 }]
    const file = fs.open("/d/a", "create")
    file.write(bytes(1, 2), 0)
    let error: unknown
    try {
      file.write(bytes(3, 4), 2)
    } catch (e) {
      error = e
    }
    expect(isFsError(error, "ENOSPC")).toBe(true)
    expect(fs.readFile("/d/a")).toEqual(bytes(1, 2, 3))
    file.write(bytes(5), 3)
    expect(fs.readFile("/d/a")).toEqual(bytes(1, 2, 3, 5))
  })

  test("FaultFs capacityBytes makes writes and preallocation fail with ENOSPC", () => {
    const fs = new FaultFs({ dirs: ["/d"], capacityBytes: 10 })
    const file = fs.open("/d/a", "create")
    expect(() => file.write(new Uint8Array(12), 0)).toThrow("ENOSPC")
    expect(fs.readFile("/d/a").length).toBe(10)
    expect(() => fs.open("/d/b", "create").preallocate(5)).toThrow("ENOSPC")
  })

  test("FaultFs crashAtOp crashes at that mutating operation without performing it", () => {
    const fs = new FaultFs({ dirs: ["/d"] })
    fs.crashAtOp = 3
    const file = fs.open("/d/a", "create") // 1
    file.write(bytes(1), 0) // 2
    expect(() => file.fsync()).toThrow(SimulatedCrash) // 3
    expect(fs.isCrashed).toBe(true)
  })

  test("FaultFs tryLock is exclusive between open files until close", () => {
    const fs = new FaultFs({ dirs: ["/d"] })
    const a = fs.open("/d/a", "create")
    const b = fs.open("/d/a", "write")
    expect(a.tryLock()).toBe(true)
    expect(b.tryLock()).toBe(false)
    a.close()
    expect(b.tryLock()).toBe(true)
  })
})
