// get, put, del, txn, compaction: the KV commands of etcdctl.
import {
  Compare_CompareResult,
  Compare_CompareTarget,
  RangeRequest_SortOrder,
  RangeRequest_SortTarget,
  type CompareInit,
  type DeleteRangeRequestInit,
  type PutRequestInit,
  type RangeRequestInit,
  type RequestOpInit,
} from "../pb"
import type { Command } from "./context"
import { showDel, showGet, showPut, showTxn } from "./display"
import { COMMAND_SPECS } from "./help_table"
import { parseArgs } from "./flags"
import { goQuote } from "./go_fmt"
import { CtlExit, ExitCode, errorText, out } from "./output"
import type { StdinLines } from "./stdin_lines"

const enc = new TextEncoder()
const bytes = (s: string): Uint8Array => enc.encode(s)

/** The end of the range of keys that start with `prefix` ("\0" for all keys). */
export function prefixEnd(prefix: Uint8Array): Uint8Array {
  const end = Uint8Array.from(prefix)
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1
      return end.subarray(0, i + 1)
    }
  }
  return Uint8Array.of(0)
}

/** strconv.ParseInt's error text. */
export function parseGoInt(s: string, base: 10 | 16): { value: bigint } | { error: string } {
  const re = base === 10 ? /^[+-]?\d+$/ : /^[+-]?[0-9a-fA-F]+$/
  if (!re.test(s)) return { error: `strconv.ParseInt: parsing ${JSON.stringify(s)}: invalid syntax` }
  const neg = s.startsWith("-")
  const digits = s.replace(/^[+-]/, "")
  const v = BigInt(base === 16 ? `0x${digits}` : digits) * (neg ? -1n : 1n)
  if (v > 0x7fffffffffffffffn || v < -0x8000000000000000n) {
    return { error: `strconv.ParseInt: parsing ${JSON.stringify(s)}: value out of range` }
  }
  return { value: v }
}

/** etcdctl's getGetOp. */
function getOp(args: string[], flag: (n: string) => string): RangeRequestInit {
  if (args.length === 0) {
    throw new CtlExit(ExitCode.badArgs, "get command needs one argument as key and an optional argument as range_end")
  }
  const prefix = flag("prefix") === "true"
  const fromKey = flag("from-key") === "true"
  if (prefix && fromKey) throw new CtlExit(ExitCode.badArgs, "`--prefix` and `--from-key` cannot be set at the same time, choose one")
  const req: RangeRequestInit = {}
  const consistency = flag("consistency")
  if (consistency === "s") req.serializable = true
  else if (consistency !== "l") throw new CtlExit(ExitCode.badFeature, `unknown consistency flag ${JSON.stringify(consistency)}`)
  let key = bytes(args[0]!)
  if (args.length > 1) {
    if (prefix || fromKey) {
      throw new CtlExit(ExitCode.badArgs, "too many arguments, only accept one argument when `--prefix` or `--from-key` is set")
    }
    req.rangeEnd = bytes(args[1]!)
  }
  req.limit = Number(flag("limit"))
  req.revision = Number(flag("rev"))
  const orders: Record<string, RangeRequest_SortOrder> = {
    ASCEND: RangeRequest_SortOrder.ASCEND,
    DESCEND: RangeRequest_SortOrder.DESCEND,
    "": RangeRequest_SortOrder.NONE,
  }
  const order = orders[flag("order")]
  if (order === undefined) throw new CtlExit(ExitCode.badFeature, `bad sort order ${flag("order")}`)
  const targets: Record<string, RangeRequest_SortTarget> = {
    CREATE: RangeRequest_SortTarget.CREATE,
    KEY: RangeRequest_SortTarget.KEY,
    MODIFY: RangeRequest_SortTarget.MOD,
    VALUE: RangeRequest_SortTarget.VALUE,
    VERSION: RangeRequest_SortTarget.VERSION,
    "": RangeRequest_SortTarget.KEY,
  }
  const target = targets[flag("sort-by")]
  if (target === undefined) throw new CtlExit(ExitCode.badFeature, `bad sort target ${flag("sort-by")}`)
  // clientv3.WithSort: ascending by key is the server's order anyway.
  req.sortOrder = target === RangeRequest_SortTarget.KEY && order === RangeRequest_SortOrder.ASCEND ? RangeRequest_SortOrder.NONE : order
  req.sortTarget = target
  if (prefix) {
    if (key.length === 0) {
      key = Uint8Array.of(0)
      req.rangeEnd = Uint8Array.of(0)
    } else req.rangeEnd = prefixEnd(key)
  }
  if (fromKey) {
    if (key.length === 0) key = Uint8Array.of(0)
    req.rangeEnd = Uint8Array.of(0)
  }
  req.key = key
  if (flag("keys-only") === "true") req.keysOnly = true
  if (flag("count-only") === "true") req.countOnly = true
  return req
}

export const getCommand: Command = {
  async run(ctx) {
    const req = getOp(ctx.args, ctx.flag)
    if (ctx.bool("count-only") && ctx.display.format !== "fields") {
      throw new CtlExit(ExitCode.badArgs, "--count-only is only for `--write-out=fields`")
    }
    if (ctx.bool("print-value-only")) ctx.display.valueOnly = true
    showGet(ctx.display, await ctx.client().kv.range(req))
  },
}

/** etcdctl's getPutOp; `stdinValue` is read only when needed. */
function putOp(args: string[], flag: (n: string) => string, stdinValue: string | undefined): PutRequestInit {
  if (args.length === 0) throw new CtlExit(ExitCode.badArgs, "put command needs 1 argument and input from stdin or 2 arguments")
  const ignoreValue = flag("ignore-value") === "true"
  if (ignoreValue && args.length > 1) throw new CtlExit(ExitCode.badArgs, "put command needs only 1 argument when 'ignore-value' is set")
  let value = args[1]
  if (value === undefined && !ignoreValue) {
    if (stdinValue === undefined || stdinValue === "") {
      throw new CtlExit(ExitCode.badArgs, "put command needs 1 argument and input from stdin or 2 arguments")
    }
    value = stdinValue
  }
  const lease = parseGoInt(flag("lease"), 16)
  if ("error" in lease) throw new CtlExit(ExitCode.badArgs, `bad lease ID (${lease.error}), expecting ID in Hex`)
  const req: PutRequestInit = { key: bytes(args[0]!), value: bytes(value ?? "") }
  if (lease.value !== 0n) req.lease = lease.value
  if (flag("prev-kv") === "true") req.prevKv = true
  if (ignoreValue) req.ignoreValue = true
  if (flag("ignore-lease") === "true") req.ignoreLease = true
  return req
}

export const putCommand: Command = {
  async run(ctx) {
    const needStdin = ctx.args.length === 1 && !ctx.bool("ignore-value")
    const req = putOp(ctx.args, ctx.flag, needStdin ? await ctx.stdin() : undefined)
    showPut(ctx.display, await ctx.client().kv.put(req))
  },
}

function delOp(args: string[], flag: (n: string) => string): DeleteRangeRequestInit {
  if (args.length === 0 || args.length > 2) {
    throw new CtlExit(ExitCode.badArgs, "del command needs one argument as key and an optional argument as range_end")
  }
  const prefix = flag("prefix") === "true"
  const fromKey = flag("from-key") === "true"
  if (prefix && fromKey) throw new CtlExit(ExitCode.badArgs, "`--prefix` and `--from-key` cannot be set at the same time, choose one")
  let key = bytes(args[0]!)
  const req: DeleteRangeRequestInit = {}
  if (args.length > 1) {
    if (prefix || fromKey) {
      throw new CtlExit(ExitCode.badArgs, "too many arguments, only accept one argument when `--prefix` or `--from-key` is set")
    }
    req.rangeEnd = bytes(args[1]!)
  }
  if (prefix) {
    if (key.length === 0) {
      key = Uint8Array.of(0)
      req.rangeEnd = Uint8Array.of(0)
    } else req.rangeEnd = prefixEnd(key)
  }
  if (fromKey) {
    if (key.length === 0) key = Uint8Array.of(0)
    req.rangeEnd = Uint8Array.of(0)
  }
  req.key = key
  if (flag("prev-kv") === "true") req.prevKv = true
  return req
}

export const delCommand: Command = {
  async run(ctx) {
    showDel(ctx.display, await ctx.client().kv.deleteRange(delOp(ctx.args, ctx.flag)))
  },
}

export const compactionCommand: Command = {
  async run(ctx) {
    if (ctx.args.length !== 1) throw new CtlExit(ExitCode.badArgs, "compaction command needs 1 argument")
    const rev = parseGoInt(ctx.args[0]!, 10)
    if ("error" in rev) throw new CtlExit(ExitCode.error, rev.error)
    await ctx.client().kv.compact({ revision: Number(rev.value), physical: ctx.bool("physical") })
    out.line(`compacted revision ${rev.value}`)
  },
}

// ---- txn

/** etcdctl's argify: words, "double-quoted" (Go-unquoted) and 'single-quoted' strings. */
export function argify(line: string): string[] {
  const re = /"(?:[^"\\]|\\.)*"|'[^']*'|[^'"\s]\S*[^'"\s]?/g
  const args: string[] = []
  for (const m of line.matchAll(re)) {
    const w = m[0]
    if (w.startsWith('"')) {
      try {
        args.push(JSON.parse(w) as string)
      } catch {
        args.push(w)
      }
    } else if (w.startsWith("'")) args.push(w.slice(1, -1))
    else args.push(w)
  }
  return args
}

/** Reads a Go %q-quoted string at the start of `s`: [value, rest] or undefined. */
function scanQuoted(s: string): [string, string] | undefined {
  const m = /^\s*("(?:[^"\\]|\\.)*"|`[^`]*`)/.exec(s)
  if (m === null) return undefined
  const q = m[1]!
  let v: string
  if (q.startsWith("`")) v = q.slice(1, -1)
  else {
    try {
      v = JSON.parse(q) as string
    } catch {
      return undefined
    }
  }
  return [v, s.slice(m[0].length)]
}

const RESULTS: Record<string, Compare_CompareResult> = {
  "=": Compare_CompareResult.EQUAL,
  "!=": Compare_CompareResult.NOT_EQUAL,
  "<": Compare_CompareResult.LESS,
  ">": Compare_CompareResult.GREATER,
}

/** etcdctl's parseCompare: `target("key") op "value"`. */
export function parseCompare(line: string): CompareInit {
  const open = line.indexOf("(")
  if (open < 0) throw new CtlExit(ExitCode.invalidInput, `malformed comparison: ${line}`)
  const target = line.slice(0, open)
  const first = scanQuoted(line.slice(open + 1))
  const afterKey = first === undefined ? undefined : /^\)\s+(\S+)\s+/.exec(first[1])
  const second = first === undefined || afterKey === null || afterKey === undefined ? undefined : scanQuoted(first[1].slice(afterKey[0].length))
  if (first === undefined || afterKey === null || afterKey === undefined || second === undefined) {
    const got = `${target}(${goQuote(first?.[0] ?? "")}) ${afterKey?.[1] ?? ""} ${goQuote(second?.[0] ?? "")}`
    throw new CtlExit(ExitCode.invalidInput, `malformed comparison: ${line}; got ${got}`)
  }
  const key = first[0]
  const op = afterKey[1]!
  const val = second[0]
  const result = RESULTS[op]
  if (result === undefined) throw new CtlExit(ExitCode.invalidInput, `malformed comparison: ${line} (unknown op ${op})`)
  const cmp: CompareInit = { key: bytes(key), result }
  const int = (base: 10 | 16): bigint => {
    const r = parseGoInt(val, base)
    if ("error" in r) throw new CtlExit(ExitCode.invalidInput, r.error)
    return r.value
  }
  switch (target) {
    case "ver":
    case "version":
      return { ...cmp, target: Compare_CompareTarget.VERSION, version: Number(int(10)) }
    case "c":
    case "create":
      return { ...cmp, target: Compare_CompareTarget.CREATE, createRevision: Number(int(10)) }
    case "m":
    case "mod":
      return { ...cmp, target: Compare_CompareTarget.MOD, modRevision: Number(int(10)) }
    case "val":
    case "value":
      return { ...cmp, target: Compare_CompareTarget.VALUE, value: bytes(val) }
    case "lease":
      return { ...cmp, target: Compare_CompareTarget.LEASE, lease: int(16) }
    default:
      throw new CtlExit(ExitCode.invalidInput, `malformed comparison: ${line} (unknown target ${target})`)
  }
}

/** etcdctl's parseRequestUnion: `get|put|del` with their own flags. */
export function parseRequestOp(line: string): RequestOpInit {
  const words = argify(line)
  const [verb, ...rest] = words
  const fail = (msg: string): never => {
    throw new CtlExit(ExitCode.invalidInput, `invalid txn request: ${msg}`)
  }
  try {
    switch (verb) {
      case "get": {
        const p = parseArgs(rest, COMMAND_SPECS.get!.flags)
        return { requestRange: getOp(p.positionals, (n) => p.values.get(n) ?? "") }
      }
      case "put": {
        const p = parseArgs(rest, COMMAND_SPECS.put!.flags)
        return { requestPut: putOp(p.positionals, (n) => p.values.get(n) ?? "", undefined) }
      }
      case "del":
      case "delete": {
        const p = parseArgs(rest, COMMAND_SPECS.del!.flags)
        return { requestDeleteRange: delOp(p.positionals, (n) => p.values.get(n) ?? "") }
      }
      default:
        return fail(line)
    }
  } catch (e) {
    if (e instanceof CtlExit && e.code !== ExitCode.invalidInput) throw new CtlExit(e.code, e.message)
    throw e
  }
}

/** The next line of standard input, trimmed; etcdctl exits with "EOF" when input ends first. */
async function nextLine(lines: StdinLines): Promise<string> {
  const line = await lines.next()
  if (line === undefined) throw new CtlExit(ExitCode.invalidInput, "EOF")
  return line.trim()
}

/** Reads lines up to an empty one, parsing each as it arrives (a bad line ends the command at once). */
async function readSection<T>(lines: StdinLines, parse: (line: string) => T): Promise<T[]> {
  const items: T[] = []
  for (let line = await nextLine(lines); line !== ""; line = await nextLine(lines)) items.push(parse(line))
  return items
}

export const txnCommand: Command = {
  async run(ctx) {
    if (ctx.args.length !== 0) throw new CtlExit(ExitCode.badArgs, "txn command does not accept argument")
    const interactive = ctx.bool("interactive")
    const lines = ctx.stdinLines()
    const prompt = (s: string): void => {
      if (interactive) out.line(s)
    }
    prompt("compares:")
    const compare = await readSection(lines, parseCompare)
    prompt("success requests (get, put, del):")
    const success = await readSection(lines, parseRequestOp)
    prompt("failure requests (get, put, del):")
    const failure = await readSection(lines, parseRequestOp)
    let res
    try {
      res = await ctx.client().kv.txn({ compare, success, failure })
    } catch (e) {
      throw new CtlExit(ExitCode.error, errorText(e))
    }
    showTxn(ctx.display, res)
  },
}
