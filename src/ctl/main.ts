// `tskv ctl` (or the binary invoked as `tskvctl`): an etcdctl 3.4-compatible
// client. Same commands, flags, ETCDCTL_* variables, output formats and exit
// codes as etcdctl; the old v2 verbs are mapped onto the v3 API (see cmd_v2.ts),
// and with ETCDCTL_API=2 (or --api 2) they speak the v2 API (v2api.ts).
import type { EtcdClient } from "../client"
import { TskvError } from "../lib/errors"
import { LoggingClient } from "./logging_client"
import { commands } from "./commands"
import { clientOptions, durationMs, type Command, type Ctx } from "./context"
import { parseFormat, type Display } from "./display"
import { GLOBAL_FLAGS, leadingWords, parseArgs, type FlagSpecs } from "./flags"
import { CtlExit, ExitCode, errorText, out } from "./output"
import { StdinLines } from "./stdin_lines"
import { runCtlV2, wantsV2 } from "./v2api"

/** Finds the command named by the longest run of leading words. */
function findCommand(words: string[]): { name: string; command: Command } | undefined {
  for (let n = Math.min(words.length, 2); n >= 1; n--) {
    const name = words.slice(0, n).join(" ")
    const command = commands[name]
    if (command !== undefined) return { name, command }
  }
  return undefined
}

/** pkg/flags.SetPflagsFromEnv: ETCDCTL_<FLAG> for every global flag not given. */
function applyEnv(values: Map<string, string>, changed: Set<string>, env: NodeJS.ProcessEnv): void {
  for (const name of Object.keys(GLOBAL_FLAGS)) {
    const v = env[`ETCDCTL_${name.toUpperCase().replaceAll("-", "_")}`]
    if (v === undefined || v === "") continue
    if (changed.has(name)) {
      const stamp = new Date().toISOString().replace("T", " ").replace("Z", "000").slice(0, 26)
      throw new CtlExit(
        ExitCode.error,
        `${stamp} C | pkg/flags: conflicting environment variable "ETCDCTL_${name.toUpperCase().replaceAll("-", "_")}" is shadowed by corresponding command-line flag (either unset environment variable or disable flag)`,
        { silent: true },
      )
    }
    values.set(name, v)
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = []
  for await (const c of process.stdin) chunks.push(Buffer.from(c as Uint8Array))
  return Buffer.concat(chunks).toString("utf8")
}

export async function runCtl(argv: string[]): Promise<number> {
  if (wantsV2(argv, process.env)) return await runCtlV2(argv)
  let client: EtcdClient | undefined
  try {
    const words = leadingWords(argv, GLOBAL_FLAGS)
    const found = findCommand(words)
    if (found === undefined) {
      if (words.length === 0) {
        out.line("tskv ctl: an etcdctl-compatible client. Usage: tskv ctl [global flags] <command> [flags] [args]")
        out.line(`Commands: ${Object.keys(commands).join(", ")}`)
        return 0
      }
      out.err(`Error: unknown command "${words[0]}" for "etcdctl"\nRun 'etcdctl --help' for usage.\n`)
      throw new CtlExit(ExitCode.error, `unknown command "${words[0]}" for "etcdctl"`)
    }
    const specs: FlagSpecs = { ...GLOBAL_FLAGS, ...found.command.flags }
    const parsed = parseArgs(argv, specs)
    applyEnv(parsed.values, parsed.changed, process.env)
    const get = (name: string): string => parsed.values.get(name) ?? ""
    if (get("help") === "true") {
      const flags = Object.keys(found.command.flags ?? {}).map((f) => `--${f}`)
      out.line(`NAME:\n\t${found.name}\n\nUSAGE:\n\ttskv ctl ${found.name} [options]${flags.length > 0 ? `\n\nOPTIONS:\n\t${flags.join("\n\t")}` : ""}`)
      return 0
    }
    // drop the command words from the positionals
    const positionals = [...parsed.positionals]
    for (const w of found.name.split(" ")) {
      const i = positionals.indexOf(w)
      if (i >= 0) positionals.splice(i, 1)
    }
    const display: Display = { format: parseFormat(get("write-out")), hex: get("hex") === "true", valueOnly: false }
    const endpoints = get("endpoints")
      .split(",")
      .filter((e) => e !== "")
    let stdinText: Promise<string> | undefined
    let stdinLines: StdinLines | undefined
    const ctx: Ctx = {
      args: found.command.keepDash === true ? positionals : [...positionals, ...(parsed.afterDash ?? [])],
      afterDash: parsed.afterDash,
      flag: get,
      bool: (name) => get(name) === "true",
      changed: (name) => parsed.changed.has(name),
      display,
      commandTimeoutMs: durationMs(get("command-timeout"), "command-timeout"),
      endpoints: () => endpoints,
      client: () => {
        if (client === undefined) {
          durationMs(get("dial-timeout"), "dial-timeout")
          client = new LoggingClient(clientOptions(get, endpoints))
        }
        return client
      },
      clientFor: (eps) => {
        return new LoggingClient(clientOptions(get, eps))
      },
      stdin: () => (stdinText ??= readStdin()),
      stdinLines: () => (stdinLines ??= new StdinLines(process.stdin as AsyncIterable<Uint8Array>)),
    }
    const code = await found.command.run(ctx)
    return code ?? 0
  } catch (e) {
    if (e instanceof CtlExit) {
      if (e.opts.silent === true) out.err(`${e.message}\n`)
      else if (e.opts.usage === true) out.err(`Error: ${e.message}\n\nError: ${e.message}\n`)
      else out.err(`Error: ${e.message}\n`)
      return e.code
    }
    out.err(`Error: ${errorText(e)}\n`)
    // clientv3 authenticates while connecting: etcdctl exits as for a bad connection
    return e instanceof TskvError && e.code === "authFailed" ? ExitCode.badConnection : ExitCode.error
  } finally {
    client?.close()
  }
}
