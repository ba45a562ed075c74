// Interoperability of our transport with grpc-go (real etcdctl 3.4) and with
// plain HTTP clients on the same port, cleartext and TLS (client cert auth).

import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import * as grpc from "@grpc/grpc-js"
import * as http2 from "node:http2"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { tempDir } from "../../../test/support/tmp"
import { compareBytes, equalBytes, fromUtf8, isZeroByte } from "../../lib/bytes"
import { Registry } from "../../lib/metrics"
import { HealthService as HealthMethods, KVService, type KeyValue, type RangeRequest } from "../../pb"
import { createHttpApp } from "../http/app"
import { EtcdClient } from "../../client"
import { TskvError } from "../../lib/errors"
import { ClientListener, GrpcServer } from "../../h2grpc"
import { etcdGrpcErrors } from "./errors"
import { HealthService, ServingStatus } from "./services/health"

/** A minimal in-memory KV (Range and Put) over src/pb's codecs. */
class MemoryKv {
  revision = 1
  readonly kvs = new Map<string, KeyValue>()
  peerNames: (string | undefined)[] = []

  register(server: GrpcServer): void {
    const header = (): { clusterId: bigint; memberId: bigint; revision: number; raftTerm: number } => ({
      clusterId: 0xcdf818194e3a8c32n,
      memberId: 0x8e9e05c52164694dn,
      revision: this.revision,
      raftTerm: 2,
    })
    server.addUnary(KVService.Put, (request, call) => {
      this.peerNames.push(call.peerCommonName)
      if (fromUtf8(request.key) === "nospace") throw new TskvError("noSpace")
      this.revision++
      const old = this.kvs.get(Buffer.from(request.key).toString("hex"))
      this.kvs.set(Buffer.from(request.key).toString("hex"), {
        key: Buffer.from(request.key),
        value: Buffer.from(request.value),
        createRevision: old?.createRevision ?? this.revision,
        modRevision: this.revision,
        version: (old?.version ?? 0) + 1,
        lease: request.lease,
      })
      return { header: header() }
    })
    server.addUnary(KVService.Range, (request) => {
      if (request.key.length === 0) throw new TskvError("emptyKey")
      const kvs = [...this.kvs.values()].filter((kv) => inRange(kv.key, request)).sort((a, b) => compareBytes(a.key, b.key))
      const limited = request.limit > 0 ? kvs.slice(0, request.limit) : kvs
      return { header: header(), kvs: request.countOnly ? [] : limited, count: kvs.length, more: limited.length < kvs.length }
    })
  }
}

function inRange(key: Uint8Array, request: RangeRequest): boolean {
  if (request.rangeEnd.length === 0) return equalBytes(key, request.key)
  if (compareBytes(key, request.key) < 0) return false
  return isZeroByte(request.rangeEnd) || compareBytes(key, request.rangeEnd) < 0
}

interface Pki {
  dir: { path: string; remove(): void }
  ca: string
  serverCert: string
  serverKey: string
  clientCert: string
  clientKey: string
}

async function run(argv: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdin = input === undefined ? "ignore" : Buffer.from(input)
  const proc = Bun.spawn(argv, { env: { ...process.env, ETCDCTL_API: "3" }, stdout: "pipe", stderr: "pipe", stdin })
  const timer = setTimeout(() => proc.kill(), 20_000)
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited])
  clearTimeout(timer)
  return { code, stdout, stderr }
}

/** A throwaway CA, a server certificate for 127.0.0.1 and a client certificate with CN=root (openssl CLI). */
async function makePki(): Promise<Pki> {
  const dir = tempDir("tskv-transport-pki-")
  const p = (name: string): string => join(dir.path, name)
  const steps = [
    ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", p("ca.key"), "-out", p("ca.crt"), "-days", "1", "-subj", "/CN=tskv test ca"],
    ["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", p("server.key"), "-out", p("server.csr"), "-subj", "/CN=tskv server"],
    ["openssl", "x509", "-req", "-in", p("server.csr"), "-CA", p("ca.crt"), "-CAkey", p("ca.key"), "-CAcreateserial", "-out", p("server.crt"), "-days", "1", "-extfile", p("server.ext")],
    ["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", p("client.key"), "-out", p("client.csr"), "-subj", "/CN=root"],
    ["openssl", "x509", "-req", "-in", p("client.csr"), "-CA", p("ca.crt"), "-CAkey", p("ca.key"), "-CAcreateserial", "-out", p("client.crt"), "-days", "1", "-extfile", p("client.ext")],
  ]
  await Bun.write(p("server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n")
  await Bun.write(p("client.ext"), "extendedKeyUsage=clientAuth\n")
  for (const argv of steps) {
    const result = await run(argv)
    if (result.code !== 0) throw new Error(`${argv.join(" ")}: ${result.stderr}`)
  }
  return { dir, ca: p("ca.crt"), serverCert: p("server.crt"), serverKey: p("server.key"), clientCert: p("client.crt"), clientKey: p("client.key") }
}

interface Member {
  kv: MemoryKv
  registry: Registry
  server: GrpcServer
  listener: ClientListener
  health: HealthService
  stop(): Promise<void>
}

async function startMember(url: string, pki?: Pki): Promise<Member> {
  const registry = new Registry()
  const server = new GrpcServer({ registry, ...etcdGrpcErrors })
  const kv = new MemoryKv()
  kv.register(server)
  const health = new HealthService()
  health.register(server)
  const app = createHttpApp({
    hasLeader: () => true,
    alarms: () => [],
    serializableRead: async () => {},
    linearizableRead: async () => {},
    isLearner: () => false,
    versions: () => ({ server: "3.4.23", cluster: "3.4.0" }),
    registry,
  })
  const tls =
    pki === undefined
      ? undefined
      : { key: readFileSync(pki.serverKey), cert: readFileSync(pki.serverCert), ca: readFileSync(pki.ca), requestCert: true, rejectUnauthorized: true }
  const listener = await ClientListener.listen({ url, grpc: server, fetch: app.fetch, ...(tls === undefined ? {} : { tls }) })
  return {
    kv,
    registry,
    server,
    listener,
    health,
    stop: async () => {
      server.shutdown()
      await listener.close(500)
    },
  }
}

describe("cleartext client port", () => {
  let member: Member
  let endpoint: string
  beforeAll(async () => {
    member = await startMember("http://127.0.0.1:0")
    endpoint = `127.0.0.1:${member.listener.port}`
  })
  afterAll(() => member.stop())

  test("etcdctl 3.4 put prints OK and get prints the key and value", async () => {
    const put = await run(["etcdctl", `--endpoints=${endpoint}`, "put", "foo", "bar"])
    expect(put.stderr).toBe("")
    expect(put.stdout).toBe("OK\n")
    const get = await run(["etcdctl", `--endpoints=${endpoint}`, "get", "foo"])
    expect(get.stdout).toBe("foo\nbar\n")
    const json = await run(["etcdctl", `--endpoints=${endpoint}`, "-w", "json", "get", "foo"])
    expect(JSON.parse(json.stdout).count).toBe(1)
  })

  test("etcdctl 3.4 prints etcd's error text for an error status", async () => {
    const put = await run(["etcdctl", `--endpoints=${endpoint}`, "put", "nospace", "x"])
    expect(put.code).not.toBe(0)
    expect(put.stderr).toContain("code = ResourceExhausted desc = etcdserver: mvcc: database space exceeded")
    expect(put.stderr).toEndWith("\nError: etcdserver: mvcc: database space exceeded\n")
  })

  test("src/client EtcdClient puts and ranges, and gets etcd's typed error back", async () => {
    const client = new EtcdClient({ endpoints: [endpoint] })
    try {
      await client.kv.put({ key: Buffer.from("c"), value: Buffer.from("d") })
      const response = await client.kv.range({ key: Buffer.from("c") })
      expect(response.count).toBe(1)
      expect(fromUtf8(response.kvs[0]!.value)).toBe("d")
      const error = await client.kv.range({}).then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(error).toBeInstanceOf(TskvError)
      expect((error as TskvError).code).toBe("emptyKey")
    } finally {
      client.close()
    }
  })

  test("etcdctl 3.4 endpoint health succeeds through Range", async () => {
    const result = await run(["etcdctl", `--endpoints=${endpoint}`, "endpoint", "health"])
    expect(result.stdout + result.stderr).toMatch(new RegExp(`^${endpoint} is healthy: successfully committed proposal: took = `))
  })

  test("a large value (1 MiB) survives put and get through etcdctl", async () => {
    const value = "v".repeat(1024 * 1024)
    const put = await run(["etcdctl", `--endpoints=${endpoint}`, "put", "big"], value)
    expect(put.stdout).toBe("OK\n")
    const get = await run(["etcdctl", `--endpoints=${endpoint}`, "get", "big", "--print-value-only"])
    expect(get.stdout).toBe(`${value}\n`)
  })

  test("HTTP/1.1 GET /health, /version and /metrics on the gRPC port", async () => {
    const health = await fetch(`http://${endpoint}/health`)
    expect(health.status).toBe(200)
    expect(await health.text()).toBe('{"health":"true"}')
    expect(await (await fetch(`http://${endpoint}/version`)).text()).toBe('{"etcdserver":"3.4.23","etcdcluster":"3.4.0"}')
    const metrics = await (await fetch(`http://${endpoint}/metrics`)).text()
    expect(metrics).toMatch(/grpc_server_handled_total\{grpc_code="OK",grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary"\} [1-9]/)
  })

  test("HTTP/2 (prior knowledge) non-gRPC requests reach the HTTP app", async () => {
    const session = http2.connect(`http://${endpoint}`)
    try {
      const body = await new Promise<{ status: number; text: string }>((resolve, reject) => {
        const stream = session.request({ ":path": "/version" })
        let status = 0
        let text = ""
        stream.on("response", (headers) => (status = Number(headers[":status"])))
        stream.on("data", (d: Buffer) => (text += d.toString()))
        stream.on("end", () => resolve({ status, text }))
        stream.on("error", reject)
        stream.end()
      })
      expect(body).toEqual({ status: 200, text: '{"etcdserver":"3.4.23","etcdcluster":"3.4.0"}' })
    } finally {
      session.close()
    }
  })

  test("grpc.health.v1.Health Check answers the status the server sets", async () => {
    const client = new grpc.Client(endpoint, grpc.credentials.createInsecure())
    const check = (service: string): Promise<number> =>
      new Promise((resolve, reject) =>
        client.makeUnaryRequest(HealthMethods.Check.path, HealthMethods.Check.requestSerialize, HealthMethods.Check.responseDeserialize, { service }, (error, value) =>
          error !== null ? reject(error) : resolve(value!.status),
        ),
      )
    try {
      expect(await check("")).toBe(ServingStatus.SERVING)
      member.health.setStatus(ServingStatus.NOT_SERVING)
      expect(await check("")).toBe(ServingStatus.NOT_SERVING)
      // (not expect().rejects: it stalls Bun's event loop, and with it our in-process server)
      const unknown = await check("nope").then(
        () => undefined,
        (e: grpc.ServiceError) => ({ code: e.code, details: e.details }),
      )
      expect(unknown).toEqual({ code: grpc.status.NOT_FOUND, details: "unknown service" })
    } finally {
      member.health.setStatus(ServingStatus.SERVING)
      client.close()
    }
  })

  test("stored keys and values stay intact after many more requests (no buffer reuse)", async () => {
    const client = new grpc.Client(endpoint, grpc.credentials.createInsecure())
    const put = (key: string, value: string): Promise<unknown> =>
      new Promise((resolve, reject) =>
        client.makeUnaryRequest(KVService.Put.path, KVService.Put.requestSerialize, KVService.Put.responseDeserialize, { key: Buffer.from(key), value: Buffer.from(value) }, (error, v) =>
          error !== null ? reject(error) : resolve(v),
        ),
      )
    try {
      await Promise.all(Array.from({ length: 300 }, (_, i) => put(`k${i}`, `value-${i}-${"x".repeat(i)}`)))
      for (let i = 0; i < 300; i++) {
        const kv = member.kv.kvs.get(Buffer.from(`k${i}`).toString("hex"))
        expect(kv === undefined ? undefined : fromUtf8(kv.value)).toBe(`value-${i}-${"x".repeat(i)}`)
      }
    } finally {
      client.close()
    }
  })
})

describe("TLS client port with client certificate auth", () => {
  let pki: Pki
  let member: Member
  let endpoint: string
  beforeAll(async () => {
    pki = await makePki()
    member = await startMember("https://127.0.0.1:0", pki)
    endpoint = `https://127.0.0.1:${member.listener.port}`
  })
  afterAll(async () => {
    await member.stop()
    pki.dir.remove()
  })

  const tlsFlags = (): string[] => [`--endpoints=${endpoint}`, `--cacert=${pki.ca}`, `--cert=${pki.clientCert}`, `--key=${pki.clientKey}`]

  test("etcdctl 3.4 put and get over mTLS; the handler sees the client's CN", async () => {
    const put = await run(["etcdctl", ...tlsFlags(), "put", "foo", "bar"])
    expect(put.stderr).toBe("")
    expect(put.stdout).toBe("OK\n")
    expect(member.kv.peerNames).toEqual(["root"])
    const get = await run(["etcdctl", ...tlsFlags(), "get", "foo"])
    expect(get.stdout).toBe("foo\nbar\n")
  })

  test("a client without a certificate is refused", async () => {
    const put = await run(["etcdctl", `--endpoints=${endpoint}`, `--cacert=${pki.ca}`, "--dial-timeout=1s", "--command-timeout=2s", "put", "foo", "bar"])
    expect(put.code).not.toBe(0)
    expect(member.kv.peerNames).toEqual(["root"])
  })

  test("HTTPS (HTTP/1.1 by ALPN) GET /health and /metrics on the gRPC port", async () => {
    const tls = { ca: readFileSync(pki.ca), cert: readFileSync(pki.clientCert), key: readFileSync(pki.clientKey) }
    const health = await fetch(`${endpoint}/health`, { tls })
    expect(health.status).toBe(200)
    expect(await health.text()).toBe('{"health":"true"}')
    const metrics = await (await fetch(`${endpoint}/metrics`, { tls })).text()
    expect(metrics).toContain("# TYPE grpc_server_handled_total counter\n")
    const curl = await run(["curl", "-sS", "--http1.1", "--cacert", pki.ca, "--cert", pki.clientCert, "--key", pki.clientKey, `${endpoint}/version`])
    expect(curl.stdout).toBe('{"etcdserver":"3.4.23","etcdcluster":"3.4.0"}')
  })

  test("HTTP/2 over TLS (ALPN h2) serves the HTTP app too", async () => {
    const curl = await run(["curl", "-sS", "--http2", "-w", " %{http_version}", "--cacert", pki.ca, "--cert", pki.clientCert, "--key", pki.clientKey, `${endpoint}/version`])
    expect(curl.stdout).toBe('{"etcdserver":"3.4.23","etcdcluster":"3.4.0"} 2')
  })

  test("setSecureContext() applies new certificates to new connections", async () => {
    member.listener.setSecureContext({ key: readFileSync(pki.serverKey), cert: readFileSync(pki.serverCert), ca: readFileSync(pki.ca) })
    const get = await run(["etcdctl", ...tlsFlags(), "get", "foo", "--print-value-only"])
    expect(get.stdout).toBe("bar\n")
  })
})

describe("unix socket client port", () => {
  // grpc-js sends "localhost" as :authority (etcdctl's socket path: h2grpc/authority.test.ts).
  test("grpc-js and HTTP/1.1 over unix://", async () => {
    const dir = tempDir("tskv-transport-unix-")
    const path = join(dir.path, "client.sock")
    const member = await startMember(`unix://${path}`)
    const client = new grpc.Client(`unix://${path}`, grpc.credentials.createInsecure())
    try {
      const reply = await new Promise<unknown>((resolve, reject) =>
        client.makeUnaryRequest(KVService.Put.path, KVService.Put.requestSerialize, KVService.Put.responseDeserialize, { key: Buffer.from("u"), value: Buffer.from("1") }, (error, v) =>
          error !== null ? reject(error) : resolve(v),
        ),
      )
      expect(reply).toMatchObject({ header: { revision: 2 } })
      const health = await fetch("http://localhost/health", { unix: path })
      expect(await health.text()).toBe('{"health":"true"}')
    } finally {
      client.close()
      await member.stop()
      dir.remove()
    }
  })
})
