// `tskv ctl` against real etcdctl 3.4, differentially: both clients run the
// same command against the same real etcd 3.4 member (so only the client is
// compared), and stdout, stderr and the exit code must be byte-identical after
// masking what differs between two runs: revisions when the step writes, lease
// ids granted by different calls, timings and sizes that drift.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { spawnSync } from "bun"
import { existsSync, rmSync, symlinkSync } from "node:fs"
import { join } from "node:path"
import { etcdctl, hasEtcd, startMember, tskvBinary, type CtlResult, type MemberProcess } from "../support/procs"
import { tempDir } from "../support/tmp"

type Who = "etcdctl" | "tskv"

interface Ctx {
  leases: Record<string, string>
  dir: string
  rev: number
}

interface Step {
  name: string
  args: (ctx: Ctx, who: Who) => string[]
  input?: string
  /** The step writes: revisions in the output differ between the two runs. */
  writes?: boolean
  /** Compare only stderr and the exit code (etcdctl prints its usage text on stdout). */
  skipStdout?: boolean
  capture?: (r: CtlResult, ctx: Ctx, who: Who) => void
  /** Run with etcdctl before each of the two runs (to give both the same state). */
  before?: (ctx: Ctx, who: Who) => string[]
  /** Table output with timings: compare the shape only. */
  timedTable?: boolean
}

const dec = new TextDecoder()

function tskvctl(endpoint: string, args: string[], input?: string, env: Record<string, string> = {}, bin = tskvBinary): CtlResult {
  const argv = bin === tskvBinary ? [bin, "ctl", `--endpoints=${endpoint}`, ...args] : [bin, `--endpoints=${endpoint}`, ...args]
  const r = spawnSync(argv, {
    env: { ...process.env, ...env },
    stdin: input === undefined ? "ignore" : Buffer.from(input),
  })
  return { code: r.exitCode ?? -1, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) }
}

function maskCommon(t: string): string {
  return t
    .replace(/took = [0-9.]+[µnm]?s/g, "took = <t>")
    .replace(/"took":"[^"]*"/g, '"took":"<t>"')
    .replace(/"Took" : \S+/g, '"Took" : <t>')
    .replace(/"took":[0-9.]+/g, '"took":<t>')
    .replace(/"ts":("[^"]*"|[0-9.]+)/g, '"ts":<ts>')
    .replace(/"target":"endpoint:\/\/client-[0-9a-f-]+\//g, '"target":"endpoint://client-<uuid>/')
    .replace(/remaining\(\d+s\)/g, "remaining(<s>)")
    .replace(/"ttl":\d+/g, '"ttl":<s>')
    .replace(/"TTL" : \d+/g, '"TTL" : <s>')
}

function maskWrites(t: string): string {
  return t
    .replace(/"(revision|mod_revision|create_revision|version|raft_index)":\d+/g, '"$1":<n>')
    .replace(/"(Revision|ModRevision|CreateRevision|Version|PrevModRevision|PrevCreateRevision|PrevVersion)" : \d+/g, '"$1" : <n>')
    .replace(/compacted revision \d+/g, "compacted revision <n>")
}

function maskLeases(t: string, ctx: Ctx): string {
  for (const [name, id] of Object.entries(ctx.leases)) {
    t = t.split(id).join(`<lease ${name}>`)
    t = t.split(BigInt(`0x${id}`).toString()).join(`<lease ${name}>`)
  }
  return t
}

const FORMATS = ["simple", "json", "fields"] as const

const steps: Step[] = [
  { name: "put foo bar", args: () => ["put", "foo", "bar"], writes: true },
  { name: "put foo/a", args: () => ["put", "foo/a", "1"], writes: true },
  { name: "put foo/b", args: () => ["put", "foo/b", "2"], writes: true },
  { name: "put from stdin", args: () => ["put", "stdin-key"], input: "from stdin\n", writes: true },
  { name: "put odd bytes", args: () => ["put", "odd", 'tab\there "q" <x>&\u00e9\u2028'], writes: true },
  ...FORMATS.map((f) => ({ name: `put --prev-kv -w ${f}`, args: () => ["put", "foo", "bar", "--prev-kv", "-w", f], writes: true })),
  ...FORMATS.flatMap((f) => [
    { name: `get foo -w ${f}`, args: () => ["get", "foo", "-w", f] },
    { name: `get prefix limit -w ${f}`, args: () => ["get", "foo", "--prefix", "--limit=1", "-w", f] },
    { name: `get odd -w ${f}`, args: () => ["get", "odd", "-w", f] },
    { name: `get missing -w ${f}`, args: () => ["get", "nothing", "-w", f] },
    { name: `get range -w ${f}`, args: () => ["get", "foo", "foo/z", "-w", f] },
  ]),
  { name: "get protobuf", args: () => ["get", "foo", "--prefix", "-w", "protobuf"] },
  { name: "get keys-only", args: () => ["get", "foo", "--prefix", "--keys-only"] },
  { name: "get print-value-only", args: () => ["get", "foo", "--prefix", "--print-value-only"] },
  { name: "get sort by value desc", args: () => ["get", "foo", "--prefix", "--sort-by=VALUE", "--order=DESCEND"] },
  { name: "get sort by create", args: () => ["get", "foo", "--prefix", "--sort-by", "CREATE"] },
  { name: "get from-key", args: () => ["get", "foo/a", "--from-key", "--keys-only"] },
  { name: "get all keys", args: () => ["get", "", "--prefix", "--keys-only"] },
  { name: "get hex", args: () => ["get", "foo", "--prefix", "--hex"] },
  { name: "get serializable", args: () => ["get", "foo", "--consistency=s"] },
  { name: "get -w table", args: () => ["get", "foo", "-w", "table"] },
  { name: "get -w yaml", args: () => ["get", "foo", "-w", "yaml"] },
  { name: "get no args", args: () => ["get"] },
  { name: "get three args", args: () => ["get", "a", "b", "c"] },
  { name: "get prefix and from-key", args: () => ["get", "a", "--prefix", "--from-key"] },
  { name: "get prefix with range", args: () => ["get", "a", "b", "--prefix"] },
  { name: "get bad sort", args: () => ["get", "a", "--sort-by=x"] },
  { name: "get bad order", args: () => ["get", "a", "--order=x"] },
  { name: "get bad consistency", args: () => ["get", "a", "--consistency=x"] },
  { name: "get future rev", args: () => ["get", "foo", "--rev=100000"] },
  { name: "get unknown flag", args: () => ["get", "foo", "--bogus"], skipStdout: true },
  { name: "unknown command", args: () => ["bogus"] },
  { name: "put no args", args: () => ["put"] },
  { name: "put ignore-value with value", args: () => ["put", "k", "v", "--ignore-value"] },
  { name: "put bad lease", args: () => ["put", "k", "v", "--lease=zz"] },
  { name: "put missing lease", args: () => ["put", "k", "v", "--lease=1234abcd"] },
  { name: "put ignore-value", args: () => ["put", "foo", "--ignore-value"], writes: true },
  { name: "put ignore-value missing key", args: () => ["put", "nokey", "--ignore-value"] },
  ...FORMATS.map((f) => ({ name: `del missing -w ${f}`, args: () => ["del", "nothing", "-w", f], writes: true })),
  { name: "del no args", args: () => ["del"] },
  ...FORMATS.map((f) => ({ name: `del prefix prev-kv -w ${f}`, before: () => ["put", "del/x", "v"], args: () => ["del", "del/", "--prefix", "--prev-kv", "-w", f], writes: true })),
  { name: "del three args", args: () => ["del", "a", "b", "c"] },
  { name: "del prefix with range", args: () => ["del", "a", "b", "--prefix"] },
  { name: "del from-key", before: () => ["put", "zzz", "v"], args: () => ["del", "zz", "--from-key"], writes: true },
  { name: "txn success", args: () => ["txn"], input: 'value("foo") = "bar"\n\nput t1 v1\nget foo\n\ndel nothing\n\n', writes: true },
  { name: "txn failure json", args: () => ["txn", "-w", "json"], input: 'value("foo") = "nope"\n\nput t1 v1\n\nget foo --prefix\ndel nothing\n\n', writes: true },
  { name: "txn fields", args: () => ["txn", "-w", "fields"], input: 'mod("foo") > "0"\nversion("t1") != "0"\n\nget t1\nput t2 "two words"\n\n\n', writes: true },
  { name: "txn interactive", args: () => ["txn", "-i"], input: 'create("t1") > "0"\n\nget t1\n\n\n', writes: true },
  { name: "txn EOF", args: () => ["txn"], input: "" },
  { name: "txn malformed compare", args: () => ["txn"], input: "value(foo) = bar\n\n\n\n" },
  { name: "txn unknown target", args: () => ["txn"], input: 'size("foo") = "1"\n\n\n\n' },
  { name: "txn bad request", args: () => ["txn"], input: "\nfrob k\n\n\n" },
  { name: "compaction no args", args: () => ["compaction"] },
  { name: "compaction bad rev", args: () => ["compaction", "x"] },
  {
    name: "get rev for compaction",
    args: () => ["get", "foo", "-w", "json"],
    capture: (r, ctx) => {
      ctx.rev = Number(/"revision":(\d+)/.exec(r.stdout)?.[1])
    },
  },
  { name: "compaction", args: (c, who) => ["compaction", String(who === "etcdctl" ? c.rev - 1 : c.rev)], writes: true },
  { name: "get compacted rev", args: (c) => ["get", "foo", `--rev=${c.rev - 2}`] },
  ...FORMATS.map((f) => ({
    name: `lease grant -w ${f}`,
    args: () => ["lease", "grant", "600", "-w", f],
    writes: true,
    capture: (r: CtlResult, ctx: Ctx, who: Who) => {
      const hex = /lease ([0-9a-f]{16}) granted/.exec(r.stdout)?.[1]
      const num = /"ID"\s?:\s?(\d+)/.exec(r.stdout)?.[1]
      const id = hex ?? (num === undefined ? undefined : BigInt(num).toString(16).padStart(16, "0"))
      if (id !== undefined) ctx.leases[`${f}-${who}`] = id
    },
  })),
  { name: "lease grant bad ttl", args: () => ["lease", "grant", "abc"] },
  { name: "lease grant no args", args: () => ["lease", "grant"] },
  { name: "put with lease", args: (c, who) => ["put", "leased", "v", `--lease=${c.leases[`simple-${who}`]}`], writes: true },
  ...FORMATS.map((f) => ({ name: `lease timetolive --keys -w ${f}`, before: (c: Ctx, who: Who) => ["put", "leased", "v", `--lease=${c.leases[`simple-${who}`]}`], writes: true, args: (c: Ctx, who: Who) => ["lease", "timetolive", c.leases[`simple-${who}`]!, "--keys", "-w", f] })),
  ...FORMATS.map((f) => ({ name: `lease keep-alive --once -w ${f}`, args: (c: Ctx, who: Who) => ["lease", "keep-alive", "--once", c.leases[`json-${who}`]!, "-w", f] })),
  ...FORMATS.map((f) => ({ name: `lease list -w ${f}`, args: () => ["lease", "list", "-w", f] })),
  { name: "lease revoke", args: (c, who) => ["lease", "revoke", c.leases[`fields-${who}`]!], writes: true },
  { name: "lease revoke again", args: (c, who) => ["lease", "revoke", c.leases[`fields-${who}`]!] },
  { name: "lease timetolive expired", args: (c, who) => ["lease", "timetolive", c.leases[`fields-${who}`]!] },
  { name: "lease revoke json", args: (c, who) => ["lease", "revoke", c.leases[`json-${who}`]!, "-w", "json"], writes: true },
  { name: "lease keep-alive once missing", args: () => ["lease", "keep-alive", "--once", "1234"] },
  { name: "lease revoke bad id", args: () => ["lease", "revoke", "zz"] },
  ...[...FORMATS, "table" as const].flatMap((f) => [
    { name: `member list -w ${f}`, args: () => ["member", "list", "-w", f] },
    { name: `endpoint status -w ${f}`, args: () => ["endpoint", "status", "-w", f] },
    { name: `endpoint hashkv -w ${f}`, args: () => ["endpoint", "hashkv", "-w", f] },
    { name: `endpoint health -w ${f}`, args: () => ["endpoint", "health", "-w", f], timedTable: f === "table" },
  ]),
  { name: "alarm list", args: () => ["alarm", "list"] },
  { name: "alarm list json", args: () => ["alarm", "list", "-w", "json"] },
  { name: "alarm disarm", args: () => ["alarm", "disarm"] },
  { name: "defrag", args: () => ["defrag"] },
  { name: "version", args: () => ["version"] },
  { name: "member remove bad id", args: () => ["member", "remove", "xyz"] },
  { name: "member remove missing", args: () => ["member", "remove", "1234"] },
  { name: "member add no name", args: () => ["member", "add"] },
  { name: "member add no urls", args: () => ["member", "add", "x"] },
  { name: "member add http arg", args: () => ["member", "add", "x", "http://127.0.0.1:1"] },
  { name: "snapshot save", args: (c, who) => ["snapshot", "save", join(c.dir, `snap-${who}.db`)] },
  { name: "snapshot save no args", args: () => ["snapshot", "save"] },
]

describe.skipIf(!hasEtcd() || !existsSync(tskvBinary))("tskv ctl vs etcdctl 3.4 against etcd 3.4", () => {
  let etcd: MemberProcess
  const tmp = tempDir("ctl-diff-")
  const ctx: Ctx = { leases: {}, dir: tmp.path, rev: 0 }

  beforeAll(async () => {
    etcd = await startMember({ kind: "etcd", name: "n1" })
  })
  afterAll(async () => {
    await etcd?.stop()
    tmp.remove()
  })

  test("every step prints what etcdctl prints", () => {
    const failures: string[] = []
    const ep = etcd.clientUrl.replace("http://", "")
    for (const step of steps) {
      if (step.before !== undefined) etcdctl(ep, step.before(ctx, "etcdctl"))
      const real = etcdctl(ep, step.args(ctx, "etcdctl"), step.input)
      step.capture?.(real, ctx, "etcdctl")
      if (step.before !== undefined) etcdctl(ep, step.before(ctx, "tskv"))
      const ours = tskvctl(ep, step.args(ctx, "tskv"), step.input)
      step.capture?.(ours, ctx, "tskv")
      const norm = (r: CtlResult, who: Who): string => {
        let t = `code=${r.code}\n--stdout--\n${step.skipStdout === true ? "" : r.stdout}--stderr--\n${r.stderr}`
        t = t.split(join(ctx.dir, `snap-${who}.db`)).join("<snap>")
        t = maskLeases(maskCommon(t), ctx).replace(/<lease (\w+)-(etcdctl|tskv)>/g, "<lease $1>")
        if (step.timedTable === true) t = t.replace(/\d+(\.\d+)?(µs|ms|s)/g, "<t>").replace(/-+/g, "-").replace(/ +/g, " ")
        return step.writes === true ? maskWrites(t) : t
      }
      const a = norm(real, "etcdctl")
      const b = norm(ours, "tskv")
      if (a !== b) failures.push(`### ${step.name}: ${step.args(ctx, "tskv").join(" ")}\n--- etcdctl\n${a}\n--- tskv ctl\n${b}`)
    }
    expect(failures.join("\n")).toBe("")
  }, 120_000)

  test("snapshot save writes the same database etcdctl fetched", () => {
    expect(existsSync(join(ctx.dir, "snap-tskv.db"))).toBe(true)
    expect(existsSync(join(ctx.dir, "snap-tskv.db.part"))).toBe(false)
  })

  test("a link to dist/tskv named tskvctl behaves as tskv ctl", () => {
    const link = join(tmp.path, "tskvctl")
    rmSync(link, { force: true })
    symlinkSync(tskvBinary, link)
    const ep = etcd.clientUrl.replace("http://", "")
    const viaLink = tskvctl(ep, ["get", "foo", "-w", "json"], undefined, {}, link)
    const viaCtl = tskvctl(ep, ["get", "foo", "-w", "json"])
    expect(viaLink.code).toBe(0)
    expect(viaLink.stdout).toBe(viaCtl.stdout)
    expect(viaLink.stdout).toStartWith('{"header":')
  })

  test("ETCDCTL_* variables configure tskv ctl as they configure etcdctl", () => {
    const ep = etcd.clientUrl.replace("http://", "")
    const env = { ETCDCTL_ENDPOINTS: ep, ETCDCTL_WRITE_OUT: "fields" }
    const spawnWith = (argv: string[]): CtlResult => {
      const r = spawnSync(argv, { env: { ...process.env, ETCDCTL_API: "3", ...env } })
      return { code: r.exitCode ?? -1, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) }
    }
    const real = spawnWith(["etcdctl", "get", "foo"])
    const ours = spawnWith([tskvBinary, "ctl", "get", "foo"])
    expect(ours).toEqual(real)
    expect(ours.stdout).toContain('"Key" : "foo"')
  })
})
