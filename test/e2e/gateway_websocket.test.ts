// Websockets on the /v3 gateway (etcd 3.4 wraps its gateway in grpc-websocket-proxy),
// on tskv and etcd 3.4 side by side: each message sent is a request of the call
// (text or binary, several JSON values in one are several requests), each answer line
// comes back as a text message; a unary call answers once and the connection drops
// (1006), a client close is echoed; handshake refusals and non-websocket upgrades.
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test"
import { connect } from "node:net"
import { type MemberProcess, startMember } from "../support/procs"

setDefaultTimeout(60_000)

let etcd: MemberProcess
let tskv: MemberProcess

beforeAll(async () => {
  ;[etcd, tskv] = await Promise.all([startMember({ kind: "etcd", name: "gwws" }), startMember({ kind: "tskv", name: "gwws" })])
})

afterAll(async () => {
  await etcd?.stop()
  await tskv?.stop()
})

const b64 = (s: string): string => Buffer.from(s).toString("base64")

interface Session {
  protocol: string
  messages: string[]
  close: number
}

/**
 * Opens a websocket on `path`, sends `sends`, runs `during` once `waitFor` messages came,
 * then (if `closeAt` messages came) closes from the client side; returns what it saw.
 */
async function session(m: MemberProcess, path: string, sends: (string | Uint8Array)[], opts: { protocols?: string[]; during?: () => Promise<unknown>; waitFor?: number; closeAt?: number } = {}): Promise<Session> {
  const ws = new WebSocket(`ws://127.0.0.1:${m.clientPort}${path}`, opts.protocols)
  ws.binaryType = "arraybuffer"
  const messages: string[] = []
  let duringStarted = false
  const closed = new Promise<number>((resolve) => {
    ws.onclose = (e) => resolve(e.code)
  })
  ws.onopen = () => {
    for (const s of sends) ws.send(s)
  }
  ws.onmessage = (e) => {
    messages.push(typeof e.data === "string" ? e.data : `binary:${new TextDecoder().decode(e.data as ArrayBuffer)}`)
    if (opts.during && !duringStarted && messages.length >= (opts.waitFor ?? 1)) {
      duringStarted = true
      void opts.during()
    }
    if (opts.closeAt !== undefined && messages.length >= opts.closeAt) ws.close(4001, "bye")
  }
  const timer = setTimeout(() => ws.close(), 8_000)
  const close = await closed
  clearTimeout(timer)
  return { protocol: ws.protocol, messages: messages.map(mask), close }
}

function mask(text: string): string {
  return text.replace(/"(cluster_id|member_id|raft_term)":"\d+"/g, '"$1":"<n>"')
}

function put(m: MemberProcess, key: string, value: string): Promise<Response> {
  return fetch(`${m.clientUrl}/v3/kv/put`, { method: "POST", body: JSON.stringify({ key: b64(key), value: b64(value) }) })
}

async function both(run: (m: MemberProcess) => Promise<Session>, sortEvents = false): Promise<Session> {
  const [e, t] = await Promise.all([run(etcd), run(tskv)])
  // two watchers of one key get the event in either order (on etcd too)
  const norm = (s: Session): Session => (sortEvents ? { ...s, messages: [...s.messages.slice(0, 4), ...s.messages.slice(4).sort()] } : s)
  expect(norm(t)).toEqual(norm(e))
  return e
}

test("watch over a websocket: text and binary messages, two requests in one, events, a client close echoed", async () => {
  const watch = await both((m) =>
    session(m, "/v3/watch", [JSON.stringify({ create_request: { key: b64("w1") } }), new TextEncoder().encode(JSON.stringify({ create_request: { key: b64("w2") } })), `{"create_request":{"key":"${b64("w3")}"}} {"create_request":{"key":"${b64("w3")}","prev_kv":true}}`], {
      waitFor: 4,
      during: async () => {
        await put(m, "w1", "a")
        await put(m, "w3", "b")
      },
      closeAt: 7,
    }),
    true,
  )
  expect(watch.messages.length).toBe(7)
  expect(watch.messages[0]).toContain('"created":true')
  expect(watch.close).toBe(4001)
})

test("a unary call over a websocket answers once, then the connection drops (1006); errors and unknown paths too", async () => {
  await Promise.all([put(etcd, "u", "1"), put(tskv, "u", "1")])
  const range = await both((m) => session(m, "/v3/kv/range", [JSON.stringify({ key: b64("u") })]))
  expect(range.messages.length).toBe(1)
  expect(range.close).toBe(1006)
  await both((m) => session(m, "/v3beta/kv/range", [JSON.stringify({ key: b64("u"), count_only: true })]))
  const bad = await both((m) => session(m, "/v3/kv/range", ['{"key":5}']))
  expect(bad.messages).toEqual(['{"error":"json: cannot unmarshal number into Go value of type []uint8","message":"json: cannot unmarshal number into Go value of type []uint8","code":3}'])
  const badStream = await both((m) => session(m, "/v3/watch", ['{"create_request":x']))
  expect(badStream.messages[0]).toContain('"code":2')
  const unknown = await both((m) => session(m, "/v3/kv/nothing", ["{}"]))
  expect(unknown.messages).toEqual(["Not Found"])
  const ttl = await both((m) => session(m, "/v3/lease/timetolive", ['{"ID":"1"}'], { protocols: ["Bearer", "tok"] }).then((s) => ({ ...s, messages: [] })))
  expect(ttl.protocol).toBe("Bearer")
})

/** One raw HTTP/1.1 request; the status line, the headers that matter and the body of the answer. */
async function raw(m: MemberProcess, request: string): Promise<string> {
  const socket = connect(m.clientPort, "127.0.0.1")
  let text = ""
  socket.on("data", (d: Buffer) => (text += d.toString()))
  const done = new Promise<void>((resolve) => socket.on("close", () => resolve()))
  socket.on("error", () => {})
  socket.write(request)
  await Promise.race([done, Bun.sleep(3_000)])
  socket.destroy()
  const [head = "", body = ""] = [text.slice(0, text.indexOf("\r\n\r\n")), text.slice(text.indexOf("\r\n\r\n") + 4)]
  const lines = head.split("\r\n")
  const kept = lines.slice(1).filter((l) => /^(content-type|sec-websocket-version|x-content-type-options|access-control-allow-origin|upgrade|sec-websocket-accept):/i.test(l))
  return [lines[0], ...kept.map((l) => l.toLowerCase()).sort(), "", body].join("\n")
}

test("handshake refusals (no version, POST, no key) as gorilla/websocket answers them; other upgrades are served as plain HTTP", async () => {
  const upgrade = "Connection: Upgrade\r\nUpgrade: websocket\r\n"
  const key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
  const requests = [
    `GET /v3/watch HTTP/1.1\r\nHost: x\r\n${upgrade}${key}\r\n`,
    `GET /v3/watch HTTP/1.1\r\nHost: x\r\n${upgrade}Sec-WebSocket-Version: 13\r\n\r\n`,
    `POST /v3/watch HTTP/1.1\r\nHost: x\r\n${upgrade}Sec-WebSocket-Version: 13\r\n${key}Content-Length: 2\r\n\r\n{}`,
    `GET /health HTTP/1.1\r\nHost: x\r\n${upgrade}Sec-WebSocket-Version: 13\r\n${key}\r\n`,
    `GET /v3/watch HTTP/1.1\r\nHost: x\r\n${upgrade}Sec-WebSocket-Version: 13\r\n${key}\r\n`,
    `GET /health HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n`,
  ]
  const answers = await Promise.all(requests.map((r) => Promise.all([raw(etcd, r), raw(tskv, r)])))
  for (const [i, [e, t]] of answers.entries()) expect({ r: requests[i], answer: t }).toEqual({ r: requests[i], answer: e })
  expect(answers[0]![0]).toStartWith("HTTP/1.1 400 Bad Request\n")
  expect(answers[4]![0]).toContain("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=")
})
