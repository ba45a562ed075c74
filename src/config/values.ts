// Parsers for flag values in the forms etcd (Go's flag and strconv packages)
// accepts. Each returns the value or a short description of the expected
// form, which the caller puts into "invalid value ... for flag --x: <form>".

export type Parsed<T> = { ok: true; value: T } | { ok: false; expected: string }

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value })
const bad = <T>(expected: string): Parsed<T> => ({ ok: false, expected })

const trueWords = new Set(["1", "t", "T", "TRUE", "true", "True"])
const falseWords = new Set(["0", "f", "F", "FALSE", "false", "False"])

/** Go's strconv.ParseBool. */
export function parseBool(text: string): Parsed<boolean> {
  if (trueWords.has(text)) return ok(true)
  if (falseWords.has(text)) return ok(false)
  return bad("expected true or false")
}

/** A non-negative decimal integer no larger than `max`. */
export function parseUint(text: string, max = Number.MAX_SAFE_INTEGER): Parsed<number> {
  if (!/^[0-9]+$/.test(text)) return bad("expected a non-negative integer")
  const value = Number(text)
  if (!Number.isSafeInteger(value) || value > max) return bad(`expected an integer between 0 and ${max}`)
  return ok(value)
}

/** A decimal integer, possibly negative. */
export function parseInt64(text: string): Parsed<number> {
  if (!/^-?[0-9]+$/.test(text)) return bad("expected an integer")
  const value = Number(text)
  if (!Number.isSafeInteger(value)) return bad("expected an integer")
  return ok(value)
}

const durationUnitsMs: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  "μs": 1e-3,
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
}

const durationForm = 'expected a duration such as "300ms", "5s", "1h30m"'

/**
 * Go's time.ParseDuration, in milliseconds (fractional below 1 ms).
 * "0" needs no unit; every other number does.
 */
export function parseDuration(text: string): Parsed<number> {
  let rest = text
  let sign = 1
  if (rest.startsWith("-") || rest.startsWith("+")) {
    sign = rest.startsWith("-") ? -1 : 1
    rest = rest.slice(1)
  }
  if (rest === "0") return ok(0)
  if (rest === "") return bad(durationForm)
  let totalMs = 0
  const part = /^([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)/
  while (rest !== "") {
    const match = part.exec(rest)
    if (match === null) return bad(durationForm)
    const [whole, number, unit] = match as unknown as [string, string, string]
    if (number === "" || number === ".") return bad(durationForm)
    totalMs += Number(number) * (durationUnitsMs[unit] ?? Number.NaN)
    rest = rest.slice(whole.length)
  }
  if (!Number.isFinite(totalMs)) return bad(durationForm)
  return ok(sign * totalMs)
}

/** A non-negative duration. */
export function parseNonNegativeDuration(text: string): Parsed<number> {
  const parsed = parseDuration(text)
  if (parsed.ok && parsed.value < 0) return bad("expected a non-negative duration")
  return parsed
}

/** Formats milliseconds the way Go prints a time.Duration ("1h0m0s", "100ms", "0s"). */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s"
  const sign = ms < 0 ? "-" : ""
  let rest = Math.abs(ms)
  if (rest < 1) return `${sign}${+(rest * 1000).toFixed(3)}µs`
  if (rest < 1000) return `${sign}${+rest.toFixed(6)}ms`
  const hours = Math.floor(rest / 3_600_000)
  rest -= hours * 3_600_000
  const minutes = Math.floor(rest / 60_000)
  rest -= minutes * 60_000
  const seconds = `${+(rest / 1000).toFixed(9)}s`
  if (hours > 0) return `${sign}${hours}h${minutes}m${seconds}`
  if (minutes > 0) return `${sign}${minutes}m${seconds}`
  return `${sign}${seconds}`
}

/** Splits a comma-separated list, trimming blanks and dropping empty items. */
export function splitList(text: string): string[] {
  return text
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "")
}

/** A URL as etcd keeps it: scheme, host and port, printed without a trailing slash. */
export interface EtcdUrl {
  /** "http://127.0.0.1:2379" (IPv6 hosts in brackets), as etcd prints it. */
  readonly text: string
  readonly scheme: "http" | "https"
  /** Host name or IP address, without IPv6 brackets. */
  readonly host: string
  readonly port: number
}

/**
 * etcd's types.NewURLs: scheme http or https (unix and unixs are etcd's
 * but not built here), "host:port", no path; duplicates dropped and the
 * list sorted as etcd sorts it.
 */
export function parseUrls(text: string): Parsed<EtcdUrl[]> {
  const items = splitList(text)
  if (items.length === 0) return bad("expected a comma-separated list of URLs")
  const urls: EtcdUrl[] = []
  for (const item of items) {
    const parsed = parseUrl(item)
    if (!parsed.ok) return parsed
    if (!urls.some((u) => u.text === parsed.value.text)) urls.push(parsed.value)
  }
  urls.sort((a, b) => (a.text < b.text ? -1 : a.text > b.text ? 1 : 0))
  return ok(urls)
}

const urlShape = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/([^/?#]*)(.*)$/

export function parseUrl(text: string): Parsed<EtcdUrl> {
  const match = urlShape.exec(text)
  if (match === null) return bad(`URL scheme must be http or https: ${text}`)
  const [, rawScheme, authority, path] = match as unknown as [string, string, string, string]
  const scheme = rawScheme.toLowerCase()
  if (scheme === "unix" || scheme === "unixs") return bad(`unix socket URLs are not supported yet: ${text}`)
  if (scheme !== "http" && scheme !== "https") return bad(`URL scheme must be http or https: ${text}`)
  if (path !== "" && path !== "/") return bad(`URL must not contain a path: ${text}`)
  const hostPort = /^(?:\[([0-9a-fA-F:.%a-zA-Z]+)\]|([^:@\[\]]*)):([0-9]{1,5})$/.exec(authority)
  if (hostPort === null) return bad(`URL address does not have the form "host:port": ${text}`)
  const host = hostPort[1] ?? hostPort[2] ?? ""
  const port = Number(hostPort[3])
  if (port > 65535) return bad(`URL port must be between 0 and 65535: ${text}`)
  const shownHost = host.includes(":") ? `[${host}]` : host
  return ok({ text: `${scheme}://${shownHost}:${port}`, scheme, host, port })
}
