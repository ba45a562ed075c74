// A first start writes nothing before it can serve: a port in use stops it
// before the data dir exists (etcd binds its listeners first), a listener that
// fails after the data dir was made removes it again, and a data dir that an
// earlier start made without ever serving (its WAL holds no raft state) is made
// again from the flags, so that the corrected rerun gets a leader.

import { afterAll, expect, test } from "bun:test"
import { existsSync } from "node:fs"
import { createServer, type Server } from "node:net"
import { join } from "node:path"
import { parseConfig } from "../../src/config/parse"
import { systemClock } from "../../src/lib/clock"
import { silentLogger } from "../../src/lib/logger"
import { bootstrapServer } from "../../src/server/bootstrap"
import { freePorts } from "../support/ports"
import { etcdctl, type MemberProcess, startMember } from "../support/procs"
import { tempDir } from "../support/tmp"
import { runToExit } from "../integration/member_support"
import { memberDirOf, walDirOf } from "../../src/lib/data_dir"

const started: MemberProcess[] = []
afterAll(async () => {
  for (const m of started) await m.stop("SIGKILL")
})

function memberArgs(name: string, dataDir: string, clientPort: number, peerPort: number): string[] {
  const client = `http://127.0.0.1:${clientPort}`
  const peer = `http://127.0.0.1:${peerPort}`
  return [
    `--name=${name}`,
    `--data-dir=${dataDir}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=${name}=${peer}`,
  ]
}

async function occupy(port: number): Promise<Server> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve))
  return server
}

for (const clash of ["client", "peer"] as const) {
  test(`a ${clash} port in use stops the first start before the data dir exists; the rerun serves`, async () => {
    const [clientPort, peerPort] = (await freePorts(2)) as [number, number]
    const dataDir = join(tempDir("first-start-").path, "data")
    const taken = clash === "client" ? clientPort : peerPort
    const blocker = await occupy(taken)
    const failed = runToExit(memberArgs("a", dataDir, clientPort, peerPort))
    blocker.close()
    expect(failed.code).toBe(1)
    expect(failed.stderr).toEndWith(`\ntskv: listen tcp 127.0.0.1:${taken}: bind: address already in use\n`)
    expect(existsSync(dataDir)).toBe(false)
    // etcd the same: exit 1, no data dir.
    const etcdDir = join(tempDir("first-start-etcd-").path, "data")
    const etcdBlocker = await occupy(taken)
    const etcd = Bun.spawnSync(["/usr/bin/etcd", ...memberArgs("a", etcdDir, clientPort, peerPort)], { timeout: 10_000 })
    etcdBlocker.close()
    expect(etcd.exitCode).toBe(1)
    expect(etcd.stderr.toString()).toContain(`listen tcp 127.0.0.1:${taken}: bind: address already in use`)
    expect(existsSync(etcdDir)).toBe(false)

    const m = await startMember({ kind: "tskv", name: "a", dataDir, clientPort, peerPort })
    started.push(m)
    expect(etcdctl(m.clientUrl, ["put", "k", "v"]).code).toBe(0)
    await m.stop()
  }, 30_000)
}

test("a listener that fails after the data dir was made removes the data dir again", async () => {
  const [clientPort, peerPort] = (await freePorts(2)) as [number, number]
  const dataDir = join(tempDir("first-start-").path, "data")
  // The metrics URL is the client URL: both pass the probe (one address), the second bind fails.
  const failed = runToExit([...memberArgs("a", dataDir, clientPort, peerPort), `--listen-metrics-urls=http://127.0.0.1:${clientPort}`])
  expect(failed.code).toBe(1)
  expect(failed.stderr).toContain("address already in use")
  expect(existsSync(memberDirOf(dataDir))).toBe(false)
})

test("a data dir left half-made by an earlier failed start (stale peer URL, no raft state) starts as a new member", async () => {
  const [oldClient, oldPeer, clientPort, peerPort] = (await freePorts(4)) as [number, number, number, number]
  const dataDir = join(tempDir("first-start-").path, "data")
  // What a start that died after making the data dir, before its first Ready, left: the WAL's metadata
  // and a db whose member list has the peer URL of that attempt.
  const parsed = parseConfig(memberArgs("a", dataDir, oldClient, oldPeer), {})
  if (parsed.kind !== "config") throw new Error(`config: ${JSON.stringify(parsed)}`)
  const halfMade = await bootstrapServer({ config: parsed.config, logger: silentLogger, clock: systemClock })
  await halfMade.stop()
  expect(existsSync(walDirOf(dataDir))).toBe(true)

  const m = await startMember({ kind: "tskv", name: "a", dataDir, clientPort, peerPort })
  started.push(m)
  expect(m.output()).toContain("the data dir was made by a start that never served")
  expect(etcdctl(m.clientUrl, ["put", "k", "v"]).code).toBe(0)
  const list = etcdctl(m.clientUrl, ["member", "list"])
  expect(list.stdout).toContain(`http://127.0.0.1:${peerPort}`)
  expect(list.stdout).not.toContain(`http://127.0.0.1:${oldPeer}`)
  // A restart of the member that served keeps its data (its WAL has raft state now).
  expect(await m.stop()).toBe(0)
  const again = await startMember({ kind: "tskv", name: "a", dataDir, clientPort, peerPort })
  started.push(again)
  expect(again.output()).not.toContain("never served")
  expect(etcdctl(again.clientUrl, ["get", "k", "--print-value-only"]).stdout).toBe("v\n")
}, 30_000)
