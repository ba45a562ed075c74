// lease grant|revoke|timetolive|list|keep-alive.
import { TskvError } from "../lib/errors"
import type { LeaseKeepAliveResponse, ResponseHeader } from "../pb"
import { parseGoInt } from "./cmd_kv"
import type { Command } from "./context"
import { fieldsHeader, unsupported, type Display } from "./display"
import { full, goQuote, hexId16, i64, jArray, jObject, jsonString, type JsonText } from "./go_fmt"
import { jHeader, jHeaderFields } from "./json"
import { CtlExit, ExitCode, errorText, out } from "./output"

function leaseArg(arg: string): bigint {
  const r = parseGoInt(arg, 16)
  if ("error" in r) throw new CtlExit(ExitCode.badArgs, `bad lease ID arg (${r.error}), expecting ID in Hex`)
  return r.value
}

/** A clientv3 struct embedding *pb.ResponseHeader, then its own fields. */
function embedded(h: ResponseHeader | undefined, fields: [string, JsonText][]): string {
  return jObject([...jHeaderFields(h), ...fields])
}

function showIdTtl(d: Display, kind: "grant" | "keepalive", h: ResponseHeader | undefined, ID: bigint, TTL: number): void {
  switch (d.format) {
    case "simple":
      return out.line(
        kind === "grant" ? `lease ${hexId16(ID)} granted with TTL(${TTL}s)` : `lease ${hexId16(ID)} keepalived with TTL(${TTL})`,
      )
    case "json": {
      const fields: [string, JsonText][] = [
        ["ID", i64(ID)],
        ["TTL", full.num(TTL)],
      ]
      if (kind === "grant") fields.push(["Error", '""'])
      return out.line(embedded(h, fields))
    }
    case "fields":
      fieldsHeader(h)
      out.line(`"ID" : ${i64(ID)}`)
      out.line(`"TTL" : ${TTL}`)
      return
    default:
      unsupported(d)
  }
}

export const leaseGrant: Command = {
  async run(ctx) {
    if (ctx.args.length !== 1) throw new CtlExit(ExitCode.badArgs, "lease grant command needs TTL argument")
    const ttl = parseGoInt(ctx.args[0]!, 10)
    if ("error" in ttl) throw new CtlExit(ExitCode.badArgs, `bad TTL (${ttl.error})`)
    let res
    try {
      res = await ctx.client().lease.leaseGrant({ TTL: Number(ttl.value) })
    } catch (e) {
      throw new CtlExit(ExitCode.error, `failed to grant lease (${errorText(e)})`)
    }
    showIdTtl(ctx.display, "grant", res.header, res.ID, res.TTL)
  },
}

export const leaseRevoke: Command = {
  async run(ctx) {
    if (ctx.args.length !== 1) throw new CtlExit(ExitCode.badArgs, "lease revoke command needs 1 argument")
    const id = leaseArg(ctx.args[0]!)
    let res
    try {
      res = await ctx.client().lease.leaseRevoke({ ID: id })
    } catch (e) {
      throw new CtlExit(ExitCode.error, `failed to revoke lease (${errorText(e)})`)
    }
    const d = ctx.display
    switch (d.format) {
      case "simple":
        return out.line(`lease ${hexId16(id)} revoked`)
      case "json":
        return out.line(jObject([["header", jHeader(res.header)]]))
      case "fields":
        return fieldsHeader(res.header)
      default:
        unsupported(d)
    }
  },
}

export const leaseTimeToLive: Command = {
  async run(ctx) {
    if (ctx.args.length !== 1) throw new CtlExit(ExitCode.badArgs, "lease timetolive command needs lease ID as argument")
    const id = leaseArg(ctx.args[0]!)
    const keys = ctx.bool("keys")
    const r = await ctx.client().lease.leaseTimeToLive({ ID: id, keys })
    const d = ctx.display
    switch (d.format) {
      case "simple": {
        if (r.grantedTTL === 0 && r.TTL === -1) return out.line(`lease ${hexId16(r.ID)} already expired`)
        let txt = `lease ${hexId16(r.ID)} granted with TTL(${r.grantedTTL}s), remaining(${r.TTL}s)`
        if (keys) txt += `, attached keys([${r.keys.map((k) => Buffer.from(k).toString("utf8")).join(" ")}])`
        return out.line(txt)
      }
      case "json":
        return out.line(
          embedded(r.header, [
            ["id", i64(r.ID)],
            ["ttl", full.num(r.TTL)],
            ["granted-ttl", full.num(r.grantedTTL)],
            ["keys", r.keys.length === 0 ? "null" : jArray(r.keys.map((k) => jsonString(Buffer.from(k).toString("base64"))))],
          ]),
        )
      case "fields":
        fieldsHeader(r.header)
        out.line(`"ID" : ${i64(r.ID)}`)
        out.line(`"TTL" : ${r.TTL}`)
        out.line(`"GrantedTTL" : ${r.grantedTTL}`)
        for (const k of r.keys) out.line(`"Key" : ${goQuote(k)}`)
        return
      default:
        unsupported(d)
    }
  },
}

export const leaseList: Command = {
  async run(ctx) {
    let r
    try {
      r = await ctx.client().lease.leaseLeases({})
    } catch (e) {
      throw new CtlExit(ExitCode.error, `failed to list leases (${errorText(e)})`)
    }
    const d = ctx.display
    switch (d.format) {
      case "simple":
        out.line(`found ${r.leases.length} leases`)
        for (const l of r.leases) out.line(hexId16(l.ID))
        return
      case "json":
        return out.line(embedded(r.header, [["leases", jArray(r.leases.map((l) => jObject([["id", i64(l.ID)]])))]]))
      case "fields":
        fieldsHeader(r.header)
        for (const l of r.leases) out.line(`"ID" : ${i64(l.ID)}`)
        return
      default:
        unsupported(d)
    }
  },
}

export const leaseKeepAlive: Command = {
  async run(ctx) {
    if (ctx.args.length !== 1) throw new CtlExit(ExitCode.badArgs, "lease keep-alive command needs lease ID as argument")
    const id = leaseArg(ctx.args[0]!)
    const client = ctx.client()
    const check = (r: LeaseKeepAliveResponse): void => {
      if (r.TTL <= 0) throw new TskvError("leaseNotFound")
    }
    if (ctx.bool("once")) {
      let r
      try {
        r = await client.lease.keepAliveOnce(id, { timeoutMs: ctx.commandTimeoutMs })
        check(r)
      } catch (e) {
        throw new CtlExit(ExitCode.badConnection, errorText(e))
      }
      showIdTtl(ctx.display, "keepalive", r.header, r.ID, r.TTL)
      return
    }
    const stream = client.lease.leaseKeepAlive()
    try {
      for (;;) {
        stream.send({ ID: id })
        const r = await stream.read()
        if (r.TTL <= 0) break
        showIdTtl(ctx.display, "keepalive", r.header, r.ID, r.TTL)
        await Bun.sleep(Math.max(500, (r.TTL * 1000) / 3))
      }
    } catch {
      // the stream ended: the lease is gone or the member is unreachable
    } finally {
      stream.close()
    }
    if (ctx.display.format === "simple") out.line(`lease ${hexId16(id)} expired or revoked.`)
  },
}
