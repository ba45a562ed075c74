// etcdctl's printers (simple, json, fields, protobuf, table) for each kind of
// response, writing exactly what etcdctl 3.4 writes.
import {
  encodeDeleteRangeResponse,
  encodeEvent,
  encodePutResponse,
  encodeRangeResponse,
  encodeTxnResponse,
  type DeleteRangeResponse,
  type Event,
  type KeyValue,
  type PutResponse,
  type RangeResponse,
  type ResponseHeader,
  type TxnResponse,
} from "../pb"
import { goQuote, u64 } from "./go_fmt"
import { jDel, jPut, jRange, jTxn, jWatch } from "./json"
import { CtlExit, ExitCode, out } from "./output"

export type Format = "simple" | "json" | "fields" | "protobuf" | "table"

export interface Display {
  format: Format
  hex: boolean
  /** get --print-value-only */
  valueOnly: boolean
}

export function parseFormat(s: string): Format {
  if (s === "simple" || s === "json" || s === "fields" || s === "protobuf" || s === "table") return s
  throw new CtlExit(ExitCode.badFeature, "unsupported output format")
}

export function unsupported(d: Display): never {
  throw new CtlExit(ExitCode.badFeature, `${d.format} not supported as output format`)
}

function hexPrefixed(b: Uint8Array): string {
  let s = ""
  for (const x of b) s += `\\x${x.toString(16).padStart(2, "0")}`
  return s
}

/** etcdctl's printKV: key and value lines, raw bytes (as fmt.Println(string(b))) or \x-prefixed hex. */
export function printKV(d: Display, kv: KeyValue): void {
  const line = (b: Uint8Array): void => {
    if (d.hex) out.line(hexPrefixed(b))
    else out.write(Buffer.concat([b, Buffer.from("\n")]))
  }
  if (!d.valueOnly) line(kv.key)
  line(kv.value)
}

export function fieldsHeader(h: ResponseHeader | undefined): void {
  out.line(`"ClusterID" : ${u64(h?.clusterId ?? 0n)}`)
  out.line(`"MemberID" : ${u64(h?.memberId ?? 0n)}`)
  out.line(`"Revision" : ${h?.revision ?? 0}`)
  out.line(`"RaftTerm" : ${h?.raftTerm ?? 0}`)
}

function fieldsKv(prefix: string, kv: KeyValue): void {
  out.line(`"${prefix}Key" : ${goQuote(kv.key)}`)
  out.line(`"${prefix}CreateRevision" : ${kv.createRevision}`)
  out.line(`"${prefix}ModRevision" : ${kv.modRevision}`)
  out.line(`"${prefix}Version" : ${kv.version}`)
  out.line(`"${prefix}Value" : ${goQuote(kv.value)}`)
  out.line(`"${prefix}Lease" : ${BigInt.asIntN(64, kv.lease)}`)
}

export function showGet(d: Display, r: RangeResponse): void {
  switch (d.format) {
    case "simple":
      for (const kv of r.kvs) printKV(d, kv)
      return
    case "json":
      return out.line(jRange(r))
    case "fields":
      fieldsHeader(r.header)
      for (const kv of r.kvs) fieldsKv("", kv)
      out.line(`"More" : ${r.more}`)
      out.line(`"Count" : ${r.count}`)
      return
    case "protobuf":
      return out.write(encodeRangeResponse(r))
    default:
      unsupported(d)
  }
}

export function showPut(d: Display, r: PutResponse): void {
  switch (d.format) {
    case "simple":
      out.line("OK")
      if (r.prevKv !== undefined) printKV(d, r.prevKv)
      return
    case "json":
      return out.line(jPut(r))
    case "fields":
      fieldsHeader(r.header)
      if (r.prevKv !== undefined) fieldsKv("Prev", r.prevKv)
      return
    case "protobuf":
      return out.write(encodePutResponse(r))
    default:
      unsupported(d)
  }
}

export function showDel(d: Display, r: DeleteRangeResponse): void {
  switch (d.format) {
    case "simple":
      out.line(String(r.deleted))
      for (const kv of r.prevKvs) printKV(d, kv)
      return
    case "json":
      return out.line(jDel(r))
    case "fields":
      fieldsHeader(r.header)
      out.line(`"Deleted" : ${r.deleted}`)
      for (const kv of r.prevKvs) fieldsKv("Prev", kv)
      return
    case "protobuf":
      return out.write(encodeDeleteRangeResponse(r))
    default:
      unsupported(d)
  }
}

export function showTxn(d: Display, r: TxnResponse): void {
  switch (d.format) {
    case "simple":
      out.line(r.succeeded ? "SUCCESS" : "FAILURE")
      for (const op of r.responses) {
        out.line("")
        if (op.responseDeleteRange !== undefined) showDel(d, op.responseDeleteRange)
        else if (op.responsePut !== undefined) showPut(d, op.responsePut)
        else if (op.responseRange !== undefined) showGet(d, op.responseRange)
      }
      return
    case "json":
      return out.line(jTxn(r))
    case "fields":
      fieldsHeader(r.header)
      out.line(`"Succeeded" : ${r.succeeded}`)
      for (const op of r.responses) {
        if (op.responseDeleteRange !== undefined) showDel(d, op.responseDeleteRange)
        else if (op.responsePut !== undefined) showPut(d, op.responsePut)
        else if (op.responseRange !== undefined) showGet(d, op.responseRange)
      }
      return
    case "protobuf":
      return out.write(encodeTxnResponse(r))
    default:
      unsupported(d)
  }
}

export interface WatchView {
  header: ResponseHeader | undefined
  events: Event[]
  compactRevision: number
  canceled: boolean
  created: boolean
}

export function showWatch(d: Display, r: WatchView): void {
  switch (d.format) {
    case "simple":
      for (const e of r.events) {
        out.line(e.type === 1 ? "DELETE" : "PUT")
        if (e.prevKv !== undefined) printKV(d, e.prevKv)
        if (e.kv !== undefined) printKV(d, e.kv)
      }
      return
    case "json":
      return out.line(jWatch(r))
    case "fields":
      fieldsHeader(r.header)
      for (const e of r.events) {
        out.line(`"Type" : ${e.type === 1 ? "DELETE" : "PUT"}`)
        if (e.prevKv !== undefined) fieldsKv("Prev", e.prevKv)
        if (e.kv !== undefined) fieldsKv("", e.kv)
      }
      return
    case "protobuf":
      for (const e of r.events) out.write(encodeEvent(e))
      return
    default:
      unsupported(d)
  }
}
