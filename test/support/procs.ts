// Child processes started by tests: the compiled tskv binary and real etcd.
// Every process is tracked and killed (by PID) when the test process exits,
// even if a test forgets to stop it.
import { spawn, spawnSync, type Subprocess } from "bun"
import { existsSync } from "node:fs"
import { join, resolve } from "node:path"
import { freePorts } from "./ports"
import { tempDir } from "./tmp"

export const repoRoot = resolve(import.meta.dir, "../..")
/** TSKV_BINARY runs the tests and benchmarks against another build (bisecting, comparing builds side by side). */
export const tskvBinary = process.env.TSKV_BINARY ?? join(repoRoot, "dist/tskv")

const live = new Set<Subprocess>()

/** Kills every process a test started and did not stop (called after the last test). */
export async function killAllMembers(): Promise<void> {
  const procs = [...live]
  live.clear()
  for (const p of procs) {
    try {
      process.kill(p.pid, "SIGKILL")
    } catch {}
  }
  await Promise.all(procs.map((p) => p.exited.catch(() => undefined)))
}

export interface MemberProcess {
  name: string
  clientUrl: string
  peerUrl: string
  clientPort: number
  peerPort: number
  dataDir: string
  proc: Subprocess
  /** Output collected so far (stdout+stderr). */
  output(): string
  stop(signal?: NodeJS.Signals): Promise<number>
}

export interface StartOptions {
  /** "tskv" (dist/tskv) or "etcd" (/usr/bin/etcd). */
  kind: "tskv" | "etcd"
  name?: string
  dataDir?: string
  clientPort?: number
  peerPort?: number
  extraArgs?: string[]
  env?: Record<string, string>
  /** For clusters: the whole --initial-cluster value (default: just this member). */
  initialCluster?: string
  initialClusterState?: "new" | "existing"
  waitReady?: boolean
}

export function requireBinary(): void {
  if (!existsSync(tskvBinary)) throw new Error(`${tskvBinary} is missing: run npm run build (npm test does it)`)
}

export async function startMember(opts: StartOptions): Promise<MemberProcess> {
  const [clientPort, peerPort] =
    opts.clientPort && opts.peerPort ? [opts.clientPort, opts.peerPort] : ((await freePorts(2)) as [number, number])
  const name = opts.name ?? "default"
  const dir = opts.dataDir ?? join(tempDir(`${opts.kind}-${name}-`).path, "data")
  const clientUrl = `http://127.0.0.1:${clientPort}`
  const peerUrl = `http://127.0.0.1:${peerPort}`
  const args = [
    `--name=${name}`,
    `--data-dir=${dir}`,
    `--listen-client-urls=${clientUrl}`,
    `--advertise-client-urls=${clientUrl}`,
    `--listen-peer-urls=${peerUrl}`,
    `--initial-advertise-peer-urls=${peerUrl}`,
    `--initial-cluster=${opts.initialCluster ?? `${name}=${peerUrl}`}`,
    `--initial-cluster-state=${opts.initialClusterState ?? "new"}`,
    ...(opts.extraArgs ?? []),
  ]
  const bin = opts.kind === "tskv" ? tskvBinary : "/usr/bin/etcd"
  if (opts.kind === "tskv") requireBinary()
  const proc = spawn([bin, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ETCD_UNSUPPORTED_ARCH: "", ...opts.env },
  })
  live.add(proc)
  const output = collectOutput(proc)
  const member: MemberProcess = {
    name,
    clientUrl,
    peerUrl,
    clientPort,
    peerPort,
    dataDir: dir,
    proc,
    output,
    stop: async (signal = "SIGTERM") => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal)
      const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000)
      const code = await proc.exited
      clearTimeout(timer)
      live.delete(proc)
      return code
    },
  }
  if (opts.waitReady !== false) await waitHealthy(member)
  return member
}

/** Collects a process's stdout and stderr as they come; returns what arrived so far. */
export function collectOutput(proc: Subprocess<"ignore", "pipe", "pipe">): () => string {
  let out = ""
  const collect = async (s: ReadableStream<Uint8Array>): Promise<void> => {
    const d = new TextDecoder()
    for await (const c of s) out += d.decode(c, { stream: true })
  }
  void collect(proc.stdout)
  void collect(proc.stderr)
  return () => out
}

/** Waits until GET /health answers 200 on the client URL. */
export async function waitHealthy(m: { clientUrl: string; proc: Subprocess; output(): string }, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (m.proc.exitCode !== null) throw new Error(`process exited with ${m.proc.exitCode}:\n${m.output()}`)
    try {
      const res = await fetch(`${m.clientUrl}/health`, { signal: AbortSignal.timeout(1000) })
      if (res.status === 200) return
    } catch {}
    await Bun.sleep(50)
  }
  throw new Error(`not healthy after ${timeoutMs} ms:\n${m.output()}`)
}

export interface CtlResult {
  code: number
  stdout: string
  stderr: string
}

/** Runs real etcdctl (v3 API) against the endpoints. */
export function etcdctl(endpoints: string | string[], args: string[], input?: string, env: Record<string, string> = {}): CtlResult {
  const ep = Array.isArray(endpoints) ? endpoints.join(",") : endpoints
  const r = spawnSync(["etcdctl", `--endpoints=${ep}`, ...args], {
    env: { ...process.env, ETCDCTL_API: "3", ...env },
    stdin: input === undefined ? "ignore" : Buffer.from(input),
  })
  return { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() }
}

export function hasEtcd(): boolean {
  return existsSync("/usr/bin/etcd") && existsSync("/usr/bin/etcdctl")
}
