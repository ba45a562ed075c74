// The member's core Prometheus series, with etcd's names (reference §4), read
// from the server when scraped (callback gauges and counters): nothing is
// added to the write path for them.

import { etcdApiVersion, etcdClusterVersion } from "../config/version"
import { readdirSync, readFileSync } from "node:fs"
import { ETCD_DISK_BUCKETS, exponentialBuckets, type Registry } from "../lib/metrics"
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
  const n = server.counters
  c("etcd_server_heartbeat_send_failures_total", "The total number of leader heartbeat send failures (likely overloaded from slow disk).", () => n.heartbeatSendFailures)
  c("etcd_server_slow_read_indexes_total", "The total number of pending read indexes not in sync with leader's or timed out read index requests.", () => n.slowReadIndexes)
  c("etcd_server_read_indexes_failed_total", "The total number of failed read indexes seen.", () => n.readIndexesFailed)
  g("etcd_server_snapshot_apply_in_progress_total", "1 if the server is applying the incoming snapshot. 0 if none.", () => n.snapshotApplyInProgress)
  c("etcd_mvcc_put_total", "Total number of puts seen by this member.", () => n.mvccPut)
  c("etcd_mvcc_delete_total", "Total number of deletes seen by this member.", () => n.mvccDelete)
  c("etcd_mvcc_range_total", "Total number of ranges seen by this member.", () => n.mvccRange)
  c("etcd_mvcc_txn_total", "Total number of txns seen by this member.", () => n.mvccTxn)
  c("etcd_debugging_lease_granted_total", "The total number of granted leases.", () => n.leaseGranted)
  c("etcd_debugging_lease_renewed_total", "The number of renewed leases seen by the leader.", () => n.leaseRenewed)
  c("etcd_debugging_lease_revoked_total", "The total number of revoked leases.", () => n.leaseRevoked)
  c("etcd_debugging_server_lease_expired_total", "The total number of expired leases.", () => n.leaseExpired)
  g("etcd_debugging_mvcc_watcher_total", "Total number of watchers.", () => {
    const w = server.watchable.watcherCount()
    return w.synced + w.unsynced
  })
  g("etcd_debugging_mvcc_slow_watcher_total", "Total number of unsynced slow watchers.", () => server.watchable.watcherCount().unsynced)
  g("etcd_debugging_mvcc_watch_stream_total", "Total number of watch streams.", () => server.watchable.streamCount())
  // Events never wait in memory here: a stream that cannot take more is parked and re-reads history later.
  g("etcd_debugging_mvcc_pending_events_total", "Total number of pending events to be sent.", () => 0)
  // a gauge in etcd 3.4 (Set from the WAL's counter), so a gauge here too
  g("etcd_disk_wal_write_bytes_total", "Total number of bytes written in WAL.", () => server.walBytesWritten())
  registerEtcd34Debugging(registry, server)
  const diskBuckets = ETCD_DISK_BUCKETS
  const walFsync = registry.histogram({ name: "etcd_disk_wal_fsync_duration_seconds", help: "The latency distributions of fsync called by WAL.", buckets: diskBuckets }).labels()
  const commit = registry.histogram({ name: "etcd_disk_backend_commit_duration_seconds", help: "The latency distributions of commit called by backend.", buckets: diskBuckets }).labels()
  const defrag = registry
    .histogram({ name: "etcd_disk_backend_defrag_duration_seconds", help: "The latency distribution of backend defragmentation.", buckets: exponentialBuckets(0.1, 2, 13) })
    .labels()
  const snapshot = registry
    .histogram({ name: "etcd_disk_backend_snapshot_duration_seconds", help: "The latency distribution of backend snapshots.", buckets: exponentialBuckets(0.01, 2, 17) })
    .labels()
  server.onWalSync = (ms) => walFsync.observe(ms / 1000)
  server.backend.onCommit = (ms) => commit.observe(ms / 1000)
  server.onDefrag = (ms) => defrag.observe(ms / 1000)
  server.onBackendSnapshot = (ms) => snapshot.observe(ms / 1000)
  g("os_fd_used", "The number of used file descriptors.", () => openFdCount())
  g("os_fd_limit", "The file descriptor limit.", () => fdLimit())
  registry.gauge({ name: "etcd_server_version", help: "Which version is running. 1 for 'server_version' label with current version.", labelNames: ["server_version"] }).labels(etcdApiVersion).set(1)
  registry.gauge({ name: "etcd_cluster_version", help: "Which version is running. 1 for 'cluster_version' label with current cluster version", labelNames: ["cluster_version"] }).labels(etcdClusterVersion).set(1)
  registry
    .gauge({ name: "etcd_server_id", help: "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.", labelNames: ["server_id"] })
    .labels(server.memberId.toString(16))
    .set(1)
}

function openFdCount(): number {
  try {
    return readdirSync("/proc/self/fd").length
  } catch {
    return 0
  }
}

function fdLimit(): number {
  try {
    const line = readFileSync("/proc/self/limits", "utf8").split("\n").find((l) => l.startsWith("Max open files"))
    return Number(line?.split(/\s+/)[3] ?? 0)
  } catch {
    return 0
  }
}

/** etcd 3.4's etcd_debugging_* and the other families the dashboards and `etcd --metrics` users read. */
function registerEtcd34Debugging(registry: Registry, server: EtcdServer): void {
  const n = server.counters
  const c = (name: string, help: string, collect: () => number): void => {
    registry.counter({ name, help, collect })
  }
  const g = (name: string, help: string, collect: () => number): void => {
    registry.gauge({ name, help, collect })
  }
  // the same counts as etcd_mvcc_*: etcd 3.4 keeps both names
  c("etcd_debugging_mvcc_put_total", "Total number of puts seen by this member.", () => n.mvccPut)
  c("etcd_debugging_mvcc_delete_total", "Total number of deletes seen by this member.", () => n.mvccDelete)
  c("etcd_debugging_mvcc_range_total", "Total number of ranges seen by this member.", () => n.mvccRange)
  c("etcd_debugging_mvcc_txn_total", "Total number of txns seen by this member.", () => n.mvccTxn)
  g("etcd_debugging_mvcc_db_total_size_in_bytes", "Total size of the underlying database physically allocated in bytes.", () => server.backend.sizeBytes())
  g("etcd_debugging_mvcc_total_put_size_in_bytes", "The total size of put kv pairs seen by this member.", () => n.mvccPutBytes)
  c("etcd_debugging_mvcc_events_total", "Total number of events sent by this member.", () => server.watchable.eventsSent)
  g("etcd_debugging_auth_revision", "The current revision of auth store.", () => server.auth?.revision() ?? 0)
  g("etcd_disk_defrag_inflight", "Whether or not defrag is active on the member. 1 means active, 0 means not.", () => n.defragInflight)
  c("etcd_server_learner_promote_successes", "The total number of successful learner promotions while this member is leader.", () => n.learnerPromotes)
  registry
    .gauge({ name: "etcd_server_go_version", help: "Which Go version server is running with. 1 for 'server_go_version' label with current version.", labelNames: ["server_go_version"] })
    .labels(`bun${Bun.version}`)
    .set(1)
  const histogram = (name: string, help: string, buckets: readonly number[]) => registry.histogram({ name, help, buckets }).labels()
  const leaseTtl = histogram("etcd_debugging_lease_ttl_total", "Bucketed histogram of lease TTLs.", exponentialBuckets(1, 2, 24))
  server.onLeaseGrant = (ttl) => leaseTtl.observe(ttl)
  const hash = histogram("etcd_mvcc_hash_duration_seconds", "The latency distribution of storage hash operation.", exponentialBuckets(0.01, 2, 15))
  const hashRev = histogram("etcd_mvcc_hash_rev_duration_seconds", "The latency distribution of storage hash by revision operation.", exponentialBuckets(0.01, 2, 15))
  const compactedKeys = registry.counter({ name: "etcd_debugging_mvcc_db_compaction_keys_total", help: "Total number of db keys compacted." })
  const pause = histogram("etcd_debugging_mvcc_db_compaction_pause_duration_milliseconds", "Bucketed histogram of db compaction pause duration.", exponentialBuckets(1, 2, 13))
  const total = histogram("etcd_debugging_mvcc_db_compaction_total_duration_milliseconds", "Bucketed histogram of db compaction total duration.", exponentialBuckets(100, 2, 14))
  const index = histogram("etcd_debugging_mvcc_index_compaction_pause_duration_milliseconds", "Bucketed histogram of index compaction pause duration.", exponentialBuckets(0.5, 2, 14))
  const snapBuckets = exponentialBuckets(0.001, 2, 14)
  const snapFsync = histogram("etcd_snap_fsync_duration_seconds", "The latency distributions of fsync called by snap.", snapBuckets)
  const snapMarshal = histogram("etcd_debugging_snap_save_marshalling_duration_seconds", "The marshalling cost distributions of save called by snapshot.", snapBuckets)
  const snapTotal = histogram("etcd_debugging_snap_save_total_duration_seconds", "The total latency distributions of save called by snapshot.", snapBuckets)
  server.snapshotter.onSave = (t) => {
    snapMarshal.observe(t.marshallingMs / 1000)
    snapFsync.observe(t.fsyncMs / 1000)
    snapTotal.observe(t.totalMs / 1000)
  }
  const dbFsync = histogram("etcd_snap_db_fsync_duration_seconds", "The latency distributions of fsyncing .snap.db file", snapBuckets)
  const dbSave = histogram("etcd_snap_db_save_total_duration_seconds", "The total latency distributions of v3 snapshot save", exponentialBuckets(0.1, 2, 10))
  server.onSnapshotDbSaved = (fsyncMs, saveMs) => {
    dbFsync.observe(fsyncMs / 1000)
    dbSave.observe(saveMs / 1000)
  }
  server.store.observer = {
    hash: (ms) => hash.observe(ms / 1000),
    hashKV: (ms) => hashRev.observe(ms / 1000),
    compactIndex: (ms) => index.observe(ms),
    compactStep: (step) => {
      compactedKeys.inc(step.deleted)
      pause.observe(step.ms)
      if (step.totalMs !== undefined) total.observe(step.totalMs)
    },
  }
}
