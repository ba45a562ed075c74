// The etcdctl v2 verbs in v3 mode (without ETCDCTL_API=2; with it, v2api.ts speaks the v2 API), mapped onto the v3 API.
//
//   v2 key "foo" or "/foo"        -> v3 key "/foo" (a leading "/" is added, a trailing one dropped)
//   directory "/d"                -> every key under "/d/"; mkdir writes the marker key "/d/" (empty value)
//   set k v [--ttl N]             -> Put (with a lease of N seconds); prints v
//       --swap-with-value x       -> Txn(value(k) = x -> Put), else "101: Compare failed"
//       --swap-with-index i       -> Txn(mod_revision(k) = i -> Put)
//   mk k v [--ttl N]              -> Txn(create_revision(k) = 0 -> Put), else "105: Key already exists"
//   mkdir d [--ttl N]             -> Txn(no key k and no key under k/ -> Put "d/" marker)
//   ls [d] [--recursive] [-p]     -> Range prefix "d/" keys-only; children computed by splitting on "/"
//   rm k [--recursive|--dir]      -> DeleteRange k (recursive: also prefix "k/"); prints "PrevNode.Value: v"
//   rmdir d                       -> DeleteRange of the marker when nothing else is under "d/"
//   update k v [--ttl N]          -> Txn(version(k) > 0 -> Put), else "100: Key not found"
//   exec-watch k -- cmd args      -> Watch, running cmd per event with ETCD_WATCH_ACTION/KEY/VALUE/MODIFIED_INDEX
//   cluster-health                -> MemberList + a linearizable Range on every member's client URLs
// v2 errors print as etcdctl v2 printed them ("Error:  100: Key not found (/k) [rev]") and exit 4.
import { spawnSync } from "node:child_process"
import type { EtcdClient } from "../client"
import { Compare_CompareResult, Compare_CompareTarget, type CompareInit, type PutRequestInit } from "../pb"
import { parseGoInt, prefixEnd } from "./cmd_kv"
import type { Command, Ctx } from "./context"
import { CtlExit, ExitCode, errorText, out } from "./output"

const enc = new TextEncoder()
const dec = new TextDecoder()
const bytes = (s: string): Uint8Array => enc.encode(s)

/** The v3 key of a v2 path. */
export function v2Key(path: string): string {
  let k = path.startsWith("/") ? path : `/${path}`
  while (k.length > 1 && k.endsWith("/")) k = k.slice(0, -1)
  return k
}

function v2Error(code: number, message: string, key: string, index: number): CtlExit {
  return new CtlExit(4, ` ${code}: ${message} (${key}) [${index}]`)
}

async function state(c: EtcdClient, key: string): Promise<{ value: string | undefined; isDir: boolean; rev: number; children: number }> {
  const self = await c.kv.range({ key: bytes(key) })
  const under = await c.kv.range({ key: bytes(`${key}/`), rangeEnd: prefixEnd(bytes(`${key}/`)), countOnly: true })
  const kv = self.kvs[0]
  const marker = await c.kv.range({ key: bytes(`${key}/`), countOnly: true })
  return {
    value: kv === undefined ? undefined : dec.decode(kv.value),
    isDir: under.count > 0,
    rev: under.header?.revision ?? 0,
    children: under.count - marker.count,
  }
}

async function leaseFor(ctx: Ctx): Promise<bigint | undefined> {
  const ttl = Number(ctx.flag("ttl"))
  if (ttl <= 0) return undefined
  const r = await ctx.client().lease.leaseGrant({ TTL: ttl })
  return r.ID
}

const TTL = { ttl: { kind: "int", def: "0" } } as const

function needKey(ctx: Ctx, n: number, usage: string): void {
  if (ctx.args.length < n) throw new CtlExit(1, `${usage}: key required`)
}

async function putIf(ctx: Ctx, key: string, value: string, compare: CompareInit[]): Promise<{ ok: boolean; rev: number }> {
  const lease = await leaseFor(ctx)
  const put: PutRequestInit = { key: bytes(key), value: bytes(value) }
  if (lease !== undefined) put.lease = lease
  const r = await ctx.client().kv.txn({ compare, success: [{ requestPut: put }] })
  return { ok: r.succeeded, rev: r.header?.revision ?? 0 }
}

export const v2Set: Command = {
  flags: { ...TTL, "swap-with-value": { kind: "string", def: "" }, "swap-with-index": { kind: "int", def: "0" } },
  async run(ctx) {
    if (ctx.args.length < 2) throw new CtlExit(1, "set: key and value required")
    const key = v2Key(ctx.args[0]!)
    const value = ctx.args[1]!
    const s = await state(ctx.client(), key)
    if (s.isDir) throw v2Error(102, "Not a file", key, s.rev)
    const compare: CompareInit[] = []
    const prev = ctx.flag("swap-with-value")
    const index = Number(ctx.flag("swap-with-index"))
    if (prev !== "") compare.push({ key: bytes(key), target: Compare_CompareTarget.VALUE, result: Compare_CompareResult.EQUAL, value: bytes(prev) })
    if (index > 0) compare.push({ key: bytes(key), target: Compare_CompareTarget.MOD, result: Compare_CompareResult.EQUAL, modRevision: index })
    const r = await putIf(ctx, key, value, compare)
    if (!r.ok) {
      if (s.value === undefined) throw v2Error(100, "Key not found", key, r.rev)
      const why = prev !== "" ? `[${prev} != ${s.value}]` : `[${index} != current]`
      throw v2Error(101, "Compare failed", why, r.rev)
    }
    out.line(value)
  },
}

export const v2Mk: Command = {
  flags: { ...TTL, "in-order": { kind: "bool", def: "false" } },
  async run(ctx) {
    if (ctx.args.length < 2) throw new CtlExit(1, "mk: key and value required")
    let key = v2Key(ctx.args[0]!)
    const value = ctx.args[1]!
    if (ctx.bool("in-order")) {
      // an in-order child: the key of the directory followed by the next revision, zero-padded as v2 did
      const r = await ctx.client().kv.range({ key: bytes(key) })
      key = `${key}/${String((r.header?.revision ?? 0) + 1).padStart(20, "0")}`
    }
    const s = await state(ctx.client(), key)
    if (s.isDir) throw v2Error(105, "Key already exists", key, s.rev)
    const r = await putIf(ctx, key, value, [{ key: bytes(key), target: Compare_CompareTarget.CREATE, result: Compare_CompareResult.EQUAL, createRevision: 0 }])
    if (!r.ok) throw v2Error(105, "Key already exists", key, r.rev)
    out.line(value)
  },
}

export const v2Mkdir: Command = {
  flags: TTL,
  async run(ctx) {
    needKey(ctx, 1, "mkdir")
    const key = v2Key(ctx.args[0]!)
    const s = await state(ctx.client(), key)
    if (s.isDir || s.value !== undefined) throw v2Error(105, "Key already exists", key, s.rev)
    const r = await putIf(ctx, `${key}/`, "", [{ key: bytes(key), target: Compare_CompareTarget.CREATE, result: Compare_CompareResult.EQUAL, createRevision: 0 }])
    if (!r.ok) throw v2Error(105, "Key already exists", key, r.rev)
  },
}

export const v2Update: Command = {
  flags: TTL,
  async run(ctx) {
    if (ctx.args.length < 2) throw new CtlExit(1, "update: key and value required")
    const key = v2Key(ctx.args[0]!)
    const r = await putIf(ctx, key, ctx.args[1]!, [{ key: bytes(key), target: Compare_CompareTarget.VERSION, result: Compare_CompareResult.GREATER, version: 0 }])
    if (!r.ok) throw v2Error(100, "Key not found", key, r.rev)
    out.line(ctx.args[1]!)
  },
}

/** The nodes under `dir` ("/" for the root): [path, isDir] sorted by path. */
async function listNodes(c: EtcdClient, dir: string, recursive: boolean): Promise<[string, boolean][]> {
  const prefix = dir === "/" ? "/" : `${dir}/`
  const r = await c.kv.range({ key: bytes(prefix), rangeEnd: prefixEnd(bytes(prefix)), keysOnly: true })
  const nodes = new Map<string, boolean>()
  for (const kv of r.kvs) {
    const rest = dec.decode(kv.key).slice(prefix.length)
    if (rest === "") continue
    const parts = rest.split("/")
    const depth = recursive ? parts.length : 1
    for (let i = 1; i <= depth; i++) {
      const seg = parts.slice(0, i)
      if (seg[seg.length - 1] === "") break
      const isDir = i < parts.length
      const path = prefix + seg.join("/")
      nodes.set(path, (nodes.get(path) ?? false) || isDir)
    }
  }
  return [...nodes.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
}

export const v2Ls: Command = {
  flags: { recursive: { kind: "bool", def: "false" }, p: { kind: "bool", short: "p", def: "false" }, sort: { kind: "bool", def: "false" }, quorum: { kind: "bool", def: "false" } },
  async run(ctx) {
    const dir = v2Key(ctx.args[0] ?? "/")
    const c = ctx.client()
    if (dir !== "/") {
      const s = await state(c, dir)
      if (s.value !== undefined && !s.isDir) return out.line(dir)
      if (!s.isDir) throw v2Error(100, "Key not found", dir, s.rev)
    }
    for (const [path, isDir] of await listNodes(c, dir, ctx.bool("recursive"))) out.line(isDir && ctx.bool("p") ? `${path}/` : path)
  },
}

export const v2Rm: Command = {
  flags: { recursive: { kind: "bool", def: "false" }, dir: { kind: "bool", def: "false" }, "with-value": { kind: "string", def: "" }, "with-index": { kind: "int", def: "0" } },
  async run(ctx) {
    needKey(ctx, 1, "rm")
    const key = v2Key(ctx.args[0]!)
    const c = ctx.client()
    const s = await state(c, key)
    if (s.value !== undefined) {
      const compare: CompareInit[] = []
      if (ctx.flag("with-value") !== "") compare.push({ key: bytes(key), target: Compare_CompareTarget.VALUE, result: Compare_CompareResult.EQUAL, value: bytes(ctx.flag("with-value")) })
      const index = Number(ctx.flag("with-index"))
      if (index > 0) compare.push({ key: bytes(key), target: Compare_CompareTarget.MOD, result: Compare_CompareResult.EQUAL, modRevision: index })
      const r = await c.kv.txn({ compare, success: [{ requestDeleteRange: { key: bytes(key), prevKv: true } }] })
      if (!r.succeeded) throw v2Error(101, "Compare failed", `[${ctx.flag("with-value") || index} != ${s.value}]`, r.header?.revision ?? 0)
      if (ctx.bool("recursive")) await c.kv.deleteRange({ key: bytes(`${key}/`), rangeEnd: prefixEnd(bytes(`${key}/`)) })
      out.line(`PrevNode.Value: ${s.value}`)
      return
    }
    if (!s.isDir) throw v2Error(100, "Key not found", key, s.rev)
    if (ctx.bool("recursive") || (ctx.bool("dir") && s.children === 0)) {
      await c.kv.deleteRange({ key: bytes(`${key}/`), rangeEnd: prefixEnd(bytes(`${key}/`)) })
      return
    }
    if (ctx.bool("dir")) throw v2Error(108, "Directory not empty", key, s.rev)
    throw v2Error(102, "Not a file", key, s.rev)
  },
}

export const v2Rmdir: Command = {
  async run(ctx) {
    needKey(ctx, 1, "rmdir")
    const key = v2Key(ctx.args[0]!)
    const c = ctx.client()
    const s = await state(c, key)
    if (!s.isDir) {
      if (s.value !== undefined) throw v2Error(104, "Not a directory", key, s.rev)
      throw v2Error(100, "Key not found", key, s.rev)
    }
    if (s.children > 0) throw v2Error(108, "Directory not empty", key, s.rev)
    await c.kv.deleteRange({ key: bytes(`${key}/`) })
  },
}

const WATCH_V2 = { forever: { kind: "bool", def: "false" }, recursive: { kind: "bool", def: "false" }, "after-index": { kind: "int", def: "0" } } as const

/** Watches a v2 key; calls onEvent per event until it returns false. */
async function watchV2(ctx: Ctx, onEvent: (action: string, key: string, value: string, rev: number) => boolean): Promise<void> {
  needKey(ctx, 1, "watch")
  const key = v2Key(ctx.args[0]!)
  const recursive = ctx.bool("recursive")
  const after = parseGoInt(ctx.flag("after-index"), 10)
  const stream = ctx.client().watch()
  const start = "value" in after && after.value > 0n ? Number(after.value) + 1 : 0
  stream.create(recursive ? { key: bytes(key), rangeEnd: prefixEnd(bytes(`${key}/`)), startRevision: start } : { key: bytes(key), startRevision: start })
  try {
    for await (const r of stream) {
      for (const ev of r.events) {
        const k = dec.decode(ev.kv?.key ?? new Uint8Array())
        const v = dec.decode(ev.kv?.value ?? new Uint8Array())
        const action = ev.type === 1 ? "delete" : (ev.kv?.version ?? 0) === 1 ? "create" : "set"
        if (!onEvent(action, k, v, ev.kv?.modRevision ?? 0)) return
      }
      if (r.canceled) throw new CtlExit(1, r.cancelReason || "watch canceled")
    }
  } catch (e) {
    if (e instanceof CtlExit) throw e
    throw new CtlExit(1, errorText(e))
  } finally {
    stream.close()
  }
}

export const v2ExecWatch: Command = {
  flags: WATCH_V2,
  keepDash: true,
  async run(ctx) {
    const cmd = ctx.afterDash ?? ctx.args.slice(1)
    if (cmd.length === 0) throw new CtlExit(1, "exec-watch: command required after --")
    await watchV2(ctx, (action, key, value, rev) => {
      const env = { ...process.env, ETCD_WATCH_ACTION: action, ETCD_WATCH_KEY: key, ETCD_WATCH_VALUE: value, ETCD_WATCH_MODIFIED_INDEX: String(rev) }
      spawnSync(cmd[0]!, cmd.slice(1), { env, stdio: "inherit" })
      return true
    })
  },
}

export const v2ClusterHealth: Command = {
  async run(ctx) {
    const members = (await ctx.client().cluster.memberList({})).members
    let healthy = 0
    for (const m of members) {
      const id = m.ID.toString(16)
      const url = m.clientURLs[0]
      if (url === undefined) {
        out.line(`member ${id} is unreachable: no available published client urls`)
        continue
      }
      const c = ctx.clientFor(m.clientURLs)
      try {
        await c.kv.range({ key: bytes("health") }, { timeoutMs: 2_000 })
        out.line(`member ${id} is healthy: got healthy result from ${url}`)
        healthy++
      } catch (e) {
        const text = errorText(e)
        if (text === "etcdserver: permission denied") {
          out.line(`member ${id} is healthy: got healthy result from ${url}`)
          healthy++
        } else out.line(`member ${id} is unreachable: [${m.clientURLs.join(" ")}] are all unreachable`)
      } finally {
        c.close()
      }
    }
    if (healthy === members.length) out.line("cluster is healthy")
    else if (healthy > members.length / 2) out.line("cluster is degraded")
    else {
      out.line("cluster is unavailable")
      return ExitCode.error
    }
  },
}
