// Differential test of the whole /v3 JSON gateway: one real etcd 3.4 and one
// dist/tskv side by side get the same HTTP requests, in one pass, on every
// path etcd 3.4's grpc-gateway serves (rpc.pb.gw.go, v3lock and v3election
// gw files; /v3beta as an alias): a good request with its numbers as strings
// and as numbers, bad JSON, a wrong type, an unknown field, a token while
// auth is off, streams, and a client that half-closes mid-stream. Status
// code, headers (all but Date; Content-Length only present or not) and
// bodies are compared once ids, terms, raft indexes, sizes, hashes, tokens
// and URLs are masked. Every difference is listed at the end.

import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test"
import { connect } from "node:net"
import { hasEtcd, type MemberProcess, startMember } from "../support/procs"
import { type Answer, type Case, type Ctx, PATHS, cases } from "./gateway_differential_cases"

setDefaultTimeout(120_000)

let etcd: MemberProcess
let tskv: MemberProcess

beforeAll(async () => {
  if (!hasEtcd()) throw new Error("real etcd 3.4 is required: apt-get install -y etcd-server etcd-client (.ci/run does)")
  ;[etcd, tskv] = await Promise.all([startMember({ kind: "etcd", name: "gwd" }), startMember({ kind: "tskv", name: "gwd" })])
})

afterAll(async () => {
  await Promise.all([etcd?.stop(), tskv?.stop()])
})

/** Sends one case's request; streams are read for `lines` lines or `ms` milliseconds. */
async function send(m: MemberProcess, c: Case, ctx: Ctx): Promise<Answer> {
  const body = typeof c.body === "function" ? c.body(ctx) : c.body
  const headers = typeof c.headers === "function" ? c.headers(ctx) : (c.headers ?? {})
  if (c.halfClose) return await halfClosed(m, c.path, body, headers)
  const abort = new AbortController()
  const timer = setTimeout(() => abort.abort(), c.stream?.ms ?? 5000)
  try {
    const res = await fetch(`${m.clientUrl}${c.path}`, {
      method: c.method ?? "POST",
      ...(c.method === "GET" ? {} : { body }),
      headers,
      signal: abort.signal,
    })
    const head: Record<string, string> = {}
    res.headers.forEach((value, name) => {
      if (name !== "date") head[name] = name === "content-length" ? "<n>" : value
    })
    let text = ""
    const reader = res.body!.getReader()
    const decoder = new TextDecoder()
    for (;;) {
      const next = await reader.read().catch(() => ({ done: true as const, value: undefined }))
      if (next.done) break
      text += decoder.decode(next.value, { stream: true })
      if (c.stream?.lines !== undefined && text.split("\n").filter((l) => l.trim() !== "").length >= c.stream.lines && text.endsWith("\n")) break
    }
    return { status: res.status, headers: head, text }
  } catch (e) {
    if (abort.signal.aborted) return { status: 0, headers: {}, text: "<no answer>" }
    // Go's server recovers a handler's panic by closing the connection
    return { status: 0, headers: {}, text: `<${(e as { code?: string }).code ?? String(e)}>` }
  } finally {
    clearTimeout(timer)
    abort.abort()
  }
}

/** A raw HTTP/1.1 request whose client shuts its writing side once the first answer line has come. */
async function halfClosed(m: MemberProcess, path: string, body: string, headers: Record<string, string>): Promise<Answer> {
  const socket = connect(m.clientPort, "127.0.0.1")
  const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("")
  socket.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`)
  let raw = ""
  let shut = false
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      socket.destroy()
      resolve()
    }, 3000)
    socket.on("data", (chunk: Buffer) => {
      raw += chunk.toString("latin1")
      if (!shut && /\r\n\r\n[\s\S]*\n\r\n/.test(raw)) {
        shut = true
        socket.end()
      }
    })
    socket.on("close", () => {
      clearTimeout(timer)
      resolve()
    })
    socket.on("error", () => {})
  })
  const [head = "", ...rest] = raw.split("\r\n\r\n")
  const [statusLine = "", ...lines] = head.split("\r\n")
  const out: Record<string, string> = {}
  for (const line of lines) {
    const i = line.indexOf(":")
    const name = line.slice(0, i).toLowerCase()
    if (name !== "date") out[name] = line.slice(i + 1).trim()
  }
  // the chunked body's data (chunk sizes depend on the masked ids), "<end>" for its last chunk
  let chunked = rest.join("\r\n\r\n")
  let text = ""
  for (;;) {
    const m = /^([0-9a-f]+)\r\n/.exec(chunked)
    if (m === null) break
    const size = Number.parseInt(m[1]!, 16)
    if (size === 0) {
      text += "<end>"
      break
    }
    text += chunked.slice(m[0].length, m[0].length + size)
    chunked = chunked.slice(m[0].length + size + 2)
  }
  return { status: Number(statusLine.split(" ")[1]), headers: out, text }
}

/** Masks what differs between two clusters by nature. */
export function maskAnswer(a: Answer, ctx: Ctx): string {
  const body = a.text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((line) => {
      try {
        return JSON.stringify(maskValue(JSON.parse(line), ctx))
      } catch {
        return maskText(line, ctx)
      }
    })
  // snapshot chunks: etcd sends 32 KiB, tskv 1 MiB; compare their shape, one line per run
  const collapsed = body.filter((l, i) => i === 0 || l !== body[i - 1])
  return `${a.status} ${JSON.stringify(Object.fromEntries(Object.entries(a.headers).sort()))}\n${collapsed.join("\n")}`
}

const MASKED = new Set(["cluster_id", "member_id", "raft_term", "raftIndex", "raftTerm", "raftAppliedIndex", "dbSize", "dbSizeInUse", "hash", "token", "blob", "remaining_bytes"])

function maskValue(value: unknown, ctx: Ctx): unknown {
  if (Array.isArray(value)) return value.map((v) => maskValue(v, ctx))
  if (typeof value === "string") return maskText(value, ctx)
  if (value === null || typeof value !== "object") return value
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (MASKED.has(k)) out[k] = "<m>"
    // tskv reports etcd 3.5.13 (kube-apiserver needs >= 3.5.8 for its watch progress requests)
    else if ((k === "version" || k === "etcdserver" || k === "etcdcluster") && typeof v === "string" && /^3\.\d+\.\d+$/.test(v)) out[k] = "<version>"
    else if ((k === "ID" || k === "lease" || k === "leader" || k === "memberID") && typeof v === "string") out[k] = idName(v, ctx)
    else if (k === "key" && typeof v === "string") out[k] = maskKey(v, ctx)
    else out[k] = maskValue(v, ctx)
  }
  // members come sorted by their (random) ids
  if (Array.isArray(out.members)) out.members = out.members.map((m) => JSON.stringify(m)).sort().map((m) => JSON.parse(m) as unknown)
  return out
}

function idName(id: string, ctx: Ctx): string {
  if (/^-?\d{1,6}$/.test(id)) return id
  let name = ctx.ids.get(id)
  if (name === undefined) {
    name = `<id${ctx.ids.size + 1}>`
    ctx.ids.set(id, name)
  }
  return name
}

/** `name/<lease hex>` keys of the lock and election recipes. */
function maskKey(key: string, ctx: Ctx): string {
  const text = Buffer.from(key, "base64").toString()
  const m = /^(.*\/)([0-9a-f]{8,16})$/.exec(text)
  if (!m) return key
  return `${m[1]}${idName(BigInt(`0x${m[2]}`).toString(), ctx)}`
}

function maskText(text: string, ctx: Ctx): string {
  let t = text
  for (const [url, name] of ctx.urls) t = t.split(url).join(name)
  // hex member ids in messages (not decimal numbers such as a watch id)
  return t.replace(/\b(?=[0-9]*[a-f])[0-9a-f]{16}\b/g, (hex) => idName(BigInt(`0x${hex}`).toString(), ctx))
}

describe.if(hasEtcd())("/v3 gateway differential: every path etcd 3.4 serves", () => {
  test("tskv answers every request as etcd 3.4 does", async () => {
    const ctxE: Ctx = { ids: new Map(), urls: new Map([[etcd.clientUrl, "<client>"], [etcd.peerUrl, "<peer>"]]), v: {} }
    const ctxT: Ctx = { ids: new Map(), urls: new Map([[tskv.clientUrl, "<client>"], [tskv.peerUrl, "<peer>"]]), v: {} }
    const diffs: string[] = []
    const seen = new Set<string>()
    for (const c of cases) {
      const started = Date.now()
      const [e, t] = c.sequential
        ? [await send(etcd, c, ctxE), await send(tskv, c, ctxT)]
        : await Promise.all([send(etcd, c, ctxE), send(tskv, c, ctxT)])
      if (process.env.TSKV_GATEWAY_TRACE) console.error(`${c.name} ${c.path}: etcd ${e.status} tskv ${t.status} ${Date.now() - started} ms`)
      c.capture?.(e, ctxE)
      c.capture?.(t, ctxT)
      const a = maskAnswer(e, ctxE)
      const b = maskAnswer(t, ctxT)
      seen.add(c.path.replace(/^\/v3beta\//, "/v3/"))
      if (a !== b) diffs.push(`--- ${c.name} (${c.path})\netcd: ${a}\ntskv: ${b}`)
    }
    if (diffs.length > 0) console.error(`${diffs.length} differences:\n${diffs.join("\n")}`)
    expect(diffs).toEqual([])
    expect(PATHS.filter((p) => !seen.has(p))).toEqual([])
  })
})
