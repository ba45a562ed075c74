// The composition root: `tskv [serve] [flags]` runs a member; `tskv ctl ...`
// (or the binary invoked as `tskvctl`) is the etcdctl-compatible client;
// `tskv certs ...` makes a PKI; `tskv snapshot save|restore|status` backs up
// and restores; `tskv version` prints versions. Owns signals and exit codes.

import { closeSync, openSync, writeSync } from "node:fs"
import { basename } from "node:path"
import type { Config } from "./config/config"
import { parseConfig } from "./config/parse"
import { versionText } from "./config/version"
import { openJournalWriter } from "./lib/journald"
import { createLogger, type LogLevel } from "./lib/logger"
import { BootstrapError } from "./server/bootstrap"
import { runMember } from "./member/run_member"
import { notifySystemdReady, notifySystemdStopping } from "./member/systemd_notify"

async function main(argv: string[]): Promise<number> {
  const invokedAs = basename(process.argv0 || argv[0] || "tskv")
  if (invokedAs === "tskvctl") return await runCtl(argv, "tskvctl")
  const [first, ...rest] = argv
  switch (first) {
    case "ctl":
      return await runCtl(rest, "tskv ctl")
    case "certs": {
      const { runCertsCommand } = await import("./certs/certs_command")
      return await runCertsCommand(rest)
    }
    case "snapshot": {
      const { runSnapshotHelp, runSnapshotCommand } = await import("./subcommand_help")
      return (await runSnapshotHelp(rest)) ?? (await runSnapshotCommand(rest))
    }
    case "help": {
      if (rest[0] === undefined || rest[0] === "serve") return await serve(["--help"])
      const { runHelp } = await import("./subcommand_help")
      return await runHelp(rest)
    }
    case "version":
      process.stdout.write(versionText())
      return 0
    case "serve":
      return await serve(rest)
    default:
      return await serve(argv)
  }
}

async function runCtl(argv: string[], program: string): Promise<number> {
  const { runCtl, snapshotCommands } = await import("./subcommand_help")
  return await runCtl(argv, { program, external: snapshotCommands })
}

/**
 * Flags that are parsed but that nothing in the member honours yet: accepted
 * only with their default value, any other value refused as "not supported
 * yet" (exit 2), so that no flag is silently ignored.
 */
const notBuilt = [
  "initial-election-tick-advance",
  "raft-read-timeout",
  "raft-write-timeout",
  "host-whitelist",
  "compact-hash-check-time",
  "warning-unary-request-duration",
  "experimental-compact-hash-check-enabled",
  "experimental-enable-lease-checkpoint-persist",
  "experimental-stop-grpc-service-on-defrag",
] as const

/** The same features enabled through --feature-gates. */
function unbuiltFeature(config: Config): string | undefined {
  const gates = [
    ["CompactHashCheck", config.features.compactHashCheck],
    ["LeaseCheckpointPersist", config.features.leaseCheckpointPersist],
    ["StopGRPCServiceOnDefrag", config.features.stopGrpcServiceOnDefrag],
  ] as const
  const on = gates.find(([, enabled]) => enabled)
  return on ? `--feature-gates=${on[0]}=true is not supported yet` : undefined
}

/** Where log lines go, and why not where they were asked to go (logged once the logger exists). */
interface LogWriter {
  write: (line: string) => void
  warning?: { msg: string; error: string }
}

/**
 * --log-outputs: 'default' and 'stderr' are stderr, 'stdout', journald ('systemd/journal', alone), or
 * files appended to. Without a journald socket, etcd 3.4 refuses to start ("can't find journal");
 * tskv logs to stderr instead and says so: a member that cannot log where it was told should still
 * serve, and under systemd stderr reaches the journal anyway.
 */
function logWriter(outputs: readonly string[]): LogWriter {
  if (outputs.includes("systemd/journal")) {
    const stderr = (line: string): void => void writeSync(2, line)
    try {
      return { write: openJournalWriter({ identifier: basename(process.execPath), fallback: stderr }) }
    } catch (e) {
      const error = `can't find journal (${e instanceof Error ? e.message : String(e)})`
      return { write: stderr, warning: { msg: "--log-outputs=systemd/journal: no journald socket, logging to standard error", error } }
    }
  }
  const fds = [...new Set(outputs.length === 0 ? ["default"] : outputs)].map((o) =>
    o === "default" || o === "stderr" ? 2 : o === "stdout" ? 1 : openSync(o, "a", 0o600),
  )
  process.on("exit", () => {
    for (const fd of fds) if (fd > 2) closeSync(fd)
  })
  return {
    write: (line) => {
      for (const fd of fds) writeSync(fd, line)
    },
  }
}

async function serve(argv: string[]): Promise<number> {
  const parsed = parseConfig(argv, process.env, { notBuilt })
  switch (parsed.kind) {
    case "help":
      process.stdout.write(parsed.text)
      return 0
    case "version":
      process.stdout.write(parsed.text)
      return 0
    case "error":
      process.stderr.write(`${parsed.message}\n`)
      return parsed.exitCode
    case "config":
      break
  }
  const config = parsed.config
  const refused = unbuiltFeature(config)
  if (refused !== undefined) {
    process.stderr.write(`${refused}\n`)
    return 2
  }
  const level: LogLevel = config.logLevel === "panic" ? "fatal" : config.logLevel
  let output: LogWriter
  try {
    output = logWriter(config.logOutputs)
  } catch (e) {
    process.stderr.write(`tskv: cannot open --log-outputs: ${e instanceof Error ? e.message : String(e)}\n`)
    return 1
  }
  const logger = createLogger({ level, write: output.write, fields: { name: config.name }, format: config.logFormat })
  if (output.warning !== undefined) logger.warn(output.warning.msg, { error: output.warning.error })
  let member: Awaited<ReturnType<typeof runMember>>
  try {
    member = await runMember(config, logger)
  } catch (e) {
    const message = e instanceof BootstrapError || e instanceof Error ? e.message : String(e)
    logger.error("cannot start the member", { error: message })
    process.stderr.write(`tskv: ${message}\n`)
    return 1
  }
  // etcd's moment: once the member published its attributes through raft (ReadyNotify).
  void member.server.readyNotify().then(() => {
    logger.info("ready to serve client requests", { "member-id": member.server.memberId.toString(16) })
    notifySystemdReady(logger)
  })
  return await new Promise<number>((resolve) => {
    let signalled = false
    const onSignal = (signal: NodeJS.Signals): void => {
      if (signalled) return
      signalled = true
      logger.info("received signal; shutting down", { signal })
      notifySystemdStopping(logger)
      void member.stop().then(
        () => resolve(0),
        (e) => {
          logger.error("shutdown failed", { error: e })
          resolve(1)
        },
      )
    }
    process.on("SIGTERM", onSignal)
    process.on("SIGINT", onSignal)
    member.server.onFatal = (e) => {
      logger.error("member stopped", { error: e })
      void member.stop().finally(() => resolve(1))
    }
  })
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`tskv: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`)
    process.exit(1)
  },
)
