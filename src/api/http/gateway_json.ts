// Request bodies of the /v3 JSON gateway, read as etcd 3.4's grpc-gateway reads
// them: Go's encoding/json Decoder splits the body into values (its syntax
// errors, word for word), and golang/protobuf's jsonpb (AllowUnknownFields, as
// grpc-gateway v1 sets it) maps each value onto the request message. Numbers
// keep their literal text, so int64/uint64 (lease IDs near 2^63) are exact
// whether sent as numbers or as strings. The rules jsonpb follows, and so these:
// - a field is found by its proto name first, then by its JSON (lowerCamel) name;
//   unknown fields are ignored; a repeated key: the last one wins;
// - null leaves a field unset;
// - integers: a JSON number, or a string whose inner text is one (the quotes are
//   dropped, escapes are not decoded); enums: a name in quotes or a number;
// - bytes: a string in standard base64 (padding required; URL-safe letters refused);
// - a wrong type: "json: cannot unmarshal <kind> into Go value of type <T>".

import { enumDescriptors, messageDescriptors, type FieldDescriptor, type MessageDescriptor } from "../../pb"

/**
 * null as an element of a list of messages: jsonpb leaves a nil pointer there, and
 * marshalling the request for the gRPC call then panics in etcd (its HTTP server
 * closes the connection without an answer).
 */
export class NullMessageInList extends Error {
  override readonly name = "NullMessageInList"
}

/** A body that is not JSON, or a value that does not fit the message (the text is etcd's). */
export class GatewayDecodeError extends Error {
  override readonly name = "GatewayDecodeError"
}

export type { Node as JsonNode }

type Node =
  | { readonly t: "object"; readonly entries: Map<string, Node> }
  | { readonly t: "array"; readonly items: Node[] }
  | { readonly t: "string"; readonly raw: string; readonly value: string }
  | { readonly t: "number"; readonly raw: string }
  | { readonly t: "bool"; readonly value: boolean }
  | { readonly t: "null" }

const KIND_NAMES: Record<Node["t"], string> = { object: "object", array: "array", string: "string", number: "number", bool: "bool", null: "null" }

/** Go's quoteChar: how a scanner error names the offending character. */
function quoteChar(c: string): string {
  if (c === "'") return "'\\''"
  if (c === '"') return "'\"'"
  if (c === "\\") return "'\\\\'"
  const code = c.codePointAt(0)!
  if (code < 0x20 || code === 0x7f) {
    const named: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f", "\u0007": "\\a", "\u000b": "\\v" }
    return `'${named[c] ?? `\\x${code.toString(16).padStart(2, "0")}`}'`
  }
  return `'${c}'`
}

class EndOfInput extends Error {}

const WS = new Set([" ", "\t", "\n", "\r"])

/** A recursive-descent reader with the messages of Go's encoding/json scanner. */
class Scanner {
  pos = 0
  /**
   * json.Unmarshal ends its input with a space, so a number or literal cut short is an
   * "invalid character ' '" there; json.Decoder calls any cut "unexpected EOF".
   */
  constructor(
    readonly text: string,
    private readonly endsWithSpace = false,
  ) {}

  /** The next character of a number or literal; a space past the end for json.Unmarshal. */
  private peekInToken(): string {
    if (this.pos >= this.text.length && this.endsWithSpace) return " "
    return this.peek()
  }

  skipSpace(): void {
    while (this.pos < this.text.length && WS.has(this.text[this.pos]!)) this.pos++
  }

  private peek(): string {
    if (this.pos >= this.text.length) throw new EndOfInput()
    return this.text[this.pos]!
  }

  private bad(c: string, context: string): never {
    throw new GatewayDecodeError(`invalid character ${quoteChar(c)} ${context}`)
  }

  value(): Node {
    this.skipSpace()
    const c = this.peek()
    if (c === "{") return this.object()
    if (c === "[") return this.array()
    if (c === '"') {
      const start = this.pos + 1
      const value = this.string()
      return { t: "string", raw: this.text.slice(start, this.pos - 1), value }
    }
    if (c === "-" || (c >= "0" && c <= "9")) return { t: "number", raw: this.number() }
    if (c === "t") return this.literal("true", { t: "bool", value: true })
    if (c === "f") return this.literal("false", { t: "bool", value: false })
    if (c === "n") return this.literal("null", { t: "null" })
    return this.bad(c, "looking for beginning of value")
  }

  private object(): Node {
    this.pos++
    const entries = new Map<string, Node>()
    this.skipSpace()
    if (this.peek() === "}") {
      this.pos++
      return { t: "object", entries }
    }
    for (;;) {
      this.skipSpace()
      const c = this.peek()
      if (c !== '"') this.bad(c, "looking for beginning of object key string")
      const key = this.string()
      this.skipSpace()
      const colon = this.peek()
      if (colon !== ":") this.bad(colon, "after object key")
      this.pos++
      entries.set(key, this.value())
      this.skipSpace()
      const next = this.peek()
      this.pos++
      if (next === "}") return { t: "object", entries }
      if (next !== ",") this.bad(next, "after object key:value pair")
    }
  }

  private array(): Node {
    this.pos++
    const items: Node[] = []
    this.skipSpace()
    if (this.peek() === "]") {
      this.pos++
      return { t: "array", items }
    }
    for (;;) {
      items.push(this.value())
      this.skipSpace()
      const next = this.peek()
      this.pos++
      if (next === "]") return { t: "array", items }
      if (next !== ",") this.bad(next, "after array element")
    }
  }

  private string(): string {
    this.pos++
    let out = ""
    for (;;) {
      const c = this.peek()
      this.pos++
      if (c === '"') return out
      if (c < " ") this.bad(c, "in string literal")
      if (c !== "\\") {
        out += c
        continue
      }
      const e = this.peek()
      this.pos++
      const simple: Record<string, string> = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" }
      if (simple[e] !== undefined) out += simple[e]
      else if (e === "u") {
        let hex = ""
        for (let i = 0; i < 4; i++) {
          const h = this.peek()
          if (!/[0-9a-fA-F]/.test(h)) this.bad(h, "in \\u hexadecimal character escape")
          hex += h
          this.pos++
        }
        out += String.fromCharCode(Number.parseInt(hex, 16))
      } else this.bad(e, "in string escape code")
    }
  }

  /** A number's text; Go's scanner ends the literal at the first character that cannot continue it. */
  private number(): string {
    const start = this.pos
    const at = (): string | undefined => this.text[this.pos]
    const digit = (c: string | undefined): boolean => c !== undefined && c >= "0" && c <= "9"
    const need = (context: string): void => {
      const c = this.peekInToken()
      if (!digit(c)) this.bad(c, context)
    }
    if (at() === "-") {
      this.pos++
      need("in numeric literal")
    }
    if (at() === "0") this.pos++
    else while (digit(at())) this.pos++
    if (at() === ".") {
      this.pos++
      need("after decimal point in numeric literal")
      while (digit(at())) this.pos++
    }
    if (at() === "e" || at() === "E") {
      this.pos++
      if (at() === "+" || at() === "-") this.pos++
      need("in exponent of numeric literal")
      while (digit(at())) this.pos++
    }
    return this.text.slice(start, this.pos)
  }

  private literal(word: string, node: Node): Node {
    for (let i = 0; i < word.length; i++) {
      const c = this.peekInToken()
      if (c !== word[i]) this.bad(c, `in literal ${word} (expecting ${quoteChar(word[i]!)})`)
      this.pos++
    }
    return node
  }
}

/**
 * json.Decoder over a body that arrives in pieces: next() gives each value once it is
 * complete, "more" while the text so far ends inside one, undefined at the end of the body.
 * A syntax error is reported as soon as the text shows it, as Go's scanner does.
 */
export class StreamingBodyDecoder {
  private text = ""
  private ended = false

  push(text: string): void {
    this.text += text
  }

  end(): void {
    this.ended = true
  }

  next(): Node | undefined | "more" {
    const scanner = new Scanner(this.text)
    scanner.skipSpace()
    if (scanner.pos >= this.text.length) {
      this.text = ""
      return this.ended ? undefined : "more"
    }
    try {
      const node = scanner.value()
      // a number that reaches the end of the text so far may go on in the next piece
      if (node.t === "number" && scanner.pos >= this.text.length && !this.ended) return "more"
      this.text = this.text.slice(scanner.pos)
      return node
    } catch (e) {
      if (!(e instanceof EndOfInput)) throw e
      if (!this.ended) return "more"
      throw new GatewayDecodeError("unexpected EOF")
    }
  }
}

/** Go's json.Unmarshal of a whole text as one value. */
function unmarshal(text: string): Node {
  const scanner = new Scanner(text, true)
  try {
    const node = scanner.value()
    scanner.skipSpace()
    if (scanner.pos < text.length) throw new GatewayDecodeError(`invalid character ${quoteChar(text[scanner.pos]!)} after top-level value`)
    return node
  } catch (e) {
    if (e instanceof EndOfInput) throw new GatewayDecodeError("unexpected end of JSON input")
    throw e
  }
}

function typeError(node: Node, goType: string, withLiteral = false): never {
  const what = node.t === "number" && withLiteral ? `number ${node.raw}` : KIND_NAMES[node.t]
  throw new GatewayDecodeError(`json: cannot unmarshal ${what} into Go value of type ${goType}`)
}

/** Go's name of an enum type: "etcdserverpb.RangeRequest.SortOrder" -> "etcdserverpb.RangeRequest_SortOrder". */
function goEnumName(type: string): string {
  const dot = type.indexOf(".")
  return type.slice(0, dot + 1) + type.slice(dot + 1).replaceAll(".", "_")
}

const INT_RANGES: Record<string, readonly [bigint, bigint]> = {
  int32: [-(1n << 31n), (1n << 31n) - 1n],
  enum: [-(1n << 31n), (1n << 31n) - 1n],
  uint32: [0n, (1n << 32n) - 1n],
  int64: [-(1n << 63n), (1n << 63n) - 1n],
  int64big: [-(1n << 63n), (1n << 63n) - 1n],
  uint64: [0n, (1n << 64n) - 1n],
  uint64big: [0n, (1n << 64n) - 1n],
}

const GO_INT_TYPES: Record<string, string> = { int32: "int32", uint32: "uint32", int64: "int64", int64big: "int64", uint64: "uint64", uint64big: "uint64" }

function integer(f: FieldDescriptor, node: Node, goType: string): number | bigint | undefined {
  if (node.t === "null") return undefined
  if (node.t !== "number") return typeError(node, goType)
  const unsigned = f.kind.startsWith("uint")
  if (!(unsigned ? /^[0-9]+$/ : /^-?[0-9]+$/).test(node.raw)) return typeError(node, goType, true)
  const n = BigInt(node.raw)
  const [min, max] = INT_RANGES[f.kind]!
  if (n < min || n > max) return typeError(node, goType, true)
  if (f.kind === "int64big" || f.kind === "uint64big") return n
  // int64 fields other than ids (revisions, limits, TTLs) are numbers in the decoded
  // form: one past 2^53 is read as the nearest safe integer, which no revision, count
  // or TTL of a member reaches, so it acts as etcd's exact value does
  if (n > SAFE_MAX || n < -SAFE_MAX) {
    clamped.push({ field: f.protoName, value: n })
    return Number(n > 0n ? SAFE_MAX : -SAFE_MAX)
  }
  return Number(n)
}

/** The integers past 2^53 of the value last decoded, as sent. */
let clamped: { field: string; value: bigint }[] = []

/** What decodeRequest() read as the nearest safe integer, in order (watch ids are echoed back: the gateway keeps them). */
export function clampedIntegers(): readonly { field: string; value: bigint }[] {
  return clamped
}

const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER)

function scalar(f: FieldDescriptor, node: Node): unknown {
  switch (f.kind) {
    case "message":
      return node.t === "null" ? undefined : message(messageDescriptors[f.type]!, node)
    case "bool":
      if (node.t === "null") return undefined
      if (node.t !== "bool") return typeError(node, "bool")
      return node.value
    case "string":
      if (node.t === "null") return undefined
      if (node.t !== "string") return typeError(node, "string")
      return node.value
    case "bytes":
      if (node.t === "null") return undefined
      // encoding/json reads a []byte from base64, or from a list of numbers
      if (node.t === "array") return new Uint8Array(node.items.map(byteOf))
      if (node.t !== "string") return typeError(node, "[]uint8")
      return decodeStdBase64(node.value)
    case "enum": {
      if (node.t === "string") {
        const n = enumDescriptors[f.type]?.[node.raw]
        if (n === undefined) throw new GatewayDecodeError(`unknown value ${JSON.stringify(node.raw)} for enum ${goEnumName(f.type)}`)
        return n
      }
      return integer(f, node, goEnumName(f.type))
    }
    default: {
      const goType = GO_INT_TYPES[f.kind]
      if (goType === undefined) throw new GatewayDecodeError(`field kind ${f.kind} has no JSON form`)
      return integer(f, node.t === "string" ? unmarshal(node.raw) : node, goType)
    }
  }
}

function message(d: MessageDescriptor, node: Node): Record<string, unknown> {
  if (node.t === "null") return {}
  if (node.t !== "object") return typeError(node, "map[string]json.RawMessage")
  const out: Record<string, unknown> = {}
  const oneofsSet = new Set<string>()
  for (const f of d.fields) {
    // both present: jsonpb takes the camelCase one
    const key = node.entries.has(f.jsonName) ? f.jsonName : node.entries.has(f.protoName) ? f.protoName : undefined
    if (key === undefined) continue
    const value = node.entries.get(key)!
    if (f.oneof !== undefined) {
      if (oneofsSet.has(f.oneof)) continue
      oneofsSet.add(f.oneof)
      const member = scalar(f, value)
      if (member !== undefined) out[f.name] = member
      continue
    }
    if (f.repeated) {
      if (value.t === "null") continue
      if (value.t !== "array") return typeError(value, "[]json.RawMessage")
      // the panic comes after jsonpb has read the whole value (its errors first)
      if (f.kind === "message" && nullInList === undefined && value.items.some((item) => item.t === "null")) nullInList = f.protoName
      out[f.name] = value.items.map((item) => scalar(f, item) ?? zeroOf(f))
      continue
    }
    const v = scalar(f, value)
    if (v !== undefined) out[f.name] = v
  }
  return out
}

function byteOf(node: Node): number {
  if (node.t === "null") return 0
  if (node.t !== "number") return typeError(node, "uint8")
  if (!/^[0-9]+$/.test(node.raw) || Number(node.raw) > 255) return typeError(node, "uint8", true)
  return Number(node.raw)
}

/** What Go leaves in a list element given null. */
function zeroOf(f: FieldDescriptor): unknown {
  switch (f.kind) {
    case "message":
      return {}
    case "bool":
      return false
    case "string":
      return ""
    case "bytes":
      return new Uint8Array(0)
    case "int64big":
    case "uint64big":
      return 0n
    default:
      return 0
  }
}

/** The first list of messages with a null element in the value being decoded. */
let nullInList: string | undefined

/** One body value as the request message typeName, in the form decodeX returns. */
export function decodeRequest<T = Record<string, unknown>>(typeName: string, node: Node | undefined): T {
  const d = messageDescriptors[typeName]
  if (d === undefined) throw new GatewayDecodeError(`unknown message type ${typeName}`)
  nullInList = undefined
  clamped = []
  const fields = node === undefined ? {} : message(d, node)
  if (nullInList !== undefined) throw new NullMessageInList(`null in the list ${nullInList}`)
  return d.decode(d.encode(fields)) as T
}

const STD_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
const STD_VALUES = new Map([...STD_ALPHABET].map((c, i) => [c, i]))

/** Go's base64.StdEncoding.DecodeString, with its CorruptInputError offsets. */
export function decodeStdBase64(text: string): Uint8Array {
  const out: number[] = []
  const corrupt = (at: number): never => {
    throw new GatewayDecodeError(`illegal base64 data at input byte ${at}`)
  }
  let si = 0
  while (si < text.length) {
    const quantum: number[] = []
    let dlen = 4
    let done = false
    for (let j = 0; j < 4; j++) {
      if (si === text.length) {
        if (j === 0) return new Uint8Array(out)
        corrupt(si - j)
      }
      const c = text[si]!
      si++
      const v = STD_VALUES.get(c)
      if (v !== undefined) {
        quantum[j] = v
        continue
      }
      if (c === "\n" || c === "\r") {
        j--
        continue
      }
      if (c !== "=") corrupt(si - 1)
      if (j === 0 || j === 1) corrupt(si - 1)
      if (j === 2) {
        while (si < text.length && (text[si] === "\n" || text[si] === "\r")) si++
        if (si === text.length) corrupt(text.length)
        if (text[si] !== "=") corrupt(si - 1)
        si++
      }
      while (si < text.length && (text[si] === "\n" || text[si] === "\r")) si++
      if (si < text.length) corrupt(si)
      dlen = j
      done = true
      break
    }
    const [a = 0, b = 0, c = 0, d = 0] = quantum
    const bits = (a << 18) | (b << 12) | (c << 6) | d
    const bytes = [(bits >> 16) & 0xff, (bits >> 8) & 0xff, bits & 0xff]
    out.push(...bytes.slice(0, dlen - 1))
    if (done) break
  }
  return new Uint8Array(out)
}
