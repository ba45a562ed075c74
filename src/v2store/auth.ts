// etcd 3.4's v2 auth (etcdserver/api/v2auth): users with bcrypt password
// hashes and roles, roles with read/write path globs ("/app/*"), the
// built-in root role, and the guest role used by requests without
// credentials. Changes are raft entries (a V2Request "AUTH" whose value is
// the JSON op; passwords arrive hashed), applied on every member; the state
// lives in the backend's meta table.

import type { Backend } from "../backend/backend"

export interface V2Permissions {
  read: string[]
  write: string[]
}

export interface V2AuthUser {
  password: string
  roles: string[]
}

export type V2AuthOp =
  | { op: "enable" }
  | { op: "disable" }
  | { op: "putUser"; name: string; password?: string; roles?: string[]; grant?: string[]; revoke?: string[] }
  | { op: "deleteUser"; name: string }
  | { op: "putRole"; name: string; grant?: V2Permissions; revoke?: V2Permissions }
  | { op: "deleteRole"; name: string }

/** An answer of etcd's v2 auth: HTTP status and {"message"}. */
export interface V2AuthError {
  status: number
  message: string
}

export const ROOT_PERMISSIONS: V2Permissions = { read: ["/*"], write: ["/*"] }

const META_KEY = "v2_auth"

interface State {
  /** etcd makes its /2 directories (4 store writes) at the first change. */
  initialized?: boolean
  enabled: boolean
  users: Record<string, V2AuthUser>
  roles: Record<string, V2Permissions>
}

export class V2Auth {
  private state: State = { enabled: false, users: {}, roles: {} }

  constructor(private readonly backend?: Backend) {
    this.reload()
  }

  reload(): void {
    const raw = this.backend?.getMeta(META_KEY)
    this.state = raw ? (JSON.parse(new TextDecoder().decode(raw)) as State) : { enabled: false, users: {}, roles: {} }
  }

  isEnabled(): boolean {
    return this.state.enabled
  }

  userNames(): string[] {
    return Object.keys(this.state.users).sort()
  }

  user(name: string): V2AuthUser | undefined {
    return this.state.users[name]
  }

  roleNames(): string[] {
    return [...new Set(["root", ...Object.keys(this.state.roles)])].sort()
  }

  role(name: string): V2Permissions | undefined {
    return name === "root" ? ROOT_PERMISSIONS : this.state.roles[name]
  }

  /** Whether `user` (undefined: the guest role) may read or write `key`. */
  hasAccess(user: string | undefined, key: string, write: boolean): boolean {
    const roles = user === undefined ? ["guest"] : (this.state.users[user]?.roles ?? [])
    for (const r of roles) {
      const p = this.role(r)
      if (p && (write ? p.write : p.read).some((pattern) => simpleMatch(pattern, key))) return true
    }
    return false
  }

  isRoot(user: string | undefined): boolean {
    return user !== undefined && (this.state.users[user]?.roles.includes("root") ?? false)
  }

  /** Applies a change; returns the error etcd answers, or how many writes etcd's v2 store made for it. */
  apply(op: V2AuthOp): V2AuthError | number {
    const s = this.state
    let writes = 1
    switch (op.op) {
      case "enable":
        if (s.enabled) return { status: 409, message: "auth: already enabled" }
        if (!s.users.root) return { status: 409, message: "auth: No root user available, please create one" }
        if (!s.roles.guest) {
          s.roles.guest = { read: ["/*"], write: ["/*"] }
          writes++
        }
        s.enabled = true
        break
      case "disable":
        if (!s.enabled) return { status: 409, message: "auth: already disabled" }
        s.enabled = false
        break
      case "putUser": {
        const existing = s.users[op.name]
        if (!existing) {
          if (op.password === undefined) return { status: 400, message: `auth: User ${op.name} doesn't exist.` }
          const roles = op.name === "root" ? ["root", ...(op.roles ?? []).filter((r) => r !== "root")] : (op.roles ?? [])
          s.users[op.name] = { password: op.password, roles }
          break
        }
        // etcd grants a role that does not exist (reading the user then fails).
        for (const r of op.grant ?? []) if (existing.roles.includes(r)) return { status: 409, message: `auth: Granting duplicate role ${r} for user ${op.name}` }
        for (const r of op.revoke ?? []) if (!existing.roles.includes(r)) return { status: 409, message: `auth: Revoking ungranted role ${r} for user ${op.name}` }
        existing.roles = [...existing.roles.filter((r) => !(op.revoke ?? []).includes(r)), ...(op.grant ?? [])].sort()
        if (op.password !== undefined) existing.password = op.password
        break
      }
      case "deleteUser":
        if (!s.users[op.name]) return { status: 404, message: `auth: User ${op.name} doesn't exist.` }
        if (s.enabled && op.name === "root") return { status: 409, message: "auth: Cannot delete root user while auth is enabled." }
        delete s.users[op.name]
        break
      case "putRole": {
        if (op.name === "root") return { status: 409, message: "auth: Cannot modify role root: is root role." }
        const existing = s.roles[op.name]
        if (!existing) {
          s.roles[op.name] = { read: [...(op.grant?.read ?? [])], write: [...(op.grant?.write ?? [])] }
          break
        }
        const merge = (list: string[], add: string[] = [], drop: string[] = []): string[] => [...new Set([...list.filter((p) => !drop.includes(p)), ...add])]
        existing.read = merge(existing.read, op.grant?.read, op.revoke?.read)
        existing.write = merge(existing.write, op.grant?.write, op.revoke?.write)
        break
      }
      case "deleteRole":
        if (op.name === "root") return { status: 409, message: "auth: Cannot modify role root: is root role." }
        if (!s.roles[op.name]) return { status: 404, message: `auth: Role ${op.name} doesn't exist.` }
        if (s.enabled && op.name === "guest") return { status: 409, message: "auth: Cannot delete role guest while auth is enabled." }
        delete s.roles[op.name]
        for (const u of Object.values(s.users)) u.roles = u.roles.filter((r) => r !== op.name)
        break
    }
    if (s.initialized !== true) {
      s.initialized = true
      writes += 4
    }
    this.persist()
    return writes
  }

  private persist(): void {
    if (!this.backend) return
    this.backend.begin()
    this.backend.setMeta(META_KEY, new TextEncoder().encode(JSON.stringify(this.state)))
  }
}

/** etcd's simpleMatch: "p*" matches every key starting with "p"; anything else matches itself. */
export function simpleMatch(pattern: string, key: string): boolean {
  if (pattern.endsWith("*")) return key.startsWith(pattern.slice(0, -1))
  return key === pattern
}
