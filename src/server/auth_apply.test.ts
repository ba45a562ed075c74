import { afterEach, expect, test } from "bun:test"
import { AuthStore } from "../auth/store"
import { genSimpleTokenPrefix, newAuthSecret } from "../auth/tokens"
import { Backend } from "../backend/backend"
import { FakeClock } from "../lib/clock"
import { isTskvError } from "../lib/errors"
import { utf8 } from "../lib/bytes"
import { type AuthOp, applyAuthRequest, decodeAuthOp, encodeAuthOp } from "./auth_apply"
import { type DecodedRequest, encodeCbor, RequestKind } from "./request"

const backends: Backend[] = []
afterEach(() => {
  for (const b of backends.splice(0)) b.close()
})

function newStore(): AuthStore {
  const backend = Backend.open({ path: ":memory:" })
  backends.push(backend)
  return new AuthStore({ backend, clock: new FakeClock(), bcryptCost: 4 })
}

function entry(op: AuthOp | Uint8Array, user = "", authRevision = 0): DecodedRequest {
  const body = op instanceof Uint8Array ? op : encodeAuthOp(op)
  return { kind: RequestKind.Auth, origin: 1n, seq: 1, authRevision, user, body }
}

function errorCode(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (e) {
    if (isTskvError(e)) return e.code
    throw e
  }
  return undefined
}

const HASH = Bun.password.hashSync("pw", { algorithm: "bcrypt", cost: 4 })

/** root (with role root) and alice, auth enabled. */
function enabledStore(): AuthStore {
  const auth = newStore()
  let index = 1
  for (const op of [
    { op: "userAdd", name: "root", hashedPassword: HASH, noPassword: false },
    { op: "roleAdd", name: "root" },
    { op: "userGrantRole", user: "root", role: "root" },
    { op: "userAdd", name: "alice", hashedPassword: HASH, noPassword: false },
    { op: "enable", secret: newAuthSecret() },
  ] satisfies AuthOp[]) {
    applyAuthRequest(auth, entry(op), index++)
  }
  expect(auth.isEnabled()).toBe(true)
  return auth
}

test("decodeAuthOp: round-trips every op kind", () => {
  const ops: AuthOp[] = [
    { op: "enable", secret: newAuthSecret() },
    { op: "disable" },
    { op: "authenticate", name: "a", simpleToken: genSimpleTokenPrefix(), checkedRevision: 3 },
    { op: "userAdd", name: "a", hashedPassword: HASH, noPassword: false },
    { op: "userDelete", name: "a" },
    { op: "userChangePassword", name: "a", hashedPassword: HASH },
    { op: "userGrantRole", user: "a", role: "r" },
    { op: "userRevokeRole", name: "a", role: "r" },
    { op: "roleAdd", name: "r" },
    { op: "roleDelete", name: "r" },
    { op: "roleGrantPermission", name: "r", permType: 2, key: utf8("a"), rangeEnd: utf8("b") },
    { op: "roleRevokePermission", role: "r", key: utf8("a"), rangeEnd: new Uint8Array(0) },
  ]
  for (const op of ops) {
    const back = decodeAuthOp(encodeAuthOp(op)) as Record<string, unknown>
    for (const [k, v] of Object.entries(op)) {
      if (v instanceof Uint8Array) expect(Buffer.compare(back[k] as Uint8Array, v)).toBe(0)
      else expect(back[k]).toEqual(v)
    }
  }
})

test("decodeAuthOp: malformed bodies fail the request with invalidAuthMgmt, never the member", () => {
  const bodies: Uint8Array[] = [
    new Uint8Array([0xff, 0x00, 0x13]),
    encodeCbor("userAdd"),
    encodeCbor([1, 2]),
    encodeCbor({ op: "dropTables" }),
    encodeCbor({ op: "userAdd", name: 7, hashedPassword: "", noPassword: false }),
    encodeCbor({ op: "roleGrantPermission", name: "r", permType: 9, key: utf8("a"), rangeEnd: utf8("") }),
    encodeCbor({ op: "roleGrantPermission", name: "r", permType: 1, key: "a", rangeEnd: utf8("") }),
    encodeCbor({ op: "enable", secret: new Uint8Array(4) }),
    encodeCbor({ op: "authenticate", name: "a", simpleToken: "x", checkedRevision: -1 }),
    new Uint8Array(0),
  ]
  const auth = newStore()
  for (const body of bodies) expect(errorCode(() => applyAuthRequest(auth, entry(body), 1))).toBe("invalidAuthMgmt")
})

test("applyAuthRequest: with auth enabled, mutations need the root role of the entry's user", () => {
  const auth = enabledStore()
  const op: AuthOp = { op: "roleAdd", name: "r1" }
  expect(errorCode(() => applyAuthRequest(auth, entry(op), 10))).toBe("userEmpty")
  expect(errorCode(() => applyAuthRequest(auth, entry(op, "alice", auth.revision()), 10))).toBe("permissionDenied")
  expect(errorCode(() => applyAuthRequest(auth, entry(op, "ghost", auth.revision()), 10))).toBe("userNotFound")
  expect(auth.roleList()).toEqual(["root"])
  expect(errorCode(() => applyAuthRequest(auth, entry(op, "root", auth.revision()), 10))).toBeUndefined()
  expect(auth.roleList()).toEqual(["r1", "root"])
})

test("applyAuthRequest: root protections while enabled come from the store", () => {
  const auth = enabledStore()
  const asRoot = (op: AuthOp): string | undefined => errorCode(() => applyAuthRequest(auth, entry(op, "root", auth.revision()), 20))
  expect(asRoot({ op: "userDelete", name: "root" })).toBe("invalidAuthMgmt")
  expect(asRoot({ op: "roleDelete", name: "root" })).toBe("invalidAuthMgmt")
  expect(asRoot({ op: "userRevokeRole", name: "root", role: "root" })).toBe("invalidAuthMgmt")
  expect(asRoot({ op: "disable" })).toBeUndefined()
  expect(auth.isEnabled()).toBe(false)
})

test("applyAuthRequest: authenticate issues a simple token from the prefix and the entry index", () => {
  const auth = enabledStore()
  const prefix = genSimpleTokenPrefix()
  const res = applyAuthRequest(auth, entry({ op: "authenticate", name: "alice", simpleToken: prefix, checkedRevision: auth.revision() }), 42)
  expect(res).toEqual({ token: `${prefix}.42` })
  expect(auth.authInfo(`${prefix}.42`, undefined)?.username).toBe("alice")
})

test("applyAuthRequest: authenticate checked at an older auth revision answers authOldRevision (the API layer retries)", () => {
  const auth = enabledStore()
  const checked = auth.revision()
  applyAuthRequest(auth, entry({ op: "roleAdd", name: "r2" }, "root", auth.revision()), 30)
  const op: AuthOp = { op: "authenticate", name: "alice", simpleToken: genSimpleTokenPrefix(), checkedRevision: checked }
  expect(errorCode(() => applyAuthRequest(auth, entry(op), 31))).toBe("authOldRevision")
})

test("applyAuthRequest: two stores applying the same entries end in the same state", () => {
  const a = enabledStore()
  const b = enabledStore()
  const ops: AuthOp[] = [
    { op: "roleAdd", name: "ro" },
    { op: "roleGrantPermission", name: "ro", permType: 0, key: utf8("/app/"), rangeEnd: utf8("/app0") },
    { op: "userGrantRole", user: "alice", role: "ro" },
    { op: "userGrantRole", user: "alice", role: "missing" },
  ]
  for (const [i, op] of ops.entries()) {
    const ra = errorCode(() => applyAuthRequest(a, entry(op, "root", a.revision()), 100 + i))
    const rb = errorCode(() => applyAuthRequest(b, entry(op, "root", b.revision()), 100 + i))
    expect(ra).toBe(rb)
  }
  expect(a.revision()).toBe(b.revision())
  expect(a.userGet("alice")).toEqual(b.userGet("alice"))
  expect(a.roleGet("ro")).toEqual(b.roleGet("ro"))
})
