// `tskv ctl make-mirror`: initial sync at a revision, then the watch, through
// the compiled binary, side by side with etcdctl 3.4 mirroring the same source
// (each to its own destination): same destination contents, same count
// printed after 30 s, same errors for bad flags.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test"
import { spawn, spawnSync, type Subprocess } from "bun"
import { etcdctl, startMember, tskvBinary, type CtlResult, type MemberProcess } from "../support/procs"

setDefaultTimeout(90_000)

let source: MemberProcess
let ourTarget: MemberProcess
let theirTarget: MemberProcess
const mirrors = new Set<Subprocess>()

beforeAll(async () => {
  ;[source, ourTarget, theirTarget] = await Promise.all([startMember({ kind: "tskv" }), startMember({ kind: "tskv" }), startMember({ kind: "etcd" })])
})

afterAll(async () => {
  for (const p of mirrors) p.kill("SIGKILL")
  await Promise.all([source, ourTarget, theirTarget].map((m) => m?.stop()))
})

type Who = "etcdctl" | "tskv"

function argv(who: Who, args: string[]): string[] {
  return who === "tskv" ? [tskvBinary, "ctl", `--endpoints=${source.clientUrl}`, ...args] : ["etcdctl", `--endpoints=${source.clientUrl}`, ...args]
}

function ctl(who: Who, args: string[]): CtlResult {
  const r = spawnSync(argv(who, args), { env: { ...process.env, ETCDCTL_API: "3" } })
  return { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() }
}

/** A running make-mirror with its output collected. */
function startMirror(who: Who, args: string[]): { proc: Subprocess; stdout: () => string; stderr: () => string } {
  const proc = spawn(argv(who, ["make-mirror", ...args]), { stdout: "pipe", stderr: "pipe", env: { ...process.env, ETCDCTL_API: "3" } })
  mirrors.add(proc)
  const text = { stdout: "", stderr: "" }
  const collect = async (stream: ReadableStream<Uint8Array>, into: "stdout" | "stderr"): Promise<void> => {
    const d = new TextDecoder()
    for await (const c of stream) text[into] += d.decode(c, { stream: true })
  }
  void collect(proc.stdout, "stdout")
  void collect(proc.stderr, "stderr")
  return { proc, stdout: () => text.stdout, stderr: () => text.stderr }
}

/** The keys and values under `prefix` at `endpoint`, "key=value" sorted. */
function dump(endpoint: string, prefix: string): string[] {
  const r = etcdctl(endpoint, ["get", prefix, "--prefix", "-w", "json"])
  const kvs = (JSON.parse(r.stdout) as { kvs?: { key: string; value: string }[] }).kvs ?? []
  return kvs.map((kv) => `${Buffer.from(kv.key, "base64")}=${Buffer.from(kv.value, "base64")}`).sort()
}

async function until(what: string, check: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await Bun.sleep(100)
  }
}

describe("ctl make-mirror", () => {
  test("mirrors the prefix as of a revision, then every change; prints the same count as etcdctl after 30 s", async () => {
    for (const [k, v] of [["pre/a", "1"], ["pre/b", "2"], ["other", "x"]]) expect(etcdctl(source.clientUrl, ["put", k!, v!]).code).toBe(0)
    const ours = startMirror("tskv", ["--prefix=pre/", "--dest-prefix=copy/", ourTarget.clientUrl])
    const theirs = startMirror("etcdctl", ["--prefix=pre/", "--dest-prefix=copy/", theirTarget.clientUrl])
    const expectedBase = ["copy/a=1", "copy/b=2"]
    await until("the initial sync", () => dump(ourTarget.clientUrl, "").join() === expectedBase.join() && dump(theirTarget.clientUrl, "copy/").join() === expectedBase.join())

    expect(etcdctl(source.clientUrl, ["put", "pre/c", "3"]).code).toBe(0)
    expect(etcdctl(source.clientUrl, ["del", "pre/a"]).code).toBe(0)
    expect(etcdctl(source.clientUrl, ["txn"], "\nput pre/d 4\nput pre/e 5\n\n\n").code).toBe(0)
    expect(etcdctl(source.clientUrl, ["put", "other", "y"]).code).toBe(0)
    const expected = ["copy/b=2", "copy/c=3", "copy/d=4", "copy/e=5"]
    await until("the watched changes", () => dump(ourTarget.clientUrl, "").join() === expected.join() && dump(theirTarget.clientUrl, "copy/").join() === expected.join())

    // 2 keys copied + 1 put + 1 delete + 2 puts of one txn
    await until("the 30 s count", () => ours.stdout() !== "" && theirs.stdout() !== "", 40_000)
    expect(ours.stdout()).toBe("6\n")
    expect(ours.stdout()).toBe(theirs.stdout())
    expect(ours.proc.exitCode).toBeNull()
    ours.proc.kill()
    theirs.proc.kill()
  })

  test("--no-dest-prefix mirrors to the root of the destination", async () => {
    expect(etcdctl(source.clientUrl, ["put", "root/x", "1"]).code).toBe(0)
    const ours = startMirror("tskv", ["--prefix=root/", "--no-dest-prefix", ourTarget.clientUrl])
    await until("the initial sync", () => dump(ourTarget.clientUrl, "x").join() === "x=1")
    expect(etcdctl(source.clientUrl, ["put", "root/y", "2"]).code).toBe(0)
    await until("a watched put", () => dump(ourTarget.clientUrl, "y").join() === "y=2")
    ours.proc.kill()
  })

  test("user errors: no destination, both prefix flags, an unreadable --dest-cacert or --cacert (as etcdctl)", () => {
    const cases = [
      ["make-mirror"],
      ["make-mirror", "a", "b"],
      ["make-mirror", "--dest-prefix=a", "--no-dest-prefix", ourTarget.clientUrl],
      ["make-mirror", "--dest-cacert=/nonexistent/ca.pem", ourTarget.clientUrl],
      ["--cacert=/nonexistent/ca.pem", "make-mirror", ourTarget.clientUrl],
    ]
    for (const args of cases) {
      const ours = ctl("tskv", args)
      expect(ours.code).toBeGreaterThan(0)
      expect(ours).toEqual(ctl("etcdctl", args))
    }
  })

  test("a destination that goes away while mirroring ends the command with exit 1 and the error", async () => {
    const doomed = await startMember({ kind: "tskv" })
    const ours = startMirror("tskv", ["--prefix=gone/", "--command-timeout=1s", doomed.clientUrl])
    expect(etcdctl(source.clientUrl, ["put", "gone/a", "1"]).code).toBe(0)
    await until("the first put mirrored", () => dump(doomed.clientUrl, "gone/").join() === "gone/a=1")
    await doomed.stop()
    expect(etcdctl(source.clientUrl, ["put", "gone/b", "2"]).code).toBe(0)
    const code = await ours.proc.exited
    expect(code).toBe(1)
    expect(ours.stderr()).toEndWith("Error: context deadline exceeded\n")
  })

  test("an unreachable destination ends the command with exit 2 instead of retrying silently forever", () => {
    const t0 = performance.now()
    const r = ctl("tskv", ["make-mirror", "--command-timeout=1s", "127.0.0.1:1"])
    expect(performance.now() - t0).toBeLessThan(10_000)
    expect(r.code).toBe(2)
    expect(r.stdout).toBe("")
    expect(r.stderr).toEndWith("Error: cannot reach the destination 127.0.0.1:1 (context deadline exceeded)\n")
  })
})
