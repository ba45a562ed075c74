import { afterAll, beforeAll, expect, test } from "bun:test"
import { TskvError } from "../../lib/errors"
import { Registry } from "../../lib/metrics"
import { KVService, WatchService, type KeyValue } from "../../pb"
import { ClientListener, GrpcServer } from "../../h2grpc"
import { etcdGrpcErrors } from "../grpc/errors"
import { createHttpApp } from "./app"

const header = { clusterId: 13977979343546664504n, memberId: 3632325562372070109n, revision: 20, raftTerm: 2 }
const store = new Map<string, KeyValue>()
const tokens: (string | undefined)[] = []
let listener: ClientListener
let base: string

beforeAll(async () => {
  const server = new GrpcServer(etcdGrpcErrors)
  server.addUnary(KVService.Put, (request, call) => {
    tokens.push(call.header("authorization"))
    if (request.key.length === 0) throw new TskvError("emptyKey")
    store.set(Buffer.from(request.key).toString(), { key: Buffer.from(request.key), value: Buffer.from(request.value), createRevision: 20, modRevision: 20, version: 1, lease: 0n })
    return { header }
  })
  server.addUnary(KVService.Range, (request) => {
    if (request.key.length === 0) throw new TskvError("emptyKey")
    const kv = store.get(Buffer.from(request.key).toString())
    return { header, kvs: kv === undefined ? [] : [kv], count: kv === undefined ? 0 : 1 }
  })
  server.addBidi(WatchService.Watch, (call) => {
    call.onMessage((request) => {
      const create = request.createRequest
      if (create === undefined) return
      call.write({ header, watchId: 0, created: true })
      const kv = store.get(Buffer.from(create.key).toString())
      if (kv !== undefined) call.write({ header, watchId: 0, events: [{ type: 0, kv }] })
      call.end(new TskvError("compacted"))
    })
  })
  const app = createHttpApp({
    hasLeader: () => true,
    alarms: () => [],
    serializableRead: async () => {},
    linearizableRead: async () => {},
    isLearner: () => false,
    versions: () => ({ server: "3.4.23", cluster: "3.4.0" }),
    registry: new Registry(),
    gateway: server,
  })
  listener = await ClientListener.listen({ url: "http://127.0.0.1:0", grpc: server, fetch: app.fetch })
  base = `http://127.0.0.1:${listener.port}`
})

afterAll(() => listener.close(200))

async function post(path: string, body: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  const response = await fetch(`${base}${path}`, { method: "POST", body, headers })
  return { status: response.status, text: await response.text() }
}

const headerJson = '{"cluster_id":"13977979343546664504","member_id":"3632325562372070109","revision":"20","raft_term":"2"}'

test("gateway POST /v3/kv/put and /v3/kv/range answer etcd's JSON", async () => {
  expect(await post("/v3/kv/put", '{"key":"Zm9v","value":"YmFy"}')).toEqual({ status: 200, text: `{"header":${headerJson}}` })
  expect(await post("/v3/kv/range", '{"key":"Zm9v"}')).toEqual({
    status: 200,
    text: `{"header":${headerJson},"kvs":[{"key":"Zm9v","create_revision":"20","mod_revision":"20","version":"1","value":"YmFy"}],"count":"1"}`,
  })
})

test("gateway /v3beta/* is an alias of /v3/*", async () => {
  expect((await post("/v3beta/kv/range", '{"key":"Zm9v"}')).status).toBe(200)
})

test("gateway errors carry etcd's message, the gRPC code and grpc-gateway's HTTP status", async () => {
  const message = "etcdserver: key is not provided"
  expect(await post("/v3/kv/range", "{}")).toEqual({ status: 400, text: JSON.stringify({ error: message, message, code: 3 }) })
  const unknownField = await post("/v3/kv/range", '{"nope":1}')
  expect(unknownField.status).toBe(400)
  expect(JSON.parse(unknownField.text).code).toBe(3)
  expect((await post("/v3/kv/range", "{")).status).toBe(400)
  expect((await post("/v3/kv/nothing", "{}")).status).toBe(404)
})

test("gateway passes Authorization on as it came (etcd 3.4 strips no Bearer prefix)", async () => {
  await post("/v3/kv/put", '{"key":"YQ==","value":"Yg=="}', { authorization: "Bearer abc.7" })
  await post("/v3/kv/put", '{"key":"YQ==","value":"Yg=="}', { authorization: "xyz.8" })
  expect(tokens.slice(-2)).toEqual(["Bearer abc.7", "xyz.8"])
})

test("gateway streams {\"result\": ...} lines for a bidi call, then the error", async () => {
  const response = await post("/v3/watch", '{"create_request":{"key":"Zm9v"}}')
  expect(response.status).toBe(200)
  const lines = response.text.trim().split("\n").map((line) => JSON.parse(line))
  expect(lines[0]).toEqual({ result: { header: JSON.parse(headerJson), created: true } })
  expect(lines[1].result.events[0].kv.value).toBe("YmFy")
  expect(lines[2]).toEqual({ error: { grpc_code: 11, http_code: 400, message: "etcdserver: mvcc: required revision has been compacted", http_status: "Bad Request" } })
})
