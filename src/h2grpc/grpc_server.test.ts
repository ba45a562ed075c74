import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import * as grpc from "@grpc/grpc-js"
import { Registry } from "../lib/metrics"
import { GrpcServer, type CallContext, type MethodDescriptor } from "./grpc_server"
import { ClientListener } from "./listener"
import { GrpcError, GrpcStatus, statusOfGrpcError, type StatusOf } from "./status"
import * as net from "node:net"
import { frameMessage } from "./framing"
import { CLIENT_PREFACE, Flag, frame, FrameType, Setting, settingsFrame, windowUpdateFrame } from "./h2/frames"
import { encodeHeaders } from "./h2/hpack_encoder"

// A tiny service whose messages are raw bytes (or a decimal count).
const bytesMethod = (path: string, requestStream: boolean, responseStream: boolean): MethodDescriptor<Uint8Array, Uint8Array> => ({
  path,
  requestStream,
  responseStream,
  requestDeserialize: (bytes) => bytes,
  responseSerialize: (message) => message,
})

const Echo = bytesMethod("/test.Echo/Echo", false, false)
const Fail = bytesMethod("/test.Echo/Fail", false, false)
const Hang = bytesMethod("/test.Echo/Hang", false, false)
const Meta = bytesMethod("/test.Echo/Meta", false, false)
const Count = bytesMethod("/test.Echo/Count", false, true)
const Chat = bytesMethod("/test.Echo/Chat", true, true)

/** An error of the application's own, which its statusOf policy maps (as api/grpc/errors.ts maps TskvError). */
class CompactedError extends Error {}
const statusOfTestError = (error: unknown): StatusOf =>
  error instanceof CompactedError ? { code: GrpcStatus.OUT_OF_RANGE, message: "etcdserver: mvcc: required revision has been compacted", unexpected: false } : statusOfGrpcError(error)

describe("GrpcServer on a ClientListener", () => {
  const registry = new Registry()
  const server = new GrpcServer({ registry, maxReceiveMessageBytes: 4 * 1024 * 1024, statusOf: statusOfTestError })
  let listener: ClientListener
  let client: grpc.Client
  const cancelledCalls: string[] = []

  beforeAll(async () => {
    server.addUnary(Echo, (request) => request)
    server.addUnary(Fail, (request) => {
      const what = Buffer.from(request).toString()
      if (what === "compacted") throw new CompactedError("compacted")
      if (what === "grpc") throw new GrpcError(GrpcStatus.ALREADY_EXISTS, "it is there")
      throw new Error(`boom: ${what} 100% \u00e9`)
    })
    server.addUnary(Hang, (_request, call) => {
      return new Promise<Uint8Array>((resolve) => {
        call.onCancel(() => {
          cancelledCalls.push(`hang deadline=${call.deadline !== undefined}`)
          resolve(new Uint8Array())
        })
      })
    })
    server.addUnary(Meta, (_request, call: CallContext) => Buffer.from(JSON.stringify({ token: call.header("token"), hasleader: call.header("hasleader"), cn: call.peerCommonName ?? null })))
    server.addServerStream(Count, (request, call) => {
      const count = Number(Buffer.from(request).toString())
      if (count < 0) {
        call.onCancel(() => cancelledCalls.push("count"))
        const timer = setInterval(() => call.write(Buffer.from("tick")), 5)
        call.onCancel(() => clearInterval(timer))
        return
      }
      let i = 0
      const pump = (): void => {
        while (i < count) {
          if (!call.write(Buffer.from(String(i++)))) {
            call.onDrain(pump)
            return
          }
        }
        call.end()
      }
      pump()
    })
    server.addBidi(Chat, (call) => {
      let received = 0
      call.onMessage((message) => {
        received++
        call.write(message)
      })
      call.onHalfClose(() => {
        call.write(Buffer.from(`total ${received}`))
        call.end()
      })
    })
    listener = await ClientListener.listen({ url: "http://127.0.0.1:0", grpc: server })
    client = new grpc.Client(`127.0.0.1:${listener.port}`, grpc.credentials.createInsecure(), {
      "grpc.max_receive_message_length": 64 * 1024 * 1024,
      "grpc.max_send_message_length": 64 * 1024 * 1024,
    })
  })

  afterAll(async () => {
    client.close()
    server.shutdown()
    await listener.close(500)
  })

  const identity = (b: Buffer): Buffer => b

  function unary(path: string, body: Uint8Array, options: { metadata?: grpc.Metadata; deadlineMs?: number } = {}): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const callOptions: grpc.CallOptions = options.deadlineMs === undefined ? {} : { deadline: Date.now() + options.deadlineMs }
      client.makeUnaryRequest(path, identity, identity, Buffer.from(body), options.metadata ?? new grpc.Metadata(), callOptions, (error, value) => {
        if (error !== null) reject(error)
        else resolve(value!)
      })
    })
  }

  async function statusOf(promise: Promise<unknown>): Promise<{ code: number; details: string }> {
    try {
      await promise
    } catch (e) {
      const error = e as grpc.ServiceError
      return { code: error.code, details: error.details }
    }
    throw new Error("expected the call to fail")
  }

  test("GrpcServer unary call echoes the request", async () => {
    const reply = await unary(Echo.path, Buffer.from("hello"))
    expect(reply.toString()).toBe("hello")
  })

  test("GrpcServer unary call with an empty message", async () => {
    const reply = await unary(Echo.path, new Uint8Array())
    expect(reply.length).toBe(0)
  })

  test("GrpcServer carries messages larger than a DATA frame both ways", async () => {
    const big = Buffer.alloc(3 * 1024 * 1024)
    for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff
    const reply = await unary(Echo.path, big)
    expect(reply.equals(big)).toBe(true)
  })

  test("GrpcServer refuses a request above the max receive size with RESOURCE_EXHAUSTED", async () => {
    const status = await statusOf(unary(Echo.path, Buffer.alloc(4 * 1024 * 1024 + 1)))
    expect(status.code).toBe(grpc.status.RESOURCE_EXHAUSTED)
    expect(status.details).toBe(`grpc: received message larger than max (${4 * 1024 * 1024 + 1} vs. ${4 * 1024 * 1024})`)
  })

  test("GrpcServer answers an unknown method or service with UNIMPLEMENTED", async () => {
    const method = await statusOf(unary("/test.Echo/Nope", Buffer.from("x")))
    expect(method).toEqual({ code: grpc.status.UNIMPLEMENTED, details: "unknown method Nope for service test.Echo" })
    const service = await statusOf(unary("/test.Nope/Echo", Buffer.from("x")))
    expect(service).toEqual({ code: grpc.status.UNIMPLEMENTED, details: "unknown service test.Nope" })
  })

  test("GrpcServer maps a handler's error through options.statusOf", async () => {
    const status = await statusOf(unary(Fail.path, Buffer.from("compacted")))
    expect(status).toEqual({ code: grpc.status.OUT_OF_RANGE, details: "etcdserver: mvcc: required revision has been compacted" })
  })

  test("GrpcServer passes a GrpcError's code and an unknown exception as UNKNOWN with its (percent-encoded) message", async () => {
    expect(await statusOf(unary(Fail.path, Buffer.from("grpc")))).toEqual({ code: grpc.status.ALREADY_EXISTS, details: "it is there" })
    expect(await statusOf(unary(Fail.path, Buffer.from("other")))).toEqual({ code: grpc.status.UNKNOWN, details: "boom: other 100% \u00e9" })
  })

  test("GrpcServer exposes metadata to handlers", async () => {
    const metadata = new grpc.Metadata()
    metadata.set("token", "abc.1")
    metadata.set("hasleader", "true")
    const reply = JSON.parse((await unary(Meta.path, new Uint8Array(), { metadata })).toString())
    expect(reply).toEqual({ token: "abc.1", hasleader: "true", cn: null })
  })

  test("GrpcServer ends a call past its grpc-timeout with DEADLINE_EXCEEDED and cancels the handler", async () => {
    const status = await statusOf(unary(Hang.path, new Uint8Array(), { deadlineMs: 100 }))
    expect(status.code).toBe(grpc.status.DEADLINE_EXCEEDED)
    await Bun.sleep(50)
    expect(cancelledCalls).toContain("hang deadline=true")
  })

  test("GrpcServer server-streaming call delivers every message in order with backpressure", async () => {
    const count = 5000
    const received: string[] = []
    await new Promise<void>((resolve, reject) => {
      const call = client.makeServerStreamRequest(Count.path, identity, identity, Buffer.from(String(count)))
      call.on("data", (b: Buffer) => received.push(b.toString()))
      call.on("error", reject)
      call.on("end", () => resolve())
    })
    expect(received.length).toBe(count)
    expect(received[0]).toBe("0")
    expect(received[count - 1]).toBe(String(count - 1))
  })

  test("GrpcServer notices a client cancelling a stream", async () => {
    const call = client.makeServerStreamRequest(Count.path, identity, identity, Buffer.from("-1"))
    call.on("error", () => {})
    await new Promise<void>((resolve) => call.once("data", () => resolve()))
    expect(server.activeStreams).toBe(1)
    call.cancel()
    for (let i = 0; i < 100 && !cancelledCalls.includes("count"); i++) await Bun.sleep(10)
    expect(cancelledCalls).toContain("count")
    expect(server.activeStreams).toBe(0)
  })

  test("GrpcServer bidi call echoes many messages, then answers the half-close", async () => {
    const count = 2000
    const received: string[] = []
    await new Promise<void>((resolve, reject) => {
      const call = client.makeBidiStreamRequest(Chat.path, identity, identity)
      call.on("data", (b: Buffer) => received.push(b.toString()))
      call.on("error", reject)
      call.on("end", () => resolve())
      for (let i = 0; i < count; i++) call.write(Buffer.from(`m${i}`))
      call.end()
    })
    expect(received.length).toBe(count + 1)
    expect(received[count - 1]).toBe(`m${count - 1}`)
    expect(received[count]).toBe(`total ${count}`)
  })

  test("GrpcServer counts calls in grpc_server_* metrics", async () => {
    await unary(Echo.path, Buffer.from("x"))
    const text = registry.expose()
    expect(text).toMatch(/grpc_server_started_total\{grpc_method="Echo",grpc_service="test.Echo",grpc_type="unary"\} \d+/)
    expect(text).toMatch(/grpc_server_handled_total\{grpc_code="OutOfRange",grpc_method="Fail",grpc_service="test.Echo",grpc_type="unary"\} 1\n/)
    expect(text).toMatch(/grpc_server_msg_sent_total\{grpc_method="Count",grpc_service="test.Echo",grpc_type="server_stream"\} \d+/)
  })

  test("GrpcServer accepts gzip-compressed requests", async () => {
    const gzipClient = new grpc.Client(`127.0.0.1:${listener.port}`, grpc.credentials.createInsecure(), { "grpc.default_compression_algorithm": 2 })
    try {
      const body = Buffer.from("squeeze me ".repeat(100))
      const reply = await new Promise<Buffer>((resolve, reject) =>
        gzipClient.makeUnaryRequest(Echo.path, identity, identity, body, (error, value) => (error !== null ? reject(error) : resolve(value!))),
      )
      expect(reply.equals(body)).toBe(true)
    } finally {
      gzipClient.close()
    }
  })

  test("GrpcServer.shutdown() ends streams UNAVAILABLE (options.stoppedMessage), lets unary calls in flight finish, refuses new calls", async () => {
    const own = new GrpcServer({ stoppedMessage: "etcdserver: server stopped" })
    own.addUnary(Hang, async (request) => {
      await Bun.sleep(150)
      return request
    })
    own.addServerStream(Count, (_request, call) => {
      call.write(Buffer.from("first"))
    })
    const ownListener = await ClientListener.listen({ url: "http://127.0.0.1:0", grpc: own })
    const ownClient = new grpc.Client(`127.0.0.1:${ownListener.port}`, grpc.credentials.createInsecure())
    const unaryCall = (): Promise<Buffer> =>
      new Promise((resolve, reject) =>
        ownClient.makeUnaryRequest(Hang.path, identity, identity, Buffer.from("slow"), (error, value) => (error !== null ? reject(error) : resolve(value!))),
      )
    try {
      const stream = ownClient.makeServerStreamRequest(Count.path, identity, identity, Buffer.from("1"))
      const streamStatus = new Promise<{ code: number; details: string }>((resolve) => {
        stream.on("error", (e: grpc.ServiceError) => resolve({ code: e.code, details: e.details }))
        stream.on("data", () => {})
      })
      await new Promise<void>((resolve) => stream.once("data", () => resolve()))
      const inFlight = unaryCall()
      await Bun.sleep(30)
      own.shutdown()
      expect(await streamStatus).toEqual({ code: grpc.status.UNAVAILABLE, details: "etcdserver: server stopped" })
      expect(await statusOf(unaryCall())).toEqual({ code: grpc.status.UNAVAILABLE, details: "etcdserver: server stopped" })
      const closing = ownListener.close(2000)
      expect((await inFlight).toString()).toBe("slow")
      await closing
    } finally {
      ownClient.close()
      await ownListener.close(100)
    }
  })

  test("GrpcServer answers a unary call that ends without a message with INTERNAL (raw HTTP/2)", async () => {
    const http2 = await import("node:http2")
    const session = http2.connect(`http://127.0.0.1:${listener.port}`)
    try {
      const headers = await new Promise<Record<string, unknown>>((resolve, reject) => {
        const stream = session.request({ ":method": "POST", ":path": Echo.path, "content-type": "application/grpc", te: "trailers" }, { endStream: true })
        stream.on("response", (h) => resolve(h as Record<string, unknown>))
        stream.on("error", reject)
        stream.on("data", () => {})
      })
      expect(headers[":status"]).toBe(200)
      expect(headers["grpc-status"]).toBe(String(GrpcStatus.INTERNAL))
      expect(headers["grpc-message"]).toBe("grpc: no request message received")
    } finally {
      session.close()
    }
  })
})

test(`a server stream to a client that stops granting window: write() turns false within bounded bytes, onDrain fires once it reads again`, async () => {
  const server = new GrpcServer()
  const log = { acceptedBytes: 0, refused: false, drained: false }
  const chunk = Buffer.alloc(1024, 1)
  server.addServerStream(Count, (_request, call) => {
    while (call.write(chunk)) {
      log.acceptedBytes += chunk.length
      if (log.acceptedBytes > 64 * 1024 * 1024) break // unbounded: the test fails below
    }
    log.refused = true
    call.onDrain(() => {
      if (log.drained) return
      log.drained = true
      call.end()
    })
  })
  const listener = await ClientListener.listen({ url: "http://127.0.0.1:0", grpc: server })
  const socket = net.connect(listener.port, "127.0.0.1")
  socket.on("error", () => {})
  let received = 0
  socket.on("data", (bytes: Buffer) => (received += bytes.length))
  try {
    await new Promise<void>((resolve) => socket.once("connect", () => resolve()))
    // a 1 KiB stream window and the default 64 KiB connection window, never replenished until later
    socket.write(Buffer.concat([CLIENT_PREFACE, settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 1024]])]))
    const headers = encodeHeaders({ ":method": "POST", ":scheme": "http", ":path": Count.path, ":authority": "x", "content-type": "application/grpc", te: "trailers" })
    socket.write(frame(FrameType.HEADERS, Flag.END_HEADERS, 1, headers))
    socket.write(frame(FrameType.DATA, Flag.END_STREAM, 1, frameMessage(Buffer.from("0"))))
    for (let i = 0; i < 200 && !log.refused; i++) await Bun.sleep(5)
    expect(log.refused).toBe(true)
    expect(log.acceptedBytes).toBeLessThan(1024 * 1024)
    await Bun.sleep(50)
    expect(log.drained).toBe(false)
    socket.write(Buffer.concat([windowUpdateFrame(0, 2 ** 30), windowUpdateFrame(1, 2 ** 30)]))
    for (let i = 0; i < 200 && !log.drained; i++) await Bun.sleep(5)
    expect(log.drained).toBe(true)
    for (let i = 0; i < 200 && received <= log.acceptedBytes; i++) await Bun.sleep(5)
    expect(received).toBeGreaterThan(log.acceptedBytes)
  } finally {
    socket.destroy()
    server.shutdown()
    await listener.close(100)
  }
})
