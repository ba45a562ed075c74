import { afterEach, expect, test } from "bun:test"
import { Backend } from "../backend/backend"
import { FakeClock } from "../lib/clock"
import { isTskvError } from "../lib/errors"
import { prefixEnd, utf8 } from "../lib/bytes"
import { hashPassword } from "./password"
import {
  type RequestOpLike,
  type TxnRequestLike,
  checkDeleteRange,
  checkLeaseRevoke,
  checkLeaseTimeToLive,
  checkPut,
  checkRange,
  checkTxn,
  checkWatch,
} from "./request_perms"
import { AuthStore } from "./store"
import { newAuthSecret } from "./tokens"
import { type AuthInfo, PermissionType } from "./types"

const backends: Backend[] = []
afterEach(() => {
  for (const b of backends.splice(0)) b.close()
})

/** Leases and their keys, as the lessor would report them (auth does not import lease). */
class FakeLeases {
  private readonly keys = new Map<bigint, Uint8Array[]>()
  grant(id: bigint, _ttl: number): void {
    this.keys.set(id, [])
  }
  attach(id: bigint, key: Uint8Array): void {
    this.keys.get(id)!.push(key)
  }
  keysOf(id: bigint): Uint8Array[] {
    return this.keys.get(id) ?? []
  }
}

const E = new Uint8Array(0)
const Z = new Uint8Array([0])
const k = (s: string) => utf8(s)

/** root; user "u" may read and write app/ and only read pub/. */
async function setup() {
  const backend = Backend.open({ path: ":memory:" })
  backends.push(backend)
  const clock = new FakeClock()
  const auth = new AuthStore({ backend, clock })
  const lessor = new FakeLeases()
  auth.userAdd({ name: "root", hashedPassword: await hashPassword("pw", 4) })
  auth.userGrantRole({ user: "root", role: "root" })
  auth.userAdd({ name: "u", hashedPassword: await hashPassword("pw", 4) })
  auth.roleAdd("app")
  auth.roleGrantPermission({ name: "app", perm: { permType: PermissionType.READWRITE, key: k("app/"), rangeEnd: prefixEnd(k("app/")) } })
  auth.roleGrantPermission({ name: "app", perm: { permType: PermissionType.READ, key: k("pub/"), rangeEnd: prefixEnd(k("pub/")) } })
  auth.roleGrantPermission({ name: "app", perm: { permType: PermissionType.WRITE, key: k("drop/"), rangeEnd: prefixEnd(k("drop/")) } })
  auth.userGrantRole({ user: "u", role: "app" })
  auth.enable(newAuthSecret())
  const u: AuthInfo = { username: "u", revision: auth.revision() }
  const root: AuthInfo = { username: "root", revision: auth.revision() }
  const leaseKeys = (id: bigint) => lessor.keysOf(id)
  return { auth, lessor, u, root, leaseKeys }
}

function code(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (e) {
    if (isTskvError(e)) return e.code
    throw e
  }
  return undefined
}

const put = (key: string, extra: Partial<{ lease: bigint; prevKv: boolean }> = {}): RequestOpLike => ({
  requestPut: { key: k(key), lease: extra.lease ?? 0n, prevKv: extra.prevKv ?? false },
})
const get = (key: string, rangeEnd: Uint8Array = E): RequestOpLike => ({ requestRange: { key: k(key), rangeEnd } })
const del = (key: string, rangeEnd: Uint8Array = E, prevKv = false): RequestOpLike => ({ requestDeleteRange: { key: k(key), rangeEnd, prevKv } })
const txn = (t: Partial<TxnRequestLike>): TxnRequestLike => ({ compare: [], success: [], failure: [], ...t })

test("checkRange/checkWatch: READ on the whole range; '\\0' and wider ends are refused", async () => {
  const { auth, u } = await setup()
  expect(code(() => checkRange(auth, u, { key: k("pub/a"), rangeEnd: E }))).toBeUndefined()
  expect(code(() => checkRange(auth, u, { key: k("pub/"), rangeEnd: prefixEnd(k("pub/")) }))).toBeUndefined()
  expect(code(() => checkRange(auth, u, { key: k("pub/"), rangeEnd: Z }))).toBe("permissionDenied")
  expect(code(() => checkRange(auth, u, { key: Z, rangeEnd: Z }))).toBe("permissionDenied")
  expect(code(() => checkRange(auth, u, { key: k("drop/x"), rangeEnd: E }))).toBe("permissionDenied") // write-only
  expect(code(() => checkWatch(auth, u, { key: k("app/"), rangeEnd: prefixEnd(k("app/")) }))).toBeUndefined()
  expect(code(() => checkWatch(auth, u, { key: k("secret"), rangeEnd: E }))).toBe("permissionDenied")
})

test("checkPut: WRITE on the key; prev_kv also needs READ", async () => {
  const { auth, u, leaseKeys } = await setup()
  expect(code(() => checkPut(auth, u, put("app/x").requestPut!, leaseKeys))).toBeUndefined()
  expect(code(() => checkPut(auth, u, put("pub/x").requestPut!, leaseKeys))).toBe("permissionDenied")
  expect(code(() => checkPut(auth, u, put("drop/x").requestPut!, leaseKeys))).toBeUndefined()
  expect(code(() => checkPut(auth, u, put("drop/x", { prevKv: true }).requestPut!, leaseKeys))).toBe("permissionDenied")
})

test("checkDeleteRange: WRITE on the range; prev_kv also needs READ on it", async () => {
  const { auth, u } = await setup()
  expect(code(() => checkDeleteRange(auth, u, del("drop/", prefixEnd(k("drop/"))).requestDeleteRange!))).toBeUndefined()
  expect(code(() => checkDeleteRange(auth, u, del("drop/", prefixEnd(k("drop/")), true).requestDeleteRange!))).toBe("permissionDenied")
  expect(code(() => checkDeleteRange(auth, u, del("drop/", Z).requestDeleteRange!))).toBe("permissionDenied")
})

test("checkPut with a lease that holds keys the user cannot write is refused", async () => {
  const { auth, u, lessor, leaseKeys } = await setup()
  lessor.grant(1n, 60)
  lessor.attach(1n, k("other/secret"))
  lessor.grant(2n, 60)
  lessor.attach(2n, k("app/mine"))
  expect(code(() => checkPut(auth, u, put("app/x", { lease: 1n }).requestPut!, leaseKeys))).toBe("permissionDenied")
  expect(code(() => checkPut(auth, u, put("app/x", { lease: 2n }).requestPut!, leaseKeys))).toBeUndefined()
  expect(code(() => checkPut(auth, u, put("app/x", { lease: 3n }).requestPut!, leaseKeys))).toBeUndefined()
})

test("checkPut with auth disabled never lists the lease's keys (a lease shared by many keys made each put O(keys))", async () => {
  const { auth, lessor } = await setup()
  lessor.grant(1n, 60)
  lessor.attach(1n, k("other/secret"))
  let listed = 0
  const counting = (id: bigint) => {
    listed++
    return lessor.keysOf(id)
  }
  expect(code(() => checkPut(auth, null, put("app/x", { lease: 1n }).requestPut!, counting))).toBe("userEmpty")
  expect(listed).toBe(0) // refused before: a user is needed for the key itself
  auth.disable()
  expect(code(() => checkPut(auth, null, put("other/x", { lease: 1n }).requestPut!, counting))).toBeUndefined()
  expect(listed).toBe(0)
})

test("checkTxn: a forbidden write hidden in the failure branch fails the whole txn", async () => {
  const { auth, u, root, leaseKeys } = await setup()
  const hidden = txn({ compare: [{ key: k("app/flag"), rangeEnd: E }], success: [put("app/a")], failure: [put("pub/overwrite")] })
  expect(code(() => checkTxn(auth, u, hidden, leaseKeys))).toBe("permissionDenied")
  expect(code(() => checkTxn(auth, root, hidden, leaseKeys))).toBeUndefined()
  const fine = txn({ compare: [{ key: k("app/flag"), rangeEnd: E }], success: [put("app/a"), get("pub/x")], failure: [del("app/b")] })
  expect(code(() => checkTxn(auth, u, fine, leaseKeys))).toBeUndefined()
})

test("checkTxn: compares need READ, nested txns are checked in both of their branches too", async () => {
  const { auth, u, leaseKeys } = await setup()
  expect(code(() => checkTxn(auth, u, txn({ compare: [{ key: k("secret"), rangeEnd: E }] }), leaseKeys))).toBe("permissionDenied")
  expect(code(() => checkTxn(auth, u, txn({ compare: [{ key: k("pub/"), rangeEnd: Z }] }), leaseKeys))).toBe("permissionDenied")
  const nested = txn({ success: [{ requestTxn: txn({ success: [get("app/x")], failure: [{ requestTxn: txn({ failure: [del("secret/", Z)] }) }] }) }] })
  expect(code(() => checkTxn(auth, u, nested, leaseKeys))).toBe("permissionDenied")
  const nestedOk = txn({ failure: [{ requestTxn: txn({ success: [get("app/x")], failure: [put("app/y", { prevKv: true })] }) }] })
  expect(code(() => checkTxn(auth, u, nestedOk, leaseKeys))).toBeUndefined()
  const prevKv = txn({ success: [del("drop/", prefixEnd(k("drop/")), true)] })
  expect(code(() => checkTxn(auth, u, prevKv, leaseKeys))).toBe("permissionDenied")
})

test("checkLeaseRevoke: WRITE on every attached key unless admin; a lease touching keys outside the permissions is refused", async () => {
  const { auth, u, root, lessor } = await setup()
  lessor.grant(1n, 60)
  lessor.attach(1n, k("app/a"))
  lessor.attach(1n, k("pub/b")) // read-only for u
  expect(code(() => checkLeaseRevoke(auth, u, lessor.keysOf(1n)))).toBe("permissionDenied")
  expect(code(() => checkLeaseRevoke(auth, root, lessor.keysOf(1n)))).toBeUndefined()
  lessor.grant(2n, 60)
  lessor.attach(2n, k("app/c"))
  expect(code(() => checkLeaseRevoke(auth, u, lessor.keysOf(2n)))).toBeUndefined()
  expect(code(() => checkLeaseRevoke(auth, u, lessor.keysOf(99n)))).toBeUndefined()
})

test("checkLeaseTimeToLive: READ on every attached key unless admin; userEmpty without credentials", async () => {
  const { auth, u, root, lessor } = await setup()
  lessor.grant(1n, 60)
  lessor.attach(1n, k("app/a"))
  lessor.attach(1n, k("drop/b")) // write-only for u
  expect(code(() => checkLeaseTimeToLive(auth, u, lessor.keysOf(1n)))).toBe("permissionDenied")
  expect(code(() => checkLeaseTimeToLive(auth, root, lessor.keysOf(1n)))).toBeUndefined()
  expect(code(() => checkLeaseTimeToLive(auth, null, []))).toBe("userEmpty")
  auth.disable()
  expect(code(() => checkLeaseTimeToLive(auth, null, lessor.keysOf(1n)))).toBeUndefined()
  expect(code(() => checkLeaseRevoke(auth, null, lessor.keysOf(1n)))).toBeUndefined()
})
