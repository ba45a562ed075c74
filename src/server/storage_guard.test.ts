import { expect, test } from "bun:test"
import { StorageGuard } from "./storage_guard"

test("StorageGuard: full below the reserve, read-only, and back; check() says when the answer changed", () => {
  let free = 100 * 1024 * 1024
  let writable = true
  const guard = new StorageGuard({ freeBytes: () => free, writable: () => writable }, 8 * 1024 * 1024)
  expect(guard.problem()).toBeUndefined()
  expect(guard.check()).toBe(false)
  free = 3 * 1024 * 1024
  expect(guard.check()).toBe(true)
  expect(guard.problem()).toBe("no space left on the data dir's device (3.0 MiB free, 8 MiB needed)")
  expect(guard.check()).toBe(false)
  writable = false
  expect(guard.check()).toBe(true)
  expect(guard.problem()).toBe("the data dir is on a read-only file system")
  writable = true
  free = 9 * 1024 * 1024
  expect(guard.check()).toBe(true)
  expect(guard.problem()).toBeUndefined()
})

test("StorageGuard: a data dir that cannot be examined cannot take writes either", () => {
  const guard = new StorageGuard({ freeBytes: () => { throw new Error("ENOENT: no such file or directory, statfs") }, writable: () => true })
  guard.check()
  expect(guard.problem()).toBe("the data dir cannot be examined: ENOENT: no such file or directory, statfs")
})
