// `tskv ctl` with ETCDCTL_API=2 (and `--api 2`) against real etcdctl 3.4 in
// v2 mode: two tskv members with --enable-v2 get the same sequence of
// commands, one from each client; stdout, stderr and exit codes must be
// identical once the members' URLs and ids are masked (both stores start at
// the same index, so indexes are compared as they are).
import { describe, expect, test } from "bun:test"
import { spawn } from "bun"
import { startMember, tskvBinary, type MemberProcess } from "../support/procs"

type Who = "etcdctl" | "tskv"

interface Ctx {
  who: Who
  m: MemberProcess
  memberId: string
  watches: Map<string, Promise<string>>
}

function argv(ctx: Ctx, args: string[]): string[] {
  return ctx.who === "etcdctl" ? ["etcdctl", `--endpoints=${ctx.m.clientUrl}`, ...args] : [tskvBinary, "ctl", `--endpoints=${ctx.m.clientUrl}`, ...args]
}

async function run(ctx: Ctx, args: string[], stdin?: string): Promise<string> {
  const p = spawn(argv(ctx, args), { env: { ...process.env, ETCDCTL_API: "2" }, stdout: "pipe", stderr: "pipe", stdin: stdin === undefined ? "ignore" : Buffer.from(stdin) })
  const timer = setTimeout(() => p.kill(), 10_000)
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited])
  clearTimeout(timer)
  return `rc=${code}\n${stdout}---stderr\n${stderr}`
}

function background(ctx: Ctx, id: string, args: string[], lines: number): void {
  const p = spawn(argv(ctx, args), { env: { ...process.env, ETCDCTL_API: "2" }, stdout: "pipe", stderr: "pipe" })
  const done = (async () => {
    let text = ""
    const reading = (async () => {
      for await (const c of p.stdout) {
        text += new TextDecoder().decode(c)
        if (text.split("\n").length - 1 >= lines) break
      }
    })()
    await Promise.race([reading, Bun.sleep(8000)])
    p.kill()
    await p.exited
    return text
  })()
  ctx.watches.set(id, done)
}

type Step = [string, (ctx: Ctx) => Promise<string>]
const c = (...args: string[]): Step => [args.join(" "), (ctx) => run(ctx, args)]

const steps: Step[] = [
  c("--version"),
  c("set", "/a", "1"),
  c("set", "/a", "2", "--swap-with-value", "nope"),
  c("set", "/a", "2", "--swap-with-value", "1"),
  c("set", "/a", "3", "--swap-with-index", "99"),
  c("set", "/t", "v", "--ttl", "100"),
  c("set"),
  c("set", "/only-key"),
  ["set from stdin", (ctx) => run(ctx, ["set", "/stdin"], "from-stdin\n")],
  c("get", "/a"),
  c("get", "/missing"),
  c("get"),
  c("-o", "extended", "get", "/a"),
  c("-o", "json", "get", "/a"),
  c("-o", "json", "get", "/missing"),
  c("mk", "/a", "x"),
  c("mk", "/b", "x"),
  c("mk", "--in-order", "/q", "j1"),
  c("mk", "--in-order", "/q", "j2"),
  c("update", "/b", "y"),
  c("update", "/nope", "y"),
  c("mkdir", "/d"),
  c("mkdir", "/d"),
  c("-o", "json", "mkdir", "/d2"),
  c("setdir", "/d"),
  c("setdir", "/d3"),
  c("updatedir", "/d3", "--ttl", "50"),
  c("updatedir", "/nodir"),
  c("set", "/d/x/y", "deep"),
  c("get", "/d"),
  c("ls"),
  c("ls", "--sort", "/"),
  c("ls", "--sort", "--recursive", "-p", "/"),
  c("ls", "/a"),
  c("ls", "/missing"),
  c("-o", "extended", "ls", "/d/x"),
  c("rmdir", "/d"),
  c("rm", "/d"),
  c("rm", "/b", "--with-value", "nope"),
  c("rm", "/b", "--with-index", "1"),
  c("rm", "/b"),
  c("-o", "extended", "rm", "/stdin"),
  c("rm", "--recursive", "/d"),
  c("rmdir", "/d2"),
  c("rm", "--dir", "/d3"),
  c("rm", "/gone"),
  ["watches", async (ctx) => {
    // From the index before the writes: a watch that starts late under load misses nothing.
    const after = (await fetch(`${ctx.m.clientUrl}/v2/keys/`)).headers.get("x-etcd-index")!
    background(ctx, "w1", ["watch", "--after-index", after, "/w/k"], 1)
    background(ctx, "w2", ["watch", "--after-index", after, "--recursive", "--forever", "/w"], 4)
    background(ctx, "w3", ["exec-watch", "--after-index", after, "--recursive", "/w", "--", "sh", "-c", "echo $ETCD_WATCH_ACTION $ETCD_WATCH_KEY $ETCD_WATCH_VALUE $ETCD_WATCH_MODIFIED_INDEX"], 2)
    await Bun.sleep(500)
    const set = await run(ctx, ["set", "/w/k", "1"])
    const rm = await run(ctx, ["rm", "/w/k"])
    return `${set}${rm}${await ctx.watches.get("w1")}${await ctx.watches.get("w2")}${await ctx.watches.get("w3")}`
  }],
  c("watch", "--after-index", "1", "/a"),
  c("-o", "json", "watch", "--after-index", "1", "/a"),
  c("member", "list"),
  c("member", "remove", "abc"),
  ["member update", (ctx) => run(ctx, ["member", "update", ctx.memberId, ctx.m.peerUrl])],
  c("cluster-health"),
  c("auth", "enable"),
  c("user", "add", "root:pw"),
  c("role", "add", "reader"),
  c("role", "add", "reader"),
  c("role", "grant", "reader", "-path", "/app/*", "-read"),
  c("role", "grant", "reader", "-path", "/app/*", "-read"),
  c("role", "grant", "reader", "-path", "/app/*"),
  c("role", "grant", "reader", "-read"),
  c("role", "get", "reader"),
  c("role", "get", "nosuch"),
  c("role", "list"),
  ["user add with the password on stdin", (ctx) => run(ctx, ["user", "add", "alice"], "pw\n")],
  ["user passwd", (ctx) => run(ctx, ["user", "passwd", "alice"], "pw\n")],
  c("user", "grant", "alice", "-roles", "reader"),
  c("user", "grant", "alice"),
  c("user", "get", "alice"),
  c("user", "list"),
  c("auth", "enable"),
  c("user", "list"),
  c("-u", "root:pw", "user", "list"),
  c("set", "/guest", "1"),
  c("-u", "alice:pw", "set", "/app/x", "1"),
  c("-u", "root:pw", "set", "/app/x", "1"),
  c("-u", "alice:pw", "get", "/app/x"),
  c("-u", "alice:bad", "get", "/app/x"),
  c("-u", "root:pw", "auth", "disable"),
  c("user", "revoke", "alice", "-roles", "reader"),
  c("role", "revoke", "reader", "-path", "/app/*", "-read"),
  c("role", "revoke", "reader", "-path", "/app/*", "-read"),
  c("role", "remove", "reader"),
  c("user", "remove", "alice"),
  c("user", "remove", "alice"),
]

async function runAll(who: Who): Promise<string[]> {
  const m = await startMember({ kind: "tskv", name: "ctl", extraArgs: ["--enable-v2"] })
  try {
    const members = (await (await fetch(`${m.clientUrl}/v2/members`)).json()) as { members: { id: string }[] }
    const ctx: Ctx = { who, m, memberId: members.members[0]!.id, watches: new Map() }
    const outputs: string[] = []
    for (const [name, f] of steps) {
      const text = await f(ctx)
      outputs.push(
        `${name}\n${text}`
          .split(m.clientUrl).join("<client>")
          .split(m.peerUrl).join("<peer>")
          .split(m.clientUrl.replace("http://", "")).join("<client>")
          .split(ctx.memberId).join("<member>")
          .replace(/"expiration":"[^"]+"/g, '"expiration":"<t>"')
          // etcdctl's password prompt runs stty on a stdin that is not a terminal; tskv does not.
          .replace(/^stty: .*\n/gm, ""),
      )
    }
    return outputs
  } finally {
    await m.stop()
  }
}

describe("tskv ctl in v2 mode", () => {
  test("ETCDCTL_API=2: every command prints and exits as etcdctl 3.4 in v2 mode", async () => {
    const [etcdctl, tskv] = await Promise.all([runAll("etcdctl"), runAll("tskv")])
    expect(tskv.join("\n===\n")).toBe(etcdctl.join("\n===\n"))
    expect(tskv.find((t) => t.startsWith("watches"))).toContain("[delete] /w/k")
  }, 120_000)

  test("--api 2 selects the v2 API too; in v3 mode set, ls and rm still map onto v3", async () => {
    const m = await startMember({ kind: "tskv", name: "api2", extraArgs: ["--enable-v2"] })
    try {
      const tskv = (args: string[], env: Record<string, string> = {}) => {
        const r = Bun.spawnSync([tskvBinary, "ctl", ...args], { env: { ...process.env, ETCDCTL_API: "", ...env } })
        return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() }
      }
      expect(tskv(["--api", "2", `--endpoints=${m.clientUrl}`, "set", "/v2key", "x"]).stdout).toBe("x\n")
      expect(tskv(["--api=2", `--endpoints=${m.clientUrl}`, "get", "/v2key"]).stdout).toBe("x\n")
      // The v2 store is its own keyspace: v3 does not see it, and the v3-mode verbs write v3 keys.
      expect(tskv([`--endpoints=${m.clientUrl}`, "get", "/v2key"]).stdout).toBe("")
      expect(tskv([`--endpoints=${m.clientUrl}`, "set", "/v3key", "y"]).stdout).toBe("y\n")
      expect(tskv([`--endpoints=${m.clientUrl}`, "get", "/v3key"]).stdout).toBe("/v3key\ny\n")
      expect(tskv([`--endpoints=${m.clientUrl}`, "get", "/v3key"], { ETCDCTL_API: "2" })).toEqual({ code: 4, stdout: "", stderr: "Error:  100: Key not found (/v3key) [2]\n" })
    } finally {
      await m.stop()
    }
  }, 30_000)
})
