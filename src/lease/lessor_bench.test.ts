import { expect, test } from "bun:test"
import { Backend } from "../backend/backend"
import { FakeClock } from "../lib/clock"
import { utf8 } from "../lib/bytes"
import { Lessor } from "./lessor"

const full = process.env.TSKV_BENCH === "1"

test("benchmark: lessor grant, attach, expire and revoke leases", () => {
  const count = full ? 100_000 : 1_000
  const backend = Backend.open({ path: ":memory:" })
  const clock = new FakeClock()
  let deleted = 0
  const lessor = new Lessor({ backend, clock, deleteKeys: (keys) => (deleted += keys.length), minTtlSeconds: 2, revokeRatePerSecond: 1e9 })
  lessor.promote(0)
  let started = performance.now()
  for (let i = 1; i <= count; i++) {
    lessor.grant(BigInt(i), 10 + (i % 50))
    lessor.attach(BigInt(i), utf8(`key/${i}`))
  }
  backend.commit()
  const grantMs = performance.now() - started
  clock.advance(3_600_000)
  started = performance.now()
  const expired = lessor.expired(count)
  for (const id of expired) lessor.revoke(id)
  backend.commit()
  const expireMs = performance.now() - started
  console.log(JSON.stringify({ count, grantAttachPerSec: Math.round(count / (grantMs / 1000)), expireRevokePerSec: Math.round(count / (expireMs / 1000)) }))
  expect(deleted).toBe(count)
  backend.close()
}, 120_000)
