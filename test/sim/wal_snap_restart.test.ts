// The WAL and the Snapshotter together, as a member uses them: save Ready
// batches; take snapshots (the .snap file, then the WAL marker, then release
// old segments and snapshot files); crash at every file-system operation;
// restart the way a member starts (the WAL's valid snapshot markers, the
// newest snapshot file among them, the WAL opened from it). The restart must
// always succeed, from an acknowledged (or in-flight) snapshot, with every
// acknowledged entry after it.

import { expect, test } from "bun:test"
import type { Prng } from "../../src/lib/prng"
import { seededPrng } from "../../src/lib/prng"
import type { Entry, HardState, Snapshot } from "../../src/raft/types"
import { EntryType } from "../../src/raft/types"
import { Snapshotter } from "../../src/snap/snapshotter"
import { Wal } from "../../src/wal/wal"
import { FaultFs, SimulatedCrash } from "./fault_fs"

const walDir = "/data/member/wal"
const snapDir = "/data/member/snap"
const segmentBytes = 1500
const seed = Number(process.env.TSKV_SEED ?? 7)

interface State {
  log: Entry[]
  hardState: HardState
  snapshotIndex: number
}

class Member {
  acked: State = { log: [], hardState: { term: 1, vote: 1n, commit: 0 }, snapshotIndex: 0 }
  inflight: State | undefined

  constructor(
    readonly wal: Wal,
    readonly snapshotter: Snapshotter,
  ) {}

  step(prng: Prng): void {
    const { log, hardState, snapshotIndex } = this.acked
    const roll = prng.int(10)
    if (roll < 6) {
      const batch: Entry[] = []
      for (let i = 0, n = 1 + prng.int(4); i < n; i++) {
        batch.push({ term: 1, index: log.length + 1 + i, type: EntryType.Normal, data: new Uint8Array(1 + prng.int(120)).fill(i) })
      }
      const commit = Math.min(log.length, hardState.commit + prng.int(4))
      const next: State = { log: [...log, ...batch], hardState: { ...hardState, commit }, snapshotIndex }
      this.run(next, () => this.wal.save(next.hardState, batch))
    } else if (hardState.commit > snapshotIndex) {
      const index = hardState.commit
      const snapshot: Snapshot = {
        metadata: { index, term: log[index - 1]!.term, confState: { voters: [1n], learners: [] } },
        data: new Uint8Array([index & 0xff]),
      }
      const next: State = { log, hardState, snapshotIndex: index }
      this.run(next, () => {
        this.snapshotter.save(snapshot)
        this.wal.saveSnapshot(snapshot.metadata)
        this.wal.releaseTo(index)
      })
    }
  }

  private run(next: State, action: () => void): void {
    this.inflight = next
    action()
    this.acked = next
    this.inflight = undefined
  }
}

function start(fs: FaultFs): { wal: Wal; snapshot: Snapshot | undefined; entries: Entry[]; hardState: HardState } {
  const snapshotter = new Snapshotter({ fs, dir: snapDir, maxSnapshots: 2 })
  const snapshot = snapshotter.loadNewestAvailable(Wal.validSnapshots({ fs, dir: walDir }))
  const opened = Wal.open({ fs, dir: walDir, snapshot: snapshot?.metadata ?? { index: 0, term: 0 }, segmentBytes, maxWals: 2 })
  return { wal: opened.wal, snapshot, entries: opened.entries, hardState: opened.hardState }
}

function runMember(fs: FaultFs, steps: number): Member | SimulatedCrash {
  const prng = seededPrng(seed)
  let member: Member | undefined
  try {
    fs.mkdir("/data/member")
    const wal = Wal.create({ fs, dir: walDir, metadata: { memberId: 1n, clusterId: 2n }, segmentBytes, maxWals: 2 })
    member = new Member(wal, new Snapshotter({ fs, dir: snapDir, maxSnapshots: 2 }))
    for (let i = 0; i < steps; i++) member.step(prng)
    return member
  } catch (e) {
    if (!(e instanceof SimulatedCrash)) throw e
    // Hand back what the member had acknowledged, through the error.
    return Object.assign(e, { member })
  }
}

test(`Wal + Snapshotter restart after a crash at every operation, from an acknowledged snapshot with every acknowledged entry (seed ${seed})`, () => {
  const steps = 70
  const probe = new FaultFs({ dirs: ["/data"] })
  const clean = runMember(probe, steps)
  expect(clean).not.toBeInstanceOf(SimulatedCrash)
  expect((clean as Member).acked.snapshotIndex).toBeGreaterThan(0)
  const total = probe.opCount
  let restarts = 0
  for (let crashAt = 1; crashAt <= total; crashAt += 1) {
    const fs = new FaultFs({ dirs: ["/data"] })
    fs.crashAtOp = crashAt
    const outcome = runMember(fs, steps) as SimulatedCrash & { member?: Member }
    expect(outcome).toBeInstanceOf(SimulatedCrash)
    const member = outcome.member
    for (const keep of [0, 50, Number.MAX_SAFE_INTEGER]) {
      const rebooted = fs.crash({ keepUnsyncedBytes: keep })
      if (member === undefined || !Wal.exists(rebooted, walDir)) {
        expect(member?.acked.log.length ?? 0).toBe(0)
        continue
      }
      const what = `crash at op ${crashAt}/${total}, keep ${keep}`
      const started = start(rebooted)
      restarts++
      const states = member.inflight === undefined ? [member.acked] : [member.acked, member.inflight]
      const snapIndex = started.snapshot?.metadata.index ?? 0
      expect(states.map((s) => s.snapshotIndex), what).toContain(snapIndex)
      const ok = states.some((s) => Bun.deepEquals(s.log.slice(snapIndex), started.entries))
      expect(ok, `${what}: entries ${started.entries.length} after snapshot ${snapIndex}`).toBe(true)
      expect(started.hardState.commit, what).toBeGreaterThanOrEqual(snapIndex)
      started.wal.close()
    }
  }
  expect(restarts).toBeGreaterThan(total)
}, 60_000)
