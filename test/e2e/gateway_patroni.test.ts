// Patroni (Debian's patroni 3.0 + postgresql 15) with its `etcd3:` DCS, which speaks
// etcd's /v3 JSON gateway: two Postgres nodes on one member. A primary is elected and
// takes writes, the replica has them, `patronictl switchover` moves the primary, and
// after kill -9 of the leader's patroni the other node is primary within 3×ttl.
// The same scenario runs against etcd 3.4 at the same time, so a broken harness
// cannot pass. Needs Debian's patroni and postgresql-15 (.ci/packages.d/gateway).
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test"
import { type Subprocess, spawn, spawnSync } from "bun"
import { chownSync, existsSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { freePorts } from "../support/ports"
import { collectOutput, type MemberProcess, startMember } from "../support/procs"
import { tempDir } from "../support/tmp"

setDefaultTimeout(150_000)

const pgBin = "/usr/lib/postgresql/15/bin"
const ttl = 10
const scope = "gw"

interface Node {
  name: string
  config: string
  dataDir: string
  pgPort: number
  restPort: number
  proc?: Subprocess
  output?: () => string
}

interface Backend {
  kind: "tskv" | "etcd"
  member: MemberProcess
  dir: string
  nodes: [Node, Node]
}

const backends: Backend[] = []

function postgresIds(): { uid: number; gid: number } {
  const r = spawnSync(["id", "-u", "postgres"])
  const g = spawnSync(["id", "-g", "postgres"])
  if (r.exitCode !== 0) throw new Error("user postgres is missing: install postgresql-15 (.ci/packages.d/gateway)")
  return { uid: Number(r.stdout.toString()), gid: Number(g.stdout.toString()) }
}

function nodeConfig(n: Node, dir: string, clientPort: number): string {
  return `scope: ${scope}
name: ${n.name}
restapi:
  listen: 127.0.0.1:${n.restPort}
  connect_address: 127.0.0.1:${n.restPort}
etcd3:
  hosts: 127.0.0.1:${clientPort}
bootstrap:
  dcs:
    ttl: ${ttl}
    loop_wait: 2
    retry_timeout: 3
    postgresql:
      use_pg_rewind: false
  initdb: [{encoding: UTF8}]
  pg_hba:
  - host replication rep 127.0.0.1/32 trust
  - host all all 127.0.0.1/32 trust
postgresql:
  listen: 127.0.0.1:${n.pgPort}
  connect_address: 127.0.0.1:${n.pgPort}
  data_dir: ${n.dataDir}
  bin_dir: ${pgBin}
  pgpass: ${dir}/pgpass-${n.name}
  authentication:
    replication: {username: rep, password: rep}
    superuser: {username: postgres, password: pg}
  parameters: {unix_socket_directories: '${dir}', shared_buffers: 16MB, max_connections: 20}
`
}

async function setUp(kind: "tskv" | "etcd"): Promise<Backend> {
  const member = await startMember({ kind, name: `pat-${kind}` })
  const dir = tempDir(`patroni-${kind}-`).path
  const { uid, gid } = postgresIds()
  chownSync(dir, uid, gid)
  const ports = await freePorts(4)
  const nodes = [1, 2].map((i) => {
    const n: Node = {
      name: `pg${i}`,
      config: join(dir, `pg${i}.yml`),
      dataDir: join(dir, `d${i}`),
      pgPort: ports[i * 2 - 2]!,
      restPort: ports[i * 2 - 1]!,
    }
    writeFileSync(n.config, nodeConfig(n, dir, member.clientPort))
    chownSync(n.config, uid, gid)
    return n
  }) as [Node, Node]
  const b: Backend = { kind, member, dir, nodes }
  backends.push(b)
  return b
}

/** Starts patroni as user postgres; setpriv execs, so the PID is patroni's own. */
function startPatroni(b: Backend, n: Node): void {
  const proc = spawn(["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "/usr/bin/patroni", n.config], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { PATH: "/usr/bin:/bin", HOME: b.dir, LANG: "C.UTF-8" },
    cwd: b.dir,
  })
  n.proc = proc
  n.output = collectOutput(proc)
}

async function restStatus(n: Node, path: string): Promise<number> {
  try {
    const res = await fetch(`http://127.0.0.1:${n.restPort}${path}`, { signal: AbortSignal.timeout(2000) })
    await res.arrayBuffer()
    return res.status
  } catch {
    return 0
  }
}

/** Waits until `primary` answers 200 on /primary and `replica` 200 on /replica (patroni's health endpoints). */
async function waitRoles(b: Backend, primary: Node, replica: Node | undefined, timeoutMs: number): Promise<number> {
  const start = Date.now()
  while (Date.now() - start < timeoutMs) {
    const p = await restStatus(primary, "/primary")
    const r = replica ? await restStatus(replica, "/replica") : 200
    if (p === 200 && r === 200) return (Date.now() - start) / 1000
    await Bun.sleep(200)
  }
  throw new Error(`${b.kind}: ${primary.name} not primary (or replica not running) after ${timeoutMs} ms\n${logs(b)}`)
}

function logs(b: Backend): string {
  return b.nodes.map((n) => `--- ${n.name}\n${(n.output?.() ?? "").slice(-3000)}`).join("\n") + `\n--- member\n${b.member.output().slice(-2000)}`
}

function psql(n: Node, sql: string): { code: number; out: string } {
  const r = spawnSync([`${pgBin}/psql`, "-h", "127.0.0.1", "-p", String(n.pgPort), "-U", "postgres", "-d", "postgres", "-XAtc", sql], {
    env: { PATH: "/usr/bin:/bin", PGCONNECT_TIMEOUT: "3" },
    timeout: 10_000,
  })
  return { code: r.exitCode ?? -1, out: (r.stdout.toString() + r.stderr.toString()).trim() }
}

async function waitRows(b: Backend, n: Node, want: string, timeoutMs: number): Promise<void> {
  const start = Date.now()
  let last = ""
  while (Date.now() - start < timeoutMs) {
    last = psql(n, "select string_agg(x::text, ',' order by x) from t").out
    if (last === want) return
    await Bun.sleep(300)
  }
  throw new Error(`${b.kind}: ${n.name} has rows ${JSON.stringify(last)}, want ${want}\n${logs(b)}`)
}

/** Who holds the leader key, as patronictl sees it (it reads the DCS through the gateway). */
function ctlLeader(b: Backend): string {
  const r = spawnSync(["patronictl", "-c", b.nodes[0].config, "list", "-f", "json"], { env: { PATH: "/usr/bin:/bin", HOME: b.dir }, timeout: 20_000 })
  const rows = JSON.parse(r.stdout.toString() || "[]") as { Member: string; Role: string }[]
  return rows.filter((x) => x.Role === "Leader").map((x) => x.Member).join(",")
}

interface Outcome {
  steps: string[]
  electedS: number
  failoverS: number
}

async function scenario(b: Backend): Promise<Outcome> {
  const steps: string[] = []
  const [n1, n2] = b.nodes
  startPatroni(b, n1)
  await waitRoles(b, n1, undefined, 60_000)
  startPatroni(b, n2)
  const electedS = await waitRoles(b, n1, n2, 60_000)
  steps.push(`leader ${ctlLeader(b)}`)

  steps.push(`write ${psql(n1, "create table t (x int); insert into t values (1)").code}`)
  await waitRows(b, n2, "1", 20_000)
  steps.push("replica has 1")

  const sw = spawnSync(["patronictl", "-c", n1.config, "switchover", scope, "--leader", n1.name, "--candidate", n2.name, "--force"], {
    env: { PATH: "/usr/bin:/bin", HOME: b.dir },
    timeout: 40_000,
  })
  if (sw.exitCode !== 0) throw new Error(`${b.kind}: switchover exit ${sw.exitCode}: ${sw.stdout}${sw.stderr}\n${logs(b)}`)
  await waitRoles(b, n2, n1, 40_000)
  steps.push(`switchover leader ${ctlLeader(b)}`)
  steps.push(`write ${psql(n2, "insert into t values (2)").code}`)
  await waitRows(b, n1, "1,2", 20_000)
  steps.push("replica has 1,2")

  const killedAt = Date.now()
  n2.proc!.kill("SIGKILL")
  await n2.proc!.exited
  await waitRoles(b, n1, undefined, 3 * ttl * 1000)
  const failoverS = (Date.now() - killedAt) / 1000
  steps.push(`failover leader ${ctlLeader(b)}`)
  steps.push(`write ${psql(n1, "insert into t values (3)").code}`)
  steps.push(`rows ${psql(n1, "select string_agg(x::text, ',' order by x) from t").out}`)
  return { steps, electedS, failoverS }
}

/** Stops patroni and the postmaster it left behind (kill -9 of patroni does not stop Postgres), by PID. */
async function tearDown(b: Backend): Promise<void> {
  for (const n of b.nodes) {
    if (n.proc && n.proc.exitCode === null && n.proc.signalCode === null) n.proc.kill("SIGKILL")
    await n.proc?.exited
    const pidFile = join(n.dataDir, "postmaster.pid")
    if (!existsSync(pidFile)) continue
    const pid = Number(readFileSync(pidFile, "utf8").split("\n")[0])
    if (!(pid > 1)) continue
    try {
      process.kill(pid, "SIGQUIT") // immediate shutdown: the postmaster stops its children
    } catch {
      continue
    }
    for (let i = 0; i < 50 && alive(pid); i++) await Bun.sleep(100)
    if (alive(pid)) process.kill(pid, "SIGKILL")
  }
  await b.member.stop()
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

let results: Record<string, Outcome> = {}

beforeAll(async () => {
  for (const p of ["/usr/bin/patroni", "/usr/bin/patronictl", `${pgBin}/postgres`, `${pgBin}/psql`, "/usr/bin/setpriv"]) {
    if (!existsSync(p)) throw new Error(`${p} is missing: install patroni and postgresql-15 (.ci/packages.d/gateway)`)
  }
  const [e, t] = await Promise.all([setUp("etcd"), setUp("tskv")])
  const [re, rt] = await Promise.all([scenario(e), scenario(t)])
  results = { etcd: re, tskv: rt }
  console.log(
    `patroni: elected in ${re.electedS.toFixed(1)} s (etcd) / ${rt.electedS.toFixed(1)} s (tskv); ` +
      `failover after kill -9 in ${re.failoverS.toFixed(1)} s (etcd) / ${rt.failoverS.toFixed(1)} s (tskv)`,
  )
})

afterAll(async () => {
  await Promise.all(backends.map(tearDown))
})

test("Patroni elects, replicates, switches over and fails over on tskv as on etcd 3.4", () => {
  const want = [
    "leader pg1",
    "write 0",
    "replica has 1",
    "switchover leader pg2",
    "write 0",
    "replica has 1,2",
    "failover leader pg1",
    "write 0",
    "rows 1,2,3",
  ]
  expect(results.etcd!.steps).toEqual(want)
  expect(results.tskv!.steps).toEqual(want)
  expect(results.etcd!.failoverS).toBeLessThan(3 * ttl)
  expect(results.tskv!.failoverS).toBeLessThan(3 * ttl)
})
