// Auth mutations as raft entries (RequestKind.Auth): the API layer encodes
// one AuthOp as CBOR after it checked what it can (password, admin, hash),
// and every member decodes, validates and applies it to its AuthStore. The
// admin rule is checked again here with the user the entry carries, as
// etcd's auth applier does, so a role revoked between the check and the
// apply cannot slip a change through.

import type { AuthStore } from "../auth/store"
import type { AuthInfo } from "../auth/types"
import { TskvError } from "../lib/errors"
import { decodeCbor, type DecodedRequest, encodeCbor } from "./request"

export type AuthOp =
  | { op: "enable"; secret: Uint8Array }
  | { op: "disable" }
  | { op: "authenticate"; name: string; simpleToken: string; checkedRevision: number }
  | { op: "userAdd"; name: string; hashedPassword: string; noPassword: boolean }
  | { op: "userDelete"; name: string }
  | { op: "userChangePassword"; name: string; hashedPassword: string }
  | { op: "userGrantRole"; user: string; role: string }
  | { op: "userRevokeRole"; name: string; role: string }
  | { op: "roleAdd"; name: string }
  | { op: "roleDelete"; name: string }
  | { op: "roleGrantPermission"; name: string; permType: number; key: Uint8Array; rangeEnd: Uint8Array }
  | { op: "roleRevokePermission"; role: string; key: Uint8Array; rangeEnd: Uint8Array }

/** What an applied op answers (the service adds the header). */
export type AuthApplyResult = { token: string } | Record<string, never>

export function encodeAuthOp(op: AuthOp): Uint8Array {
  return encodeCbor(op)
}

type Shape = Record<string, "string" | "bytes" | "number" | "boolean">

const SHAPES: Record<AuthOp["op"], Shape> = {
  enable: { secret: "bytes" },
  disable: {},
  authenticate: { name: "string", simpleToken: "string", checkedRevision: "number" },
  userAdd: { name: "string", hashedPassword: "string", noPassword: "boolean" },
  userDelete: { name: "string" },
  userChangePassword: { name: "string", hashedPassword: "string" },
  userGrantRole: { user: "string", role: "string" },
  userRevokeRole: { name: "string", role: "string" },
  roleAdd: { name: "string" },
  roleDelete: { name: "string" },
  roleGrantPermission: { name: "string", permType: "number", key: "bytes", rangeEnd: "bytes" },
  roleRevokePermission: { role: "string", key: "bytes", rangeEnd: "bytes" },
}

/**
 * Decodes and checks an entry body. A body that is not a well-formed op
 * fails the request (the same way on every member) instead of the member.
 */
export function decodeAuthOp(body: Uint8Array): AuthOp {
  let value: unknown
  try {
    value = decodeCbor(body)
  } catch {
    throw malformed("not CBOR")
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw malformed("not a map")
  const v = value as Record<string, unknown>
  const op = v.op
  if (typeof op !== "string" || !Object.hasOwn(SHAPES, op)) throw malformed(`unknown op ${String(op)}`)
  const shape = SHAPES[op as AuthOp["op"]]
  for (const [field, type] of Object.entries(shape)) {
    const x = v[field]
    const ok =
      type === "bytes" ? x instanceof Uint8Array : type === "number" ? typeof x === "number" && Number.isSafeInteger(x) && x >= 0 : typeof x === type
    if (!ok) throw malformed(`${op}.${field}`)
  }
  if (op === "roleGrantPermission" && ![0, 1, 2].includes(v.permType as number)) throw malformed("permType")
  if (op === "enable" && (v.secret as Uint8Array).length < 16) throw malformed("secret")
  return v as AuthOp
}

function malformed(what: string): TskvError {
  return new TskvError("invalidAuthMgmt", `etcdserver: invalid auth management (malformed auth request: ${what})`)
}

/** Who the entry runs as: null without a user (the store then answers userEmpty where a user is needed). */
export function entryAuthInfo(req: Pick<DecodedRequest, "user" | "authRevision">): AuthInfo | null {
  return req.user === "" ? null : { username: req.user, revision: req.authRevision }
}

/**
 * Applies one RequestKind.Auth entry. `index` is the raft index of the entry
 * (the suffix of a simple token). Deterministic: the same entry gives the
 * same state and the same result (or error) on every member.
 */
export function applyAuthRequest(auth: AuthStore, req: DecodedRequest, index: number): AuthApplyResult {
  const op = decodeAuthOp(req.body)
  if (op.op === "authenticate") {
    return auth.applyAuthenticate({ name: op.name, simpleToken: op.simpleToken, index, checkedRevision: op.checkedRevision })
  }
  auth.isAdminPermitted(entryAuthInfo(req))
  switch (op.op) {
    case "enable":
      auth.enable(op.secret)
      break
    case "disable":
      auth.disable()
      break
    case "userAdd":
      auth.userAdd({ name: op.name, hashedPassword: op.hashedPassword, options: { noPassword: op.noPassword } })
      break
    case "userDelete":
      auth.userDelete(op.name)
      break
    case "userChangePassword":
      auth.userChangePassword({ name: op.name, hashedPassword: op.hashedPassword })
      break
    case "userGrantRole":
      auth.userGrantRole({ user: op.user, role: op.role })
      break
    case "userRevokeRole":
      auth.userRevokeRole({ name: op.name, role: op.role })
      break
    case "roleAdd":
      auth.roleAdd(op.name)
      break
    case "roleDelete":
      auth.roleDelete(op.name)
      break
    case "roleGrantPermission":
      auth.roleGrantPermission({ name: op.name, perm: { permType: op.permType, key: op.key, rangeEnd: op.rangeEnd } })
      break
    case "roleRevokePermission":
      auth.roleRevokePermission({ role: op.role, key: op.key, rangeEnd: op.rangeEnd })
      break
  }
  return {}
}
