// Unary echo throughput of our gRPC server against an equivalent
// @grpc/grpc-js Server, in the same run. Tiny by default (a grpc-js client,
// a few hundred calls); with TSKV_BENCH=1 the load comes from h2load
// (nghttp2-client), which is cheaper than either server, and the server's own
// CPU time per call is reported (the machine is shared: CPU per call is the
// steadier number). h2load counts gRPC errors as successes, so every run checks
// the handler's own count. "bare-http2-floor" is node:http2 answering with a
// canned reply: what Bun's own HTTP/2 costs before any gRPC work. "tskv-h2" is
// our GrpcServer on our HTTP/2 engine (h2/).

import { expect, test } from "bun:test"
import * as grpc from "@grpc/grpc-js"
import * as http2 from "node:http2"
import { existsSync } from "node:fs"
import { join } from "node:path"
import { tempDir } from "../../test/support/tmp"
import { GrpcServer, type MethodDescriptor } from "./grpc_server"
import { ClientListener } from "./listener"
import { frameMessage } from "./framing"

const full = process.env.TSKV_BENCH === "1"
const h2loadPath = "/usr/bin/h2load"
const PAYLOAD = Buffer.alloc(48, 7) // about a small PutRequest

const Echo: MethodDescriptor<Uint8Array, Uint8Array> = {
  path: "/bench.Echo/Echo",
  requestStream: false,
  responseStream: false,
  requestDeserialize: (bytes) => bytes,
  responseSerialize: (message) => message,
}

interface Target {
  port: number
  handled(): number
  stop(): Promise<void>
}

async function startOurs(): Promise<Target> {
  const server = new GrpcServer()
  let handled = 0
  server.addUnary(Echo, (request) => {
    handled++
    return request
  })
  const listener = await ClientListener.listen({ url: "http://127.0.0.1:0", grpc: server })
  return { port: listener.port, handled: () => handled, stop: () => listener.close(200) }
}

async function startGrpcJs(): Promise<Target> {
  const server = new grpc.Server()
  let handled = 0
  server.addService(
    {
      Echo: {
        path: Echo.path,
        requestStream: false,
        responseStream: false,
        requestSerialize: (b: Buffer) => b,
        requestDeserialize: (b: Buffer) => b,
        responseSerialize: (b: Buffer) => b,
        responseDeserialize: (b: Buffer) => b,
      },
    },
    {
      Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
        handled++
        callback(null, call.request)
      },
    },
  )
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  )
  return { port, handled: () => handled, stop: () => new Promise((resolve) => server.tryShutdown(() => resolve())) }
}

/** The floor: bare node:http2 answering every stream with one canned gRPC reply (no routing, no decoding). */
async function startBareHttp2(): Promise<Target> {
  const server = http2.createServer()
  const reply = frameMessage(PAYLOAD)
  let handled = 0
  server.on("stream", (s) => {
    const stream = s as http2.ServerHttp2Stream
    stream.on("data", () => {})
    stream.on("end", () => {
      handled++
      stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true })
      stream.once("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }))
      stream.end(reply)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()))
  const address = server.address()
  const port = typeof address === "object" && address !== null ? address.port : 0
  return { port, handled: () => handled, stop: () => new Promise((resolve) => server.close(() => resolve())) }
}

interface Result {
  requests: number
  seconds: number
  rps: number
  cpuMicrosPerCall: number
}

/** Load from a @grpc/grpc-js client in this process (the tiny run). */
async function loadWithGrpcJs(port: number, count: number, inFlight: number): Promise<number> {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure())
  let sent = 0
  let ok = 0
  const one = (): Promise<void> =>
    new Promise((resolve, reject) =>
      client.makeUnaryRequest(Echo.path, (b: Buffer) => b, (b: Buffer) => b, PAYLOAD, (e, v) => {
        if (e !== null) reject(e)
        else {
          if (v?.length === PAYLOAD.length) ok++
          resolve()
        }
      }),
    )
  const worker = async (): Promise<void> => {
    while (sent < count) {
      sent++
      await one()
    }
  }
  await Promise.all(Array.from({ length: inFlight }, worker))
  client.close()
  return ok
}

/** Load from h2load in another process (the full run): `clients` connections × `streams` in flight. */
async function loadWithH2load(port: number, options: { requests: number; clients: number; streams: number }): Promise<string> {
  const dir = tempDir("tskv-bench-")
  try {
    const body = join(dir.path, "req.bin")
    await Bun.write(body, frameMessage(PAYLOAD))
    const proc = Bun.spawn(
      [h2loadPath, "-n", String(options.requests), "-c", String(options.clients), "-m", String(options.streams), "-t", "1", "-d", body,
        "-H", "content-type: application/grpc", "-H", "te: trailers", "-H", "grpc-timeout: 5S", `http://127.0.0.1:${port}${Echo.path}`],
      { stdout: "pipe", stderr: "pipe" },
    )
    const [out, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited])
    if (code !== 0) throw new Error(`h2load exited ${code}: ${out}`)
    return out
  } finally {
    dir.remove()
  }
}

async function measure(target: Target, run: () => Promise<unknown>, expected: number): Promise<Result> {
  const before = target.handled()
  const cpu = process.cpuUsage()
  const started = performance.now()
  await run()
  const seconds = (performance.now() - started) / 1000
  const used = process.cpuUsage(cpu)
  const requests = target.handled() - before
  expect(requests).toBe(expected)
  return { requests, seconds, rps: Math.round(requests / seconds), cpuMicrosPerCall: Math.round(((used.user + used.system) / requests) * 10) / 10 }
}

test("benchmark: unary echo, our gRPC server vs @grpc/grpc-js Server and a bare node:http2 floor", { timeout: 300_000 }, async () => {
  const useH2load = full && existsSync(h2loadPath)
  const requests = full ? 200_000 : 300
  const results: Record<string, Result> = {}
  const targets = [
    ["tskv-h2", startOurs],
    ["grpc-js", startGrpcJs],
    ["bare-http2-floor", startBareHttp2],
  ] as const
  for (const [name, start] of targets) {
    const target = await start()
    try {
      if (useH2load) {
        // warm up, then measure; the server's CPU is this process's CPU (h2load is another process)
        await loadWithH2load(target.port, { requests: 20_000, clients: 4, streams: 64 })
        results[name] = await measure(target, () => loadWithH2load(target.port, { requests, clients: 4, streams: 64 }), requests)
      } else {
        await loadWithGrpcJs(target.port, 50, 8)
        results[name] = await measure(target, () => loadWithGrpcJs(target.port, requests, 32), requests)
      }
    } finally {
      await target.stop()
    }
  }
  console.log(JSON.stringify({ benchmark: "grpc unary echo", load: useH2load ? "h2load -c 4 -m 64" : "grpc-js client, 32 in flight", results }))
  expect(results["tskv-h2"]!.requests).toBe(requests)
})
