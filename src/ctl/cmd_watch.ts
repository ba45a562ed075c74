// watch [key|prefix] [range_end] [--] [exec-command arg1 arg2 ...], and -i
// (interactive: `watch <args>` lines on standard input).
import { spawnSync } from "node:child_process"
import type { EtcdClient, WatchStream } from "../client"
import type { WatchCreateRequestInit, WatchResponse } from "../pb"
import { parseArgs } from "./flags"
import { COMMAND_SPECS } from "./help_table"
import { argify, prefixEnd } from "./cmd_kv"
import type { Command, Ctx } from "./context"
import { showWatch } from "./display"
import { goQuote } from "./go_fmt"
import { CtlExit, ExitCode, errorText, out } from "./output"
import { codeOfMessage, TskvError } from "../lib/errors"

const enc = new TextEncoder()

interface WatchArgs {
  key: string
  rangeEnd: string | undefined
  prefix: boolean
  rev: number
  prevKv: boolean
}

function createRequest(w: WatchArgs): WatchCreateRequestInit {
  let key = enc.encode(w.key)
  let rangeEnd: Uint8Array | undefined = w.rangeEnd === undefined ? undefined : enc.encode(w.rangeEnd)
  if (w.prefix) {
    if (key.length === 0) {
      key = Uint8Array.of(0)
      rangeEnd = Uint8Array.of(0)
    } else rangeEnd = prefixEnd(key)
  }
  const req: WatchCreateRequestInit = { key, startRevision: w.rev, prevKv: w.prevKv }
  if (rangeEnd !== undefined) req.rangeEnd = rangeEnd
  return req
}

function watchArgsOf(positionals: string[], flag: (n: string) => string): WatchArgs {
  const envKey = process.env.ETCDCTL_WATCH_KEY ?? ""
  const envRange = process.env.ETCDCTL_WATCH_RANGE_END ?? ""
  const args = [...positionals]
  if (envKey !== "") args.unshift(envKey)
  if (envRange !== "") args.splice(1, 0, envRange)
  if (args.length < 1 || args.length > 2) throw new CtlExit(ExitCode.badArgs, "bad number of arguments")
  const prefix = flag("prefix") === "true"
  if (args.length === 2 && prefix) throw new CtlExit(ExitCode.badArgs, "`range_end` and `--prefix` are mutually exclusive")
  return { key: args[0]!, rangeEnd: args[1], prefix, rev: Number(flag("rev")), prevKv: flag("prev-kv") === "true" }
}

/** Prints every response of one watcher until it is canceled; runs execArgs per event. */
async function printWatch(ctx: Ctx, stream: WatchStream, req: WatchCreateRequestInit, execArgs: string[]): Promise<void> {
  stream.create(req)
  try {
    for await (const r of stream as AsyncIterable<WatchResponse>) {
      if (r.created && r.events.length === 0 && !r.canceled) continue
      // clientv3's IsProgressNotify
      if (r.events.length === 0 && !r.canceled && r.compactRevision === 0 && (r.header?.revision ?? 0) !== 0) {
        out.line(`progress notify: ${r.header?.revision ?? 0}`)
      }
      if (r.canceled) {
        let reason = r.cancelReason
        if (r.compactRevision > 0) reason = new TskvError("compacted").message
        else if (reason !== "" && codeOfMessage(reason) === undefined) reason = reason || "watch canceled"
        out.err(`watch was canceled (${reason})\n`)
      }
      showWatch(ctx.display, { header: r.header, events: r.events, compactRevision: r.compactRevision, canceled: r.canceled, created: false })
      for (const ev of r.events) {
        if (execArgs.length === 0) continue
        const env = {
          ...process.env,
          ETCD_WATCH_REVISION: String(r.header?.revision ?? 0),
          ETCD_WATCH_EVENT_TYPE: goQuote(ev.type === 1 ? "DELETE" : "PUT"),
          ETCD_WATCH_KEY: goQuote(ev.kv?.key ?? new Uint8Array()),
          ETCD_WATCH_VALUE: goQuote(ev.kv?.value ?? new Uint8Array()),
        }
        const res = spawnSync(execArgs[0]!, execArgs.slice(1), { env, stdio: "inherit" })
        if (res.status !== 0) {
          const why = res.error !== undefined ? res.error.message : `exit status ${res.status ?? 1}`
          out.err(`command [${execArgs.join(" ")}] error (${why})\n`)
          process.exit(1)
        }
      }
      if (r.canceled) break
    }
  } catch (e) {
    out.err(`watch was canceled (${errorText(e)})\n`)
  } finally {
    stream.close()
  }
}

const errBadArgsNum = "bad number of arguments"

/**
 * etcdctl's parseWatchArgs + getWatchChan for one interactive line (`args`
 * without the leading "watch"): the watch request and exec command, or the
 * reason the line is ignored. Malformed flags end the command (exit 128).
 */
function interactiveWatch(args: string[]): { req: WatchCreateRequestInit; execArgs: string[] } | { invalid: string } {
  const envKey = process.env.ETCDCTL_WATCH_KEY ?? ""
  const envRange = process.env.ETCDCTL_WATCH_RANGE_END ?? ""
  const dash = args.indexOf("--")
  if (dash >= 0 && dash === args.length - 1) throw new CtlExit(ExitCode.badArgs, `${errBadArgsNum} (found separator --, but no commands)`)
  let p
  try {
    p = parseArgs(args, COMMAND_SPECS.watch!.flags)
  } catch (e) {
    throw new CtlExit(ExitCode.badArgs, errorText(e))
  }
  if (dash < 0 && envKey === "" && p.positionals.length < 1) throw new CtlExit(ExitCode.badArgs, errBadArgsNum)
  if (dash < 0 && envKey !== "" && p.positionals.length > 0) throw new CtlExit(ExitCode.badArgs, `${errBadArgsNum} (found conflicting environment key)`)
  const keys = envKey === "" ? p.positionals : [envKey, ...(envRange === "" ? [] : [envRange]), ...p.positionals]
  if (keys.length < 1) return { invalid: errBadArgsNum }
  const prefix = p.values.get("prefix") === "true"
  // getWatchChan: a range end only when exactly two keys are given; more are ignored
  const rangeEnd = keys.length === 2 ? keys[1] : undefined
  if (rangeEnd !== undefined && prefix) return { invalid: "`range_end` and `--prefix` are mutually exclusive" }
  const w: WatchArgs = { key: keys[0]!, rangeEnd, prefix, rev: Number(p.values.get("rev")), prevKv: p.values.get("prev-kv") === "true" }
  return { req: createRequest(w), execArgs: p.afterDash ?? [] }
}

/**
 * watch -i: each `watch ...` line starts a watcher as soon as it is read, and
 * its events print while the next line is awaited; `progress` asks every
 * watcher for a progress notification. Ends (exit 3) when input ends.
 */
async function watchInteractive(ctx: Ctx, client: EtcdClient): Promise<never> {
  const lines = ctx.stdinLines()
  const streams = new Set<WatchStream>()
  for (;;) {
    const line = await lines.next()
    if (line === undefined) throw new CtlExit(ExitCode.invalidInput, "Error reading watch request line: EOF")
    const args = argify(line)
    if (args.length < 1) {
      out.err(`Invalid command: ${line} (watch and progress supported)\n`)
      continue
    }
    if (args[0] === "progress") {
      for (const s of streams) s.requestProgress()
      continue
    }
    if (args[0] !== "watch") {
      out.err(`Invalid command ${line} (only support watch)\n`)
      continue
    }
    if (args.length < 2 && (process.env.ETCDCTL_WATCH_KEY ?? "") === "") {
      out.err(`Invalid command ${line} (command type or key is not provided)\n`)
      continue
    }
    const w = interactiveWatch(args.slice(1))
    if ("invalid" in w) {
      out.err(`Invalid command ${line} (${w.invalid})\n`)
      continue
    }
    const stream = client.watch({ requireLeader: true })
    streams.add(stream)
    void printWatch(ctx, stream, w.req, w.execArgs).finally(() => streams.delete(stream))
  }
}

export const watchCommand: Command = {
  keepDash: true,
  async run(ctx) {
    if ((process.env.ETCDCTL_WATCH_KEY ?? "") === "" && (process.env.ETCDCTL_WATCH_RANGE_END ?? "") !== "") {
      throw new CtlExit(
        ExitCode.badArgs,
        `ETCDCTL_WATCH_KEY is empty but got ETCDCTL_WATCH_RANGE_END=${JSON.stringify(process.env.ETCDCTL_WATCH_RANGE_END)}`,
      )
    }
    const client = ctx.client()
    if (ctx.bool("interactive")) return watchInteractive(ctx, client)
    const w = watchArgsOf(ctx.args, ctx.flag)
    await printWatch(ctx, client.watch({ requireLeader: true }), createRequest(w), ctx.afterDash ?? [])
    throw new CtlExit(ExitCode.interrupted, "watch is canceled by the server")
  },
}
