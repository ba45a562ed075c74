// etcdctl 3.4's v2 `user`, `role` and `auth` commands over /v2/auth, with its
// outputs: the server's message on an error (exit 1), "User x created" etc.

import { out } from "./output"
import { StdinLines } from "./stdin_lines"
import type { V2ClusterUnavailable } from "./v2api_client"
import { Exit, Exited, type V2Command, type V2Ctx } from "./v2api_types"

interface Role {
  role: string
  permissions?: { kv?: { read?: string[] | null; write?: string[] | null } }
}

function die(text: string): never {
  out.err(`${text}\n`)
  throw new Exited(Exit.badArgs)
}

/** One /v2/auth request; a non-2xx answer ends the command with its message. */
async function authCall(ctx: V2Ctx, method: string, path: string, json?: unknown): Promise<unknown> {
  let res: Response
  try {
    res = await ctx.client.request(method, `/v2/auth${path}`, json === undefined ? {} : { json })
  } catch (e) {
    die((e as V2ClusterUnavailable).message)
  }
  const text = await res.text()
  if (res.status < 200 || res.status > 299) {
    let message = text
    try {
      message = (JSON.parse(text) as { message?: string }).message ?? text
    } catch {}
    die(message)
  }
  return text === "" ? undefined : (JSON.parse(text) as unknown)
}

/** speakeasy.Ask as etcdctl uses it: the prompt and a newline on stdout, one line read from stdin. */
async function askPassword(): Promise<string> {
  out.write("New password: ")
  const line = await new StdinLines(process.stdin as AsyncIterable<Uint8Array>).next()
  out.write("\n")
  if (line === undefined || line === "") die("auth: User not updated. Use grant/revoke/password to update the user.")
  return line
}

function oneName(ctx: V2Ctx, what: string): string {
  if (ctx.args.length !== 1) die(`Please provide a ${what}`)
  return ctx.args[0]!
}

async function getRole(ctx: V2Ctx, name: string): Promise<Role | undefined> {
  const res = await ctx.client.request("GET", `/v2/auth/roles/${encodeURIComponent(name)}`).catch((e: unknown) => die((e as Error).message))
  if (res.status === 404) return undefined
  if (res.status !== 200) die(((await res.json()) as { message?: string }).message ?? `HTTP ${res.status}`)
  return (await res.json()) as Role
}

function perms(r: Role | undefined): string {
  return JSON.stringify([r?.permissions?.kv?.read ?? [], r?.permissions?.kv?.write ?? []])
}

const ROLE_PERM_FLAGS = {
  path: { def: "" },
  read: { bool: true as const, def: "false" },
  write: { bool: true as const, def: "false" },
  readwrite: { bool: true as const, def: "false", alias: "rw" },
}

async function roleGrantRevoke(ctx: V2Ctx, grant: boolean): Promise<void> {
  const path = ctx.flag("path")
  if (path === "") die("No path specified; please use `--path`")
  const chosen = ["read", "write", "readwrite"].filter((f) => ctx.bool(f))
  if (chosen.length !== 1) die("Please specify exactly one of --read, --write or --readwrite")
  const name = oneName(ctx, "role name")
  const current = await getRole(ctx, name)
  if (current === undefined) die(`auth: Role ${name} does not exist.`)
  const read = chosen[0] !== "write" ? [path] : []
  const write = chosen[0] !== "read" ? [path] : []
  const updated = (await authCall(ctx, "PUT", `/roles/${encodeURIComponent(name)}`, { role: name, [grant ? "grant" : "revoke"]: { kv: { read, write } } })) as Role
  // etcdctl prints this without a newline and goes on (its os.Exit is missing).
  if (perms(updated) === perms(current)) out.write(grant ? "Role unchanged; already granted" : "Role unchanged; already revoked")
  out.line(`Role ${name} updated`)
}

async function userGrantRevoke(ctx: V2Ctx, grant: boolean): Promise<void> {
  const roles = ctx.flags("roles")
  if (roles.length === 0) die("No roles specified; please use `--roles`")
  const name = oneName(ctx, "username")
  await authCall(ctx, "PUT", `/users/${encodeURIComponent(name)}`, { user: name, [grant ? "grant" : "revoke"]: roles })
  out.line(`User ${name} updated`)
}

function noArgs(ctx: V2Ctx): void {
  if (ctx.args.length !== 0) die("No arguments accepted")
}

export const authCommands: Record<string, V2Command> = {
  user: {
    flags: { roles: { def: "", multi: true } },
    async run(ctx) {
      const [verb, ...rest] = ctx.args
      const sub: V2Ctx = { ...ctx, args: rest }
      switch (verb) {
        case "add": {
          const arg = oneName(sub, "username")
          const colon = arg.indexOf(":")
          const user = colon < 0 ? arg : arg.slice(0, colon)
          const password = colon < 0 ? await askPassword() : arg.slice(colon + 1)
          await authCall(sub, "PUT", `/users/${encodeURIComponent(user)}`, { user, password })
          out.line(`User ${user} created`)
          return
        }
        case "passwd": {
          const user = oneName(sub, "username")
          const password = await askPassword()
          await authCall(sub, "PUT", `/users/${encodeURIComponent(user)}`, { user, password })
          out.line("Password updated")
          return
        }
        case "remove": {
          const user = oneName(sub, "username")
          await authCall(sub, "DELETE", `/users/${encodeURIComponent(user)}`)
          out.line(`User ${user} removed`)
          return
        }
        case "get": {
          const user = oneName(sub, "username")
          const u = (await authCall(sub, "GET", `/users/${encodeURIComponent(user)}`)) as { user: string; roles?: Role[] | null }
          out.line(`User: ${u.user}`)
          out.line(`Roles:  ${(u.roles ?? []).map((r) => r.role).join(" ")}`)
          return
        }
        case "list": {
          noArgs(sub)
          const list = (await authCall(sub, "GET", "/users")) as { users?: { user: string }[] | null }
          for (const u of list.users ?? []) out.line(u.user)
          return
        }
        case "grant":
          return await userGrantRevoke(sub, true)
        case "revoke":
          return await userGrantRevoke(sub, false)
        default:
          die("user subcommands: add, remove, get, list, grant, revoke, passwd")
      }
    },
  },
  role: {
    flags: ROLE_PERM_FLAGS,
    async run(ctx) {
      const [verb, ...rest] = ctx.args
      const sub: V2Ctx = { ...ctx, args: rest }
      switch (verb) {
        case "add": {
          const name = oneName(sub, "role name")
          if ((await getRole(sub, name)) !== undefined) die(`Role ${name} already exists`)
          await authCall(sub, "PUT", `/roles/${encodeURIComponent(name)}`, { role: name })
          out.line(`Role ${name} created`)
          return
        }
        case "remove": {
          const name = oneName(sub, "role name")
          await authCall(sub, "DELETE", `/roles/${encodeURIComponent(name)}`)
          out.line(`Role ${name} removed`)
          return
        }
        case "get": {
          const name = oneName(sub, "role name")
          const r = (await authCall(sub, "GET", `/roles/${encodeURIComponent(name)}`)) as Role
          out.line(`Role: ${r.role}`)
          out.line("KV Read:")
          for (const p of r.permissions?.kv?.read ?? []) out.line(`\t${p}`)
          out.line("KV Write:")
          for (const p of r.permissions?.kv?.write ?? []) out.line(`\t${p}`)
          return
        }
        case "list": {
          noArgs(sub)
          const list = (await authCall(sub, "GET", "/roles")) as { roles?: Role[] | null }
          for (const r of list.roles ?? []) out.line(r.role)
          return
        }
        case "grant":
          return await roleGrantRevoke(sub, true)
        case "revoke":
          return await roleGrantRevoke(sub, false)
        default:
          die("role subcommands: add, remove, get, list, grant, revoke")
      }
    },
  },
  auth: {
    flags: {},
    async run(ctx) {
      const [verb] = ctx.args
      if (verb === "enable") {
        await authCall(ctx, "PUT", "/enable")
        out.line("Authentication Enabled")
      } else if (verb === "disable") {
        await authCall(ctx, "DELETE", "/enable")
        out.line("Authentication Disabled")
      } else die("auth subcommands: enable, disable")
    },
  },
}
