// Client-stream bodies of the /v3 gateway that arrive over time (HTTP/1.1 chunked, the
// body held open between keepalive requests), on tskv and etcd 3.4 side by side. Go's
// HTTP/1 server (etcd 3.4's gateway) reads the rest of the body before it writes an
// answer, so without `Expect: 100-continue` every answer comes after the body ends;
// with it, each request is answered as it arrives and the connection closes afterwards.
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test"
import { connect } from "node:net"
import { type MemberProcess, startMember } from "../support/procs"

setDefaultTimeout(60_000)

let etcd: MemberProcess
let tskv: MemberProcess

beforeAll(async () => {
  ;[etcd, tskv] = await Promise.all([startMember({ kind: "etcd", name: "gwch" }), startMember({ kind: "tskv", name: "gwch" })])
})

afterAll(async () => {
  await etcd?.stop()
  await tskv?.stop()
})

interface Exchange {
  /** For each {"result"...} answer, how many body pieces had been sent when it arrived ("end": after the last chunk). */
  answeredAfter: (number | "end")[]
  status: string
  connectionClose: boolean
  lines: string[]
}

/** Sends `pieces` as chunks `gapMs` apart on one raw HTTP/1.1 request and notes when each answer line arrives. */
async function chunked(m: MemberProcess, path: string, pieces: string[], expectContinue: boolean, gapMs = 400, answers = Infinity): Promise<Exchange> {
  const socket = connect(m.clientPort, "127.0.0.1")
  await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject))
  let received = ""
  let sent: number | "end" = 0
  const answeredAfter: (number | "end")[] = []
  const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()))
  socket.on("data", (d: Buffer) => {
    received += d.toString()
    const count = received.split('{"result"').length - 1
    while (answeredAfter.length < count) answeredAfter.push(sent)
  })
  socket.on("error", () => {})
  const head = `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n`
  socket.write(`${head}${expectContinue ? "Expect: 100-continue\r\n" : ""}\r\n`)
  await Bun.sleep(gapMs)
  for (const piece of pieces) {
    socket.write(`${Buffer.byteLength(piece).toString(16)}\r\n${piece}\r\n`)
    await Bun.sleep(gapMs)
    sent = (sent as number) + 1
  }
  sent = "end"
  socket.write("0\r\n\r\n")
  const deadline = Date.now() + 5_000
  while (!received.includes("\r\n0\r\n\r\n") && answeredAfter.length < answers && Date.now() < deadline) await Bun.sleep(50)
  socket.end()
  await Promise.race([closed, Bun.sleep(2_000)])
  socket.destroy()
  const final = received.slice(received.lastIndexOf("HTTP/1.1 "))
  const [headText = "", bodyText = ""] = final.split("\r\n\r\n", 2).length === 2 ? [final.slice(0, final.indexOf("\r\n\r\n")), final.slice(final.indexOf("\r\n\r\n") + 4)] : [final]
  return {
    answeredAfter,
    status: headText.split("\r\n")[0] ?? "",
    connectionClose: /^connection: close$/im.test(headText),
    lines: bodyText.split("\r\n").filter((l) => l.startsWith("{")).map(maskIds),
  }
}

function maskIds(line: string): string {
  return line.replace(/"(cluster_id|member_id|raft_term|revision|ID)":"\d+"/g, '"$1":"<n>"')
}

async function grant(m: MemberProcess): Promise<string> {
  const res = await fetch(`${m.clientUrl}/v3/lease/grant`, { method: "POST", body: '{"TTL":60}' })
  return ((await res.json()) as { ID: string }).ID
}

test("a keepalive body held open: answers after its end without Expect, one by one with Expect: 100-continue (as etcd 3.4)", async () => {
  const run = async (m: MemberProcess, expectContinue: boolean): Promise<Exchange> => {
    const id = await grant(m)
    return await chunked(m, "/v3/lease/keepalive", [`{"ID":${id}}`, `{"ID":"${id}"}\n`, `{"ID":"12345"}`], expectContinue)
  }
  const [eHeld, tHeld, eFlow, tFlow] = await Promise.all([run(etcd, false), run(tskv, false), run(etcd, true), run(tskv, true)])
  // The lines go with the timings so that a failure shows what the server sent (etcd once answered
  // two of the three in a loaded suite run, 2026-12-07).
  expect({ after: eHeld.answeredAfter, lines: eHeld.lines }).toEqual({ after: ["end", "end", "end"], lines: expect.any(Array) })
  expect({ after: eFlow.answeredAfter, lines: eFlow.lines }).toEqual({ after: [0, 1, 2], lines: expect.any(Array) })
  expect(eFlow.connectionClose).toBe(true)
  expect(eHeld.connectionClose).toBe(false)
  expect(tHeld).toEqual(eHeld)
  expect(tFlow).toEqual(eFlow)
})

test("a watch body held open with Expect: 100-continue: created, events, then the second create answered as it arrives", async () => {
  const run = async (m: MemberProcess): Promise<Exchange> => {
    const put = (key: string): Promise<Response> => fetch(`${m.clientUrl}/v3/kv/put`, { method: "POST", body: JSON.stringify({ key: btoa(key), value: btoa("v") }) })
    const done = chunked(m, "/v3/watch", [`{"create_request":{"key":"${btoa("wa")}"}}`, `{"create_request":{"key":"${btoa("wb")}"}}`], true, 600, 3)
    await Bun.sleep(900)
    await put("wa")
    return await done
  }
  const [e, t] = await Promise.all([run(etcd), run(tskv)])
  expect(e.answeredAfter).toEqual([0, 0, 1])
  // the client then half-closes its socket: both end with {"error":{"grpc_code":1,"http_code":408,"message":"context canceled",...}}
  expect(e.lines.filter((l) => l.startsWith('{"result"')).length).toBe(3)
  expect(t).toEqual(e)
})
