// scripts/bench as a test, so that it cannot rot: tiny by default (every case,
// half a second each, a few thousand keys), the full comparison with TSKV_BENCH=1.
import { expect, test } from "bun:test"
import { parseOptions, runBench } from "../../scripts/bench.js"

const full = process.env.TSKV_BENCH === "1"

test(
  "benchmark: scripts/bench drives etcd and tskv with the same load and checks every case",
  async () => {
    const o = full ? parseOptions([]) : parseOptions(["--quick", "--duration", "0.5", "--keys", "1000", "--watchers", "20"])
    const { rows, table } = await runBench(o, () => {})
    console.log(table)
    expect(rows.map((r) => r.case)).toEqual(["put1", `put${o.clients}`, "get-lin", "get-ser", "txn", "watch", `restart ${o.keys} keys`, "kube-load", "kube-mixed", `rss ${o.keys} keys`, `snapshot save ${o.keys} keys`, `snapshot restore ${o.keys} keys`])
    for (const row of rows) {
      for (const kind of ["etcd", "tskv"] as const) {
        const m = row[kind]
        expect(m, `${row.case} ${kind}`).toBeDefined()
        expect({ case: row.case, kind, error: m!.error }).toEqual({ case: row.case, kind, error: undefined })
        expect(m!.check.startsWith("ok"), `${row.case} ${kind}: ${m!.check}`).toBe(true)
        if (row.unit === "time") expect(m!.p50).toBeGreaterThan(0)
        else expect(m!.rate).toBeGreaterThan(0)
      }
    }
  },
  full ? 1_800_000 : 120_000,
)
