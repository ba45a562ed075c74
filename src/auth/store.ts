// The auth store: users, roles, key-range permissions, the enabled flag and
// the auth revision, as etcd's server/auth decides them. Mutations are
// applied from raft entries on every member and written into the backend
// batch; the auth revision is bumped by each of them (not by AuthEnable, as
// in etcd) and credentials issued at an older revision stop working where
// etcd says so. Passwords arrive already hashed (the API layer hashes before
// raft); Authenticate checks the password before raft with checkPassword().

import type { Backend } from "../backend/backend"
import { assert } from "../lib/assert"
import type { Clock } from "../lib/clock"
import { TskvError } from "../lib/errors"
import { BCRYPT_COST_DEFAULT, hashPasswordSync, verifyPassword } from "./password"
import { RangePermissions, isValidPermissionRange } from "./range_perms"
import { type AuthTokenSpec, SignedTokens, type TokenProvider, createTokenProvider, parseAuthTokenSpec } from "./tokens"
import {
  type AuthInfo,
  type AuthRoleGetResponse,
  type AuthRoleGrantPermissionRequest,
  type AuthRoleRevokePermissionRequest,
  type AuthStatus,
  type AuthUserAddRequest,
  type AuthUserChangePasswordRequest,
  type AuthUserGetResponse,
  type AuthUserGrantRoleRequest,
  type AuthUserRevokeRoleRequest,
  type AuthenticateApply,
  type Permission,
  PermissionType,
} from "./types"

export const ROOT_USER = "root"
export const ROOT_ROLE = "root"

export interface AuthStoreOptions {
  backend: Backend
  clock: Clock
  /** --auth-token: "simple" (default), "signed[,ttl=…]" or "jwt,pub-key=…,priv-key=…,sign-method=…[,ttl=…]". */
  authToken?: string | AuthTokenSpec
  /** --auth-token-ttl in seconds (default 300). */
  authTokenTtlSeconds?: number
  /** Reads jwt key files (default: node:fs). */
  readFile?: (path: string) => string
  /** --bcrypt-cost, for the rare entry that carries a plain password (etcd < 3.5 style). */
  bcryptCost?: number
}

interface User {
  name: string
  /** bcrypt hash; null for a no-password user. */
  password: string | null
  noPassword: boolean
  /** Sorted byte-wise. */
  roles: string[]
}

interface Role {
  name: string
  /** Sorted by key. */
  perms: Permission[]
}

const byBytes = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b))
const equalBytes = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(a, b) === 0

export class AuthStore {
  private backend: Backend
  private readonly clock: Clock
  private readonly issuer: TokenProvider
  private readonly verifiers: TokenProvider[]
  private users = new Map<string, User>()
  private roles = new Map<string, Role>()
  private enabled = false
  private authRevision = 0
  private secret: Uint8Array | null = null
  private permCache = new Map<string, RangePermissions>()
  private readonly bcryptCost: number

  constructor(options: AuthStoreOptions) {
    this.backend = options.backend
    this.bcryptCost = options.bcryptCost ?? BCRYPT_COST_DEFAULT
    this.clock = options.clock
    const spec = typeof options.authToken === "string" ? parseAuthTokenSpec(options.authToken) : (options.authToken ?? { type: "simple", options: {} })
    const ttlSeconds = options.authTokenTtlSeconds ?? 300
    const deps = { clock: this.clock, ttlSeconds, secret: () => this.secret, ...(options.readFile ? { readFile: options.readFile } : {}) }
    this.issuer = createTokenProvider(spec, deps)
    // Signed tokens are checked on every member, whatever it issues.
    this.verifiers = this.issuer.type === "signed" ? [this.issuer] : [this.issuer, new SignedTokens(deps)]
    this.reload()
  }

  /**
   * Re-reads everything from the backend: at start, and after a snapshot
   * install (pass the new backend if it was replaced). Simple tokens held in
   * memory are kept, as etcd's Recover keeps them.
   */
  reload(backend: Backend = this.backend): void {
    this.backend = backend
    const db = backend.db
    db.exec("CREATE TABLE IF NOT EXISTS auth_user (name TEXT PRIMARY KEY, password TEXT, no_password INTEGER NOT NULL, roles TEXT NOT NULL) WITHOUT ROWID")
    db.exec("CREATE TABLE IF NOT EXISTS auth_role (name TEXT PRIMARY KEY) WITHOUT ROWID")
    db.exec(
      "CREATE TABLE IF NOT EXISTS auth_perm (role TEXT NOT NULL, key BLOB NOT NULL, range_end BLOB NOT NULL, perm_type INTEGER NOT NULL, PRIMARY KEY (role, key, range_end)) WITHOUT ROWID",
    )
    this.users = new Map()
    this.roles = new Map()
    const userRows = db.query<{ name: string; password: string | null; no_password: number; roles: string }, []>("SELECT name, password, no_password, roles FROM auth_user")
    for (const row of userRows.all()) {
      this.users.set(row.name, { name: row.name, password: row.password, noPassword: row.no_password !== 0, roles: JSON.parse(row.roles) as string[] })
    }
    for (const row of db.query<{ name: string }, []>("SELECT name FROM auth_role").all()) this.roles.set(row.name, { name: row.name, perms: [] })
    const permRows = db.query<{ role: string; key: Uint8Array; range_end: Uint8Array; perm_type: number }, []>(
      "SELECT role, key, range_end, perm_type FROM auth_perm ORDER BY role, key, range_end",
    )
    for (const row of permRows.all()) {
      const role = this.roles.get(row.role)
      assert(role !== undefined, () => `permission of missing role ${row.role}`)
      role.perms.push({ permType: row.perm_type, key: new Uint8Array(row.key), rangeEnd: new Uint8Array(row.range_end) })
    }
    const enabled = this.backend.getMeta("auth_enabled")
    this.enabled = enabled !== null && enabled[0] === 1
    const revision = this.backend.getMeta("auth_revision")
    this.authRevision = revision === null ? 0 : Number(new DataView(revision.buffer, revision.byteOffset, 8).getBigUint64(0))
    this.secret = this.backend.getMeta("auth_secret")
    this.permCache.clear()
    if (this.authRevision === 0) this.commitRevision()
    if (!this.enabled) this.issuer.disable()
  }

  // ---------------------------------------------------------------- state

  isEnabled(): boolean {
    return this.enabled
  }

  revision(): number {
    return this.authRevision
  }

  status(): AuthStatus {
    return { enabled: this.enabled, authRevision: this.authRevision }
  }

  /** Whether this member can issue tokens (a verify-only jwt member cannot). */
  canIssueTokens(): boolean {
    return this.issuer.canAssign()
  }

  /** The token kind this member issues. */
  tokenType(): TokenProvider["type"] {
    return this.issuer.type
  }

  /**
   * AuthEnable (apply). `secret` (newAuthSecret(), drawn by the API layer
   * before raft, so every member stores the same) keys signed tokens; each
   * enable replaces it.
   */
  enable(secret: Uint8Array): void {
    if (this.enabled) return
    const root = this.users.get(ROOT_USER)
    if (root === undefined) throw new TskvError("rootUserNotExist")
    if (!hasRole(root, ROOT_ROLE)) throw new TskvError("rootRoleNotExist")
    this.backend.setMeta("auth_enabled", new Uint8Array([1]))
    assert(secret.length >= 16, "auth secret too short")
    this.secret = Uint8Array.from(secret)
    this.backend.setMeta("auth_secret", this.secret)
    this.backend.noteWrites()
    this.enabled = true
    this.permCache.clear()
  }

  /** AuthDisable (apply). */
  disable(): void {
    if (!this.enabled) return
    this.backend.setMeta("auth_enabled", new Uint8Array([0]))
    this.commitRevision()
    this.enabled = false
    this.issuer.disable()
  }

  // ---------------------------------------------------------------- users

  userAdd(r: AuthUserAddRequest): void {
    if (r.name.length === 0) throw new TskvError("userEmpty")
    if (this.users.has(r.name)) throw new TskvError("userAlreadyExist")
    const noPassword = r.options?.noPassword === true
    this.putUser({ name: r.name, password: noPassword ? null : this.selectPassword(r), noPassword, roles: [] })
    this.commitRevision()
  }

  userDelete(name: string): void {
    if (this.enabled && name === ROOT_USER) throw new TskvError("invalidAuthMgmt")
    if (!this.users.has(name)) throw new TskvError("userNotFound")
    this.backend.begin()
    this.backend.db.query("DELETE FROM auth_user WHERE name = ?").run(name)
    this.users.delete(name)
    this.commitRevision()
    this.issuer.invalidateUser(name)
  }

  userChangePassword(r: AuthUserChangePasswordRequest): void {
    const user = this.users.get(r.name)
    if (user === undefined) throw new TskvError("userNotFound")
    this.putUser({ ...user, password: user.noPassword ? null : this.selectPassword(r) })
    this.commitRevision()
    this.issuer.invalidateUser(r.name)
  }

  userGrantRole(r: AuthUserGrantRoleRequest): void {
    const user = this.users.get(r.user)
    if (user === undefined) throw new TskvError("userNotFound")
    if (r.role !== ROOT_ROLE && !this.roles.has(r.role)) throw new TskvError("roleNotFound")
    if (hasRole(user, r.role)) return // etcd ignores a duplicate grant, without a new revision
    this.putUser({ ...user, roles: [...user.roles, r.role].sort(byBytes) })
    this.commitRevision()
  }

  userRevokeRole(r: AuthUserRevokeRoleRequest): void {
    if (this.enabled && r.name === ROOT_USER && r.role === ROOT_ROLE) throw new TskvError("invalidAuthMgmt")
    const user = this.users.get(r.name)
    if (user === undefined) throw new TskvError("userNotFound")
    if (!hasRole(user, r.role)) throw new TskvError("roleNotGranted")
    this.putUser({ ...user, roles: user.roles.filter((role) => role !== r.role) })
    this.commitRevision()
  }

  userGet(name: string): AuthUserGetResponse {
    const user = this.users.get(name)
    if (user === undefined) throw new TskvError("userNotFound")
    return { roles: [...user.roles] }
  }

  userList(): string[] {
    return [...this.users.keys()].sort(byBytes)
  }

  hasRole(username: string, role: string): boolean {
    const user = this.users.get(username)
    return user !== undefined && hasRole(user, role)
  }

  // ---------------------------------------------------------------- roles

  roleAdd(name: string): void {
    if (name.length === 0) throw new TskvError("roleEmpty")
    if (this.roles.has(name)) throw new TskvError("roleAlreadyExist")
    this.backend.begin()
    this.backend.db.query("INSERT INTO auth_role (name) VALUES (?)").run(name)
    this.backend.noteWrites()
    this.roles.set(name, { name, perms: [] })
    this.commitRevision()
  }

  /** Deletes a role and takes it from every user that has it. */
  roleDelete(name: string): void {
    if (this.enabled && name === ROOT_ROLE) throw new TskvError("invalidAuthMgmt")
    if (!this.roles.has(name)) throw new TskvError("roleNotFound")
    this.backend.begin()
    this.backend.db.query("DELETE FROM auth_perm WHERE role = ?").run(name)
    this.backend.db.query("DELETE FROM auth_role WHERE name = ?").run(name)
    this.backend.noteWrites(2)
    this.roles.delete(name)
    for (const user of [...this.users.values()]) {
      if (hasRole(user, name)) this.putUser({ ...user, roles: user.roles.filter((role) => role !== name) })
    }
    this.commitRevision()
  }

  /** The role's permissions, sorted by key (etcd 3.4 shows none for root, which implies everything). */
  roleGet(name: string): AuthRoleGetResponse {
    const role = this.roles.get(name)
    if (role === undefined) throw new TskvError("roleNotFound")
    return { perm: role.perms.map((p) => ({ permType: p.permType, key: Uint8Array.from(p.key), rangeEnd: Uint8Array.from(p.rangeEnd) })) }
  }

  roleList(): string[] {
    return [...this.roles.keys()].sort(byBytes)
  }

  /** Grants a permission; the same key and range end again only changes its type. */
  roleGrantPermission(r: AuthRoleGrantPermissionRequest): void {
    const perm = r.perm
    if (perm === undefined) throw new TskvError("permissionNotGiven")
    if (!isValidPermissionRange(perm.key, perm.rangeEnd)) throw new TskvError("invalidAuthMgmt")
    const role = this.roles.get(r.name)
    if (role === undefined) throw new TskvError("roleNotFound")
    const copy: Permission = { permType: perm.permType, key: Uint8Array.from(perm.key), rangeEnd: Uint8Array.from(perm.rangeEnd) }
    const at = lowerBound(role.perms, copy)
    const existing = role.perms[at]
    if (existing !== undefined && comparePerm(existing, copy) === 0) existing.permType = copy.permType
    else role.perms.splice(at, 0, copy)
    this.backend.begin()
    this.backend.db
      .query(
        "INSERT INTO auth_perm (role, key, range_end, perm_type) VALUES (?, ?, ?, ?) ON CONFLICT(role, key, range_end) DO UPDATE SET perm_type = excluded.perm_type",
      )
      .run(r.name, copy.key, copy.rangeEnd, copy.permType)
    this.backend.noteWrites()
    this.commitRevision()
  }

  /** Revokes the permission with exactly this key and range end. */
  roleRevokePermission(r: AuthRoleRevokePermissionRequest): void {
    const role = this.roles.get(r.role)
    if (role === undefined) throw new TskvError("roleNotFound")
    const kept = role.perms.filter((p) => !(equalBytes(p.key, r.key) && equalBytes(p.rangeEnd, r.rangeEnd)))
    if (kept.length === role.perms.length) throw new TskvError("permissionNotGranted")
    role.perms = kept
    this.backend.begin()
    this.backend.db.query("DELETE FROM auth_perm WHERE role = ? AND key = ? AND range_end = ?").run(r.role, r.key, r.rangeEnd)
    this.backend.noteWrites()
    this.commitRevision()
  }

  // ---------------------------------------------------------------- authentication

  /**
   * Checks a password before raft (the API layer, on the member that got the
   * Authenticate request). Returns the auth revision it was checked at, to be
   * passed as AuthenticateApply.checkedRevision.
   */
  async checkPassword(name: string, password: string): Promise<number> {
    if (!this.enabled) throw new TskvError("authNotEnabled")
    const user = this.users.get(name)
    if (user === undefined || user.noPassword || user.password === null) throw new TskvError("authFailed")
    const revision = this.authRevision
    if (!(await verifyPassword(password, user.password))) throw new TskvError("authFailed")
    return revision
  }

  /**
   * Authenticate (apply, on every member): issues the token. A user changed
   * since its password was checked gives authOldRevision: check and propose
   * again, as etcd does.
   */
  applyAuthenticate(r: AuthenticateApply): { token: string } {
    if (!this.enabled) throw new TskvError("authNotEnabled")
    const user = this.users.get(r.name)
    if (user === undefined || user.noPassword) throw new TskvError("authFailed")
    if (r.checkedRevision !== undefined && r.checkedRevision !== this.authRevision) throw new TskvError("authOldRevision")
    // A member configured to verify jwt tokens only answers this entry with an
    // error instead of stopping (the member that proposed it refuses earlier).
    if (!this.issuer.canAssign()) throw new TskvError("notCapable", "auth: token signing attempted with verify-only key")
    const token = this.issuer.assign({ username: r.name, revision: this.authRevision }, { simpleToken: r.simpleToken, index: r.index })
    return { token }
  }

  /**
   * Who a request comes from (the API layer calls this once per request):
   * the token if one is sent, else the verified client certificate's common
   * name (with --client-cert-auth). Null while auth is disabled, and when no
   * credentials came (etcd then fails the operations that need a user with
   * userEmpty: use requireAuthInfo() for those). A token that does not verify is
   * invalidAuthToken, with auth disabled too.
   */
  authInfo(token: string | undefined, commonName: string | undefined): AuthInfo | null {
    if (!this.enabled) {
      // etcd 3.4 reads a token sent while auth is off too: simple tokens are gone
      // then (disable drops them), so it is invalid; a signed one still verifies
      if (token !== undefined && this.tokenClaims(token) === null) throw new TskvError("invalidAuthToken")
      return null
    }
    if (token !== undefined && token !== "") {
      const claims = this.tokenClaims(token)
      if (claims === null) throw new TskvError("invalidAuthToken")
      const revision = claims.revision ?? this.authRevision
      if (revision < this.authRevision) throw new TskvError("authOldRevision")
      return { username: claims.username, revision }
    }
    if (commonName !== undefined && commonName !== "") return { username: commonName, revision: this.authRevision }
    return null
  }

  /** authInfo(), but with auth enabled and no credentials: userEmpty. Null only while auth is disabled. */
  authenticate(token: string | undefined, commonName: string | undefined): AuthInfo | null {
    const info = this.authInfo(token, commonName)
    if (info === null && this.enabled) throw new TskvError("userEmpty")
    return info
  }

  private tokenClaims(token: string): { username: string; revision: number | null } | null {
    for (const verifier of this.verifiers) {
      const claims = verifier.info(token)
      if (claims !== null) return claims
    }
    return null
  }

  // ---------------------------------------------------------------- permissions

  /** READ on [key, rangeEnd) (Range, Txn compares, Watch, prev_kv). Throws when not permitted. */
  isRangePermitted(info: AuthInfo | null, key: Uint8Array, rangeEnd: Uint8Array): void {
    this.checkOp(info, PermissionType.READ, key, rangeEnd)
  }

  /** WRITE on one key (Put). */
  isPutPermitted(info: AuthInfo | null, key: Uint8Array): void {
    this.checkOp(info, PermissionType.WRITE, key, new Uint8Array(0))
  }

  /** WRITE on [key, rangeEnd) (DeleteRange). */
  isDeleteRangePermitted(info: AuthInfo | null, key: Uint8Array, rangeEnd: Uint8Array): void {
    this.checkOp(info, PermissionType.WRITE, key, rangeEnd)
  }

  /** The root role (admin-only RPCs). */
  isAdminPermitted(info: AuthInfo | null): void {
    if (!this.enabled) return
    if (info === null || info.username === "") throw new TskvError("userEmpty")
    const user = this.users.get(info.username)
    if (user === undefined) throw new TskvError("userNotFound")
    if (!hasRole(user, ROOT_ROLE)) throw new TskvError("permissionDenied")
  }

  /** Whether the user is an admin (auth disabled counts as yes). */
  isAdmin(info: AuthInfo | null): boolean {
    if (!this.enabled) return true
    if (info === null) return false
    const user = this.users.get(info.username)
    return user !== undefined && hasRole(user, ROOT_ROLE)
  }

  /** UserGet: oneself, or an admin. */
  isUserGetPermitted(info: AuthInfo | null, name: string): void {
    if (info !== null && info.username === name) return
    this.isAdminPermitted(info)
  }

  /** RoleGet: a role one holds, or an admin. */
  isRoleGetPermitted(info: AuthInfo | null, role: string): void {
    if (info !== null && this.hasRole(info.username, role)) return
    this.isAdminPermitted(info)
  }

  private checkOp(info: AuthInfo | null, type: PermissionType.READ | PermissionType.WRITE, key: Uint8Array, rangeEnd: Uint8Array): void {
    if (!this.enabled) return
    if (info === null || info.revision === 0) throw new TskvError("userEmpty")
    if (info.revision < this.authRevision) throw new TskvError("authOldRevision")
    const user = this.users.get(info.username)
    if (user === undefined) throw new TskvError("permissionDenied")
    if (hasRole(user, ROOT_ROLE)) return
    if (!this.permissionsOf(user).permits(type, key, rangeEnd)) throw new TskvError("permissionDenied")
  }

  private permissionsOf(user: User): RangePermissions {
    let perms = this.permCache.get(user.name)
    if (perms === undefined) {
      const all: Permission[] = []
      for (const name of user.roles) all.push(...(this.roles.get(name)?.perms ?? []))
      perms = new RangePermissions(all)
      this.permCache.set(user.name, perms)
    }
    return perms
  }

  // ---------------------------------------------------------------- internals

  /**
   * The hash the API layer made before raft. As etcd, an entry with only a
   * plain password (etcd < 3.5 style) is hashed here, with a per-member salt;
   * with neither, the user can never authenticate with a password.
   */
  private selectPassword(r: { password?: string; hashedPassword: string }): string {
    if (r.hashedPassword === "" && r.password !== undefined && r.password !== "") return hashPasswordSync(r.password, this.bcryptCost)
    return r.hashedPassword
  }

  private putUser(user: User): void {
    this.backend.begin()
    this.backend.db
      .query(
        "INSERT INTO auth_user (name, password, no_password, roles) VALUES (?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET password = excluded.password, no_password = excluded.no_password, roles = excluded.roles",
      )
      .run(user.name, user.password, user.noPassword ? 1 : 0, JSON.stringify(user.roles))
    this.backend.noteWrites()
    this.users.set(user.name, user)
  }

  /** Every change: a new auth revision, and the permission caches are rebuilt. */
  private commitRevision(): void {
    this.authRevision++
    const buf = new Uint8Array(8)
    new DataView(buf.buffer).setBigUint64(0, BigInt(this.authRevision))
    this.backend.setMeta("auth_revision", buf)
    this.backend.noteWrites()
    this.permCache.clear()
  }
}

/** Permissions are kept sorted by key, then range end. */
function comparePerm(a: Permission, b: Permission): number {
  return Buffer.compare(a.key, b.key) || Buffer.compare(a.rangeEnd, b.rangeEnd)
}

function lowerBound(perms: readonly Permission[], perm: Permission): number {
  let lo = 0
  let hi = perms.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (comparePerm(perms[mid]!, perm) < 0) lo = mid + 1
    else hi = mid
  }
  return lo
}

function hasRole(user: User, role: string): boolean {
  return user.roles.includes(role)
}
