// Auth, differentially: real etcdctl 3.4 runs the same user/role/permission
// scenario against real etcd 3.4 and dist/tskv; outputs and exit codes must
// match once ids, times and addresses are masked. Covers enabling auth (and
// its errors without root), a read-only role on a prefix, denied writes and
// widened ranges, wrong passwords, missing credentials, a txn that hides a
// forbidden write in its failure branch, lease revoke over forbidden keys,
// admin-only maintenance, root protection, revocation, and disabling auth.

import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { spawn } from "bun"
import { rmSync } from "node:fs"
import { join } from "node:path"
import { etcdctl, hasEtcd, type MemberProcess, startMember } from "../support/procs"
import { tempDir } from "../support/tmp"
import { mask } from "./differential_steps"

interface Ctx {
  lease: string
  snapDir: string
}

interface Step {
  name: string
  args: (ctx: Ctx) => string[]
  input?: string
  capture?: (out: string, ctx: Ctx) => void
}

const ALICE = ["--user", "alice:alicepw"]
const ROOT = ["--user", "root:rootpw"]

const steps: Step[] = [
  { name: "auth enable without root", args: () => ["auth", "enable"] },
  { name: "user add root", args: () => ["user", "add", "root:rootpw"] },
  { name: "role get root before enable", args: () => ["role", "get", "root"] },
  { name: "role list empty", args: () => ["role", "list"] },
  { name: "user get root", args: () => ["user", "get", "root"] },
  { name: "user add alice", args: () => ["user", "add", "alice:alicepw"] },
  { name: "user add alice again", args: () => ["user", "add", "alice:other"] },
  { name: "user add bob no password", args: () => ["user", "add", "bob", "--no-password"] },
  { name: "user add empty password", args: () => ["user", "add", "dave:"] },
  { name: "user add role-like name", args: () => ["user", "add", "root2:pw"] },
  { name: "role add ro", args: () => ["role", "add", "ro"] },
  { name: "role add ro again", args: () => ["role", "add", "ro"] },
  { name: "role add rw", args: () => ["role", "add", "rw"] },
  { name: "grant read prefix", args: () => ["role", "grant-permission", "ro", "read", "/app/", "--prefix"] },
  { name: "grant readwrite key", args: () => ["role", "grant-permission", "ro", "readwrite", "k1"] },
  { name: "grant write range", args: () => ["role", "grant-permission", "ro", "write", "a", "c"] },
  { name: "grant read from-key", args: () => ["role", "grant-permission", "ro", "read", "f", "--from-key"] },
  { name: "grant to missing role", args: () => ["role", "grant-permission", "nope", "read", "x"] },
  { name: "grant rw prefix", args: () => ["role", "grant-permission", "rw", "readwrite", "/rw/", "--prefix"] },
  { name: "role get ro", args: () => ["role", "get", "ro"] },
  { name: "role get ro json", args: () => ["role", "get", "ro", "-w", "json"] },
  { name: "role get missing", args: () => ["role", "get", "nope"] },
  { name: "grant role ro to alice", args: () => ["user", "grant-role", "alice", "ro"] },
  { name: "grant role rw to alice", args: () => ["user", "grant-role", "alice", "rw"] },
  { name: "grant missing role", args: () => ["user", "grant-role", "alice", "nope"] },
  { name: "grant role to missing user", args: () => ["user", "grant-role", "nobody", "ro"] },
  { name: "user get alice", args: () => ["user", "get", "alice"] },
  { name: "user get alice detail", args: () => ["user", "get", "alice", "--detail"] },
  { name: "user get alice json", args: () => ["user", "get", "alice", "-w", "json"] },
  { name: "user get missing", args: () => ["user", "get", "nobody"] },
  { name: "user list", args: () => ["user", "list"] },
  { name: "user list json", args: () => ["user", "list", "-w", "json"] },
  { name: "role list", args: () => ["role", "list"] },
  { name: "role list json", args: () => ["role", "list", "-w", "json"] },
  { name: "user add json", args: () => ["user", "add", "carol:pw", "-w", "json"] },
  { name: "role add json", args: () => ["role", "add", "r2", "-w", "json"] },
  { name: "grant role json", args: () => ["user", "grant-role", "carol", "r2", "-w", "json"] },
  { name: "grant permission json", args: () => ["role", "grant-permission", "r2", "read", "q", "-w", "json"] },
  { name: "user delete json", args: () => ["user", "delete", "carol", "-w", "json"] },
  { name: "seed /app/x", args: () => ["put", "/app/x", "1"] },
  { name: "seed /secret/s", args: () => ["put", "/secret/s", "hidden"] },
  { name: "authenticate before enable", args: () => [...ALICE, "get", "/app/x"] },
  { name: "auth enable (etcdctl adds role root)", args: () => ["auth", "enable"] },
  { name: "role list after enable", args: () => [...ROOT, "role", "list"] },
  { name: "role get root", args: () => [...ROOT, "role", "get", "root"] },
  { name: "auth enable again, no credentials", args: () => ["auth", "enable"] },
  { name: "get, no credentials", args: () => ["get", "/app/x"] },
  { name: "put, no credentials", args: () => ["put", "/app/x", "2"] },
  { name: "endpoint status, no credentials", args: () => ["endpoint", "status"] },
  { name: "member list, no credentials", args: () => ["member", "list"] },
  { name: "alarm list, no credentials", args: () => ["alarm", "list"] },
  { name: "compaction, no credentials", args: () => ["compaction", "1"] },
  { name: "lease grant, no credentials", args: () => ["lease", "grant", "60"] },
  { name: "lease list, no credentials", args: () => ["lease", "list"] },
  { name: "txn, no credentials", args: () => ["txn"], input: "\nput /app/y 1\n\n\n" },
  { name: "del, no credentials", args: () => ["del", "/app/x"] },
  { name: "user get, no credentials", args: () => ["user", "get", "root"] },
  { name: "role add, no credentials", args: () => ["role", "add", "x"] },
  { name: "auth disable, no credentials", args: () => ["auth", "disable"] },
  { name: "root get json header", args: () => [...ROOT, "get", "/app/x", "-w", "json"] },
  { name: "root user list", args: () => [...ROOT, "user", "list"] },
  { name: "root auth enable when enabled", args: () => [...ROOT, "auth", "enable"] },
  { name: "wrong password", args: () => ["--user", "alice:wrong", "get", "/app/x"] },
  { name: "unknown user", args: () => ["--user", "mallory:pw", "get", "/app/x"] },
  { name: "no-password user cannot log in", args: () => ["--user", "bob:", "get", "/app/x"] },
  { name: "alice reads her prefix", args: () => [...ALICE, "get", "/app/", "--prefix"] },
  { name: "alice reads one key", args: () => [...ALICE, "get", "/app/x"] },
  { name: "alice write denied", args: () => [...ALICE, "put", "/app/x", "2"] },
  { name: "alice delete denied", args: () => [...ALICE, "del", "/app/x"] },
  { name: "alice from-key widens", args: () => [...ALICE, "get", "/app/", "--from-key"] },
  { name: "alice range end widens", args: () => [...ALICE, "get", "/app/", "/b"] },
  { name: "alice range end backslash-zero widens", args: () => [...ALICE, "get", "/app/", "\\0"] },
  { name: "alice range inside prefix", args: () => [...ALICE, "get", "/app/a", "/app/z"] },
  { name: "alice reads from-key grant", args: () => [...ALICE, "get", "g", "--from-key", "--keys-only"] },
  { name: "alice forbidden key", args: () => [...ALICE, "get", "/secret/s"] },
  { name: "alice readwrite key", args: () => [...ALICE, "put", "k1", "v"] },
  { name: "alice put prev-kv on write-only", args: () => [...ALICE, "put", "b1", "v", "--prev-kv"] },
  { name: "alice put on write-only", args: () => [...ALICE, "put", "b1", "v"] },
  { name: "alice del range write-only", args: () => [...ALICE, "del", "a", "c"] },
  { name: "alice rw prefix", args: () => [...ALICE, "put", "/rw/1", "v"] },
  {
    name: "txn hides a forbidden write in its failure branch",
    args: () => [...ALICE, "txn"],
    input: 'value("/app/x") = "1"\n\nget /app/x\n\nput /secret/s stolen\n\n',
  },
  { name: "txn allowed", args: () => [...ALICE, "txn"], input: 'value("k1") = "v"\n\nput /rw/2 v\n\nget k1\n\n' },
  { name: "txn compare on forbidden key", args: () => [...ALICE, "txn"], input: 'value("/secret/s") = "x"\n\nget k1\n\n\n' },
  { name: "secret untouched", args: () => [...ROOT, "get", "/secret/s"] },
  { name: "root lease grant", args: () => [...ROOT, "lease", "grant", "600"], capture: (out, c) => void (c.lease = /lease ([0-9a-f]+) granted/.exec(out)?.[1] ?? "none") },
  { name: "root put secret with lease", args: (c) => [...ROOT, "put", "/secret/l", "v", `--lease=${c.lease}`] },
  { name: "alice lease revoke denied", args: (c) => [...ALICE, "lease", "revoke", c.lease] },
  { name: "alice attach lease denied", args: (c) => [...ALICE, "put", "/rw/3", "v", `--lease=${c.lease}`] },
  { name: "lease key still there", args: () => [...ROOT, "get", "/secret/l", "--print-value-only"] },
  { name: "alice lease grant", args: () => [...ALICE, "lease", "grant", "600", "-w", "json"] },
  { name: "alice compaction (3.4: any user)", args: () => [...ALICE, "compaction", "2"] },
  { name: "alice defrag denied", args: () => [...ALICE, "defrag"] },
  { name: "defrag without credentials", args: () => ["defrag"] },
  { name: "alice snapshot denied", args: (c) => [...ALICE, "snapshot", "save", join(c.snapDir, "alice.db")] },
  { name: "alice status", args: () => [...ALICE, "endpoint", "status"] },
  { name: "alice hashkv denied", args: () => [...ALICE, "endpoint", "hashkv"] },
  { name: "hashkv without credentials", args: () => ["endpoint", "hashkv"] },
  { name: "root hashkv", args: () => [...ROOT, "endpoint", "hashkv", "-w", "json"] },
  { name: "alice alarm disarm denied", args: () => [...ALICE, "alarm", "disarm"] },
  { name: "alice user list denied", args: () => [...ALICE, "user", "list"] },
  { name: "alice role list denied", args: () => [...ALICE, "role", "list"] },
  { name: "alice user get self", args: () => [...ALICE, "user", "get", "alice"] },
  { name: "alice user get root denied", args: () => [...ALICE, "user", "get", "root"] },
  { name: "alice role get own", args: () => [...ALICE, "role", "get", "ro"] },
  { name: "alice role get root denied", args: () => [...ALICE, "role", "get", "root"] },
  { name: "alice user add denied", args: () => [...ALICE, "user", "add", "eve:pw"] },
  { name: "alice grant herself root denied", args: () => [...ALICE, "user", "grant-role", "alice", "root"] },
  { name: "alice auth disable denied", args: () => [...ALICE, "auth", "disable"] },
  { name: "alice auth enable denied", args: () => [...ALICE, "auth", "enable"] },
  { name: "alice passwd of root denied", args: () => [...ALICE, "user", "passwd", "root", "--interactive=false"], input: "x\n" },
  { name: "alice passwd of herself denied", args: () => [...ALICE, "user", "passwd", "alice", "--interactive=false"], input: "x\n" },
  { name: "alice role grant denied", args: () => [...ALICE, "role", "grant-permission", "ro", "readwrite", "/secret/", "--prefix"] },
  { name: "alice lease list", args: () => [...ALICE, "lease", "list"] },
  { name: "root user add empty name", args: () => [...ROOT, "user", "add", ":pw"] },
  { name: "root user delete missing", args: () => [...ROOT, "user", "delete", "nobody"] },
  { name: "root role delete missing", args: () => [...ROOT, "role", "delete", "nobody"] },
  { name: "root deletes root denied", args: () => [...ROOT, "user", "delete", "root"] },
  { name: "root deletes role root denied", args: () => [...ROOT, "role", "delete", "root"] },
  { name: "root revokes root from root denied", args: () => [...ROOT, "user", "revoke-role", "root", "root"] },
  { name: "root defrag", args: () => [...ROOT, "defrag"] },
  { name: "revoke prefix permission", args: () => [...ROOT, "role", "revoke-permission", "ro", "/app/", "--prefix"] },
  { name: "revoke permission not granted", args: () => [...ROOT, "role", "revoke-permission", "ro", "/nothing"] },
  { name: "alice lost the prefix", args: () => [...ALICE, "get", "/app/x"] },
  { name: "revoke role rw", args: () => [...ROOT, "user", "revoke-role", "alice", "rw"] },
  { name: "revoke role not granted", args: () => [...ROOT, "user", "revoke-role", "alice", "rw"] },
  { name: "alice lost rw", args: () => [...ALICE, "put", "/rw/4", "v"] },
  { name: "change alice password", args: () => [...ROOT, "user", "passwd", "alice", "--interactive=false"], input: "newpw\n" },
  { name: "old password refused", args: () => [...ALICE, "get", "k1"] },
  { name: "new password works", args: () => ["--user", "alice:newpw", "get", "k1", "--print-value-only"] },
  { name: "delete role ro", args: () => [...ROOT, "role", "delete", "ro"] },
  { name: "alice after role delete", args: () => ["--user", "alice:newpw", "get", "k1"] },
  { name: "user get alice after role delete", args: () => [...ROOT, "user", "get", "alice"] },
  { name: "delete user alice", args: () => [...ROOT, "user", "delete", "alice"] },
  { name: "empty password logs in", args: () => ["--user", "dave:", "get", "k1"] },
  { name: "empty password wrong", args: () => ["--user", "dave:x", "get", "k1"] },
  { name: "deleted user cannot log in", args: () => ["--user", "alice:newpw", "get", "k1"] },
  { name: "auth disable", args: () => [...ROOT, "auth", "disable"] },
  { name: "get after disable", args: () => ["get", "/secret/s", "--print-value-only"] },
  { name: "authenticate after disable", args: () => [...ROOT, "get", "/secret/s"] },
  { name: "user list after disable", args: () => ["user", "list"] },
  { name: "role list after disable", args: () => ["role", "list"] },
  { name: "delete root after disable", args: () => ["user", "delete", "root"] },
  { name: "user list without root", args: () => ["user", "list"] },
]

const ep = (m: MemberProcess): string => m.clientUrl.replace("http://", "")

/** The common masks plus what the auth steps add (numeric zap timestamps, temp paths). */
function maskAuth(text: string, ep: string, snapDir: string): string {
  return mask(text.split(snapDir).join("<snapdir>"), [ep])
    .replace(/"ts":[0-9.e+]+/g, '"ts":<ts>')
    .replace(/"ID":"?[0-9]+"?/g, '"ID":<n>')
    .replace(/"revision":\d+/g, '"revision":<n>')
}

describe("auth differential: etcdctl against etcd 3.4 and tskv", () => {
  let etcd: MemberProcess
  let tskv: MemberProcess
  const snap = tempDir("auth-snap-")
  beforeAll(async () => {
    if (!hasEtcd()) throw new Error("real etcd 3.4 is required: apt-get install -y etcd-server etcd-client")
    const args = ["--bcrypt-cost=4"]
    // Endpoints are given without the scheme (see quota.test.ts).
    ;[etcd, tskv] = await Promise.all([startMember({ kind: "etcd", name: "a1", extraArgs: args }), startMember({ kind: "tskv", name: "a1", extraArgs: args })])
  })
  afterAll(async () => {
    await Promise.all([etcd?.stop(), tskv?.stop()])
    rmSync(snap.path, { recursive: true, force: true })
  })

  test("every auth step prints the same output and exit code", () => {
    const ctxE: Ctx = { lease: "", snapDir: snap.path }
    const ctxT: Ctx = { lease: "", snapDir: snap.path }
    const diffs: string[] = []
    for (const step of steps) {
      const rE = etcdctl(ep(etcd), step.args(ctxE), step.input)
      const rT = etcdctl(ep(tskv), step.args(ctxT), step.input)
      step.capture?.(rE.stdout, ctxE)
      step.capture?.(rT.stdout, ctxT)
      const a = `exit ${rE.code}\n${maskAuth(rE.stdout, ep(etcd), snap.path)}\n${maskAuth(rE.stderr, ep(etcd), snap.path)}`
      const b = `exit ${rT.code}\n${maskAuth(rT.stdout, ep(tskv), snap.path)}\n${maskAuth(rT.stderr, ep(tskv), snap.path)}`
      if (a !== b) diffs.push(`--- step "${step.name}"\netcd:\n${a}\ntskv:\n${b}`)
    }
    if (diffs.length > 0) console.error(tskv.output().slice(-3000))
    expect(diffs.join("\n")).toBe("")
  }, 120_000)

  test("tskv refuses an inverted permission range (etcd 3.5's rule; 3.4 stored it, granting nothing)", () => {
    expect(etcdctl(ep(tskv), ["role", "add", "inv"]).code).toBe(0)
    const r = etcdctl(ep(tskv), ["role", "grant-permission", "inv", "read", "z", "a"])
    expect(r.stderr).toContain("Error: etcdserver: invalid auth management")
    expect(etcdctl(ep(tskv), ["role", "get", "inv"]).stdout).toBe("Role inv\nKV Read:\nKV Write:\n")
  })

  test("watch on a forbidden range: etcdctl prints the same cancel", async () => {
    const run = async (m: MemberProcess, user: string[]): Promise<string> => {
      expect(etcdctl(ep(m), ["user", "add", "w:wpw"]).code).toBe(0)
      expect(etcdctl(ep(m), ["role", "add", "wr"]).code).toBe(0)
      expect(etcdctl(ep(m), ["role", "grant-permission", "wr", "read", "/ok/", "--prefix"]).code).toBe(0)
      expect(etcdctl(ep(m), ["user", "grant-role", "w", "wr"]).code).toBe(0)
      expect(etcdctl(ep(m), ["user", "add", "root:rootpw"]).code).toBe(0)
      expect(etcdctl(ep(m), ["user", "grant-role", "root", "root"]).code).toBe(0)
      expect(etcdctl(ep(m), ["auth", "enable"]).code).toBe(0)
      const proc = spawn(["etcdctl", `--endpoints=${ep(m)}`, ...user, "watch", "/no/", "--prefix"], {
        env: { ...process.env, ETCDCTL_API: "3" },
        stdout: "pipe",
        stderr: "pipe",
      })
      const timer = setTimeout(() => proc.kill(), 4000)
      const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited])
      clearTimeout(timer)
      etcdctl(ep(m), [...ROOT, "auth", "disable"])
      return `exit ${code}\n${maskAuth(out, ep(m), snap.path)}\n${maskAuth(err, ep(m), snap.path)}`
    }
    const [e, t] = await Promise.all([run(etcd, ["--user", "w:wpw"]), run(tskv, ["--user", "w:wpw"])])
    expect(t).toBe(e)
    expect(e).toContain("permission denied")
  }, 30_000)
})
