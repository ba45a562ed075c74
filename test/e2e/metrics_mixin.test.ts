// The alert rules and the Grafana dashboard of etcd's monitoring mixin
// (etcd-io/etcd contrib/mixin: alerts/alerts.libsonnet, dashboards/targets.libsonnet
// and etcd-grafana7x.libsonnet) against a 3-member tskv cluster after a
// workload: every series selector each expression uses finds at least one
// series on every member. The selectors are written out here by hand from
// the mixin's expressions; `up` is Prometheus' own and is left out; the
// job/cluster matchers are the scraper's labels, not the member's.

import { afterAll, beforeAll, expect, test } from "bun:test"
import { Cluster } from "../support/cluster"
import { etcdctl } from "../support/procs"

interface Selector {
  name: string
  /** label -> regular expression the value must match fully (`=` is a literal regexp). */
  match?: Record<string, string>
  /** label -> value it must not have (`!=`). */
  not?: Record<string, string>
}

const FAILED_CODES = "Unknown|FailedPrecondition|ResourceExhausted|Internal|Unavailable|DataLoss|DeadlineExceeded"

/** Each expression of the mixin, by where it is, with the selectors in it. */
const EXPRESSIONS: Record<string, Selector[]> = {
  "alert etcdMembersDown": [{ name: "etcd_network_peer_sent_failures_total" }],
  "alert etcdNoLeader": [{ name: "etcd_server_has_leader" }],
  "alert etcdHighNumberOfLeaderChanges": [{ name: "etcd_server_leader_changes_seen_total" }],
  "alert etcdHighNumberOfFailedGRPCRequests": [
    { name: "grpc_server_handled_total", match: { grpc_code: FAILED_CODES } },
    { name: "grpc_server_handled_total" },
  ],
  "alert etcdGRPCRequestsSlow": [{ name: "grpc_server_handling_seconds_bucket", match: { grpc_type: "unary" }, not: { grpc_method: "Defragment" } }],
  "alert etcdMemberCommunicationSlow": [{ name: "etcd_network_peer_round_trip_time_seconds_bucket" }],
  "alert etcdHighNumberOfFailedProposals": [{ name: "etcd_server_proposals_failed_total" }],
  "alert etcdHighFsyncDurations": [{ name: "etcd_disk_wal_fsync_duration_seconds_bucket" }],
  "alert etcdHighCommitDurations": [{ name: "etcd_disk_backend_commit_duration_seconds_bucket" }],
  "alert etcdDatabaseQuotaLowSpace": [{ name: "etcd_mvcc_db_total_size_in_bytes" }, { name: "etcd_server_quota_backend_bytes" }],
  "alert etcdExcessiveDatabaseGrowth": [{ name: "etcd_mvcc_db_total_size_in_bytes" }, { name: "etcd_server_quota_backend_bytes" }],
  "alert etcdDatabaseHighFragmentationRatio": [{ name: "etcd_mvcc_db_total_size_in_use_in_bytes" }, { name: "etcd_mvcc_db_total_size_in_bytes" }],
  "dashboard up": [{ name: "etcd_server_has_leader" }],
  "dashboard rpcRate": [{ name: "grpc_server_started_total", match: { grpc_type: "unary" } }],
  "dashboard rpcFailedRate": [{ name: "grpc_server_handled_total", match: { grpc_type: "unary", grpc_code: FAILED_CODES } }],
  "dashboard watchStreams": [
    { name: "grpc_server_started_total", match: { grpc_service: "etcdserverpb.Watch", grpc_type: "bidi_stream" } },
    { name: "grpc_server_handled_total", match: { grpc_service: "etcdserverpb.Watch", grpc_type: "bidi_stream" } },
  ],
  "dashboard leaseStreams": [
    { name: "grpc_server_started_total", match: { grpc_service: "etcdserverpb.Lease", grpc_type: "bidi_stream" } },
    { name: "grpc_server_handled_total", match: { grpc_service: "etcdserverpb.Lease", grpc_type: "bidi_stream" } },
  ],
  "dashboard dbSize": [{ name: "etcd_mvcc_db_total_size_in_bytes" }],
  "dashboard walFsync": [{ name: "etcd_disk_wal_fsync_duration_seconds_bucket" }],
  "dashboard dbFsync": [{ name: "etcd_disk_backend_commit_duration_seconds_bucket" }],
  "dashboard memory": [{ name: "process_resident_memory_bytes" }],
  "dashboard clientTrafficIn": [{ name: "etcd_network_client_grpc_received_bytes_total" }],
  "dashboard clientTrafficOut": [{ name: "etcd_network_client_grpc_sent_bytes_total" }],
  "dashboard peerTrafficIn": [{ name: "etcd_network_peer_received_bytes_total" }],
  "dashboard peerTrafficOut": [{ name: "etcd_network_peer_sent_bytes_total" }],
  "dashboard raftProposals (grafana 7: committed, applied, pending, failed)": [
    { name: "etcd_server_proposals_committed_total" },
    { name: "etcd_server_proposals_applied_total" },
    { name: "etcd_server_proposals_pending" },
    { name: "etcd_server_proposals_failed_total" },
  ],
  "dashboard leaderElections": [{ name: "etcd_server_leader_changes_seen_total" }],
  "dashboard peerRtt": [{ name: "etcd_network_peer_round_trip_time_seconds_bucket" }],
}

interface Series {
  name: string
  labels: Record<string, string>
}

function parseSeries(text: string): Series[] {
  const out: Series[] = []
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})? \S+$/.exec(line)
    if (m === null) continue
    const labels: Record<string, string> = {}
    for (const pair of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]!] = pair[2]!
    out.push({ name: m[1]!, labels })
  }
  return out
}

function finds(series: Series[], s: Selector): boolean {
  return series.some(
    (x) =>
      x.name === s.name &&
      Object.entries(s.match ?? {}).every(([k, re]) => new RegExp(`^(?:${re})$`).test(x.labels[k] ?? "")) &&
      Object.entries(s.not ?? {}).every(([k, v]) => x.labels[k] !== v),
  )
}

let cluster: Cluster
const scrapes = new Map<string, Series[]>()

beforeAll(async () => {
  cluster = await Cluster.start({ kind: "tskv", size: 3, extraArgs: ["--metrics=extensive"] })
  const leader = await cluster.leader()
  const ep = leader.clientUrl
  for (let i = 0; i < 10; i++) etcdctl(ep, ["put", `k${i}`, "v"])
  etcdctl(ep, ["get", "k", "--prefix"])
  const lease = /lease ([0-9a-f]+) granted/.exec(etcdctl(ep, ["lease", "grant", "30"]).stdout)?.[1] ?? "0"
  etcdctl(ep, ["lease", "keep-alive", "--once", lease])
  const watcher = Bun.spawn(["etcdctl", `--endpoints=${ep}`, "watch", "k1"], { stdout: "ignore", stderr: "ignore" })
  await Bun.sleep(500)
  etcdctl(ep, ["put", "k1", "w"])
  await Bun.sleep(1500) // a few heartbeats, so that every peer has a round trip time
  for (const m of cluster.members) {
    const res = await fetch(`${m.clientUrl}/metrics`, { signal: AbortSignal.timeout(5000) })
    scrapes.set(m.name, parseSeries(await res.text()))
  }
  watcher.kill()
  await watcher.exited
}, 90_000)

afterAll(async () => {
  await cluster?.close()
})

test("every series selector of etcd's mixin alerts and dashboard finds series on every member", () => {
  const missing: string[] = []
  for (const [where, selectors] of Object.entries(EXPRESSIONS)) {
    for (const s of selectors) {
      for (const [member, series] of scrapes) {
        if (!finds(series, s)) missing.push(`${where}: ${s.name}${JSON.stringify(s.match ?? {})} on ${member}`)
      }
    }
  }
  expect(scrapes.size).toBe(3)
  expect(missing).toEqual([])
})
