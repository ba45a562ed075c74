// The checks after a robustness round, as pure functions of what the round
// recorded (watch events and segments, acknowledged writes, leases, the final
// state of every member), so they can be tested on made-up recordings.
//
// Watch guarantees (etcd's API guarantees for Watch): a watcher gets every
// event of its range after its start revision, exactly once, in revision
// order, with the prev_kv of the revision before; no event for a revision that
// did not commit; a watch resumed from the last seen revision + 1 continues
// without a gap; a start revision below the compacted one cancels the watch
// with compact_revision. The merged log of every watcher is the round's
// history of the prefix (every write of the round is under the prefix, on a
// new cluster): each revision from 2 to the final one once.

import type { AckedWrite, IssuedWrite, LeaseRecord } from "./traffic"
import type { SeenEvent, SeenKv, Watcher } from "./watchers"

export interface Violation {
  check: string
  detail: string
}

export interface FinalState {
  member: string
  revision: number
  kvs: SeenKv[]
}

export interface RoundRecording {
  prefix: string
  watchers: Watcher[]
  acked: AckedWrite[]
  issued: Map<string, IssuedWrite>
  leases: LeaseRecord[]
  /** The revision every member reached (the fence). */
  finalRevision: number
  finals: FinalState[]
  /** Compactions that succeeded, with the member that answered. */
  compactions: { revision: number }[]
}

type Log = Map<number, Map<string, SeenEvent>>

function sameKv(a: SeenKv | undefined, b: SeenKv | undefined): boolean {
  if (a === undefined || b === undefined) return a === b
  return a.key === b.key && a.value === b.value && a.createRevision === b.createRevision && a.modRevision === b.modRevision && a.version === b.version && a.lease === b.lease
}

function fmtKv(kv: SeenKv | undefined): string {
  return kv === undefined ? "<none>" : `${kv.key}=${kv.value.length > 60 ? `${kv.value.slice(0, 60)}...` : kv.value} (create ${kv.createRevision}, mod ${kv.modRevision}, version ${kv.version}, lease ${kv.lease})`
}

function fmtValue(value: string | null): string {
  return value === null ? "<delete>" : value.length > 60 ? `${value.slice(0, 60)}...` : value
}

function fmtEvent(e: SeenEvent): string {
  return `${e.type} @${e.revision} ${fmtKv(e.kv)} prev ${fmtKv(e.prevKv)}`
}

/** Revisions [a, b] covered by some segment of a prefix watcher. */
function prefixCoverage(watchers: Watcher[]): [number, number][] {
  const spans = watchers
    .filter((w) => w.options.prefix)
    .flatMap((w) => w.segments.filter((s) => s.to >= s.from).map((s): [number, number] => [s.from, s.to]))
    .sort((a, b) => a[0] - b[0])
  const merged: [number, number][] = []
  for (const s of spans) {
    const last = merged.at(-1)
    if (last !== undefined && s[0] <= last[1] + 1) last[1] = Math.max(last[1], s[1])
    else merged.push([s[0], s[1]])
  }
  return merged
}

function covered(spans: [number, number][], rev: number): boolean {
  return spans.some(([a, b]) => a <= rev && rev <= b)
}

export interface CheckSummary {
  violations: Violation[]
  /** Watch events checked (over every watcher). */
  events: number
  /** Whether the prefix watchers saw every revision from 2 to the final one (then the log was replayed). */
  completeLog: boolean
  /** Every value a put event carried (with completeLog: every value that was ever written). */
  committedValues: Set<string>
}

export function checkRound(r: RoundRecording): CheckSummary {
  const v: Violation[] = []
  const add = (check: string, detail: string): void => {
    if (v.length < 50) v.push({ check, detail })
  }
  const log: Log = new Map()
  let events = 0

  // Per watcher: order, uniqueness, range, start revision; then one merged log where watchers agree.
  for (const w of r.watchers) {
    for (const p of w.problems) add("watch protocol", `${w.options.name}: ${p}`)
    let last: SeenEvent | undefined
    const keysAtRev = new Set<string>()
    for (const e of w.events) {
      events++
      if (!w.covers(e.kv.key)) add("watch range", `${w.options.name} got ${fmtEvent(e)} outside its range`)
      if (last !== undefined && e.revision < last.revision) add("watch order", `${w.options.name}: ${fmtEvent(e)} after ${fmtEvent(last)}`)
      if (last === undefined || e.revision !== last.revision) keysAtRev.clear()
      if (keysAtRev.has(e.kv.key)) add("watch exactly once", `${w.options.name}: ${fmtEvent(e)} twice`)
      keysAtRev.add(e.kv.key)
      last = e
      if (e.revision > r.finalRevision) add("watch committed", `${w.options.name}: ${fmtEvent(e)} is past the final revision ${r.finalRevision}`)
      if (!w.segments.some((s) => s.from <= e.revision && e.revision <= s.to)) add("watch start revision", `${w.options.name}: ${fmtEvent(e)} before its watch's start revision`)
      if (w.options.prevKv === false && e.prevKv !== undefined) add("watch prev_kv", `${w.options.name}: prev_kv without asking: ${fmtEvent(e)}`)
      let atRev = log.get(e.revision)
      if (atRev === undefined) log.set(e.revision, (atRev = new Map()))
      const other = atRev.get(e.kv.key)
      if (other === undefined) atRev.set(e.kv.key, e)
      else {
        if (other.type !== e.type || !sameKv(other.kv, e.kv)) add("watchers agree", `${fmtEvent(e)} (${w.options.name}) vs ${fmtEvent(other)}`)
        if (other.prevKv !== undefined && e.prevKv !== undefined && !sameKv(other.prevKv, e.prevKv)) add("watchers agree", `prev_kv: ${fmtEvent(e)} vs ${fmtEvent(other)}`)
        if (other.prevKv === undefined && e.prevKv !== undefined) atRev.set(e.kv.key, e)
      }
    }
  }

  // Completeness: in every segment of every watcher, every event of the merged log in its range.
  // Except, as etcd 3.4 does (checked against it): a compaction at revision C drops the tombstone
  // of a delete at C, so a watch from exactly C does not get that delete.
  const compactedAt = new Set(r.compactions.map((c) => c.revision))
  const tombstoneCompacted = (e: SeenEvent, from: number): boolean => e.type === "delete" && e.revision === from && compactedAt.has(from)
  for (const w of r.watchers) {
    const seen = new Set(w.events.map((e) => `${e.revision}|${e.kv.key}`))
    for (const s of w.segments) {
      for (let rev = s.from; rev <= s.to; rev++) {
        for (const key of log.get(rev)?.keys() ?? []) {
          if (w.covers(key) && !seen.has(`${rev}|${key}`) && !tombstoneCompacted(log.get(rev)!.get(key)!, s.from)) add("watch no gap", `${w.options.name} (on ${s.member}, from ${s.from}) missed ${fmtEvent(log.get(rev)!.get(key)!)}`)
        }
      }
    }
    // A cancellation must name a compaction at or after the revision asked for.
    for (const c of w.cancellations) {
      if (c.compactRevision > 0 && c.compactRevision <= c.requested) add("watch compact_revision", `${w.options.name}: watch from ${c.requested} cancelled with compact_revision ${c.compactRevision}`)
    }
  }

  // Every revision of the round once: no hole in what the prefix watchers covered, nothing past the end.
  const spans = prefixCoverage(r.watchers)
  for (const [a, b] of spans) {
    for (let rev = Math.max(a, 2); rev <= Math.min(b, r.finalRevision); rev++) {
      if (!log.has(rev)) add("watch no gap", `revision ${rev} (covered by a prefix watcher) has no event`)
    }
  }
  const completeLog = spans.length > 0 && spans[0]![0] <= 2 && spans[0]![1] >= r.finalRevision

  // Every event is a write a client issued and did not see fail.
  for (const [rev, atRev] of log) {
    for (const e of atRev.values()) {
      if (e.type !== "put") continue
      const issued = r.issued.get(e.kv.value)
      if (issued === undefined && !e.kv.key.endsWith("fence")) add("watch committed", `@${rev}: ${fmtEvent(e)} is no value a client wrote`)
      else if (issued !== undefined && issued.outcome === "failed") add("watch committed", `@${rev}: ${fmtEvent(e)} was written by a txn that answered succeeded=false`)
      else if (issued !== undefined && issued.key !== e.kv.key) add("watch committed", `@${rev}: ${fmtEvent(e)} was written to ${issued.key}`)
    }
  }

  // Every acknowledged write at its revision, in the log where it is covered.
  for (const a of r.acked) {
    if (a.revision > r.finalRevision) add("acknowledged write", `${a.key}=${fmtValue(a.value)} acknowledged at ${a.revision}, after the final revision ${r.finalRevision}`)
    if (!covered(spans, a.revision)) continue
    const e = log.get(a.revision)?.get(a.key)
    const ok = e !== undefined && (a.value === null ? e.type === "delete" : e.type === "put" && e.kv.value === a.value)
    if (!ok) add("acknowledged write", `${a.key}=${fmtValue(a.value)} acknowledged at revision ${a.revision}; the watchers saw ${e === undefined ? "nothing for it" : fmtEvent(e)}`)
  }

  // Replay the whole log: kv fields and prev_kv against the state before each revision; the final state on every member.
  const compactedTo = Math.max(0, ...r.compactions.map((c) => c.revision))
  if (completeLog) {
    const state = new Map<string, SeenKv>()
    const revs = [...log.keys()].sort((a, b) => a - b)
    for (const rev of revs) {
      for (const e of log.get(rev)!.values()) {
        const before = state.get(e.kv.key)
        if (e.type === "put") {
          const expected: SeenKv = {
            key: e.kv.key,
            value: e.kv.value,
            createRevision: before?.createRevision ?? rev,
            modRevision: rev,
            version: (before?.version ?? 0) + 1,
            lease: e.kv.lease,
          }
          if (!sameKv(expected, e.kv)) add("watch event", `${fmtEvent(e)}; expected ${fmtKv(expected)}`)
          state.set(e.kv.key, e.kv)
        } else {
          if (before === undefined) add("watch event", `${fmtEvent(e)} deletes a key that did not exist`)
          state.delete(e.kv.key)
        }
        const wanted = r.watchers.some((w) => w.options.prevKv && w.covers(e.kv.key) && w.events.includes(e))
        if (e.prevKv !== undefined && !sameKv(e.prevKv, before)) add("watch prev_kv", `${fmtEvent(e)}; the key was ${fmtKv(before)}`)
        if (wanted && e.prevKv === undefined && before !== undefined && compactedTo < rev) add("watch prev_kv", `${fmtEvent(e)} has no prev_kv; the key was ${fmtKv(before)}`)
      }
    }
    for (const f of r.finals) {
      const got = new Map(f.kvs.map((kv) => [kv.key, kv]))
      for (const [key, kv] of state) if (!sameKv(got.get(key), kv)) add("members keep every write", `${f.member} has ${fmtKv(got.get(key))}, the log says ${fmtKv(kv)}`)
      for (const [key, kv] of got) if (!state.has(key)) add("members keep every write", `${f.member} has ${fmtKv(kv)}, the log says ${key} does not exist`)
    }
  }
  // Without the whole log: each member's key is at least as new as every write acknowledged on it.
  for (const f of r.finals) {
    if (f.revision !== r.finalRevision) add("members converge", `${f.member} is at revision ${f.revision}, the others at ${r.finalRevision}`)
    const got = new Map(f.kvs.map((kv) => [kv.key, kv]))
    for (const a of r.acked) {
      const kv = got.get(a.key)
      if (kv !== undefined && kv.modRevision < a.revision) add("members keep every write", `${f.member}: ${a.key} at mod revision ${kv.modRevision}, a write was acknowledged at ${a.revision}`)
    }
  }

  // Leases: once expired or revoked, every member lost its keys, deleted at one revision.
  for (const l of r.leases) {
    const id = l.id.toString(16)
    for (const f of r.finals) {
      for (const key of l.keys) {
        const kv = f.kvs.find((x) => x.key === key)
        if (kv !== undefined) add("lease keys go", `${f.member} still has ${fmtKv(kv)} of lease ${id} (TTL ${l.ttl} s, granted at ${l.grantInvokeMs.toFixed(0)} ms, revoked: ${l.revoked})`)
      }
    }
    const deletes = new Set<number>()
    for (const [rev, atRev] of log) for (const e of atRev.values()) if (e.type === "delete" && l.keys.includes(e.kv.key)) deletes.add(rev)
    if (deletes.size > 1) add("lease expires once", `the keys of lease ${id} were deleted at revisions ${[...deletes].join(", ")}`)
    if (l.revoked === "no") {
      // Expiry is never early: not before the TTL from the last renewal that may have happened.
      for (const rev of deletes) {
        const e = [...log.get(rev)!.values()].find((x) => l.keys.includes(x.kv.key))!
        const seenAt = Math.min(...r.watchers.flatMap((w) => w.events.filter((x) => x.revision === rev && x.kv.key === e.kv.key).map((x) => x.atMs)))
        if (seenAt < l.lastRenewMs + l.ttl * 1_000) add("lease not early", `lease ${id} (TTL ${l.ttl} s, last renewal at ${l.lastRenewMs.toFixed(0)} ms) expired by ${seenAt.toFixed(0)} ms`)
      }
    }
  }
  const committedValues = new Set<string>()
  for (const atRev of log.values()) for (const e of atRev.values()) if (e.type === "put") committedValues.add(e.kv.value)
  return { violations: v, events, completeLog, committedValues }
}
