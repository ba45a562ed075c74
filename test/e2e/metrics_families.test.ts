// /metrics of tskv against etcd 3.4's after the same workload, both with
// --metrics=extensive: every family etcd exposes (go_* aside) exists in tskv
// with the same type and the same label names, but those named in
// ABSENT_FAMILIES; tskv's extra ones are named in EXTRA_FAMILIES. Values are
// not compared, but the families the workload drives must have moved.

import { afterAll, beforeAll, expect, test } from "bun:test"
import { ABSENT_FAMILIES, EXTRA_FAMILIES, parseFamilies, type Family } from "../support/metric_families"
import { etcdctl, type MemberProcess, startMember } from "../support/procs"

let tskv: MemberProcess
let etcd: MemberProcess
const scraped: Record<"tskv" | "etcd", Map<string, Family>> = { tskv: new Map(), etcd: new Map() }
const texts: Record<"tskv" | "etcd", string> = { tskv: "", etcd: "" }

/** The same requests against both, through real etcdctl. */
function workload(member: MemberProcess): void {
  const run = (args: string[], input?: string): void => {
    const r = etcdctl(member.clientUrl, args, input)
    if (r.code !== 0) throw new Error(`etcdctl ${args.join(" ")}: ${r.stderr}`)
  }
  for (let i = 0; i < 5; i++) run(["put", `k${i}`, `v${i}`])
  run(["get", "k", "--prefix"])
  run(["del", "k0"])
  run(["txn"], 'value("k1") = "v1"\n\nput k1 x\n\nput k1 y\n\n')
  const lease = /lease ([0-9a-f]+) granted/.exec(etcdctl(member.clientUrl, ["lease", "grant", "60"]).stdout)?.[1]
  if (lease === undefined) throw new Error("no lease")
  run(["lease", "keep-alive", "--once", lease])
  run(["put", "leased", "v", `--lease=${lease}`])
  run(["lease", "revoke", lease])
  const revision = /"revision":(\d+)/.exec(etcdctl(member.clientUrl, ["put", "k1", "last", "-w", "json"]).stdout)?.[1]
  run(["compaction", revision ?? "0"])
  run(["endpoint", "hashkv"])
  run(["endpoint", "status"])
  run(["defrag"])
  run(["user", "add", "root", "--new-user-password=pw"])
  run(["member", "list"])
}

async function scrape(member: MemberProcess): Promise<string> {
  const res = await fetch(`${member.clientUrl}/metrics`, { signal: AbortSignal.timeout(5000) })
  expect(res.status).toBe(200)
  return await res.text()
}

beforeAll(async () => {
  ;[tskv, etcd] = await Promise.all([
    startMember({ kind: "tskv", name: "families", extraArgs: ["--metrics=extensive", "--snapshot-count=5"] }),
    startMember({ kind: "etcd", name: "families", extraArgs: ["--metrics=extensive", "--snapshot-count=5"] }),
  ])
  for (const [who, member] of [["tskv", tskv], ["etcd", etcd]] as const) {
    workload(member)
    // a watch that sees one event, so that the watch families have samples
    const watcher = Bun.spawn(["etcdctl", `--endpoints=${member.clientUrl}`, "watch", "k1"], { stdout: "pipe", stderr: "ignore" })
    await Bun.sleep(700)
    etcdctl(member.clientUrl, ["put", "k1", "watched"])
    await Bun.sleep(300)
    await scrape(member) // promhttp counts a scrape once it is served
    texts[who] = await scrape(member)
    watcher.kill()
    await watcher.exited
    scraped[who] = parseFamilies(texts[who])
  }
}, 60_000)

afterAll(async () => {
  await tskv?.stop()
  await etcd?.stop()
})

test("every etcd 3.4 family (go_* aside) is in tskv with its type and label names, or explained", () => {
  const lines: string[] = []
  for (const [name, theirs] of scraped.etcd) {
    if (name.startsWith("go_")) continue
    const ours = scraped.tskv.get(name)
    if (ours === undefined) {
      if (ABSENT_FAMILIES[name] === undefined) lines.push(`missing ${name} ${theirs.type}`)
      continue
    }
    if (ABSENT_FAMILIES[name] !== undefined) lines.push(`${name} is listed as absent but is there`)
    if (ours.type !== theirs.type) lines.push(`${name}: type ${ours.type}, etcd ${theirs.type}`)
    const a = [...theirs.labelSets].sort().join(" | ")
    const b = [...ours.labelSets].sort().join(" | ")
    if (a !== b) lines.push(`${name}: labels {${b}}, etcd {${a}}`)
  }
  for (const name of scraped.tskv.keys()) {
    if (!scraped.etcd.has(name) && EXTRA_FAMILIES[name] === undefined) lines.push(`extra ${name}`)
  }
  for (const name of Object.keys(ABSENT_FAMILIES)) if (!scraped.etcd.has(name)) lines.push(`${name} is listed as absent but etcd 3.4 has no such family`)
  expect(lines).toEqual([])
})

test("the families the workload drives have values that moved in tskv", () => {
  const sum = (name: string): number => {
    let total = 0
    for (const line of texts.tskv.split("\n")) {
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})? (\S+)$/.exec(line)
      if (m !== null && m[1] === name) total += Number(m[2])
    }
    return total
  }
  const positive = [
    "etcd_debugging_mvcc_put_total",
    "etcd_debugging_mvcc_delete_total",
    "etcd_debugging_mvcc_range_total",
    "etcd_debugging_mvcc_txn_total",
    "etcd_debugging_mvcc_total_put_size_in_bytes",
    "etcd_debugging_mvcc_events_total",
    "etcd_debugging_mvcc_db_compaction_keys_total",
    "etcd_debugging_mvcc_db_compaction_pause_duration_milliseconds_count",
    "etcd_debugging_mvcc_db_compaction_total_duration_milliseconds_count",
    "etcd_debugging_mvcc_index_compaction_pause_duration_milliseconds_count",
    "etcd_debugging_lease_ttl_total_count",
    "etcd_debugging_lease_ttl_total_sum",
    "etcd_debugging_auth_revision",
    "etcd_mvcc_hash_rev_duration_seconds_count",
    "etcd_disk_backend_defrag_duration_seconds_count",
    "etcd_disk_wal_write_bytes_total",
    "grpc_server_handling_seconds_count",
    "grpc_server_handled_total",
    "process_virtual_memory_max_bytes",
    "promhttp_metric_handler_requests_total",
    "etcd_server_go_version",
    "etcd_snap_fsync_duration_seconds_count",
    "etcd_debugging_snap_save_marshalling_duration_seconds_count",
    "etcd_debugging_snap_save_total_duration_seconds_count",
  ]
  expect(positive.filter((name) => !(sum(name) > 0))).toEqual([])
  expect(sum("etcd_debugging_lease_ttl_total_sum")).toBe(60)
  expect(sum("etcd_disk_defrag_inflight")).toBe(0)
  expect(texts.tskv).toContain(`etcd_server_go_version{server_go_version="bun${Bun.version}"} 1\n`)
})

test("grpc_server_handling_seconds only with --metrics=extensive", async () => {
  const basic = await startMember({ kind: "tskv", name: "basic" })
  try {
    etcdctl(basic.clientUrl, ["put", "a", "b"])
    const text = await scrape(basic)
    expect(text).toContain("grpc_server_handled_total{")
    expect(text).not.toContain("grpc_server_handling_seconds")
  } finally {
    await basic.stop()
  }
}, 30_000)
