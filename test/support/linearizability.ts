// Linearizability checking of a concurrent client history of puts, gets,
// deletes, compare-and-swaps (a txn comparing one key's value) and one-key
// txns (compare the value, the absence or the presence; put or delete on
// success, read on failure) on a few keys.
//
// Recording: every operation has its invoke and complete time (ms, one
// clock) and its outcome; an operation that timed out or failed has an
// unknown outcome and completes "never" (Infinity): it may have taken effect
// at any point after its invocation, or not at all (taking effect after every
// other operation is the same as not at all). A get that failed is dropped:
// it changes nothing.
//
// Checking: single-key operations on a register are local (Herlihy & Wing),
// so every key is checked on its own. Per key, Wing & Gong's search with
// Lowe's memoization (as in Porcupine): walk the events in time order, try to
// linearize each pending call against the register-with-CAS model, backtrack
// at a return whose call has not been linearized, and never revisit a (set of
// linearized operations, register value) pair already explored.

import type { EtcdClient } from "../../src/client"
import { Compare_CompareResult, Compare_CompareTarget } from "../../src/pb"
import { fromUtf8, utf8 } from "../../src/lib/bytes"

export type Op =
  | { kind: "put"; key: string; value: string }
  | { kind: "get"; key: string }
  /** Sets `value` if the key's value is `expected` (null: the key does not exist). */
  | { kind: "cas"; key: string; expected: string | null; value: string }
  /** Deletes the key; the outcome says whether there was one. */
  | { kind: "del"; key: string }
  /**
   * A txn on one key: if the key's value is `expected` (null: absent;
   * "present": any value) then put `value` (null: delete) else read the key.
   */
  | { kind: "txn"; key: string; expected: string | null | { present: true }; value: string | null }

export type Outcome =
  | { kind: "put" }
  | { kind: "get"; value: string | null }
  | { kind: "cas"; succeeded: boolean }
  | { kind: "del"; deleted: number }
  /** `read`: what the failure branch's range returned. */
  | { kind: "txn"; succeeded: boolean; read: string | null }

export interface HistoryEntry {
  client: number
  op: Op
  invokeMs: number
  /** Infinity when the outcome is unknown. */
  completeMs: number
  /** undefined when unknown (timeout, connection error). */
  outcome: Outcome | undefined
}

export type CheckResult =
  | { ok: true; keys: number; operations: number }
  | { ok: false; key: string; reason: string; operations: HistoryEntry[] }

/** The register-with-CAS model: the next value, or undefined if the outcome is impossible from `state`. */
function step(state: string | null, op: Op, outcome: Outcome | undefined): { next: string | null } | undefined {
  switch (op.kind) {
    case "put":
      return { next: op.value }
    case "get":
      if (outcome === undefined) return { next: state }
      return outcome.kind === "get" && outcome.value === state ? { next: state } : undefined
    case "cas": {
      const matches = state === op.expected
      if (outcome !== undefined && (outcome.kind !== "cas" || outcome.succeeded !== matches)) return undefined
      return { next: matches ? op.value : state }
    }
    case "del":
      if (outcome !== undefined && (outcome.kind !== "del" || outcome.deleted !== (state === null ? 0 : 1))) return undefined
      return { next: null }
    case "txn": {
      const matches = op.expected !== null && typeof op.expected === "object" ? state !== null : state === op.expected
      if (outcome !== undefined) {
        if (outcome.kind !== "txn" || outcome.succeeded !== matches) return undefined
        if (!matches && outcome.read !== state) return undefined
      }
      return { next: matches ? op.value : state }
    }
  }
}

interface Node {
  op: number
  call: boolean
  time: number
  /** For a call: its return node. */
  match: Node | undefined
  prev: Node | undefined
  next: Node | undefined
}

/** Checks one key's history, starting from an absent key. At most `stepsMax` search steps. */
export function checkKey(entries: HistoryEntry[], stepsMax = 20_000_000): { ok: true } | { ok: false; reason: string; blocking: number[] } {
  const nodes: Node[] = []
  entries.forEach((e, op) => {
    const ret: Node = { op, call: false, time: e.completeMs, match: undefined, prev: undefined, next: undefined }
    const call: Node = { op, call: true, time: e.invokeMs, match: ret, prev: undefined, next: undefined }
    nodes.push(call, ret)
  })
  // Calls before returns at equal times: touching operations count as concurrent (the lenient choice).
  nodes.sort((a, b) => a.time - b.time || Number(b.call) - Number(a.call))
  const head: Node = { op: -1, call: false, time: -Infinity, match: undefined, prev: undefined, next: undefined }
  let last = head
  for (const n of nodes) {
    last.next = n
    n.prev = last
    last = n
  }
  const lift = (call: Node): void => {
    const ret = call.match!
    call.prev!.next = call.next
    if (call.next) call.next.prev = call.prev
    ret.prev!.next = ret.next
    if (ret.next) ret.next.prev = ret.prev
  }
  const unlift = (call: Node): void => {
    const ret = call.match!
    ret.prev!.next = ret
    if (ret.next) ret.next.prev = ret
    call.prev!.next = call
    if (call.next) call.next.prev = call
  }
  const linearized = new Uint32Array(Math.ceil(entries.length / 32))
  const flip = (op: number): void => {
    linearized[op >> 5]! ^= 1 << (op & 31)
  }
  const cache = new Set<string>()
  const stack: { call: Node; state: string | null }[] = []
  let state: string | null = null
  let entry = head.next
  let deepest = { depth: -1, blocking: [] as number[] }
  for (let steps = 0; head.next !== undefined; steps++) {
    if (steps > stepsMax) return { ok: false, reason: `inconclusive: more than ${stepsMax} search steps`, blocking: [] }
    const n = entry!
    if (n.call) {
      const r = step(state, entries[n.op]!.op, entries[n.op]!.outcome)
      if (r !== undefined) {
        flip(n.op)
        const key = `${Buffer.from(linearized.buffer).toString("base64")}|${r.next === null ? "\u0000" : `=${r.next}`}`
        if (!cache.has(key)) {
          cache.add(key)
          stack.push({ call: n, state })
          state = r.next
          lift(n)
          entry = head.next
          continue
        }
        flip(n.op)
      }
      entry = n.next
    } else {
      // A return whose call is still in the list: nothing linearizable from here.
      if (stack.length > deepest.depth) {
        const pending: number[] = []
        for (let p: Node | undefined = head.next; p !== undefined && p !== n.next; p = p.next) if (p.call) pending.push(p.op)
        deepest = { depth: stack.length, blocking: [n.op, ...pending.filter((o) => o !== n.op)] }
      }
      const top = stack.pop()
      if (top === undefined) break
      state = top.state
      flip(top.call.op)
      unlift(top.call)
      entry = top.call.next
    }
  }
  if (head.next === undefined) return { ok: true }
  return {
    ok: false,
    reason: `no linearization: at most ${deepest.depth} of ${entries.length} operations could be ordered`,
    blocking: deepest.blocking,
  }
}

/** Checks a whole history, key by key. */
export function checkLinearizable(history: readonly HistoryEntry[]): CheckResult {
  const byKey = new Map<string, HistoryEntry[]>()
  for (const e of history) {
    if (e.op.kind === "get" && e.outcome === undefined) continue
    const list = byKey.get(e.op.key) ?? []
    list.push(e)
    byKey.set(e.op.key, list)
  }
  let operations = 0
  for (const [key, entries] of byKey) {
    operations += entries.length
    const r = checkKey(entries)
    if (!r.ok) return { ok: false, key, reason: r.reason, operations: r.blocking.map((i) => entries[i]!) }
  }
  return { ok: true, keys: byKey.size, operations }
}

/**
 * Throws unless the history is linearizable and has more than `minOperations`
 * checked operations (a history that hardly ran proves nothing); returns how many.
 */
export function assertLinearizable(history: readonly HistoryEntry[], minOperations: number): number {
  const r = checkLinearizable(history)
  if (!r.ok) throw new Error(`not linearizable on key ${r.key}: ${r.reason}\n${describe(r.operations.slice(0, 60))}`)
  if (r.operations <= minOperations) throw new Error(`only ${r.operations} operations checked (want more than ${minOperations})`)
  return r.operations
}

/** One line per operation, for failure messages. */
export function describe(entries: readonly HistoryEntry[]): string {
  const fmt = (e: HistoryEntry): string => {
    const op = describeOp(e.op)
    const o = e.outcome
    const out =
      o === undefined
        ? "?"
        : o.kind === "get"
          ? `${o.value ?? "<absent>"}`
          : o.kind === "cas"
            ? String(o.succeeded)
            : o.kind === "del"
              ? `deleted ${o.deleted}`
              : o.kind === "txn"
                ? `${o.succeeded}${o.succeeded ? "" : `, read ${o.read ?? "<absent>"}`}`
                : "ok"
    return `c${e.client} [${e.invokeMs.toFixed(1)}, ${e.completeMs.toFixed(1)}] ${op} -> ${out}`
  }
  return entries.map(fmt).join("\n")
}

function describeOp(op: Op): string {
  switch (op.kind) {
    case "put":
      return `put(${op.key}, ${op.value})`
    case "get":
      return `get(${op.key})`
    case "cas":
      return `cas(${op.key}, ${op.expected ?? "<absent>"} -> ${op.value})`
    case "del":
      return `del(${op.key})`
    case "txn": {
      const expected = op.expected === null ? "<absent>" : typeof op.expected === "object" ? "<present>" : op.expected
      return `txn(${op.key} == ${expected} ? ${op.value === null ? "delete" : `put ${op.value}`} : get)`
    }
  }
}

/** Records operations with their times and outcomes. */
export class History {
  readonly entries: HistoryEntry[] = []
  private readonly originMs = performance.now()

  now(): number {
    return performance.now() - this.originMs
  }

  /** Runs `call`, recording it; an exception makes the outcome unknown. */
  async record(client: number, op: Op, call: () => Promise<Outcome>): Promise<Outcome | undefined> {
    const invokeMs = this.now()
    try {
      const outcome = await call()
      this.entries.push({ client, op, invokeMs, completeMs: this.now(), outcome })
      return outcome
    } catch {
      this.entries.push({ client, op, invokeMs, completeMs: Infinity, outcome: undefined })
      return undefined
    }
  }

  /** Operations that completed with a known outcome. */
  get known(): number {
    return this.entries.filter((e) => e.outcome !== undefined).length
  }
}

/** One operation against etcd's API: put, linearizable get, txn comparing the value (or absence). */
export async function runOp(client: EtcdClient, op: Op, timeoutMs: number): Promise<Outcome> {
  const opts = { timeoutMs }
  switch (op.kind) {
    case "put":
      await client.kv.put({ key: utf8(op.key), value: utf8(op.value) }, opts)
      return { kind: "put" }
    case "get": {
      const res = await client.kv.range({ key: utf8(op.key) }, opts)
      const kv = res.kvs[0]
      return { kind: "get", value: kv === undefined ? null : fromUtf8(kv.value) }
    }
    case "cas": {
      const compare =
        op.expected === null
          ? { key: utf8(op.key), target: Compare_CompareTarget.VERSION, result: Compare_CompareResult.EQUAL, version: 0 }
          : { key: utf8(op.key), target: Compare_CompareTarget.VALUE, result: Compare_CompareResult.EQUAL, value: utf8(op.expected) }
      const res = await client.kv.txn({ compare: [compare], success: [{ requestPut: { key: utf8(op.key), value: utf8(op.value) } }] }, opts)
      return { kind: "cas", succeeded: res.succeeded }
    }
    case "del": {
      const res = await client.kv.deleteRange({ key: utf8(op.key) }, opts)
      return { kind: "del", deleted: res.deleted }
    }
    case "txn": {
      const key = utf8(op.key)
      const compare =
        op.expected === null
          ? { key, target: Compare_CompareTarget.VERSION, result: Compare_CompareResult.EQUAL, version: 0 }
          : typeof op.expected === "object"
            ? { key, target: Compare_CompareTarget.VERSION, result: Compare_CompareResult.GREATER, version: 0 }
            : { key, target: Compare_CompareTarget.VALUE, result: Compare_CompareResult.EQUAL, value: utf8(op.expected) }
      const success = op.value === null ? [{ requestDeleteRange: { key } }] : [{ requestPut: { key, value: utf8(op.value) } }]
      const res = await client.kv.txn({ compare: [compare], success, failure: [{ requestRange: { key } }] }, opts)
      const kv = res.succeeded ? undefined : res.responses[0]?.responseRange?.kvs[0]
      return { kind: "txn", succeeded: res.succeeded, read: kv === undefined ? null : fromUtf8(kv.value) }
    }
  }
}

export interface WorkloadOptions {
  /** One client per simulated user (pin each to one member to exercise every member). */
  clients: EtcdClient[]
  keys: string[]
  history: History
  /** The workload runs until this returns true. */
  done: () => boolean
  /** Deadline of each operation; after it the outcome is unknown. */
  opTimeoutMs?: number
  /** Pause between a client's operations. */
  pauseMs?: number
}

/** Runs puts, linearizable gets and CAS txns from every client until done(). */
export async function runWorkload(options: WorkloadOptions): Promise<void> {
  const { clients, keys, history } = options
  const opTimeoutMs = options.opTimeoutMs ?? 2_000
  await Promise.all(
    clients.map(async (client, c) => {
      const lastSeen = new Map<string, string | null>()
      for (let i = 0; !options.done(); i++) {
        const key = keys[Math.floor(Math.random() * keys.length)]!
        const value = `c${c}-${i}`
        const dice = Math.random()
        const op: Op =
          dice < 0.35
            ? { kind: "put", key, value }
            : dice < 0.75
              ? { kind: "get", key }
              : { kind: "cas", key, expected: lastSeen.has(key) ? lastSeen.get(key)! : null, value }
        const outcome = await history.record(c, op, () => runOp(client, op, opTimeoutMs))
        if (outcome?.kind === "get") lastSeen.set(key, outcome.value)
        if (outcome?.kind === "cas" && outcome.succeeded && op.kind === "cas") lastSeen.set(key, op.value)
        if (outcome === undefined) await Bun.sleep(100) // the member is unreachable: do not spin
        else if (options.pauseMs) await Bun.sleep(options.pauseMs)
      }
    }),
  )
}
