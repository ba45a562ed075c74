// scripts/bench_snapshot.ts: snapshot save and restore of --keys keys, tskv against etcd 3.4.
//
//   bun scripts/bench_snapshot.ts [--keys 1000000] [--value-bytes 100] [--only tskv,etcd]
//
// For each store: one member (test/support/procs.ts: loopback, temp dir), --keys puts in txns of
// 100 (16 in flight), then `etcdctl snapshot save` timed with the member's peak RSS sampled during
// the save (and that of `tskv ctl snapshot save`), `etcdctl snapshot status` of the file, then
// restore into a new data dir (`tskv snapshot restore` / `etcdctl snapshot restore`) timed, and a
// member started on it answering a count of the keys. BENCH_TIMELINE=1 also prints the member's
// RSS every 0.5 s of each save. Not part of npm test.

import { spawn, spawnSync } from "bun"
import { readFileSync, statSync } from "node:fs"
import { join } from "node:path"
import { EtcdClient } from "../src/client"
import { humanizeBytes } from "../src/lib/humanize"
import { freePorts } from "../test/support/ports"
import { startMember, tskvBinary, type MemberProcess } from "../test/support/procs"
import { tempDir } from "../test/support/tmp"

type Kind = "tskv" | "etcd"

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback
}

const keys = Number(arg("keys", "1000000"))
const valueBytes = Number(arg("value-bytes", "100"))
const kinds = arg("only", "tskv,etcd").split(",") as Kind[]

function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
    return m ? Number(m[1]) * 1024 : 0
  } catch {
    return 0
  }
}

/** Runs `cmd`, sampling the peak RSS of `pids` (and of the command itself) every 20 ms. */
async function timed(cmd: string[], pids: number[]): Promise<{ ms: number; peak: number[]; out: string }> {
  const started = performance.now()
  const proc = spawn(cmd, { stdout: "pipe", stderr: "pipe", env: { ...process.env, ETCDCTL_API: "3" } })
  const peak = new Array<number>(pids.length + 1).fill(0)
  const timeline: string[] = []
  let ticks = 0
  const sampler = setInterval(() => {
    ;[...pids, proc.pid].forEach((pid, i) => (peak[i] = Math.max(peak[i]!, rssBytes(pid))))
    if (process.env.BENCH_TIMELINE && pids[0] !== undefined && ticks++ % 25 === 0) timeline.push(humanizeBytes(rssBytes(pids[0])))
  }, 20)
  const code = await proc.exited
  clearInterval(sampler)
  if (timeline.length > 0) console.log(`  member RSS every 0.5 s: ${timeline.join(" ")}`)
  const out = (await new Response(proc.stdout).text()) + (await new Response(proc.stderr).text())
  if (code !== 0) throw new Error(`${cmd.join(" ")}: exit ${code}\n${out}`)
  return { ms: performance.now() - started, peak, out }
}

async function load(m: MemberProcess): Promise<void> {
  const client = new EtcdClient({ endpoints: [m.clientUrl] })
  const value = new Uint8Array(valueBytes).fill(120)
  const encoder = new TextEncoder()
  let next = 0
  const started = performance.now()
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      for (let batch = next++; batch * 100 < keys; batch = next++) {
        const success = []
        for (let i = batch * 100; i < Math.min(keys, batch * 100 + 100); i++) {
          success.push({ requestPut: { key: encoder.encode(`/registry/bench/${String(i).padStart(8, "0")}`), value } })
        }
        await client.kv.txn({ success }, { timeoutMs: 60_000 })
      }
    }),
  )
  client.close()
  console.log(`  loaded ${keys} keys in ${((performance.now() - started) / 1000).toFixed(1)} s`)
}

async function countKeys(m: MemberProcess): Promise<number> {
  const client = new EtcdClient({ endpoints: [m.clientUrl] })
  try {
    const res = await client.kv.range({ key: encodeKey("/registry/bench/"), rangeEnd: encodeKey("/registry/bench0"), countOnly: true })
    return res.count
  } finally {
    client.close()
  }
}

function encodeKey(s: string): Uint8Array {
  return new TextEncoder().encode(s)
}

for (const kind of kinds) {
  console.log(`${kind}: ${keys} keys of ${valueBytes} bytes`)
  const dir = tempDir(`bench-snapshot-${kind}-`)
  const m = await startMember({ kind, name: "b", dataDir: join(dir.path, "data"), extraArgs: ["--quota-backend-bytes=8589934592"] })
  try {
    await load(m)
    const rssBefore = rssBytes(m.proc.pid)
    const file = join(dir.path, "snap.db")
    const save = await timed(["etcdctl", `--endpoints=${m.clientUrl}`, "snapshot", "save", file], [m.proc.pid])
    const size = statSync(file).size
    console.log(`  etcdctl snapshot save: ${(save.ms / 1000).toFixed(2)} s, ${humanizeBytes(size)}; member RSS ${humanizeBytes(rssBefore)} before, ${humanizeBytes(save.peak[0]!)} peak; etcdctl peak ${humanizeBytes(save.peak[1]!)}`)
    const ours = await timed([tskvBinary, "ctl", `--endpoints=${m.clientUrl}`, "snapshot", "save", join(dir.path, "ours.db")], [m.proc.pid])
    console.log(`  tskv ctl snapshot save: ${(ours.ms / 1000).toFixed(2)} s; member peak ${humanizeBytes(ours.peak[0]!)}; tskv ctl peak ${humanizeBytes(ours.peak[1]!)}`)
    const status = spawnSync(["etcdctl", "snapshot", "status", file, "-w", "table"], { env: { ...process.env, ETCDCTL_API: "3" } }).stdout.toString()
    console.log(status.trimEnd().replace(/^/gm, "  "))
    await m.stop()
    for (const tool of ["tskv", "etcd"] as Kind[]) {
      const [clientPort, peerPort] = (await freePorts(2)) as [number, number]
      const peerUrl = `http://127.0.0.1:${peerPort}`
      const target = join(dir.path, `restored-${tool}`)
      const flags = ["snapshot", "restore", file, `--data-dir=${target}`, "--name=r", `--initial-cluster=r=${peerUrl}`, `--initial-advertise-peer-urls=${peerUrl}`]
      const restore = await timed(tool === "tskv" ? [tskvBinary, ...flags] : ["etcdctl", ...flags], [])
      const startedAt = performance.now()
      const r = await startMember({ kind: tool, name: "r", dataDir: target, clientPort, peerPort })
      const count = await countKeys(r)
      console.log(`  ${tool === "tskv" ? "tskv snapshot restore" : "etcdctl snapshot restore"}: ${(restore.ms / 1000).toFixed(2)} s (peak RSS ${humanizeBytes(restore.peak[0]!)}); ${tool} served ${count} keys ${((performance.now() - startedAt) / 1000).toFixed(2)} s after its start`)
      await r.stop()
    }
  } finally {
    await m.stop("SIGKILL")
    dir.remove()
  }
}
