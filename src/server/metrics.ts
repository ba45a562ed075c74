// The member's core Prometheus series, with etcd's names (reference §4), read
// from the server when scraped (callback gauges and counters): nothing is
// added to the write path for them.

import { etcdApiVersion, etcdClusterVersion } from "../config/version"
import type { Registry } from "../lib/metrics"
import { AlarmType } from "../pb"
import type { EtcdServer } from "./server"

export function registerServerMetrics(registry: Registry, server: EtcdServer): void {
  const g = (name: string, help: string, collect: () => number): void => {
    registry.gauge({ name, help, collect })
  }
  const c = (name: string, help: string, collect: () => number): void => {
    registry.counter({ name, help, collect })
  }
  g("etcd_server_has_leader", "Whether or not a leader exists. 1 is existence, 0 is not.", () => (server.hasLeader() ? 1 : 0))
  g("etcd_server_is_leader", "Whether or not this member is a leader. 1 if is, 0 otherwise.", () => (server.isLeader() ? 1 : 0))
  g("etcd_server_is_learner", "Whether or not this member is a learner. 1 if is, 0 otherwise.", () => (server.isLearner() ? 1 : 0))
  c("etcd_server_leader_changes_seen_total", "The number of leader changes seen.", () => server.counters.leaderChanges)
  g("etcd_server_proposals_committed_total", "The total number of consensus proposals committed.", () => server.committedIndex)
  g("etcd_server_proposals_applied_total", "The total number of consensus proposals applied.", () => server.appliedIndex)
  g("etcd_server_proposals_pending", "The current number of pending proposals to commit.", () => server.counters.proposalsPending)
  c("etcd_server_proposals_failed_total", "The total number of failed proposals seen.", () => server.counters.proposalsFailed)
  c("etcd_server_slow_apply_total", "The total number of slow apply requests (likely overloaded from slow disk).", () => server.counters.slowApplies)
  g("etcd_server_quota_backend_bytes", "Current backend storage quota size in bytes.", () => (Number.isFinite(server.config.quotaBackendBytes) ? server.config.quotaBackendBytes : -1))
  g("etcd_mvcc_db_total_size_in_bytes", "Total size of the underlying database physically allocated in bytes.", () => server.backend.sizeBytes())
  g("etcd_mvcc_db_total_size_in_use_in_bytes", "Total size of the underlying database logically in use in bytes.", () => server.backend.sizeInUseBytes())
  g("etcd_debugging_mvcc_current_revision", "The current revision of store.", () => server.store.currentRevision())
  g("etcd_debugging_mvcc_compact_revision", "The revision of the last compaction in store.", () => server.store.compactedRevision())
  g("etcd_debugging_mvcc_keys_total", "Total number of keys.", () => server.store.keyCount())
  g("etcd_server_alarm_nospace", "Whether the NOSPACE alarm is active (tskv).", () => (server.alarms.has(AlarmType.NOSPACE) ? 1 : 0))
  registry.gauge({ name: "etcd_server_version", help: "Which version is running. 1 for 'server_version' label with current version.", labelNames: ["server_version"] }).labels(etcdApiVersion).set(1)
  registry.gauge({ name: "etcd_cluster_version", help: "Which version is running. 1 for 'cluster_version' label with current cluster version", labelNames: ["cluster_version"] }).labels(etcdClusterVersion).set(1)
  registry
    .gauge({ name: "etcd_server_id", help: "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.", labelNames: ["server_id"] })
    .labels(server.memberId.toString(16))
    .set(1)
}
