// `tskv ctl defrag --data-dir`: offline defragmentation of a stopped member's
// db, through the compiled binary; output compared with etcdctl 3.4 on a
// stopped etcd data dir.
import { afterAll, expect, setDefaultTimeout, test } from "bun:test"
import { spawnSync } from "bun"
import { statSync } from "node:fs"
import { join } from "node:path"
import { etcdctl, startMember, tskvBinary, type CtlResult, type MemberProcess } from "../support/procs"
import { tempDir } from "../support/tmp"
import { putMany } from "../support/cluster"
import { EtcdClient } from "../../src/client"
import { backendPathOf, memberDirOf } from "../../src/lib/data_dir"

setDefaultTimeout(60_000)

const started: MemberProcess[] = []
afterAll(async () => {
  for (const m of started) await m.stop()
})

function tskvctl(args: string[]): CtlResult {
  const r = spawnSync([tskvBinary, "ctl", ...args])
  return { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() }
}

const dbBytes = (dataDir: string): number => statSync(backendPathOf(dataDir)).size

async function start(kind: "tskv" | "etcd", dataDir?: string, ports?: MemberProcess): Promise<MemberProcess> {
  const m = await startMember({ kind, ...(dataDir === undefined ? {} : { dataDir }), ...(ports === undefined ? {} : { clientPort: ports.clientPort, peerPort: ports.peerPort }) })
  started.push(m)
  return m
}

/** Writes ~8 MiB under `junk/` (through a client: 128 etcdctl runs took seconds), deletes it and compacts: the db is left with free pages. */
async function makeGarbage(endpoint: string): Promise<void> {
  const client = new EtcdClient({ endpoints: [endpoint], callTimeoutMs: 10_000 })
  try {
    await putMany({ client, count: 128, prefix: "junk/", concurrency: 8, valueBytes: 64 * 1024 })
  } finally {
    client.close()
  }
  const del = etcdctl(endpoint, ["del", "junk/", "--prefix", "-w", "json"])
  const rev = (JSON.parse(del.stdout) as { header: { revision: number } }).header.revision
  expect(etcdctl(endpoint, ["compaction", "--physical", String(rev)]).code).toBe(0)
}

test("defrag --data-dir refuses a running member at once and defragments it once stopped; the member restarts with its data", async () => {
  const m = await start("tskv")
  expect(etcdctl(m.clientUrl, ["put", "kept", "value"]).code).toBe(0)
  await makeGarbage(m.clientUrl)

  const t0 = performance.now()
  const refused = tskvctl(["defrag", `--data-dir=${m.dataDir}`])
  expect(performance.now() - t0).toBeLessThan(5_000)
  expect(refused.code).toBe(1)
  expect(refused.stdout).toBe("")
  expect(refused.stderr).toMatch(new RegExp(`^Failed to defragment etcd data\\[${m.dataDir}\\] \\(.*\\.wal is locked: an etcd member is running on this data dir\\. To defrag a running etcd instance, omit --data-dir\\.\\)\\n$`))

  await m.stop()
  started.splice(started.indexOf(m), 1)
  const before = dbBytes(m.dataDir)
  const done = tskvctl(["defrag", `--data-dir=${m.dataDir}`])
  expect(done).toEqual({ code: 0, stdout: "", stderr: "" })
  const after = dbBytes(m.dataDir)
  expect(after).toBeLessThan(before - 4 * 2 ** 20)

  const again = await start("tskv", m.dataDir, m)
  expect(etcdctl(again.clientUrl, ["get", "kept", "--print-value-only"]).stdout).toBe("value\n")
  expect(etcdctl(again.clientUrl, ["get", "junk/", "--prefix", "--keys-only"]).stdout).toBe("")
})

test("defrag --data-dir prints what etcdctl prints for a stopped member (nothing, exit 0)", async () => {
  const e = await start("etcd")
  expect(etcdctl(e.clientUrl, ["put", "k", "v"]).code).toBe(0)
  await e.stop()
  started.splice(started.indexOf(e), 1)
  const theirs = etcdctl("127.0.0.1:1", ["defrag", `--data-dir=${e.dataDir}`])
  const t = await start("tskv")
  await t.stop()
  started.splice(started.indexOf(t), 1)
  const ours = tskvctl(["defrag", `--data-dir=${t.dataDir}`])
  expect(ours).toEqual(theirs)
})

test("defrag --data-dir on a dir without a db fails with exit 1 and creates nothing", () => {
  const dir = tempDir("tskv-defrag-missing-").path
  const r = tskvctl(["defrag", `--data-dir=${dir}`])
  expect(r).toEqual({ code: 1, stdout: "", stderr: `Failed to defragment etcd data[${dir}] (open ${dir}/tskv/snap/db: no such file or directory)\n` })
  expect(() => statSync(memberDirOf(dir))).toThrow()
})

test("defrag --data-dir without a value is a flag error, as in etcdctl", () => {
  const ours = tskvctl(["defrag", "--data-dir"])
  const theirs = etcdctl("127.0.0.1:1", ["defrag", "--data-dir"])
  expect(ours.code).toBe(theirs.code)
  expect(ours.stderr).toBe(theirs.stderr)
})
