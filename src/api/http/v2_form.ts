// Go's http.Request.ParseForm and the /v2/keys request parsing of etcd 3.4
// (etcdserver/api/v2http parseKeyRequest): which form fields a request may
// carry, and the v2 errors (with index 0) for the ones that do not parse.

import type { V2Request } from "../../v2store/apply"
import { V2Error, V2ErrorCode } from "../../v2store/errors"
import { cleanPath } from "../../v2store/store"

export type Form = Map<string, string[]>

/** The query, after the urlencoded body of a PUT, POST or PATCH (body values come first, as in Go). */
export async function parseForm(req: Request): Promise<Form> {
  const form: Form = new Map()
  const add = (params: URLSearchParams): void => {
    for (const [k, v] of params) {
      const list = form.get(k)
      if (list) list.push(v)
      else form.set(k, [v])
    }
  }
  const method = req.method
  const type = (req.headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase()
  // Go reads the body only when it says it is a form (no Content-Type counts as application/octet-stream).
  if ((method === "PUT" || method === "POST" || method === "PATCH") && type === "application/x-www-form-urlencoded") {
    add(new URLSearchParams(await req.text()))
  }
  add(new URL(req.url).searchParams)
  return form
}

export function formValue(form: Form, key: string): string {
  return form.get(key)?.[0] ?? ""
}

/** Go's strconv.ParseBool. */
function parseGoBool(s: string): boolean | undefined {
  if (["1", "t", "T", "TRUE", "true", "True"].includes(s)) return true
  if (["0", "f", "F", "FALSE", "false", "False"].includes(s)) return false
  return undefined
}

function getBool(form: Form, key: string): boolean {
  const v = form.get(key)
  if (v === undefined || v.length === 0) return false
  const b = parseGoBool(v[0]!)
  if (b === undefined) throw new V2Error(V2ErrorCode.InvalidField, `invalid value for "${key}"`, 0)
  return b
}

function getUint(form: Form, key: string, code: typeof V2ErrorCode.IndexNaN | typeof V2ErrorCode.TtlNaN): number {
  const v = form.get(key)
  if (v === undefined || v.length === 0) return 0
  if (!/^[0-9]+$/.test(v[0]!) || !Number.isSafeInteger(Number(v[0]))) throw new V2Error(code, `invalid value for "${key}"`, 0)
  return Number(v[0])
}

/** A /v2/keys request: the fields of the raft request, and those only the HTTP side reads. */
export interface KeyRequest extends Omit<V2Request, "method" | "expireMs" | "timeMs"> {
  method: string
  wait: boolean
  waitIndex: number
  quorum: boolean
  stream: boolean
  ttlSeconds: number | undefined
  noValueOnSuccess: boolean
}

export function parseKeyRequest(method: string, keyPath: string, form: Form): KeyRequest {
  const prevIndex = getUint(form, "prevIndex", V2ErrorCode.IndexNaN)
  const waitIndex = getUint(form, "waitIndex", V2ErrorCode.IndexNaN)
  const recursive = getBool(form, "recursive")
  const sorted = getBool(form, "sorted")
  const wait = getBool(form, "wait")
  const dir = getBool(form, "dir")
  const quorum = getBool(form, "quorum")
  const stream = getBool(form, "stream")
  if (wait && method !== "GET") throw new V2Error(V2ErrorCode.InvalidField, `"wait" can only be used with GET requests`, 0)
  const prevValue = formValue(form, "prevValue")
  if (form.has("prevValue") && prevValue === "") throw new V2Error(V2ErrorCode.PrevValueRequired, `"prevValue" cannot be empty`, 0)
  const noValueOnSuccess = getBool(form, "noValueOnSuccess")
  const ttlSeconds = formValue(form, "ttl") === "" ? undefined : getUint(form, "ttl", V2ErrorCode.TtlNaN)
  let prevExist: boolean | undefined
  if (form.has("prevExist")) {
    prevExist = parseGoBool(formValue(form, "prevExist"))
    if (prevExist === undefined) throw new V2Error(V2ErrorCode.InvalidField, "invalid value for prevExist", 0)
  }
  let refresh = false
  if (form.has("refresh")) {
    const r = parseGoBool(formValue(form, "refresh"))
    if (r === undefined) throw new V2Error(V2ErrorCode.InvalidField, "invalid value for refresh", 0)
    refresh = r
    if (refresh) {
      if (form.has("value") && formValue(form, "value") !== "") throw new V2Error(V2ErrorCode.RefreshValue, "A value was provided on a refresh", 0)
      if (ttlSeconds === undefined) throw new V2Error(V2ErrorCode.RefreshTtlRequired, "No TTL value set", 0)
    }
  }
  return {
    method,
    path: cleanPath(keyPath),
    val: formValue(form, "value"),
    dir,
    prevValue,
    prevIndex,
    prevExist,
    wait,
    waitIndex,
    recursive,
    sorted,
    quorum,
    stream,
    refresh,
    ttlSeconds,
    noValueOnSuccess,
  }
}

/** Go's encoding/json escapes <, > and & (and U+2028/9) in strings. */
export function goJson(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`)
}
