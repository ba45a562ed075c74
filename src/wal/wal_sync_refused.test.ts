// An fdatasync the file system refuses (EROFS on an ext4 that turned
// read-only, ENOSPC): the saves it covered are not acknowledged, the WAL
// refuses saves until recover() rewrote them into a fresh segment, and the
// file system's own loss of the dirty pages (Linux marks them clean after a
// writeback error, so a second fdatasync succeeds without them: "fsyncgate")
// loses nothing, at a crash at any point of the recovery.

import { describe, expect, test } from "bun:test"
import { seededPrng } from "../lib/prng"
import type { Prng } from "../lib/prng"
import type { Entry, HardState } from "../raft/types"
import { EntryType } from "../raft/types"
import { FaultFs, SimulatedCrash } from "../../test/sim/fault_fs"
import { ManualSyncFs } from "../../test/sim/manual_sync_fs"
import { WalWriteRefused } from "./errors"
import { Wal } from "./wal"

const dir = "/data/member/wal"
const metadata = { memberId: 0x51n, clusterId: 0x52n }
const seed = Number(process.env.TSKV_SEED ?? 20261207)

function entries(from: number, to: number, term = 1): Entry[] {
  const out: Entry[] = []
  for (let i = from; i <= to; i++) out.push({ term, index: i, type: EntryType.Normal, data: new Uint8Array(24).fill((i * 7 + term) & 0xff) })
  return out
}
const hs = (term: number, commit: number): HardState => ({ term, vote: 1n, commit })
const refused = { op: "fdatasync", path: /\.wal/, error: "EROFS", dropUnsynced: true } as const

describe("Wal: a refused fdatasync", () => {
  test("saveAsync(): the saves it covered and those behind it get WalWriteRefused; saves are refused until recover() rewrites them into a new segment, which a crash keeps", () => {
    const fs = new ManualSyncFs()
    const wal = Wal.create({ fs, dir, metadata })
    const results: string[] = []
    const note = (name: string) => (e: Error | null) => results.push(e === null ? name : `${name}: ${e.name}`)
    wal.saveAsync(hs(1, 0), entries(1, 2), note("a"))
    fs.complete()
    fs.inner.rules.push({ ...refused })
    wal.saveAsync(hs(1, 2), entries(3, 4), note("b"))
    wal.saveAsync(hs(1, 3), entries(5, 5), note("c"))
    fs.complete()
    expect(results).toEqual(["a", "b: WalWriteRefused", "c: WalWriteRefused"])
    expect(wal.needsRecovery()).toBe(true)
    // Still read-only: nothing is written, recover() is refused too.
    fs.inner.rules.push({ op: "truncate", error: "EROFS" }, { op: "truncate", error: "EROFS" })
    expect(() => wal.saveAsync(hs(1, 3), entries(6, 6), note("d"))).toThrow(WalWriteRefused)
    expect(() => wal.recover()).toThrow(WalWriteRefused)
    expect(wal.lastIndex()).toBe(5)
    // Writable again: the rewrite goes into a new segment.
    wal.recover()
    expect(wal.needsRecovery()).toBe(false)
    expect(wal.segmentNames()).toEqual(["0000000000000000-0000000000000000.wal", "0000000000000001-0000000000000003.wal"])
    wal.saveAsync(hs(1, 5), entries(6, 6), note("d"))
    fs.complete()
    expect(results.at(-1)).toBe("d")
    // A power cut now: only what was synced survives, and that is everything (3..5 were dropped by the kernel).
    const rebooted = fs.inner.crash()
    const opened = Wal.open({ fs: rebooted, dir })
    expect(opened.entries).toEqual(entries(1, 6))
    expect(opened.hardState).toEqual(hs(1, 5))
    opened.wal.close()
  })

  test("close() after a refused fdatasync closes the file without another sync and throws WalWriteRefused; a reopen keeps what was acknowledged", () => {
    const fs = new FaultFs({ dirs: ["/data/member"] })
    const wal = Wal.create({ fs, dir, metadata })
    wal.save(hs(1, 0), entries(1, 3))
    fs.rules.push({ ...refused })
    expect(() => wal.save(hs(1, 3), entries(4, 5))).toThrow(WalWriteRefused)
    expect(() => wal.close()).toThrow(WalWriteRefused)
    fs.rules.length = 0
    const opened = Wal.open({ fs: fs.crash(), dir })
    expect(opened.entries).toEqual(entries(1, 3))
    opened.wal.close()
  })

  test(`a crash at every file-system operation after a refused fdatasync, through recover() and later saves, keeps every acknowledged entry and only entries that were saved (seed ${seed})`, () => {
    for (let round = 0; round < 12; round++) {
      const first = runScenario(seed + round, undefined)
      expect(first.outcome, `round ${round}`).toBe("done")
      expect(first.recoveries, `round ${round}`).toBeGreaterThan(0)
      const reopened = Wal.open({ fs: first.fs.crash(), dir, segmentBytes: 2048 })
      expect(reopened.entries).toEqual(first.model.acked)
      reopened.wal.close()
      for (let crashAt = first.failedAtOp + 1; crashAt <= first.endOp; crashAt++) {
        const run = runScenario(seed + round, crashAt)
        expect(run.outcome, `round ${round}, crash at op ${crashAt}`).toBe("crashed")
        const crashPrng = seededPrng(seed * 31 + crashAt)
        for (const keep of [0, crashPrng.int(400), Number.MAX_SAFE_INTEGER]) {
          const what = `round ${round}, crash at op ${crashAt}, keeping ${keep} unsynced bytes`
          const opened = Wal.open({ fs: run.fs.crash({ keepUnsyncedBytes: keep }), dir, segmentBytes: 2048 })
          const got = opened.entries
          const ok = Bun.deepEquals(got, run.model.acked) || [...run.model.held, run.model.inflight].some((log) => Bun.deepEquals(got, log))
          if (!ok) throw new Error(`${what}: entries [${got.map((e) => `${e.index}/${e.term}`).join(" ")}] are neither acknowledged [${run.model.acked.map((e) => `${e.index}/${e.term}`).join(" ")}] nor a saved log`)
          opened.wal.close()
        }
      }
    }
  }, 60_000)
})

interface Model {
  /** The log as of the last save acknowledged (done(null) after its sync). */
  acked: Entry[]
  /** Logs of saves written but not acknowledged (any may survive a crash). */
  held: Entry[][]
  /** The log of the save a crash interrupted, if one did. */
  inflight?: Entry[] | undefined
}

/**
 * One member's WAL under a Ready loop's saves (synchronous fdatasync: FaultFs
 * has no fdatasyncAsync), with a refused fdatasync at a random save; the
 * caller holds the save and calls recover() until it goes through (the first
 * attempt refused too), then saves more. Crashes at operation `crashAt`.
 */
function runScenario(scenarioSeed: number, crashAt: number | undefined): { fs: FaultFs; model: Model; outcome: "done" | "crashed"; failedAtOp: number; endOp: number; recoveries: number } {
  const prng = seededPrng(scenarioSeed)
  const fs = new FaultFs({ dirs: ["/data/member"] })
  fs.crashAtOp = crashAt
  const model: Model = { acked: [], held: [] }
  let log: Entry[] = []
  let state = hs(1, 0)
  let failedAtOp = Number.MAX_SAFE_INTEGER
  let recoveries = 0
  const failAt = 3 + prng.int(20)
  try {
    const wal = Wal.create({ fs, dir, metadata, segmentBytes: 2048 })
    for (let step = 0; step < 40; step++) {
      if (step === failAt) fs.rules.push({ ...refused })
      const next = nextSave(prng, log, state)
      let ack: Error | null | undefined
      model.inflight = next.log
      wal.saveAsync(next.hardState, next.batch, (e) => (ack = e))
      model.inflight = undefined
      expect(ack).toBeDefined()
      log = next.log
      state = next.hardState
      if (ack === null) {
        if (next.batch.length > 0) {
          model.acked = log
          model.held = []
        }
        continue
      }
      expect(ack).toBeInstanceOf(WalWriteRefused)
      model.held.push(log)
      failedAtOp = fs.opCount
      // The file system still refuses the first attempt (a random one of its operations).
      const op = (["truncate", "fsync", "preallocate", "write"] as const)[prng.int(4)]!
      fs.rules.push({ op, path: /\.wal/, error: "EROFS" })
      expectRefused(() => wal.recover())
      fs.rules.length = 0
      wal.recover()
      recoveries++
      model.acked = log
      model.held = []
    }
    wal.close()
    return { fs, model, outcome: "done", failedAtOp, endOp: fs.opCount, recoveries }
  } catch (e) {
    if (!(e instanceof SimulatedCrash)) throw e
    return { fs, model, outcome: "crashed", failedAtOp, endOp: fs.opCount, recoveries }
  }
}

/** `action` throws WalWriteRefused (anything else, a SimulatedCrash included, goes through). */
function expectRefused(action: () => void): void {
  try {
    action()
  } catch (e) {
    if (e instanceof WalWriteRefused) return
    throw e
  }
  throw new Error("not refused")
}

/** A Ready's save: new entries (sometimes replacing an uncommitted suffix with a higher term), or a commit-only hard state. */
function nextSave(prng: Prng, log: Entry[], state: HardState): { batch: Entry[]; hardState: HardState; log: Entry[] } {
  if (prng.int(4) === 0 && state.commit < log.length) {
    return { batch: [], hardState: { ...state, commit: state.commit + 1 }, log }
  }
  let from = log.length + 1
  let term = state.term
  if (prng.int(5) === 0 && log.length > state.commit) {
    from = state.commit + 1 + prng.int(log.length - state.commit)
    term++
  }
  const batch = entries(from, from + prng.int(4), term)
  return { batch, hardState: { ...state, term }, log: [...log.slice(0, from - 1), ...batch] }
}
