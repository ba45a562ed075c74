import { expect, test } from "bun:test"
import * as grpc from "@grpc/grpc-js"
import * as http2 from "node:http2"
import { HealthService as HealthMethods, type HealthCheckResponse } from "../pb"
import { GrpcServer } from "./grpc_server"
import { HealthService, ServingStatus } from "../api/grpc/services/health"
import { ClientListener, parseListenUrl } from "./listener"

test("parseListenUrl() reads http, https, IPv6 and unix URLs", () => {
  expect(parseListenUrl("http://127.0.0.1:2379")).toEqual({ secure: false, host: "127.0.0.1", port: 2379, path: undefined })
  expect(parseListenUrl("https://[::1]:2379")).toEqual({ secure: true, host: "::1", port: 2379, path: undefined })
  expect(parseListenUrl("unixs:///run/tskv.sock")).toEqual({ secure: true, host: "", port: 0, path: "/run/tskv.sock" })
  expect(() => parseListenUrl("ftp://x:1")).toThrow("unsupported scheme")
})

test("ClientListener without a GrpcServer (--listen-metrics-urls) serves HTTP only", async () => {
  const listener = await ClientListener.listen({ url: "http://127.0.0.1:0", fetch: () => new Response("metrics here") })
  try {
    expect(await (await fetch(`http://127.0.0.1:${listener.port}/metrics`)).text()).toBe("metrics here")
    expect(listener.url).toBe(`http://127.0.0.1:${listener.port}`)
  } finally {
    await listener.close(100)
  }
})

/** Pings once (after the previous ACK); false when the session went away instead. */
async function pingOnce(session: http2.ClientHttp2Session): Promise<boolean> {
  if (session.closed || session.destroyed) return false
  return await new Promise<boolean>((resolve) => {
    try {
      if (!session.ping((err) => resolve(err === null))) resolve(false)
    } catch {
      resolve(false)
    }
  })
}

test(`ClientListener: with no stream open, the 4th ping in a row (the third strike) gets GOAWAY ENHANCE_YOUR_CALM, as grpc-go`, async () => {
  // Even with a 1 ms minimum: without a stream grpc-go allows no keepalive at all (2 h).
  const listener = await ClientListener.listen({ url: "http://127.0.0.1:0", grpc: new GrpcServer(), http2: { keepaliveMinTimeMs: 1 } })
  const session = http2.connect(`http://127.0.0.1:${listener.port}`)
  try {
    let goaway: number | undefined
    let acked = 0
    session.on("goaway", (code) => (goaway ??= code))
    session.on("error", () => {})
    await new Promise<void>((resolve) => session.once("connect", () => resolve()))
    for (let i = 0; i < 10 && goaway === undefined; i++) {
      if (!(await pingOnce(session))) break
      acked++
      await Bun.sleep(20)
    }
    expect({ acked, goaway }).toEqual({ acked: 4, goaway: http2.constants.NGHTTP2_ENHANCE_YOUR_CALM })
  } finally {
    session.destroy()
    await listener.close(100)
  }
})

test("grpc.health.v1.Health Watch sends the current status, then every change", async () => {
  const server = new GrpcServer()
  const health = new HealthService(ServingStatus.SERVING)
  health.register(server)
  const listener = await ClientListener.listen({ url: "http://127.0.0.1:0", grpc: server })
  const client = new grpc.Client(`127.0.0.1:${listener.port}`, grpc.credentials.createInsecure())
  try {
    const call = client.makeServerStreamRequest(HealthMethods.Watch.path, HealthMethods.Watch.requestSerialize, HealthMethods.Watch.responseDeserialize, { service: "" })
    call.on("error", () => {})
    const seen: number[] = []
    call.on("data", (m: HealthCheckResponse) => seen.push(m.status))
    for (let i = 0; i < 100 && seen.length < 1; i++) await Bun.sleep(10)
    health.setStatus(ServingStatus.NOT_SERVING)
    for (let i = 0; i < 100 && seen.length < 2; i++) await Bun.sleep(10)
    expect(seen).toEqual([ServingStatus.SERVING, ServingStatus.NOT_SERVING])
    call.cancel()
  } finally {
    client.close()
    server.shutdown()
    await listener.close(100)
  }
})

test(`ClientListener: a ping after the server sent something is never a strike; with nothing sent, the third strike gets GOAWAY`, async () => {
  const server = new GrpcServer()
  const health = new HealthService(ServingStatus.SERVING)
  health.register(server)
  const listener = await ClientListener.listen({ url: "http://127.0.0.1:0", grpc: server, http2: { keepaliveMinTimeMs: 10_000 } })
  const session = http2.connect(`http://127.0.0.1:${listener.port}`)
  try {
    session.on("error", () => {})
    let goaway: number | undefined
    session.on("goaway", (code) => (goaway ??= code))
    const stream = session.request({ ":method": "POST", ":path": HealthMethods.Watch.path, "content-type": "application/grpc", te: "trailers" })
    let messages = 0
    stream.on("data", () => messages++)
    stream.on("error", () => {})
    stream.write(Buffer.from([0, 0, 0, 0, 0]))
    await new Promise<void>((resolve) => stream.once("response", () => resolve()))
    // A status change (DATA) before every ping: 40 pings well within the minimum, no GOAWAY.
    for (let i = 0; i < 40; i++) {
      const before = messages
      health.setStatus(i % 2 === 0 ? ServingStatus.NOT_SERVING : ServingStatus.SERVING)
      for (let j = 0; j < 100 && messages === before; j++) await Bun.sleep(5)
      expect(await pingOnce(session)).toBe(true)
    }
    expect(goaway).toBeUndefined()
    // Nothing sent any more: the last ping of the loop cleared the strikes; the next three are strikes.
    let acked = 0
    for (let i = 0; i < 10 && goaway === undefined; i++) {
      if (!(await pingOnce(session))) break
      acked++
      await Bun.sleep(20)
    }
    expect({ acked, goaway }).toEqual({ acked: 3, goaway: http2.constants.NGHTTP2_ENHANCE_YOUR_CALM })
    stream.close()
  } finally {
    session.destroy()
    server.shutdown()
    await listener.close(100)
  }
})

test(`ClientListener pings a connection after the keepalive interval without a read, and closes it when the timeout passes unanswered`, async () => {
  const listener = await ClientListener.listen({ url: "http://127.0.0.1:0", grpc: new GrpcServer(), http2: { keepaliveIntervalMs: 200, keepaliveTimeoutMs: 200 } })
  const net = await import("node:net")
  try {
    // A raw client: the preface and an empty SETTINGS, then silence (it never answers a PING).
    const socket = net.connect(listener.port, "127.0.0.1")
    const pingFrames: number[] = []
    socket.on("data", (b: Buffer) => {
      for (let at = 0; at + 9 <= b.length; at += 9 + b.readUIntBE(at, 3)) if (b[at + 3] === 6 && (b[at + 4]! & 1) === 0) pingFrames.push(at)
    })
    socket.on("error", () => {})
    const started = performance.now()
    socket.write(Buffer.concat([Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]))
    await new Promise<void>((resolve) => socket.once("close", () => resolve()))
    const closedAfterMs = performance.now() - started
    expect(pingFrames.length).toBe(1)
    expect(closedAfterMs).toBeGreaterThanOrEqual(350)
    expect(closedAfterMs).toBeLessThan(3000)

    // node:http2 answers pings: the connection stays.
    const session = http2.connect(`http://127.0.0.1:${listener.port}`)
    session.on("error", () => {})
    let closed = false
    session.on("close", () => (closed = true))
    await new Promise<void>((resolve) => session.once("connect", () => resolve()))
    await Bun.sleep(1200)
    expect(closed).toBe(false)
    session.destroy()
  } finally {
    await listener.close(100)
  }
})

test("ClientListener.close() lets an HTTP/1.1 request in flight finish", async () => {
  const listener = await ClientListener.listen({
    url: "http://127.0.0.1:0",
    fetch: async () => {
      await Bun.sleep(200)
      return new Response("late but whole")
    },
  })
  const response = fetch(`http://127.0.0.1:${listener.port}/slow`).then((r) => r.text())
  await Bun.sleep(50)
  const closing = listener.close(2000)
  expect(await response).toBe("late but whole")
  await closing
})

test(`ClientListener advertises --max-concurrent-streams and a large stream window`, async () => {
  const listener = await ClientListener.listen({ url: "http://127.0.0.1:0", grpc: new GrpcServer(), http2: { maxConcurrentStreams: 100, windowBytes: 4 * 1024 * 1024 } })
  const session = http2.connect(`http://127.0.0.1:${listener.port}`)
  try {
    const settings = await new Promise<http2.Settings>((resolve) => {
      const timer = setTimeout(() => resolve({}), 2000)
      session.on("remoteSettings", (s) => {
        if (s.maxConcurrentStreams !== 100) return
        clearTimeout(timer)
        resolve(s)
      })
    })
    expect(settings.maxConcurrentStreams).toBe(100)
    expect(settings.initialWindowSize).toBe(4 * 1024 * 1024)
  } finally {
    session.destroy()
    await listener.close(100)
  }
})

/** One HTTP/2 request on a fresh session: status and body text. */
async function http2Request(port: number, headers: http2.OutgoingHttpHeaders, body?: string): Promise<{ status: number; text: string }> {
  const session = http2.connect(`http://127.0.0.1:${port}`)
  session.on("error", () => {})
  try {
    const stream = session.request(headers)
    stream.end(body)
    const status = await new Promise<number>((resolve) => stream.once("response", (h) => resolve(Number(h[":status"]))))
    let text = ""
    stream.setEncoding("utf8")
    for await (const chunk of stream) text += chunk
    return { status, text }
  } finally {
    session.close()
  }
}

test(`ClientListener serves non-gRPC HTTP/2 requests (with a body) from the fetch handler, and 404 without one`, async () => {
  const withFetch = await ClientListener.listen({
    url: "http://127.0.0.1:0",
    grpc: new GrpcServer(),
    fetch: async (request) => new Response(`${request.method} ${new URL(request.url).pathname} ${await request.text()}`, { status: 201 }),
  })
  const grpcOnly = await ClientListener.listen({ url: "http://127.0.0.1:0", grpc: new GrpcServer() })
  try {
    expect(await http2Request(withFetch.port, { ":method": "POST", ":path": "/v3/kv/range" }, "x".repeat(100_000))).toEqual({ status: 201, text: `POST /v3/kv/range ${"x".repeat(100_000)}` })
    expect(await http2Request(withFetch.port, { ":method": "GET", ":path": "/health" })).toEqual({ status: 201, text: "GET /health " })
    expect((await http2Request(grpcOnly.port, { ":method": "GET", ":path": "/health" })).status).toBe(404)
  } finally {
    await withFetch.close(100)
    await grpcOnly.close(100)
  }
})

test(`ClientListener.close() sends GOAWAY and lets an HTTP/2 request in flight finish`, async () => {
  const listener = await ClientListener.listen({
    url: "http://127.0.0.1:0",
    fetch: async () => {
      await Bun.sleep(200)
      return new Response("late but whole")
    },
  })
  const session = http2.connect(`http://127.0.0.1:${listener.port}`)
  session.on("error", () => {})
  const goaway = new Promise<number>((resolve) => session.once("goaway", (code) => resolve(code)))
  try {
    const stream = session.request({ ":method": "GET", ":path": "/slow" })
    stream.end()
    let text = ""
    stream.setEncoding("utf8")
    stream.on("data", (chunk: string) => (text += chunk))
    const ended = new Promise<void>((resolve) => stream.once("end", () => resolve()))
    await Bun.sleep(50)
    const closing = listener.close(2000)
    expect(await goaway).toBe(http2.constants.NGHTTP2_NO_ERROR)
    await ended
    expect(text).toBe("late but whole")
    await closing
  } finally {
    session.destroy()
  }
})
