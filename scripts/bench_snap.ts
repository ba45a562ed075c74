// The snapshot and memory cases of scripts/bench (scripts/bench.ts hooks them in):
//
//   rss               RSS of a fresh one-member server after loading --keys keys (256-byte values)
//   snapshot          `etcdctl snapshot save` from that member (the same etcdctl for both, --rounds
//                     alternating runs; the time until the file is complete, and its size), then the
//                     restore of the last file with the store's own tool (`etcdctl snapshot restore`,
//                     `tskv snapshot restore`) plus the time until a member started on the restored
//                     dir answers a linearizable Range
//
// Both cases run on their own pair of fresh members (etcd, tskv: the same flags), loaded once
// when both are asked for. Times are wall-clock from the spawn of the tool.

import { spawn } from "bun"
import { readFileSync, rmSync, statSync } from "node:fs"
import { join } from "node:path"
import { freePorts } from "../test/support/ports"
import { startMember, tskvBinary, type MemberProcess } from "../test/support/procs"
import { tempDir } from "../test/support/tmp"
import type { GenResult, Measure, Row } from "./bench"

export const SNAPSHOT_CASES = ["rss", "snapshot"] as const
type Kind = "etcd" | "tskv"
const KINDS: readonly Kind[] = ["etcd", "tskv"]

export interface SnapOptions {
  keys: number
  rounds: number
}

export interface SnapDeps {
  fill(endpoint: string, prefix: string, keys: number): Promise<GenResult>
  ready(endpoint: string, prefix: string): Promise<GenResult>
  log(s: string): void
}

/** VmRSS, RssAnon and RssFile of a process, in bytes (0 when it is gone). */
export function rssOf(pid: number): { rss: number; anon: number; file: number } {
  const field = (status: string, name: string): number => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) * 1024
  try {
    const s = readFileSync(`/proc/${pid}/status`, "utf8")
    return { rss: field(s, "VmRSS"), anon: field(s, "RssAnon"), file: field(s, "RssFile") }
  } catch {
    return { rss: 0, anon: 0, file: 0 }
  }
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(bytes >= 1e8 ? 0 : 1)} MB`
}

async function run(cmd: string[]): Promise<number> {
  const started = performance.now()
  const proc = spawn(cmd, { stdout: "pipe", stderr: "pipe", env: { ...process.env, ETCDCTL_API: "3" } })
  const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()])
  const code = await proc.exited
  if (code !== 0) throw new Error(`${cmd.join(" ")}: exit ${code}\n${out}${err}`)
  return performance.now() - started
}

async function snapshotKeys(file: string): Promise<number> {
  const proc = spawn(["etcdctl", "snapshot", "status", file, "-w", "json"], { stdout: "pipe", stderr: "pipe", env: { ...process.env, ETCDCTL_API: "3" } })
  const out = await new Response(proc.stdout).text()
  if ((await proc.exited) !== 0) return -1
  return Number((JSON.parse(out) as { totalKey: number }).totalKey)
}

function timeMeasure(ms: number[], check: string, note: string): Measure {
  const sorted = [...ms].sort((a, b) => a - b)
  return {
    rate: 0, p50: sorted[Math.floor((sorted.length - 1) / 2)]!, p99: sorted[sorted.length - 1]!, genCpuPct: 0, serverCpuUs: 0,
    check, error: undefined, note,
  }
}

/** Runs the asked-for cases; returns their rows (rss, snapshot save, snapshot restore). */
export async function runSnapshotCases(want: ReadonlySet<string>, o: SnapOptions, deps: SnapDeps): Promise<Row[]> {
  const dir = tempDir("bench-snap-")
  const members = new Map<Kind, MemberProcess>()
  const rows: Row[] = []
  try {
    for (const kind of KINDS) {
      members.set(kind, await startMember({ kind, name: "s", dataDir: join(dir.path, `${kind}-data`), extraArgs: ["--quota-backend-bytes=8589934592"] }))
    }
    const prefix = "bench/snap/"
    for (const kind of KINDS) {
      const m = members.get(kind)!
      const f = await deps.fill(`127.0.0.1:${m.clientPort}`, prefix, o.keys)
      if ((f.errors ?? 0) > 0) throw new Error(`${kind}: loading ${o.keys} keys failed: ${f.first_error}`)
      deps.log(`  ${kind}: loaded ${o.keys} keys at ${Math.round(f.rps ?? 0)}/s`)
    }
    if (want.has("rss")) {
      // Settle: let a batch commit and a collection pass, then sample.
      await Bun.sleep(Math.min(3000, 500 + o.keys / 1000))
      const row: Row = { case: `rss ${o.keys} keys`, metric: "server RSS after loading", unit: "bytes", etcd: undefined, tskv: undefined }
      for (const kind of KINDS) {
        const r = rssOf(members.get(kind)!.proc.pid)
        row[kind] = {
          rate: r.rss, p50: 0, p99: 0, genCpuPct: 0, serverCpuUs: 0, check: r.rss > 0 ? "ok" : "no process", error: undefined,
          note: `VmRSS ${mb(r.rss)} (anon ${mb(r.anon)}, file ${mb(r.file)})`,
        }
        deps.log(`rss ${kind}: ${row[kind]!.note}`)
      }
      rows.push(row)
    }
    if (!want.has("snapshot")) return rows

    const saves: Record<Kind, number[]> = { etcd: [], tskv: [] }
    const files: Record<Kind, string> = { etcd: "", tskv: "" }
    for (let round = 0; round < o.rounds; round++) {
      const order = round % 2 === 0 ? KINDS : [...KINDS].reverse()
      for (const kind of order) {
        const file = join(dir.path, `${kind}-${round}.db`)
        if (files[kind] !== "") rmSync(files[kind], { force: true })
        saves[kind].push(await run(["etcdctl", `--endpoints=${members.get(kind)!.clientUrl}`, "snapshot", "save", file]))
        files[kind] = file
      }
    }
    const save: Row = { case: `snapshot save ${o.keys} keys`, metric: "etcdctl snapshot save", unit: "time", etcd: undefined, tskv: undefined }
    for (const kind of KINDS) {
      const total = await snapshotKeys(files[kind])
      const check = total >= o.keys ? `ok, ${total} keys` : `status: ${total} keys`
      save[kind] = timeMeasure(saves[kind], check, `${saves[kind].map((ms) => (ms / 1000).toFixed(2)).join(" ")} s, ${mb(statSync(files[kind]).size)}`)
      deps.log(`snapshot save ${kind}: ${save[kind]!.note} (${check})`)
    }
    rows.push(save)
    for (const m of members.values()) await m.stop()
    members.clear()

    const restore: Row = { case: `snapshot restore ${o.keys} keys`, metric: "restore, start, first linearizable read", unit: "time", etcd: undefined, tskv: undefined }
    for (const kind of KINDS) {
      const [clientPort, peerPort] = (await freePorts(2)) as [number, number]
      const peerUrl = `http://127.0.0.1:${peerPort}`
      const target = join(dir.path, `${kind}-restored`)
      const flags = ["snapshot", "restore", files[kind], `--data-dir=${target}`, "--name=r", `--initial-cluster=r=${peerUrl}`, `--initial-advertise-peer-urls=${peerUrl}`]
      const restoreMs = await run(kind === "tskv" ? [tskvBinary, ...flags] : ["etcdctl", ...flags])
      const startedAt = performance.now()
      const r = await startMember({ kind, name: "r", dataDir: target, clientPort, peerPort, waitReady: false })
      members.set(kind, r)
      const ready = await deps.ready(`127.0.0.1:${clientPort}`, prefix)
      const readyMs = performance.now() - startedAt
      const check = ready.ready_ms === null || ready.ready_ms === undefined ? "not ready" : "ok"
      restore[kind] = { ...timeMeasure([restoreMs + readyMs], check, `restore ${(restoreMs / 1000).toFixed(2)} s + start to read ${(readyMs / 1000).toFixed(2)} s`), error: ready.first_error }
      deps.log(`snapshot restore ${kind}: ${restore[kind]!.note} (${check})`)
      await r.stop()
      members.delete(kind)
    }
    rows.push(restore)
    return rows
  } finally {
    for (const m of members.values()) await m.stop("SIGKILL")
    dir.remove()
  }
}
