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
import { leadingWords, parseArgs } from "./flags"
import { helpText, topicOf, versionLines, type HelpTopic } from "./help"
import { COMMAND_SPECS, GLOBAL_FLAGS, commandFlags } from "./help_table"
import type { ParseSpecs } from "./flags"
import { CtlExit, ExitCode, errorText, out } from "./output"
import { StdinLines } from "./stdin_lines"
import { runCtlV2, wantsV2 } from "./v2api"

export interface CtlOptions {
  /** How the user called us, for the help: "tskv ctl" or "tskvctl". */
  program?: string
  /**
   * Commands another room implements (`snapshot restore`, `snapshot status`),
   * handed in by the composition root: they get the positionals and the
   * flags given, parsed with this table.
   */
  external?: Record<string, (args: string[], flags: Map<string, string>) => Promise<number>>
}

interface Found {
  name: string
  command: Command
  /** The flags the parser accepts: the help table's, or a v2 verb's own. */
  flags: ParseSpecs
}

/** Finds the command named by the longest run of leading words. */
function findCommand(words: string[], external: CtlOptions["external"]): Found | undefined {
  for (let n = Math.min(words.length, 2); n >= 1; n--) {
    const name = words.slice(0, n).join(" ")
    const run = external?.[name]
    const command: Command | undefined = run !== undefined ? externalCommand(name, run) : commands[name]
    if (command === undefined) continue
    return { name, command, flags: commandFlags(name) ?? command.flags ?? {} }
  }
  return undefined
}

function externalCommand(name: string, run: (args: string[], flags: Map<string, string>) => Promise<number>): Command {
  return {
    async run(ctx) {
      const given = new Map<string, string>()
      for (const flag of Object.keys(COMMAND_SPECS[name]?.flags ?? {})) if (ctx.changed(flag)) given.set(flag, ctx.flag(flag))
      if (ctx.changed("write-out")) given.set("write-out", ctx.flag("write-out"))
      return await run(ctx.args, given)
    },
  }
}

function printHelp(topic: HelpTopic, program: string): number {
  out.write(helpText(topic, program))
  return 0
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

export async function runCtl(argv: string[], options: CtlOptions = {}): Promise<number> {
  const program = options.program ?? "tskv ctl"
  if (wantsV2(argv, process.env)) return await runCtlV2(argv)
  let client: EtcdClient | undefined
  let topic: HelpTopic = { kind: "root" }
  try {
    const words = leadingWords(argv, GLOBAL_FLAGS)
    if (words[0] === "help") {
      topic = { kind: "leaf", name: "help" }
      if (parseArgs(argv, GLOBAL_FLAGS).values.get("help") === "true") return printHelp(topic, program)
      const asked = topicOf(words.slice(1))
      if (asked === undefined) out.err(`Unknown help topic [\`${words.slice(1).join(" ")}\`]\n`)
      return printHelp(asked ?? { kind: "root" }, program)
    }
    const found = findCommand(words, options.external)
    if (found === undefined) {
      const group = topicOf(words.slice(0, 1))
      if (words.length === 0 || group?.kind === "group") {
        if (group !== undefined) topic = group
        // parse the global flags (errors as etcdctl's); a bare group word prints its help, as cobra does
        const parsed = parseArgs(argv.filter((a) => a !== "--version"), GLOBAL_FLAGS)
        if (words.length === 0 && argv.includes("--version") && parsed.values.get("help") !== "true") {
          for (const line of versionLines()) out.line(line)
          return 0
        }
        return printHelp(topic, program)
      }
      out.err(`Error: unknown command "${words[0]}" for "etcdctl"\nRun 'etcdctl --help' for usage.\n`)
      throw new CtlExit(ExitCode.error, `unknown command "${words[0]}" for "etcdctl"`)
    }
    topic = topicOf(found.name.split(" ")) ?? topic
    const specs: ParseSpecs = { ...GLOBAL_FLAGS, ...found.flags }
    const parsed = parseArgs(argv, specs)
    applyEnv(parsed.values, parsed.changed, process.env)
    const get = (name: string): string => parsed.values.get(name) ?? ""
    if (get("help") === "true") return printHelp(topic, program)
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
      else if (e.opts.usage === true) {
        // cobra prints the command's usage to stdout before the error (twice on stderr, as etcdctl)
        out.write(helpText(topic, program))
        out.err(`Error: ${e.message}\n\nError: ${e.message}\n`)
      }
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
