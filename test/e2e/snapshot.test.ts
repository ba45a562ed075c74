// Disaster recovery through the compiled binary: `tskv snapshot save` (and
// real etcdctl's) from a running member, `status`, `restore` into fresh data
// dirs (one member, and a 3-member cluster restored on every member from the
// same file), then members started on them: the data is there, the cluster id
// and membership are new, and revisions continue.

import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test"
import { spawnSync } from "bun"
import { appendFileSync, copyFileSync, existsSync, statSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { EtcdClient } from "../../src/client"
import { fromUtf8, utf8 } from "../../src/lib/bytes"
import { freePorts } from "../support/ports"
import { etcdctl, hasEtcd, type MemberProcess, startMember, tskvBinary, waitHealthy } from "../support/procs"
import { tempDir } from "../support/tmp"

// Spawned binaries are slow to start on a loaded 2-core machine.
setDefaultTimeout(30_000)

const started: MemberProcess[] = []
const dirs: { remove(): void }[] = []
afterAll(async () => {
  for (const m of started) await m.stop("SIGKILL")
  for (const d of dirs) d.remove()
})

function tskv(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync([tskvBinary, ...args], { stdin: "ignore" })
  return { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() }
}

function scratch(): string {
  const d = tempDir("tskv-snapshot-e2e-")
  dirs.push(d)
  return d.path
}

/** A member with keys k0..k9 (k0 attached to a lease), revisions 2..11 before the lease put. */
async function sourceMember(): Promise<{ member: MemberProcess; client: EtcdClient; revision: number; lease: bigint }> {
  const member = await startMember({ kind: "tskv", name: "source" })
  started.push(member)
  const client = new EtcdClient({ endpoints: [member.clientUrl] })
  for (let i = 0; i < 10; i++) await client.kv.put({ key: utf8(`k${i}`), value: utf8(`v${i}`) })
  const lease = (await client.lease.leaseGrant({ TTL: 600 })).ID
  const res = await client.kv.put({ key: utf8("leased"), value: utf8("x"), lease })
  await client.kv.put({ key: utf8("k9"), value: utf8("v9b") })
  return { member, client, revision: res.header!.revision + 1, lease }
}

let source: Awaited<ReturnType<typeof sourceMember>> | undefined
async function getSource(): Promise<NonNullable<typeof source>> {
  source ??= await sourceMember()
  return source
}

describe("tskv snapshot", () => {
  test("save writes the db plus its sha256; status reports revision, keys and size", async () => {
    const { member, revision } = await getSource()
    const file = join(scratch(), "snap.db")
    const saved = tskv(["snapshot", "save", file, `--endpoints=${member.clientUrl}`])
    expect(saved.stderr).toBe("")
    expect(saved.stdout).toBe(`Snapshot saved at ${file}\n`)
    expect(saved.code).toBe(0)
    expect(statSync(file).size % 512).toBe(32)
    expect(existsSync(`${file}.part`)).toBe(false)

    const simple = tskv(["snapshot", "status", file])
    expect(simple.code).toBe(0)
    const [hash, rev, keys, size] = simple.stdout.trim().split(", ")
    expect(hash).toMatch(/^[0-9a-f]+$/)
    expect(Number(rev)).toBe(revision)
    expect(Number(keys)).toBeGreaterThan(11)
    expect(size).toMatch(/^\d+(\.\d)? kB$/)
    const json = JSON.parse(tskv(["snapshot", "status", file, "-w", "json"]).stdout) as Record<string, number>
    expect(json).toEqual({ hash: parseInt(hash!, 16), revision, totalKey: Number(keys), totalSize: statSync(file).size - 32 })
    const table = tskv(["snapshot", "status", file, "--write-out=table"]).stdout.split("\n")
    // The HASH column is as wide as the hash, which prints without leading zeros (as etcdctl's %x).
    expect(table[1]).toMatch(/^\| +HASH +\| REVISION \| TOTAL KEYS \| TOTAL SIZE \|$/)
    expect(table[3]).toContain(`| ${hash} |`)
    // Equal contents, equal hash: a second save of an idle member has the same status.
    const again = join(scratch(), "again.db")
    expect(tskv(["snapshot", "save", again, `--endpoints=${member.clientUrl}`]).code).toBe(0)
    expect(tskv(["snapshot", "status", again]).stdout).toBe(simple.stdout)
  })

  test("restore refuses a damaged file, a file without hash (unless --skip-hash-check) and a non-empty data dir", async () => {
    const { member } = await getSource()
    const dir = scratch()
    const file = join(dir, "snap.db")
    expect(tskv(["snapshot", "save", file, `--endpoints=${member.clientUrl}`]).code).toBe(0)
    const restoreArgs = (from: string, dataDir: string): string[] => [
      "snapshot", "restore", from, `--data-dir=${dataDir}`, "--name=m1",
      "--initial-cluster=m1=http://127.0.0.1:1", "--initial-advertise-peer-urls=http://127.0.0.1:1",
    ]

    const damaged = join(dir, "damaged.db")
    copyFileSync(file, damaged)
    const content = new Uint8Array(await Bun.file(damaged).arrayBuffer())
    content[4096] = content[4096]! ^ 0xff
    writeFileSync(damaged, content)
    const bad = tskv(restoreArgs(damaged, join(dir, "r-damaged")))
    expect(bad.code).toBe(1)
    expect(bad.stderr).toMatch(/^Error: expected sha256 \[[\d ]+\], got \[[\d ]+\]\n$/)
    expect(existsSync(join(dir, "r-damaged"))).toBe(false)

    const raw = join(dir, "raw.db")
    writeFileSync(raw, new Uint8Array(await Bun.file(file).arrayBuffer()).subarray(0, statSync(file).size - 32))
    const noHash = tskv(restoreArgs(raw, join(dir, "r-raw")))
    expect(noHash.stderr).toBe("Error: snapshot missing hash but --skip-hash-check=false\n")
    expect(noHash.code).toBe(1)
    expect(tskv([...restoreArgs(raw, join(dir, "r-raw")), "--skip-hash-check"]).code).toBe(0)
    const nonEmpty = tskv(restoreArgs(file, join(dir, "r-raw")))
    expect(nonEmpty.stderr).toBe(`Error: data-dir "${join(dir, "r-raw")}" not empty or could not be read\n`)
    expect(nonEmpty.code).toBe(1)

    const missing = tskv(["snapshot", "status", join(dir, "nope.db")])
    expect(missing.stderr).toBe(`Error: stat ${join(dir, "nope.db")}: no such file or directory\n`)
    expect(missing.code).toBe(1)
    const notDb = join(dir, "text.db")
    writeFileSync(notDb, "hello")
    expect(tskv(["snapshot", "status", notDb]).stderr).toBe("Error: invalid database\n")
    const usage = tskv(["snapshot", "save"])
    expect(usage.stderr).toBe("Error: snapshot save expects one argument\n")
    expect(usage.code).toBe(128)
  })

  test("restore into a new dir: a member started on it has the data, a new cluster id, and revisions continue", async () => {
    const { member, client, revision, lease } = await getSource()
    const dir = scratch()
    const file = join(dir, "snap.db")
    expect(tskv(["snapshot", "save", file, `--endpoints=${member.clientUrl}`]).code).toBe(0)
    const [clientPort, peerPort] = (await freePorts(2)) as [number, number]
    const peerUrl = `http://127.0.0.1:${peerPort}`
    const dataDir = join(dir, "restored")
    const r = tskv(["snapshot", "restore", file, "--name=fresh", `--data-dir=${dataDir}`, `--initial-cluster=fresh=${peerUrl}`,
      "--initial-cluster-token=restored", `--initial-advertise-peer-urls=${peerUrl}`])
    expect(r.stderr).toBe("")
    expect(r.code).toBe(0)
    const restored = await startMember({ kind: "tskv", name: "fresh", dataDir, clientPort, peerPort })
    started.push(restored)
    const c = new EtcdClient({ endpoints: [restored.clientUrl] })
    try {
      const all = await c.kv.range({ key: utf8("k"), rangeEnd: utf8("l") })
      expect(all.kvs.map((kv) => `${fromUtf8(kv.key)}=${fromUtf8(kv.value)}`)).toEqual([
        "k0=v0", "k1=v1", "k2=v2", "k3=v3", "k4=v4", "k5=v5", "k6=v6", "k7=v7", "k8=v8", "k9=v9b",
      ])
      expect(all.header!.revision).toBe(revision)
      // History survives: the old value of k9 at its old revision.
      const old = await c.kv.range({ key: utf8("k9"), revision: revision - 2 })
      expect(fromUtf8(old.kvs[0]!.value)).toBe("v9")
      // A new cluster with this one member.
      const members = await c.cluster.memberList({})
      expect(members.members.map((m) => [m.name, m.peerURLs])).toEqual([["fresh", [peerUrl]]])
      const sourceHeader = (await client.kv.range({ key: utf8("k0") })).header!
      expect(all.header!.clusterId).not.toBe(sourceHeader.clusterId)
      // The lease and its key came along.
      const ttl = await c.lease.leaseTimeToLive({ ID: lease, keys: true })
      expect(ttl.keys.map(fromUtf8)).toEqual(["leased"])
      // Revisions continue.
      const put = await c.kv.put({ key: utf8("after"), value: utf8("1") })
      expect(put.header!.revision).toBe(revision + 1)
    } finally {
      c.close()
    }
    // And it restarts from its own data dir.
    await restored.stop()
    const again = await startMember({ kind: "tskv", name: "fresh", dataDir, clientPort, peerPort })
    started.push(again)
    const c2 = new EtcdClient({ endpoints: [again.clientUrl] })
    try {
      expect((await c2.kv.range({ key: utf8("after") })).header!.revision).toBe(revision + 1)
    } finally {
      c2.close()
    }
    await again.stop()
  })

  test("restore --bump-revision --mark-compacted: revisions jump ahead and older ones read as compacted", async () => {
    const { member, revision } = await getSource()
    const dir = scratch()
    const file = join(dir, "snap.db")
    expect(tskv(["snapshot", "save", file, `--endpoints=${member.clientUrl}`]).code).toBe(0)
    const [clientPort, peerPort] = (await freePorts(2)) as [number, number]
    const peerUrl = `http://127.0.0.1:${peerPort}`
    const dataDir = join(dir, "bumped")
    const args = ["snapshot", "restore", file, "--name=b", `--data-dir=${dataDir}`, `--initial-cluster=b=${peerUrl}`, `--initial-advertise-peer-urls=${peerUrl}`]
    const refused = tskv([...args, "--bump-revision=1000"])
    expect(refused.stderr).toBe("Error: --bump-revision needs --mark-compacted in tskv\n")
    expect(refused.code).toBe(1)
    expect(tskv([...args, "--bump-revision", "1000", "--mark-compacted"]).code).toBe(0)
    const restored = await startMember({ kind: "tskv", name: "b", dataDir, clientPort, peerPort })
    started.push(restored)
    const c = new EtcdClient({ endpoints: [restored.clientUrl] })
    try {
      const now = await c.kv.range({ key: utf8("k9") })
      expect(now.header!.revision).toBe(revision + 1000)
      expect(fromUtf8(now.kvs[0]!.value)).toBe("v9b")
      const old = await c.kv.range({ key: utf8("k9"), revision }).catch((e: unknown) => e)
      expect(String(old)).toContain("required revision has been compacted")
      expect((await c.kv.put({ key: utf8("n"), value: utf8("1") })).header!.revision).toBe(revision + 1001)
    } finally {
      c.close()
    }
    await restored.stop()
  })

  test("a 3-member cluster restored on every member from the same file", async () => {
    const { member, revision } = await getSource()
    const dir = scratch()
    const file = join(dir, "snap.db")
    expect(tskv(["snapshot", "save", file, `--endpoints=${member.clientUrl}`]).code).toBe(0)
    const ports = await freePorts(6)
    const names = ["a", "b", "c"]
    const peerUrl = (i: number): string => `http://127.0.0.1:${ports[2 * i + 1]}`
    const initialCluster = names.map((n, i) => `${n}=${peerUrl(i)}`).join(",")
    for (const [i, name] of names.entries()) {
      const r = tskv(["snapshot", "restore", file, `--name=${name}`, `--data-dir=${join(dir, name)}`, `--initial-cluster=${initialCluster}`,
        "--initial-cluster-token=tri", `--initial-advertise-peer-urls=${peerUrl(i)}`])
      expect(r.stderr).toBe("")
      expect(r.code).toBe(0)
    }
    const members = await Promise.all(
      names.map((name, i) =>
        startMember({ kind: "tskv", name, dataDir: join(dir, name), clientPort: ports[2 * i]!, peerPort: ports[2 * i + 1]!, initialCluster, waitReady: false }),
      ),
    )
    started.push(...members)
    await Promise.all(members.map((m) => waitHealthy(m, 30_000)))
    const c = new EtcdClient({ endpoints: members.map((m) => m.clientUrl), callTimeoutMs: 10_000 })
    try {
      const put = await c.kv.put({ key: utf8("k0"), value: utf8("after-restore") })
      expect(put.header!.revision).toBe(revision + 1)
      const list = await c.cluster.memberList({})
      expect(list.members.map((m) => m.name).sort()).toEqual(names)
      // Every member has the restored data and the new write.
      for (const m of members) {
        const one = new EtcdClient({ endpoints: [m.clientUrl] })
        try {
          const deadline = Date.now() + 5000
          let res = await one.kv.range({ key: utf8("k"), rangeEnd: utf8("l"), serializable: true })
          while (res.header!.revision < revision + 1 && Date.now() < deadline) {
            await Bun.sleep(50)
            res = await one.kv.range({ key: utf8("k"), rangeEnd: utf8("l"), serializable: true })
          }
          expect(res.kvs.length).toBe(10)
          expect(fromUtf8(res.kvs[0]!.value)).toBe("after-restore")
          expect(res.header!.revision).toBe(revision + 1)
        } finally {
          one.close()
        }
      }
    } finally {
      c.close()
    }
    for (const m of members) await m.stop()
  }, 60_000)
})

describe.if(hasEtcd())("etcdctl snapshot save against tskv", () => {
  test("the file etcdctl writes is accepted by tskv snapshot restore (hash checked)", async () => {
    const { member, revision } = await getSource()
    const dir = scratch()
    const file = join(dir, "etcdctl.db")
    const saved = etcdctl(member.clientUrl, ["snapshot", "save", file])
    expect(saved.stdout).toBe(`Snapshot saved at ${file}\n`)
    expect(saved.code).toBe(0)
    const [clientPort, peerPort] = (await freePorts(2)) as [number, number]
    const peerUrl = `http://127.0.0.1:${peerPort}`
    const dataDir = join(dir, "restored")
    const r = tskv(["snapshot", "restore", file, "--name=x", `--data-dir=${dataDir}`, `--initial-cluster=x=${peerUrl}`, `--initial-advertise-peer-urls=${peerUrl}`])
    expect(r.stderr).toBe("")
    expect(r.code).toBe(0)
    const restored = await startMember({ kind: "tskv", name: "x", dataDir, clientPort, peerPort })
    started.push(restored)
    const got = etcdctl(restored.clientUrl, ["get", "k9", "-w", "json"])
    const parsed = JSON.parse(got.stdout) as { header: { revision: number }; kvs: { value: string }[] }
    expect(parsed.header.revision).toBe(revision)
    expect(Buffer.from(parsed.kvs[0]!.value, "base64").toString()).toBe("v9b")
    await restored.stop()
  })

  test("an etcdctl download with bytes appended is refused", async () => {
    const { member } = await getSource()
    const dir = scratch()
    const file = join(dir, "etcdctl.db")
    expect(etcdctl(member.clientUrl, ["snapshot", "save", file]).code).toBe(0)
    appendFileSync(file, new Uint8Array(512))
    const r = tskv(["snapshot", "restore", file, "--name=x", `--data-dir=${join(dir, "r")}`, "--initial-cluster=x=http://127.0.0.1:1", "--initial-advertise-peer-urls=http://127.0.0.1:1"])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/^Error: expected sha256/)
  })
})
