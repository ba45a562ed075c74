// The Go test program test/go/clientv3_check (etcd's clientv3 3.4 set up as
// kube-apiserver sets it up): built offline in GOPATH mode from Debian's
// sources (golang-go, golang-etcd-server-dev), cached in dist/, and run
// against one endpoint.
import { spawn, spawnSync } from "bun"
import { existsSync, renameSync } from "node:fs"
import { join } from "node:path"
import { repoRoot } from "./procs"

/** Where golang-etcd-server-dev puts clientv3 and everything it imports. */
export const debianGopath = "/usr/share/gocode"
const binary = join(repoRoot, "dist/clientv3_check")

/** One line of the program's output. */
export interface GoCheck {
  check: string
  pass: boolean
  result?: Record<string, unknown>
  info?: Record<string, unknown>
  error?: string
}

/** Builds dist/clientv3_check (incremental: the Go build cache lives in dist/go-cache). */
export function buildGoClient(): string {
  const go = spawnSync(["sh", "-c", "command -v go"]).stdout.toString().trim()
  if (go === "") throw new Error("go is missing: apt-get install -y golang-go (.ci/run does)")
  if (!existsSync(join(debianGopath, "src/go.etcd.io/etcd/clientv3/client.go")))
    throw new Error(`clientv3 sources are missing under ${debianGopath}: apt-get install -y golang-etcd-server-dev`)
  const tmp = `${binary}.${process.pid}`
  const res = spawnSync([go, "build", "-o", tmp, "./test/go/clientv3_check"], {
    cwd: repoRoot,
    env: {
      ...process.env,
      GOPATH: debianGopath,
      GO111MODULE: "off",
      GOFLAGS: "",
      GOPROXY: "off",
      GOCACHE: join(repoRoot, "dist/go-cache"),
    },
  })
  if (res.exitCode !== 0) throw new Error(`go build failed:\n${res.stderr.toString()}`)
  renameSync(tmp, binary)
  return binary
}

/** Runs the program with args against host:port; returns its JSON lines. */
export async function runGoClient(endpoint: string, args: string[], timeoutMs = 180_000): Promise<Record<string, unknown>[]> {
  const proc = spawn([binary, "-endpoint", endpoint, ...args], { stdio: ["ignore", "pipe", "pipe"] })
  const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs)
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited])
  clearTimeout(timer)
  if (code !== 0) throw new Error(`clientv3_check ${args.join(" ")} against ${endpoint} exited with ${code}:\n${err}\n${out}`)
  return out
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>)
}

/** Host and port of a member's client URL, as clientv3 wants them. */
export const hostPort = (clientUrl: string): string => new URL(clientUrl).host
