// How auth tokens behave when a client moves between the members of a
// 3-member cluster; the same scenario runs on tskv and on real etcd 3.4:
// - simple: Authenticate is applied by every member, so the token works on
//   each of them at once (a member that has not applied the entry yet waits
//   for it); each member keeps it in memory with its own idle clock, so a
//   member the client has not used for --auth-token-ttl, and a restarted
//   member, answer "invalid auth token" and the client logs in again.
// - jwt: stateless, works on every member, restarted ones included.

import { afterAll, describe, expect, test } from "bun:test"
import * as grpc from "@grpc/grpc-js"
import { generateKeyPairSync } from "node:crypto"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import * as pb from "../../src/pb"
import { freePorts } from "../support/ports"
import { etcdctl, type MemberProcess, startMember } from "../support/procs"
import { tempDir } from "../support/tmp"

const live: MemberProcess[] = []
const dirs: { remove(): void }[] = []
afterAll(async () => {
  await Promise.all(live.splice(0).map((m) => m.stop("SIGKILL")))
  for (const d of dirs) d.remove()
}, 30_000)

const ep = (m: MemberProcess): string => m.clientUrl.replace("http://", "")

type Kind = "tskv" | "etcd"

async function startCluster(kind: Kind, extraArgs: string[]): Promise<MemberProcess[]> {
  const ports = await freePorts(6)
  const names = ["f1", "f2", "f3"]
  const initialCluster = names.map((n, i) => `${n}=http://127.0.0.1:${ports[i * 2 + 1]}`).join(",")
  const members = await Promise.all(
    names.map((name, i) => startMember({ kind, name, clientPort: ports[i * 2]!, peerPort: ports[i * 2 + 1]!, initialCluster, extraArgs })),
  )
  live.push(...members)
  return members
}

async function restart(kind: Kind, members: MemberProcess[], i: number, extraArgs: string[]): Promise<void> {
  const m = members[i]!
  await m.stop()
  live.splice(live.indexOf(m), 1)
  const again = await startMember({ kind, name: m.name, dataDir: m.dataDir, clientPort: m.clientPort, peerPort: m.peerPort, extraArgs })
  live.push(again)
  members[i] = again
}

function unary<Req, Res>(m: MemberProcess, method: { path: string; requestSerialize(r: Req): Uint8Array; responseDeserialize(b: Uint8Array): Res }, req: Req, token?: string): Promise<Res> {
  const client = new grpc.Client(ep(m), grpc.credentials.createInsecure())
  const md = new grpc.Metadata()
  if (token !== undefined) md.set("token", token)
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      method.path,
      (r: Req) => Buffer.from(method.requestSerialize(r)),
      (b: Buffer) => method.responseDeserialize(b),
      req,
      md,
      { deadline: Date.now() + 15_000 },
      (err, res) => {
        client.close()
        if (err) reject(err)
        else resolve(res as Res)
      },
    )
  })
}

async function login(m: MemberProcess, name: string, password: string): Promise<string> {
  return (await unary(m, pb.AuthService.Authenticate, { name, password } as pb.AuthenticateRequest)).token
}

/** "ok" or the error text of a Range of /t/a with the token. */
async function read(m: MemberProcess, token: string): Promise<string> {
  try {
    await unary(m, pb.KVService.Range, { key: Buffer.from("/t/a") } as unknown as pb.RangeRequest, token)
    return "ok"
  } catch (e) {
    return (e as grpc.ServiceError).details
  }
}

function setup(m: MemberProcess): void {
  for (const args of [
    ["user", "add", "root:rootpw"],
    ["role", "add", "root"],
    ["user", "grant-role", "root", "root"],
    ["user", "add", "alice:apw"],
    ["role", "add", "rw"],
    ["role", "grant-permission", "rw", "readwrite", "/t/", "--prefix"],
    ["user", "grant-role", "alice", "rw"],
    ["put", "/t/a", "1"],
    ["auth", "enable"],
  ]) {
    const r = etcdctl(ep(m), args)
    if (r.code !== 0) throw new Error(`etcdctl ${args.join(" ")}: ${r.stderr}`)
  }
}

/** A write after the login, read back on every member, so no member replays the Authenticate entry after a restart. */
function settle(members: MemberProcess[]): void {
  expect(etcdctl(ep(members[0]!), ["--user", "root:rootpw", "put", "/t/settle", "x"]).code).toBe(0)
  for (const m of members) expect(etcdctl(ep(m), ["--user", "root:rootpw", "get", "/t/settle", "--print-value-only"]).stdout).toBe("x\n")
}

describe.each(["tskv", "etcd"] as const)("auth tokens across the members of a %s cluster", (kind) => {
  test("simple tokens: valid on every member, idle clock per member, lost by a restarted member", async () => {
    const args = ["--bcrypt-cost=4", "--auth-token-ttl=3"]
    const members = await startCluster(kind, args)
    setup(members[0]!)
    const token = await login(members[0]!, "alice", "apw")
    expect(await Promise.all(members.map((m) => read(m, token)))).toEqual(["ok", "ok", "ok"])

    // Used only on member 1 for longer than the TTL: members 2 and 3 forgot it.
    for (let i = 0; i < 5; i++) {
      expect(await read(members[0]!, token)).toBe("ok")
      await Bun.sleep(1000)
    }
    expect(await Promise.all(members.map((m) => read(m, token)))).toEqual(["ok", "etcdserver: invalid auth token", "etcdserver: invalid auth token"])

    // A restarted member does not know tokens issued before (memory only); a new login works everywhere.
    const fresh = await login(members[1]!, "alice", "apw")
    settle(members)
    await restart(kind, members, 2, args)
    expect(await Promise.all(members.map((m) => read(m, fresh)))).toEqual(["ok", "ok", "etcdserver: invalid auth token"])
    const again = await login(members[2]!, "alice", "apw")
    expect(await Promise.all(members.map((m) => read(m, again)))).toEqual(["ok", "ok", "ok"])
    // etcdctl logs in on whichever member it reaches.
    expect(etcdctl(members.map(ep).join(","), ["--user", "alice:apw", "get", "/t/a", "--print-value-only"]).stdout).toBe("1\n")
  }, 90_000)

  test("jwt tokens: valid on every member, restarted ones included", async () => {
    const dir = tempDir("auth-failover-jwt-")
    dirs.push(dir)
    const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" })
    const pub = join(dir.path, "jwt.pub")
    const priv = join(dir.path, "jwt.key")
    writeFileSync(pub, publicKey.export({ type: "spki", format: "pem" }))
    writeFileSync(priv, privateKey.export({ type: "pkcs8", format: "pem" }))
    const args = ["--bcrypt-cost=4", `--auth-token=jwt,pub-key=${pub},priv-key=${priv},sign-method=ES256,ttl=10m`]
    const members = await startCluster(kind, args)
    setup(members[0]!)
    const token = await login(members[0]!, "alice", "apw")
    expect(token.split(".").length).toBe(3)
    expect(await Promise.all(members.map((m) => read(m, token)))).toEqual(["ok", "ok", "ok"])
    settle(members)
    await restart(kind, members, 2, args)
    expect(await Promise.all(members.map((m) => read(m, token)))).toEqual(["ok", "ok", "ok"])
    // Any auth change makes it stale on every member: the client logs in again.
    expect(etcdctl(ep(members[1]!), ["--user", "root:rootpw", "role", "add", "other"]).code).toBe(0)
    await Bun.sleep(200)
    expect(await Promise.all(members.map((m) => read(m, token)))).toEqual(Array(3).fill("etcdserver: revision of auth store is old"))
  }, 90_000)
})
