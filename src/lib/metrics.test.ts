import { expect, test } from "bun:test"
import { ETCD_DISK_BUCKETS, formatFloat, Registry, registerProcessMetrics } from "./metrics"

test("formatFloat() writes numbers as Go's %g does in client_golang", () => {
  expect(formatFloat(0)).toBe("0")
  expect(formatFloat(1)).toBe("1")
  expect(formatFloat(100000)).toBe("100000")
  expect(formatFloat(1000000)).toBe("1e+06")
  expect(formatFloat(2147483648)).toBe("2.147483648e+09")
  expect(formatFloat(0.001)).toBe("0.001")
  expect(formatFloat(0.0001)).toBe("0.0001")
  expect(formatFloat(0.00001)).toBe("1e-05")
  expect(formatFloat(1.5)).toBe("1.5")
  expect(formatFloat(-3)).toBe("-3")
  expect(formatFloat(Number.POSITIVE_INFINITY)).toBe("+Inf")
  expect(formatFloat(Number.NaN)).toBe("NaN")
})

test("Registry.expose() writes HELP/TYPE lines, sorted families, labels sorted by name, escaped label values", () => {
  const registry = new Registry()
  const requests = registry.counter({ name: "b_requests_total", help: "Requests.\nSecond line \\ here.", labelNames: ["type", "path"] })
  requests.labels("unary", 'a"b\\c\nd').inc()
  requests.labels("stream", "/x").inc(2)
  const gauge = registry.gauge({ name: "a_size_bytes", help: "Size." })
  gauge.set(2147483648)
  expect(registry.expose()).toBe(
    "# HELP a_size_bytes Size.\n# TYPE a_size_bytes gauge\na_size_bytes 2.147483648e+09\n" +
      "# HELP b_requests_total Requests.\\nSecond line \\\\ here.\n# TYPE b_requests_total counter\n" +
      'b_requests_total{path="/x",type="stream"} 2\n' +
      'b_requests_total{path="a\\"b\\\\c\\nd",type="unary"} 1\n',
  )
})

test("Histogram exposes cumulative buckets, +Inf, _sum and _count", () => {
  const registry = new Registry()
  const h = registry.histogram({ name: "d_seconds", help: "D.", buckets: [0.1, 1], labelNames: ["op"] })
  const child = h.labels("put")
  child.observe(0.05)
  child.observe(0.1)
  child.observe(0.5)
  child.observe(3)
  expect(registry.expose()).toBe(
    "# HELP d_seconds D.\n# TYPE d_seconds histogram\n" +
      'd_seconds_bucket{op="put",le="0.1"} 2\n' +
      'd_seconds_bucket{op="put",le="1"} 3\n' +
      'd_seconds_bucket{op="put",le="+Inf"} 4\n' +
      'd_seconds_sum{op="put"} 3.65\n' +
      'd_seconds_count{op="put"} 4\n',
  )
})

test("Histogram with etcd's disk buckets spans 1 ms to 8.192 s", () => {
  expect(ETCD_DISK_BUCKETS.length).toBe(14)
  expect(ETCD_DISK_BUCKETS[0]).toBe(0.001)
  expect(ETCD_DISK_BUCKETS[13]).toBe(8.192)
  const registry = new Registry()
  registry.histogram({ name: "etcd_disk_wal_fsync_duration_seconds", help: "x", buckets: ETCD_DISK_BUCKETS }).observe(0.003)
  const text = registry.expose()
  expect(text).toContain('etcd_disk_wal_fsync_duration_seconds_bucket{le="0.002"} 0\n')
  expect(text).toContain('etcd_disk_wal_fsync_duration_seconds_bucket{le="0.004"} 1\n')
  expect(text).toContain('etcd_disk_wal_fsync_duration_seconds_bucket{le="8.192"} 1\n')
})

test("callback gauges are read at scrape time", () => {
  const registry = new Registry()
  let value = 1
  registry.gauge({ name: "c_now", help: "C.", collect: () => value })
  expect(registry.expose()).toContain("c_now 1\n")
  value = 7
  expect(registry.expose()).toContain("c_now 7\n")
})

test("Registry refuses a duplicate family, bad names and a wrong label count", () => {
  const registry = new Registry()
  registry.counter({ name: "x_total", help: "X." })
  expect(() => registry.counter({ name: "x_total", help: "X." })).toThrow("registered twice")
  expect(() => registry.counter({ name: "bad-name", help: "X." })).toThrow("invalid metric name")
  expect(() => registry.counter({ name: "y_total", help: "Y.", labelNames: ["__x"] })).toThrow("invalid label name")
  const labelled = registry.counter({ name: "z_total", help: "Z.", labelNames: ["a"] })
  expect(() => labelled.labels()).toThrow("expected 1 label values")
})

test("registerProcessMetrics() exposes process_* from /proc", () => {
  const registry = new Registry()
  registerProcessMetrics(registry)
  const text = registry.expose()
  for (const name of ["process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds", "process_max_fds", "process_start_time_seconds", "process_virtual_memory_bytes"]) {
    expect(text).toMatch(new RegExp(`\\n${name} [0-9.e+]+\\n`))
  }
  expect(text).toContain("# TYPE process_cpu_seconds_total counter\n")
})

test("CounterChild.inc() allocates nothing on the hot path", () => {
  const registry = new Registry()
  const child = registry.counter({ name: "hot_total", help: "H.", labelNames: ["m"] }).labels("put")
  for (let i = 0; i < 1000; i++) child.inc()
  Bun.gc(true)
  const before = process.memoryUsage().heapUsed
  for (let i = 0; i < 1_000_000; i++) child.inc()
  const grown = process.memoryUsage().heapUsed - before
  expect(child.value).toBe(1_001_000)
  expect(grown).toBeLessThan(1_000_000)
})
