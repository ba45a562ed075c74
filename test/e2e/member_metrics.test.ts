// /metrics and the health endpoints of the running binary: etcd's series names
// (checked against a scrape of real etcd 3.4) with sane values, gRPC call
// counters that count, and /health, /livez, /readyz with and without a leader.

import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { Cluster } from "../support/cluster"
import { etcdctl, hasEtcd, type MemberProcess, startMember } from "../support/procs"

interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = []
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?\s+(\S+)$/.exec(line)
    if (m === null) continue
    const labels: Record<string, string> = {}
    for (const pair of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]!] = pair[2]!
    samples.push({ name: m[1]!, labels, value: Number(m[3]) })
  }
  return samples
}

async function scrape(url: string): Promise<Sample[]> {
  const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) })
  expect(res.status).toBe(200)
  expect(res.headers.get("content-type") ?? "").toStartWith("text/plain")
  return parseMetrics(await res.text())
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const hit = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
  return hit.length === 0 ? undefined : hit.reduce((a, s) => a + s.value, 0)
}

describe("single member /metrics", () => {
  let tskv: MemberProcess
  let etcd: MemberProcess | undefined
  beforeAll(async () => {
    tskv = await startMember({ kind: "tskv", name: "metrics" })
    if (hasEtcd()) etcd = await startMember({ kind: "etcd", name: "metrics-etcd" })
  }, 60_000)
  afterAll(async () => {
    await tskv?.stop()
    await etcd?.stop()
  })

  test("the core etcd series exist with sane values", async () => {
    for (let i = 0; i < 5; i++) etcdctl(tskv.clientUrl, ["put", `k${i}`, "v"])
    const s = await scrape(tskv.clientUrl)
    expect(value(s, "etcd_server_has_leader")).toBe(1)
    expect(value(s, "etcd_server_is_leader")).toBe(1)
    expect(value(s, "etcd_server_is_learner")).toBe(0)
    expect(value(s, "etcd_server_leader_changes_seen_total")).toBeGreaterThanOrEqual(1)
    expect(value(s, "etcd_mvcc_db_total_size_in_bytes")).toBeGreaterThan(0)
    expect(value(s, "etcd_mvcc_db_total_size_in_use_in_bytes")).toBeGreaterThan(0)
    expect(value(s, "etcd_server_quota_backend_bytes")).toBe(2 * 1024 ** 3)
    expect(value(s, "etcd_debugging_mvcc_current_revision")).toBe(6)
    expect(value(s, "etcd_debugging_mvcc_keys_total")).toBe(5)
    expect(value(s, "etcd_debugging_mvcc_compact_revision")).toBe(0)
    const applied = value(s, "etcd_server_proposals_applied_total") ?? 0
    expect(applied).toBeGreaterThanOrEqual(6)
    expect(value(s, "etcd_server_proposals_committed_total")).toBeGreaterThanOrEqual(applied)
    expect(value(s, "etcd_server_proposals_pending")).toBe(0)
    expect(value(s, "etcd_server_proposals_failed_total")).toBe(0)
    const id = s.find((x) => x.name === "etcd_server_id")
    const memberId = /"member_id":(\d+)/.exec(etcdctl(tskv.clientUrl, ["endpoint", "status", "-w", "json"]).stdout)?.[1] ?? "0"
    expect(id?.labels.server_id).toBe(BigInt(memberId).toString(16))
    expect(s.find((x) => x.name === "etcd_server_version")?.labels.server_version).toMatch(/^3\.\d+\.\d+$/)
  })

  test("grpc_server_started_total / handled_total count calls by method and code", async () => {
    const before = await scrape(tskv.clientUrl)
    const put = { grpc_service: "etcdserverpb.KV", grpc_method: "Put", grpc_type: "unary" }
    const range = { grpc_service: "etcdserverpb.KV", grpc_method: "Range", grpc_type: "unary" }
    for (let i = 0; i < 7; i++) expect(etcdctl(tskv.clientUrl, ["put", `g${i}`, "v"]).code).toBe(0)
    expect(etcdctl(tskv.clientUrl, ["get", "g0", "--rev=99999"]).code).not.toBe(0)
    const after = await scrape(tskv.clientUrl)
    const delta = (name: string, labels: Record<string, string>): number => (value(after, name, labels) ?? 0) - (value(before, name, labels) ?? 0)
    expect(delta("grpc_server_started_total", put)).toBe(7)
    expect(delta("grpc_server_handled_total", { ...put, grpc_code: "OK" })).toBe(7)
    expect(delta("grpc_server_msg_received_total", put)).toBe(7)
    expect(delta("grpc_server_msg_sent_total", put)).toBe(7)
    expect(delta("grpc_server_handled_total", { ...range, grpc_code: "OutOfRange" })).toBe(1)
  })

  test("every tskv series name is one real etcd exports, with the same labels", async () => {
    if (etcd === undefined) throw new Error("etcd 3.4 is required for this comparison")
    etcdctl(etcd.clientUrl, ["put", "k", "v"])
    const theirs = await scrape(etcd.clientUrl)
    const ours = await scrape(tskv.clientUrl)
    const labelsOf = (samples: Sample[]): Map<string, string> => {
      const m = new Map<string, string>()
      for (const s of samples) m.set(s.name, Object.keys(s.labels).sort().join(","))
      return m
    }
    const etcdNames = labelsOf(theirs)
    // Series etcd added after 3.4 (tskv speaks the 3.5 API).
    const newerThan34 = new Set(["etcd_server_health_success", "etcd_server_health_failures", "etcd_server_alarm_nospace"])
    for (const [name, labels] of labelsOf(ours)) {
      if (newerThan34.has(name)) continue
      expect({ name, labels: etcdNames.get(name) }).toEqual({ name, labels })
    }
  })

  test("the series the reference lists first (§4) are all exported", async () => {
    // Product gap when this fails: src/server/metrics.ts does not register them yet.
    const s = await scrape(tskv.clientUrl)
    const names = new Set(s.map((x) => x.name.replace(/_(bucket|sum|count)$/, "")))
    const expected = [
      "etcd_server_heartbeat_send_failures_total",
      "etcd_server_slow_read_indexes_total",
      "etcd_server_read_indexes_failed_total",
      "etcd_server_client_requests_total",
      "etcd_server_snapshot_apply_in_progress_total",
      "etcd_disk_wal_fsync_duration_seconds",
      "etcd_disk_backend_commit_duration_seconds",
      "etcd_disk_backend_defrag_duration_seconds",
      "etcd_disk_backend_snapshot_duration_seconds",
      "etcd_disk_wal_write_bytes_total",
      "etcd_mvcc_put_total",
      "etcd_mvcc_delete_total",
      "etcd_mvcc_range_total",
      "etcd_mvcc_txn_total",
      "etcd_debugging_mvcc_watcher_total",
      "etcd_debugging_mvcc_watch_stream_total",
      "etcd_debugging_mvcc_slow_watcher_total",
      "etcd_debugging_mvcc_pending_events_total",
      "etcd_debugging_lease_granted_total",
      "etcd_debugging_lease_renewed_total",
      "etcd_debugging_lease_revoked_total",
      "etcd_debugging_server_lease_expired_total",
      "etcd_network_client_grpc_sent_bytes_total",
      "etcd_network_client_grpc_received_bytes_total",
      "os_fd_used",
      "os_fd_limit",
    ]
    expect(expected.filter((n) => !names.has(n))).toEqual([])
  })

  test("/health, /livez, /readyz answer on a healthy member", async () => {
    const health = await fetch(`${tskv.clientUrl}/health`)
    expect(health.status).toBe(200)
    expect(await health.json()).toEqual({ health: "true" })
    expect(await (await fetch(`${tskv.clientUrl}/livez`)).text()).toBe("ok\n")
    expect(await (await fetch(`${tskv.clientUrl}/readyz`)).text()).toBe("ok\n")
    const verbose = await (await fetch(`${tskv.clientUrl}/readyz?verbose`)).text()
    expect(verbose).toBe("[+]data_corruption ok\n[+]serializable_read ok\n[+]linearizable_read ok\n[+]non_learner ok\nok\n")
    const version = await (await fetch(`${tskv.clientUrl}/version`)).json()
    expect(Object.keys(version as object).sort()).toEqual(["etcdcluster", "etcdserver"])
  })
})

describe("3 members, 2 stopped", () => {
  let c: Cluster
  beforeAll(async () => {
    c = await Cluster.start({ kind: "tskv", size: 3 })
  }, 60_000)
  afterAll(async () => {
    await c?.close()
  })

  test("without a leader: /health and /readyz answer 503 with the reason, /livez stays ok, has_leader 0", async () => {
    await c.leader()
    const last = c.members[2]!
    expect((await fetch(`${last.clientUrl}/health`)).status).toBe(200)
    expect(await c.terminate("m1")).toBe(0)
    expect(await c.terminate("m2")).toBe(0)
    // Wait out the election timeout: the lone member loses its leader (or its followers, if it led).
    // Right after the stop a read may fail before the member notices (reason RANGE ERROR:...); then RAFT NO LEADER.
    const seen: string[] = []
    for (let i = 0; i < 100; i++) {
      const health = await fetch(`${last.clientUrl}/health`, { signal: AbortSignal.timeout(10_000) })
      seen.push(`${health.status} ${await health.text()}`)
      if (seen.at(-1)?.includes("RAFT NO LEADER")) break
      await Bun.sleep(100)
    }
    // Failures go through Go's http.Error in etcd 3.5 (a trailing newline).
    expect(seen.at(-1)).toBe('503 {"health":"false"}\n')
    const serializable = await fetch(`${last.clientUrl}/health?serializable=true`, { signal: AbortSignal.timeout(10_000) })
    expect(serializable.status).toBe(200)
    const readyz = await fetch(`${last.clientUrl}/readyz?verbose`, { signal: AbortSignal.timeout(20_000) })
    expect(readyz.status).toBe(503)
    const text = await readyz.text()
    expect(text).toContain("[+]serializable_read ok\n")
    expect(text).toMatch(/\[-\]linearizable_read failed: /)
    const livez = await fetch(`${last.clientUrl}/livez`, { signal: AbortSignal.timeout(10_000) })
    expect(livez.status).toBe(200)
    const s = await scrape(last.clientUrl)
    expect(value(s, "etcd_server_has_leader")).toBe(0)
    expect(value(s, "etcd_server_is_leader")).toBe(0)

    // A member coming back restores the quorum and the answers.
    await c.restart("m1")
    for (let i = 0; i < 100; i++) {
      if ((await fetch(`${last.clientUrl}/health`)).status === 200) break
      await Bun.sleep(100)
    }
    expect((await fetch(`${last.clientUrl}/health`)).status).toBe(200)
    expect((await fetch(`${last.clientUrl}/readyz`)).status).toBe(200)
  }, 90_000)
})
