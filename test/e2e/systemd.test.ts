// Under systemd: sd_notify READY=1 / STOPPING=1 for a Type=notify unit, and
// --log-outputs=systemd/journal. A bound unix datagram socket stands in for
// systemd's notify socket and for journald's native socket (mounted over
// /run/systemd/journal in a private mount namespace: the path is fixed).

import { afterAll, expect, test } from "bun:test"
import { existsSync } from "node:fs"
import { join } from "node:path"
import { DatagramSink } from "../support/datagram_sink"
import { FakeJournald } from "../support/fake_journald"
import { parseJournalEntry } from "../support/journal_entry"
import { freePorts } from "../support/ports"
import { etcdctl, type MemberProcess, startMember, tskvBinary } from "../support/procs"
import { tempDir } from "../support/tmp"

const started: MemberProcess[] = []
afterAll(async () => {
  for (const m of started) await m.stop("SIGKILL")
})

async function healthy(clientUrl: string): Promise<boolean> {
  const res = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(2000) }).catch(() => undefined)
  return res?.status === 200
}

for (const kind of ["tskv", "etcd"] as const) {
  test(`${kind}: READY=1 reaches $NOTIFY_SOCKET once the member serves, once`, async () => {
    const sink = new DatagramSink(join(tempDir("notify-").path, "notify"))
    const m = await startMember({ kind, name: "n1", env: { NOTIFY_SOCKET: sink.path }, waitReady: false, extraArgs: ["--logger=zap"] })
    started.push(m)
    const ready = await sink.waitFor((d) => d.text === "READY=1")
    // Serving at the moment systemd hears it: /health is up (a leader and a published member).
    expect(await healthy(m.clientUrl)).toBe(true)
    expect(etcdctl(m.clientUrl, ["put", "k", "v"]).code).toBe(0)
    // etcd re-raises SIGTERM (143); tskv exits 0 after a graceful stop.
    expect(await m.stop("SIGTERM")).toBe(kind === "tskv" ? 0 : 143)
    sink.close()
    const ready1 = sink.received.filter((d) => d.text === "READY=1")
    expect(ready1.length).toBe(1)
    console.log(`${kind}: READY=1 at ${ready.atMs} ms after the start`)
    if (kind === "tskv") {
      // etcd 3.4 sends nothing at shutdown; tskv tells systemd it is stopping.
      expect(sink.received.map((d) => d.text)).toEqual(["READY=1", "STOPPING=1"])
      expect(m.output()).toContain('"msg":"successfully notified init daemon"')
    }
  }, 30_000)
}

test("tskv: a member of a 3-member cluster sends READY=1 only once a quorum elected a leader and it published itself", async () => {
  const [c1, p1, c2, p2, , p3] = await freePorts(6)
  const initialCluster = `a=http://127.0.0.1:${p1},b=http://127.0.0.1:${p2},c=http://127.0.0.1:${p3}`
  const sink = new DatagramSink(join(tempDir("notify-").path, "notify"))
  const a = await startMember({ kind: "tskv", name: "a", clientPort: c1!, peerPort: p1!, initialCluster, env: { NOTIFY_SOCKET: sink.path }, waitReady: false })
  started.push(a)
  await Bun.sleep(3000)
  expect(sink.received).toEqual([])
  const b = await startMember({ kind: "tskv", name: "b", clientPort: c2!, peerPort: p2!, initialCluster, waitReady: false })
  started.push(b)
  await sink.waitFor((d) => d.text === "READY=1")
  expect(await healthy(a.clientUrl)).toBe(true)
  sink.close()
}, 40_000)

test("tskv: a failing $NOTIFY_SOCKET is logged and the member serves on", async () => {
  const m = await startMember({ kind: "tskv", name: "n2", env: { NOTIFY_SOCKET: join(tempDir("notify-").path, "nobody") } })
  started.push(m)
  const deadline = Date.now() + 10_000
  while (!m.output().includes("failed to notify systemd for readiness") && Date.now() < deadline) await Bun.sleep(50)
  expect(m.output()).toContain('"msg":"failed to notify systemd for readiness","name":"n2","error":"sendto')
  expect(etcdctl(m.clientUrl, ["put", "k", "v"]).code).toBe(0)
})

test("--log-outputs=systemd/journal without journald: the member logs to stderr with a warning and serves (etcd 3.4 exits 1)", async () => {
  // (This machine has no /run/systemd/journal/socket; in the namespace test below one is mounted.)
  expect(existsSync("/run/systemd/journal/socket")).toBe(false)
  const m = await startMember({ kind: "tskv", name: "nj", extraArgs: ["--log-outputs=systemd/journal"] })
  started.push(m)
  expect(m.output()).toContain(
    `"msg":"--log-outputs=systemd/journal: no journald socket, logging to standard error","name":"nj","error":"can't find journal (dial unixgram /run/systemd/journal/socket: connect: no such file or directory)"`,
  )
  expect(m.output()).toContain('"msg":"ready to serve client requests"')
  expect(etcdctl(m.clientUrl, ["put", "k", "v"]).code).toBe(0)
  // What etcd 3.4 does instead (the issue asks for the fallback): it refuses to start.
  const dir = tempDir("nojournal-").path
  const etcd = Bun.spawnSync(["/usr/bin/etcd", "--logger=zap", "--log-outputs=systemd/journal", `--data-dir=${join(dir, "e")}`], { timeout: 10_000 })
  expect(etcd.exitCode).toBe(1)
  expect(etcd.stderr.toString()).toContain("can't find journal (dial unixgram /run/systemd/journal/socket: connect: no such file or directory)")
})

test("--log-outputs=systemd/journal sends each log line to journald's native socket, with its priority", async () => {
  const dir = tempDir("journal-").path
  const journald = new FakeJournald()
  const sink = journald.sink
  const [clientPort, peerPort] = (await freePorts(2)) as [number, number]
  const clientUrl = `http://127.0.0.1:${clientPort}`
  const peerUrl = `http://127.0.0.1:${peerPort}`
  const args = [
    "--name=j1",
    `--data-dir=${join(dir, "data")}`,
    `--listen-client-urls=${clientUrl}`,
    `--advertise-client-urls=${clientUrl}`,
    `--listen-peer-urls=${peerUrl}`,
    `--initial-advertise-peer-urls=${peerUrl}`,
    `--initial-cluster=j1=${peerUrl}`,
    "--log-outputs=systemd/journal",
  ]
  const proc = journald.spawn([tskvBinary, ...args])
  try {
    const ready = await sink.waitFor((d) => parseJournalEntry(d.bytes).MESSAGE?.includes('"msg":"ready to serve client requests"') === true)
    const fields = parseJournalEntry(ready.bytes)
    expect(fields.PRIORITY).toBe("6")
    expect(fields.SYSLOG_IDENTIFIER).toBe("tskv")
    expect(JSON.parse(fields.MESSAGE ?? "").name).toBe("j1")
    expect(etcdctl(clientUrl, ["put", "k", "v"]).code).toBe(0)
    proc.kill("SIGTERM")
    expect(await proc.exited).toBe(0)
    const stderr = await new Response(proc.stderr).text()
    // Everything went to journald, nothing to stderr.
    expect(stderr).toBe("")
    const messages = sink.received.map((d) => parseJournalEntry(d.bytes))
    expect(messages.some((f) => f.MESSAGE?.includes('"msg":"received signal; shutting down"'))).toBe(true)
    for (const f of messages) expect(["7", "6", "4", "3", "2"]).toContain(f.PRIORITY ?? "")
  } finally {
    proc.kill("SIGKILL")
    journald.close()
  }
}, 30_000)

test("--log-format=console: the member logs zap's console lines (ts, level, msg, fields)", async () => {
  const m = await startMember({ kind: "tskv", name: "c1", extraArgs: ["--log-format=console"] })
  started.push(m)
  const deadline = Date.now() + 10_000
  while (!m.output().includes("ready to serve client requests") && Date.now() < deadline) await Bun.sleep(50)
  expect(m.output()).toMatch(/\n?\d{4}-\d\d-\d\dT[\d:.]+Z\tinfo\tready to serve client requests\t\{"name":"c1","member-id":"[0-9a-f]+"\}\n/)
  expect(m.output()).not.toContain('{"level"')
})
