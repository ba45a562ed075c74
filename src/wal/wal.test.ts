import { afterEach, describe, expect, test } from "bun:test"
import { mkdtempSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { nodeFsPort } from "../lib/fs_port"
import { createLogger } from "../lib/logger"
import type { Entry, HardState } from "../raft/types"
import { EntryType } from "../raft/types"
import { FaultFs } from "../../test/sim/fault_fs"
import { WalError, WalWriteRefused } from "./errors"
import { Wal } from "./wal"

const dir = "/data/member/wal"
const metadata = { memberId: 0x8e9e05c52164694dn, clusterId: 0xcdf818194e3a8c32n }

function entry(index: number, term = 1, size = 16): Entry {
  const data = new Uint8Array(size)
  for (let i = 0; i < size; i++) data[i] = (index * 31 + term * 7 + i) & 0xff
  return { term, index, type: EntryType.Normal, data }
}

function entries(from: number, to: number, term = 1, size = 16): Entry[] {
  const out: Entry[] = []
  for (let i = from; i <= to; i++) out.push(entry(i, term, size))
  return out
}

function hs(term: number, commit: number, vote = 1n): HardState {
  return { term, vote, commit }
}

function newFs(): FaultFs {
  return new FaultFs({ dirs: ["/data/member"] })
}

describe("Wal", () => {
  test("Wal.open() returns the metadata, hard state and entries that save() wrote", () => {
    const fs = newFs()
    const wal = Wal.create({ fs, dir, metadata })
    wal.save(hs(1, 0), entries(1, 3))
    wal.save(hs(2, 3, 2n), entries(4, 10, 2))
    wal.close()
    const opened = Wal.open({ fs, dir })
    expect(opened.metadata).toEqual(metadata)
    expect(opened.hardState).toEqual(hs(2, 3, 2n))
    expect(opened.entries).toEqual([...entries(1, 3), ...entries(4, 10, 2)])
    expect(opened.wal.lastIndex()).toBe(10)
    opened.wal.close()
  })

  test("Wal.open() applies entries that overwrite a suffix, as raft truncates a conflicting tail", () => {
    const fs = newFs()
    const wal = Wal.create({ fs, dir, metadata })
    wal.save(hs(1, 2), entries(1, 6))
    wal.save(hs(2, 2), entries(4, 5, 2))
    expect(wal.lastIndex()).toBe(5)
    wal.save(undefined, entries(6, 6, 2))
    wal.close()
    const opened = Wal.open({ fs, dir })
    expect(opened.entries).toEqual([...entries(1, 3), ...entries(4, 6, 2)])
    opened.wal.close()
  })

  test("Wal.open() applies an overwrite of entries cut into an earlier segment", () => {
    const fs = newFs()
    const wal = Wal.create({ fs, dir, metadata, segmentBytes: 1024 })
    for (let i = 1; i <= 30; i++) wal.save(hs(1, 20), [entry(i, 1, 100)])
    wal.save(hs(2, 20), entries(22, 23, 2, 1200))
    wal.save(hs(3, 20), entries(24, 26, 3, 100))
    wal.close()
    const names = wal.segmentNames().map((n) => Number.parseInt(n.slice(17, 33), 16))
    expect(names.some((index, i) => i > 0 && index < names[i - 1]!)).toBe(true)
    const expected = [...entries(1, 21, 1, 100), ...entries(22, 23, 2, 1200), ...entries(24, 26, 3, 100)]
    expect(Wal.open({ fs, dir, segmentBytes: 1024 }).entries).toEqual(expected)
  })

  test("Wal.save() refuses entries that would leave a gap", () => {
    const fs = newFs()
    const wal = Wal.create({ fs, dir, metadata })
    wal.save(hs(1, 0), entries(1, 2))
    expect(() => wal.save(undefined, entries(4, 4))).toThrow("gap")
    expect(() => wal.save(undefined, [entry(3), entry(5)])).toThrow("contiguous")
  })

  test("Wal.save() writes nothing for an empty Ready", () => {
    const fs = newFs()
    const wal = Wal.create({ fs, dir, metadata })
    wal.save(hs(1, 0), entries(1, 1))
    const ops = fs.opCount
    wal.save(undefined, [])
    wal.save(hs(1, 0), [])
    expect(fs.opCount).toBe(ops)
  })

  test("Wal reports the duration of every fdatasync to onSync", () => {
    const fs = newFs()
    const durations: number[] = []
    const wal = Wal.create({ fs, dir, metadata, onSync: (ms) => durations.push(ms) })
    wal.save(hs(1, 0), entries(1, 2))
    wal.save(hs(1, 1), [])
    wal.save(hs(2, 1), [])
    wal.saveSnapshot({ index: 1, term: 1 })
    expect(durations.length).toBe(3)
    expect(durations.every((ms) => ms >= 0)).toBe(true)
  })

  test("Wal.save() does not fsync a commit-only hard state change, as etcd", () => {
    const fs = newFs()
    const wal = Wal.create({ fs, dir, metadata })
    wal.save(hs(1, 0), entries(1, 2))
    wal.save(hs(1, 2), [])
    const rebooted = fs.crash()
    const opened = Wal.open({ fs: rebooted, dir })
    expect(opened.hardState).toEqual(hs(1, 0))
    expect(opened.entries).toEqual(entries(1, 2))
  })

  test("Wal cuts segments at segmentBytes and reads across them", () => {
    const fs = newFs()
    const wal = Wal.create({ fs, dir, metadata, segmentBytes: 1024 })
    for (let i = 1; i <= 100; i++) wal.save(hs(1, i - 1), [entry(i, 1, 100)])
    expect(wal.segmentNames().length).toBeGreaterThan(5)
    expect(wal.segmentNames()[1]).toMatch(/^0000000000000001-[0-9a-f]{16}\.wal$/)
    wal.close()
    const opened = Wal.open({ fs, dir, segmentBytes: 1024 })
    expect(opened.entries).toEqual(entries(1, 100, 1, 100))
    expect(opened.hardState).toEqual(hs(1, 99))
    opened.wal.save(undefined, [entry(101)])
    opened.wal.close()
    expect(Wal.open({ fs, dir }).entries.length).toBe(101)
  })

  test("Wal.open() from a snapshot returns only the entries after it and checks its marker", () => {
    const fs = newFs()
    const wal = Wal.create({ fs, dir, metadata, segmentBytes: 1024 })
    for (let i = 1; i <= 60; i++) wal.save(hs(1, i), [entry(i, 1, 100)])
    wal.saveSnapshot({ index: 40, term: 1 })
    for (let i = 61; i <= 80; i++) wal.save(hs(1, i), [entry(i, 1, 100)])
    wal.close()
    const opened = Wal.open({ fs, dir, snapshot: { index: 40, term: 1 } })
    expect(opened.entries).toEqual(entries(41, 80, 1, 100))
    opened.wal.close()
    expect(() => Wal.open({ fs, dir, snapshot: { index: 40, term: 2 } })).toThrow("snapshot term mismatch")
    expect(() => Wal.open({ fs, dir, snapshot: { index: 41, term: 1 } })).toThrow("not found")
  })

  test("Wal.releaseTo() deletes the oldest segments wholly before the snapshot, keeping maxWals", () => {
    const fs = newFs()
    const wal = Wal.create({ fs, dir, metadata, segmentBytes: 1024, maxWals: 2 })
    for (let i = 1; i <= 60; i++) wal.save(hs(1, i), [entry(i, 1, 100)])
    wal.saveSnapshot({ index: 50, term: 1 })
    const before = wal.segmentNames()
    wal.releaseTo(50)
    const after = wal.segmentNames()
    expect(after.length).toBeGreaterThanOrEqual(2)
    expect(after.length).toBeLessThan(before.length)
    expect(fs.readdir(dir).filter((n) => n.endsWith(".wal"))).toEqual(after)
    wal.close()
    const opened = Wal.open({ fs, dir, snapshot: { index: 50, term: 1 } })
    expect(opened.entries).toEqual(entries(51, 60, 1, 100))
    opened.wal.close()
    expect(() => Wal.open({ fs, dir })).toThrow("no segment holds snapshot index 0")
  })

  test("Wal.releaseTo() after Wal.open() from a snapshot purges the segments before it", () => {
    const fs = newFs()
    const wal = Wal.create({ fs, dir, metadata, segmentBytes: 1024, maxWals: 0 })
    for (let i = 1; i <= 60; i++) wal.save(hs(1, i), [entry(i, 1, 100)])
    wal.saveSnapshot({ index: 50, term: 1 })
    wal.close()
    const count = wal.segmentNames().length
    const opened = Wal.open({ fs, dir, snapshot: { index: 50, term: 1 }, segmentBytes: 1024, maxWals: 1 })
    expect(opened.wal.segmentNames().length).toBe(count)
    opened.wal.releaseTo(50)
    expect(opened.wal.segmentNames().length).toBeLessThan(count)
    opened.wal.close()
    expect(Wal.open({ fs, dir, snapshot: { index: 50, term: 1 } }).entries).toEqual(entries(51, 60, 1, 100))
  })

  test("Wal.validSnapshots() lists the snapshot markers at or below the last commit", () => {
    const fs = newFs()
    const wal = Wal.create({ fs, dir, metadata, segmentBytes: 1024, maxWals: 2 })
    for (let i = 1; i <= 40; i++) wal.save(hs(1, i), [entry(i, 1, 100)])
    wal.saveSnapshot({ index: 20, term: 1 })
    wal.saveSnapshot({ index: 40, term: 1 })
    wal.releaseTo(20)
    wal.save(hs(2, 40), [entry(41, 2, 100)])
    wal.saveSnapshot({ index: 41, term: 2 })
    wal.close()
    expect(Wal.validSnapshots({ fs, dir })).toEqual([
      { index: 0, term: 0 },
      { index: 20, term: 1 },
      { index: 40, term: 1 },
    ])
  })

  test("Wal.releaseTo() keeps every segment with maxWals 0", () => {
    const fs = newFs()
    const wal = Wal.create({ fs, dir, metadata, segmentBytes: 1024, maxWals: 0 })
    for (let i = 1; i <= 30; i++) wal.save(hs(1, i), [entry(i, 1, 100)])
    const before = wal.segmentNames()
    wal.releaseTo(30)
    expect(wal.segmentNames()).toEqual(before)
  })

  test("Wal.open() refuses a bad crc in a segment that is not the last, naming file and offset", () => {
    const fs = newFs()
    const wal = Wal.create({ fs, dir, metadata, segmentBytes: 1024 })
    for (let i = 1; i <= 30; i++) wal.save(hs(1, i), [entry(i, 1, 100)])
    wal.close()
    const [, second] = wal.segmentNames()
    fs.corrupt(`${dir}/${second!}`, 200)
    let error: unknown
    try {
      Wal.open({ fs, dir })
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(WalError)
    const walError = error as WalError
    expect(walError.file).toBe(`${dir}/${second!}`)
    expect(walError.offset).toBeGreaterThan(0)
    expect(walError.offset).toBeLessThanOrEqual(200)
    expect(walError.message).toContain(second!)
  })

  test("Wal.open() refuses a damaged record followed by others in the last segment", () => {
    const fs = newFs()
    const wal = Wal.create({ fs, dir, metadata })
    for (let i = 1; i <= 10; i++) wal.save(hs(1, i), [entry(i)])
    wal.close()
    fs.corrupt(`${dir}/${wal.segmentNames()[0]!}`, 120)
    expect(() => Wal.open({ fs, dir })).toThrow(/crc mismatch|checksum/)
  })

  test("Wal.open() refuses a zeroed record header followed by acknowledged records in the last segment", () => {
    const fs = newFs()
    const wal = Wal.create({ fs, dir, metadata })
    for (let i = 1; i <= 10; i++) wal.save(hs(1, i), [entry(i)])
    wal.close()
    const path = `${dir}/${wal.segmentNames()[0]!}`
    const bytes = fs.readFile(path)
    // Walk to the fourth record and zero its header.
    let at = 0
    for (let r = 0; r < 4; r++) at += 16 + new DataView(bytes.buffer, bytes.byteOffset + at).getUint32(0, true)
    for (let i = 0; i < 16; i++) if (bytes[at + i] !== 0) fs.corrupt(path, at + i, bytes[at + i]!)
    expect(() => Wal.open({ fs, dir })).toThrow(`damaged record header (file ${path}, offset ${at})`)
  })

  test("Wal.open() refuses a missing segment", () => {
    const fs = newFs()
    const wal = Wal.create({ fs, dir, metadata, segmentBytes: 1024 })
    for (let i = 1; i <= 30; i++) wal.save(hs(1, i), [entry(i, 1, 100)])
    wal.close()
    const names = wal.segmentNames()
    fs.unlink(`${dir}/${names[2]!}`)
    expect(() => Wal.open({ fs, dir })).toThrow(`segment missing: ${names[1]!} is followed by ${names[3]!}`)
  })

  test("Wal.open() refuses records lost at the end of a middle segment (crc chain)", () => {
    const fs = newFs()
    const wal = Wal.create({ fs, dir, metadata, segmentBytes: 1024 })
    for (let i = 1; i <= 30; i++) wal.save(hs(1, i), [entry(i, 1, 100)])
    wal.close()
    const first = `${dir}/${wal.segmentNames()[0]!}`
    const file = fs.open(first, "write")
    file.truncate(file.size() - 50)
    file.close()
    expect(() => Wal.open({ fs, dir })).toThrow(/truncated record in a segment that is not the last/)
    const file2 = fs.open(first, "write")
    const size = file2.size()
    // Drop the whole last record of the first segment: the next segment's crc no longer follows.
    const bytes = fs.readFile(first)
    let at = 0
    let lastStart = 0
    while (at < size) {
      lastStart = at
      at += 16 + new DataView(bytes.buffer, bytes.byteOffset + at).getUint32(0, true)
    }
    file2.truncate(lastStart)
    file2.close()
    expect(() => Wal.open({ fs, dir })).toThrow("crc chain broken")
  })

  test("Wal.open() refuses a hard state whose commit is beyond the entries", () => {
    const fs = newFs()
    const wal = Wal.create({ fs, dir, metadata })
    wal.save(hs(1, 3), entries(1, 3))
    wal.save(hs(1, 3), entries(2, 2))
    wal.close()
    expect(() => Wal.open({ fs, dir })).toThrow("committed entries are missing")
  })

  test("Wal.open() refuses a WAL that another open Wal holds, until it is closed", () => {
    const fs = newFs()
    const wal = Wal.create({ fs, dir, metadata, segmentBytes: 1024 })
    expect(() => Wal.open({ fs, dir })).toThrow("locked by another process")
    for (let i = 1; i <= 20; i++) wal.save(hs(1, i), [entry(i, 1, 100)])
    expect(() => Wal.open({ fs, dir })).toThrow("locked by another process")
    wal.close()
    const opened = Wal.open({ fs, dir })
    expect(opened.entries.length).toBe(20)
    opened.wal.close()
  })

  test("Wal.create() refuses a directory that already holds a WAL", () => {
    const fs = newFs()
    Wal.create({ fs, dir, metadata }).close()
    expect(() => Wal.create({ fs, dir, metadata })).toThrow("already holds a WAL")
    expect(Wal.exists(fs, dir)).toBe(true)
    expect(Wal.exists(fs, "/data/none")).toBe(false)
  })

  test("Wal with noFsync logs loudly and does not fdatasync", () => {
    const lines: string[] = []
    const logger = createLogger({ write: (l) => lines.push(l) })
    const fs = newFs()
    const wal = Wal.create({ fs, dir, metadata, noFsync: true, logger })
    expect(lines.some((l) => l.includes("unsafe-no-fsync") && l.includes('"warn"'))).toBe(true)
    wal.save(hs(1, 0), entries(1, 5))
    const opened = Wal.open({ fs: fs.crash(), dir })
    expect(opened.entries).toEqual([])
  })

  test("Wal works on the real file system, with preallocated segments", () => {
    const base = mkdtempSync(`${tmpdir()}/tskv-wal-`)
    cleanup.push(base)
    const realDir = `${base}/member/wal`
    const wal = Wal.create({ fs: nodeFsPort, dir: realDir, metadata, segmentBytes: 64 * 1024 })
    for (let i = 1; i <= 300; i += 3) wal.save(hs(1, i + 2), entries(i, i + 2, 1, 512))
    const names = wal.segmentNames()
    expect(names.length).toBeGreaterThan(2)
    expect(statSync(`${realDir}/${names[names.length - 1]!}`).size).toBe(64 * 1024)
    expect(() => Wal.open({ fs: nodeFsPort, dir: realDir })).toThrow("locked by another process")
    wal.close()
    const opened = Wal.open({ fs: nodeFsPort, dir: realDir, segmentBytes: 64 * 1024 })
    expect(opened.entries).toEqual(entries(1, 300, 1, 512))
    expect(opened.hardState).toEqual(hs(1, 300))
    opened.wal.close()
  }, 30_000)
})

const cleanup: string[] = []
afterEach(() => {
  for (const d of cleanup.splice(0)) rmSync(d, { recursive: true, force: true })
})

describe("Wal: a write the file system refuses", () => {
  for (const code of ["ENOSPC"] as const) {
    test(`${code} on the append (part of the record written): saveAsync() throws WalWriteRefused, the WAL stays usable, the same save goes through later`, () => {
      const fs = newFs()
      const wal = Wal.create({ fs, dir, metadata })
      wal.save(hs(1, 0), entries(1, 3))
      fs.rules.push({ op: "write", path: /\.wal/, error: code, writeBytes: 7 })
      let done = 0
      expect(() => wal.saveAsync(hs(1, 3), entries(4, 6), () => done++)).toThrow(WalWriteRefused)
      expect(done).toBe(0)
      expect(wal.lastIndex()).toBe(3)
      // Space is back: the same save again, then more.
      wal.saveAsync(hs(1, 3), entries(4, 6), (error) => {
        expect(error).toBeNull()
        done++
      })
      wal.save(hs(1, 6), entries(7, 8))
      wal.close()
      const opened = Wal.open({ fs, dir })
      expect(done).toBe(1)
      expect(opened.entries).toEqual(entries(1, 8))
      expect(opened.hardState).toEqual(hs(1, 6))
      opened.wal.close()
    })
  }

  test("EROFS on the sync at close(): the file is closed, close() throws WalWriteRefused, every synced record reopens", () => {
    const fs = newFs()
    const wal = Wal.create({ fs, dir, metadata })
    wal.save(hs(1, 0), entries(1, 3))
    fs.rules.push({ op: "fdatasync", path: /\.wal/, error: "EROFS" })
    expect(() => wal.close()).toThrow(WalWriteRefused)
    fs.rules.length = 0
    // Closed: the lock is free, and what was saved with a sync is there.
    const opened = Wal.open({ fs, dir })
    expect(opened.entries).toEqual(entries(1, 3))
    opened.wal.close()
  })

  test("EIO on the sync at close(): the file is closed, close() throws the error as it is", () => {
    const fs = newFs()
    const wal = Wal.create({ fs, dir, metadata })
    wal.save(hs(1, 0), entries(1, 3))
    fs.rules.push({ op: "fdatasync", path: /\.wal/, error: "EIO" })
    let thrown: unknown
    try {
      wal.close()
    } catch (e) {
      thrown = e
    }
    expect(thrown).not.toBeInstanceOf(WalWriteRefused)
    expect(String(thrown)).toContain("EIO")
    fs.rules.length = 0
    Wal.open({ fs, dir }).wal.close()
  })

  test("EIO on the append: the WAL refuses every later write (it must be reopened)", () => {
    const fs = newFs()
    const wal = Wal.create({ fs, dir, metadata })
    wal.save(hs(1, 0), entries(1, 3))
    fs.rules.push({ op: "write", path: /\.wal/, error: "EIO" })
    expect(() => wal.saveAsync(hs(1, 3), entries(4, 6), () => {})).toThrow("EIO")
    expect(() => wal.saveAsync(hs(1, 3), entries(4, 6), () => {})).toThrow("an earlier write failed")
  })
})
