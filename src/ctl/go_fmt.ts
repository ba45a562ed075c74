// Go's text formats as etcdctl 3.4 prints them: strconv.Quote (%q), encoding/json
// of structs (omitempty fields, []byte as base64, HTML-safe string escapes),
// go-humanize Bytes, time.Duration.String and olekukonko/tablewriter tables.

const utf8Decoder = new TextDecoder("utf-8", { fatal: false })
const utf8Encoder = new TextEncoder()

export function bytesOf(s: string | Uint8Array): Uint8Array {
  return typeof s === "string" ? utf8Encoder.encode(s) : s
}

/** Lossless "Go string" of bytes for printing: invalid UTF-8 stays as its bytes. */
export function goString(b: Uint8Array): string {
  return utf8Decoder.decode(b)
}

/** Walks UTF-8 as Go does: yields [rune, size], rune -1 for an invalid byte. */
function* runes(b: Uint8Array): Generator<[number, number]> {
  let i = 0
  while (i < b.length) {
    const c = b[i]!
    let n = 0
    let r = -1
    if (c < 0x80) [n, r] = [1, c]
    else if (c >= 0xc2 && c < 0xe0) [n, r] = [2, c & 0x1f]
    else if (c >= 0xe0 && c < 0xf0) [n, r] = [3, c & 0x0f]
    else if (c >= 0xf0 && c < 0xf5) [n, r] = [4, c & 0x07]
    let ok = n > 0 && i + n <= b.length
    for (let k = 1; ok && k < n; k++) {
      const cc = b[i + k]!
      if ((cc & 0xc0) !== 0x80) ok = false
      else r = (r << 6) | (cc & 0x3f)
    }
    if (ok && n === 3 && (r < 0x800 || (r >= 0xd800 && r < 0xe000))) ok = false
    if (ok && n === 4 && (r < 0x10000 || r > 0x10ffff)) ok = false
    if (!ok) {
      yield [-1, 1]
      i += 1
    } else {
      yield [r, n]
      i += n
    }
  }
}

const printable = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u

function hex2(n: number): string {
  return n.toString(16).padStart(2, "0")
}

/** strconv.Quote: Go's %q of a string given as bytes. */
export function goQuote(s: string | Uint8Array): string {
  const b = bytesOf(s)
  let out = '"'
  let i = 0
  for (const [r, n] of runes(b)) {
    if (r < 0) out += `\\x${hex2(b[i]!)}`
    else if (r === 0x22) out += '\\"'
    else if (r === 0x5c) out += "\\\\"
    else if (r < 0x80 && r >= 0x20 && r < 0x7f) out += String.fromCharCode(r)
    else if (printable.test(String.fromCodePoint(r))) out += String.fromCodePoint(r)
    else {
      const esc: Record<number, string> = { 7: "\\a", 8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t", 11: "\\v" }
      const e = esc[r]
      if (e !== undefined) out += e
      else if (r < 0x80 || r === 0x7f) out += `\\x${hex2(r)}`
      else if (r < 0x10000) out += `\\u${r.toString(16).padStart(4, "0")}`
      else out += `\\U${r.toString(16).padStart(8, "0")}`
    }
    i += n
  }
  return `${out}"`
}

/** encoding/json of a string (bytes as UTF-8; invalid bytes become U+FFFD). */
export function jsonString(s: string | Uint8Array): string {
  const b = bytesOf(s)
  let out = '"'
  for (const [r] of runes(b)) {
    if (r < 0) out += "\\ufffd"
    else if (r === 0x22) out += '\\"'
    else if (r === 0x5c) out += "\\\\"
    else if (r === 0x0a) out += "\\n"
    else if (r === 0x0d) out += "\\r"
    else if (r === 0x09) out += "\\t"
    else if (r < 0x20 || r === 0x3c || r === 0x3e || r === 0x26 || r === 0x2028 || r === 0x2029)
      out += `\\u${r.toString(16).padStart(4, "0")}`
    else out += String.fromCodePoint(r)
  }
  return `${out}"`
}

/** A JSON value already rendered, or undefined for a field left out (omitempty). */
export type JsonText = string | undefined

/** A Go struct: fields in order, undefined ones omitted. */
export function jObject(fields: [string, JsonText][]): string {
  const parts: string[] = []
  for (const [name, value] of fields) if (value !== undefined) parts.push(`${jsonString(name)}:${value}`)
  return `{${parts.join(",")}}`
}

export function jArray(items: string[]): string {
  return `[${items.join(",")}]`
}

/** omitempty helpers: undefined for the zero value. */
export const om = {
  num: (n: number | bigint): JsonText => (n === 0 || n === 0n ? undefined : String(n)),
  bool: (b: boolean): JsonText => (b ? "true" : undefined),
  str: (s: string): JsonText => (s === "" ? undefined : jsonString(s)),
  bytes: (b: Uint8Array): JsonText => (b.length === 0 ? undefined : jsonString(Buffer.from(b).toString("base64"))),
  arr: (items: string[]): JsonText => (items.length === 0 ? undefined : jArray(items)),
}

/** Fields without omitempty. */
export const full = {
  num: (n: number | bigint): string => String(n),
  bool: (b: boolean): string => (b ? "true" : "false"),
  str: (s: string): string => jsonString(s),
  bytesOrNull: (b: Uint8Array | undefined): string => (b === undefined ? "null" : jsonString(Buffer.from(b).toString("base64"))),
}

/** %x of a uint64 as Go prints it (no padding). */
export function hexId(id: bigint): string {
  return BigInt.asUintN(64, id).toString(16)
}

/** %016x. */
export function hexId16(id: bigint): string {
  return hexId(id).padStart(16, "0")
}

/** Uint64 decimal (ids as Go prints a uint64). */
export function u64(id: bigint): string {
  return BigInt.asUintN(64, id).toString()
}

/** Int64 decimal (LeaseID is an int64 in clientv3). */
export function i64(id: bigint): string {
  return BigInt.asIntN(64, id).toString()
}

export { humanizeBytes } from "../lib/humanize"

/** time.Duration.String of a duration in nanoseconds. */
export function goDuration(ns: number): string {
  ns = Math.round(ns)
  if (ns === 0) return "0s"
  const neg = ns < 0
  if (neg) ns = -ns
  const frac = (v: number, unitNs: number, unit: string): string => {
    const whole = Math.floor(v / unitNs)
    const rest = v % unitNs
    const digits = String(unitNs).length - 1
    const f = rest === 0 ? "" : `.${String(rest).padStart(digits, "0").replace(/0+$/, "")}`
    return `${whole}${f}${unit}`
  }
  let s: string
  if (ns < 1_000) s = `${ns}ns`
  else if (ns < 1_000_000) s = frac(ns, 1_000, "µs")
  else if (ns < 1_000_000_000) s = frac(ns, 1_000_000, "ms")
  else {
    const h = Math.floor(ns / 3_600_000_000_000)
    const m = Math.floor((ns % 3_600_000_000_000) / 60_000_000_000)
    const sec = frac(ns % 60_000_000_000, 1_000_000_000, "s")
    s = h > 0 ? `${h}h${m}m${sec}` : m > 0 ? `${m}m${sec}` : sec
  }
  return neg ? `-${s}` : s
}

/** Parses a Go duration ("2s", "500ms", "1m30s", "10"? no: unit required except "0"). */
export function parseGoDuration(s: string): number | undefined {
  if (s === "0") return 0
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, "µs": 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/y
  let total = 0
  let i = 0
  let neg = false
  if (s.startsWith("-") || s.startsWith("+")) {
    neg = s.startsWith("-")
    i = 1
  }
  if (i >= s.length) return undefined
  while (i < s.length) {
    re.lastIndex = i
    const m = re.exec(s)
    if (m === null) return undefined
    total += Number(m[1]) * units[m[2]!]!
    i = re.lastIndex
  }
  return neg ? -total : total
}

/** tablewriter as etcdctl configures it: upper-case centred header, right-aligned cells. */
export function renderTable(header: string[], rows: string[][]): string {
  const width = header.map((h, i) => Math.max(h.length, ...rows.map((r) => [...(r[i] ?? "")].length)))
  const line = `+${width.map((w) => "-".repeat(w + 2)).join("+")}+\n`
  const center = (s: string, w: number): string => {
    const gap = w - s.length
    const left = Math.floor(gap / 2)
    return " ".repeat(left) + s + " ".repeat(gap - left)
  }
  let out = line
  out += `|${header.map((h, i) => ` ${center(h.toUpperCase(), width[i]!)} `).join("|")}|\n`
  out += line
  for (const r of rows) out += `|${width.map((w, i) => ` ${(r[i] ?? "").padStart(w)} `).join("|")}|\n`
  return out + line
}
