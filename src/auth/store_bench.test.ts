import { expect, test } from "bun:test"
import { Backend } from "../backend/backend"
import { FakeClock } from "../lib/clock"
import { utf8 } from "../lib/bytes"
import { AuthStore } from "./store"
import { newAuthSecret } from "./tokens"
import { PermissionType } from "./types"

const full = process.env.TSKV_BENCH === "1"

test("benchmark: permission checks against a user with many range permissions", () => {
  const perms = full ? 10_000 : 200
  const checks = full ? 1_000_000 : 10_000
  const backend = Backend.open({ path: ":memory:" })
  const auth = new AuthStore({ backend, clock: new FakeClock() })
  auth.userAdd({ name: "root", hashedPassword: "", options: { noPassword: true } })
  auth.userGrantRole({ user: "root", role: "root" })
  auth.userAdd({ name: "u", hashedPassword: "", options: { noPassword: true } })
  auth.roleAdd("r")
  for (let i = 0; i < perms; i++) {
    const k = `p/${String(i).padStart(6, "0")}/`
    auth.roleGrantPermission({ name: "r", perm: { permType: PermissionType.READWRITE, key: utf8(k), rangeEnd: utf8(`${k}~`) } })
  }
  auth.userGrantRole({ user: "u", role: "r" })
  auth.enable(newAuthSecret())
  const info = { username: "u", revision: auth.revision() }
  const keys = Array.from({ length: 1024 }, (_, i) => utf8(`p/${String((i * 7919) % perms).padStart(6, "0")}/x`))
  const empty = new Uint8Array(0)
  let allowed = 0
  const started = performance.now()
  for (let i = 0; i < checks; i++) {
    auth.isRangePermitted(info, keys[i & 1023]!, empty)
    allowed++
  }
  const ms = performance.now() - started
  console.log(JSON.stringify({ perms, checks, checksPerSec: Math.round(checks / (ms / 1000)) }))
  expect(allowed).toBe(checks)
  backend.close()
}, 120_000)
