// The traffic of a robustness round: clients pinned to members running puts,
// linearizable gets, deletes, CAS and one-key txns on a few register keys (the
// history the linearizability checker reads), and leases with keys attached
// that are renewed, revoked or left to expire. Every acknowledged write is
// kept with the revision its response named: the checks look for each of
// them in the watch events and on every member afterwards.

import type { EtcdClient } from "../../src/client"
import { fromUtf8, utf8 } from "../../src/lib/bytes"
import { seededPrng, type Prng } from "../../src/lib/prng"
import { Compare_CompareResult, Compare_CompareTarget } from "../../src/pb"
import { History, type Op, type Outcome } from "../support/linearizability"
import type { RoundPlan } from "./plan"

/** A write the cluster acknowledged: at `revision`, `key` got `value` (null: deleted). */
export interface AckedWrite {
  revision: number
  key: string
  value: string | null
  lease: string
}

/** Every value a client tried to write, with what it learnt of the outcome. */
export interface IssuedWrite {
  key: string
  /** "failed": the cluster said it did not happen (a txn whose compare failed). */
  outcome: "acked" | "failed" | "unknown"
}

export interface LeaseRecord {
  id: bigint
  /** TTL the grant answered (s). */
  ttl: number
  grantInvokeMs: number
  keys: string[]
  /** Invoke time of the last renewal known to have happened (or of the grant): expiry is not earlier than TTL after it. */
  lastRenewMs: number
  /** Invoke time of the last renewal that may have happened: expiry is due TTL after it. */
  latestRenewMs: number
  revoked: "no" | "yes" | "unknown"
}

export class Traffic {
  readonly history = new History()
  readonly acked: AckedWrite[] = []
  readonly issued = new Map<string, IssuedWrite>()
  readonly leases: LeaseRecord[] = []
  /** Counters for the report. */
  readonly counts = { ops: 0, failedOps: 0, leaseOps: 0, compactions: 0, defrags: 0 }
  private stopped = false

  constructor(
    readonly plan: RoundPlan,
    readonly prefix: string,
    private readonly clientFor: (member: string) => EtcdClient,
    private readonly members: () => string[],
  ) {}

  get registerKeys(): string[] {
    return Array.from({ length: this.plan.keys }, (_, i) => `${this.prefix}r/${i}`)
  }

  stop(): void {
    this.stopped = true
  }

  /** Runs every client until stop(). Client c sticks to member c mod n of the current members. */
  async run(): Promise<void> {
    const n = this.members().length * this.plan.clientsPerMember
    await Promise.all(Array.from({ length: n }, (_, c) => this.client(c, seededPrng((this.plan.trafficSeed + c * 7919) >>> 0))))
  }

  private async client(c: number, rng: Prng): Promise<void> {
    const mix = this.plan.mix
    const total = mix.put + mix.get + mix.del + mix.cas + mix.txn
    const keys = this.registerKeys
    const lastSeen = new Map<string, string | null>()
    for (let i = 0; !this.stopped; i++) {
      const members = this.members()
      const member = members[c % members.length]!
      const key = keys[rng.int(keys.length)]!
      const value = `${this.prefix}c${c}-${i}`
      const seen = lastSeen.has(key) ? lastSeen.get(key)! : null
      let dice = rng.int(total)
      let op: Op
      if ((dice -= mix.put) < 0) op = { kind: "put", key, value }
      else if ((dice -= mix.get) < 0) op = { kind: "get", key }
      else if ((dice -= mix.del) < 0) op = { kind: "del", key }
      else if ((dice -= mix.cas) < 0) op = { kind: "cas", key, expected: seen, value }
      else {
        const expected = rng.int(3) === 0 ? { present: true as const } : seen
        op = { kind: "txn", key, expected, value: rng.int(4) === 0 && expected !== null ? null : value }
      }
      const outcome = await this.record(c, member, op)
      if (outcome?.kind === "get") lastSeen.set(key, outcome.value)
      if (outcome?.kind === "txn" && !outcome.succeeded) lastSeen.set(key, outcome.read)
      if (outcome === undefined) await Bun.sleep(100)
      else await Bun.sleep(2 + rng.int(8))
    }
  }

  private async record(c: number, member: string, op: Op): Promise<Outcome | undefined> {
    const writes = op.kind === "put" || op.kind === "cas" || (op.kind === "txn" && op.value !== null) ? op.value : undefined
    if (writes !== undefined && writes !== null) this.issued.set(writes, { key: op.key, outcome: "unknown" })
    let revision = 0
    const outcome = await this.history.record(c, op, async () => {
      const r = await runOp(this.clientFor(member), op)
      revision = r.revision
      return r.outcome
    })
    this.counts.ops++
    if (outcome === undefined) {
      this.counts.failedOps++
      return undefined
    }
    const wrote =
      outcome.kind === "put" ||
      (outcome.kind === "cas" && outcome.succeeded) ||
      (outcome.kind === "txn" && outcome.succeeded) ||
      (outcome.kind === "del" && outcome.deleted > 0)
    if (wrote) {
      const value = op.kind === "del" ? null : op.kind === "get" ? null : op.value
      this.acked.push({ revision, key: op.key, value, lease: "0" })
    }
    if (writes !== undefined && writes !== null) this.issued.get(writes)!.outcome = wrote ? "acked" : "failed"
    return outcome
  }

  /** Grants a lease through `member`, attaches keys, renews or revokes it as planned. */
  async lease(index: number, member: () => string, timer: (ms: number) => Promise<void>): Promise<void> {
    const p = this.plan.leases[index]!
    await timer(p.grantAtMs)
    const grantInvokeMs = this.history.now()
    let id: bigint
    let ttl: number
    try {
      const res = await this.clientFor(member()).lease.leaseGrant({ TTL: p.ttl }, { timeoutMs: 3_000 })
      this.counts.leaseOps++
      id = res.ID
      ttl = Number(res.TTL)
    } catch {
      return // not granted as far as we know; a lease granted unseen has no keys and expires unseen
    }
    const record: LeaseRecord = { id, ttl, grantInvokeMs, keys: [], lastRenewMs: grantInvokeMs, latestRenewMs: grantInvokeMs, revoked: "no" }
    this.leases.push(record)
    for (let k = 0; k < p.keys; k++) {
      const key = `${this.prefix}l/${id.toString(16)}/${k}`
      const value = `${this.prefix}lease-${index}-${k}`
      record.keys.push(key)
      this.issued.set(value, { key, outcome: "unknown" })
      try {
        const res = await this.clientFor(member()).kv.put({ key: utf8(key), value: utf8(value), lease: id }, { timeoutMs: 3_000 })
        this.acked.push({ revision: res.header!.revision, key, value, lease: id.toString(16) })
        this.issued.get(value)!.outcome = "acked"
      } catch {}
    }
    const start = performance.now()
    const at = async (ms: number): Promise<void> => timer(Math.max(0, ms - (performance.now() - start)))
    if (p.keepAliveAtMs !== undefined) {
      await at(p.keepAliveAtMs)
      const invoke = this.history.now()
      // It may have reached the leader whatever the answer: expiry may be as late as from here.
      record.latestRenewMs = invoke
      try {
        const res = await this.clientFor(member()).lease.keepAliveOnce(id, { timeoutMs: 2_000 })
        if (Number(res.TTL) > 0) record.lastRenewMs = invoke
      } catch {}
      this.counts.leaseOps++
    }
    if (p.revokeAtMs !== undefined) {
      await at(p.revokeAtMs)
      record.revoked = "unknown"
      try {
        await this.clientFor(member()).lease.leaseRevoke({ ID: id }, { timeoutMs: 3_000 })
        record.revoked = "yes"
      } catch {}
      this.counts.leaseOps++
    }
  }
}

/** One operation; the outcome and the revision of the response header. */
export async function runOp(client: EtcdClient, op: Op, timeoutMs = 2_000): Promise<{ outcome: Outcome; revision: number }> {
  const opts = { timeoutMs }
  const key = utf8(op.key)
  switch (op.kind) {
    case "put": {
      const res = await client.kv.put({ key, value: utf8(op.value) }, opts)
      return { outcome: { kind: "put" }, revision: res.header!.revision }
    }
    case "get": {
      const res = await client.kv.range({ key }, opts)
      const kv = res.kvs[0]
      return { outcome: { kind: "get", value: kv === undefined ? null : fromUtf8(kv.value) }, revision: res.header!.revision }
    }
    case "del": {
      const res = await client.kv.deleteRange({ key }, opts)
      return { outcome: { kind: "del", deleted: res.deleted }, revision: res.header!.revision }
    }
    case "cas":
    case "txn": {
      const expected = op.expected
      const compare =
        expected === null
          ? { key, target: Compare_CompareTarget.VERSION, result: Compare_CompareResult.EQUAL, version: 0 }
          : typeof expected === "object"
            ? { key, target: Compare_CompareTarget.VERSION, result: Compare_CompareResult.GREATER, version: 0 }
            : { key, target: Compare_CompareTarget.VALUE, result: Compare_CompareResult.EQUAL, value: utf8(expected) }
      const success = op.value === null ? [{ requestDeleteRange: { key } }] : [{ requestPut: { key, value: utf8(op.value) } }]
      const res = await client.kv.txn({ compare: [compare], success, failure: [{ requestRange: { key } }] }, opts)
      if (op.kind === "cas") return { outcome: { kind: "cas", succeeded: res.succeeded }, revision: res.header!.revision }
      const kv = res.succeeded ? undefined : res.responses[0]?.responseRange?.kvs[0]
      return { outcome: { kind: "txn", succeeded: res.succeeded, read: kv === undefined ? null : fromUtf8(kv.value) }, revision: res.header!.revision }
    }
  }
}
