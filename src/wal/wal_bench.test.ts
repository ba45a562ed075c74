// WAL benchmarks on the real disk (a temp dir): tiny in every `bun test`,
// full size with TSKV_BENCH=1.
//   TSKV_BENCH=1 npx bun test src/wal/wal_bench

import { expect, test } from "bun:test"
import { join } from "node:path"
import { tempDir } from "../../test/support/tmp"
import { nodeFsPort } from "../lib/fs_port"
import type { Entry } from "../raft/types"
import { EntryType } from "../raft/types"
import { crc32 } from "./frame"
import { Wal } from "./wal"

const full = process.env.TSKV_BENCH === "1"
/** How long each measured loop runs. */
const runMs = full ? 3000 : 60
const metadata = { memberId: 1n, clusterId: 2n }
const timeoutMs = full ? 120_000 : 10_000

function report(name: string, figures: Record<string, number | string>): void {
  console.log(`benchmark: ${name}: ${Object.entries(figures).map(([k, v]) => `${k}=${typeof v === "number" ? Math.round(v * 100) / 100 : v}`).join(" ")}`)
}

/** Runs `step` until runMs have passed; returns the number of steps and the elapsed milliseconds. */
function timed(step: (i: number) => void): { count: number; elapsedMs: number } {
  const start = performance.now()
  let count = 0
  while (performance.now() - start < runMs || count < 3) step(count++)
  return { count, elapsedMs: performance.now() - start }
}

test("benchmark: raw fdatasync rate of this disk (256 B pwrite + fdatasync)", () => {
  const dir = tempDir("tskv-wal-bench-")
  try {
    const record = new Uint8Array(256).fill(0xab)
    for (const layout of ["preallocated", "zero-filled", "appended"] as const) {
      const file = nodeFsPort.open(join(dir.path, `raw-${layout}`), "create")
      if (layout === "preallocated") file.preallocate(64 * 1024 * 1024)
      if (layout === "zero-filled") file.write(new Uint8Array(16 * 1024 * 1024), 0)
      if (layout === "zero-filled") file.fdatasync()
      const { count, elapsedMs } = timed((i) => {
        file.write(record, i * record.length)
        file.fdatasync()
      })
      file.close()
      report(`raw fdatasync (${layout} file)`, { fsyncsPerSec: (count * 1000) / elapsedMs, meanUs: (elapsedMs * 1000) / count, count })
      expect(count).toBeGreaterThan(0)
    }
  } finally {
    dir.remove()
  }
}, timeoutMs)

test("benchmark: WAL save() with group commit, batches of 1/16/256 entries of 256 B", () => {
  const dir = tempDir("tskv-wal-bench-")
  try {
    for (const noFsync of [false, true]) {
      for (const batchSize of [1, 16, 256]) {
        const walDir = join(dir.path, `wal-${batchSize}-${noFsync ? "nosync" : "sync"}`)
        const wal = Wal.create({ fs: nodeFsPort, dir: walDir, metadata, noFsync })
        const data = new Uint8Array(256).fill(0x5a)
        let next = 1
        const { count, elapsedMs } = timed(() => {
          const batch: Entry[] = []
          for (let i = 0; i < batchSize; i++) batch.push({ term: 1, index: next++, type: EntryType.Normal, data })
          wal.save({ term: 1, vote: 1n, commit: next - 1 - batchSize }, batch)
        })
        const lastIndex = wal.lastIndex()
        wal.close()
        expect(lastIndex).toBe(count * batchSize)
        report(`wal save ${batchSize} x 256 B${noFsync ? " (--unsafe-no-fsync)" : ""}`, {
          savesPerSec: (count * 1000) / elapsedMs,
          entriesPerSec: (lastIndex * 1000) / elapsedMs,
          MiBPerSec: (lastIndex * 256 * 1000) / elapsedMs / (1 << 20),
          meanUs: (elapsedMs * 1000) / count,
          lastIndex,
        })
      }
    }
  } finally {
    dir.remove()
  }
}, timeoutMs)

test("benchmark: WAL open (replay and check) of 64 MB of 256 B entries", () => {
  const dir = tempDir("tskv-wal-bench-")
  try {
    const walDir = join(dir.path, "wal")
    const wal = Wal.create({ fs: nodeFsPort, dir: walDir, metadata, noFsync: true })
    const data = new Uint8Array(256).fill(0x5a)
    const total = full ? 200_000 : 2_000
    for (let first = 1; first <= total; first += 256) {
      const batch: Entry[] = []
      for (let i = first; i < first + 256 && i <= total; i++) batch.push({ term: 1, index: i, type: EntryType.Normal, data })
      wal.save({ term: 1, vote: 1n, commit: first - 1 }, batch)
    }
    wal.close()
    const start = performance.now()
    const opened = Wal.open({ fs: nodeFsPort, dir: walDir })
    const elapsedMs = performance.now() - start
    opened.wal.close()
    expect(opened.entries.length).toBe(total)
    report("wal open", { entries: total, elapsedMs, entriesPerSec: (total * 1000) / elapsedMs })
  } finally {
    dir.remove()
  }
}, timeoutMs)

test("benchmark: crc32 (Bun.hash.crc32) of WAL records", () => {
  for (const size of [300, 64 * 1024]) {
    const bytes = new Uint8Array(size).fill(0x3c)
    let crc = 0
    const { count, elapsedMs } = timed(() => {
      for (let i = 0; i < 100; i++) crc = crc32(bytes, crc)
    })
    const hashed = count * 100
    report(`crc32 ${size} B`, { nsPerRecord: (elapsedMs * 1e6) / hashed, MiBPerSec: (hashed * size * 1000) / elapsedMs / (1 << 20), crc })
    expect(hashed).toBeGreaterThan(0)
  }
}, timeoutMs)
