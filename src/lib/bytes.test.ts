import { expect, test } from "bun:test"
import { keyString } from "./bytes"

test("keyString() gives one char per byte and a distinct string for every byte and byte string", () => {
  const all = Uint8Array.from({ length: 256 }, (_, i) => i)
  const s = keyString(all)
  expect(s.length).toBe(256)
  expect(new Set(s).size).toBe(256)
  const seen = new Set<string>()
  // Every string of up to two bytes: 1 + 256 + 65536 distinct keys.
  seen.add(keyString(new Uint8Array(0)))
  for (let a = 0; a < 256; a++) {
    seen.add(keyString(Uint8Array.of(a)))
    for (let b = 0; b < 256; b++) seen.add(keyString(Uint8Array.of(a, b)))
  }
  expect(seen.size).toBe(1 + 256 + 65536)
})

test("keyString() reads only the view's own bytes", () => {
  const backing = Uint8Array.of(1, 2, 3, 4, 5)
  expect(keyString(backing.subarray(1, 3))).toBe(keyString(Uint8Array.of(2, 3)))
  expect(keyString(Buffer.from([0x80, 0xff]))).toBe(keyString(Uint8Array.of(0x80, 0xff)))
})
