// Generates src/pb/ from proto/: plain TS interfaces, hand-rolled encoders and
// decoders (no reflection at run time) and gRPC service descriptors.
// Run: npx bun scripts/gen_proto.ts   (output is committed; protobufjs is used
// here only to parse the .proto files, never at run time).
//
// Shapes follow the shared convention (/tmp/pbconv.md, repeated in src/pb/README
// header comments): protobufjs camelCase names; bytes -> Uint8Array; 64-bit
// integers -> number (checked with Number.isSafeInteger) except the 64-bit ids
// listed in BIGINT_FIELDS, which are bigint; every scalar and repeated field is
// set on decoded messages; nested messages and oneof members are optional.

import protobuf from "protobufjs"
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join, resolve } from "node:path"

const repoDir = resolve(import.meta.dir, "..")
const protoDir = join(repoDir, "proto")
/** Output directory: src/pb, or the directory after --out (the freshness test writes to a temp dir). */
const outArg = process.argv.indexOf("--out")
const outDir = outArg > 0 && process.argv[outArg + 1] !== undefined ? resolve(process.argv[outArg + 1]!) : join(repoDir, "src", "pb")

/** Proto files and the TS module each becomes. */
const FILES: readonly { proto: string; module: string }[] = [
  { proto: "mvccpb/kv.proto", module: "mvccpb" },
  { proto: "authpb/auth.proto", module: "authpb" },
  { proto: "etcdserverpb/rpc.proto", module: "etcdserverpb" },
  { proto: "v3lockpb/v3lock.proto", module: "v3lockpb" },
  { proto: "v3electionpb/v3election.proto", module: "v3electionpb" },
  { proto: "grpc/health/v1/health.proto", module: "health" },
]

/** 64-bit fields (by proto name) that are random ids and therefore bigint. */
const BIGINT_FIELDS = new Set(["ID", "IDs", "lease", "cluster_id", "member_id", "leader", "memberID", "targetID"])

type ScalarKind = "bool" | "int32" | "uint32" | "enum" | "int64" | "uint64" | "int64big" | "uint64big" | "string" | "bytes"

interface FieldInfo {
  name: string // TS name
  protoName: string
  id: number
  repeated: boolean
  oneof: string | undefined
  kind: ScalarKind | "message"
  typeName: string // TS type name of message/enum ("" for plain scalars)
  typeModule: string // module that defines it
}

interface MessageInfo {
  name: string
  module: string
  fullName: string
  fields: FieldInfo[]
}

interface EnumInfo {
  name: string
  module: string
  values: [string, number][]
}

// ---------------------------------------------------------------- parse

function loadRoot(): protobuf.Root {
  const root = new protobuf.Root()
  root.resolvePath = (_origin: string, target: string) => (target.startsWith("/") ? target : join(protoDir, target))
  root.loadSync(FILES.map((f) => join(protoDir, f.proto)), { keepCase: true })
  root.resolveAll()
  return root
}

function moduleOf(obj: protobuf.ReflectionObject): string {
  const file = obj.filename ?? ""
  const found = FILES.find((f) => file.endsWith(f.proto))
  if (found === undefined) throw new Error(`no module for ${obj.fullName} (${file})`)
  return found.module
}

/** TS name of a message or enum: nested types are joined with "_". */
function tsName(obj: protobuf.ReflectionObject): string {
  const parts: string[] = []
  let cur: protobuf.ReflectionObject | null = obj
  while (cur !== null && !(cur instanceof protobuf.Namespace && !(cur instanceof protobuf.Type))) {
    parts.unshift(cur.name)
    cur = cur.parent
  }
  return parts.join("_")
}

function scalarKind(field: protobuf.Field): ScalarKind | "message" {
  const rt = field.resolvedType
  if (rt instanceof protobuf.Type) return "message"
  if (rt instanceof protobuf.Enum) return "enum"
  const big = BIGINT_FIELDS.has(field.name)
  switch (field.type) {
    case "bool":
    case "int32":
    case "uint32":
    case "string":
    case "bytes":
      return field.type
    case "int64":
      return big ? "int64big" : "int64"
    case "uint64":
      return big ? "uint64big" : "uint64"
    default:
      throw new Error(`unsupported proto type ${field.type} of ${field.fullName}`)
  }
}

function collect(root: protobuf.Root): { messages: MessageInfo[]; enums: EnumInfo[] } {
  const messages: MessageInfo[] = []
  const enums: EnumInfo[] = []
  const visit = (ns: protobuf.NamespaceBase): void => {
    for (const obj of ns.nestedArray) {
      if (obj instanceof protobuf.Type) {
        const fields = obj.fieldsArray.map((f): FieldInfo => {
          if (f.map) throw new Error(`map fields unsupported: ${f.fullName}`)
          const kind = scalarKind(f)
          const rt = f.resolvedType
          return {
            name: protobuf.util.camelCase(f.name),
            protoName: f.name,
            id: f.id,
            repeated: f.repeated,
            oneof: f.partOf?.name,
            kind,
            typeName: rt === null ? "" : tsName(rt),
            typeModule: rt === null ? "" : moduleOf(rt),
          }
        })
        fields.sort((a, b) => a.id - b.id)
        messages.push({ name: tsName(obj), module: moduleOf(obj), fullName: obj.fullName.slice(1), fields })
        visit(obj)
      } else if (obj instanceof protobuf.Enum) {
        enums.push({ name: tsName(obj), module: moduleOf(obj), values: Object.entries(obj.values) })
      } else if (obj instanceof protobuf.Namespace) {
        visit(obj)
      }
    }
  }
  visit(root)
  return { messages, enums }
}

// ---------------------------------------------------------------- types

function tsType(f: FieldInfo, init: boolean): string {
  let t: string
  switch (f.kind) {
    case "bool":
      t = "boolean"
      break
    case "int32":
    case "uint32":
    case "enum":
    case "int64":
    case "uint64":
      t = "number"
      break
    case "int64big":
    case "uint64big":
      t = "bigint"
      break
    case "string":
      t = "string"
      break
    case "bytes":
      t = "Uint8Array"
      break
    case "message":
      t = init ? `${f.typeName}Init` : f.typeName
      break
  }
  if (f.repeated) return init ? `readonly ${t}[]` : `${t}[]`
  return t
}

function isOptional(f: FieldInfo): boolean {
  return !f.repeated && (f.kind === "message" || f.oneof !== undefined)
}

function defaultValue(f: FieldInfo): string {
  if (f.repeated) return "[]"
  if (isOptional(f)) return "undefined"
  switch (f.kind) {
    case "bool":
      return "false"
    case "int64big":
    case "uint64big":
      return "0n"
    case "string":
      return '""'
    case "bytes":
      return "EMPTY"
    case "message":
      return "undefined"
    default:
      return "0"
  }
}

// ---------------------------------------------------------------- wire helpers

const WIRE_VARINT = 0
const WIRE_LEN = 2

function wireType(f: FieldInfo): number {
  return f.kind === "string" || f.kind === "bytes" || f.kind === "message" ? WIRE_LEN : WIRE_VARINT
}

function varintBytes(value: number): number[] {
  const out: number[] = []
  let v = value
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80)
    v = Math.floor(v / 128)
  }
  out.push(v)
  return out
}

function tagOf(f: FieldInfo, wt: number): number {
  return f.id * 8 + wt
}

function writeTagCode(tag: number): string {
  return varintBytes(tag)
    .map((b) => `buf[pos++] = ${b}`)
    .join("; ")
}

/** Size in bytes of one element's value (without tag), as an expression over `v`. */
function valueSizeExpr(f: FieldInfo): string {
  switch (f.kind) {
    case "bool":
      return "1"
    case "int32":
    case "enum":
      return "sizeInt32(v)"
    case "uint32":
      return "sizeVarint32(v >>> 0)"
    case "int64":
    case "uint64":
      return "sizeInt64(v)"
    case "int64big":
    case "uint64big":
      return "sizeBig(v)"
    case "bytes":
      return "sizeVarint32(v.length) + v.length"
    default:
      throw new Error(`valueSizeExpr(${f.kind})`)
  }
}

function writeValueCode(f: FieldInfo): string {
  switch (f.kind) {
    case "bool":
      return "buf[pos++] = v ? 1 : 0"
    case "int32":
    case "enum":
      return "pos = writeInt32(buf, pos, v)"
    case "uint32":
      return "pos = writeVarint32(buf, pos, v >>> 0)"
    case "int64":
    case "uint64":
      return "pos = writeInt64(buf, pos, v)"
    case "int64big":
    case "uint64big":
      return "pos = writeBig(buf, pos, v)"
    case "bytes":
      return "pos = writeBytes(buf, pos, v)"
    default:
      throw new Error(`writeValueCode(${f.kind})`)
  }
}

function readValueCode(f: FieldInfo): string {
  switch (f.kind) {
    case "bool":
      return "readVarint32(r) !== 0"
    case "int32":
    case "enum":
      return "readVarint32(r) | 0"
    case "uint32":
      return "readVarint32(r)"
    case "int64":
      return "readInt64(r)"
    case "uint64":
      return "readUint64(r)"
    case "int64big":
      return "readInt64Big(r)"
    case "uint64big":
      return "readUint64Big(r)"
    case "string":
      return "readString(r, end)"
    case "bytes":
      return "readBytes(r, end)"
    case "message":
      return `read${f.typeName}(r, readEnd(r, end))`
  }
}

/** Condition under which a singular field is written. */
function presentCond(f: FieldInfo): string {
  if (f.oneof !== undefined || f.kind === "message") return "v !== undefined"
  switch (f.kind) {
    case "bool":
      return "v === true"
    case "int64big":
    case "uint64big":
      return "v !== undefined && v !== 0n"
    case "string":
      return 'v !== undefined && v !== ""'
    case "bytes":
      return "v !== undefined && v.length !== 0"
    default:
      return "v !== undefined && v !== 0"
  }
}

const isPackable = (f: FieldInfo): boolean => f.repeated && wireType(f) === WIRE_VARINT

// ---------------------------------------------------------------- code per message

function genSize(m: MessageInfo): string {
  const lines: string[] = [`export function size${m.name}(m: ${m.name}Init): number {`, "  let n = 0"]
  for (const f of m.fields) {
    const tagLen = varintBytes(tagOf(f, wireType(f))).length
    const acc = `m.${f.name}`
    if (f.repeated) {
      lines.push(`  { const a = ${acc}; if (a !== undefined && a.length !== 0) {`)
      if (isPackable(f)) {
        lines.push(`    const s = reserveSize(); let k = 0`)
        lines.push(`    for (let i = 0; i < a.length; i++) { const v = a[i]!; k += ${valueSizeExpr(f)} }`)
        lines.push(`    W.sizes[s] = k; n += ${varintBytes(tagOf(f, WIRE_LEN)).length} + sizeVarint32(k) + k`)
      } else if (f.kind === "message" || f.kind === "string") {
        const inner = f.kind === "message" ? `size${f.typeName}(a[i]!)` : "utf8Length(a[i]!)"
        lines.push(`    for (let i = 0; i < a.length; i++) { const s = reserveSize(); const k = ${inner}; W.sizes[s] = k; n += ${tagLen} + sizeVarint32(k) + k }`)
      } else {
        lines.push(`    for (let i = 0; i < a.length; i++) { const v = a[i]!; n += ${tagLen} + ${valueSizeExpr(f)} }`)
      }
      lines.push("  } }")
      continue
    }
    lines.push(`  { const v = ${acc}; if (${presentCond(f)}) {`)
    if (f.kind === "message") {
      lines.push(`    const s = reserveSize(); const k = size${f.typeName}(v); W.sizes[s] = k; n += ${tagLen} + sizeVarint32(k) + k`)
    } else if (f.kind === "string") {
      lines.push(`    const s = reserveSize(); const k = utf8Length(v); W.sizes[s] = k; n += ${tagLen} + sizeVarint32(k) + k`)
    } else {
      lines.push(`    n += ${tagLen} + ${valueSizeExpr(f)}`)
    }
    lines.push("  } }")
  }
  lines.push("  return n", "}")
  return lines.join("\n")
}

function genWrite(m: MessageInfo): string {
  const lines: string[] = [`export function write${m.name}(m: ${m.name}Init, buf: Uint8Array, pos: number): number {`]
  for (const f of m.fields) {
    const acc = `m.${f.name}`
    const tagCode = writeTagCode(tagOf(f, wireType(f)))
    if (f.repeated) {
      lines.push(`  { const a = ${acc}; if (a !== undefined && a.length !== 0) {`)
      if (isPackable(f)) {
        lines.push(`    ${writeTagCode(tagOf(f, WIRE_LEN))}; pos = writeVarint32(buf, pos, W.sizes[W.read++]!)`)
        lines.push(`    for (let i = 0; i < a.length; i++) { const v = a[i]!; ${writeValueCode(f)} }`)
      } else if (f.kind === "message") {
        lines.push(`    for (let i = 0; i < a.length; i++) { ${tagCode}; pos = writeVarint32(buf, pos, W.sizes[W.read++]!); pos = write${f.typeName}(a[i]!, buf, pos) }`)
      } else if (f.kind === "string") {
        lines.push(`    for (let i = 0; i < a.length; i++) { ${tagCode}; const k = W.sizes[W.read++]!; pos = writeVarint32(buf, pos, k); pos = writeUtf8(buf, pos, a[i]!, k) }`)
      } else {
        lines.push(`    for (let i = 0; i < a.length; i++) { const v = a[i]!; ${tagCode}; ${writeValueCode(f)} }`)
      }
      lines.push("  } }")
      continue
    }
    lines.push(`  { const v = ${acc}; if (${presentCond(f)}) {`)
    if (f.kind === "message") {
      lines.push(`    ${tagCode}; pos = writeVarint32(buf, pos, W.sizes[W.read++]!); pos = write${f.typeName}(v, buf, pos)`)
    } else if (f.kind === "string") {
      lines.push(`    ${tagCode}; const k = W.sizes[W.read++]!; pos = writeVarint32(buf, pos, k); pos = writeUtf8(buf, pos, v, k)`)
    } else {
      lines.push(`    ${tagCode}; ${writeValueCode(f)}`)
    }
    lines.push("  } }")
  }
  lines.push("  return pos", "}")
  return lines.join("\n")
}

function genRead(m: MessageInfo): string {
  // base: the value decoded so far when the message occurs again on the wire
  // (protobuf merges: later scalars win, lists append, messages merge).
  const lines: string[] = [
    `export function read${m.name}(r: Reader, end: number, base?: ${m.name}): ${m.name} {`,
  ]
  for (const f of m.fields) {
    const t = isOptional(f) ? `${tsType(f, false)} | undefined` : tsType(f, false)
    lines.push(`  let f_${f.name}: ${t} = ${defaultValue(f)}`)
  }
  if (m.fields.length > 0) {
    lines.push(`  if (base !== undefined) {`)
    for (const f of m.fields) lines.push(`    f_${f.name} = base.${f.name}`)
    lines.push("  }")
  }
  lines.push("  while (r.pos < end) {", "    const tag = readVarint32(r)", "    switch (tag) {")
  for (const f of m.fields) {
    const clearOthers = f.oneof === undefined ? "" : m.fields
      .filter((o) => o.oneof === f.oneof && o !== f)
      .map((o) => ` f_${o.name} = undefined;`)
      .join("")
    if (f.repeated) {
      lines.push(`      case ${tagOf(f, wireType(f))}: f_${f.name}.push(${readValueCode(f)}); break`)
      if (isPackable(f)) {
        lines.push(`      case ${tagOf(f, WIRE_LEN)}: { const e = readEnd(r, end); while (r.pos < e) f_${f.name}.push(${readValueCode(f)}); if (r.pos !== e) throw invalid("packed field overruns its length"); break }`)
      }
    } else if (f.kind === "message") {
      lines.push(`      case ${tagOf(f, wireType(f))}:${clearOthers} f_${f.name} = read${f.typeName}(r, readEnd(r, end), f_${f.name}); break`)
    } else {
      lines.push(`      case ${tagOf(f, wireType(f))}:${clearOthers} f_${f.name} = ${readValueCode(f)}; break`)
    }
  }
  const known = m.fields.map((f) => f.id).join(", ")
  lines.push(`      default: skipField(r, tag, end, ${m.fields.length === 0 ? "NO_FIELDS" : `KNOWN_${m.name}`})`)
  lines.push("    }", "  }", '  if (r.pos !== end) throw invalid("field overruns message end")')
  const required = m.fields.filter((f) => !isOptional(f))
  const optional = m.fields.filter((f) => isOptional(f))
  const literal = required.map((f) => `${f.name}: f_${f.name}`).join(", ")
  if (optional.length === 0) {
    lines.push(`  return { ${literal} }`)
  } else {
    lines.push(`  const m: ${m.name} = { ${literal} }`)
    for (const f of optional) lines.push(`  if (f_${f.name} !== undefined) m.${f.name} = f_${f.name}`)
    lines.push("  return m")
  }
  lines.push("}")
  if (m.fields.length > 0) lines.unshift(`const KNOWN_${m.name} = new Set([${known}])`)
  return lines.join("\n")
}

function genMessage(m: MessageInfo): string {
  const out: string[] = []
  out.push(`/** ${m.fullName} (decoded form: every scalar and repeated field is set). */`)
  out.push(`export interface ${m.name} {`)
  for (const f of m.fields) out.push(`  ${f.name}${isOptional(f) ? "?" : ""}: ${tsType(f, false)}`)
  out.push("}")
  out.push(`/** ${m.fullName} as accepted by the encoder: default-valued fields may be omitted. */`)
  out.push(`export interface ${m.name}Init {`)
  for (const f of m.fields) out.push(`  ${f.name}?: ${tsType(f, true)} | undefined`)
  out.push("}")
  out.push(`export function encode${m.name}(m: ${m.name}Init): Buffer {`)
  out.push(`  return encode${m.name}After(m, 0)`)
  out.push("}")
  out.push(`/** Encodes with the 5-byte gRPC message prefix (uncompressed flag, big-endian length) in front. */`)
  out.push(`export function frame${m.name}(m: ${m.name}Init): Buffer {`)
  out.push(`  return writeGrpcPrefix(encode${m.name}After(m, 5))`)
  out.push("}")
  out.push(`function encode${m.name}After(m: ${m.name}Init, headroom: number): Buffer {`)
  out.push(`  W.top = 0`)
  out.push(`  const n = size${m.name}(m)`)
  out.push(`  const buf = Buffer.allocUnsafe(headroom + n)`)
  out.push(`  W.read = 0`)
  out.push(`  if (write${m.name}(m, buf, headroom) !== headroom + n) throw new Error("pb: ${m.name} size mismatch")`)
  out.push(`  return buf`)
  out.push("}")
  out.push(`/** Decodes ${m.fullName}; bytes fields are views into \`bytes\` (no copy). */`)
  out.push(`export function decode${m.name}(bytes: Uint8Array): ${m.name} {`)
  out.push(`  return read${m.name}(new Reader(bytes), bytes.length)`)
  out.push("}")
  out.push(genSize(m))
  out.push(genWrite(m))
  out.push(genRead(m))
  return out.join("\n")
}

function genEnum(e: EnumInfo): string {
  const lines = [`export enum ${e.name} {`]
  for (const [k, v] of e.values) lines.push(`  ${k} = ${v},`)
  lines.push("}")
  return lines.join("\n")
}

const HEADER = "// Code generated by scripts/gen_proto.ts from proto/. DO NOT EDIT.\n"

function genModule(module: string, messages: MessageInfo[], enums: EnumInfo[]): string {
  const mine = messages.filter((m) => m.module === module)
  const myEnums = enums.filter((e) => e.module === module)
  const imports = new Map<string, Set<string>>()
  for (const m of mine)
    for (const f of m.fields) {
      if (f.kind !== "message" || f.typeModule === module) continue
      const set = imports.get(f.typeModule) ?? new Set<string>()
      for (const n of [f.typeName, `${f.typeName}Init`]) set.add(`type ${n}`)
      set.add(`size${f.typeName}`).add(`write${f.typeName}`).add(`read${f.typeName}`)
      imports.set(f.typeModule, set)
    }
  const out = [HEADER, "/* eslint-disable */"]
  const rt = [
    "EMPTY", "NO_FIELDS", "Reader", "W", "invalid", "readBytes", "readEnd", "readInt64", "readInt64Big", "readString",
    "readUint64", "readUint64Big", "readVarint32", "reserveSize", "sizeBig", "sizeInt32", "sizeInt64", "sizeVarint32",
    "skipField", "utf8Length", "writeBig", "writeBytes", "writeGrpcPrefix", "writeInt32", "writeInt64", "writeUtf8", "writeVarint32",
  ]
  out.push(`import { ${rt.join(", ")} } from "./wire"`)
  for (const [mod, names] of imports) out.push(`import { ${[...names].sort().join(", ")} } from "./${mod}"`)
  out.push("")
  for (const e of myEnums) out.push(genEnum(e), "")
  for (const m of mine) out.push(genMessage(m), "")
  return out.join("\n")
}

// ---------------------------------------------------------------- services

interface MethodInfo {
  service: string // full name "etcdserverpb.KV"
  serviceName: string
  name: string
  requestType: string
  requestModule: string
  responseType: string
  responseModule: string
  requestStream: boolean
  responseStream: boolean
  gateway: string[]
  requestFull: string
  responseFull: string
}

function gatewayRoutes(): Map<string, string[]> {
  const routes = new Map<string, string[]>()
  for (const f of FILES) {
    const text = readFileSync(join(protoDir, f.proto), "utf8")
    const re = /\/\/ gateway: POST ([^\n]+)\n\s*rpc (\w+)\(/g
    let serviceName = ""
    const serviceAt: [number, string][] = [...text.matchAll(/service (\w+) \{/g)].map((x) => [x.index, x[1]!])
    for (const match of text.matchAll(re)) {
      for (const [at, name] of serviceAt) if (at < match.index) serviceName = name
      routes.set(`${serviceName}.${match[2]}`, match[1]!.trim().split(/\s+/))
    }
  }
  return routes
}

function collectMethods(root: protobuf.Root): MethodInfo[] {
  const routes = gatewayRoutes()
  const methods: MethodInfo[] = []
  const visit = (ns: protobuf.NamespaceBase): void => {
    for (const obj of ns.nestedArray) {
      if (obj instanceof protobuf.Service) {
        for (const m of obj.methodsArray) {
          const req = m.resolvedRequestType
          const res = m.resolvedResponseType
          if (req === null || res === null) throw new Error(`unresolved ${m.fullName}`)
          methods.push({
            service: obj.fullName.slice(1),
            serviceName: obj.name,
            name: m.name,
            requestType: tsName(req),
            requestModule: moduleOf(req),
            responseType: tsName(res),
            responseModule: moduleOf(res),
            requestStream: m.requestStream === true,
            responseStream: m.responseStream === true,
            gateway: routes.get(`${obj.name}.${m.name}`) ?? [],
            requestFull: req.fullName.slice(1),
            responseFull: res.fullName.slice(1),
          })
        }
      } else if (obj instanceof protobuf.Namespace) {
        visit(obj)
      }
    }
  }
  visit(root)
  return methods
}

function genServices(methods: MethodInfo[]): string {
  const imports = new Map<string, Set<string>>()
  const add = (mod: string, name: string): void => {
    const set = imports.get(mod) ?? new Set<string>()
    set.add(`type ${name}`).add(`type ${name}Init`).add(`encode${name}`).add(`decode${name}`).add(`frame${name}`)
    imports.set(mod, set)
  }
  for (const m of methods) {
    add(m.requestModule, m.requestType)
    add(m.responseModule, m.responseType)
  }
  const out = [HEADER]
  for (const [mod, names] of imports) out.push(`import { ${[...names].sort().join(", ")} } from "./${mod}"`)
  out.push(`
/**
 * One RPC. Usable as a @grpc/grpc-js MethodDefinition (path, stream flags,
 * (de)serializers, originalName) and by our own HTTP/2 gRPC server
 * (requestDeserialize/responseSerialize; gatewayPaths and the type names for
 * the JSON gateway: fromJson(m.requestType, body), toJson(m.responseType, res)).
 */
export interface PbMethod<Req, ReqInit, Res, ResInit> {
  readonly path: string
  readonly service: string
  readonly method: string
  readonly requestStream: boolean
  readonly responseStream: boolean
  readonly requestSerialize: (m: ReqInit) => Buffer
  readonly requestDeserialize: (bytes: Uint8Array) => Req
  readonly responseSerialize: (m: ResInit) => Buffer
  readonly responseDeserialize: (bytes: Uint8Array) => Res
  /** Serializers that put the 5-byte gRPC message prefix in front (one buffer, no copy). */
  readonly requestFrame: (m: ReqInit) => Buffer
  readonly responseFrame: (m: ResInit) => Buffer
  readonly originalName: string
  /** grpc-gateway routes (POST), first is the primary one. */
  readonly gatewayPaths: readonly string[]
  /** Full proto names of the request and response messages ("etcdserverpb.RangeRequest"). */
  readonly requestType: string
  readonly responseType: string
}

// biome-ignore lint: generic over every method
export type AnyPbMethod = PbMethod<any, any, any, any>

function method<Req, ReqInit, Res, ResInit>(m: PbMethod<Req, ReqInit, Res, ResInit>): PbMethod<Req, ReqInit, Res, ResInit> {
  return m
}
`)
  const byService = new Map<string, MethodInfo[]>()
  for (const m of methods) byService.set(m.service, [...(byService.get(m.service) ?? []), m])
  const names: string[] = []
  for (const [service, ms] of byService) {
    const constName = `${ms[0]!.serviceName}Service`
    names.push(constName)
    out.push(`/** ${service} */`)
    out.push(`export const ${constName} = {`)
    for (const m of ms) {
      const req = m.requestType
      const res = m.responseType
      const lower = m.name.charAt(0).toLowerCase() + m.name.slice(1)
      out.push(`  ${m.name}: method<${req}, ${req}Init, ${res}, ${res}Init>({`)
      out.push(`    path: "/${service}/${m.name}",`)
      out.push(`    service: "${service}",`)
      out.push(`    method: "${m.name}",`)
      out.push(`    requestStream: ${m.requestStream},`)
      out.push(`    responseStream: ${m.responseStream},`)
      out.push(`    requestSerialize: encode${req},`)
      out.push(`    requestDeserialize: decode${req},`)
      out.push(`    responseSerialize: encode${res},`)
      out.push(`    responseDeserialize: decode${res},`)
      out.push(`    requestFrame: frame${req},`)
      out.push(`    responseFrame: frame${res},`)
      out.push(`    originalName: "${lower}",`)
      out.push(`    gatewayPaths: ${JSON.stringify(m.gateway)},`)
      out.push(`    requestType: "${m.requestFull}",`)
      out.push(`    responseType: "${m.responseFull}",`)
      out.push(`  }),`)
    }
    out.push("} as const", "")
  }
  out.push(`/** Every service, by full name ("etcdserverpb.KV"). */`)
  out.push(`export const allServices = {`)
  for (const [service, ms] of byService) out.push(`  "${service}": ${ms[0]!.serviceName}Service,`)
  out.push("} as const", "")
  out.push(`/** Every method by its gRPC path ("/etcdserverpb.KV/Range"). */`)
  out.push(`export const methodsByPath: ReadonlyMap<string, AnyPbMethod> = new Map(`)
  out.push(`  Object.values(allServices).flatMap((s) => Object.values(s) as AnyPbMethod[]).map((m) => [m.path, m]),`)
  out.push(")", "")
  out.push(`/** Every grpc-gateway route (POST path -> method). */`)
  out.push(`export const gatewayRoutes: ReadonlyMap<string, AnyPbMethod> = new Map(`)
  out.push(`  [...methodsByPath.values()].flatMap((m) => m.gatewayPaths.map((p) => [p, m] as const)),`)
  out.push(")", "")
  return out.join("\n")
}

// ---------------------------------------------------------------- runtime

const WIRE_TS = String.raw`// Code generated by scripts/gen_proto.ts. DO NOT EDIT.
// Runtime of the generated codecs: varints, lengths, strings, bounds checks.

/** Thrown on malformed or truncated protobuf input. */
export class PbDecodeError extends Error {
  override readonly name = "PbDecodeError"
}

export function invalid(why: string): PbDecodeError {
  return new PbDecodeError("pb: " + why)
}

function truncated(): PbDecodeError {
  return invalid("truncated input")
}

/** Shared empty bytes for absent bytes fields (length 0, nothing to mutate). */
export const EMPTY: Uint8Array = new Uint8Array(0)
export const NO_FIELDS: ReadonlySet<number> = new Set()

const textDecoder = new TextDecoder()
const textEncoder = new TextEncoder()

// ---- encoding

/**
 * Sizes of nested messages, packed fields and strings, recorded in pre-order
 * by the size pass and consumed in the same order by the write pass, so that
 * every size is computed once. Encoding is synchronous, so one table serves.
 */
export const W = { sizes: new Int32Array(256), top: 0, read: 0 }

/** Fills the 5-byte gRPC prefix of a message encoded 5 bytes in. */
export function writeGrpcPrefix(buf: Buffer): Buffer {
  const n = buf.length - 5
  buf[0] = 0
  buf[1] = n >>> 24
  buf[2] = (n >>> 16) & 0xff
  buf[3] = (n >>> 8) & 0xff
  buf[4] = n & 0xff
  return buf
}

export function reserveSize(): number {
  if (W.top === W.sizes.length) {
    const bigger = new Int32Array(W.sizes.length * 2)
    bigger.set(W.sizes)
    W.sizes = bigger
  }
  return W.top++
}

export function sizeVarint32(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5
}

export function sizeInt32(v: number): number {
  return v < 0 ? 10 : sizeVarint32(v)
}

/** Size of a 64-bit integer held in a number (negative: 10 bytes, two's complement). */
export function sizeInt64(v: number): number {
  if (v < 0) return 10
  if (v < 0x10000000) return sizeVarint32(v)
  let n = 4
  let x = Math.floor(v / 0x10000000)
  while (x > 0) {
    n++
    x = Math.floor(x / 128)
  }
  return n
}

// 64-bit ids are split into 32-bit halves through one typed-array slot (wraps negatives mod 2^64).
const slot64 = new BigUint64Array(1)
const slot32 = new Uint32Array(slot64.buffer)
const slotSigned = new BigInt64Array(slot64.buffer)
if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) throw new Error("pb: little-endian host required")

export function sizeBig(v: bigint): number {
  slot64[0] = v
  const hi = slot32[1]!
  if (hi === 0) return sizeVarint32(slot32[0]!)
  return hi < 0x8 ? 5 : hi < 0x400 ? 6 : hi < 0x20000 ? 7 : hi < 0x1000000 ? 8 : hi < 0x80000000 ? 9 : 10
}

export function writeVarint32(buf: Uint8Array, pos: number, v: number): number {
  while (v > 0x7f) {
    buf[pos++] = (v & 0x7f) | 0x80
    v >>>= 7
  }
  buf[pos++] = v
  return pos
}

export function writeInt32(buf: Uint8Array, pos: number, v: number): number {
  if (v >= 0) return writeVarint32(buf, pos, v)
  return writeParts(buf, pos, v >>> 0, 0xffffffff)
}

function writeParts(buf: Uint8Array, pos: number, lo: number, hi: number): number {
  while (hi !== 0 || lo > 0x7f) {
    buf[pos++] = (lo & 0x7f) | 0x80
    lo = ((lo >>> 7) | (hi << 25)) >>> 0
    hi >>>= 7
  }
  buf[pos++] = lo
  return pos
}

export function writeInt64(buf: Uint8Array, pos: number, v: number): number {
  if (v >= 0 && v < 0x80000000) return writeVarint32(buf, pos, v)
  const hi = Math.floor(v / 4294967296)
  return writeParts(buf, pos, (v - hi * 4294967296) >>> 0, hi >>> 0)
}

export function writeBig(buf: Uint8Array, pos: number, v: bigint): number {
  slot64[0] = v
  return writeParts(buf, pos, slot32[0]!, slot32[1]!)
}

export function writeBytes(buf: Uint8Array, pos: number, v: Uint8Array): number {
  const n = v.length
  pos = writeVarint32(buf, pos, n)
  if (n < 32) for (let i = 0; i < n; i++) buf[pos + i] = v[i]!
  else buf.set(v, pos)
  return pos + n
}

/** UTF-8 length of a JS string (lone surrogates count 3, as TextEncoder writes U+FFFD). */
export function utf8Length(s: string): number {
  let n = s.length
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x80) continue
    if (c < 0x800) n += 1
    else if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 2
      i++
    } else n += 2
  }
  return n
}

export function writeUtf8(buf: Uint8Array, pos: number, s: string, byteLength: number): number {
  if (byteLength === s.length) {
    for (let i = 0; i < byteLength; i++) buf[pos + i] = s.charCodeAt(i)
  } else {
    textEncoder.encodeInto(s, buf.subarray(pos, pos + byteLength))
  }
  return pos + byteLength
}

// ---- decoding

export class Reader {
  pos = 0
  constructor(readonly buf: Uint8Array) {}
}

/** Reads a varint and returns its low 32 bits, unsigned. */
export function readVarint32(r: Reader): number {
  const buf = r.buf
  let pos = r.pos
  if (pos < buf.length) {
    const b = buf[pos]!
    if (b < 0x80) {
      r.pos = pos + 1
      return b
    }
  }
  let v = 0
  for (let shift = 0; shift < 35; shift += 7) {
    if (pos >= buf.length) throw truncated()
    const b = buf[pos++]!
    v |= (b & 0x7f) << shift
    if (b < 0x80) {
      r.pos = pos
      return v >>> 0
    }
  }
  for (let i = 0; i < 5; i++) {
    if (pos >= buf.length) throw truncated()
    if (buf[pos++]! < 0x80) {
      r.pos = pos
      return v >>> 0
    }
  }
  throw invalid("varint longer than 10 bytes")
}

let partLo = 0
let partHi = 0

/** Reads a 64-bit varint into partLo/partHi (unsigned 32-bit halves). */
function readParts(r: Reader): void {
  const buf = r.buf
  let pos = r.pos
  let lo = 0
  let hi = 0
  let b = 0
  for (let shift = 0; shift < 28; shift += 7) {
    if (pos >= buf.length) throw truncated()
    b = buf[pos++]!
    lo |= (b & 0x7f) << shift
    if (b < 0x80) return doneParts(r, pos, lo, hi)
  }
  if (pos >= buf.length) throw truncated()
  b = buf[pos++]!
  lo |= (b & 0x0f) << 28
  hi = (b & 0x7f) >> 4
  if (b < 0x80) return doneParts(r, pos, lo, hi)
  for (let shift = 3; shift < 38; shift += 7) {
    if (pos >= buf.length) throw truncated()
    b = buf[pos++]!
    hi |= (b & 0x7f) << shift
    if (b < 0x80) return doneParts(r, pos, lo, hi)
  }
  throw invalid("varint longer than 10 bytes")
}

function doneParts(r: Reader, pos: number, lo: number, hi: number): void {
  r.pos = pos
  partLo = lo >>> 0
  partHi = hi >>> 0
}

/** int64 as a number; rejects values outside the safe integer range. */
export function readInt64(r: Reader): number {
  const buf = r.buf
  let pos = r.pos
  let v = 0
  let mul = 1
  for (let i = 0; i < 7 && pos < buf.length; i++) {
    const b = buf[pos++]!
    v += (b & 0x7f) * mul
    if (b < 0x80) {
      r.pos = pos
      return v
    }
    mul *= 128
  }
  readParts(r)
  const n = (partHi | 0) * 4294967296 + partLo
  if (!Number.isSafeInteger(n)) throw invalid("int64 value outside the safe integer range")
  return n
}

/** uint64 as a number; rejects values above Number.MAX_SAFE_INTEGER. */
export function readUint64(r: Reader): number {
  const buf = r.buf
  const pos = r.pos
  if (pos < buf.length && buf[pos]! < 0x80) {
    r.pos = pos + 1
    return buf[pos]!
  }
  readParts(r)
  const n = partHi * 4294967296 + partLo
  if (!Number.isSafeInteger(n)) throw invalid("uint64 value outside the safe integer range")
  return n
}

export function readInt64Big(r: Reader): bigint {
  readParts(r)
  slot32[0] = partLo
  slot32[1] = partHi
  return slotSigned[0]!
}

export function readUint64Big(r: Reader): bigint {
  readParts(r)
  slot32[0] = partLo
  slot32[1] = partHi
  return slot64[0]!
}

/** Reads a length prefix and returns the end offset of the value, checked against end. */
export function readEnd(r: Reader, end: number): number {
  const len = readVarint32(r)
  const e = r.pos + len
  if (e > end) throw truncated()
  return e
}

/** A view into the input (no copy): it aliases the decoded buffer. */
export function readBytes(r: Reader, end: number): Uint8Array {
  const e = readEnd(r, end)
  const start = r.pos
  r.pos = e
  return e === start ? EMPTY : r.buf.subarray(start, e)
}

export function readString(r: Reader, end: number): string {
  const e = readEnd(r, end)
  const buf = r.buf
  const start = r.pos
  r.pos = e
  if (e - start < 24) {
    let s = ""
    for (let i = start; i < e; i++) {
      const c = buf[i]!
      if (c >= 0x80) return textDecoder.decode(buf.subarray(start, e))
      s += String.fromCharCode(c)
    }
    return s
  }
  return textDecoder.decode(buf.subarray(start, e))
}

/** Skips a field the message does not know; a known field with the wrong wire type is an error. */
export function skipField(r: Reader, tag: number, end: number, known: ReadonlySet<number>): void {
  const field = tag >>> 3
  if (field === 0) throw invalid("field number 0")
  if (known.has(field)) throw invalid("wrong wire type " + (tag & 7) + " for field " + field)
  skipValue(r, tag, end, 0)
}

function skipValue(r: Reader, tag: number, end: number, depth: number): void {
  switch (tag & 7) {
    case 0:
      readParts(r)
      break
    case 1:
      r.pos += 8
      break
    case 2:
      r.pos = readEnd(r, end)
      break
    case 5:
      r.pos += 4
      break
    case 3: {
      if (depth > 64) throw invalid("groups nested too deep")
      for (;;) {
        if (r.pos >= end) throw truncated()
        const inner = readVarint32(r)
        if ((inner & 7) === 4) {
          if (inner >>> 3 !== tag >>> 3) throw invalid("mismatched end group")
          break
        }
        if (inner >>> 3 === 0) throw invalid("field number 0")
        skipValue(r, inner, end, depth + 1)
      }
      break
    }
    default:
      throw invalid("invalid wire type " + (tag & 7))
  }
  if (r.pos > end) throw truncated()
}
`

// ---------------------------------------------------------------- JSON (gateway)

/** protoc's json_name: drop underscores, upper-case the letter after each. */
function jsonNameOf(protoName: string): string {
  return protoName.replace(/_+([a-zA-Z0-9])/g, (_m, c: string) => c.toUpperCase()).replace(/_/g, "")
}

function genJson(messages: MessageInfo[], enums: EnumInfo[]): string {
  const out = [HEADER, "// Descriptor tables and the proto3 JSON mapping used by the /v3 JSON gateway.", ""]
  const byModule = new Map<string, string[]>()
  for (const m of messages) byModule.set(m.module, [...(byModule.get(m.module) ?? []), `encode${m.name}`, `decode${m.name}`])
  for (const [mod, names] of byModule) out.push(`import { ${names.join(", ")} } from "./${mod}"`)
  out.push(`import { messageFromJson, messageToJson, PbJsonError, setDescriptors, type MessageDescriptor } from "./json_runtime"`)
  out.push("export { PbJsonError, type FieldDescriptor, type MessageDescriptor } from \"./json_runtime\"")
  out.push("")
  const fullOf = (module: string, name: string): string => {
    const m = messages.find((x) => x.module === module && x.name === name)
    if (m !== undefined) return m.fullName
    const pkg = messages.find((x) => x.module === module)?.fullName.split(".").slice(0, -1).join(".") ?? module
    return `${pkg}.${name.replace(/_/g, ".")}`
  }
  out.push("/** Enum value names by full enum name (\"etcdserverpb.RangeRequest.SortOrder\"). */")
  out.push("export const enumDescriptors: Record<string, Record<string, number>> = {")
  for (const e of enums) out.push(`  "${fullOf(e.module, e.name)}": ${JSON.stringify(Object.fromEntries(e.values))},`)
  out.push("}", "")
  out.push("/** Every message by full name, with its fields and codecs. */")
  out.push("export const messageDescriptors: Record<string, MessageDescriptor> = {")
  for (const m of messages) {
    out.push(`  "${m.fullName}": {`)
    out.push(`    name: "${m.fullName}",`)
    out.push(`    encode: encode${m.name} as MessageDescriptor["encode"],`)
    out.push(`    decode: decode${m.name},`)
    out.push("    fields: [")
    for (const f of m.fields) {
      const type = f.kind === "message" || f.kind === "enum" ? fullOf(f.typeModule, f.typeName) : ""
      out.push(
        `      { name: "${f.name}", protoName: "${f.protoName}", jsonName: "${jsonNameOf(f.protoName)}", kind: "${f.kind}", repeated: ${f.repeated}, oneof: ${f.oneof === undefined ? "undefined" : `"${f.oneof}"`}, type: "${type}" },`,
      )
    }
    out.push("    ],")
    out.push("  },")
  }
  out.push("}", "")
  out.push(`function descriptorOf(typeName: string): MessageDescriptor {
  const d = messageDescriptors[typeName]
  if (d === undefined) throw new PbJsonError(\`unknown message type \${typeName}\`)
  return d
}

/**
 * Renders a decoded message as grpc-gateway does for etcd (jsonpb, OrigName):
 * proto field names, 64-bit integers as strings, bytes as base64, enums by
 * name, default values and empty lists left out (oneof members are kept).
 */
export function toJson(typeName: string, msg: object, options: { jsonNames?: boolean } = {}): Record<string, unknown> {
  return messageToJson(descriptorOf(typeName), msg as Record<string, unknown>, options.jsonNames === true)
}

/**
 * Parses a JSON request body (as grpc-gateway accepts it: proto or JSON field
 * names, 64-bit integers as strings or numbers, bytes in base64, enums by name
 * or number) into the decoded form, exactly as decodeX would return it.
 */
export function fromJson<T = Record<string, unknown>>(typeName: string, value: unknown): T {
  const d = descriptorOf(typeName)
  return d.decode(d.encode(messageFromJson(d, value, typeName))) as T
}

setDescriptors(messageDescriptors, enumDescriptors)
`)
  return out.join("\n")
}

const JSON_RUNTIME_TS = String.raw`// Code generated by scripts/gen_proto.ts. DO NOT EDIT.
// The proto3 JSON mapping, driven by the descriptor tables of json.ts.

export class PbJsonError extends Error {
  override readonly name = "PbJsonError"
}

export interface FieldDescriptor {
  readonly name: string
  readonly protoName: string
  readonly jsonName: string
  readonly kind: string
  readonly repeated: boolean
  readonly oneof: string | undefined
  /** Full name of the message or enum type; "" for other scalars. */
  readonly type: string
}

export interface MessageDescriptor {
  readonly name: string
  readonly fields: readonly FieldDescriptor[]
  readonly encode: (m: object) => Uint8Array
  readonly decode: (b: Uint8Array) => object
}

let messages: Record<string, MessageDescriptor> = {}
let enums: Record<string, Record<string, number>> = {}
const enumNames = new Map<string, Map<number, string>>()

export function setDescriptors(m: Record<string, MessageDescriptor>, e: Record<string, Record<string, number>>): void {
  messages = m
  enums = e
  for (const [type, values] of Object.entries(e)) enumNames.set(type, new Map(Object.entries(values).map(([k, v]) => [v, k])))
}

const MAX_U64 = (1n << 64n) - 1n
const MIN_I64 = -(1n << 63n)
const MAX_I64 = (1n << 63n) - 1n

function isDefault(f: FieldDescriptor, v: unknown): boolean {
  if (v === undefined) return true
  if (f.oneof !== undefined) return false
  switch (f.kind) {
    case "bool":
      return v === false
    case "string":
      return v === ""
    case "bytes":
      return (v as Uint8Array).length === 0
    case "message":
      return false
    default:
      return v === 0 || v === 0n
  }
}

function scalarToJson(f: FieldDescriptor, v: unknown, jsonNames: boolean): unknown {
  switch (f.kind) {
    case "int64":
    case "uint64":
    case "int64big":
    case "uint64big":
      return String(v)
    case "bytes":
      return Buffer.from(v as Uint8Array).toString("base64")
    case "enum":
      return enumNames.get(f.type)?.get(v as number) ?? v
    case "message":
      return messageToJson(messages[f.type]!, v as Record<string, unknown>, jsonNames)
    default:
      return v
  }
}

export function messageToJson(d: MessageDescriptor, msg: Record<string, unknown>, jsonNames: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const f of d.fields) {
    const v = msg[f.name]
    const key = jsonNames ? f.jsonName : f.protoName
    if (f.repeated) {
      const a = v as unknown[] | undefined
      if (a !== undefined && a.length > 0) out[key] = a.map((x) => scalarToJson(f, x, jsonNames))
    } else if (!isDefault(f, v)) {
      out[key] = scalarToJson(f, v, jsonNames)
    }
  }
  return out
}

function fail(type: string, field: string, why: string): never {
  throw new PbJsonError(type + "." + field + ": " + why)
}

function integerFromJson(d: MessageDescriptor, f: FieldDescriptor, v: unknown): number | bigint {
  let n: bigint
  if (typeof v === "number") {
    if (!Number.isInteger(v)) fail(d.name, f.protoName, "not an integer: " + v)
    n = BigInt(v)
  } else if (typeof v === "string" && /^-?[0-9]+$/.test(v.trim())) {
    n = BigInt(v.trim())
  } else {
    return fail(d.name, f.protoName, "not an integer: " + JSON.stringify(v))
  }
  const unsigned = f.kind === "uint32" || f.kind === "uint64" || f.kind === "uint64big"
  const bits = f.kind === "int32" || f.kind === "uint32" || f.kind === "enum" ? 32 : 64
  const min = unsigned ? 0n : bits === 32 ? -(1n << 31n) : MIN_I64
  const max = unsigned ? (bits === 32 ? (1n << 32n) - 1n : MAX_U64) : bits === 32 ? (1n << 31n) - 1n : MAX_I64
  if (n < min || n > max) fail(d.name, f.protoName, "out of range: " + n)
  if (f.kind === "int64big" || f.kind === "uint64big") return n
  const num = Number(n)
  if (!Number.isSafeInteger(num)) fail(d.name, f.protoName, "outside the safe integer range: " + n)
  return num
}

const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/

function scalarFromJson(d: MessageDescriptor, f: FieldDescriptor, v: unknown): unknown {
  switch (f.kind) {
    case "bool":
      if (typeof v !== "boolean") fail(d.name, f.protoName, "not a boolean")
      return v
    case "string":
      if (typeof v !== "string") fail(d.name, f.protoName, "not a string")
      return v
    case "bytes":
      if (typeof v !== "string" || !BASE64.test(v)) fail(d.name, f.protoName, "not base64")
      return new Uint8Array(Buffer.from(v, "base64"))
    case "enum": {
      if (typeof v === "string" && !/^-?[0-9]+$/.test(v)) {
        const n = enums[f.type]?.[v]
        if (n === undefined) fail(d.name, f.protoName, "unknown enum value " + JSON.stringify(v))
        return n
      }
      return integerFromJson(d, f, v)
    }
    case "message":
      return messageFromJson(messages[f.type]!, v, f.type)
    default:
      return integerFromJson(d, f, v)
  }
}

export function messageFromJson(d: MessageDescriptor, value: unknown, typeName: string): Record<string, unknown> {
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw new PbJsonError(typeName + ": not a JSON object")
  const out: Record<string, unknown> = {}
  for (const [key, v] of Object.entries(value)) {
    const f = d.fields.find((x) => x.protoName === key || x.jsonName === key)
    if (f === undefined) throw new PbJsonError(typeName + ': unknown field "' + key + '"')
    if (v === null) continue
    if (f.repeated) {
      if (!Array.isArray(v)) fail(d.name, f.protoName, "not an array")
      out[f.name] = v.map((x) => scalarFromJson(d, f, x))
    } else {
      out[f.name] = scalarFromJson(d, f, v)
    }
  }
  return out
}
`

// ---------------------------------------------------------------- main

function main(): void {
  const root = loadRoot()
  const { messages, enums } = collect(root)
  const methods = collectMethods(root)
  mkdirSync(outDir, { recursive: true })
  writeFileSync(join(outDir, "wire.ts"), WIRE_TS)
  for (const f of FILES) writeFileSync(join(outDir, `${f.module}.ts`), genModule(f.module, messages, enums))
  writeFileSync(join(outDir, "services.ts"), genServices(methods))
  writeFileSync(join(outDir, "json_runtime.ts"), JSON_RUNTIME_TS)
  writeFileSync(join(outDir, "json.ts"), genJson(messages, enums))
  const index = [
    HEADER,
    `// etcd's v3 API messages and services (proto/), as plain objects.
//
// Per message X: interface X (decoded: every scalar and repeated field set,
// nested messages and oneof members optional and absent when not on the
// wire), interface XInit (what encoders accept: anything may be omitted),
// encodeX(m): Buffer, frameX(m): Buffer (with the 5-byte gRPC prefix),
// decodeX(bytes): X (throws PbDecodeError on malformed or truncated input;
// unknown fields are skipped). 64-bit ids (ID, lease, cluster_id, member_id,
// leader, memberID, targetID) are bigint; other 64-bit integers are numbers
// and decoding rejects values outside the safe integer range.
// Decoded bytes fields are views into the decoded buffer (no copy): copy them
// before keeping them past the life of that buffer if it is reused.
// Services: KVService.Range etc. are grpc-js MethodDefinitions plus path,
// frames and gateway routes; methodsByPath, gatewayRoutes; toJson/fromJson.
`,
    'export { PbDecodeError } from "./wire"',
  ]
  for (const f of FILES) index.push(`export * from "./${f.module}"`)
  index.push('export * from "./services"', 'export * from "./json"', "")
  writeFileSync(join(outDir, "index.ts"), index.join("\n"))
  console.log(`gen_proto: ${messages.length} messages, ${enums.length} enums, ${methods.length} methods -> ${outDir}`)
}

main()
