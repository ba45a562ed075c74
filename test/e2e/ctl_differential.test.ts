// `tskv ctl` against real etcdctl 3.4, differentially: both clients run the
// same command against the same real etcd 3.4 member (so only the client is
// compared), and stdout, stderr and the exit code must be byte-identical after
// masking what differs between two runs: revisions when the step writes, lease
// ids granted by different calls, timings and sizes that drift. The step
// lists against etcd and against tskv run side by side (each step waits on
// its two client processes), so each is its own member and context.
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
  /** The member's client endpoint (host:port). */
  ep: string
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
  beforeCapture?: (r: CtlResult, ctx: Ctx, who: Who) => void
  /** Table output with timings: compare the shape only. */
  timedTable?: boolean
  /** Removes what legitimately differs in order. */
  unordered?: (t: string) => string
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

const etcdctlAt = (ctx: Ctx, args: string[]): CtlResult => etcdctl(ctx.ep, args)

/** A client process run to its exit without blocking (spawnSync would hold the other step list up). */
async function runAsync(argv: string[], input?: string, env: Record<string, string> = {}): Promise<CtlResult> {
  const p = Bun.spawn(argv, { env: { ...process.env, ...env }, stdin: input === undefined ? "ignore" : Buffer.from(input), stdout: "pipe", stderr: "pipe" })
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).arrayBuffer(), new Response(p.stderr).arrayBuffer(), p.exited])
  return { code, stdout: dec.decode(stdout), stderr: dec.decode(stderr) }
}
const etcdctlAsync = (ep: string, args: string[], input?: string): Promise<CtlResult> => runAsync(["etcdctl", `--endpoints=${ep}`, ...args], input, { ETCDCTL_API: "3" })
const tskvctlAsync = (ep: string, args: string[], input?: string): Promise<CtlResult> => runAsync([tskvBinary, "ctl", `--endpoints=${ep}`, ...args], input)

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
  { name: "put with lease", args: (c, who) => ["put", `leased-${who}`, "v", `--lease=${c.leases[`simple-${who}`]}`], writes: true, capture: (_r, c, who) => void etcdctlAt(c, ["del", `leased-${who}`]) },
  ...FORMATS.map((f) => ({ name: `lease timetolive --keys -w ${f}`, before: (c: Ctx, who: Who) => ["put", "leased", "v", `--lease=${c.leases[`${f}-${who}`]}`], writes: true, args: (c: Ctx, who: Who) => ["lease", "timetolive", c.leases[`${f}-${who}`]!, "--keys", "-w", f] })),
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
  // users and roles: each runner works on its own names, masked afterwards
  ...FORMATS.map((f) => ({ name: `user add -w ${f}`, args: (_c: Ctx, who: Who) => ["user", "add", `u-${f}-${who}:pw`, "-w", f], writes: true })),
  { name: "user add no password", args: (_c, who) => ["user", "add", `np-${who}`, "--no-password"], writes: true },
  { name: "user add new-user-password", args: (_c, who) => ["user", "add", `nup-${who}`, "--new-user-password=x"], writes: true },
  { name: "user add existing", args: (_c, who) => ["user", "add", `u-simple-${who}:pw`] },
  { name: "user add empty name", args: () => ["user", "add", ":pw"] },
  ...FORMATS.map((f) => ({ name: `role add -w ${f}`, args: (_c: Ctx, who: Who) => ["role", "add", `r-${f}-${who}`, "-w", f], writes: true })),
  { name: "grant readwrite prefix", args: (_c, who) => ["role", "grant-permission", `r-simple-${who}`, "readwrite", "k", "--prefix"], writes: true },
  { name: "grant read range", args: (_c, who) => ["role", "grant-permission", `r-simple-${who}`, "read", "a", "b"], writes: true },
  { name: "grant write from-key", args: (_c, who) => ["role", "grant-permission", `r-simple-${who}`, "write", "c", "--from-key", "-w", "json"], writes: true },
  { name: "grant read key", args: (_c, who) => ["role", "grant-permission", `r-simple-${who}`, "read", "single"], writes: true },
  { name: "grant bad type", args: (_c, who) => ["role", "grant-permission", `r-simple-${who}`, "bogus", "k"] },
  ...FORMATS.map((f) => ({ name: `role get -w ${f}`, args: (_c: Ctx, who: Who) => ["role", "get", `r-simple-${who}`, "-w", f] })),
  { name: "user grant-role", args: (_c, who) => ["user", "grant-role", `u-simple-${who}`, `r-simple-${who}`], writes: true },
  { name: "user get", args: (_c, who) => ["user", "get", `u-simple-${who}`] },
  { name: "user get --detail", args: (_c, who) => ["user", "get", `u-simple-${who}`, "--detail"] },
  { name: "user get json", args: (_c, who) => ["user", "get", `u-simple-${who}`, "-w", "json"] },
  { name: "user get fields", args: (_c, who) => ["user", "get", `u-simple-${who}`, "-w", "fields"] },
  { name: "user get missing", args: () => ["user", "get", "nobody"] },
  { name: "role revoke-permission key", args: (_c, who) => ["role", "revoke-permission", `r-simple-${who}`, "single"], writes: true },
  { name: "role revoke-permission range", args: (_c, who) => ["role", "revoke-permission", `r-simple-${who}`, "a", "b"], writes: true },
  { name: "role revoke-permission missing", args: (_c, who) => ["role", "revoke-permission", `r-simple-${who}`, "zz"] },
  { name: "user revoke-role", args: (_c, who) => ["user", "revoke-role", `u-simple-${who}`, `r-simple-${who}`], writes: true },
  { name: "user passwd from stdin", args: (_c, who) => ["user", "passwd", `u-json-${who}`, "--interactive=false"], input: "newpw\n", writes: true },
  { name: "user delete", args: (_c, who) => ["user", "delete", `u-fields-${who}`, "-w", "json"], writes: true },
  { name: "role delete", args: (_c, who) => ["role", "delete", `r-fields-${who}`], writes: true },
  { name: "user delete missing", args: () => ["user", "delete", "nobody"] },
  { name: "user add no args", args: () => ["user", "add"] },
  { name: "user grant-role one arg", args: () => ["user", "grant-role", "a"] },
  { name: "role grant-permission short", args: () => ["role", "grant-permission", "r", "read"] },
  { name: "role revoke-permission no args", args: () => ["role", "revoke-permission"] },
  { name: "user list extra", args: () => ["user", "list", "x"] },
  { name: "auth enable extra", args: () => ["auth", "enable", "x"] },
  { name: "lock no args", args: () => ["lock"] },
  { name: "elect no args", args: () => ["elect"] },
  { name: "watch no args", args: () => ["watch"] },
  { name: "watch range and prefix", args: () => ["watch", "a", "b", "--prefix"] },
  { name: "move-leader no args", args: () => ["move-leader"] },
  { name: "move-leader bad id", args: () => ["move-leader", "zz"] },
  { name: "member promote no args", args: () => ["member", "promote"] },
  { name: "member update no urls", args: () => ["member", "update", "1"] },
  {
    name: "member add learner",
    args: (_c, who) => ["member", "add", `learner-${who}`, `--peer-urls=http://127.0.0.1:${who === "etcdctl" ? 1 : 2}`, "--learner"],
    writes: true,
    capture: (r, ctx, who) => {
      const id = /Member +([0-9a-f]+) added/.exec(r.stdout)?.[1]
      if (id !== undefined) ctx.leases[`added-${who}`] = id
      if (id !== undefined) etcdctlAt(ctx, ["member", "remove", id])
    },
  },
  {
    name: "member add learner json",
    args: (_c, who) => ["member", "add", `learner-${who}`, `--peer-urls=http://127.0.0.1:${who === "etcdctl" ? 3 : 4}`, "--learner", "-w", "json"],
    writes: true,
    capture: (r, ctx, who) => {
      const id = /"member":\{"ID":(\d+)/.exec(r.stdout)?.[1]
      if (id !== undefined) ctx.leases[`added-json-${who}`] = BigInt(id).toString(16)
      if (id !== undefined) etcdctlAt(ctx, ["member", "remove", BigInt(id).toString(16)])
    },
    // the order of "members" follows the random new id; member list -w json covers the array
    unordered: (t: string) => t.replace(/,"members":\[.*\]\}/, ',"members":[...]}'),
  },
  {
    name: "member remove",
    before: (_c, who) => ["member", "add", `learner-${who}`, `--peer-urls=http://127.0.0.1:${who === "etcdctl" ? 5 : 6}`, "--learner", "-w", "json"],
    beforeCapture: (r, ctx, who) => {
      const id = /"member":\{"ID":(\d+)/.exec(r.stdout)?.[1]
      if (id !== undefined) ctx.leases[`member-${who}`] = BigInt(id).toString(16)
    },
    args: (c, who) => ["member", "remove", c.leases[`member-${who}`] ?? "0"],
    writes: true,
  },
  { name: "snapshot save", args: (c, who) => ["snapshot", "save", join(c.dir, `snap-${who}.db`)] },
  { name: "snapshot save no args", args: () => ["snapshot", "save"] },
]

/** One step's output with what legitimately differs between the two runs masked. */
function normalize(step: Step, r: CtlResult, who: Who, ctx: Ctx): string {
  let t = `code=${r.code}\n--stdout--\n${step.skipStdout === true ? "" : r.stdout}--stderr--\n${r.stderr}`
  t = t.split(join(ctx.dir, `snap-${who}.db`)).join("<snap>")
  t = t.replaceAll(`-${who}`, "-<who>").replace(/127\.0\.0\.1:[1-6]\b/g, "127.0.0.1:<p>")
  // etcdctl pads member ids to 16 columns (%16x): two runs add members with ids of different lengths.
  t = t.replace(/Member +([0-9a-f]+) (added|removed|promoted|updated)/g, "Member $1 $2")
  t = t.replace(/ETCD_INITIAL_CLUSTER="([^"]*)"/, (_m, list: string) => `ETCD_INITIAL_CLUSTER="${list.split(",").sort().join(",")}"`)
  t = maskLeases(maskCommon(t), ctx).replace(/<lease ([\w-]+)-(etcdctl|tskv)>/g, "<lease $1>")
  if (step.timedTable === true) t = t.replace(/\d+(\.\d+)?(µs|ms|s)/g, "<t>").replace(/-+/g, "-").replace(/ +/g, " ")
  if (step.unordered !== undefined) t = step.unordered(t)
  return step.writes === true ? maskWrites(t) : t
}

/** Every step with etcdctl, then with tskv ctl, against the member at ctx.ep; the steps whose outputs differ. */
async function runSteps(ctx: Ctx): Promise<string[]> {
  const failures: string[] = []
  try {
    for (const step of steps) {
      const run = async (who: Who): Promise<CtlResult> => {
        if (step.before !== undefined) {
          const before = await etcdctlAsync(ctx.ep, step.before(ctx, who))
          step.beforeCapture?.(before, ctx, who)
        }
        const r = await (who === "etcdctl" ? etcdctlAsync : tskvctlAsync)(ctx.ep, step.args(ctx, who), step.input)
        step.capture?.(r, ctx, who)
        return r
      }
      const a = normalize(step, await run("etcdctl"), "etcdctl", ctx)
      const b = normalize(step, await run("tskv"), "tskv", ctx)
      if (a !== b) failures.push(`### ${step.name}: ${step.args(ctx, "tskv").join(" ")}\n--- etcdctl\n${a}\n--- tskv ctl\n${b}`)
    }
  } catch (e) {
    failures.push(`the steps stopped: ${e instanceof Error ? e.stack ?? e.message : String(e)}`)
  }
  return failures
}

const KINDS = ["etcd", "tskv"] as const
interface Side {
  tmp: ReturnType<typeof tempDir>
  ctx: Ctx
  member: MemberProcess | undefined
  failures: Promise<string[]> | undefined
}
const sides = new Map<(typeof KINDS)[number], Side>(
  KINDS.map((kind) => {
    const tmp = tempDir("ctl-diff-")
    return [kind, { tmp, ctx: { leases: {}, dir: tmp.path, rev: 0, ep: "" }, member: undefined, failures: undefined }]
  }),
)
let sidesStarted: Promise<void> | undefined
/** Starts both members, then both step lists side by side (once; each describe's "every step" awaits its own). */
function startSides(): Promise<void> {
  sidesStarted ??= (async () => {
    await Promise.all(
      KINDS.map(async (kind) => {
        const side = sides.get(kind)!
        side.member = await startMember({ kind, name: "n1" })
        side.ctx.ep = side.member.clientUrl.replace("http://", "")
      }),
    )
    for (const side of sides.values()) side.failures = runSteps(side.ctx)
  })()
  return sidesStarted
}

describe.each(KINDS)("tskv ctl vs etcdctl 3.4 against %s", (kind) => {
  const side = sides.get(kind)!
  const { tmp, ctx } = side
  let etcd: MemberProcess

  beforeAll(async () => {
    await startSides()
    etcd = side.member!
  })
  afterAll(async () => {
    await side.failures
    await side.member?.stop()
    tmp.remove()
  })

  test("every step prints what etcdctl prints", async () => {
    const failures = await side.failures!
    expect(failures.join("\n")).toBe("")
  }, 240_000)

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

describe("tskv ctl long-running commands vs etcdctl 3.4", () => {
  let etcd: MemberProcess
  let ep = ""

  beforeAll(async () => {
    etcd = await startMember({ kind: "etcd", name: "n1" })
    ep = etcd.clientUrl.replace("http://", "")
  })
  afterAll(async () => {
    await etcd?.stop()
  })

  /** Runs a command for `ms` then sends SIGTERM; returns what it printed. */
  async function runFor(argv: string[], ms: number): Promise<CtlResult> {
    const p = Bun.spawn(argv, { env: { ...process.env, ETCDCTL_API: "3" }, stdout: "pipe", stderr: "pipe", stdin: "ignore" })
    const timer = setTimeout(() => p.kill("SIGTERM"), ms)
    const [stdout, stderr] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()])
    const code = await p.exited
    clearTimeout(timer)
    return { code, stdout, stderr }
  }

  test("watch replays history in every format like etcdctl", async () => {
    etcdctl(ep, ["put", "w/1", "a"])
    etcdctl(ep, ["put", "w/1", "b"])
    etcdctl(ep, ["del", "w/1"])
    const rev = Number(/"revision":(\d+)/.exec(etcdctl(ep, ["get", "w/1", "-w", "json"]).stdout)?.[1])
    // Replays only read: the six watchers run side by side.
    const runs = await Promise.all(
      FORMATS.map(async (f) => {
        const args = [`--endpoints=${ep}`, "watch", "w", "--prefix", "--prev-kv", "-w", f, `--rev=${rev - 2}`]
        return await Promise.all([runFor(["etcdctl", ...args], 1500), runFor([tskvBinary, "ctl", ...args], 2500)])
      }),
    )
    for (const [real, ours] of runs) {
      expect(ours.stdout).toBe(real.stdout)
      expect(ours.stdout.length).toBeGreaterThan(20)
    }
  }, 30_000)

  test("watch of a compacted revision fails like etcdctl", async () => {
    const rev = Number(/"revision":(\d+)/.exec(etcdctl(ep, ["put", "c", "1", "-w", "json"]).stdout)?.[1])
    etcdctl(ep, ["compaction", String(rev)])
    const args = [`--endpoints=${ep}`, "watch", "w", "--rev=2"]
    const [real, ours] = await Promise.all([runFor(["etcdctl", ...args], 3000), runFor([tskvBinary, "ctl", ...args], 3000)])
    expect(ours).toEqual(real)
    expect(ours.code).toBe(5)
  }, 30_000)

  test("watch -- cmd runs the command per event with ETCD_WATCH_* set", async () => {
    const rev = Number(/"revision":(\d+)/.exec(etcdctl(ep, ["put", "x/k", "v1", "-w", "json"]).stdout)?.[1])
    const cmd = ["sh", "-c", 'echo "$ETCD_WATCH_EVENT_TYPE $ETCD_WATCH_KEY $ETCD_WATCH_VALUE $ETCD_WATCH_REVISION"']
    const args = [`--endpoints=${ep}`, "watch", "x/k", `--rev=${rev}`, "--", ...cmd]
    const [real, ours] = await Promise.all([runFor(["etcdctl", ...args], 1500), runFor([tskvBinary, "ctl", ...args], 2500)])
    expect(ours.stdout).toBe(real.stdout)
    expect(ours.stdout).toContain(`"PUT" "x/k" "v1" ${rev}`)
  }, 30_000)

  test("lock and elect print the owner key and value like etcdctl", async () => {
    for (const cmd of [["lock", "mylock"], ["elect", "myelection", "proposal"]]) {
      const real = await runFor(["etcdctl", `--endpoints=${ep}`, ...cmd], 1500)
      const ours = await runFor([tskvBinary, "ctl", `--endpoints=${ep}`, ...cmd], 2500)
      const norm = (s: string): string => s.replace(/\/[0-9a-f]+\n/, "/<lease>\n")
      expect(norm(ours.stdout)).toBe(norm(real.stdout))
      expect(ours.stdout).toStartWith(`${cmd[1]}/`)
    }
    // the lock was released on SIGTERM: a second holder gets it at once
    const again = etcdctl(ep, ["lock", "mylock", "--", "echo", "got it"])
    expect(again.stdout).toBe("got it\n")
  }, 30_000)
})

describe("tskv ctl --user/--password/ETCDCTL_USER vs etcdctl 3.4 with auth enabled", () => {
  let etcd: MemberProcess
  let ep = ""

  beforeAll(async () => {
    etcd = await startMember({ kind: "etcd", name: "auth" })
    ep = etcd.clientUrl.replace("http://", "")
    etcdctl(ep, ["user", "add", "root:rootpw"])
    etcdctl(ep, ["user", "add", "alice:alicepw"])
    etcdctl(ep, ["role", "add", "reader"])
    etcdctl(ep, ["role", "grant-permission", "reader", "read", "pub/", "--prefix"])
    etcdctl(ep, ["user", "grant-role", "alice", "reader"])
    etcdctl(ep, ["put", "pub/a", "1"])
    expect(etcdctl(ep, ["auth", "enable"]).stdout).toBe("Authentication Enabled\n")
  })
  afterAll(async () => {
    await etcd?.stop()
  })

  test("credentials are sent and auth errors print like etcdctl", () => {
    const cases: { args: string[]; env?: Record<string, string> }[] = [
      { args: ["get", "pub/", "--prefix", "--user", "root:rootpw"] },
      { args: ["get", "pub/", "--prefix", "--user=alice:alicepw", "-w", "json"] },
      { args: ["get", "pub/", "--prefix", "--user", "root", "--password", "rootpw"] },
      { args: ["get", "pub/", "--prefix"], env: { ETCDCTL_USER: "alice:alicepw" } },
      { args: ["get", "secret", "--user", "alice:alicepw"] },
      { args: ["put", "pub/b", "2", "--user", "alice:alicepw"] },
      { args: ["get", "pub/a", "--user", "root:wrong"] },
      { args: ["get", "pub/a", "--user", "nobody:pw"] },
      { args: ["user", "list", "--user", "root:rootpw"] },
      { args: ["user", "list", "--user", "alice:alicepw"] },
      { args: ["role", "get", "reader", "--user", "root:rootpw"] },
      { args: ["endpoint", "health", "--user", "alice:alicepw"] },
      { args: ["alarm", "list", "--user", "alice:alicepw"] },
    ]
    // One case after the other: etcd checks each password with bcrypt, and a burst of them runs past the 5 s timeout.
    const failures: string[] = []
    for (const c of cases) {
      const real = etcdctl(ep, c.args, undefined, c.env ?? {})
      const ours = tskvctl(ep, c.args, undefined, c.env ?? {})
      const norm = (r: CtlResult): string => maskCommon(`code=${r.code}\n${r.stdout}--\n${r.stderr}`)
      if (norm(real) !== norm(ours)) failures.push(`### ${c.args.join(" ")}\n--- etcdctl\n${norm(real)}\n--- tskv ctl\n${norm(ours)}`)
    }
    expect(failures.join("\n")).toBe("")
  }, 60_000)
})
