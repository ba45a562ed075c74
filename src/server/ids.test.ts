import { expect, test } from "bun:test"
import { computeClusterId, computeMemberId, formatId } from "./ids"

// Observed on etcd 3.4.23 (etcd --name n1 --initial-cluster n1=http://127.0.0.1:42380, default
// token "etcd-cluster"): member id 7383792418829112008 (667880157b8812c8), cluster id 15875391935852295136.
test("computeMemberId() derives etcd's member id from peer URLs and token", () => {
  expect(formatId(computeMemberId(["http://127.0.0.1:42380"], "etcd-cluster"))).toBe("667880157b8812c8")
})

test("computeClusterId() derives etcd's cluster id from the member ids", () => {
  const id = computeMemberId(["http://127.0.0.1:42380"], "etcd-cluster")
  expect(computeClusterId([id])).toBe(15875391935852295136n)
})

test("computeMemberId() ignores the order of peer URLs and mixes in the time for runtime additions", () => {
  const a = computeMemberId(["http://b:2380", "http://a:2380"], "t")
  expect(computeMemberId(["http://a:2380", "http://b:2380"], "t")).toBe(a)
  expect(computeMemberId(["http://a:2380", "http://b:2380"], "t", 1700000000)).not.toBe(a)
})
