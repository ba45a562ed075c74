// What every command gets: its arguments and flags, the display, and a lazily
// made client configured from the global flags and ETCDCTL_* variables.
import { readFileSync } from "node:fs"
import { EtcdClient, type ClientOptions } from "../client"
import type { Display } from "./display"
import type { ParseSpecs } from "./flags"
import { parseGoDuration } from "./go_fmt"
import { CtlExit, ExitCode } from "./output"
import type { StdinLines } from "./stdin_lines"

export interface Ctx {
  /** Positional arguments after the command words (and after `--`, merged, unless the command keeps them apart). */
  args: string[]
  afterDash: string[] | undefined
  flag(name: string): string
  bool(name: string): boolean
  changed(name: string): boolean
  display: Display
  /** Timeout of one short command, from --command-timeout. */
  commandTimeoutMs: number
  client(): EtcdClient
  /** A separate client for other endpoints (closed by the caller). */
  clientFor(endpoints: string[]): EtcdClient
  endpoints(): string[]
  /** All of standard input (put without value, user passwd). */
  stdin(): Promise<string>
  /** Standard input line by line as it arrives (txn, watch -i). */
  stdinLines(): StdinLines
}

export interface Command {
  /** Only for commands outside help_table.ts (the v2 verbs): the others take their flags from the table. */
  flags?: ParseSpecs
  /** Keeps the arguments after `--` apart instead of merging them into args. */
  keepDash?: boolean
  run(ctx: Ctx): Promise<number | void>
}

export function durationMs(text: string, flag: string): number {
  const ms = parseGoDuration(text)
  if (ms === undefined) throw new CtlExit(ExitCode.error, `invalid argument "${text}" for "--${flag}" flag: time: invalid duration "${text}"`)
  return ms
}

export function clientOptions(get: (name: string) => string, endpoints: string[]): ClientOptions {
  const cacert = get("cacert")
  const cert = get("cert")
  const key = get("key")
  const read = (path: string): Buffer => {
    try {
      return readFileSync(path)
    } catch (e) {
      // etcdctl's mustClient: a TLS file it cannot read is a bad argument, in Go's words
      const code = (e as NodeJS.ErrnoException).code
      const why = code === "ENOENT" ? "no such file or directory" : code === "EACCES" ? "permission denied" : (e as Error).message
      throw new CtlExit(ExitCode.badArgs, `open ${path}: ${why}`)
    }
  }
  const secure = cacert !== "" || cert !== "" || key !== "" || get("insecure-transport") === "false"
  const opts: ClientOptions = {
    endpoints,
    callTimeoutMs: durationMs(get("command-timeout"), "command-timeout"),
  }
  if (secure) {
    opts.tls = {
      ca: cacert === "" ? undefined : read(cacert),
      cert: cert === "" ? undefined : read(cert),
      key: key === "" ? undefined : read(key),
      // as etcdctl: it only matters when TLS is on (certificates given or --insecure-transport=false)
      insecureSkipVerify: get("insecure-skip-tls-verify") === "true",
    }
  }
  const user = get("user")
  if (user !== "") {
    const password = get("password")
    const i = user.indexOf(":")
    if (password !== "") opts.auth = { username: user, password }
    else if (i >= 0) opts.auth = { username: user.slice(0, i), password: user.slice(i + 1) }
    else throw new CtlExit(ExitCode.error, "password is required (use --password or user:password)")
  }
  return opts
}
