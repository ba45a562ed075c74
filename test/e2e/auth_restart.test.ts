// Auth state is durable: users, roles, permissions and the enabled flag
// survive a graceful restart and a kill -9 right after the last change (the
// WAL replays what the backend had not committed); simple tokens do not
// survive (they live in memory, as in etcd) and a fresh login works.

import { afterAll, expect, test } from "bun:test"
import * as grpc from "@grpc/grpc-js"
import * as pb from "../../src/pb"
import { etcdctl, type MemberProcess, startMember } from "../support/procs"

const members: MemberProcess[] = []
afterAll(async () => {
  await Promise.all(members.map((m) => m.stop()))
})

const ep = (m: MemberProcess): string => m.clientUrl.replace("http://", "")

function ok(m: MemberProcess, args: string[], input?: string): string {
  const r = etcdctl(ep(m), args, input)
  if (r.code !== 0) throw new Error(`etcdctl ${args.join(" ")} exited ${r.code}: ${r.stderr}`)
  return r.stdout
}

function rangeWithToken(m: MemberProcess, token: string): Promise<string> {
  const client = new grpc.Client(ep(m), grpc.credentials.createInsecure())
  const md = new grpc.Metadata()
  md.set("token", token)
  const method = pb.KVService.Range
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      method.path,
      (r: pb.RangeRequestInit) => Buffer.from(method.requestSerialize(r as pb.RangeRequest)),
      (b: Buffer) => method.responseDeserialize(b),
      { key: Buffer.from("/t/a") },
      md,
      { deadline: Date.now() + 10_000 },
      (err) => {
        client.close()
        resolve(err ? `${grpc.status[err.code]}: ${err.details}` : "ok")
      },
    )
  })
}

function authStatus(m: MemberProcess): Promise<string> {
  const client = new grpc.Client(ep(m), grpc.credentials.createInsecure())
  const method = pb.AuthService.AuthStatus
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      method.path,
      (r: pb.AuthStatusRequestInit) => Buffer.from(method.requestSerialize(r as pb.AuthStatusRequest)),
      (b: Buffer) => method.responseDeserialize(b),
      {},
      new grpc.Metadata(),
      { deadline: Date.now() + 10_000 },
      (err, res) => {
        client.close()
        const r = res as pb.AuthStatusResponse | undefined
        resolve(err ? `${grpc.status[err.code]}: ${err.details}` : `enabled=${r?.enabled} authRevision=${r?.authRevision}`)
      },
    )
  })
}

function authenticate(m: MemberProcess, name: string, password: string): Promise<string> {
  const client = new grpc.Client(ep(m), grpc.credentials.createInsecure())
  const method = pb.AuthService.Authenticate
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      method.path,
      (r: pb.AuthenticateRequestInit) => Buffer.from(method.requestSerialize(r as pb.AuthenticateRequest)),
      (b: Buffer) => method.responseDeserialize(b),
      { name, password },
      new grpc.Metadata(),
      { deadline: Date.now() + 10_000 },
      (err, res) => {
        client.close()
        if (err) reject(err)
        else resolve((res as pb.AuthenticateResponse).token)
      },
    )
  })
}

test("auth survives a graceful restart and a kill -9; simple tokens do not", async () => {
  let m = await startMember({ kind: "tskv", name: "ar", extraArgs: ["--bcrypt-cost=4"] })
  members.push(m)
  ok(m, ["user", "add", "root:rootpw"])
  ok(m, ["role", "add", "root"])
  ok(m, ["user", "grant-role", "root", "root"])
  ok(m, ["user", "add", "alice:apw"])
  ok(m, ["role", "add", "rw"])
  ok(m, ["role", "grant-permission", "rw", "readwrite", "/t/", "--prefix"])
  ok(m, ["user", "grant-role", "alice", "rw"])
  ok(m, ["put", "/t/a", "1"])
  ok(m, ["auth", "enable"])
  const token = await authenticate(m, "alice", "apw")
  const status = await authStatus(m)
  expect(status).toMatch(/^enabled=true authRevision=\d+$/)
  expect(await rangeWithToken(m, token)).toBe("ok")

  const restart = async (signal: NodeJS.Signals): Promise<void> => {
    await m.stop(signal)
    members.splice(members.indexOf(m), 1)
    m = await startMember({ kind: "tskv", name: "ar", dataDir: m.dataDir, clientPort: m.clientPort, peerPort: m.peerPort, extraArgs: ["--bcrypt-cost=4"] })
    members.push(m)
  }

  // An entry the restarted member replays from its WAL registers the same
  // token again, and the backend persists its consistent index only with a
  // write: write after the Authenticate entry so that it is not replayed.
  ok(m, ["--user", "root:rootpw", "put", "/t/b", "2"])
  await restart("SIGTERM")
  expect(await rangeWithToken(m, token)).toBe("UNAUTHENTICATED: etcdserver: invalid auth token")
  expect(etcdctl(ep(m), ["get", "/t/a"]).stderr).toContain("Error: etcdserver: user name is empty")
  expect(await authStatus(m)).toBe(status)
  expect(ok(m, ["--user", "alice:apw", "get", "/t/a", "--print-value-only"])).toBe("1\n")
  expect(ok(m, ["--user", "root:rootpw", "role", "get", "rw"])).toBe("Role rw\nKV Read:\n\t[/t/, /t0) (prefix /t/)\nKV Write:\n\t[/t/, /t0) (prefix /t/)\n")

  // The last changes before a kill -9 come back from the WAL.
  ok(m, ["--user", "root:rootpw", "user", "passwd", "alice", "--interactive=false"], "newpw\n")
  ok(m, ["--user", "root:rootpw", "user", "revoke-role", "alice", "rw"])
  ok(m, ["--user", "root:rootpw", "user", "add", "bob:bpw"])
  await restart("SIGKILL")
  expect(ok(m, ["--user", "root:rootpw", "user", "list"])).toBe("alice\nbob\nroot\n")
  expect(ok(m, ["--user", "root:rootpw", "user", "get", "alice"])).toBe("User: alice\nRoles:\n")
  expect(etcdctl(ep(m), ["--user", "alice:apw", "get", "/t/a"]).stderr).toContain("Error: etcdserver: authentication failed, invalid user ID or password")
  expect(etcdctl(ep(m), ["--user", "alice:newpw", "get", "/t/a"]).stderr).toContain("Error: etcdserver: permission denied")
  const fresh = await authenticate(m, "bob", "bpw")
  expect(fresh).toMatch(/^[a-zA-Z]{16}\.[0-9]+$/)
  expect(await rangeWithToken(m, fresh)).toBe("PERMISSION_DENIED: etcdserver: permission denied")
}, 90_000)
