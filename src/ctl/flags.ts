// Command-line parsing as cobra/pflag do it for etcdctl: flags anywhere among
// the arguments, `--name=value`, `--name value`, `-w json`, `-wjson`, bool
// flags with an optional `=true|false`, and `--` ending the flags.
import type { FlagSpec } from "./help_table"
import { CtlExit } from "./output"

/** What the parser needs of a flag (help_table.ts's FlagSpec has these and its description). */
export type ParseSpec = Pick<FlagSpec, "kind" | "short" | "def">
export type ParseSpecs = Record<string, ParseSpec>

export interface ParsedArgs {
  positionals: string[]
  /** Everything after `--` (kept apart for `watch -- cmd` and `lock name cmd`). */
  afterDash: string[] | undefined
  values: Map<string, string>
  /** Flags given on the command line. */
  changed: Set<string>
}

function findSpec(specs: ParseSpecs, token: string): [string, ParseSpec] | undefined {
  const s = specs[token]
  return s === undefined ? undefined : [token, s]
}

function findShort(specs: ParseSpecs, c: string): [string, ParseSpec] | undefined {
  for (const [name, s] of Object.entries(specs)) if (s.short === c) return [name, s]
  return undefined
}

/** The positional words before flags are parsed (to find the command). */
export function leadingWords(argv: string[], specs: ParseSpecs): string[] {
  const words: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === "--") break
    if (a.startsWith("--")) {
      const spec = findSpec(specs, a.slice(2))
      if (spec !== undefined && spec[1].kind !== "bool" && !a.includes("=")) i++
      continue
    }
    if (a.startsWith("-") && a.length > 1) {
      const spec = findShort(specs, a[1]!)
      if (spec !== undefined && spec[1].kind !== "bool" && a.length === 2) i++
      continue
    }
    words.push(a)
  }
  return words
}

export function parseArgs(argv: string[], specs: ParseSpecs): ParsedArgs {
  const out: ParsedArgs = { positionals: [], afterDash: undefined, values: new Map(), changed: new Set() }
  const set = (name: string, spec: ParseSpec, value: string, display: string): void => {
    if (spec.kind === "bool" && value !== "true" && value !== "false") {
      const v = value.toLowerCase()
      if (["1", "t", "true"].includes(v)) value = "true"
      else if (["0", "f", "false"].includes(v)) value = "false"
      else throw new CtlExit(1, `invalid argument "${value}" for "${display}" flag: strconv.ParseBool: parsing "${value}": invalid syntax`)
    }
    if (spec.kind === "int" && !/^-?\d+$/.test(value)) {
      throw new CtlExit(1, `invalid argument "${value}" for "${display}" flag: strconv.ParseInt: parsing "${value}": invalid syntax`)
    }
    if (spec.kind === "strings" && out.changed.has(name)) value = `${out.values.get(name)},${value}`
    out.values.set(name, value)
    out.changed.add(name)
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === "--") {
      out.afterDash = argv.slice(i + 1)
      break
    }
    if (a.startsWith("--") && a.length > 2) {
      const eq = a.indexOf("=")
      const name = eq < 0 ? a.slice(2) : a.slice(2, eq)
      const spec = specs[name]
      if (spec === undefined) throw new CtlExit(1, `unknown flag: --${name}`, { usage: true })
      if (eq >= 0) set(name, spec, a.slice(eq + 1), `--${name}`)
      else if (spec.kind === "bool") set(name, spec, "true", `--${name}`)
      else {
        if (i + 1 >= argv.length) throw new CtlExit(1, `flag needs an argument: --${name}`, { usage: true })
        set(name, spec, argv[++i]!, `--${name}`)
      }
      continue
    }
    if (a.startsWith("-") && a.length > 1) {
      const c = a[1]!
      const found = findShort(specs, c)
      if (found === undefined) throw new CtlExit(1, `unknown shorthand flag: '${c}' in ${a}`, { usage: true })
      const [name, spec] = found
      const display = `-${c}, --${name}`
      if (spec.kind === "bool") set(name, spec, a.length > 2 ? a.slice(a[2] === "=" ? 3 : 2) : "true", display)
      else if (a.length > 2) set(name, spec, a.slice(a[2] === "=" ? 3 : 2), display)
      else {
        if (i + 1 >= argv.length) throw new CtlExit(1, `flag needs an argument: '${c}' in -${c}`, { usage: true })
        set(name, spec, argv[++i]!, display)
      }
      continue
    }
    out.positionals.push(a)
  }
  for (const [name, spec] of Object.entries(specs)) if (!out.values.has(name)) out.values.set(name, spec.def)
  return out
}
