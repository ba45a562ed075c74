// Helpers for the member-level acceptance tests (test/e2e/member_*.test.ts):
// the compiled binary started with exactly the given arguments, working
// directory and environment (startMember always adds --data-dir and URLs),
// and the binary run to its exit for configuration errors.

import { spawn, spawnSync, type Subprocess } from "bun"
import { readdirSync } from "node:fs"
import { collectOutput, requireBinary, tskvBinary, waitHealthy } from "../support/procs"

const live = new Set<Subprocess>()
process.on("exit", () => {
  for (const p of live) {
    try {
      process.kill(p.pid, "SIGKILL")
    } catch {}
  }
})

export interface RawMember {
  clientUrl: string
  proc: Subprocess
  output(): string
  stop(signal?: NodeJS.Signals): Promise<number>
}

export interface RawStart {
  args: string[]
  /** The URL /health is polled on. */
  clientUrl: string
  cwd?: string
  env?: Record<string, string>
  waitReady?: boolean
}

/** Environment without any ETCD_* / TSKV_* variable of the test runner. */
function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !/^(ETCD|TSKV)_/.test(k)) env[k] = v
  }
  return { ...env, ...extra }
}

export async function startRaw(opts: RawStart): Promise<RawMember> {
  requireBinary()
  const proc = spawn([tskvBinary, ...opts.args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: cleanEnv(opts.env),
    ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
  })
  live.add(proc)
  const member: RawMember = {
    clientUrl: opts.clientUrl,
    proc,
    output: collectOutput(proc),
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

export interface ExitResult {
  code: number
  stdout: string
  stderr: string
}

/** Runs the binary to its exit (for configuration errors); never left running. */
export function runToExit(args: string[], env: Record<string, string> = {}, cwd?: string): ExitResult {
  requireBinary()
  const r = spawnSync([tskvBinary, ...args], { env: cleanEnv(env), timeout: 10_000, ...(cwd !== undefined ? { cwd } : {}) })
  return { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() }
}

/** runToExit without blocking: several such runs go side by side (each mostly waits for its process to start). */
export async function runToExitAsync(args: string[], env: Record<string, string> = {}): Promise<ExitResult> {
  requireBinary()
  const proc = spawn([tskvBinary, ...args], { stdio: ["ignore", "pipe", "pipe"], env: cleanEnv(env), timeout: 10_000 })
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited])
  return { code, stdout, stderr }
}

/** Maps `items` through `f` with at most `limit` calls in flight; results in the items' order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, f: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length)
  let next = 0
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      for (let i = next++; i < items.length; i = next++) results[i] = await f(items[i]!)
    }),
  )
  return results
}

/** File names in a directory matching a pattern (none if it does not exist). */
export function filesIn(dir: string, pattern: RegExp): string[] {
  try {
    return readdirSync(dir)
      .filter((n) => pattern.test(n))
      .sort()
  } catch {
    return []
  }
}

/** Polls until check() returns true (or throws after timeoutMs). */
export async function eventually(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return
    await Bun.sleep(100)
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
}
