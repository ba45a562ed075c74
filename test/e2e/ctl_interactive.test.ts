// `tskv ctl watch -i` and `txn -i` act on each line of standard input as it
// arrives, as etcdctl 3.4 does: the tests drive the compiled binary (and real
// etcdctl, for the same transcript) through a pipe, writing one line and
// waiting for its effect before writing the next. Input never reaches EOF
// until the test closes it, so a client that reads all input first hangs.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test"
import { spawn, type Subprocess } from "bun"
import { etcdctl, startMember, tskvBinary, type MemberProcess } from "../support/procs"

setDefaultTimeout(30_000)

let member: MemberProcess
/** Sessions still running (a failed test leaves its session waiting for input). */
const sessions = new Set<Session>()

beforeAll(async () => {
  member = await startMember({ kind: "tskv" })
})

afterAll(async () => {
  for (const s of sessions) s.proc.kill("SIGKILL")
  await member?.stop()
})

type Who = "etcdctl" | "tskv"

interface Transcript {
  stdout: string
  stderr: string
  code: number
}

/** A ctl process with a pipe on standard input and its output collected as it comes. */
class Session {
  private stdoutText = ""
  private stderrText = ""
  readonly proc: Subprocess<"pipe", "pipe", "pipe">

  constructor(who: Who, args: string[]) {
    const argv = who === "tskv" ? [tskvBinary, "ctl", `--endpoints=${member.clientUrl}`, ...args] : ["etcdctl", `--endpoints=${member.clientUrl}`, ...args]
    this.proc = spawn(argv, { stdin: "pipe", stdout: "pipe", stderr: "pipe", env: { ...process.env, ETCDCTL_API: "3" } })
    sessions.add(this)
    void this.proc.exited.then(() => sessions.delete(this))
    void this.collect(this.proc.stdout, (s) => (this.stdoutText += s))
    void this.collect(this.proc.stderr, (s) => (this.stderrText += s))
  }

  private async collect(stream: ReadableStream<Uint8Array>, add: (s: string) => void): Promise<void> {
    const d = new TextDecoder()
    for await (const c of stream) add(d.decode(c, { stream: true }))
  }

  get stdout(): string {
    return this.stdoutText
  }

  get stderr(): string {
    return this.stderrText
  }

  write(line: string): void {
    this.proc.stdin.write(line)
    this.proc.stdin.flush()
  }

  /** Waits until stdout (or stderr) holds `text` (`count` times); fails the test after 10 s. */
  async waitFor(text: string, from: "stdout" | "stderr" = "stdout", count = 1): Promise<void> {
    const deadline = Date.now() + 10_000
    while (this[from].split(text).length - 1 < count) {
      if (Date.now() > deadline) throw new Error(`no ${JSON.stringify(text)} on ${from} after 10 s; stdout:\n${this.stdout}\nstderr:\n${this.stderr}`)
      if (this.proc.exitCode !== null) throw new Error(`exited ${this.proc.exitCode} before ${JSON.stringify(text)}; stderr:\n${this.stderr}`)
      await Bun.sleep(20)
    }
  }

  /** Waits for the exit (after closing standard input with endInput) and returns what the process printed. */
  async transcript(opts: { endInput?: boolean } = {}): Promise<Transcript> {
    if (opts.endInput === true) this.proc.stdin.end()
    const timer = setTimeout(() => this.proc.kill("SIGKILL"), 10_000)
    const code = await this.proc.exited
    clearTimeout(timer)
    return { stdout: this.stdout, stderr: this.stderr, code }
  }
}

function put(key: string, value: string): number {
  const r = etcdctl(member.clientUrl, ["put", key, value, "-w", "json"])
  expect(r.code).toBe(0)
  return (JSON.parse(r.stdout) as { header: { revision: number } }).header.revision
}

function get(key: string): string {
  return etcdctl(member.clientUrl, ["get", key, "--print-value-only"]).stdout
}

/** Both clients run the same script; each returns its transcript (revisions masked). */
async function bothClients(script: (who: Who) => Promise<Transcript>): Promise<void> {
  const mask = (t: string): string => t.replace(/progress notify: \d+/g, "progress notify: <rev>").replace(/-(etcdctl|tskv)\b/g, "-<who>")
  const ours = await script("tskv")
  const theirs = await script("etcdctl")
  expect({ ...ours, stdout: mask(ours.stdout), stderr: mask(ours.stderr) }).toEqual({ ...theirs, stdout: mask(theirs.stdout), stderr: mask(theirs.stderr) })
}

describe("ctl watch -i", () => {
  test("watch -i starts each watch line as it arrives and prints its events before more input", async () => {
    await bothClients(async (who) => {
      const s = new Session(who, ["watch", "-i"])
      const rev = put(`wi-a-${who}`, "one")
      // --rev makes the event independent of when the watcher is created: seeing it proves the line was acted on
      s.write(`watch wi-a-${who} --rev=${rev}\n`)
      await s.waitFor(`wi-a-${who}\none\n`)
      // a live event: the watcher exists, it just delivered one
      put(`wi-a-${who}`, "two")
      await s.waitFor(`wi-a-${who}\ntwo\n`)
      const revB = put(`wi-b-${who}/x`, "three")
      s.write(`watch wi-b-${who} --prefix --rev=${revB}\n`)
      await s.waitFor(`wi-b-${who}/x\nthree\n`)
      // one notification per watcher
      s.write("progress\n")
      await s.waitFor("progress notify: ", "stdout", 2)
      s.write("nonsense\n")
      await s.waitFor("Invalid command nonsense (only support watch)", "stderr")
      s.write("\nwatch\nwatch a b --prefix\n")
      await s.waitFor("Invalid command watch a b --prefix (`range_end` and `--prefix` are mutually exclusive)", "stderr")
      return await s.transcript({ endInput: true })
    })
  })

  test("watch -i ends with exit 128 on a line with bad flags, without waiting for EOF", async () => {
    await bothClients(async (who) => {
      const s = new Session(who, ["watch", "-i"])
      s.write("watch k --bogus\n")
      return await s.transcript()
    })
  })

  test("watch -i: a separator without a command and a line without key end the command (exit 128)", async () => {
    for (const line of ["watch k --\n", "watch --prefix\n"]) {
      await bothClients(async (who) => {
        const s = new Session(who, ["watch", "-i"])
        s.write(line)
        return await s.transcript()
      })
    }
  })
})

describe("ctl txn -i", () => {
  test("txn -i prompts for each section and reads it line by line; nothing is sent before the last empty line", async () => {
    await bothClients(async (who) => {
      put(`ti-${who}`, "v1")
      const s = new Session(who, ["txn", "-i"])
      await s.waitFor("compares:\n")
      s.write(`value("ti-${who}") = "v1"\n`)
      s.write("\n")
      await s.waitFor("success requests (get, put, del):\n")
      s.write(`put ti-${who}-ok yes\n\n`)
      await s.waitFor("failure requests (get, put, del):\n")
      expect(get(`ti-${who}-ok`)).toBe("")
      s.write(`put ti-${who}-failed yes\n`)
      await Bun.sleep(100)
      expect(s.proc.exitCode).toBeNull()
      s.write("\n")
      await s.waitFor("SUCCESS\n")
      const transcript = await s.transcript()
      expect(get(`ti-${who}-ok`)).toBe("yes\n")
      expect(get(`ti-${who}-failed`)).toBe("")
      return transcript
    })
  })

  test("txn -i stops at a malformed comparison as soon as its line arrives (exit 3)", async () => {
    await bothClients(async (who) => {
      const s = new Session(who, ["txn", "-i"])
      await s.waitFor("compares:\n")
      s.write("value(k) = v\n")
      return await s.transcript()
    })
  })

  test("txn -i at EOF inside a section exits 3 with EOF", async () => {
    await bothClients(async (who) => {
      const s = new Session(who, ["txn", "-i"])
      await s.waitFor("compares:\n")
      s.write("\nget k")
      await s.waitFor("success requests (get, put, del):\n")
      return await s.transcript({ endInput: true })
    })
  })
})
