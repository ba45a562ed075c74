// Hot-path codec benchmarks. Tiny in every `bun test`; full size with TSKV_BENCH=1.
import { expect, test } from "bun:test"
import {
  decodePutRequest,
  decodeRangeResponse,
  encodePutRequest,
  encodePutResponse,
  encodeRangeResponse,
  type KeyValue,
} from "./index"

const full = process.env.TSKV_BENCH === "1"
const count = (tiny: number, big: number): number => (full ? big : tiny)

/** Reports wall and CPU time per op (CPU time is steadier on a shared machine). */
function report(name: string, ops: number, elapsedMs: number, cpu: NodeJS.CpuUsage, check: number): void {
  const nsPerOp = (elapsedMs * 1e6) / ops
  const cpuNsPerOp = ((cpu.user + cpu.system) * 1e3) / ops
  console.log(`benchmark: ${name}: ${ops} ops, ${nsPerOp.toFixed(0)} ns/op wall, ${cpuNsPerOp.toFixed(0)} ns/op cpu (check ${check})`)
}

const header = { clusterId: 0x1c2d3e4f5a6b7c8dn, memberId: 0x8e7d6c5b4a392817n, revision: 123456, raftTerm: 7 }

test("benchmark: PutRequest decode + PutResponse encode", () => {
  const n = count(1_000, 2_000_000)
  const request = encodePutRequest({ key: Buffer.from("/registry/pods/default/pod-12345"), value: Buffer.alloc(256, 97) })
  let check = 0
  const start = performance.now()
  const cpu = process.cpuUsage()
  for (let i = 0; i < n; i++) {
    const req = decodePutRequest(request)
    const res = encodePutResponse({ header: { ...header, revision: header.revision + i } })
    check += req.value.length + res.length
  }
  report("PutRequest decode + PutResponse encode", n, performance.now() - start, process.cpuUsage(cpu), check)
  expect(check).toBeGreaterThan(0)
}, 120_000)

test("benchmark: RangeResponse with 100 kvs encode", () => {
  const n = count(100, 100_000)
  const kvs: KeyValue[] = Array.from({ length: 100 }, (_, i) => ({
    key: Buffer.from(`/registry/pods/default/pod-${i}`),
    value: Buffer.alloc(256, i),
    createRevision: 1000 + i,
    modRevision: 2000 + i,
    version: 3,
    lease: i % 2 === 0 ? 0n : 0x694d7b1c2e3f4a5bn,
  }))
  let check = 0
  const start = performance.now()
  const cpu = process.cpuUsage()
  for (let i = 0; i < n; i++) check += encodeRangeResponse({ header, kvs, count: 100 }).length
  report("RangeResponse 100 kvs encode", n, performance.now() - start, process.cpuUsage(cpu), check)
  expect(decodeRangeResponse(encodeRangeResponse({ header, kvs, count: 100 })).kvs.length).toBe(100)
}, 120_000)

test("benchmark: RangeResponse with 100 kvs decode", () => {
  const n = count(100, 100_000)
  const kvs: KeyValue[] = Array.from({ length: 100 }, (_, i) => ({
    key: Buffer.from(`/registry/pods/default/pod-${i}`),
    value: Buffer.alloc(256, i),
    createRevision: 1000 + i,
    modRevision: 2000 + i,
    version: 3,
    lease: 0n,
  }))
  const bytes = encodeRangeResponse({ header, kvs, count: 100 })
  let check = 0
  const start = performance.now()
  const cpu = process.cpuUsage()
  for (let i = 0; i < n; i++) check += decodeRangeResponse(bytes).kvs.length
  report("RangeResponse 100 kvs decode", n, performance.now() - start, process.cpuUsage(cpu), check)
  expect(check).toBe(n * 100)
}, 120_000)
