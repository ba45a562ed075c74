// member *, endpoint health|status|hashkv, alarm list|disarm, defrag,
// snapshot save, move-leader, version.
import { closeSync, fsyncSync, openSync, renameSync, writeSync } from "node:fs"
import type { EtcdClient } from "../client"
import { AlarmRequest_AlarmAction, AlarmType, type AlarmMember, type Member, type ResponseHeader } from "../pb"
import type { Command, Ctx } from "./context"
import { fieldsHeader, unsupported, type Display } from "./display"
import { goDuration, goQuote, hexId, humanizeBytes, jArray, jObject, jsonString, renderTable, u64 } from "./go_fmt"
import { jAlarm, jHashKV, jHeader, jMember, jStatus } from "./json"
import { defragDataDir } from "./offline_defrag"
import { CtlExit, ExitCode, errorText, out } from "./output"

/** %16x: hex, space-padded to 16. */
const hex16 = (id: bigint): string => hexId(id).padStart(16, " ")

function parseHexId(arg: string, what: string): bigint {
  if (!/^[0-9a-fA-F]{1,16}$/.test(arg)) {
    const reason = /^[0-9a-fA-F]+$/.test(arg) ? "value out of range" : "invalid syntax"
    throw new CtlExit(ExitCode.badArgs, `bad ${what} ID arg (strconv.ParseUint: parsing ${JSON.stringify(arg)}: ${reason}), expecting ID in Hex`)
  }
  return BigInt(`0x${arg}`)
}

// ---- member

function memberRows(members: Member[]): string[][] {
  return members.map((m) => [
    hexId(m.ID),
    m.name === "" ? "unstarted" : "started",
    m.name,
    m.peerURLs.join(","),
    m.clientURLs.join(","),
    String(m.isLearner),
  ])
}

const MEMBER_HEADER = ["ID", "Status", "Name", "Peer Addrs", "Client Addrs", "Is Learner"]

export const memberList: Command = {
  async run(ctx) {
    const r = await ctx.client().cluster.memberList({})
    const d = ctx.display
    switch (d.format) {
      case "simple":
        for (const row of memberRows(r.members)) out.line(row.join(", "))
        return
      case "table":
        return out.write(renderTable(MEMBER_HEADER, memberRows(r.members)))
      case "json":
        return out.line(jObject([["header", jHeader(r.header)], ["members", r.members.length === 0 ? undefined : jArray(r.members.map(jMember))]]))
      case "fields":
        fieldsHeader(r.header)
        for (const m of r.members) {
          out.line(`"ID" : ${u64(m.ID)}`)
          out.line(`"Name" : ${goQuote(m.name)}`)
          for (const u of m.peerURLs) out.line(`"PeerURL" : ${goQuote(u)}`)
          for (const u of m.clientURLs) out.line(`"ClientURL" : ${goQuote(u)}`)
          out.line(`"IsLearner" : ${m.isLearner}`)
          out.line()
        }
        return
      default:
        unsupported(d)
    }
  },
}

function membersJson(r: { header?: ResponseHeader; members: Member[] }, member?: Member): string {
  return jObject([
    ["header", jHeader(r.header)],
    ["member", member === undefined ? undefined : jMember(member)],
    ["members", r.members.length === 0 ? undefined : jArray(r.members.map(jMember))],
  ])
}

export const memberAdd: Command = {
  async run(ctx) {
    if (ctx.args.length < 1) throw new CtlExit(ExitCode.badArgs, "member name not provided")
    if (ctx.args.length > 1) {
      let ev = "too many arguments"
      for (const s of ctx.args) if (s.toLowerCase().startsWith("http")) ev += `, did you mean --peer-urls=${s}`
      throw new CtlExit(ExitCode.badArgs, ev)
    }
    const name = ctx.args[0]!
    if (ctx.flag("peer-urls") === "") throw new CtlExit(ExitCode.badArgs, "member peer urls not provided")
    const peerURLs = ctx.flag("peer-urls").split(",")
    const client = ctx.client()
    const r = await client.cluster.memberAdd({ peerURLs, isLearner: ctx.bool("learner") })
    const member = r.member
    const d = ctx.display
    switch (d.format) {
      case "simple":
        out.line(`Member ${hex16(member?.ID ?? 0n)} added to cluster ${hex16(r.header?.clusterId ?? 0n)}`)
        break
      case "json":
        out.line(membersJson(r, member))
        return
      case "fields":
        fieldsHeader(r.header)
        return
      default:
        unsupported(d)
    }
    let list = await client.cluster.memberList({})
    for (let i = 0; i < 10 && list.header?.memberId !== r.header?.memberId; i++) {
      await client.kv.range({ key: new TextEncoder().encode("_") })
      list = await client.cluster.memberList({})
    }
    const conf: string[] = []
    for (const m of list.members) for (const u of m.peerURLs) conf.push(`${m.ID === member?.ID ? name : m.name}=${u}`)
    out.line()
    out.line(`ETCD_NAME=${goQuote(name)}`)
    out.line(`ETCD_INITIAL_CLUSTER=${goQuote(conf.join(","))}`)
    out.line(`ETCD_INITIAL_ADVERTISE_PEER_URLS=${goQuote(peerURLs.join(","))}`)
    out.line(`ETCD_INITIAL_CLUSTER_STATE="existing"`)
  },
}

function memberChange(verb: "removed from" | "updated in" | "promoted in", call: (ctx: Ctx, id: bigint) => Promise<{ header?: ResponseHeader; members: Member[] }>): Command {
  return {
    async run(ctx) {
      if (ctx.args.length !== 1) throw new CtlExit(ExitCode.badArgs, "member ID is not provided")
      const id = parseHexId(ctx.args[0]!, "member")
      const r = await call(ctx, id)
      const d = ctx.display
      switch (d.format) {
        case "simple":
          return out.line(`Member ${hex16(id)} ${verb} cluster ${hex16(r.header?.clusterId ?? 0n)}`)
        case "json":
          return out.line(membersJson(r))
        case "fields":
          return fieldsHeader(r.header)
        default:
          unsupported(d)
      }
    },
  }
}

export const memberRemove = memberChange("removed from", (ctx, ID) => ctx.client().cluster.memberRemove({ ID }))
export const memberPromote = memberChange("promoted in", (ctx, ID) => ctx.client().cluster.memberPromote({ ID }))
export const memberUpdate = memberChange("updated in", (ctx, ID) => {
  if (ctx.flag("peer-urls") === "") throw new CtlExit(ExitCode.badArgs, "member peer urls not provided")
  return ctx.client().cluster.memberUpdate({ ID, peerURLs: ctx.flag("peer-urls").split(",") })
})

// ---- endpoint

/** The endpoints to ask: the given ones, or with --cluster every member's client URLs. */
async function targetEndpoints(ctx: Ctx): Promise<string[]> {
  if (!ctx.bool("cluster")) return ctx.endpoints()
  const r = await ctx.client().cluster.memberList({})
  const eps: string[] = []
  for (const m of r.members) eps.push(...m.clientURLs)
  return eps
}

async function eachEndpoint<T>(ctx: Ctx, eps: string[], f: (c: EtcdClient, ep: string) => Promise<T>): Promise<PromiseSettledResult<T>[]> {
  return await Promise.all(
    eps.map(async (ep): Promise<PromiseSettledResult<T>> => {
      const c = ctx.clientFor([ep])
      try {
        return { status: "fulfilled", value: await f(c, ep) }
      } catch (e) {
        return { status: "rejected", reason: e }
      } finally {
        c.close()
      }
    }),
  )
}

interface Health {
  ep: string
  health: boolean
  took: string
  error: string
}

export const endpointHealth: Command = {
  async run(ctx) {
    const eps = await targetEndpoints(ctx)
    const results = await eachEndpoint(ctx, eps, async (c, ep): Promise<Health> => {
      const start = performance.now()
      let error = ""
      try {
        await c.kv.range({ key: new TextEncoder().encode("health") })
      } catch (e) {
        const text = errorText(e)
        if (text !== "etcdserver: permission denied") error = text
      }
      if (error === "") {
        try {
          const alarms = await c.maintenance.alarm({ action: AlarmRequest_AlarmAction.GET })
          if (alarms.alarms.length > 0) error = `Active Alarm(s): ${alarms.alarms.map((a) => AlarmType[a.alarm]).join(" ")}`
        } catch {}
      }
      const took = goDuration((performance.now() - start) * 1e6)
      return { ep, health: error === "", took, error }
    })
    const list = results.map((r) => (r.status === "fulfilled" ? r.value : { ep: "", health: false, took: "", error: errorText(r.reason) }))
    const d = ctx.display
    switch (d.format) {
      case "simple":
        for (const h of list) {
          if (h.error === "") out.err(`${h.ep} is healthy: successfully committed proposal: took = ${h.took}\n`)
          else out.err(`${h.ep} is unhealthy: failed to commit proposal: ${h.error}\n`)
        }
        break
      case "json":
        out.line(
          jArray(
            list.map((h) =>
              jObject([
                ["endpoint", jsonString(h.ep)],
                ["health", String(h.health)],
                ["took", jsonString(h.took)],
                ["error", h.error === "" ? undefined : jsonString(h.error)],
              ]),
            ),
          ),
        )
        break
      case "fields":
        for (const h of list) {
          out.line(`"Endpoint" : ${goQuote(h.ep)}`)
          out.line(`"Health" : ${h.health}`)
          out.line(`"Took" : ${h.took}`)
          out.line(`"Error" : ${h.error}`)
          out.line()
        }
        break
      case "table":
        out.write(renderTable(["endpoint", "health", "took", "error"], list.map((h) => [h.ep, String(h.health), h.took, h.error])))
        break
      default:
        unsupported(d)
    }
    if (list.some((h) => !h.health)) throw new CtlExit(ExitCode.error, "unhealthy cluster")
  },
}

export const endpointStatus: Command = {
  async run(ctx) {
    const eps = await targetEndpoints(ctx)
    const results = await eachEndpoint(ctx, eps, (c) => c.maintenance.status({}))
    const ok: { ep: string; s: Awaited<ReturnType<EtcdClient["maintenance"]["status"]>> }[] = []
    let failed = false
    results.forEach((r, i) => {
      if (r.status === "fulfilled") ok.push({ ep: eps[i]!, s: r.value })
      else {
        failed = true
        out.err(`Failed to get the status of endpoint ${eps[i]} (${errorText(r.reason)})\n`)
      }
    })
    const rows = ok.map(({ ep, s }) => [
      ep,
      hexId(s.header?.memberId ?? 0n),
      s.version,
      humanizeBytes(s.dbSize),
      String(s.leader === s.header?.memberId),
      String(s.isLearner),
      String(s.raftTerm),
      String(s.raftIndex),
      String(s.raftAppliedIndex),
      s.errors.join(", "),
    ])
    const d = ctx.display
    switch (d.format) {
      case "simple":
        for (const r of rows) out.line(r.join(", "))
        break
      case "table":
        out.write(
          renderTable(
            ["endpoint", "ID", "version", "db size", "is leader", "is learner", "raft term", "raft index", "raft applied index", "errors"],
            rows,
          ),
        )
        break
      case "json":
        out.line(jArray(ok.map(({ ep, s }) => jObject([["Endpoint", jsonString(ep)], ["Status", jStatus(s)]]))))
        break
      case "fields":
        for (const { ep, s } of ok) {
          fieldsHeader(s.header)
          out.line(`"Version" : ${goQuote(s.version)}`)
          out.line(`"DBSize" : ${s.dbSize}`)
          out.line(`"Leader" : ${u64(s.leader)}`)
          out.line(`"IsLearner" : ${s.isLearner}`)
          out.line(`"RaftIndex" : ${s.raftIndex}`)
          out.line(`"RaftTerm" : ${s.raftTerm}`)
          out.line(`"RaftAppliedIndex" : ${s.raftAppliedIndex}`)
          out.line(`"Errors" : [${s.errors.join(" ")}]`)
          out.line(`"Endpoint" : ${goQuote(ep)}`)
          out.line()
        }
        break
      default:
        unsupported(d)
    }
    if (failed) return ExitCode.error
  },
}

export const endpointHashKV: Command = {
  async run(ctx) {
    const eps = await targetEndpoints(ctx)
    const revision = Number(ctx.flag("rev"))
    const results = await eachEndpoint(ctx, eps, (c) => c.maintenance.hashKV({ revision }))
    const ok: { ep: string; h: Awaited<ReturnType<EtcdClient["maintenance"]["hashKV"]>> }[] = []
    let failed = false
    results.forEach((r, i) => {
      if (r.status === "fulfilled") ok.push({ ep: eps[i]!, h: r.value })
      else {
        failed = true
        out.err(`Failed to get the hash of endpoint ${eps[i]} (${errorText(r.reason)})\n`)
      }
    })
    const d = ctx.display
    switch (d.format) {
      case "simple":
        for (const { ep, h } of ok) out.line(`${ep}, ${h.hash}`)
        break
      case "table":
        out.write(renderTable(["endpoint", "hash"], ok.map(({ ep, h }) => [ep, String(h.hash)])))
        break
      case "json":
        out.line(jArray(ok.map(({ ep, h }) => jObject([["Endpoint", jsonString(ep)], ["HashKV", jHashKV(h)]]))))
        break
      case "fields":
        for (const { ep, h } of ok) {
          fieldsHeader(h.header)
          out.line(`"Endpoint" : ${goQuote(ep)}`)
          out.line(`"Hash" : ${h.hash}`)
          out.line()
        }
        break
      default:
        unsupported(d)
    }
    if (failed) return ExitCode.error
  },
}

// ---- alarm, defrag, move-leader, version

function showAlarms(d: Display, r: { header?: ResponseHeader; alarms: AlarmMember[] }): void {
  switch (d.format) {
    case "simple":
      for (const a of r.alarms) out.line(`memberID:${u64(a.memberID)} alarm:${AlarmType[a.alarm] ?? a.alarm} `)
      return
    case "json":
      return out.line(jObject([["header", jHeader(r.header)], ["alarms", r.alarms.length === 0 ? undefined : jArray(r.alarms.map(jAlarm))]]))
    case "fields":
      fieldsHeader(r.header)
      for (const a of r.alarms) {
        out.line(`"MemberID" : ${u64(a.memberID)}`)
        out.line(`"AlarmType" : ${AlarmType[a.alarm] ?? a.alarm}`)
        out.line()
      }
      return
    default:
      unsupported(d)
  }
}

export const alarmList: Command = {
  async run(ctx) {
    showAlarms(ctx.display, await ctx.client().maintenance.alarm({ action: AlarmRequest_AlarmAction.GET }))
  },
}

export const alarmDisarm: Command = {
  async run(ctx) {
    const client = ctx.client()
    const list = await client.maintenance.alarm({ action: AlarmRequest_AlarmAction.GET })
    let last = list
    for (const a of list.alarms) {
      last = await client.maintenance.alarm({ action: AlarmRequest_AlarmAction.DEACTIVATE, memberID: a.memberID, alarm: a.alarm })
    }
    showAlarms(ctx.display, { alarms: list.alarms, ...(last.header === undefined ? {} : { header: last.header }) })
  },
}

export const defrag: Command = {
  async run(ctx) {
    const dataDir = ctx.flag("data-dir")
    if (dataDir !== "") {
      try {
        defragDataDir(dataDir)
      } catch (e) {
        // etcdctl prints nothing on success, this line on any failure
        out.err(`Failed to defragment etcd data[${dataDir}] (${errorText(e)})\n`)
        return ExitCode.error
      }
      return
    }
    const eps = await targetEndpoints(ctx)
    const results = await eachEndpoint(ctx, eps, (c) => c.maintenance.defragment({}, { timeoutMs: ctx.commandTimeoutMs }))
    let failed = false
    results.forEach((r, i) => {
      if (r.status === "fulfilled") out.line(`Finished defragmenting etcd member[${eps[i]}]`)
      else {
        failed = true
        out.err(`Failed to defragment etcd member[${eps[i]}] (${errorText(r.reason)})\n`)
      }
    })
    if (failed) return ExitCode.error
  },
}

export const moveLeader: Command = {
  async run(ctx) {
    if (ctx.args.length !== 1) throw new CtlExit(ExitCode.badArgs, "move-leader command needs 1 argument")
    const arg = ctx.args[0]!
    if (!/^[0-9a-fA-F]{1,16}$/.test(arg)) {
      throw new CtlExit(ExitCode.badArgs, `strconv.ParseUint: parsing ${JSON.stringify(arg)}: ${/^[0-9a-fA-F]+$/.test(arg) ? "value out of range" : "invalid syntax"}`)
    }
    const target = BigInt(`0x${arg}`)
    for (const ep of ctx.endpoints()) {
      const c = ctx.clientFor([ep])
      try {
        const s = await c.maintenance.status({})
        if (s.header?.memberId !== s.leader) continue
        const r = await c.maintenance.moveLeader({ targetID: target })
        const d = ctx.display
        switch (d.format) {
          case "simple":
            return out.line(`Leadership transferred from ${hexId(s.leader)} to ${hexId(target)}`)
          case "json":
            return out.line(jObject([["header", jHeader(r.header)]]))
          case "fields":
            return fieldsHeader(r.header)
          default:
            unsupported(d)
        }
      } finally {
        c.close()
      }
    }
    throw new CtlExit(ExitCode.badArgs, `no leader endpoint given at [${ctx.endpoints().join(" ")}]`)
  },
}

export const version: Command = {
  async run() {
    out.line("etcdctl version: 3.4.23")
    out.line("API version: 3.4")
  },
}

// ---- snapshot save

function zapTs(): string {
  return (Date.now() / 1000).toFixed(7)
}

function zapLine(ts: string, caller: string, msg: string, extra: [string, string][] = []): string {
  return `${jObject([["level", '"info"'], ["ts", ts], ["caller", jsonString(caller)], ["msg", jsonString(msg)], ...extra])}\n`
}

export const snapshotSave: Command = {
  async run(ctx) {
    if (ctx.args.length !== 1) throw new CtlExit(ExitCode.badArgs, "snapshot save expects one argument")
    const eps = ctx.endpoints()
    if (eps.length !== 1) {
      throw new CtlExit(ExitCode.badArgs, `snapshot must be requested to one selected node, not multiple [${eps.join(" ")}]`)
    }
    const path = ctx.args[0]!
    const part = `${path}.part`
    const iso = (): string => jsonString(new Date().toISOString().replace(/\.(\d{3})\d*Z$/, ".$1Z"))
    const tty = process.stderr.isTTY === true
    out.err(zapLine(zapTs(), "snapshot/v3_snapshot.go:119", "created temporary db file", [["path", jsonString(part)]]))
    const start = performance.now()
    const fd = openSync(part, "w", 0o600)
    let size = 0
    try {
      const stream = ctx.client().maintenance.snapshot()
      out.err(zapLine(iso(), "clientv3/maintenance.go:200", "opened snapshot stream; downloading"))
      out.err(zapLine(zapTs(), "snapshot/v3_snapshot.go:127", "fetching snapshot", [["endpoint", jsonString(eps[0]!)]]))
      for await (const chunk of stream) {
        writeSync(fd, chunk.blob)
        size += chunk.blob.length
        if (tty) {
          const total = size + chunk.remainingBytes
          const pct = total === 0 ? 100 : Math.floor((size * 100) / total)
          const bar = "=".repeat(Math.floor(pct / 5)).padEnd(20, " ")
          out.err(`\r[${bar}] ${pct}% ${humanizeBytes(size)} / ${humanizeBytes(total)}`)
        }
      }
      if (tty) out.err("\n")
      out.err(zapLine(iso(), "clientv3/maintenance.go:208", "completed snapshot read; closing"))
      fsyncSync(fd)
    } catch (e) {
      closeSync(fd)
      throw new CtlExit(ExitCode.interrupted, errorText(e))
    }
    closeSync(fd)
    out.err(
      zapLine(zapTs(), "snapshot/v3_snapshot.go:142", "fetched snapshot", [
        ["endpoint", jsonString(eps[0]!)],
        ["size", jsonString(humanizeBytes(size))],
        ["took", ((performance.now() - start) / 1000).toFixed(9)],
      ]),
    )
    renameSync(part, path)
    out.err(zapLine(zapTs(), "snapshot/v3_snapshot.go:152", "saved", [["path", jsonString(path)]]))
    out.line(`Snapshot saved at ${path}`)
  },
}
