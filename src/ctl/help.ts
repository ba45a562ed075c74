// The help of `tskv ctl`, printed from help_table.ts in the layout of
// etcdctl 3.4's usage template (NAME, USAGE, VERSION, API VERSION,
// DESCRIPTION, COMMANDS, OPTIONS, GLOBAL OPTIONS), aligned as Go's
// text/tabwriter does with tab padding.
import { COMMAND_SPECS, CTL_API_VERSION, CTL_VERSION, GLOBAL_FLAGS, GROUP_FLAGS, GROUP_USE, GROUPS, ROOT_SHORT, type FlagSpec, type FlagSpecs } from "./help_table"

/** What a help request names: the root, a group (`lease`) or a leaf (`lease grant`). */
export type HelpTopic = { kind: "root" } | { kind: "group"; name: string } | { kind: "leaf"; name: string }

export function topicOf(words: readonly string[]): HelpTopic | undefined {
  if (words.length === 0) return { kind: "root" }
  const two = words.slice(0, 2).join(" ")
  if (words.length >= 2 && COMMAND_SPECS[two] !== undefined) return { kind: "leaf", name: two }
  if (COMMAND_SPECS[words[0]!] !== undefined) return { kind: "leaf", name: words[0]! }
  if (GROUPS[words[0]!] !== undefined) return { kind: "group", name: words[0]! }
  return undefined
}

/** pflag's usage line of one flag before the tab: `  -w, --write-out="simple"`. */
function flagCell(name: string, spec: FlagSpec): string {
  const prefix = spec.short === undefined ? "      " : `  -${spec.short}, `
  const value =
    spec.kind === "bool" ? `[=${spec.def}]` : spec.kind === "string" ? `="${spec.def}"` : spec.kind === "strings" ? `=[${spec.def}]` : `=${spec.def}`
  return `${prefix}--${name}${value}`
}

function flagLines(flags: FlagSpecs, helpFor: string | undefined): string[] {
  const all: [string, FlagSpec][] = Object.entries(flags).filter(([name]) => name !== "help")
  if (helpFor !== undefined) all.push(["help", { ...GLOBAL_FLAGS.help!, usage: `help for ${helpFor}` }])
  return all.sort(([a], [b]) => (a < b ? -1 : 1)).map(([name, spec]) => `${flagCell(name, spec)}\t${spec.usage}`)
}

/** The leaves under a group, or every leaf and group word under the root. */
function subcommands(topic: HelpTopic): [string, string][] {
  if (topic.kind === "group") {
    return Object.entries(COMMAND_SPECS)
      .filter(([name]) => name.startsWith(`${topic.name} `))
      .map(([name, spec]): [string, string] => [name.slice(topic.name.length + 1), spec.short])
      .sort(([a], [b]) => (a < b ? -1 : 1))
  }
  return Object.entries(COMMAND_SPECS)
    .map(([name, spec]): [string, string] => [name, spec.short])
    .sort(([a], [b]) => (a < b ? -1 : 1))
}

/** The full help text; `program` is how the user called us ("tskv ctl", "tskvctl", "etcdctl"). */
export function helpText(topic: HelpTopic, program: string, options: { globals?: FlagSpecs } = {}): string {
  const globals = options.globals ?? GLOBAL_FLAGS
  const lines: string[] = ["NAME:"]
  const spec = topic.kind === "leaf" ? COMMAND_SPECS[topic.name]! : undefined
  const short = topic.kind === "root" ? ROOT_SHORT : topic.kind === "group" ? GROUPS[topic.name]! : spec!.short
  const name = topic.kind === "root" ? program : topic.name
  lines.push(`\t${name} - ${short}`, "", "USAGE:")
  if (topic.kind === "root") lines.push(`\t${program} [flags]`)
  else if (topic.kind === "group") lines.push(`\t${program} ${topic.name} ${GROUP_USE[topic.name] ?? "<subcommand>"} [flags]`)
  else lines.push(`\t${program} ${topic.name}${spec!.use === "" ? "" : ` ${spec!.use}`} [flags]`)
  lines.push("")
  if (topic.kind === "root") lines.push("VERSION:", `\t${CTL_VERSION}`, "")
  if (topic.kind !== "leaf") lines.push("API VERSION:", `\t${CTL_API_VERSION}`, "", "")
  if (spec?.long !== undefined) {
    lines.push("DESCRIPTION:")
    for (const line of spec.long.replaceAll("etcdctl", program).split("\n")) lines.push(`\t${line}`)
    lines.push("")
  }
  if (topic.kind !== "leaf") {
    lines.push("COMMANDS:")
    for (const [word, text] of subcommands(topic)) lines.push(`\t${word}\t${text}`)
    lines.push("")
  }
  lines.push("OPTIONS:")
  if (topic.kind === "root") lines.push(...flagLines(globals, "etcdctl"))
  else {
    const leafName = name.split(" ").at(-1)!
    const group = topic.kind === "group" ? topic.name : name.includes(" ") ? name.split(" ")[0]! : undefined
    const groupFlags = group === undefined ? {} : (GROUP_FLAGS[group] ?? {})
    const own = topic.kind === "group" ? groupFlags : (spec?.flags ?? {})
    const inherited = topic.kind === "group" ? globals : { ...globals, ...groupFlags }
    lines.push(...flagLines(own, leafName), "", "GLOBAL OPTIONS:", ...flagLines(inherited, undefined))
  }
  lines.push("", "")
  return tabwrite(lines.join("\n"))
}

/**
 * Go's text/tabwriter with minwidth 1, tabwidth 8, padding 1 and '\t' as the
 * pad character: the cells of a column (consecutive lines that have a cell
 * there ending in a tab) are padded with tabs to one width, a multiple of 8.
 */
export function tabwrite(text: string): string {
  const rows = text.split("\n").map((line) => line.split("\t"))
  const widths: number[][] = rows.map((cells) => cells.map(() => 0))
  const format = (column: number, from: number, to: number): void => {
    let line = from
    while (line < to) {
      if (column >= rows[line]!.length - 1) {
        line++
        continue
      }
      let end = line
      let width = 1
      while (end < to && column < rows[end]!.length - 1) {
        width = Math.max(width, rows[end]![column]!.length + 1)
        end++
      }
      width = Math.ceil(width / 8) * 8
      for (let k = line; k < end; k++) widths[k]![column] = width
      format(column + 1, line, end)
      line = end
    }
  }
  format(0, 0, rows.length)
  return rows
    .map((cells, r) =>
      cells
        .map((cell, c) => (c === cells.length - 1 ? cell : cell + "\t".repeat(Math.ceil((widths[r]![c]! - cell.length) / 8))))
        .join(""),
    )
    .join("\n")
}

/** `version` and `--version`. */
export function versionLines(): string[] {
  return [`etcdctl version: ${CTL_VERSION}`, `API version: ${CTL_API_VERSION}`]
}
