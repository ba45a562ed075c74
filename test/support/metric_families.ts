// Prometheus text exposition, parsed into families (name -> type and the
// sets of label names its samples carry), for tests that diff /metrics of
// tskv against etcd 3.4's, and the families that differ with the reason
// (README "Metrics" lists the same).

export interface Family {
  type: string
  /** Each distinct set of label names (sorted, joined by ","; `le` and `quantile` left out). */
  labelSets: Set<string>
  samples: number
}

export function parseFamilies(text: string): Map<string, Family> {
  const families = new Map<string, Family>()
  for (const line of text.split("\n")) {
    const typed = /^# TYPE (\S+) (\S+)$/.exec(line)
    if (typed !== null) {
      families.set(typed[1]!, { type: typed[2]!, labelSets: new Set(), samples: 0 })
      continue
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})? \S+$/.exec(line)
    if (m === null) continue
    let name = m[1]!
    if (!families.has(name)) name = name.replace(/_(bucket|sum|count)$/, "")
    const family = families.get(name)
    if (family === undefined) continue
    const labels = [...(m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)].map((x) => x[1]!).filter((l) => l !== "le" && l !== "quantile")
    family.labelSets.add(labels.sort().join(","))
    family.samples++
  }
  return families
}

/** etcd 3.4 families tskv does not expose, and why. */
export const ABSENT_FAMILIES: Record<string, string> = {
  etcd_debugging_disk_backend_commit_rebalance_duration_seconds: "bbolt's B+tree rebalance phase; SQLite commits have no such phase",
  etcd_debugging_disk_backend_commit_spill_duration_seconds: "bbolt's spill phase; SQLite commits have no such phase",
  etcd_debugging_disk_backend_commit_write_duration_seconds: "bbolt's page write phase; the whole SQLite commit is etcd_disk_backend_commit_duration_seconds",
  etcd_debugging_store_expires_total: "etcd's v2 store counters; tskv's v2 store (--enable-v2) does not count them",
  etcd_debugging_store_reads_total: "etcd's v2 store counters; tskv's v2 store (--enable-v2) does not count them",
  etcd_debugging_store_watch_requests_total: "etcd's v2 store counters; tskv's v2 store (--enable-v2) does not count them",
  etcd_debugging_store_watchers: "etcd's v2 store counters; tskv's v2 store (--enable-v2) does not count them",
  etcd_debugging_store_writes_total: "etcd's v2 store counters; tskv's v2 store (--enable-v2) does not count them",
  etcd_grpc_proxy_cache_hits_total: "the gRPC proxy (etcd grpc-proxy) is not part of tskv; etcd registers them in the server too, always 0",
  etcd_grpc_proxy_cache_keys_total: "the gRPC proxy is not part of tskv",
  etcd_grpc_proxy_cache_misses_total: "the gRPC proxy is not part of tskv",
  etcd_grpc_proxy_events_coalescing_total: "the gRPC proxy is not part of tskv",
  etcd_grpc_proxy_watchers_coalescing_total: "the gRPC proxy is not part of tskv",
  etcd_mvcc_db_open_read_transactions:
    "reads are synchronous SQLite statements: no read transaction stays open across a scrape, so the gauge would be 0 forever",
}

/** tskv families etcd 3.4 does not expose, and why. */
export const EXTRA_FAMILIES: Record<string, string> = {
  etcd_server_alarm_nospace: "tskv: 1 while the NOSPACE alarm is raised",
  etcd_server_healthcheck: "etcd 3.5's per-check /livez and /readyz result",
  etcd_server_healthchecks_total: "etcd 3.5's per-check /livez and /readyz counts",
}
