import { afterEach, expect, test } from "bun:test"
import * as net from "node:net"
import { H2Connection, type H2ConnectionOptions } from "./connection"
import { CLIENT_PREFACE, ErrorCode, Flag, frame, FrameReader, FrameType, rstStreamFrame, Setting, settingsFrame, windowUpdateFrame } from "./frames"
import { HpackDecoder } from "./hpack_decoder"
import { encodeHeaders } from "./hpack_encoder"
import type { H2Stream } from "./stream"

// Each test runs an H2Connection on a real socket and talks raw frames to it.

interface Seen {
  type: number
  flags: number
  streamId: number
  payload: Buffer
}

class RawClient {
  readonly frames: Seen[] = []
  private read = 0
  private readonly reader = new FrameReader(2 ** 24 - 1)
  private wake: (() => void) | undefined
  ended = false

  constructor(readonly socket: net.Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.reader.push(chunk, (type, flags, streamId, payload) => this.frames.push({ type, flags, streamId, payload: Buffer.from(payload) }))
      this.wake?.()
    })
    socket.on("end", () => {
      this.ended = true
      this.wake?.()
    })
    socket.on("close", () => {
      this.ended = true
      this.wake?.()
    })
    socket.on("error", () => {})
  }

  static async connect(port: number, settings: [number, number][] = []): Promise<RawClient> {
    const socket = net.connect(port, "127.0.0.1")
    await new Promise<void>((resolve) => socket.once("connect", () => resolve()))
    const client = new RawClient(socket)
    client.send(Buffer.concat([CLIENT_PREFACE, settingsFrame(settings)]))
    return client
  }

  send(bytes: Uint8Array): void {
    this.socket.write(bytes)
  }

  request(streamId: number, path: string, options: { endStream?: boolean; extra?: Record<string, string> } = {}): void {
    const block = encodeHeaders({ ":method": "POST", ":scheme": "http", ":path": path, ":authority": "anything at all", ...options.extra })
    this.send(frame(FrameType.HEADERS, Flag.END_HEADERS | (options.endStream === true ? Flag.END_STREAM : 0), streamId, block))
  }

  /** The next frame (after those already taken) that matches, waiting for it. */
  async next(match: (f: Seen) => boolean, what = "a frame"): Promise<Seen> {
    const deadline = performance.now() + 3000
    for (;;) {
      while (this.read < this.frames.length) {
        const f = this.frames[this.read++]!
        if (match(f)) return f
      }
      if (this.ended) throw new Error(`connection ended while waiting for ${what}`)
      if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`)
      await new Promise<void>((resolve) => {
        this.wake = resolve
        setTimeout(resolve, 50)
      })
    }
  }

  async goaway(): Promise<{ lastStreamId: number; code: number; debug: string }> {
    const f = await this.next((f) => f.type === FrameType.GOAWAY, "GOAWAY")
    return { lastStreamId: f.payload.readUInt32BE(0), code: f.payload.readUInt32BE(4), debug: f.payload.subarray(8).toString() }
  }

  async closed(): Promise<void> {
    const deadline = performance.now() + 3000
    while (!this.ended && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
    if (!this.ended) throw new Error("the server did not end the connection")
  }
}

interface Served {
  port: number
  connections: H2Connection[]
  streams: H2Stream[]
  events: string[]
}

const servers: net.Server[] = []
const sockets: net.Socket[] = []

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy()
  for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve))
})

/**
 * A server whose streams behave by :path: "/echo" answers the request body
 * back with trailers; "/bytes/N" answers N bytes of 'a'; "/hold" only records
 * what happens to it.
 */
async function serve(options: Partial<H2ConnectionOptions> = {}): Promise<Served> {
  const served: Served = { port: 0, connections: [], streams: [], events: [] }
  const server = net.createServer((socket) => {
    sockets.push(socket)
    const connection = new H2Connection({ socket, maxConcurrentStreams: 2 ** 32 - 1, windowBytes: 65_535, onStream: (stream) => handle(stream, served), ...options })
    served.connections.push(connection)
    connection.start()
  })
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()))
  served.port = (server.address() as net.AddressInfo).port
  return served
}

function handle(stream: H2Stream, served: Served): void {
  served.streams.push(stream)
  const path = String(stream.headers[":path"])
  const body: Buffer[] = []
  stream.listen({
    onData: (chunk) => {
      body.push(Buffer.from(chunk))
      served.events.push(`${stream.id} data ${chunk.length}`)
    },
    onEnd: () => {
      served.events.push(`${stream.id} end`)
      if (path === "/echo") {
        stream.respond({ ":status": 200 }, { trailers: true })
        stream.write(Buffer.concat(body))
        stream.end({ "x-done": "yes" })
      } else if (path.startsWith("/bytes/")) {
        stream.respond({ ":status": 200 }, {})
        stream.write(Buffer.alloc(Number(path.slice(7)), "a"))
        stream.end()
      }
    },
    onClose: () => served.events.push(`${stream.id} close`),
    onDrain: () => served.events.push(`${stream.id} drain`),
  })
}

const isData = (streamId: number) => (f: Seen) => f.type === FrameType.DATA && f.streamId === streamId
const headersOf = (f: Seen): Record<string, string | string[] | undefined> => new HpackDecoder().decodeMap(f.payload)

test("H2Connection sends its SETTINGS first, ACKs the client's SETTINGS and answers PING with the same payload", async () => {
  const served = await serve({ maxConcurrentStreams: 100, windowBytes: 1 << 20 })
  const client = await RawClient.connect(served.port)
  const settings = await client.next(() => true)
  expect(settings.type).toBe(FrameType.SETTINGS)
  expect(settings.flags).toBe(0)
  const values = new Map<number, number>()
  for (let i = 0; i < settings.payload.length; i += 6) values.set(settings.payload.readUInt16BE(i), settings.payload.readUInt32BE(i + 2))
  expect(values.get(Setting.MAX_CONCURRENT_STREAMS)).toBe(100)
  expect(values.get(Setting.INITIAL_WINDOW_SIZE)).toBe(1 << 20)
  const update = await client.next((f) => f.type === FrameType.WINDOW_UPDATE)
  expect({ streamId: update.streamId, increment: update.payload.readUInt32BE(0) }).toEqual({ streamId: 0, increment: (1 << 20) - 65_535 })
  await client.next((f) => f.type === FrameType.SETTINGS && f.flags === Flag.ACK, "SETTINGS ACK")
  client.send(frame(FrameType.PING, 0, 0, Buffer.from("12345678")))
  const pong = await client.next((f) => f.type === FrameType.PING, "PING ACK")
  expect({ flags: pong.flags, payload: pong.payload.toString() }).toEqual({ flags: Flag.ACK, payload: "12345678" })
})

test("H2Connection serves a request with any :authority, body in DATA (padding dropped), trailers at the end", async () => {
  const served = await serve()
  const client = await RawClient.connect(served.port)
  client.request(1, "/echo")
  const padded = Buffer.concat([Buffer.from([3]), Buffer.from("hello"), Buffer.alloc(3)])
  client.send(frame(FrameType.DATA, Flag.PADDED | Flag.END_STREAM, 1, padded))
  const headers = await client.next((f) => f.type === FrameType.HEADERS && f.streamId === 1)
  expect(headersOf(headers)).toEqual({ ":status": "200" })
  expect((await client.next(isData(1))).payload.toString()).toBe("hello")
  const trailers = await client.next((f) => f.type === FrameType.HEADERS && f.streamId === 1)
  expect(trailers.flags & (Flag.END_STREAM | Flag.END_HEADERS)).toBe(Flag.END_STREAM | Flag.END_HEADERS)
  expect(headersOf(trailers)).toEqual({ "x-done": "yes" })
  expect(served.streams[0]!.headers[":authority"]).toBe("anything at all")
  expect(served.events).toEqual(["1 data 5", "1 end", "1 close"])
})

test("H2Connection joins HEADERS and CONTINUATION frames into one header block", async () => {
  const served = await serve()
  const client = await RawClient.connect(served.port)
  const block = encodeHeaders({ ":method": "POST", ":scheme": "http", ":path": "/echo", "x-long": "v".repeat(40_000) })
  client.send(frame(FrameType.HEADERS, 0, 1, block.subarray(0, 10)))
  client.send(frame(FrameType.CONTINUATION, 0, 1, block.subarray(10, 16_000)))
  client.send(frame(FrameType.CONTINUATION, 0, 1, block.subarray(16_000, 32_000)))
  client.send(frame(FrameType.CONTINUATION, Flag.END_HEADERS, 1, block.subarray(32_000)))
  client.send(frame(FrameType.DATA, Flag.END_STREAM, 1, Buffer.from("x")))
  await client.next((f) => f.type === FrameType.HEADERS && f.streamId === 1)
  expect(served.streams[0]!.headers["x-long"]).toBe("v".repeat(40_000))
})

test("H2Connection sends a response header block larger than a frame as HEADERS + CONTINUATION", async () => {
  const served = await serve({
    onStream: (stream) => {
      stream.listen({ onData() {}, onEnd() {}, onClose() {}, onDrain() {} })
      stream.respond({ ":status": 200, "x-big": "b".repeat(20_000) }, { endStream: true })
    },
  })
  const client = await RawClient.connect(served.port)
  client.request(1, "/any", { endStream: true })
  const first = await client.next((f) => f.streamId === 1)
  const second = await client.next((f) => f.streamId === 1)
  expect([first.type, first.flags, second.type, second.flags]).toEqual([FrameType.HEADERS, Flag.END_STREAM, FrameType.CONTINUATION, Flag.END_HEADERS])
  expect(headersOf({ ...first, payload: Buffer.concat([first.payload, second.payload]) })["x-big"]).toBe("b".repeat(20_000))
})

test("H2Connection flow control: a 1-byte stream window sends 1-byte DATA frames, each after a WINDOW_UPDATE", async () => {
  const served = await serve()
  const client = await RawClient.connect(served.port, [[Setting.INITIAL_WINDOW_SIZE, 1]])
  client.request(1, "/bytes/3", { endStream: true })
  await client.next((f) => f.type === FrameType.HEADERS && f.streamId === 1)
  const got: string[] = []
  for (let i = 0; i < 3; i++) {
    const data = await client.next(isData(1), `DATA ${i}`)
    got.push(`${data.payload.toString()}${data.flags & Flag.END_STREAM ? "|end" : ""}`)
    await new Promise((resolve) => setTimeout(resolve, 30))
    // nothing more until the window grows
    expect(client.frames.slice(-1)[0]).toBe(data)
    client.send(windowUpdateFrame(1, 1))
  }
  // end() came before the last byte could go: END_STREAM rides on the last DATA frame
  expect(got).toEqual(["a", "a", "a|end"])
})

test("H2Connection flow control: the connection window (65535) stops DATA until a connection WINDOW_UPDATE", async () => {
  const served = await serve()
  const client = await RawClient.connect(served.port, [[Setting.INITIAL_WINDOW_SIZE, 2 ** 31 - 1], [Setting.MAX_FRAME_SIZE, 2 ** 24 - 1]])
  client.request(1, "/bytes/100000", { endStream: true })
  let received = 0
  while (received < 65_535) received += (await client.next(isData(1))).payload.length
  expect(received).toBe(65_535)
  await new Promise((resolve) => setTimeout(resolve, 30))
  expect(client.frames.filter(isData(1)).reduce((n, f) => n + f.payload.length, 0)).toBe(65_535)
  client.send(windowUpdateFrame(0, 100_000))
  while (received < 100_000) received += (await client.next(isData(1))).payload.length
  expect(received).toBe(100_000)
})

test("H2Connection flow control: a smaller INITIAL_WINDOW_SIZE mid-stream shrinks windows; a larger one resumes", async () => {
  const served = await serve({
    onStream: (stream) => {
      served.streams.push(stream)
      stream.listen({ onData() {}, onEnd() {}, onClose() {}, onDrain: () => served.events.push("drain") })
      stream.respond({ ":status": 200 }, {})
    },
  })
  const client = await RawClient.connect(served.port, [[Setting.INITIAL_WINDOW_SIZE, 10]])
  client.request(1, "/any")
  await client.next((f) => f.type === FrameType.HEADERS)
  const stream = served.streams[0]!
  expect(stream.write(Buffer.alloc(100_000, "z"))).toBe(false) // 64 KiB queue limit: wait for drain
  expect((await client.next(isData(1))).payload.length).toBe(10)
  client.send(settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 5]])) // window 10 - 10 + (5 - 10) = -5
  client.send(windowUpdateFrame(1, 5)) // back to 0: still nothing
  await client.next((f) => f.type === FrameType.SETTINGS && f.flags === Flag.ACK)
  await new Promise((resolve) => setTimeout(resolve, 30))
  expect(client.frames.filter(isData(1)).length).toBe(1)
  client.send(settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 200_000]]))
  client.send(windowUpdateFrame(0, 100_000))
  let received = 10
  while (received < 100_000) received += (await client.next(isData(1))).payload.length
  expect(received).toBe(100_000)
  await new Promise((resolve) => setTimeout(resolve, 30))
  expect(served.events).toEqual(["drain"])
})

test("H2Connection grants more receive window (connection and stream) as the client's DATA uses it", async () => {
  const served = await serve({ windowBytes: 100_000 })
  const client = await RawClient.connect(served.port)
  client.request(1, "/hold")
  client.send(frame(FrameType.DATA, 0, 1, Buffer.alloc(16_000)))
  client.send(frame(FrameType.DATA, 0, 1, Buffer.alloc(16_000)))
  client.send(frame(FrameType.DATA, 0, 1, Buffer.alloc(16_000)))
  client.send(frame(FrameType.DATA, 0, 1, Buffer.alloc(16_000)))
  const updates = new Map<number, number>()
  while (updates.size < 2) {
    const f = await client.next((f) => f.type === FrameType.WINDOW_UPDATE && f.payload.readUInt32BE(0) !== 100_000 - 65_535)
    updates.set(f.streamId, f.payload.readUInt32BE(0))
  }
  expect(updates).toEqual(new Map([[0, 64_000], [1, 64_000]]))
})

test("H2Connection passes a client's RST_STREAM mid-stream to the stream as a close; later writes are dropped", async () => {
  const served = await serve()
  const client = await RawClient.connect(served.port)
  client.request(1, "/hold")
  client.send(frame(FrameType.DATA, 0, 1, Buffer.from("part")))
  client.send(rstStreamFrame(1, ErrorCode.CANCEL))
  const deadline = performance.now() + 2000
  while (!served.events.includes("1 close") && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5))
  expect(served.events).toEqual(["1 data 4", "1 close"])
  const stream = served.streams[0]!
  expect(stream.destroyed).toBe(true)
  expect(stream.write(Buffer.from("late"))).toBe(false)
  // the connection still serves new streams
  client.request(3, "/bytes/2", { endStream: true })
  expect((await client.next(isData(3))).payload.toString()).toBe("aa")
})

test("H2Connection resets a stream it ended while the client had not (RST_STREAM NO_ERROR), as grpc-go does", async () => {
  const served = await serve({
    onStream: (stream) => {
      stream.listen({ onData() {}, onEnd() {}, onClose: () => served.events.push("close"), onDrain() {} })
      stream.respond({ ":status": 200, "grpc-status": "5" }, { endStream: true })
    },
  })
  const client = await RawClient.connect(served.port)
  client.request(1, "/any")
  await client.next((f) => f.type === FrameType.HEADERS && f.streamId === 1)
  const rst = await client.next((f) => f.type === FrameType.RST_STREAM, "RST_STREAM")
  expect({ streamId: rst.streamId, code: rst.payload.readUInt32BE(0) }).toEqual({ streamId: 1, code: ErrorCode.NO_ERROR })
  expect(served.events).toEqual(["close"])
})

test("H2Connection refuses streams beyond MAX_CONCURRENT_STREAMS with RST_STREAM REFUSED_STREAM", async () => {
  const served = await serve({ maxConcurrentStreams: 2 })
  const client = await RawClient.connect(served.port)
  client.request(1, "/hold")
  client.request(3, "/hold")
  client.request(5, "/hold")
  const rst = await client.next((f) => f.type === FrameType.RST_STREAM)
  expect({ streamId: rst.streamId, code: rst.payload.readUInt32BE(0) }).toEqual({ streamId: 5, code: ErrorCode.REFUSED_STREAM })
  expect(served.streams.map((s) => s.id)).toEqual([1, 3])
})

test("H2Connection.close() sends GOAWAY with the last stream id, finishes streams in progress, ignores new ones, then ends", async () => {
  const served = await serve()
  const client = await RawClient.connect(served.port)
  client.request(1, "/echo")
  client.request(3, "/echo")
  await client.next((f) => f.type === FrameType.SETTINGS && f.flags === Flag.ACK)
  while (served.streams.length < 2) await new Promise((resolve) => setTimeout(resolve, 5))
  served.connections[0]!.close()
  expect(await client.goaway()).toEqual({ lastStreamId: 3, code: ErrorCode.NO_ERROR, debug: "" })
  client.request(5, "/echo", { endStream: true }) // after GOAWAY: ignored
  client.send(frame(FrameType.DATA, Flag.END_STREAM, 1, Buffer.from("one")))
  client.send(frame(FrameType.DATA, Flag.END_STREAM, 3, Buffer.from("three")))
  expect((await client.next(isData(1))).payload.toString()).toBe("one")
  expect((await client.next(isData(3))).payload.toString()).toBe("three")
  await client.closed()
  expect(served.streams.map((s) => s.id)).toEqual([1, 3])
})

/** Connects, sends `bytes` after the preface exchange, and returns the GOAWAY the server answers with. */
async function goawayFor(bytes: Buffer, options: { preface?: Buffer } = {}): Promise<{ code: number; lastStreamId: number }> {
  const served = await serve()
  const socket = net.connect(served.port, "127.0.0.1")
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()))
  const client = new RawClient(socket)
  client.send(options.preface ?? Buffer.concat([CLIENT_PREFACE, settingsFrame([])]))
  client.send(bytes)
  const goaway = await client.goaway()
  await client.closed()
  return { code: goaway.code, lastStreamId: goaway.lastStreamId }
}

const headersFrame = (streamId: number): Buffer => frame(FrameType.HEADERS, Flag.END_HEADERS, streamId, encodeHeaders({ ":method": "GET", ":scheme": "http", ":path": "/hold" }))

test("H2Connection answers protocol errors with GOAWAY and the right code, then closes", async () => {
  expect(await goawayFor(Buffer.alloc(0), { preface: Buffer.from("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n") })).toEqual({ code: ErrorCode.PROTOCOL_ERROR, lastStreamId: 0 })
  expect(await goawayFor(Buffer.alloc(0), { preface: Buffer.concat([CLIENT_PREFACE, frame(FrameType.PING, 0, 0, Buffer.alloc(8))]) })).toEqual({ code: ErrorCode.PROTOCOL_ERROR, lastStreamId: 0 })
  expect(await goawayFor(Buffer.concat([headersFrame(5), headersFrame(3)]))).toEqual({ code: ErrorCode.PROTOCOL_ERROR, lastStreamId: 5 })
  expect(await goawayFor(headersFrame(2))).toEqual({ code: ErrorCode.PROTOCOL_ERROR, lastStreamId: 0 })
  expect(await goawayFor(frame(FrameType.DATA, 0, 0, Buffer.from("x")))).toEqual({ code: ErrorCode.PROTOCOL_ERROR, lastStreamId: 0 })
  expect(await goawayFor(frame(FrameType.DATA, 0, 7, Buffer.from("x")))).toEqual({ code: ErrorCode.PROTOCOL_ERROR, lastStreamId: 0 })
  expect(await goawayFor(frame(FrameType.DATA, 0, 1, Buffer.alloc(16_385)))).toEqual({ code: ErrorCode.FRAME_SIZE_ERROR, lastStreamId: 0 })
  expect(await goawayFor(frame(FrameType.PING, 0, 0, Buffer.alloc(7)))).toEqual({ code: ErrorCode.FRAME_SIZE_ERROR, lastStreamId: 0 })
  expect(await goawayFor(frame(FrameType.SETTINGS, 0, 0, Buffer.alloc(5)))).toEqual({ code: ErrorCode.FRAME_SIZE_ERROR, lastStreamId: 0 })
  expect(await goawayFor(settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 2 ** 31]]))).toEqual({ code: ErrorCode.FLOW_CONTROL_ERROR, lastStreamId: 0 })
  expect(await goawayFor(settingsFrame([[Setting.MAX_FRAME_SIZE, 100]]))).toEqual({ code: ErrorCode.PROTOCOL_ERROR, lastStreamId: 0 })
  expect(await goawayFor(frame(FrameType.HEADERS, Flag.END_HEADERS, 1, Buffer.from([0x80])))).toEqual({ code: ErrorCode.COMPRESSION_ERROR, lastStreamId: 0 })
  expect(await goawayFor(Buffer.concat([frame(FrameType.HEADERS, 0, 1, Buffer.from([0x82])), frame(FrameType.PING, 0, 0, Buffer.alloc(8))]))).toEqual({ code: ErrorCode.PROTOCOL_ERROR, lastStreamId: 0 })
  expect(await goawayFor(frame(FrameType.CONTINUATION, Flag.END_HEADERS, 1, Buffer.from([0x82])))).toEqual({ code: ErrorCode.PROTOCOL_ERROR, lastStreamId: 0 })
  expect(await goawayFor(windowUpdateFrame(0, 2 ** 31 - 1))).toEqual({ code: ErrorCode.FLOW_CONTROL_ERROR, lastStreamId: 0 })
  expect(await goawayFor(frame(FrameType.PUSH_PROMISE, Flag.END_HEADERS, 1, Buffer.alloc(4)))).toEqual({ code: ErrorCode.PROTOCOL_ERROR, lastStreamId: 0 })
})

test("H2Connection closes every stream when the socket goes away", async () => {
  const served = await serve()
  const client = await RawClient.connect(served.port)
  client.request(1, "/hold")
  client.request(3, "/hold")
  while (served.streams.length < 2) await new Promise((resolve) => setTimeout(resolve, 5))
  client.socket.destroy()
  const deadline = performance.now() + 2000
  while (served.events.length < 2 && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5))
  expect(served.events.sort()).toEqual(["1 close", "3 close"])
})

test("H2Connection ends the connection with INTERNAL_ERROR (not the process) when a stream handler throws", async () => {
  const errors: string[] = []
  const served = await serve({
    onStream: () => {
      throw new Error("handler bug")
    },
    onInternalError: (e) => errors.push((e as Error).message),
  })
  const client = await RawClient.connect(served.port)
  client.request(1, "/any", { endStream: true })
  expect(await client.goaway()).toEqual({ lastStreamId: 1, code: ErrorCode.INTERNAL_ERROR, debug: "internal error" })
  await client.closed()
  expect(errors).toEqual(["handler bug"])
})

test("H2Connection ends a connection that floods PINGs without reading the ACKs (ENHANCE_YOUR_CALM)", async () => {
  let closed = false
  const served = await serve({ floodBacklogBytes: 256 * 1024, onClose: () => (closed = true) })
  const client = await RawClient.connect(served.port)
  await client.next((f) => f.type === FrameType.SETTINGS && f.flags === Flag.ACK)
  client.socket.pause() // never reads again: the server's PING ACKs pile up
  const burst = Buffer.concat(Array.from({ length: 1000 }, () => frame(FrameType.PING, 0, 0, Buffer.alloc(8))))
  const deadline = performance.now() + 10_000
  while (!closed && !client.socket.destroyed && performance.now() < deadline) {
    client.socket.write(burst)
    await new Promise((resolve) => setTimeout(resolve, 1))
  }
  expect(closed).toBe(true)
  expect(served.connections[0]!.openStreams).toBe(0)
})

test("H2Connection ends a connection that opens and resets streams in a flood (rapid reset, ENHANCE_YOUR_CALM); a few resets are fine", async () => {
  const served = await serve({ resetFloodPerSecond: 100 })
  const calm = await RawClient.connect(served.port)
  for (let id = 1; id <= 99; id += 2) {
    calm.request(id, "/hold")
    calm.send(rstStreamFrame(id, ErrorCode.CANCEL))
  }
  calm.request(101, "/bytes/2", { endStream: true })
  expect((await calm.next(isData(101))).payload.toString()).toBe("aa")

  const flood = await RawClient.connect(served.port)
  for (let id = 1; id <= 401; id += 2) {
    flood.request(id, "/hold")
    flood.send(rstStreamFrame(id, ErrorCode.CANCEL))
  }
  const goaway = await flood.goaway()
  expect(goaway.code).toBe(ErrorCode.ENHANCE_YOUR_CALM)
  expect(goaway.debug).toBe("too many streams reset by the client")
  await flood.closed()
})
