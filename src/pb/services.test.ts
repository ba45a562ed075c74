// The generated service descriptors work as @grpc/grpc-js ServiceDefinitions,
// on the server (addService) and on the client (makeGenericClientConstructor).
import { afterAll, beforeAll, expect, test } from "bun:test"
import {
  credentials,
  makeGenericClientConstructor,
  Server,
  ServerCredentials,
  type sendUnaryData,
  type ServerDuplexStream,
  type ServerUnaryCall,
  type ServiceError,
  type UntypedServiceImplementation,
} from "@grpc/grpc-js"
import { EtcdClient } from "../client"
import { fromUtf8, utf8 } from "../lib/bytes"
import { KVService, WatchService, type RangeRequest, type RangeResponseInit, type WatchRequest, type WatchResponseInit } from "./index"

let server: Server
let port = 0

beforeAll(async () => {
  server = new Server()
  const kv: UntypedServiceImplementation = {
    Range: (call: ServerUnaryCall<RangeRequest, RangeResponseInit>, callback: sendUnaryData<RangeResponseInit>) => {
      const key = call.request.key
      callback(null, { header: { revision: 7, clusterId: 0xfeedfacecafebeefn }, kvs: [{ key, value: utf8(`value of ${fromUtf8(key)}`), version: 1 }], count: 1 })
    },
  }
  const watch: UntypedServiceImplementation = {
    Watch: (call: ServerDuplexStream<WatchRequest, WatchResponseInit>) => {
      call.on("data", (req: WatchRequest) => {
        if (req.createRequest !== undefined) call.write({ watchId: 1, created: true, header: { revision: req.createRequest.startRevision } })
      })
      call.on("end", () => call.end())
    },
  }
  server.addService(KVService, kv)
  server.addService(WatchService, watch)
  port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  )
})

afterAll(() => {
  server.forceShutdown()
})

test("KVService and WatchService serve through grpc-js Server.addService and EtcdClient", async () => {
  const client = new EtcdClient({ endpoints: [`127.0.0.1:${port}`] })
  try {
    const res = await client.kv.range({ key: utf8("a") })
    expect(res.header!.clusterId).toBe(0xfeedfacecafebeefn)
    expect(fromUtf8(res.kvs[0]!.value)).toBe("value of a")
    const w = client.watch()
    w.create({ key: utf8("a"), startRevision: 42 })
    const created = await w.read()
    expect([created.created, created.header!.revision]).toEqual([true, 42])
    w.close()
  } finally {
    client.close()
  }
})

test("makeGenericClientConstructor(KVService) builds a working client with the original and lower-case names", async () => {
  const Ctor = makeGenericClientConstructor(KVService, "KV")
  const client = new Ctor(`127.0.0.1:${port}`, credentials.createInsecure()) as unknown as Record<
    string,
    (req: object, cb: (err: ServiceError | null, res?: { kvs: { value: Uint8Array }[] }) => void) => void
  >
  const call = (name: string) =>
    new Promise<string>((resolve, reject) =>
      client[name]!({ key: utf8("b") }, (err, res) => (err ? reject(err) : resolve(fromUtf8(res!.kvs[0]!.value)))),
    )
  expect(await call("Range")).toBe("value of b")
  expect(await call("range")).toBe("value of b")
  ;(client as unknown as { close(): void }).close()
})
