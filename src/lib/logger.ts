// Structured logs, one JSON object a line on stderr, in the spirit of etcd's zap
// output ({"level","ts","msg",...fields}).

export type LogLevel = "debug" | "info" | "warn" | "error" | "fatal"
const rank: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3, fatal: 4 }

export type LogFields = Record<string, unknown>

export interface Logger {
  debug(msg: string, fields?: LogFields): void
  info(msg: string, fields?: LogFields): void
  warn(msg: string, fields?: LogFields): void
  error(msg: string, fields?: LogFields): void
  child(fields: LogFields): Logger
}

export interface LoggerOptions {
  level?: LogLevel
  write?: (line: string) => void
  fields?: LogFields
  /** json (default): one JSON object a line; console: zap's console encoding, ts<TAB>level<TAB>msg<TAB>{fields}. */
  format?: "json" | "console"
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const min = rank[options.level ?? "info"]
  const write = options.write ?? ((line: string) => process.stderr.write(line))
  const base = options.fields ?? {}
  const emit = (level: LogLevel, msg: string, fields?: LogFields): void => {
    if (rank[level] < min) return
    const ts = new Date().toISOString()
    if (options.format === "console") {
      const rest = { ...base, ...fields }
      const tail = Object.keys(rest).length > 0 ? `\t${JSON.stringify(rest, jsonReplacer)}` : ""
      write(`${ts}\t${level}\t${msg}${tail}\n`)
      return
    }
    const record = { level, ts, msg, ...base, ...fields }
    write(JSON.stringify(record, jsonReplacer) + "\n")
  }
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    child: (fields) => createLogger({ ...options, fields: { ...base, ...fields } }),
  }
}

function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return value.toString(16)
  if (value instanceof Error) return value.message
  if (value instanceof Uint8Array) return Buffer.from(value).toString()
  return value
}

/** A logger that drops everything (tests that do not look at logs). */
export const silentLogger: Logger = createLogger({ write: () => {} , level: "fatal" })
