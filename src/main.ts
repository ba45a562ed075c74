// The composition root: `tskv [serve] [flags]` runs a member; `tskv ctl ...`
// (or the binary invoked as `tskvctl`) is the etcdctl-compatible client;
// `tskv certs ...` makes a PKI; `tskv version` prints versions. Owns signals
// and exit codes.

import { basename } from "node:path"
import { parseConfig } from "./config/parse"
import { versionText } from "./config/version"
import { createLogger, type LogLevel } from "./lib/logger"
import { BootstrapError } from "./server/bootstrap"
import { runMember } from "./server/run_member"

async function main(argv: string[]): Promise<number> {
  const invokedAs = basename(process.argv0 || argv[0] || "tskv")
  if (invokedAs === "tskvctl") return await runCtl(argv)
  const [first, ...rest] = argv
  switch (first) {
    case "ctl":
      return await runCtl(rest)
    case "certs": {
      const { runCertsCommand } = await import("./certs/certs_command")
      return await runCertsCommand(rest)
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

async function runCtl(argv: string[]): Promise<number> {
  const ctl = await import("./ctl/main").catch(() => undefined)
  if (!ctl) {
    process.stderr.write("tskv ctl is not built into this binary yet\n")
    return 1
  }
  return await ctl.runCtl(argv)
}

async function serve(argv: string[]): Promise<number> {
  const parsed = parseConfig(argv, process.env)
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
  const level: LogLevel = config.logLevel === "panic" ? "fatal" : config.logLevel
  const logger = createLogger({ level, fields: { name: config.name } })
  let member: Awaited<ReturnType<typeof runMember>>
  try {
    member = await runMember(config, logger)
  } catch (e) {
    const message = e instanceof BootstrapError || e instanceof Error ? e.message : String(e)
    logger.error("cannot start the member", { error: message })
    process.stderr.write(`tskv: ${message}\n`)
    return 1
  }
  logger.info("ready to serve client requests", { "member-id": member.server.memberId.toString(16) })
  return await new Promise<number>((resolve) => {
    let signalled = false
    const onSignal = (signal: NodeJS.Signals): void => {
      if (signalled) return
      signalled = true
      logger.info("received signal; shutting down", { signal })
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
