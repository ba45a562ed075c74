import { afterEach, expect, test } from "bun:test"
import { generateKeyPairSync } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Backend } from "../backend/backend"
import { FakeClock } from "../lib/clock"
import { isTskvError } from "../lib/errors"
import { prefixEnd, utf8 } from "../lib/bytes"
import { hashPassword } from "./password"
import { AuthStore, type AuthStoreOptions } from "./store"
import { genSimpleTokenPrefix, newAuthSecret } from "./tokens"
import { type AuthInfo, PermissionType } from "./types"

const COST = 4
const backends: Backend[] = []
afterEach(() => {
  for (const b of backends.splice(0)) b.close()
})

function newStore(options: Partial<AuthStoreOptions> = {}) {
  const backend = options.backend ?? Backend.open({ path: ":memory:" })
  backends.push(backend)
  const clock = (options.clock as FakeClock | undefined) ?? new FakeClock()
  return { backend, clock, auth: new AuthStore({ backend, clock, ...options }) }
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

async function codeAsync(fn: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await fn()
  } catch (e) {
    if (isTskvError(e)) return e.code
    throw e
  }
  return undefined
}

async function addUser(auth: AuthStore, name: string, password: string): Promise<void> {
  auth.userAdd({ name, hashedPassword: await hashPassword(password, COST) })
}

/** root with role root, enabled. */
async function enabledStore(options: Partial<AuthStoreOptions> = {}) {
  const s = newStore(options)
  await addUser(s.auth, "root", "rootpw")
  s.auth.userGrantRole({ user: "root", role: "root" })
  s.auth.enable(newAuthSecret())
  return s
}

let nextIndex = 100
async function login(auth: AuthStore, name: string, password: string): Promise<string> {
  const checkedRevision = await auth.checkPassword(name, password)
  return auth.applyAuthenticate({ name, simpleToken: genSimpleTokenPrefix(), index: nextIndex++, checkedRevision }).token
}

const key = (s: string) => utf8(s)
const NONE = new Uint8Array(0)

test("AuthStore starts disabled at auth revision 1", () => {
  const { auth } = newStore()
  expect(auth.status()).toEqual({ enabled: false, authRevision: 1 })
})

test("AuthStore.enable() needs user root with role root (etcd's errors) and does not bump the revision", async () => {
  const { auth } = newStore()
  expect(code(() => auth.enable(newAuthSecret()))).toBe("rootUserNotExist")
  await addUser(auth, "root", "pw")
  expect(code(() => auth.enable(newAuthSecret()))).toBe("rootRoleNotExist")
  auth.userGrantRole({ user: "root", role: "root" }) // the root role need not exist as a role
  const before = auth.revision()
  auth.enable(newAuthSecret())
  expect(auth.status()).toEqual({ enabled: true, authRevision: before })
  auth.enable(newAuthSecret()) // already enabled: ignored
  expect(auth.revision()).toBe(before)
  auth.disable()
  expect(auth.status()).toEqual({ enabled: false, authRevision: before + 1 })
  auth.disable()
  expect(auth.revision()).toBe(before + 1)
})

test("AuthStore user management: add, get, list, delete and their errors", async () => {
  const { auth } = newStore()
  expect(code(() => auth.userAdd({ name: "", hashedPassword: "x" }))).toBe("userEmpty")
  await addUser(auth, "bob", "pw")
  await addUser(auth, "alice", "pw")
  auth.userAdd({ name: "cn-only", hashedPassword: "", options: { noPassword: true } })
  expect(code(() => auth.userAdd({ name: "bob", hashedPassword: "x" }))).toBe("userAlreadyExist")
  expect(auth.userList()).toEqual(["alice", "bob", "cn-only"])
  expect(auth.userGet("bob")).toEqual({ roles: [] })
  expect(code(() => auth.userGet("nobody"))).toBe("userNotFound")
  auth.userDelete("alice")
  expect(code(() => auth.userDelete("alice"))).toBe("userNotFound")
  expect(auth.userList()).toEqual(["bob", "cn-only"])
})

test("AuthStore every change bumps the auth revision; a duplicate role grant does not", async () => {
  const { auth } = newStore()
  let rev = auth.revision()
  const bumped = () => {
    const now = auth.revision()
    const d = now - rev
    rev = now
    return d
  }
  await addUser(auth, "u", "pw")
  expect(bumped()).toBe(1)
  auth.roleAdd("r")
  expect(bumped()).toBe(1)
  auth.roleGrantPermission({ name: "r", perm: { permType: PermissionType.READ, key: key("a"), rangeEnd: NONE } })
  expect(bumped()).toBe(1)
  auth.userGrantRole({ user: "u", role: "r" })
  expect(bumped()).toBe(1)
  auth.userGrantRole({ user: "u", role: "r" })
  expect(bumped()).toBe(0)
  auth.userChangePassword({ name: "u", hashedPassword: await hashPassword("new", COST) })
  expect(bumped()).toBe(1)
  auth.roleRevokePermission({ role: "r", key: key("a"), rangeEnd: NONE })
  expect(bumped()).toBe(1)
  auth.userRevokeRole({ name: "u", role: "r" })
  expect(bumped()).toBe(1)
  auth.roleDelete("r")
  expect(bumped()).toBe(1)
  auth.userDelete("u")
  expect(bumped()).toBe(1)
})

test("AuthStore roles: add, get (sorted permissions), list, grant updates the type, revoke, delete takes it from users", async () => {
  const { auth } = newStore()
  expect(code(() => auth.roleAdd(""))).toBe("roleEmpty")
  auth.roleAdd("r1")
  expect(code(() => auth.roleAdd("r1"))).toBe("roleAlreadyExist")
  expect(code(() => auth.roleGet("nope"))).toBe("roleNotFound")
  auth.roleGrantPermission({ name: "r1", perm: { permType: PermissionType.READ, key: key("b"), rangeEnd: key("c") } })
  auth.roleGrantPermission({ name: "r1", perm: { permType: PermissionType.READ, key: key("a"), rangeEnd: NONE } })
  auth.roleGrantPermission({ name: "r1", perm: { permType: PermissionType.READWRITE, key: key("a"), rangeEnd: NONE } })
  expect(auth.roleGet("r1").perm).toEqual([
    { permType: PermissionType.READWRITE, key: key("a"), rangeEnd: NONE },
    { permType: PermissionType.READ, key: key("b"), rangeEnd: key("c") },
  ])
  expect(code(() => auth.roleGrantPermission({ name: "r1" }))).toBe("permissionNotGiven")
  expect(code(() => auth.roleGrantPermission({ name: "r1", perm: { permType: 0, key: key("c"), rangeEnd: key("b") } }))).toBe("invalidAuthMgmt")
  expect(code(() => auth.roleGrantPermission({ name: "r1", perm: { permType: 0, key: NONE, rangeEnd: NONE } }))).toBe("invalidAuthMgmt")
  expect(code(() => auth.roleGrantPermission({ name: "nope", perm: { permType: 0, key: key("a"), rangeEnd: NONE } }))).toBe("roleNotFound")
  expect(code(() => auth.roleRevokePermission({ role: "r1", key: key("b"), rangeEnd: NONE }))).toBe("permissionNotGranted")
  expect(code(() => auth.roleRevokePermission({ role: "nope", key: key("b"), rangeEnd: NONE }))).toBe("roleNotFound")
  auth.roleRevokePermission({ role: "r1", key: key("b"), rangeEnd: key("c") })
  expect(auth.roleGet("r1").perm.length).toBe(1)
  await addUser(auth, "u", "pw")
  expect(code(() => auth.userGrantRole({ user: "u", role: "nope" }))).toBe("roleNotFound")
  expect(code(() => auth.userGrantRole({ user: "nobody", role: "r1" }))).toBe("userNotFound")
  auth.roleAdd("r0")
  auth.userGrantRole({ user: "u", role: "r1" })
  auth.userGrantRole({ user: "u", role: "r0" })
  expect(auth.userGet("u").roles).toEqual(["r0", "r1"])
  expect(code(() => auth.userRevokeRole({ name: "u", role: "r9" }))).toBe("roleNotGranted")
  expect(code(() => auth.userRevokeRole({ name: "nobody", role: "r1" }))).toBe("userNotFound")
  auth.roleDelete("r1")
  expect(code(() => auth.roleDelete("r1"))).toBe("roleNotFound")
  expect(auth.userGet("u").roles).toEqual(["r0"])
  expect(auth.roleList()).toEqual(["r0"])
})

test("AuthStore root rules: while enabled, root cannot be deleted, lose role root, nor role root be deleted", async () => {
  const { auth } = await enabledStore()
  auth.roleAdd("root")
  expect(code(() => auth.userDelete("root"))).toBe("invalidAuthMgmt")
  expect(code(() => auth.userRevokeRole({ name: "root", role: "root" }))).toBe("invalidAuthMgmt")
  expect(code(() => auth.roleDelete("root"))).toBe("invalidAuthMgmt")
  auth.disable()
  auth.userRevokeRole({ name: "root", role: "root" })
  auth.roleDelete("root")
  auth.userDelete("root")
  expect(auth.userList()).toEqual([])
})

test("AuthStore.checkPassword() before raft: authNotEnabled, authFailed for unknown user, wrong password, no-password user", async () => {
  const d = newStore()
  await addUser(d.auth, "u", "pw")
  expect(await codeAsync(() => d.auth.checkPassword("u", "pw"))).toBe("authNotEnabled")
  const { auth } = await enabledStore()
  await addUser(auth, "u", "pw")
  auth.userAdd({ name: "cn", hashedPassword: "", options: { noPassword: true } })
  expect(await auth.checkPassword("u", "pw")).toBe(auth.revision())
  expect(await codeAsync(() => auth.checkPassword("u", "bad"))).toBe("authFailed")
  expect(await codeAsync(() => auth.checkPassword("nobody", "pw"))).toBe("authFailed")
  expect(await codeAsync(() => auth.checkPassword("cn", ""))).toBe("authFailed")
  expect(code(() => auth.applyAuthenticate({ name: "cn", simpleToken: genSimpleTokenPrefix(), index: 1 }))).toBe("authFailed")
})

test("AuthStore.applyAuthenticate() refuses a password checked at an older auth revision (the server retries)", async () => {
  const { auth } = await enabledStore()
  await addUser(auth, "u", "pw")
  const checked = await auth.checkPassword("u", "pw")
  auth.roleAdd("x")
  expect(code(() => auth.applyAuthenticate({ name: "u", simpleToken: genSimpleTokenPrefix(), index: 5, checkedRevision: checked }))).toBe("authOldRevision")
})

test("simple token: etcd's format, idle TTL refreshed on use, dropped by disable, password change and delete", async () => {
  const { auth, clock } = await enabledStore({ authTokenTtlSeconds: 300 })
  await addUser(auth, "u", "pw")
  const token = await login(auth, "u", "pw")
  expect(token).toMatch(/^[a-zA-Z]{16}\.[0-9]+$/)
  expect(auth.authInfo(token, undefined)).toEqual({ username: "u", revision: auth.revision() })
  clock.advance(299_000)
  expect(auth.authInfo(token, undefined)?.username).toBe("u") // refreshes
  clock.advance(299_000)
  expect(auth.authInfo(token, undefined)?.username).toBe("u")
  clock.advance(300_000)
  expect(code(() => auth.authInfo(token, undefined))).toBe("invalidAuthToken")

  const t2 = await login(auth, "u", "pw")
  auth.roleAdd("other") // a simple token follows the store's revision: not invalidated
  expect(auth.authInfo(t2, undefined)?.revision).toBe(auth.revision())
  auth.userChangePassword({ name: "u", hashedPassword: await hashPassword("new", COST) })
  expect(code(() => auth.authInfo(t2, undefined))).toBe("invalidAuthToken")
  const t3 = await login(auth, "u", "new")
  auth.userDelete("u")
  expect(code(() => auth.authInfo(t3, undefined))).toBe("invalidAuthToken")
  const t4 = await login(auth, "root", "rootpw")
  auth.disable()
  auth.enable(newAuthSecret())
  expect(code(() => auth.authInfo(t4, undefined))).toBe("invalidAuthToken")
})

test("AuthStore.authenticate(): null while disabled (an invalid token refused), userEmpty without credentials, certificate CN as user, token first", async () => {
  const d = newStore()
  expect(d.auth.authenticate(undefined, undefined)).toBeNull()
  // a token while auth is off: etcd 3.4 reads it and refuses one that does not verify
  expect(code(() => d.auth.authenticate("garbage", "cn"))).toBe("invalidAuthToken")
  expect(d.auth.authenticate(undefined, "cn")).toBeNull()
  const { auth } = await enabledStore()
  expect(code(() => auth.authenticate(undefined, undefined))).toBe("userEmpty")
  expect(code(() => auth.authenticate("", ""))).toBe("userEmpty")
  expect(auth.authInfo(undefined, undefined)).toBeNull()
  expect(auth.authenticate(undefined, "client-a")).toEqual({ username: "client-a", revision: auth.revision() })
  expect(code(() => auth.authenticate("not-a-token", "client-a"))).toBe("invalidAuthToken")
  const token = await login(auth, "root", "rootpw")
  expect(auth.authenticate(token, "client-a")?.username).toBe("root")
})

test("signed token: verified by another member and after a restart; an auth change makes it old", async () => {
  const dir = mkdtempSync(join(tmpdir(), "tskv-auth-"))
  try {
    const clock = new FakeClock()
    const paths = [join(dir, "a"), join(dir, "b")]
    const members = paths.map((path) => {
      const backend = Backend.open({ path })
      return { backend, auth: new AuthStore({ backend, clock, authToken: "signed,ttl=10m" }) }
    })
    // The same entries applied on both members.
    const hash = await hashPassword("rootpw", COST)
    const secret = newAuthSecret()
    for (const { auth } of members) {
      auth.userAdd({ name: "root", hashedPassword: hash })
      auth.userGrantRole({ user: "root", role: "root" })
      auth.enable(secret)
    }
    const [a, b] = members as [(typeof members)[0], (typeof members)[0]]
    const token = await login(a.auth, "root", "rootpw")
    expect(token.startsWith("tskv1.")).toBe(true)
    expect(b.auth.authInfo(token, undefined)).toEqual({ username: "root", revision: a.auth.revision() })
    // Restart b: the secret comes back from the backend.
    b.backend.close()
    const reopened = Backend.open({ path: paths[1]! })
    const b2 = new AuthStore({ backend: reopened, clock, authToken: "simple" }) // verifies signed tokens whatever it issues
    expect(b2.authInfo(token, undefined)?.username).toBe("root")
    // Tampering is detected.
    const forged = token.replace(/\.([^.]*)$/, (_m, mac: string) => `.${mac.slice(0, -2)}AA`)
    expect(code(() => b2.authInfo(forged, undefined))).toBe("invalidAuthToken")
    // Absolute expiry.
    clock.advance(10 * 60_000)
    expect(code(() => b2.authInfo(token, undefined))).toBe("invalidAuthToken")
    // An auth change makes earlier tokens old.
    const fresh = await login(a.auth, "root", "rootpw")
    a.auth.roleAdd("r")
    expect(code(() => a.auth.authInfo(fresh, undefined))).toBe("authOldRevision")
    a.backend.close()
    reopened.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test("signed token from another cluster (another secret) is an invalid auth token", async () => {
  const one = await enabledStore({ authToken: "signed" })
  const two = await enabledStore({ authToken: "signed" })
  const token = await login(one.auth, "root", "rootpw")
  expect(code(() => two.auth.authInfo(token, undefined))).toBe("invalidAuthToken")
})

test("jwt token: issued with the private key, verified with the public key, carries the revision", async () => {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" })
  const files: Record<string, string> = {
    "/k/priv.pem": privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    "/k/pub.pem": publicKey.export({ type: "spki", format: "pem" }).toString(),
  }
  const readFile = (p: string) => files[p]!
  const { auth, clock } = await enabledStore({ authToken: "jwt,pub-key=/k/pub.pem,priv-key=/k/priv.pem,sign-method=ES256,ttl=1m", readFile })
  const token = await login(auth, "root", "rootpw")
  const [, payload] = token.split(".")
  const claims = JSON.parse(Buffer.from(payload!, "base64url").toString())
  expect(claims.username).toBe("root")
  expect(claims.revision).toBe(auth.revision())
  expect(auth.authInfo(token, undefined)?.username).toBe("root")
  clock.advance(60_000)
  expect(code(() => auth.authInfo(token, undefined))).toBe("invalidAuthToken")
})

test("jwt token: a verify-only member answers Authenticate with notCapable instead of stopping, and verifies others' tokens", async () => {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" })
  const files: Record<string, string> = {
    "/k/priv.pem": privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    "/k/pub.pem": publicKey.export({ type: "spki", format: "pem" }).toString(),
  }
  const readFile = (p: string) => files[p]!
  const signer = await enabledStore({ authToken: "jwt,pub-key=/k/pub.pem,priv-key=/k/priv.pem,sign-method=ES256", readFile })
  const verifier = await enabledStore({ authToken: "jwt,pub-key=/k/pub.pem,sign-method=ES256", readFile })
  expect([signer.auth.canIssueTokens(), verifier.auth.canIssueTokens()]).toEqual([true, false])
  const checkedRevision = await verifier.auth.checkPassword("root", "rootpw")
  expect(code(() => verifier.auth.applyAuthenticate({ name: "root", simpleToken: genSimpleTokenPrefix(), index: 7, checkedRevision }))).toBe("notCapable")
  const token = await login(signer.auth, "root", "rootpw")
  expect(verifier.auth.authInfo(token, undefined)?.username).toBe("root")
})

const read = (auth: AuthStore, info: AuthInfo | null, k: string | Uint8Array, end: string | Uint8Array = "") =>
  code(() => auth.isRangePermitted(info, typeof k === "string" ? key(k) : k, typeof end === "string" ? key(end) : end))

test("AuthStore permission checks: userEmpty, authOldRevision, permissionDenied, unknown user, root passes", async () => {
  const { auth } = await enabledStore()
  await addUser(auth, "u", "pw")
  auth.roleAdd("ro")
  auth.roleGrantPermission({ name: "ro", perm: { permType: PermissionType.READ, key: key("app/"), rangeEnd: prefixEnd(key("app/")) } })
  auth.userGrantRole({ user: "u", role: "ro" })
  const rev = auth.revision()
  const u: AuthInfo = { username: "u", revision: rev }
  expect(read(auth, u, "app/x")).toBeUndefined()
  expect(read(auth, u, "app/", "app0")).toBeUndefined()
  expect(read(auth, u, "app/", new Uint8Array([0]))).toBe("permissionDenied")
  expect(read(auth, u, "other")).toBe("permissionDenied")
  expect(code(() => auth.isPutPermitted(u, key("app/x")))).toBe("permissionDenied")
  expect(code(() => auth.isDeleteRangePermitted(u, key("app/"), key("app0")))).toBe("permissionDenied")
  expect(read(auth, null, "app/x")).toBe("userEmpty")
  expect(read(auth, { username: "u", revision: 0 }, "app/x")).toBe("userEmpty")
  expect(read(auth, { username: "u", revision: rev - 1 }, "app/x")).toBe("authOldRevision")
  expect(read(auth, { username: "ghost", revision: rev }, "app/x")).toBe("permissionDenied")
  expect(read(auth, { username: "root", revision: rev }, new Uint8Array([0]), new Uint8Array([0]))).toBeUndefined()
  // Revoking the role takes effect at once (and bumps the revision).
  auth.userRevokeRole({ name: "u", role: "ro" })
  expect(read(auth, { username: "u", revision: auth.revision() }, "app/x")).toBe("permissionDenied")
})

test("AuthStore permissions of several roles merge; a permission change rebuilds the cache", async () => {
  const { auth } = await enabledStore()
  await addUser(auth, "u", "pw")
  auth.roleAdd("a")
  auth.roleAdd("b")
  auth.roleGrantPermission({ name: "a", perm: { permType: PermissionType.READ, key: key("k1"), rangeEnd: key("k5") } })
  auth.roleGrantPermission({ name: "b", perm: { permType: PermissionType.READWRITE, key: key("k5"), rangeEnd: key("k9") } })
  auth.userGrantRole({ user: "u", role: "a" })
  auth.userGrantRole({ user: "u", role: "b" })
  const info = () => ({ username: "u", revision: auth.revision() })
  expect(read(auth, info(), "k1", "k9")).toBeUndefined()
  auth.roleRevokePermission({ role: "b", key: key("k5"), rangeEnd: key("k9") })
  expect(read(auth, info(), "k1", "k9")).toBe("permissionDenied")
  expect(read(auth, info(), "k1", "k5")).toBeUndefined()
})

test("AuthStore admin checks: isAdminPermitted, UserGet of oneself, RoleGet of one's role", async () => {
  const { auth } = await enabledStore()
  await addUser(auth, "u", "pw")
  auth.roleAdd("r")
  auth.roleAdd("s")
  auth.userGrantRole({ user: "u", role: "r" })
  const rev = auth.revision()
  const u = { username: "u", revision: rev }
  const root = { username: "root", revision: rev }
  expect(code(() => auth.isAdminPermitted(null))).toBe("userEmpty")
  expect(code(() => auth.isAdminPermitted({ username: "ghost", revision: rev }))).toBe("userNotFound")
  expect(code(() => auth.isAdminPermitted(u))).toBe("permissionDenied")
  expect(code(() => auth.isAdminPermitted(root))).toBeUndefined()
  expect(auth.isAdmin(root)).toBe(true)
  expect(auth.isAdmin(u)).toBe(false)
  expect(code(() => auth.isUserGetPermitted(u, "u"))).toBeUndefined()
  expect(code(() => auth.isUserGetPermitted(u, "root"))).toBe("permissionDenied")
  expect(code(() => auth.isRoleGetPermitted(u, "r"))).toBeUndefined()
  expect(code(() => auth.isRoleGetPermitted(u, "s"))).toBe("permissionDenied")
  auth.disable()
  expect(code(() => auth.isAdminPermitted(null))).toBeUndefined()
  expect(read(auth, null, "anything")).toBeUndefined()
})

test("AuthStore state survives a restart; uncommitted changes are lost with the batch", async () => {
  const dir = mkdtempSync(join(tmpdir(), "tskv-auth-"))
  try {
    const path = join(dir, "db")
    const backend = Backend.open({ path })
    const auth = new AuthStore({ backend, clock: new FakeClock() })
    await addUser(auth, "root", "rootpw")
    auth.userGrantRole({ user: "root", role: "root" })
    auth.roleAdd("r")
    auth.roleGrantPermission({ name: "r", perm: { permType: PermissionType.WRITE, key: new Uint8Array([1, 0xff]), rangeEnd: new Uint8Array([0]) } })
    auth.userAdd({ name: "cn", hashedPassword: "", options: { noPassword: true } })
    auth.userGrantRole({ user: "cn", role: "r" })
    auth.enable(newAuthSecret())
    const revision = auth.revision()
    backend.commit()
    auth.roleAdd("lost")
    backend.db.close() // crash before the batch commits

    const again = Backend.open({ path })
    const restored = new AuthStore({ backend: again, clock: new FakeClock() })
    expect(restored.status()).toEqual({ enabled: true, authRevision: revision })
    expect(restored.roleList()).toEqual(["r"])
    expect(restored.userGet("cn")).toEqual({ roles: ["r"] })
    expect(restored.roleGet("r").perm).toEqual([{ permType: PermissionType.WRITE, key: new Uint8Array([1, 0xff]), rangeEnd: new Uint8Array([0]) }])
    expect(await restored.checkPassword("root", "rootpw")).toBe(revision)
    expect(await codeAsync(() => restored.checkPassword("cn", ""))).toBe("authFailed")
    expect(code(() => restored.isPutPermitted({ username: "cn", revision }, new Uint8Array([2])))).toBeUndefined()
    again.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test("AuthStore stores an unknown permission type but it grants nothing (no crash at apply)", async () => {
  const { auth } = await enabledStore()
  await addUser(auth, "u", "pw")
  auth.roleAdd("r")
  auth.roleGrantPermission({ name: "r", perm: { permType: 7, key: key("a"), rangeEnd: NONE } })
  auth.userGrantRole({ user: "u", role: "r" })
  expect(auth.roleGet("r").perm).toEqual([{ permType: 7, key: key("a"), rangeEnd: NONE }])
  expect(read(auth, { username: "u", revision: auth.revision() }, "a")).toBe("permissionDenied")
})

test("AuthStore hashes a plain password at apply when the entry has no hash (etcd < 3.5 entries)", async () => {
  const { auth } = await enabledStore({ bcryptCost: 4 })
  auth.userAdd({ name: "old", password: "secret", hashedPassword: "" })
  expect(await auth.checkPassword("old", "secret")).toBe(auth.revision())
  auth.userChangePassword({ name: "old", password: "next", hashedPassword: "" })
  expect(await auth.checkPassword("old", "next")).toBe(auth.revision())
  auth.userAdd({ name: "nohash", hashedPassword: "" })
  expect(await codeAsync(() => auth.checkPassword("nohash", ""))).toBe("authFailed")
})

test("AuthStore.reload(backend) takes the state of an installed snapshot and keeps simple tokens", async () => {
  const dir = mkdtempSync(join(tmpdir(), "tskv-auth-"))
  try {
    const { auth, backend } = await enabledStore()
    auth.roleAdd("kept")
    const token = await login(auth, "root", "rootpw")
    backend.copyTo(join(dir, "snap.db"))
    auth.roleAdd("later")
    const installed = Backend.open({ path: join(dir, "snap.db") })
    backends.push(installed)
    auth.reload(installed)
    expect(auth.roleList()).toEqual(["kept"])
    expect(auth.authInfo(token, undefined)?.username).toBe("root")
    auth.roleAdd("new")
    expect(installed.db.query("SELECT count(*) AS n FROM auth_role").get()).toEqual({ n: 2 })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
