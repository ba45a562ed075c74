// etcd's v2 API (--enable-v2), differentially: the same sequence of real
// `ETCDCTL_API=2 etcdctl` commands and raw /v2 HTTP requests runs against
// real etcd 3.4 and against tskv, and every output (stdout, stderr, exit
// code; HTTP status, v2 headers and body) must be identical once the member's
// URLs and ids are masked and store indexes are taken relative to the index
// the store had before the first step (etcd's store counts its own member
// entries; tskv's starts at 0). Watches, TTL expiry, CAS failures,
// directories, in-order keys and the 1000-event history window included.
import { describe, expect, test } from "bun:test"
import { spawn } from "bun"
import { hasEtcd, startMember, type MemberProcess } from "../support/procs"

interface Ctx {
  m: MemberProcess
  /** The store index before the first step. */
  base: number
  memberId: string
  clusterId: string
  watches: Map<string, { done: Promise<string>; stop: () => void }>
}

type Step = { name: string; run: (ctx: Ctx) => Promise<string> }

const dec = new TextDecoder()

/** etcdctl in a child process (not spawnSync: both members' sequences run at once in this process). */
async function runCtl(ctx: Ctx, args: string[]): Promise<string> {
  const p = spawn(["etcdctl", `--endpoints=${ctx.m.clientUrl}`, ...args], { env: { ...process.env, ETCDCTL_API: "2" }, stdout: "pipe", stderr: "pipe" })
  const timer = setTimeout(() => p.kill(), 10_000)
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited])
  clearTimeout(timer)
  return `rc=${code}\n${stdout}${stderr}`
}

const HEADERS = ["content-type", "x-etcd-index", "allow"]

async function http(ctx: Ctx, method: string, path: string, form?: Record<string, string>, init: RequestInit = {}): Promise<string> {
  const body = form === undefined ? undefined : new URLSearchParams(form).toString()
  const headers: Record<string, string> = body === undefined ? {} : { "content-type": "application/x-www-form-urlencoded" }
  const res = await fetch(`${ctx.m.clientUrl}${path}`, { method, body, headers, ...init, signal: AbortSignal.timeout(10_000) })
  return `${res.status}\n${describeHeaders(res)}${await res.text()}`
}

function describeHeaders(res: Response): string {
  let out = ""
  for (const h of HEADERS) if (res.headers.has(h)) out += `${h}: ${res.headers.get(h)}\n`
  // Present on events (values differ: raft indexes are not the store's).
  for (const h of ["x-raft-index", "x-raft-term", "x-etcd-cluster-id"]) if (res.headers.has(h)) out += `${h}\n`
  return out
}

const ctl = (name: string, args: string[] | ((ctx: Ctx) => string[])): Step => ({
  name,
  run: (ctx) => runCtl(ctx, typeof args === "function" ? args(ctx) : args),
})
const req = (name: string, method: string, path: string | ((ctx: Ctx) => string), form?: Record<string, string>): Step => ({
  name,
  run: (ctx) => http(ctx, method, typeof path === "function" ? path(ctx) : path, form),
})
const reqAs = (name: string, user: string, method: string, path: string, form?: Record<string, string>): Step => ({
  name,
  run: (ctx) => http(ctx, method, path, form, { headers: { authorization: `Basic ${Buffer.from(user).toString("base64")}`, ...(form ? { "content-type": "application/x-www-form-urlencoded" } : {}) } }),
})
const sleep = (ms: number): Step => ({ name: `sleep ${ms}`, run: async () => (await Bun.sleep(ms), "") })

/** The store index now (the watches below start right after it, so that a slow start misses nothing). */
async function storeIndex(ctx: Ctx): Promise<number> {
  return Number((await fetch(`${ctx.m.clientUrl}/v2/keys/`)).headers.get("x-etcd-index"))
}

/** A watch in the background (etcdctl or HTTP); its output is compared at watchEnd. */
function watchCtl(id: string, args: string[], events: number): Step {
  return {
    name: `watch ${id}: etcdctl ${args.join(" ")}`,
    run: async (ctx) => {
      const after = ["--after-index", String(await storeIndex(ctx))]
      const p = spawn(["etcdctl", `--endpoints=${ctx.m.clientUrl}`, args[0]!, ...after, ...args.slice(1)], { env: { ...process.env, ETCDCTL_API: "2" }, stdout: "pipe", stderr: "pipe" })
      let out = ""
      const reading = (async () => {
        for await (const c of p.stdout) {
          out += dec.decode(c)
          if (out.split("\n").length - 1 >= events) break
        }
      })()
      const done = Promise.race([reading, Bun.sleep(8000)]).then(async () => {
        p.kill()
        await p.exited
        return out
      })
      ctx.watches.set(id, { done, stop: () => p.kill() })
      await Bun.sleep(400)
      return ""
    },
  }
}

function watchHttp(id: string, path: (ctx: Ctx) => string, events: number): Step {
  return {
    name: `watch ${id}: GET ${id}`,
    run: async (ctx) => {
      const abort = new AbortController()
      const since = (await storeIndex(ctx)) + 1
      const done = (async () => {
        const res = await fetch(`${ctx.m.clientUrl}${path(ctx)}&waitIndex=${since}`, { signal: abort.signal })
        let out = `${res.status}\n${describeHeaders(res)}`
        const reader = res.body!.getReader()
        const deadline = Date.now() + 8000
        let lines = 0
        while (lines < events && Date.now() < deadline) {
          const r = await Promise.race([reader.read(), Bun.sleep(deadline - Date.now()).then(() => ({ done: true, value: undefined }))])
          if (r.done) break
          const text = dec.decode(r.value)
          out += text
          lines += text.split("\n").length - 1
        }
        abort.abort()
        return out
      })().catch((e: unknown) => `watch failed: ${String(e)}`)
      ctx.watches.set(id, { done, stop: () => abort.abort() })
      await Bun.sleep(300)
      return ""
    },
  }
}

const watchEnd = (id: string): Step => ({ name: `watch ${id} output`, run: async (ctx) => await ctx.watches.get(id)!.done })

const steps: Step[] = [
  ctl("--version", ["--version"]),
  req("root", "GET", "/v2/keys"),
  req("root with slash", "GET", "/v2/keys/"),
  ctl("set", ["set", "/k1", "v1"]),
  ctl("get", ["get", "/k1"]),
  ctl("get -o extended", ["-o", "extended", "get", "/k1"]),
  ctl("get -o json", ["-o", "json", "get", "/k1"]),
  ctl("get missing", ["get", "/missing"]),
  ctl("mk existing", ["mk", "/k1", "x"]),
  ctl("mk new", ["mk", "/k2", "v2"]),
  ctl("update", ["update", "/k1", "v1b"]),
  ctl("update missing", ["update", "/nope", "x"]),
  ctl("set --swap-with-value wrong", ["set", "/k1", "v", "--swap-with-value", "wrong"]),
  ctl("set --swap-with-value right", ["set", "/k1", "v1c", "--swap-with-value", "v1b"]),
  ctl("set --swap-with-index wrong", (c) => ["set", "/k1", "v", "--swap-with-index", String(c.base + 1)]),
  ctl("mkdir", ["mkdir", "/dir"]),
  ctl("mkdir again", ["mkdir", "/dir"]),
  ctl("set under dir", ["set", "/dir/a/b", "deep"]),
  ctl("set on a dir", ["set", "/dir", "x"]),
  ctl("set below a file", ["set", "/k1/sub", "x"]),
  ctl("setdir existing", ["setdir", "/dir"]),
  ctl("setdir new", ["setdir", "/dir2"]),
  ctl("updatedir", ["updatedir", "/dir2", "--ttl", "100"]),
  ctl("updatedir missing", ["updatedir", "/nodir", "--ttl", "5"]),
  ctl("ls", ["ls", "--sort", "/"]),
  ctl("ls -p --recursive", ["ls", "--sort", "-p", "--recursive", "/dir"]),
  ctl("ls a file", ["ls", "/k1"]),
  ctl("ls missing", ["ls", "/missing"]),
  ctl("rmdir not empty", ["rmdir", "/dir"]),
  ctl("rm a dir", ["rm", "/dir"]),
  ctl("rm --dir not empty", ["rm", "--dir", "/dir"]),
  ctl("rm --with-value wrong", ["rm", "/k2", "--with-value", "nope"]),
  ctl("rm --with-index wrong", (c) => ["rm", "/k2", "--with-index", String(c.base + 99)]),
  ctl("rm --with-value", ["rm", "/k2", "--with-value", "v2"]),
  ctl("rm --recursive", ["rm", "--recursive", "/dir"]),
  ctl("rmdir empty", ["rmdir", "/dir2"]),
  ctl("rm missing", ["rm", "/k2"]),
  ctl("hidden key", ["set", "/h/_hidden", "secret"]),
  ctl("ls hides it", ["ls", "/h"]),
  ctl("get shows it", ["get", "/h/_hidden"]),
  ctl("mk --in-order", ["mk", "--in-order", "/queue", "job1"]),
  req("POST in-order", "POST", "/v2/keys/queue", { value: "job2" }),
  req("GET sorted recursive", "GET", "/v2/keys/queue?recursive=true&sorted=true"),
  req("PUT prevExist=false existing", "PUT", "/v2/keys/k1", { value: "x", prevExist: "false" }),
  req("PUT prevExist=true missing", "PUT", "/v2/keys/p1", { value: "x", prevExist: "true" }),
  req("PUT prevExist=true with prevValue", "PUT", "/v2/keys/k1", { value: "y", prevExist: "true", prevValue: "v1c" }),
  req("PUT prevIndex + prevValue both wrong", "PUT", (c) => `/v2/keys/k1?prevIndex=${c.base + 1}`, { value: "y", prevValue: "zz" }),
  req("PUT prevIndex NaN", "PUT", "/v2/keys/k1?prevIndex=abc", { value: "y" }),
  req("PUT empty prevValue", "PUT", "/v2/keys/k1?prevValue=", { value: "y" }),
  req("PUT ttl NaN", "PUT", "/v2/keys/k1", { value: "y", ttl: "abc" }),
  req("PUT prevExist invalid", "PUT", "/v2/keys/k1", { value: "y", prevExist: "maybe" }),
  req("PUT refresh without ttl", "PUT", "/v2/keys/k1", { refresh: "true" }),
  req("PUT refresh with value", "PUT", "/v2/keys/k1", { refresh: "true", ttl: "5", value: "v" }),
  req("PUT refresh missing key", "PUT", "/v2/keys/nothere", { refresh: "true", ttl: "5" }),
  req("PUT recursive invalid", "GET", "/v2/keys/k1?recursive=maybe"),
  req("PUT wait not on GET", "PUT", "/v2/keys/k1?wait=true", { value: "x" }),
  req("PUT root", "PUT", "/v2/keys", { value: "x" }),
  req("DELETE root", "DELETE", "/v2/keys/"),
  req("DELETE form in body is ignored", "DELETE", "/v2/keys/h", { dir: "true" }),
  req("DELETE dir in query", "DELETE", "/v2/keys/h?dir=true"),
  req("PUT dir", "PUT", "/v2/keys/pd", { dir: "true" }),
  req("DELETE prevValue on a dir", "DELETE", "/v2/keys/pd?prevValue=x"),
  req("PUT noValueOnSuccess", "PUT", "/v2/keys/nv?noValueOnSuccess=true", { value: "1" }),
  req("quorum GET", "GET", "/v2/keys/nv?quorum=true"),
  req("HEAD", "HEAD", "/v2/keys/nv"),
  req("PATCH", "PATCH", "/v2/keys/nv"),
  req("value with html", "PUT", "/v2/keys/html", { value: "<a&b>" }),
  req("unicode key", "PUT", "/v2/keys/%C3%A9t%C3%A9", { value: "été" }),
  req("GET unicode", "GET", "/v2/keys/%C3%A9t%C3%A9"),
  // watches
  watchCtl("w1", ["watch", "/w/k"], 1),
  watchHttp("w2", () => "/v2/keys/w?wait=true&recursive=true&stream=true", 3),
  watchCtl("w3", ["exec-watch", "--recursive", "/w", "--", "sh", "-c", "echo $ETCD_WATCH_ACTION $ETCD_WATCH_KEY $ETCD_WATCH_VALUE"], 3),
  // two lines per event (recursive): set, update, delete
  watchCtl("w4", ["watch", "--forever", "--recursive", "/w"], 6),
  ctl("set watched", ["set", "/w/k", "1"]),
  ctl("hidden under watched dir", ["set", "/w/_h", "1"]),
  ctl("update watched", ["update", "/w/k", "2"]),
  ctl("rm watched", ["rm", "/w/k"]),
  watchEnd("w1"),
  watchEnd("w2"),
  watchEnd("w3"),
  watchEnd("w4"),
  req("waitIndex in the past", "GET", (c) => `/v2/keys/w/k?wait=true&waitIndex=${c.base + 1}`),
  ctl("watch --after-index", (c) => ["watch", "--after-index", String(c.base + 1), "/k1"]),
  req("watch on a deleted dir's child", "PUT", "/v2/keys/wd/x", { value: "1" }),
  watchHttp("w5", () => "/v2/keys/wd/x?wait=true", 1),
  req("delete the dir", "DELETE", "/v2/keys/wd?recursive=true"),
  watchEnd("w5"),
  // TTLs expire (etcd: the leader's SYNC every 500 ms)
  ctl("set --ttl", ["set", "/ttl/k", "v", "--ttl", "1"]),
  ctl("mkdir --ttl", ["mkdir", "/ttld", "--ttl", "1"]),
  ctl("set in ttl dir", ["set", "/ttld/child", "c"]),
  watchCtl("w6", ["watch", "/ttl/k"], 1),
  watchHttp("w7", () => "/v2/keys/ttld/child?wait=true", 1),
  sleep(2600),
  watchEnd("w6"),
  watchEnd("w7"),
  ctl("expired key", ["get", "/ttl/k"]),
  ctl("expired dir", ["ls", "/ttld"]),
  ctl("refresh a ttl", ["set", "/rk", "v", "--ttl", "100"]),
  req("PUT refresh", "PUT", "/v2/keys/rk", { refresh: "true", ttl: "200", prevExist: "true" }),
  ctl("refreshed value kept", ["get", "/rk"]),
  // members and stats
  ctl("member list", ["member", "list"]),
  ctl("cluster-health", ["cluster-health"]),
  ctl("member update", (c) => ["member", "update", c.memberId, c.m.peerUrl]),
  ctl("member remove missing", ["member", "remove", "1234"]),
  req("GET /v2/members", "GET", "/v2/members"),
  req("GET /v2/members/leader", "GET", "/v2/members/leader"),
  req("POST /v2/members bad type", "POST", "/v2/members", { peerURLs: "x" }),
  req("DELETE unknown member", "DELETE", "/v2/members/abc"),
  req("GET /v2/machines", "GET", "/v2/machines"),
  req("GET /v2/stats/leader", "GET", "/v2/stats/leader"),
  {
    name: "stats/self and stats/store fields",
    run: async (ctx) => {
      const self = (await (await fetch(`${ctx.m.clientUrl}/v2/stats/self`)).json()) as Record<string, unknown>
      const store = (await (await fetch(`${ctx.m.clientUrl}/v2/stats/store`)).json()) as Record<string, unknown>
      return `${Object.keys(self).join(",")} ${self.state} ${Object.keys(self.leaderInfo as object).join(",")}\n${Object.keys(store).join(",")}`
    },
  },
  // the 1000-event window
  {
    name: "1005 writes",
    run: async (ctx) => {
      const codes: number[] = []
      for (let i = 0; i < 1005; i += 15) {
        const batch = Array.from({ length: Math.min(15, 1005 - i) }, (_, j) =>
          fetch(`${ctx.m.clientUrl}/v2/keys/hist/k`, { method: "PUT", body: `value=${i + j}`, headers: { "content-type": "application/x-www-form-urlencoded" } }).then((r) => r.status),
        )
        codes.push(...(await Promise.all(batch)))
      }
      return codes.filter((c) => c !== 200 && c !== 201).join(",")
    },
  },
  req("waitIndex before the window", "GET", (c) => `/v2/keys/hist/k?wait=true&waitIndex=${c.base + 10}`),
  // v2 auth (last: etcd counts these writes in its store index too)
  req("auth enabled?", "GET", "/v2/auth/enable"),
  req("users (none)", "GET", "/v2/auth/users"),
  req("roles (root)", "GET", "/v2/auth/roles"),
  req("enable without root", "PUT", "/v2/auth/enable"),
  ctl("auth enable without root", ["auth", "enable"]),
  ctl("user add root", ["user", "add", "root:pw"]),
  ctl("user add root again", ["user", "add", "root:pw"]),
  ctl("role add reader", ["role", "add", "reader"]),
  ctl("role add reader again", ["role", "add", "reader"]),
  ctl("role grant", ["role", "grant", "reader", "-path", "/app/*", "-read"]),
  ctl("role grant write", ["role", "grant", "reader", "-path", "/app/w/*", "-write"]),
  ctl("role revoke write", ["role", "revoke", "reader", "-path", "/app/w/*", "-write"]),
  ctl("user add alice", ["user", "add", "alice:pw2"]),
  ctl("user grant", ["user", "grant", "alice", "-roles", "reader"]),
  ctl("user grant missing role", ["user", "grant", "alice", "-roles", "nosuch"]),
  ctl("user get", ["user", "get", "alice"]),
  ctl("user get missing", ["user", "get", "bob"]),
  ctl("user list", ["user", "list"]),
  ctl("role list", ["role", "list"]),
  ctl("role get", ["role", "get", "reader"]),
  ctl("role get root", ["role", "get", "root"]),
  req("GET user", "GET", "/v2/auth/users/alice"),
  req("GET role", "GET", "/v2/auth/roles/reader"),
  ctl("auth enable", ["auth", "enable"]),
  req("enabled", "GET", "/v2/auth/enable"),
  req("roles without credentials", "GET", "/v2/auth/roles"),
  reqAs("roles as root", "root:pw", "GET", "/v2/auth/roles"),
  req("guest write", "PUT", "/v2/keys/guestkey", { value: "1" }),
  reqAs("alice writes where she may only read", "alice:pw2", "PUT", "/v2/keys/app/x", { value: "1" }),
  reqAs("alice reads", "alice:pw2", "GET", "/v2/keys/app/x"),
  reqAs("root writes", "root:pw", "PUT", "/v2/keys/app/x", { value: "1" }),
  reqAs("alice reads again", "alice:pw2", "GET", "/v2/keys/app/x"),
  reqAs("alice recursive", "alice:pw2", "GET", "/v2/keys/app?recursive=true"),
  reqAs("alice outside her paths", "alice:pw2", "GET", "/v2/keys/guestkey"),
  reqAs("bad password", "alice:nope", "GET", "/v2/keys/app/x"),
  ctl("user list without credentials", ["user", "list"]),
  ctl("user list as root", ["-u", "root:pw", "user", "list"]),
  ctl("user remove root while enabled", ["-u", "root:pw", "user", "remove", "root"]),
  ctl("auth disable", ["-u", "root:pw", "auth", "disable"]),
  ctl("user revoke", ["user", "revoke", "alice", "-roles", "reader"]),
  ctl("user revoke again", ["user", "revoke", "alice", "-roles", "reader"]),
  ctl("role remove", ["role", "remove", "reader"]),
  ctl("role remove missing", ["role", "remove", "reader"]),
  ctl("user remove", ["user", "remove", "alice"]),
  req("roles after", "GET", "/v2/auth/roles"),
  req("users after", "GET", "/v2/auth/users"),
  req("keys index after auth writes", "GET", "/v2/keys/guestkey"),
]

async function runAll(kind: "etcd" | "tskv"): Promise<string[]> {
  const m = await startMember({ kind, name: "v2", extraArgs: ["--enable-v2"] })
  try {
    const root = await fetch(`${m.clientUrl}/v2/keys`)
    const members = (await (await fetch(`${m.clientUrl}/v2/members`)).json()) as { members: { id: string }[] }
    const ctx: Ctx = {
      m,
      base: Number(root.headers.get("x-etcd-index")),
      memberId: members.members[0]!.id,
      clusterId: root.headers.get("x-etcd-cluster-id") ?? "",
      watches: new Map(),
    }
    const out: string[] = []
    for (const s of steps) {
      const started = performance.now()
      out.push(`${s.name}\n${normalize(await s.run(ctx), ctx)}`)
      if (process.env.TSKV_V2_DEBUG) console.log(kind, s.name, Math.round(performance.now() - started))
    }
    for (const w of ctx.watches.values()) w.stop()
    return out
  } finally {
    await m.stop()
  }
}

function normalize(text: string, ctx: Ctx): string {
  const rel = (n: string): string => (Number(n) === 0 ? n : String(Number(n) - ctx.base))
  return text
    .split(ctx.m.clientUrl).join("<client>")
    .split(ctx.m.peerUrl).join("<peer>")
    .split(ctx.memberId).join("<member>")
    .split(ctx.clusterId).join("<cluster>")
    .replace(/"(modifiedIndex|createdIndex|index)":(\d+)/g, (_, k: string, n: string) => `"${k}":${rel(n)}`)
    .replace(/(x-etcd-index: )(\d+)/g, (_, k: string, n: string) => `${k}${rel(n)}`)
    .replace(/(Index: )(\d+)/g, (_, k: string, n: string) => `${k}${rel(n)}`)
    .replace(/\[(\d+)\]\n/g, (_, n: string) => `[${rel(n)}]\n`)
    .replace(/\[(\d+) != (\d+)\]/g, (_, a: string, b: string) => `[${rel(a)} != ${rel(b)}]`)
    .replace(/\[(\d+)\/(\d+)\]/g, (_, a: string, b: string) => `[${rel(a)}/${rel(b)}]`)
    .replace(/\/(\d{20})/g, (_, n: string) => `/${rel(n)}`)
    .replace(/"expiration":"[^"]+"/g, '"expiration":"<t>"')
    .replace(/"ttl":\d+/g, '"ttl":<s>')
    .replace(/TTL: \d+/g, "TTL: <s>")
}

describe("v2 API against etcd 3.4 --enable-v2", () => {
  test("--enable-v2 is off by default (/v2 answers 404) and ETCD_ENABLE_V2=true turns it on", async () => {
    const off = await startMember({ kind: "tskv", name: "v2off" })
    const on = await startMember({ kind: "tskv", name: "v2on", env: { ETCD_ENABLE_V2: "true" } })
    try {
      expect((await fetch(`${off.clientUrl}/v2/keys`)).status).toBe(404)
      expect((await fetch(`${off.clientUrl}/v2/members`)).status).toBe(404)
      const res = await fetch(`${on.clientUrl}/v2/keys/k`, { method: "PUT", body: "value=v", headers: { "content-type": "application/x-www-form-urlencoded" } })
      expect(res.status).toBe(201)
    } finally {
      await Promise.all([off.stop(), on.stop()])
    }
  }, 30_000)

  test("etcdctl v2 and raw HTTP: every step answers as etcd does", async () => {
    expect(hasEtcd()).toBe(true)
    const [etcd, tskv] = await Promise.all([runAll("etcd"), runAll("tskv")])
    expect(tskv.join("\n---\n")).toBe(etcd.join("\n---\n"))
    // The watches saw their events (a watch that saw nothing on both sides would compare equal).
    const output = (name: string): string => tskv.find((t) => t.startsWith(`${name}\n`)) ?? ""
    expect(output("watch w1 output")).toBe("watch w1 output\n1\n")
    expect(output("watch w2 output")).toContain('{"action":"delete","node":{"key":"/w/k"')
    expect(output("watch w3 output")).toContain("update /w/k 2")
    expect(output("watch w5 output")).toContain('"action":"delete"')
    expect(output("watch w7 output")).toContain('"action":"expire"')
    expect(output("expired key")).toContain("100: Key not found (/ttl/k)")
  }, 90_000)
})
