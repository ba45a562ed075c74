// The WAL under crashes, torn writes, lost fsyncs, ENOSPC and EIO, through the
// fault-injecting file system. After every crash and reopen: every entry whose
// save() returned is there, and nothing is there that was not written (the
// log is exactly the acknowledged one, or the one the interrupted save() would
// have made).

import { describe, expect, test } from "bun:test"
import { isFsError } from "../../src/lib/fs_port"
import { createLogger } from "../../src/lib/logger"
import type { Prng } from "../../src/lib/prng"
import { seededPrng } from "../../src/lib/prng"
import type { Entry, HardState } from "../../src/raft/types"
import { EntryType } from "../../src/raft/types"
import { WalError, WalWriteRefused } from "../../src/wal/errors"
import type { WalSnapshot } from "../../src/wal/wal"
import { Wal } from "../../src/wal/wal"
import type { FaultRule } from "./fault_fs"
import { FaultFs, SimulatedCrash } from "./fault_fs"

const dir = "/data/member/wal"
const metadata = { memberId: 0x1234n, clusterId: 0xfeedn }
const segmentBytes = 2048
const seed = Number(process.env.TSKV_SEED ?? 20261122)

function newFs(): FaultFs {
  return new FaultFs({ dirs: ["/data/member"] })
}

function makeEntry(prng: Prng, index: number, term: number): Entry {
  const data = new Uint8Array(1 + prng.int(300))
  for (let i = 0; i < data.length; i++) data[i] = prng.int(256)
  return { term, index, type: prng.int(8) === 0 ? EntryType.ConfChange : EntryType.Normal, data }
}

/** What the WAL must hold: the acknowledged state and the state of a save() in flight. */
class Model {
  log: Entry[] = []
  hardState: HardState = { term: 0, vote: 0n, commit: 0 }
  snapshot: WalSnapshot = { index: 0, term: 0 }
  /** Hard states written since the last point known durable (any of them may survive a crash). */
  hardStates: HardState[] = [{ term: 0, vote: 0n, commit: 0 }]
  inflight: { log: Entry[]; hardState: HardState } | undefined

  lastIndex(): number {
    return this.log.length
  }
}

/** Drives a Wal with random Ready batches until `steps` are done or the file system fails. */
function runWorkload(fs: FaultFs, prng: Prng, steps: number, model: Model): unknown {
  let wal: Wal | undefined
  try {
    wal = Wal.create({ fs, dir, metadata, segmentBytes, maxWals: 2 })
    for (let step = 0; step < steps; step++) doStep(wal, prng, model)
    wal.close()
    return undefined
  } catch (e) {
    return e
  }
}

function doStep(wal: Wal, prng: Prng, model: Model): void {
  const roll = prng.int(10)
  const hs = model.hardState
  if (roll < 5) {
    // Append (sometimes overwriting an uncommitted suffix with a higher term).
    let from = model.lastIndex() + 1
    let term = Math.max(hs.term, 1)
    if (prng.int(5) === 0 && model.lastIndex() > hs.commit) {
      from = hs.commit + 1 + prng.int(model.lastIndex() - hs.commit)
      term = hs.term + 1
    }
    const count = 1 + prng.int(6)
    const batch: Entry[] = []
    for (let i = 0; i < count; i++) batch.push(makeEntry(prng, from + i, term))
    const log = [...model.log.slice(0, from - 1), ...batch]
    const next: HardState = { term, vote: term === hs.term ? hs.vote : BigInt(1 + prng.int(3)), commit: hs.commit }
    model.inflight = { log, hardState: next }
    model.hardStates.push(next)
    wal.save(next, batch)
    model.log = log
    model.hardState = next
    model.hardStates = [next]
  } else if (roll < 7) {
    // Commit advances: written, not synced.
    if (hs.commit >= model.lastIndex()) return
    const next: HardState = { ...hs, commit: hs.commit + 1 + prng.int(model.lastIndex() - hs.commit) }
    model.inflight = { log: model.log, hardState: next }
    model.hardStates.push(next)
    wal.save(next, [])
    model.hardState = next
  } else if (roll < 9) {
    // Snapshot at the commit index, then release.
    if (hs.commit === 0 || hs.commit === model.snapshot.index) return
    const snapshot = { index: hs.commit, term: model.log[hs.commit - 1]!.term }
    model.inflight = { log: model.log, hardState: hs }
    wal.saveSnapshot(snapshot)
    model.snapshot = snapshot
    model.hardStates = [hs]
    wal.releaseTo(snapshot.index)
  } else {
    // A save with only a new term (must sync).
    const next: HardState = { term: hs.term + 1, vote: 0n, commit: hs.commit }
    model.inflight = { log: model.log, hardState: next }
    model.hardStates.push(next)
    wal.save(next, [])
    model.hardState = next
    model.hardStates = [next]
  }
  model.inflight = undefined
}

/** Reopens the WAL after a failure and checks it against the model; then appends and reopens again. */
function checkReopen(fs: FaultFs, model: Model, what: string): void {
  if (!Wal.exists(fs, dir)) {
    // The crash came before the first segment became durable: nothing was acknowledged.
    expect(model.log.length, what).toBe(0)
    return
  }
  const opened = Wal.open({ fs, dir, snapshot: model.snapshot, segmentBytes, maxWals: 2 })
  const after = (log: Entry[]): Entry[] => log.slice(model.snapshot.index)
  const candidates = [after(model.log)]
  if (model.inflight !== undefined) candidates.push(after(model.inflight.log))
  const matches = candidates.some((c) => Bun.deepEquals(c, opened.entries))
  if (!matches) {
    throw new Error(
      `${what}: entries after reopen [${opened.entries.map((e) => `${e.index}/${e.term}`).join(" ")}] ` +
        `are neither the acknowledged log [${candidates[0]!.map((e) => `${e.index}/${e.term}`).join(" ")}] nor the in-flight one`,
    )
  }
  const states = [...model.hardStates]
  if (model.inflight !== undefined) states.push(model.inflight.hardState)
  const hsMatches = states.some((h) => h.term === opened.hardState.term && h.vote === opened.hardState.vote && h.commit === opened.hardState.commit)
  expect(hsMatches, `${what}: hard state ${JSON.stringify(opened.hardState, (_k, v) => (typeof v === "bigint" ? v.toString() : v))}`).toBe(true)
  // The repaired WAL takes new writes after whatever it kept.
  const last = model.snapshot.index + opened.entries.length
  const extra: Entry = { term: Math.max(opened.hardState.term, 1), index: last + 1, type: EntryType.Normal, data: new Uint8Array([7, 7, 7]) }
  opened.wal.save(undefined, [extra])
  opened.wal.close()
  const again = Wal.open({ fs, dir, snapshot: model.snapshot, segmentBytes })
  expect(again.entries).toEqual([...opened.entries, extra])
  again.wal.close()
}

describe("Wal crash safety", () => {
  test("Wal.open() after a write torn at every byte offset of the last record keeps exactly the acknowledged entries", () => {
    const prng = seededPrng(seed)
    const fs = newFs()
    const wal = Wal.create({ fs, dir, metadata, segmentBytes: 16 * 1024 })
    const acked: Entry[] = []
    for (let i = 1; i <= 5; i++) {
      const e = makeEntry(prng, i, 1)
      wal.save({ term: 1, vote: 1n, commit: i - 1 }, [e])
      acked.push(e)
    }
    const torn = [makeEntry(prng, 6, 1), makeEntry(prng, 7, 1)]
    fs.rules = [{ op: "fdatasync", error: "crash" }]
    expect(() => wal.save({ term: 1, vote: 1n, commit: 5 }, torn)).toThrow(SimulatedCrash)
    const recordBytes = pendingRecordBytes(fs)
    expect(recordBytes).toBeGreaterThan(2 * 16)
    for (let keep = 0; keep <= recordBytes; keep++) {
      const lines: string[] = []
      const rebooted = fs.crash({ keepUnsyncedBytes: keep })
      const logger = createLogger({ write: (l) => lines.push(l) })
      const opened = Wal.open({ fs: rebooted, dir, logger, segmentBytes: 16 * 1024 })
      const expected = keep === recordBytes ? [...acked, ...torn] : acked
      expect(opened.entries, `kept ${keep} of ${recordBytes} bytes`).toEqual(expected)
      const truncated = lines.some((l) => l.includes("torn write"))
      expect(truncated, `kept ${keep}: torn write logged`).toBe(keep > 0 && keep < recordBytes)
      const next = makeEntry(prng, expected.length + 1, 2)
      opened.wal.save({ term: 2, vote: 2n, commit: 5 }, [next])
      opened.wal.close()
      expect(Wal.open({ fs: rebooted, dir, segmentBytes: 16 * 1024 }).entries).toEqual([...expected, next])
    }
  }, 30_000)

  test(`Wal survives a crash at every file-system operation of a random workload, keeping none, part or all of the unsynced writes (seed ${seed})`, () => {
    const steps = 80
    // Count the operations of one clean run.
    const probe = newFs()
    expect(runWorkload(probe, seededPrng(seed), steps, new Model())).toBeUndefined()
    const total = probe.opCount
    expect(total).toBeGreaterThan(200)
    const keepPrng = seededPrng(seed + 1)
    for (let crashAt = 1; crashAt <= total; crashAt++) {
      const fs = newFs()
      fs.crashAtOp = crashAt
      const model = new Model()
      const error = runWorkload(fs, seededPrng(seed), steps, model)
      expect(error, `crash at op ${crashAt}`).toBeInstanceOf(SimulatedCrash)
      for (const keep of [0, 1 + keepPrng.int(400), Number.MAX_SAFE_INTEGER]) {
        checkReopen(fs.crash({ keepUnsyncedBytes: keep }), model, `crash at op ${crashAt}/${total}, keep ${keep}`)
      }
    }
  }, 30_000)

  test(`Wal survives crashes that persist a random choice of the unsynced sectors, never refusing to open (seed ${seed})`, () => {
    const steps = 60
    const probe = newFs()
    expect(runWorkload(probe, seededPrng(seed), steps, new Model())).toBeUndefined()
    const sectorPrng = seededPrng(seed + 5)
    for (let crashAt = 1; crashAt <= probe.opCount; crashAt++) {
      const fs = newFs()
      fs.crashAtOp = crashAt
      const model = new Model()
      expect(runWorkload(fs, seededPrng(seed), steps, model)).toBeInstanceOf(SimulatedCrash)
      for (let round = 0; round < 3; round++) {
        checkReopen(fs.crash({ sectors: { prng: sectorPrng, sectorBytes: 64 } }), model, `crash at op ${crashAt}, sectors round ${round}`)
      }
    }
  }, 30_000)

  test(`Wal fails safely on ENOSPC at every point a small disk fills up (seed ${seed})`, () => {
    let sawFailure = 0
    for (let capacity = 2048; capacity <= 12_000; capacity += 257) {
      const fs = new FaultFs({ dirs: ["/data/member"], capacityBytes: capacity })
      const model = new Model()
      const error = runWorkload(fs, seededPrng(seed), 60, model)
      if (error === undefined) continue
      sawFailure++
      // A refused segment cut or sync leaves the WAL waiting for recover(); a refused append of save() stops it.
      const fsError = error instanceof WalWriteRefused ? error.fsError : error
      expect(isFsError(fsError, "ENOSPC"), `capacity ${capacity}: ${String(error)}`).toBe(true)
      // The process restarts (the page cache survives) on a disk with room again...
      fs.capacityBytes = Number.MAX_SAFE_INTEGER
      const restarted = fs.crash({ keepUnsyncedBytes: Number.MAX_SAFE_INTEGER })
      checkReopen(restarted, model, `ENOSPC at capacity ${capacity}, restart`)
      // ...or the machine loses power.
      checkReopen(fs.crash(), model, `ENOSPC at capacity ${capacity}, crash`)
    }
    expect(sawFailure).toBeGreaterThan(10)
  }, 30_000)

  test(`Wal fails safely on short writes with ENOSPC (refusing further writes) and on fsync EIO (seed ${seed})`, () => {
    const prng = seededPrng(seed + 2)
    for (let round = 0; round < 60; round++) {
      const fs = newFs()
      const rule: FaultRule =
        round % 2 === 0
          ? { op: "write", path: /\.wal$/, nth: 2 + prng.int(40), error: "ENOSPC", writeBytes: prng.int(200) }
          : { op: "fdatasync", path: /\.wal$/, nth: 1 + prng.int(30), error: "EIO" }
      fs.rules = [rule]
      const model = new Model()
      const wal = Wal.create({ fs, dir, metadata, segmentBytes, maxWals: 2 })
      const workload = seededPrng(seed + round)
      let error: unknown
      try {
        for (let step = 0; step < 50; step++) doStep(wal, workload, model)
      } catch (e) {
        error = e
      }
      if (error === undefined) continue
      if (rule.op === "fdatasync") {
        // A failed fdatasync leaves the WAL waiting for recover() (wal_sync_refused.test.ts), not stopped.
        expect(error instanceof WalWriteRefused && isFsError(error.fsError, "EIO"), String(error)).toBe(true)
      } else {
        expect(isFsError(error, rule.error), String(error)).toBe(true)
        expect(() => wal.save(undefined, [{ term: 9, index: model.lastIndex() + 1, type: EntryType.Normal, data: new Uint8Array(1) }])).toThrow(
          "an earlier write failed",
        )
      }
      checkReopen(fs.crash({ keepUnsyncedBytes: Number.MAX_SAFE_INTEGER }), model, `${rule.error} round ${round}, restart`)
      checkReopen(fs.crash({ keepUnsyncedBytes: prng.int(300) }), model, `${rule.error} round ${round}, crash`)
    }
  }, 30_000)

  test("Wal.open() refuses corruption of an acknowledged record in a middle segment, naming file and offset", () => {
    const prng = seededPrng(seed + 3)
    const fs = newFs()
    const wal = Wal.create({ fs, dir, metadata, segmentBytes })
    for (let i = 1; i <= 40; i++) wal.save({ term: 1, vote: 1n, commit: i - 1 }, [makeEntry(prng, i, 1)])
    wal.close()
    const names = wal.segmentNames()
    expect(names.length).toBeGreaterThanOrEqual(3)
    for (const victim of names.slice(0, -1).map((n) => `${dir}/${n}`)) {
      const size = fs.stat(victim).size
      for (let offset = 0; offset < size; offset += 7) {
        const copy = fs.clone()
        copy.corrupt(victim, offset, 1 << prng.int(8))
        let error: unknown
        try {
          Wal.open({ fs: copy, dir, segmentBytes })
        } catch (e) {
          error = e
        }
        expect(error, `${victim} offset ${offset}`).toBeInstanceOf(WalError)
        expect((error as WalError).file).toBe(victim)
        expect((error as WalError).offset).toBeLessThanOrEqual(offset)
      }
    }
  }, 30_000)
})

/** The bytes of the unsynced write of the crashed file system's WAL segment. */
function pendingRecordBytes(fs: FaultFs): number {
  // The difference between what reads see and what a crash keeps, measured by crashing with everything kept.
  const all = fs.crash({ keepUnsyncedBytes: Number.MAX_SAFE_INTEGER })
  const none = fs.crash()
  const name = none.readdir(dir).find((n) => n.endsWith(".wal"))!
  const full = all.readFile(`${dir}/${name}`)
  const base = none.readFile(`${dir}/${name}`)
  let end = full.length
  while (end > 0 && full[end - 1] === 0) end--
  let start = 0
  while (start < end && full[start] === base[start]) start++
  return end - start
}
