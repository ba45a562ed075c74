// Auth tokens over gRPC, differentially against real etcd 3.4 where the two
// must agree: simple tokens (format, idle expiry with a short
// --auth-token-ttl, invalidated by a password change and by deleting the
// user, role changes seen at once), jwt tokens (stale after any auth change:
// "revision of auth store is old"), and auth requests that are too large or
// not protobuf at all, after which the member still serves.

import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import * as grpc from "@grpc/grpc-js"
import { Etcd3 } from "etcd3"
import { generateKeyPairSync } from "node:crypto"
import { writeFileSync } from "node:fs"
import { connect } from "node:http2"
import { join } from "node:path"
import * as pb from "../../src/pb"
import { etcdctl, hasEtcd, type MemberProcess, startMember } from "../support/procs"
import { tempDir } from "../support/tmp"

interface Method<Req, Res> {
  path: string
  requestSerialize: (r: Req) => Uint8Array
  responseDeserialize: (b: Uint8Array) => Res
}

type Outcome<Res> = { ok: true; res: Res } | { ok: false; code: number; details: string }

const ep = (m: MemberProcess): string => m.clientUrl.replace("http://", "")

function call<Req, Res>(client: grpc.Client, m: Method<Req, Res>, req: Req, token?: string): Promise<Outcome<Res>> {
  const md = new grpc.Metadata()
  if (token !== undefined) md.set("token", token)
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      m.path,
      (r: Req) => Buffer.from(m.requestSerialize(r)),
      (b: Buffer) => m.responseDeserialize(b),
      req,
      md,
      { deadline: Date.now() + 10_000 },
      (err, res) => resolve(err ? { ok: false, code: err.code, details: err.details } : { ok: true, res: res as Res }),
    )
  })
}

const AuthM = pb.AuthService as unknown as Record<string, Method<unknown, unknown>>
const KvM = pb.KVService as unknown as Record<string, Method<unknown, unknown>>
const MaintM = pb.MaintenanceService as unknown as Record<string, Method<unknown, unknown>>

/** A readable line per outcome; `show` picks what of a success matters. */
function line<Res>(o: Outcome<Res>, show: (r: Res) => string = () => "ok"): string {
  return o.ok ? show(o.res) : `error ${grpc.status[o.code]}: ${o.details}`
}

const enc = (s: string): Uint8Array => Buffer.from(s)
const rangeReq = (key: string) => ({ key: enc(key) })
const values = (r: unknown): string => (r as pb.RangeResponse).kvs.map((kv) => `${Buffer.from(kv.key)}=${Buffer.from(kv.value)}`).join(",") || "(none)"

function setup(m: MemberProcess): void {
  const run = (...args: string[]): void => {
    const r = etcdctl(ep(m), args)
    if (r.code !== 0) throw new Error(`etcdctl ${args.join(" ")}: ${r.stderr}`)
  }
  run("user", "add", "root:rootpw")
  run("role", "add", "root")
  run("user", "grant-role", "root", "root")
  run("user", "add", "alice:apw")
  run("role", "add", "rw")
  run("role", "grant-permission", "rw", "readwrite", "/t/", "--prefix")
  run("user", "grant-role", "alice", "rw")
  run("put", "/t/a", "1")
  run("auth", "enable")
}

async function authenticate(client: grpc.Client, name: string, password: string): Promise<Outcome<{ token: string }>> {
  return (await call(client, AuthM.Authenticate!, { name, password })) as Outcome<{ token: string }>
}

describe("auth tokens against etcd 3.4", () => {
  const members: MemberProcess[] = []
  afterAll(async () => {
    await Promise.all(members.map((m) => m.stop()))
  })
  beforeAll(() => {
    if (!hasEtcd()) throw new Error("real etcd 3.4 is required: apt-get install -y etcd-server etcd-client")
  })

  test("simple tokens: format, idle expiry, password change, role revocation, user deletion", async () => {
    const args = ["--bcrypt-cost=4", "--auth-token-ttl=2"]
    const [etcd, tskv] = await Promise.all([startMember({ kind: "etcd", name: "t1", extraArgs: args }), startMember({ kind: "tskv", name: "t1", extraArgs: args })])
    members.push(etcd, tskv)
    const scenario = async (m: MemberProcess): Promise<string[]> => {
      const client = new grpc.Client(ep(m), grpc.credentials.createInsecure())
      const log: string[] = []
      const get = async (token?: string): Promise<string> => line(await call(client, KvM.Range!, rangeReq("/t/a"), token), values)
      const ctl = (...a: string[]): void => void log.push(`ctl ${a.join(" ")}: exit ${etcdctl(ep(m), ["--user", "root:rootpw", ...a], a[1] === "passwd" ? "newpw\n" : undefined).code}`)
      try {
        log.push(`authenticate while disabled: ${line(await authenticate(client, "alice", "apw"))}`)
        setup(m)
        const t1 = await authenticate(client, "alice", "apw")
        const tok1 = t1.ok ? t1.res.token : ""
        log.push(`token format: ${/^[a-zA-Z]{16}\.[0-9]+$/.test(tok1)}`)
        log.push(`get with token: ${await get(tok1)}`)
        log.push(`get without token: ${await get()}`)
        log.push(`get with garbage token: ${await get("garbage")}`)
        log.push(`get with forged token: ${await get("abcdefghijklmnop.3")}`)
        log.push(`wrong password: ${line(await authenticate(client, "alice", "nope"))}`)
        log.push(`unknown user: ${line(await authenticate(client, "mallory", "x"))}`)
        ctl("user", "passwd", "alice", "--interactive=false")
        log.push(`old token after password change: ${await get(tok1)}`)
        log.push(`old password: ${line(await authenticate(client, "alice", "apw"))}`)
        const t2 = await authenticate(client, "alice", "newpw")
        const tok2 = t2.ok ? t2.res.token : ""
        log.push(`new token: ${await get(tok2)}`)
        ctl("user", "revoke-role", "alice", "rw")
        log.push(`after role revoked: ${await get(tok2)}`)
        ctl("user", "grant-role", "alice", "rw")
        log.push(`after role granted again: ${await get(tok2)}`)
        log.push(`put through txn failure branch: ${line(await call(client, KvM.Txn!, { compare: [], success: [], failure: [{ requestPut: { key: enc("/x"), value: enc("v") } }] }, tok2))}`)
        log.push(`defrag as alice: ${line(await call(client, MaintM.Defragment!, {}, tok2))}`)
        log.push(`user list as alice: ${line(await call(client, AuthM.UserList!, {}, tok2))}`)
        await Bun.sleep(4000) // idle longer than --auth-token-ttl=2
        log.push(`idle token: ${await get(tok2)}`)
        const t3 = await authenticate(client, "alice", "newpw")
        const tok3 = t3.ok ? t3.res.token : ""
        log.push(`fresh token: ${await get(tok3)}`)
        ctl("user", "delete", "alice")
        log.push(`token of deleted user: ${await get(tok3)}`)
      } finally {
        client.close()
      }
      return log
    }
    const [e, t] = await Promise.all([scenario(etcd), scenario(tskv)])
    expect(t).toEqual(e)
    expect(e).toContain("token format: true")
    expect(e).toContain("idle token: error UNAUTHENTICATED: etcdserver: invalid auth token")
    expect(e).toContain("get without token: error INVALID_ARGUMENT: etcdserver: user name is empty")
  }, 60_000)

  test("jwt tokens: verified statelessly, stale after an auth change", async () => {
    const dir = tempDir("auth-jwt-")
    const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" })
    const pub = join(dir.path, "jwt.pub")
    const priv = join(dir.path, "jwt.key")
    writeFileSync(pub, publicKey.export({ type: "spki", format: "pem" }))
    writeFileSync(priv, privateKey.export({ type: "pkcs8", format: "pem" }))
    const args = ["--bcrypt-cost=4", `--auth-token=jwt,pub-key=${pub},priv-key=${priv},sign-method=ES256,ttl=10m`]
    const [etcd, tskv] = await Promise.all([startMember({ kind: "etcd", name: "j1", extraArgs: args }), startMember({ kind: "tskv", name: "j1", extraArgs: args })])
    members.push(etcd, tskv)
    const scenario = async (m: MemberProcess): Promise<string[]> => {
      const client = new grpc.Client(ep(m), grpc.credentials.createInsecure())
      const log: string[] = []
      try {
        setup(m)
        const t = await authenticate(client, "alice", "apw")
        const tok = t.ok ? t.res.token : ""
        const claims = JSON.parse(Buffer.from(tok.split(".")[1] ?? "", "base64url").toString()) as Record<string, unknown>
        log.push(`jwt claims: ${Object.keys(claims).sort().join(",")} user=${claims.username}`)
        log.push(`get: ${line(await call(client, KvM.Range!, rangeReq("/t/a"), tok), values)}`)
        log.push(`ctl role add: exit ${etcdctl(ep(m), ["--user", "root:rootpw", "role", "add", "other"]).code}`)
        log.push(`get after auth change: ${line(await call(client, KvM.Range!, rangeReq("/t/a"), tok), values)}`)
        log.push(`etcdctl get: ${etcdctl(ep(m), ["--user", "alice:apw", "get", "/t/a", "--print-value-only"]).stdout.trim()}`)
        log.push(`tampered: ${line(await call(client, KvM.Range!, rangeReq("/t/a"), `${tok.slice(0, -4)}AAAA`), values)}`)
      } finally {
        client.close()
      }
      return log
    }
    try {
      const [e, t] = await Promise.all([scenario(etcd), scenario(tskv)])
      expect(t).toEqual(e)
      expect(e).toContain("get after auth change: error INVALID_ARGUMENT: etcdserver: revision of auth store is old")
    } finally {
      dir.remove()
    }
  }, 60_000)

  test("the etcd3 npm client logs in, is refused what the role forbids, and re-authenticates after its token expired", async () => {
    const args = ["--bcrypt-cost=4", "--auth-token-ttl=2"]
    const [etcd, tskv] = await Promise.all([startMember({ kind: "etcd", name: "n1", extraArgs: args }), startMember({ kind: "tskv", name: "n1", extraArgs: args })])
    members.push(etcd, tskv)
    const scenario = async (m: MemberProcess): Promise<string[]> => {
      setup(m)
      const client = new Etcd3({ hosts: m.clientUrl, auth: { username: "alice", password: "apw" } })
      const log: string[] = []
      const attempt = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
        try {
          log.push(`${what}: ${JSON.stringify(await fn())}`)
        } catch (e) {
          log.push(`${what}: ${(e as Error).constructor.name} ${(e as Error).message}`)
        }
      }
      try {
        await attempt("get", () => client.get("/t/a").string())
        await attempt("put allowed", async () => void (await client.put("/t/b").value("2")))
        await attempt("put denied", async () => void (await client.put("/other").value("x")))
        await attempt("user list denied", () => client.getUsers())
        await Bun.sleep(3500) // the simple token expires while idle
        await attempt("get after expiry", () => client.get("/t/b").string())
      } finally {
        client.close()
      }
      return log
    }
    const [e, t] = await Promise.all([scenario(etcd), scenario(tskv)])
    expect(t).toEqual(e)
    expect(e).toEqual([
      'get: "1"',
      "put allowed: undefined",
      "put denied: EtcdPermissionDeniedError 7 PERMISSION_DENIED: etcdserver: permission denied",
      "user list denied: EtcdPermissionDeniedError 7 PERMISSION_DENIED: etcdserver: permission denied",
      'get after expiry: "2"',
    ])
  }, 60_000)

  test("a watch stream keeps creating watches after an auth change and sees a revoked role at once", async () => {
    const [etcd, tskv] = await Promise.all([startMember({ kind: "etcd", name: "w1", extraArgs: ["--bcrypt-cost=4"] }), startMember({ kind: "tskv", name: "w1", extraArgs: ["--bcrypt-cost=4"] })])
    members.push(etcd, tskv)
    const scenario = async (m: MemberProcess): Promise<string[]> => {
      setup(m)
      const client = new grpc.Client(ep(m), grpc.credentials.createInsecure())
      const log: string[] = []
      try {
        const t = await authenticate(client, "alice", "apw")
        const md = new grpc.Metadata()
        md.set("token", t.ok ? t.res.token : "")
        const W = pb.WatchService.Watch
        const stream = client.makeBidiStreamRequest(W.path, (r: pb.WatchRequestInit) => Buffer.from(W.requestSerialize(r as pb.WatchRequest)), (b: Buffer) => W.responseDeserialize(b), md)
        const responses: pb.WatchResponse[] = []
        stream.on("data", (r: pb.WatchResponse) => responses.push(r))
        stream.on("error", () => {})
        const create = async (key: string): Promise<void> => {
          const before = responses.length
          stream.write({ createRequest: { key: enc(key), rangeEnd: enc(`${key}\xff`) } })
          const deadline = Date.now() + 5000
          while (responses.length === before && Date.now() < deadline) await Bun.sleep(20)
          const r = responses[before]
          log.push(`watch ${key}: ${r ? `created=${r.created} canceled=${r.canceled} ${r.cancelReason}` : "no answer"}`)
        }
        await create("/t/1")
        log.push(`ctl role add: exit ${etcdctl(ep(m), ["--user", "root:rootpw", "role", "add", "other"]).code}`)
        await create("/t/2")
        log.push(`ctl revoke: exit ${etcdctl(ep(m), ["--user", "root:rootpw", "user", "revoke-role", "alice", "rw"]).code}`)
        await create("/t/3")
        stream.end()
      } finally {
        client.close()
      }
      return log
    }
    const [e, t] = await Promise.all([scenario(etcd), scenario(tskv)])
    expect(t).toEqual(e)
    expect(e[2]).toBe("watch /t/2: created=true canceled=false ")
  }, 60_000)

  test("oversized and malformed auth requests are refused and the member keeps serving", async () => {
    const [etcd, tskv] = await Promise.all([startMember({ kind: "etcd", name: "o1" }), startMember({ kind: "tskv", name: "o1" })])
    members.push(etcd, tskv)
    const scenario = async (m: MemberProcess): Promise<string[]> => {
      const client = new grpc.Client(ep(m), grpc.credentials.createInsecure(), { "grpc.max_send_message_length": 8 << 20 })
      const log: string[] = []
      try {
        const big = "u".repeat(1_600_000)
        log.push(`user add 1.6 MB name: ${line(await call(client, AuthM.UserAdd!, { name: big, password: "x" }))}`)
        log.push(`role grant 1.6 MB key: ${line(await call(client, AuthM.RoleGrantPermission!, { name: "r", perm: { permType: 0, key: enc(big) } }))}`)
        log.push(`too big for the transport: ${line(await call(client, AuthM.RoleAdd!, { name: "r".repeat(3 << 20) })).split(":")[0]}`)
        log.push(`malformed: ${await rawCall(m, "/etcdserverpb.Auth/UserAdd", Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01]))}`)
        log.push(`still serving: ${line(await call(client, MaintM.Status!, {}))}`)
        log.push(`user list: ${line(await call(client, AuthM.UserList!, {}), (r) => (r as { users: string[] }).users.join(",") || "(none)")}`)
      } finally {
        client.close()
      }
      return log
    }
    const [e, t] = await Promise.all([scenario(etcd), scenario(tskv)])
    expect(t).toEqual(e)
    expect(e[0]).toBe("user add 1.6 MB name: error INVALID_ARGUMENT: etcdserver: request is too large")
  }, 60_000)
})

/** One gRPC call with a hand-made (possibly broken) message body; answers the grpc-status code name. */
function rawCall(m: MemberProcess, path: string, body: Buffer): Promise<string> {
  return new Promise((resolve) => {
    const session = connect(m.clientUrl)
    session.on("error", () => {})
    const frame = Buffer.alloc(5 + body.length)
    frame.writeUInt32BE(body.length, 1)
    body.copy(frame, 5)
    const req = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers" })
    let status = "none"
    req.on("response", (h) => {
      if (h["grpc-status"] !== undefined) status = String(h["grpc-status"])
    })
    req.on("trailers", (h) => {
      if (h["grpc-status"] !== undefined) status = String(h["grpc-status"])
    })
    req.on("data", () => {})
    req.on("close", () => {
      session.close()
      resolve(grpc.status[Number(status)] ?? status)
    })
    req.on("error", () => {})
    req.end(frame)
  })
}
