// auth enable|disable, user *, role *.
import { TskvError } from "../lib/errors"
import type { Permission, ResponseHeader } from "../pb"
import { prefixEnd } from "./cmd_kv"
import type { Command, Ctx } from "./context"
import { fieldsHeader, unsupported, type Display } from "./display"
import { goQuote, goString, jArray, jObject, jsonString } from "./go_fmt"
import { jHeader, jPermission } from "./json"
import { CtlExit, ExitCode, out } from "./output"

const enc = new TextEncoder()
const PERM_NAMES = ["READ", "WRITE", "READWRITE"]

function needArgs(ctx: Ctx, n: number, message: string): void {
  if (ctx.args.length !== n) throw new CtlExit(ExitCode.badArgs, message)
}

/** Prints a response that carries only a header (simple text given). */
function showHeaderOnly(d: Display, h: ResponseHeader | undefined, simple: string): void {
  switch (d.format) {
    case "simple":
      return out.line(simple)
    case "json":
      return out.line(jObject([["header", jHeader(h)]]))
    case "fields":
      return fieldsHeader(h)
    default:
      unsupported(d)
  }
}

function showStrings(d: Display, h: ResponseHeader | undefined, field: "users" | "roles", items: string[]): void {
  switch (d.format) {
    case "simple":
      for (const s of items) out.line(s)
      return
    case "json":
      return out.line(jObject([["header", jHeader(h)], [field, items.length === 0 ? undefined : jArray(items.map(jsonString))]]))
    case "fields":
      if (field === "users") unsupported(d)
      fieldsHeader(h)
      out.line(`"Roles" :${items.map((r) => ` ${goQuote(r)}`).join("")}`)
      return
    default:
      unsupported(d)
  }
}

function printRoleSimple(role: string, perms: Permission[]): void {
  out.line(`Role ${role}`)
  const printPerms = (types: number[]): void => {
    for (const p of perms) {
      if (!types.includes(p.permType)) continue
      const key = goString(p.key)
      if (p.rangeEnd.length === 0) {
        out.line(`\t${key}`)
        continue
      }
      const end = goString(p.rangeEnd)
      let line = end !== "\0" ? `\t[${key}, ${end})` : `\t[${key}, <open ended>`
      if (Buffer.compare(Buffer.from(prefixEnd(p.key)), Buffer.from(p.rangeEnd)) === 0) line += ` (prefix ${key})`
      out.line(line)
    }
  }
  out.line("KV Read:")
  printPerms([0, 2])
  out.line("KV Write:")
  printPerms([1, 2])
}

function showRoleGet(d: Display, role: string, h: ResponseHeader | undefined, perms: Permission[]): void {
  switch (d.format) {
    case "simple":
      return printRoleSimple(role, perms)
    case "json":
      return out.line(jObject([["header", jHeader(h)], ["perm", perms.length === 0 ? undefined : jArray(perms.map(jPermission))]]))
    case "fields":
      fieldsHeader(h)
      for (const p of perms) {
        out.line(`"PermType" :  ${PERM_NAMES[p.permType] ?? p.permType}`)
        out.line(`"Key" : ${goQuote(p.key)}`)
        out.line(`"RangeEnd" : ${goQuote(p.rangeEnd)}`)
      }
      return
    default:
      unsupported(d)
  }
}

export const authEnable: Command = {
  async run(ctx) {
    if (ctx.args.length !== 0) throw new CtlExit(ExitCode.badArgs, "auth enable command does not accept any arguments")
    const c = ctx.client()
    for (;;) {
      try {
        await c.auth.authEnable({})
        break
      } catch (e) {
        if (!(e instanceof TskvError && e.code === "rootRoleNotExist")) throw e
        await c.auth.roleAdd({ name: "root" })
        await c.auth.userGrantRole({ user: "root", role: "root" })
      }
    }
    out.line("Authentication Enabled")
  },
}

export const authDisable: Command = {
  async run(ctx) {
    if (ctx.args.length !== 0) throw new CtlExit(ExitCode.badArgs, "auth disable command does not accept any arguments")
    await ctx.client().auth.authDisable({})
    out.line("Authentication Disabled")
  },
}

/** A password from --new-user-password, or the first word of standard input. */
async function passwordOf(ctx: Ctx, user: string): Promise<string> {
  if (ctx.flag("new-user-password") !== "") return ctx.flag("new-user-password")
  if (ctx.bool("interactive")) out.write(`Password of ${user}: `)
  const word = (await ctx.stdin()).trim().split(/\s+/)[0] ?? ""
  if (ctx.bool("interactive")) out.line()
  if (word === "") throw new CtlExit(ExitCode.badArgs, "empty password")
  return word
}

export const userAdd: Command = {
  async run(ctx) {
    needArgs(ctx, 1, "user add command requires user name as its argument")
    const arg = ctx.args[0]!
    let user = arg
    let password = ""
    const noPassword = ctx.bool("no-password")
    if (!noPassword) {
      if (ctx.flag("new-user-password") !== "") password = ctx.flag("new-user-password")
      else {
        const i = arg.indexOf(":")
        if (i < 0) password = await passwordOf(ctx, arg)
        else {
          user = arg.slice(0, i)
          password = arg.slice(i + 1)
          if (user === "") throw new CtlExit(ExitCode.badArgs, "empty user name is not allowed")
        }
      }
    }
    const r = await ctx.client().auth.userAdd({ name: user, password, options: { noPassword } })
    showHeaderOnly(ctx.display, r.header, `User ${user} created`)
  },
}

export const userDelete: Command = {
  async run(ctx) {
    needArgs(ctx, 1, "user delete command requires user name as its argument")
    const r = await ctx.client().auth.userDelete({ name: ctx.args[0]! })
    showHeaderOnly(ctx.display, r.header, `User ${ctx.args[0]} deleted`)
  },
}

export const userGet: Command = {
  async run(ctx) {
    needArgs(ctx, 1, "user get command requires user name as its argument")
    const name = ctx.args[0]!
    const c = ctx.client()
    const r = await c.auth.userGet({ name })
    const d = ctx.display
    switch (d.format) {
      case "simple":
        out.line(`User: ${name}`)
        if (!ctx.bool("detail")) {
          out.line(`Roles:${r.roles.map((x) => ` ${x}`).join("")}`)
          return
        }
        for (const role of r.roles) {
          out.line()
          const rr = await c.auth.roleGet({ role })
          printRoleSimple(role, rr.perm)
        }
        return
      case "json":
        return out.line(jObject([["header", jHeader(r.header)], ["roles", r.roles.length === 0 ? undefined : jArray(r.roles.map(jsonString))]]))
      default:
        unsupported(d)
    }
  },
}

export const userList: Command = {
  async run(ctx) {
    if (ctx.args.length !== 0) throw new CtlExit(ExitCode.badArgs, "user list command requires no arguments")
    const r = await ctx.client().auth.userList({})
    showStrings(ctx.display, r.header, "users", r.users)
  },
}

export const userPasswd: Command = {
  async run(ctx) {
    needArgs(ctx, 1, "user passwd command requires user name as its argument")
    const name = ctx.args[0]!
    const password = await passwordOf(ctx, name)
    const r = await ctx.client().auth.userChangePassword({ name, password })
    showHeaderOnly(ctx.display, r.header, "Password updated")
  },
}

export const userGrantRole: Command = {
  async run(ctx) {
    needArgs(ctx, 2, "user grant command requires user name and role name as its argument")
    const [user, role] = ctx.args as [string, string]
    const r = await ctx.client().auth.userGrantRole({ user, role })
    showHeaderOnly(ctx.display, r.header, `Role ${role} is granted to user ${user}`)
  },
}

export const userRevokeRole: Command = {
  async run(ctx) {
    needArgs(ctx, 2, "user revoke-role requires user name and role name as its argument")
    const [name, role] = ctx.args as [string, string]
    const r = await ctx.client().auth.userRevokeRole({ name, role })
    showHeaderOnly(ctx.display, r.header, `Role ${role} is revoked from user ${name}`)
  },
}

export const roleAdd: Command = {
  async run(ctx) {
    needArgs(ctx, 1, "role add command requires role name as its argument")
    const r = await ctx.client().auth.roleAdd({ name: ctx.args[0]! })
    showHeaderOnly(ctx.display, r.header, `Role ${ctx.args[0]} created`)
  },
}

export const roleDelete: Command = {
  async run(ctx) {
    needArgs(ctx, 1, "role delete command requires role name as its argument")
    const r = await ctx.client().auth.roleDelete({ role: ctx.args[0]! })
    showHeaderOnly(ctx.display, r.header, `Role ${ctx.args[0]} deleted`)
  },
}

export const roleGet: Command = {
  async run(ctx) {
    needArgs(ctx, 1, "role get command requires role name as its argument")
    const role = ctx.args[0]!
    const r = await ctx.client().auth.roleGet({ role })
    showRoleGet(ctx.display, role, r.header, r.perm)
  },
}

export const roleList: Command = {
  async run(ctx) {
    if (ctx.args.length !== 0) throw new CtlExit(ExitCode.badArgs, "role list command requires no arguments")
    const r = await ctx.client().auth.roleList({})
    showStrings(ctx.display, r.header, "roles", r.roles)
  },
}

/** The [key, end) of a permission from its arguments and --prefix / --from-key. */
function permRange(ctx: Ctx, args: string[]): { key: Uint8Array; rangeEnd: Uint8Array } {
  const key = enc.encode(args[0]!)
  const prefix = ctx.bool("prefix")
  const fromKey = ctx.bool("from-key")
  if (args.length > 1) {
    if (prefix || fromKey) throw new CtlExit(ExitCode.badArgs, "too many arguments, only accept one argument when `--prefix` or `--from-key` is set")
    return { key, rangeEnd: enc.encode(args[1]!) }
  }
  if (prefix && fromKey) throw new CtlExit(ExitCode.badArgs, "`--prefix` and `--from-key` cannot be set at the same time, choose one")
  if (prefix) return key.length === 0 ? { key: Uint8Array.of(0), rangeEnd: Uint8Array.of(0) } : { key, rangeEnd: prefixEnd(key) }
  if (fromKey) return { key: key.length === 0 ? Uint8Array.of(0) : key, rangeEnd: Uint8Array.of(0) }
  return { key, rangeEnd: new Uint8Array() }
}

export const roleGrantPermission: Command = {
  async run(ctx) {
    if (ctx.args.length < 3) {
      throw new CtlExit(ExitCode.badArgs, "role grant command requires role name, permission type, and key [endkey] as its argument")
    }
    const [name, type, ...rest] = ctx.args as [string, string, ...string[]]
    const permType = PERM_NAMES.indexOf(type.toUpperCase())
    if (permType < 0) throw new CtlExit(ExitCode.badArgs, `invalid permission type: ${type}`)
    const range = permRange(ctx, rest)
    const r = await ctx.client().auth.roleGrantPermission({ name, perm: { permType, ...range } })
    showHeaderOnly(ctx.display, r.header, `Role ${name} updated`)
  },
}

export const roleRevokePermission: Command = {
  async run(ctx) {
    if (ctx.args.length < 2) {
      throw new CtlExit(ExitCode.badArgs, "role revoke-permission command requires role name and key [endkey] as its argument")
    }
    const [role, ...rest] = ctx.args as [string, ...string[]]
    const { key, rangeEnd } = permRange(ctx, rest)
    const r = await ctx.client().auth.roleRevokePermission({ role, key, rangeEnd })
    const text =
      rangeEnd.length === 0
        ? `Permission of key ${goString(key)} is revoked from role ${role}`
        : `Permission of range [${goString(key)}, ${goString(rangeEnd)}) is revoked from role ${role}`
    showHeaderOnly(ctx.display, r.header, text)
  },
}
