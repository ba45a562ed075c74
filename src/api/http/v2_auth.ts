// /v2/auth of etcd 3.4 (etcdserver/api/v2http client_auth.go): enable,
// users and roles, root-only once auth is on, and the key permission check
// /v2/keys makes (Basic credentials; none: the guest role).

import type { Context, Hono } from "hono"
import { RequestKind } from "../../server/request"
import type { EtcdServer } from "../../server/server"
import { encodeV2Request, v2Request, type V2Result } from "../../v2store/apply"
import type { V2Auth, V2AuthOp, V2Permissions } from "../../v2store/auth"
import { V2Error, V2ErrorCode } from "../../v2store/errors"
import type { V2Store } from "../../v2store/store"
import { goJson } from "./v2_form"

type Credentials = { kind: "none" } | { kind: "user"; name: string } | { kind: "bad" }

function credentials(req: Request, auth: V2Auth): Credentials {
  const header = req.headers.get("authorization")
  if (header === null || header === "") return { kind: "none" }
  const m = /^Basic\s+(.+)$/i.exec(header)
  if (!m) return { kind: "bad" }
  const text = Buffer.from(m[1]!, "base64").toString("utf8")
  const colon = text.indexOf(":")
  if (colon < 0) return { kind: "bad" }
  const name = text.slice(0, colon)
  const user = auth.user(name)
  if (!user || !Bun.password.verifySync(text.slice(colon + 1), user.password)) return { kind: "bad" }
  return { kind: "user", name }
}

/** etcd's hasKeyPrefixAccess: undefined when allowed, else the 110 error to answer. */
export function keyAccessError(req: Request, auth: V2Auth, key: string, recursive: boolean): V2Error | undefined {
  if (!auth.isEnabled()) return undefined
  const write = req.method !== "GET" && req.method !== "HEAD"
  const who = credentials(req, auth)
  if (who.kind === "bad") return new V2Error(V2ErrorCode.Unauthorized, "Insufficient credentials", 0)
  const user = who.kind === "user" ? who.name : undefined
  const ok = recursive ? hasRecursiveAccess(auth, user, key, write) : auth.hasAccess(user, key, write)
  return ok ? undefined : new V2Error(V2ErrorCode.Unauthorized, "Insufficient credentials", 0)
}

/** A recursive request needs a "p*" pattern whose prefix starts the key. */
function hasRecursiveAccess(auth: V2Auth, user: string | undefined, key: string, write: boolean): boolean {
  const roles = user === undefined ? ["guest"] : (auth.user(user)?.roles ?? [])
  return roles.some((r) => {
    const p = auth.role(r)
    return p !== undefined && (write ? p.write : p.read).some((pattern) => pattern.endsWith("*") && key.startsWith(pattern.slice(0, -1)))
  })
}

function roleJson(name: string, p: V2Permissions): Record<string, unknown> {
  return { role: name, permissions: { kv: { read: p.read, write: p.write } } }
}

export function mountV2Auth(app: Hono, server: EtcdServer, store: V2Store): void {
  const auth = store.auth
  const headers = (): Record<string, string> => ({ "X-Etcd-Cluster-ID": server.clusterId.toString(16), "content-type": "application/json" })
  const json = (value: unknown, status = 200): Response => new Response(`${goJson(value)}\n`, { status, headers: headers() })
  const message = (status: number, text: string): Response => new Response(goJson({ message: text }), { status, headers: headers() })
  // etcd answers a request without root's credentials before it sets X-Etcd-Cluster-ID.
  const noAuth = (): Response => new Response(goJson({ message: "Insufficient credentials" }), { status: 401, headers: { "content-type": "application/json" } })
  const isRootRequest = (c: Context): boolean => {
    if (!auth.isEnabled()) return true
    const who = credentials(c.req.raw, auth)
    return who.kind === "user" && auth.isRoot(who.name)
  }
  const propose = async (op: V2AuthOp): Promise<Response | undefined> => {
    try {
      const r = (await server.propose(RequestKind.V2, encodeV2Request(v2Request({ method: "AUTH", val: JSON.stringify(op) })))) as V2Result
      if ("authError" in r && r.authError !== null) return message(r.authError.status, r.authError.message)
      return undefined
    } catch (e) {
      return message(500, e instanceof Error ? e.message : String(e))
    }
  }
  const body = async (c: Context): Promise<Record<string, unknown> | Response> => {
    try {
      const v = JSON.parse(await c.req.text()) as unknown
      if (v === null || typeof v !== "object") throw new Error("not an object")
      return v as Record<string, unknown>
    } catch {
      return message(400, "Invalid JSON in request body.")
    }
  }
  const strings = (v: unknown): string[] | undefined => (Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : undefined)
  const perms = (v: unknown): V2Permissions | undefined => {
    const kv = (v as { kv?: { read?: unknown; write?: unknown } } | undefined)?.kv
    return kv === undefined ? undefined : { read: strings(kv.read) ?? [], write: strings(kv.write) ?? [] }
  }
  const userJson = (name: string): Record<string, unknown> => ({
    user: name,
    roles: (auth.user(name)?.roles ?? []).flatMap((r) => {
      const p = auth.role(r)
      return p ? [roleJson(r, p)] : []
    }),
  })

  app.all("/v2/auth/enable", async (c) => {
    if (c.req.method === "GET") return json({ enabled: auth.isEnabled() })
    if (c.req.method === "PUT") return (await propose({ op: "enable" })) ?? new Response(null, { status: 200, headers: headers() })
    if (c.req.method === "DELETE") {
      if (!isRootRequest(c)) return noAuth()
      return (await propose({ op: "disable" })) ?? new Response(null, { status: 200, headers: headers() })
    }
    return message(405, "Method Not Allowed")
  })

  app.get("/v2/auth/users", (c) => {
    if (!isRootRequest(c)) return noAuth()
    const names = auth.userNames()
    return json({ users: names.length === 0 ? null : names.map(userJson) })
  })

  app.all("/v2/auth/users/:name", async (c) => {
    if (!isRootRequest(c)) return noAuth()
    const name = c.req.param("name")
    if (c.req.method === "GET") {
      const user = auth.user(name)
      if (!user) return message(404, `auth: User ${name} does not exist.`)
      const missing = user.roles.find((r) => auth.role(r) === undefined)
      if (missing !== undefined) return message(404, `auth: Role ${missing} does not exist.`)
      return json(userJson(name))
    }
    if (c.req.method === "DELETE") return (await propose({ op: "deleteUser", name })) ?? new Response(null, { status: 200, headers: headers() })
    if (c.req.method !== "PUT") return message(405, "Method Not Allowed")
    const b = await body(c)
    if (b instanceof Response) return b
    if (b.user !== name) return message(400, "User JSON name does not match the name in the URL")
    const existed = auth.user(name) !== undefined
    const password = typeof b.password === "string" && b.password !== "" ? Bun.password.hashSync(b.password, { algorithm: "bcrypt", cost: server.config.bcryptCost }) : undefined
    const op: V2AuthOp = { op: "putUser", name }
    if (password !== undefined) op.password = password
    const roles = strings(b.roles)
    const grant = strings(b.grant)
    const revoke = strings(b.revoke)
    if (roles) op.roles = roles
    if (grant) op.grant = grant
    if (revoke) op.revoke = revoke
    const failed = await propose(op)
    if (failed) return failed
    return json({ user: name, roles: auth.user(name)?.roles ?? null }, existed ? 200 : 201)
  })

  app.get("/v2/auth/roles", (c) => {
    if (!isRootRequest(c)) return noAuth()
    return json({ roles: auth.roleNames().map((r) => roleJson(r, auth.role(r)!)) })
  })

  app.all("/v2/auth/roles/:name", async (c) => {
    if (!isRootRequest(c)) return noAuth()
    const name = c.req.param("name")
    if (c.req.method === "GET") {
      const p = auth.role(name)
      return p ? json(roleJson(name, p)) : message(404, `auth: Role ${name} does not exist.`)
    }
    if (c.req.method === "DELETE") return (await propose({ op: "deleteRole", name })) ?? new Response(null, { status: 200, headers: headers() })
    if (c.req.method !== "PUT") return message(405, "Method Not Allowed")
    const b = await body(c)
    if (b instanceof Response) return b
    if (b.role !== name) return message(400, "Role JSON name does not match the name in the URL")
    const existed = auth.role(name) !== undefined
    const op: V2AuthOp = { op: "putRole", name }
    const grant = perms(b.grant) ?? perms(b.permissions)
    const revoke = perms(b.revoke)
    if (grant) op.grant = grant
    if (revoke) op.revoke = revoke
    const failed = await propose(op)
    if (failed) return failed
    return json(roleJson(name, auth.role(name)!), existed ? 200 : 201)
  })
}
