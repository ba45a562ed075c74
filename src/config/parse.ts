// parseConfig(argv, env) -> Config | help | version | ConfigError.
//
// Sources and precedence (etcd's rules, pkg/flags and etcdmain/config.go):
// 1. --config-file (or ETCD_CONFIG_FILE / TSKV_CONFIG_FILE): a YAML file whose
//    keys are flag names, TLS settings nested under client-transport-security
//    and peer-transport-security. When given, every other flag and variable is
//    ignored (a warning names them), as etcd does.
// 2. Command-line flags, `--flag=value`, `--flag value`, `-flag` (Go's flag
//    package: a boolean takes no separate value: `--x`, `--x=false`).
// 3. ETCD_<FLAG> and TSKV_<FLAG> variables (dashes -> underscores, upper case)
//    for flags not given on the command line. A variable for a flag that is also
//    on the command line is an error (etcd's text). tskv's decision for
//    ETCD_X and TSKV_X both set: the same value is fine, different values are an
//    error naming both, so that no setting is silently dropped.
// 4. etcd's defaults.

import { readFileSync } from "node:fs"
import { type ParseResult, configError } from "./config"
import { type FlagSpec, envSuffix, findFlag, flagSpecs, knownNonFlagEnv, namesOf, yamlSecurityKeys } from "./flags"
import { helpText } from "./help"
import { configSchema } from "./schema"
import { versionText } from "./version"

type Source = { kind: "flag"; given: string } | { kind: "env"; variable: string } | { kind: "file"; key: string; path: string }

interface RawValue {
  readonly text: string
  readonly source: Source
}

export interface ParseOptions {
  /** Reads the --config-file (tests pass a fake). */
  readFile?: (path: string) => string
  /**
   * Flags whose feature the composed binary does not provide (yet): accepted
   * only with their default value, like the table's `unsupported` flags.
   * Lets main.ts refuse a flag without editing the table.
   */
  notBuilt?: readonly string[]
}

export type Env = Readonly<Record<string, string | undefined>>

export function parseConfig(argv: readonly string[], env: Env, options: ParseOptions = {}): ParseResult {
  const readFile = options.readFile ?? ((path: string) => readFileSync(path, "utf8"))
  try {
    for (const name of options.notBuilt ?? []) {
      if (findFlag(name)?.name !== name) throw new Error(`parseConfig: notBuilt names an unknown flag ${name}`)
    }
    return parseOrThrow(argv, env, { readFile, notBuilt: options.notBuilt ?? [] })
  } catch (e) {
    if (e instanceof ConfigProblem) return configError(e.message)
    throw e
  }
}

class ConfigProblem extends Error {}

function problem(message: string): never {
  throw new ConfigProblem(message)
}

function parseOrThrow(
  argv: readonly string[],
  env: Env,
  { readFile, notBuilt }: { readFile: (path: string) => string; notBuilt: readonly string[] },
): ParseResult {
  const cli = parseArgv(argv)
  if (cli.help) return { kind: "help", text: helpText(notBuilt) }
  if (cli.version) return { kind: "version", text: versionText() }
  const warnings: string[] = []
  const envUsed: string[] = []

  const envConfigFile = pickEnv(env, "CONFIG_FILE")
  if (cli.configFile !== undefined && envConfigFile !== undefined) problem(shadowed(envConfigFile.variable))
  const configFile = cli.configFile ?? envConfigFile?.text ?? ""
  let values: Map<string, RawValue>
  if (configFile !== "") {
    values = readYamlConfig(configFile, readFile)
    const ignored = [...cli.values.values()].map((v) => (v.source.kind === "flag" ? v.source.given : ""))
    for (const name of Object.keys(env)) {
      if (isFlagVariable(name) && env[name] !== undefined && env[name] !== "" && !knownNonFlagEnv.has(name)) ignored.push(name)
    }
    warnings.push(
      `loaded server configuration from ${configFile}, other configuration command line flags and environment variables will be ignored if provided` +
        (ignored.length > 0 ? ` (ignored: ${ignored.join(", ")})` : ""),
    )
  } else {
    values = cli.values
    for (const spec of flagSpecs) {
      const fromEnv = envFor(spec, env)
      if (fromEnv === undefined) continue
      if (values.has(spec.name)) {
        problem(shadowed(fromEnv.variable))
      }
      values.set(spec.name, { text: fromEnv.text, source: { kind: "env", variable: fromEnv.variable } })
      envUsed.push(`${fromEnv.variable}=${fromEnv.text}`)
    }
    for (const [name, value] of Object.entries(env)) {
      if (value === undefined || !/^(ETCD|TSKV)_/.test(name) || knownNonFlagEnv.has(name)) continue
      if (findFlag(name.slice(5).toLowerCase().replaceAll("_", "-")) === undefined) {
        warnings.push(`unrecognized environment variable ${name}=${value}`)
      }
    }
  }

  const texts: Record<string, string> = {}
  for (const spec of flagSpecs) texts[spec.name] = values.get(spec.name)?.text ?? spec.default
  const parsed = configSchema.safeParse({
    values: texts,
    explicit: [...values.keys()],
    configFile,
    envUsed,
    warnings,
    notBuilt,
  })
  if (parsed.success) return { kind: "config", config: parsed.data }
  const issue = parsed.error.issues[0]
  const flag = String(issue?.path[1] ?? "")
  const message = issue?.message ?? "invalid configuration"
  if ((issue as { params?: { plain?: boolean } } | undefined)?.params?.plain === true) problem(message)
  const raw = values.get(flag)
  const text = raw?.text ?? findFlag(flag)?.default ?? ""
  problem(`invalid value "${text}" for ${describeSource(raw?.source, flag)}: ${message}`)
}

function describeSource(source: Source | undefined, flag: string): string {
  if (source === undefined) return `flag --${flag}`
  switch (source.kind) {
    case "flag":
      return `flag ${source.given}`
    case "env":
      return source.variable
    case "file":
      return `"${source.key}" in config file ${source.path}`
  }
}

interface CommandLine {
  values: Map<string, RawValue>
  configFile?: string
  help: boolean
  version: boolean
}

/** Go's flag package rules, with etcd's messages. */
export function parseArgv(argv: readonly string[]): CommandLine {
  const result: CommandLine = { values: new Map(), help: false, version: false }
  const givenAs = new Map<string, string>()
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? ""
    if (arg === "--") {
      const next = argv[i + 1]
      if (next !== undefined) problem(`'${next}' is not a valid flag`)
      break
    }
    if (!arg.startsWith("-") || arg === "-") problem(`'${arg}' is not a valid flag`)
    const body = arg.replace(/^--?/, "")
    const eq = body.indexOf("=")
    const name = eq < 0 ? body : body.slice(0, eq)
    const inline = eq < 0 ? undefined : body.slice(eq + 1)
    const given = `--${name}`
    if (name === "" || name.startsWith("-") || name.startsWith("=")) problem(`bad flag syntax: ${arg}`)
    if (name === "h" || name === "help") {
      result.help = true
      continue
    }
    if (name === "version") {
      result.version = inline === undefined || inline === "true"
      continue
    }
    const takeValue = (): string => {
      if (inline !== undefined) return inline
      const next = argv[i + 1]
      if (next === undefined) problem(`flag needs an argument: ${given}`)
      i++
      return next
    }
    if (name === "config-file") {
      result.configFile = takeValue()
      continue
    }
    const spec = findFlag(name)
    if (spec === undefined) problem(`flag provided but not defined: ${given}`)
    const text = spec.kind === "bool" ? (inline ?? "true") : takeValue()
    const earlier = givenAs.get(spec.name)
    if (earlier !== undefined && earlier !== given) {
      problem(`cannot set ${earlier} and ${given} at the same time, please use --${spec.name} only`)
    }
    givenAs.set(spec.name, given)
    result.values.set(spec.name, { text, source: { kind: "flag", given } })
  }
  return result
}

/** etcd's exact text (pkg/flags). */
function shadowed(variable: string): string {
  return `conflicting environment variable "${variable}" is shadowed by corresponding command-line flag (either unset environment variable or disable flag)`
}

function isFlagVariable(name: string): boolean {
  return /^(ETCD|TSKV)_/.test(name)
}

function envFor(spec: FlagSpec, env: Env): { variable: string; text: string } | undefined {
  let found: { variable: string; text: string } | undefined
  for (const name of namesOf(spec)) {
    const picked = pickEnv(env, envSuffix(name))
    if (picked === undefined) continue
    if (found !== undefined && found.text !== picked.text) {
      problem(`conflicting environment variables "${found.variable}" and "${picked.variable}" (unset one of them)`)
    }
    found ??= picked
  }
  return found
}

/** ETCD_<suffix> or TSKV_<suffix>; both with different values is an error. */
function pickEnv(env: Env, suffix: string): { variable: string; text: string } | undefined {
  const etcd = env[`ETCD_${suffix}`]
  const tskv = env[`TSKV_${suffix}`]
  const etcdSet = etcd !== undefined && etcd !== ""
  const tskvSet = tskv !== undefined && tskv !== ""
  if (etcdSet && tskvSet && etcd !== tskv) {
    problem(`conflicting environment variables "ETCD_${suffix}" and "TSKV_${suffix}" have different values (unset one of them)`)
  }
  if (etcdSet) return { variable: `ETCD_${suffix}`, text: etcd }
  if (tskvSet) return { variable: `TSKV_${suffix}`, text: tskv }
  return undefined
}

/** Reads etcd's YAML config file into flag texts. */
export function readYamlConfig(path: string, readFile: (path: string) => string): Map<string, RawValue> {
  let text: string
  try {
    text = readFile(path)
  } catch (e) {
    problem(`cannot read config file ${path}: ${e instanceof Error ? e.message : String(e)}`)
  }
  let document: unknown
  try {
    document = Bun.YAML.parse(text)
  } catch (e) {
    problem(`cannot parse config file ${path}: ${e instanceof Error ? e.message : String(e)}`)
  }
  if (document === null || document === undefined) return new Map()
  if (!isPlainObject(document)) problem(`config file ${path}: expected a map of flag names to values`)
  const values = new Map<string, RawValue>()
  const put = (key: string, flagName: string, value: unknown): void => {
    const spec = findFlag(flagName)
    if (spec === undefined) problem(`unknown key "${key}" in config file ${path}`)
    const text = yamlValueToText(spec, value)
    if (text === undefined) return
    if (text === null) problem(`invalid value for "${key}" in config file ${path}: expected a ${spec.kind === "list" || spec.kind === "urls" || spec.kind === "origins" ? "string or list" : "scalar"}`)
    if (values.has(spec.name)) problem(`"${key}" is set twice in config file ${path} (also as an alias of ${spec.name})`)
    values.set(spec.name, { text, source: { kind: "file", key, path } })
  }
  for (const [key, value] of Object.entries(document)) {
    if (key === "client-transport-security" || key === "peer-transport-security") {
      if (value === null || value === undefined) continue
      if (!isPlainObject(value)) problem(`"${key}" in config file ${path} must be a map`)
      const keys: Readonly<Record<string, string>> = yamlSecurityKeys[key]
      for (const [inner, innerValue] of Object.entries(value)) {
        const flagName = keys[inner]
        if (flagName === undefined) problem(`unknown key "${key}.${inner}" in config file ${path}`)
        put(`${key}.${inner}`, flagName, innerValue)
      }
      continue
    }
    if (key === "config-file") problem(`"config-file" cannot be set inside config file ${path}`)
    put(key, key, value)
  }
  return values
}

/**
 * A YAML value as the flag text it stands for; undefined = not set (empty
 * key), null = wrong shape. Durations given as numbers are nanoseconds, as in
 * etcd's file format (Go's time.Duration in JSON); strings like "5s" work too.
 */
function yamlValueToText(spec: FlagSpec, value: unknown): string | null | undefined {
  if (value === null || value === undefined) return undefined
  if (Array.isArray(value)) {
    if (spec.kind !== "list" && spec.kind !== "urls" && spec.kind !== "origins") return null
    if (!value.every((item) => typeof item === "string" || typeof item === "number")) return null
    return value.map(String).join(",")
  }
  if (typeof value === "object") return null
  if (spec.kind === "duration" && typeof value === "number") return `${value}ns`
  // etcd reads its file with a YAML 1.1 parser, where yes/no/on/off are booleans.
  if (spec.kind === "bool" && typeof value === "string") {
    const word = value.toLowerCase()
    if (word === "yes" || word === "on") return "true"
    if (word === "no" || word === "off") return "false"
  }
  if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") return String(value)
  return null
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value)
}
