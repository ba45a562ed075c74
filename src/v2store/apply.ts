// A v2 request as it travels in a raft entry, and how every member applies
// it to its v2 store (etcd's applierV2store). The proposer computes absolute
// expiry times from its clock, and the leader's SYNC carries its time, so the
// result depends only on the entry.

import { decode as cborDecode, encode as cborEncode } from "cbor-x"
import { assert } from "../lib/assert"
import type { V2AuthError, V2AuthOp } from "./auth"
import { V2Error, type V2ErrorJson } from "./errors"
import type { V2Event } from "./event"
import type { TtlOptions, V2Store } from "./store"

export type V2Method = "PUT" | "POST" | "DELETE" | "QGET" | "SYNC" | "AUTH"

export interface V2Request {
  method: V2Method
  path: string
  val: string
  dir: boolean
  prevValue: string
  prevIndex: number
  /** undefined: not given. */
  prevExist: boolean | undefined
  recursive: boolean
  sorted: boolean
  refresh: boolean
  /** Absolute wall-clock ms of the expiry; 0: none given. */
  expireMs: number
  /** SYNC: the leader's wall-clock ms; keys expiring at or before it go. */
  timeMs: number
}

export function v2Request(fields: Partial<V2Request> & { method: V2Method }): V2Request {
  return { path: "/", val: "", dir: false, prevValue: "", prevIndex: 0, prevExist: undefined, recursive: false, sorted: false, refresh: false, expireMs: 0, timeMs: 0, ...fields }
}

export function encodeV2Request(r: V2Request): Uint8Array {
  return cborEncode([r.method, r.path, r.val, r.dir, r.prevValue, r.prevIndex, r.prevExist ?? null, r.recursive, r.sorted, r.refresh, r.expireMs, r.timeMs])
}

export function decodeV2Request(bytes: Uint8Array): V2Request {
  const a = cborDecode(bytes) as unknown[]
  assert(Array.isArray(a) && a.length === 12, "v2 request: not an array of 12")
  const [method, path, val, dir, prevValue, prevIndex, prevExist, recursive, sorted, refresh, expireMs, timeMs] = a
  assert(typeof method === "string" && ["PUT", "POST", "DELETE", "QGET", "SYNC", "AUTH"].includes(method), "v2 request: method")
  assert(typeof path === "string" && typeof val === "string" && typeof prevValue === "string", "v2 request: strings")
  assert(typeof dir === "boolean" && typeof recursive === "boolean" && typeof sorted === "boolean" && typeof refresh === "boolean", "v2 request: flags")
  assert(typeof prevIndex === "number" && typeof expireMs === "number" && typeof timeMs === "number", "v2 request: numbers")
  assert(prevExist === null || typeof prevExist === "boolean", "v2 request: prevExist")
  return { method: method as V2Method, path, val, dir, prevValue, prevIndex, prevExist: prevExist ?? undefined, recursive, sorted, refresh, expireMs, timeMs }
}

/** What applying gives back to the proposer: the event, or etcd's error (an answer, not a failure). */
export type V2Result = { event: V2Event } | { error: V2ErrorJson } | { expired: number } | { authError: V2AuthError | null }

export function applyV2(store: V2Store, r: V2Request): V2Result {
  try {
    return run(store, r)
  } catch (e) {
    if (e instanceof V2Error) return { error: e.toJson() }
    throw e
  }
}

function run(store: V2Store, r: V2Request): V2Result {
  const ttl: TtlOptions = { expireMs: r.expireMs, refresh: r.refresh }
  switch (r.method) {
    case "POST":
      return { event: store.create(r.path, r.dir, r.val, true, ttl) }
    case "PUT": {
      if (r.prevExist !== undefined) {
        if (r.prevExist) {
          if (r.prevIndex === 0 && r.prevValue === "") return { event: store.update(r.path, r.val, ttl) }
          return { event: store.compareAndSwap({ nodePath: r.path, prevValue: r.prevValue, prevIndex: r.prevIndex, value: r.val, ttl }) }
        }
        return { event: store.create(r.path, r.dir, r.val, false, ttl) }
      }
      if (r.prevIndex > 0 || r.prevValue !== "") {
        return { event: store.compareAndSwap({ nodePath: r.path, prevValue: r.prevValue, prevIndex: r.prevIndex, value: r.val, ttl }) }
      }
      return { event: store.set(r.path, r.dir, r.val, ttl) }
    }
    case "DELETE":
      if (r.prevIndex > 0 || r.prevValue !== "") return { event: store.compareAndDelete(r.path, r.prevValue, r.prevIndex) }
      return { event: store.delete(r.path, r.dir, r.recursive) }
    case "QGET":
      return { event: store.get(r.path, r.recursive, r.sorted) }
    case "SYNC":
      return { expired: store.deleteExpired(r.timeMs).length }
    case "AUTH": {
      // r.val: the JSON op, passwords already hashed by the proposer.
      const result = store.auth.apply(JSON.parse(r.val) as V2AuthOp)
      if (typeof result !== "number") return { authError: result }
      store.recordInternalWrites(result)
      return { authError: null }
    }
  }
}
