// `tskv help [command]` and the help of `tskv snapshot ...`, and the
// `snapshot restore|status|save` that `tskv ctl` hands to the snapshot room.
// The snapshot help is printed from the ctl help table (etcdctl's snapshot
// commands), limited to the flags `tskv snapshot` parses.

import { writeSync } from "node:fs"
import { helpText as ctlHelpText, topicOf } from "./ctl/help"
import { GLOBAL_FLAGS, type FlagSpecs } from "./ctl/help_table"
import { runCtl } from "./ctl/main"
import { SNAPSHOT_GLOBAL_FLAGS } from "./snapshot/snapshot_flags"

export { runCtl }

/** The snapshot room loads only when a snapshot command runs (it is most of the binary). */
export async function runSnapshotCommand(argv: readonly string[]): Promise<number> {
  const { runSnapshotCommand } = await import("./snapshot/snapshot_command")
  return await runSnapshotCommand(argv)
}

/** The global options `tskv snapshot` takes, with etcdctl's descriptions. */
function snapshotGlobals(): FlagSpecs {
  return Object.fromEntries(Object.entries(GLOBAL_FLAGS).filter(([name]) => SNAPSHOT_GLOBAL_FLAGS.includes(name)))
}

/** Prints the help when `tskv snapshot ...` asks for it (no subcommand, `help`, -h, --help); else undefined. */
export async function runSnapshotHelp(argv: readonly string[]): Promise<number | undefined> {
  const words = argv.filter((a) => !a.startsWith("-"))
  const asked = argv.includes("-h") || argv.includes("--help") || argv.includes("--help=true")
  if (!asked && words.length > 0 && words[0] !== "help") return undefined
  const path = words[0] === "help" ? words.slice(1) : words
  const topic = topicOf(["snapshot", ...path.slice(0, 1)]) ?? { kind: "group" as const, name: "snapshot" }
  writeSync(1, ctlHelpText(topic, "tskv", { globals: snapshotGlobals() }))
  return 0
}

/** `tskv ctl snapshot restore|status` run the same code as `tskv snapshot ...` (ctl has its own `snapshot save`). */
export const snapshotCommands: Record<string, (args: string[], flags: Map<string, string>) => Promise<number>> = Object.fromEntries(
  ["restore", "status"].map((sub) => [
    `snapshot ${sub}`,
    (args: string[], flags: Map<string, string>) => runSnapshotCommand([sub, ...args, ...[...flags].map(([name, value]) => `--${name}=${value}`)]),
  ]),
)

const TOPICS = "serve, ctl, snapshot, certs, version"

/** `tskv help ctl [command]`, `tskv help snapshot [restore]`, `tskv help certs`, `tskv help version` (main.ts answers `tskv help [serve]`). */
export async function runHelp(argv: readonly string[]): Promise<number> {
  const [topic, ...rest] = argv
  switch (topic) {
    case "version":
      writeSync(1, "Usage:\n  tskv version | tskv --version\n    Show the version of tskv and of the etcd API it speaks.\n")
      return 0
    case "ctl":
      return await runCtl(["help", ...rest], { program: "tskv ctl", external: snapshotCommands })
    case "snapshot":
      return (await runSnapshotHelp(["help", ...rest])) ?? 0
    case "certs": {
      const { runCertsCommand } = await import("./certs/certs_command")
      return await runCertsCommand(["--help"])
    }
    default:
      process.stderr.write(`tskv: unknown help topic "${topic}" (topics: ${TOPICS})\n`)
      return 2
  }
}
