// `tskv ctl` with ETCDCTL_API=2 (or `--api 2`): etcdctl 3.4's v2 commands over
// etcd's v2 HTTP API (a member started with --enable-v2), with etcdctl's
// outputs (simple, extended, json) and exit codes. Without ETCDCTL_API=2 the
// v2 verbs map onto the v3 API (cmd_v2.ts).

import { spawn } from "node:child_process"
import { durationMs } from "./context"
import { out } from "./output"
import { authCommands } from "./v2api_auth"
import { V2Client, V2ClientError, V2ClusterUnavailable, type V2Node, type V2Response } from "./v2api_client"
import { Exit, Exited, type Spec, type V2Command, type V2Ctx } from "./v2api_types"


const VERSION = "3.4.23"


const GLOBALS: Spec = {
  debug: { bool: true, def: "false" },
  "no-sync": { bool: true, def: "false" },
  output: { def: "simple", alias: "o" },
  discovery: { def: "" },
  "insecure-discovery": { bool: true, def: "true" },
  peers: { def: "", alias: "C" },
  endpoint: { def: "" },
  endpoints: { def: "" },
  "cert-file": { def: "" },
  "key-file": { def: "" },
  "ca-file": { def: "" },
  username: { def: "", alias: "u" },
  password: { def: "" },
  timeout: { def: "2s" },
  "total-timeout": { def: "5s" },
  help: { bool: true, def: "false", alias: "h" },
  version: { bool: true, def: "false", alias: "v" },
  api: { def: "2" },
}


interface Parsed {
  flags: Map<string, string>
  args: string[]
}

/** urfave/cli v1 with Go's flag package: -f, --f, -f=v, --f v; flags may follow arguments; "--" is kept. */
function parseFlags(argv: string[], spec: Spec, stopAtPositional: boolean): Parsed & { rest: string[] } {
  const flags = new Map<string, string>()
  const args: string[] = []
  const byAlias = new Map<string, string>()
  for (const [name, s] of Object.entries(spec)) if (s.alias) byAlias.set(s.alias, name)
  let i = 0
  for (; i < argv.length; i++) {
    const a = argv[i]!
    if (a === "--") {
      args.push(...argv.slice(i))
      i = argv.length
      break
    }
    if (!a.startsWith("-") || a === "-") {
      if (stopAtPositional) break
      args.push(a)
      continue
    }
    const body = a.replace(/^--?/, "")
    const eq = body.indexOf("=")
    let name = eq >= 0 ? body.slice(0, eq) : body
    name = byAlias.get(name) ?? name
    const s = spec[name]
    if (!s) {
      out.err(`Incorrect Usage: flag provided but not defined: -${eq >= 0 ? body.slice(0, eq) : body}\n\n`)
      throw new Exited(Exit.badArgs)
    }
    let value: string
    if (eq >= 0) value = body.slice(eq + 1)
    else if (s.bool) value = "true"
    else {
      const v = argv[++i]
      if (v === undefined) {
        out.err(`Incorrect Usage: flag needs an argument: -${name}\n\n`)
        throw new Exited(Exit.badArgs)
      }
      value = v
    }
    flags.set(name, s.multi && flags.has(name) ? `${flags.get(name)}\u0000${value}` : value)
  }
  return { flags, args, rest: argv.slice(i) }
}


/** etcdctl's handleError: "Error: ", the error, and the exit code (in every output format). */
function fail(_ctx: { output: string }, code: number, e: unknown): never {
  out.err(`Error:  ${e instanceof Error ? e.message : String(e)}\n`)
  throw new Exited(code)
}

function goJson(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`)
}

/** client.Node as json.Marshal writes it. */
function nodeJson(n: V2Node | undefined): unknown {
  if (n === undefined) return null
  return {
    key: n.key ?? "",
    ...(n.dir === true ? { dir: true } : {}),
    value: n.value ?? "",
    nodes: n.nodes === undefined ? null : n.nodes.map(nodeJson),
    createdIndex: n.createdIndex ?? 0,
    modifiedIndex: n.modifiedIndex ?? 0,
    ...(n.expiration !== undefined ? { expiration: n.expiration } : {}),
    ...(n.ttl !== undefined && n.ttl !== 0 ? { ttl: n.ttl } : {}),
  }
}

function printResponseKey(r: V2Response, format: string): void {
  switch (format) {
    case "simple":
      if (r.action !== "delete") out.line(r.node.value ?? "")
      else out.line(`PrevNode.Value: ${r.prevNode?.value ?? ""}`)
      return
    case "extended":
      out.line(`Key: ${r.node.key ?? ""}`)
      out.line(`Created-Index: ${r.node.createdIndex ?? 0}`)
      out.line(`Modified-Index: ${r.node.modifiedIndex ?? 0}`)
      if (r.prevNode) out.line(`PrevNode.Value: ${r.prevNode.value ?? ""}`)
      out.line(`TTL: ${r.node.ttl ?? 0}`)
      out.line(`Index: ${r.index}`)
      if (r.action !== "delete") {
        out.line("")
        out.line(r.node.value ?? "")
      }
      return
    case "json":
      out.line(goJson({ action: r.action, node: nodeJson(r.node), prevNode: nodeJson(r.prevNode) }))
      return
    default:
      out.err(`Unsupported output format: ${format}\n`)
  }
}

async function call<T>(ctx: V2Ctx, f: () => Promise<T>): Promise<T> {
  try {
    return await f()
  } catch (e) {
    if (e instanceof V2ClientError || e instanceof V2ClusterUnavailable) fail(ctx, Exit.serverError, e)
    throw e
  }
}

function keyArg(ctx: V2Ctx): string {
  const key = ctx.args[0]
  if (key === undefined) fail(ctx, Exit.badArgs, new Error("key required"))
  return key
}

async function valueArg(ctx: V2Ctx, i: number): Promise<string> {
  const v = ctx.args[i]
  if (v !== undefined) return v
  if (process.stdin.isTTY) fail(ctx, Exit.badArgs, new Error("value required"))
  const chunks: Buffer[] = []
  for await (const c of process.stdin) chunks.push(Buffer.from(c as Uint8Array))
  const text = Buffer.concat(chunks).toString("utf8")
  if (text === "") fail(ctx, Exit.badArgs, new Error("value required"))
  return text
}

function ttlForm(ctx: V2Ctx): Record<string, string> {
  const ttl = Number(ctx.flag("ttl") || "0")
  return ttl > 0 ? { ttl: String(ttl) } : {}
}

const TTL: Spec = { ttl: { def: "0" } }

const commands: Record<string, V2Command> = {
  ...authCommands,
  set: {
    flags: { ...TTL, "swap-with-value": { def: "" }, "swap-with-index": { def: "0" } },
    async run(ctx) {
      const key = keyArg(ctx)
      const value = await valueArg(ctx, 1)
      const query: Record<string, string> = {}
      if (ctx.flag("swap-with-value") !== "") query.prevValue = ctx.flag("swap-with-value")
      if (Number(ctx.flag("swap-with-index")) !== 0) query.prevIndex = ctx.flag("swap-with-index")
      printResponseKey(await call(ctx, () => ctx.client.keys("PUT", key, { query, form: { value, ...ttlForm(ctx) } })), ctx.output)
    },
  },
  mk: {
    flags: { ...TTL, "in-order": { bool: true, def: "false" } },
    async run(ctx) {
      const key = keyArg(ctx)
      const value = await valueArg(ctx, 1)
      const form = { value, ...ttlForm(ctx) }
      const r = ctx.bool("in-order")
        ? await call(ctx, () => ctx.client.keys("POST", key, { form }))
        : await call(ctx, () => ctx.client.keys("PUT", key, { query: { prevExist: "false" }, form }))
      printResponseKey(r, ctx.output)
    },
  },
  update: {
    flags: TTL,
    async run(ctx) {
      const key = keyArg(ctx)
      const value = await valueArg(ctx, 1)
      printResponseKey(await call(ctx, () => ctx.client.keys("PUT", key, { query: { prevExist: "true" }, form: { value, ...ttlForm(ctx) } })), ctx.output)
    },
  },
  mkdir: { flags: TTL, run: (ctx) => dirCommand(ctx, { prevExist: "false" }) },
  setdir: { flags: TTL, run: (ctx) => dirCommand(ctx, {}) },
  updatedir: { flags: TTL, run: (ctx) => dirCommand(ctx, { prevExist: "true" }) },
  rm: {
    flags: { dir: { bool: true, def: "false" }, recursive: { bool: true, def: "false" }, "with-value": { def: "" }, "with-index": { def: "0" } },
    async run(ctx) {
      const key = keyArg(ctx)
      const query: Record<string, string> = {}
      if (ctx.flag("with-value") !== "") query.prevValue = ctx.flag("with-value")
      if (Number(ctx.flag("with-index")) !== 0) query.prevIndex = ctx.flag("with-index")
      if (ctx.bool("dir")) query.dir = "true"
      if (ctx.bool("recursive")) query.recursive = "true"
      const r = await call(ctx, () => ctx.client.keys("DELETE", key, { query }))
      if (r.node.dir !== true || ctx.output !== "simple") printResponseKey(r, ctx.output)
    },
  },
  rmdir: {
    flags: {},
    async run(ctx) {
      const key = keyArg(ctx)
      const r = await call(ctx, () => ctx.client.keys("DELETE", key, { query: { dir: "true" } }))
      if (r.node.dir !== true || ctx.output !== "simple") printResponseKey(r, ctx.output)
    },
  },
  get: {
    flags: { sort: { bool: true, def: "false" }, quorum: { bool: true, def: "false" } },
    async run(ctx) {
      const key = keyArg(ctx)
      const r = await call(ctx, () => ctx.client.keys("GET", key, { query: { quorum: String(ctx.bool("quorum")), recursive: "false", sorted: String(ctx.bool("sort")) } }))
      if (r.node.dir === true) {
        out.err(`${r.node.key}: is a directory\n`)
        return Exit.badArgs
      }
      printResponseKey(r, ctx.output)
    },
  },
  ls: {
    flags: { sort: { bool: true, def: "false" }, recursive: { bool: true, def: "false" }, p: { bool: true, def: "false" }, quorum: { bool: true, def: "false" } },
    async run(ctx) {
      const key = ctx.args[0] ?? "/"
      const r = await call(ctx, () =>
        ctx.client.keys("GET", key, { query: { quorum: String(ctx.bool("quorum")), recursive: String(ctx.bool("recursive")), sorted: String(ctx.bool("sort")) } }),
      )
      if (ctx.output !== "simple") return printResponseKey(r, ctx.output)
      if (r.node.dir !== true) out.line(r.node.key ?? "")
      const print = (n: V2Node): void => {
        out.line(n.dir === true && ctx.bool("p") ? `${n.key}/` : (n.key ?? ""))
        for (const c of n.nodes ?? []) print(c)
      }
      for (const n of r.node.nodes ?? []) print(n)
    },
  },
  watch: {
    flags: { forever: { bool: true, def: "false", alias: "f" }, "after-index": { def: "0" }, recursive: { bool: true, def: "false" } },
    async run(ctx) {
      const key = keyArg(ctx)
      const recursive = ctx.bool("recursive")
      for await (const r of watchEvents(ctx, key, Number(ctx.flag("after-index")), recursive)) {
        if (r.node.dir === true) continue
        if (recursive) out.line(`[${r.action}] ${r.node.key}`)
        printResponseKey(r, ctx.output)
        if (!ctx.bool("forever")) return
      }
    },
  },
  "exec-watch": {
    flags: { "after-index": { def: "0" }, recursive: { bool: true, def: "false" } },
    async run(ctx) {
      const args = ctx.args
      if (args.length < 2) fail(ctx, Exit.badArgs, new Error("key and command to exec required"))
      const sep = args.findIndex((a, i) => a === "--" && i !== 0)
      const key = sep >= 0 ? args[0]! : args[args.length - 1]!
      const cmd = sep >= 0 ? args.slice(sep + 1) : args.slice(0, -1)
      for await (const r of watchEvents(ctx, key, Number(ctx.flag("after-index")), ctx.bool("recursive"))) {
        if (r.node.dir === true) {
          out.err(`Ignored dir ${r.node.key} change\n`)
          continue
        }
        const env = {
          ...process.env,
          ETCD_WATCH_ACTION: r.action,
          ETCD_WATCH_MODIFIED_INDEX: String(r.node.modifiedIndex ?? 0),
          ETCD_WATCH_KEY: r.node.key ?? "",
          ETCD_WATCH_VALUE: r.node.value ?? "",
        }
        const child = spawn(cmd[0]!, cmd.slice(1), { env, stdio: ["ignore", "inherit", "inherit"] })
        child.on("error", (e) => out.err(`${e.message}\n`))
      }
    },
  },
  member: {
    flags: {},
    run: (ctx) => memberCommand(ctx),
  },
  "cluster-health": {
    flags: { forever: { bool: true, def: "false", alias: "f" } },
    async run(ctx) {
      const members = await call(ctx, () => ctx.client.members())
      let healthy = 0
      for (const m of members) {
        if (m.clientURLs.length === 0) {
          out.line(`member ${m.id} is unreachable: no available published client urls`)
          continue
        }
        let checked = false
        for (const url of m.clientURLs) {
          try {
            const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) })
            const result = (await res.json()) as { health?: string }
            checked = true
            if (result.health === "true") {
              healthy++
              out.line(`member ${m.id} is healthy: got healthy result from ${url}`)
            } else out.line(`member ${m.id} is unhealthy: got unhealthy result from ${url}`)
            break
          } catch (e) {
            out.line(`failed to check the health of member ${m.id} on ${url}: ${e instanceof Error ? e.message : String(e)}`)
          }
        }
        if (!checked) out.line(`member ${m.id} is unreachable: [${m.clientURLs.join(" ")}] are all unreachable`)
      }
      if (healthy === members.length) out.line("cluster is healthy")
      else if (healthy === 0) out.line("cluster is unavailable")
      else out.line("cluster is degraded")
      return healthy === members.length ? Exit.success : Exit.clusterNotHealthy
    },
  },
}

async function dirCommand(ctx: V2Ctx, query: Record<string, string>): Promise<void> {
  const key = keyArg(ctx)
  const r = await call(ctx, () => ctx.client.keys("PUT", key, { query: { dir: "true", ...query }, form: ttlForm(ctx) }))
  if (ctx.output !== "simple") printResponseKey(r, ctx.output)
}

/** client.Watcher: waitIndex = after-index + 1, then the next index after each event. */
async function* watchEvents(ctx: V2Ctx, key: string, afterIndex: number, recursive: boolean): AsyncGenerator<V2Response> {
  let waitIndex = afterIndex > 0 ? afterIndex + 1 : 0
  for (;;) {
    const query: Record<string, string> = { wait: "true", ...(recursive ? { recursive: "true" } : {}), ...(waitIndex > 0 ? { waitIndex: String(waitIndex) } : {}) }
    const r = await call(ctx, () => ctx.client.keys("GET", key, { query, timeoutMs: 0 }))
    waitIndex = (r.node.modifiedIndex ?? 0) + 1
    yield r
  }
}

async function memberCommand(ctx: V2Ctx): Promise<number | void> {
  const [verb, ...rest] = ctx.args
  const client = ctx.client
  switch (verb) {
    case "list": {
      const [members, leader] = await call(ctx, () => Promise.all([client.members(), client.leader()]))
      for (const m of members) {
        if (m.name === "") out.line(`${m.id}[unstarted]: peerURLs=${m.peerURLs.join(",")}`)
        else out.line(`${m.id}: name=${m.name} peerURLs=${m.peerURLs.join(",")} clientURLs=${m.clientURLs.join(",")} isLeader=${m.id === leader?.id}`)
      }
      return
    }
    case "add": {
      if (rest.length !== 2) fail(ctx, Exit.badArgs, new Error("Provide a name and a single member peerURL"))
      const [name, url] = rest as [string, string]
      const res = await call(ctx, () => client.request("POST", "/v2/members", { json: { peerURLs: [url] } }))
      const body = (await res.json()) as { id?: string; message?: string }
      if (res.status !== 201) fail(ctx, Exit.serverError, new Error(body.message ?? `HTTP ${res.status}`))
      out.line(`Added member named ${name} with ID ${body.id} to cluster`)
      const conf: string[] = []
      for (const m of await call(ctx, () => client.members())) for (const u of m.peerURLs) conf.push(`${m.id === body.id ? name : m.name}=${u}`)
      out.write(`\nETCD_NAME="${name}"\nETCD_INITIAL_CLUSTER="${conf.join(",")}"\nETCD_INITIAL_CLUSTER_STATE="existing"\n`)
      return
    }
    case "remove": {
      if (rest.length !== 1) fail(ctx, Exit.badArgs, new Error("Provide a single member ID"))
      const id = rest[0]!
      const members = await call(ctx, () => client.members())
      const byName = members.find((m) => m.name === id)
      if (byName) {
        out.err(`Found a member named ${byName.name}; if this is correct, please remove by ID, not by name.\n`)
        return Exit.badArgs
      }
      if (!members.some((m) => m.id === id)) {
        out.err(`Couldn't find a member in the cluster with an ID of ${id}.\n`)
        return Exit.badArgs
      }
      const res = await call(ctx, () => client.request("DELETE", `/v2/members/${id}`))
      if (res.status !== 204) fail(ctx, Exit.serverError, new Error(((await res.json()) as { message?: string }).message ?? `HTTP ${res.status}`))
      out.line(`Removed member ${id} from cluster`)
      return
    }
    case "update": {
      if (rest.length !== 2) fail(ctx, Exit.badArgs, new Error("Provide an ID and a list of comma separated peerURL (0xabcd http://example.com,http://example1.com)"))
      const [id, urls] = rest as [string, string]
      const res = await call(ctx, () => client.request("PUT", `/v2/members/${id}`, { json: { peerURLs: urls.split(",") } }))
      if (res.status !== 204) fail(ctx, Exit.serverError, new Error(((await res.json()) as { message?: string }).message ?? `HTTP ${res.status}`))
      out.line(`Updated member with ID ${id} in cluster`)
      return
    }
    default:
      out.line("NAME:\n   etcdctl member - member add, remove and list subcommands\n\nUSAGE:\n   etcdctl member command [command options] [arguments...]\n\nCOMMANDS:\n     list    enumerate existing cluster members\n     add     add a new member to the etcd cluster\n     remove  remove an existing member from the etcd cluster\n     update  update an existing member in the etcd cluster\n\nOPTIONS:\n   --help, -h  show help")
  }
}

/** Whether `tskv ctl` runs in v2 mode: ETCDCTL_API=2, or `--api 2` / `--api=2` among the leading flags. */
export function wantsV2(argv: readonly string[], env: NodeJS.ProcessEnv): boolean {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === "--api") return argv[i + 1] === "2"
    if (a.startsWith("--api=")) return a === "--api=2"
    if (!a.startsWith("-")) break
  }
  return env.ETCDCTL_API === "2"
}

export async function runCtlV2(argv: string[]): Promise<number> {
  try {
    const global = parseFlags(argv, GLOBALS, true)
    const g = (name: string): string => global.flags.get(name) ?? process.env[`ETCDCTL_${name.toUpperCase().replaceAll("-", "_")}`] ?? GLOBALS[name]!.def
    if (g("version") === "true") {
      out.line(`etcdctl version: ${VERSION}\nAPI version: 2`)
      return Exit.success
    }
    const [name, ...commandArgv] = global.rest
    const command = name === undefined ? undefined : commands[name]
    if (command === undefined) {
      out.line(`tskv ctl (ETCDCTL_API=2): ${Object.keys(commands).join(", ")}`)
      return name === undefined ? Exit.success : Exit.badArgs
    }
    const parsed = parseFlags(commandArgv, command.flags, false)
    const endpointsText = g("endpoints") || g("endpoint") || g("peers") || "http://127.0.0.1:2379,http://127.0.0.1:4001"
    const endpoints = endpointsText
      .split(",")
      .filter((e) => e !== "")
      .map((e) => (/^[a-z]+:\/\//.test(e) ? e : `http://${e}`))
    const client = new V2Client({
      endpoints,
      timeoutMs: durationMs(g("timeout"), "timeout"),
      certFile: g("cert-file"),
      keyFile: g("key-file"),
      caFile: g("ca-file"),
      username: g("username"),
    })
    const ctx: V2Ctx = {
      client,
      output: g("output"),
      args: parsed.args,
      flag: (f) => parsed.flags.get(f) ?? command.flags[f]?.def ?? "",
      flags: (f) => (parsed.flags.get(f) ?? "").split("\u0000").filter((v) => v !== ""),
      bool: (f) => (parsed.flags.get(f) ?? command.flags[f]?.def) === "true",
    }
    return (await command.run(ctx)) ?? Exit.success
  } catch (e) {
    if (e instanceof Exited) return e.code
    throw e
  }
}
