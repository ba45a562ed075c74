import { expect, test } from "bun:test"
import { ProgressBar } from "./progress_bar"

test("ProgressBar.render() draws pb's counters, percent and time left as etcdctl prints them off a terminal", () => {
  let nowMs = 0
  const bar = new ProgressBar(60, () => nowMs)
  try {
    expect(bar.render()).toBe("\r0 / 60    0.00%")
    nowMs = 1000
    bar.add()
    expect(bar.render()).toBe("\r1 / 60    1.67% 00m59s")
    nowMs = 30_000
    bar.add(29)
    expect(bar.render()).toBe("\r30 / 60   50.00% 00m30s")
    nowMs = 60_400
    expect(bar.render(true)).toBe("\r30 / 60   50.00% 1m0s")
  } finally {
    bar.finish()
  }
})
