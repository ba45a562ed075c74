import { expect, test } from "bun:test"
import { prefixEnd, utf8 } from "../lib/bytes"
import { seededPrng } from "../lib/prng"
import { RangePermissions, isOpenEnded, isValidPermissionRange } from "./range_perms"
import { type Permission, PermissionType } from "./types"

const { READ, WRITE, READWRITE } = PermissionType
const perm = (permType: PermissionType, key: string | Uint8Array, rangeEnd: string | Uint8Array = ""): Permission => ({
  permType,
  key: typeof key === "string" ? utf8(key) : key,
  rangeEnd: typeof rangeEnd === "string" ? utf8(rangeEnd) : rangeEnd,
})
const prefix = (permType: PermissionType, p: string): Permission => perm(permType, p, prefixEnd(utf8(p)))
const Z = new Uint8Array([0])
const reads = (perms: RangePermissions, key: string | Uint8Array, end: string | Uint8Array = "") =>
  perms.permits(READ, typeof key === "string" ? utf8(key) : key, typeof end === "string" ? utf8(end) : end)

test("RangePermissions: a single-key permission covers that key only", () => {
  const p = new RangePermissions([perm(READ, "a")])
  expect(reads(p, "a")).toBe(true)
  expect(reads(p, "a\0")).toBe(false)
  expect(reads(p, "b")).toBe(false)
  expect(reads(p, "a", "a\0")).toBe(true) // [a, a\0) is exactly the key a
  expect(reads(p, "a", "a\0\0")).toBe(false)
})

test("RangePermissions: range ends that widen a permitted prefix are refused ('\\0', larger end)", () => {
  const p = new RangePermissions([prefix(READ, "app/")])
  expect(reads(p, "app/x")).toBe(true)
  expect(reads(p, "app/", "app0")).toBe(true)
  expect(reads(p, "app/a", "app/b")).toBe(true)
  expect(reads(p, "app/", Z)).toBe(false) // from-key: everything after app/
  expect(reads(p, Z, Z)).toBe(false) // the whole keyspace
  expect(reads(p, "app/", "app1")).toBe(false)
  expect(reads(p, "app", "app0")).toBe(false) // starts before the prefix
  expect(reads(p, "app0")).toBe(false)
})

test("RangePermissions: an empty range end means one key, not a range", () => {
  const p = new RangePermissions([prefix(READ, "k")])
  expect(reads(p, "k", "")).toBe(true)
  const none = new RangePermissions([])
  expect(reads(none, "k", "")).toBe(false)
})

test("RangePermissions: a request is allowed when the union of several roles' intervals covers it", () => {
  const p = new RangePermissions([perm(READ, "a", "c"), perm(READ, "c", "e"), perm(READWRITE, "e", "g")])
  expect(reads(p, "a", "g")).toBe(true) // touching intervals merge
  expect(reads(p, "b", "f")).toBe(true)
  const gap = new RangePermissions([perm(READ, "a", "c"), perm(READ, "d", "g")])
  expect(reads(gap, "a", "g")).toBe(false)
  expect(reads(gap, "c")).toBe(false)
  expect(reads(gap, "d", "e")).toBe(true)
})

test("RangePermissions: READ and WRITE are separate; READWRITE gives both", () => {
  const p = new RangePermissions([perm(READ, "r"), perm(WRITE, "w"), perm(READWRITE, "rw")])
  expect(p.permits(READ, utf8("r"), new Uint8Array())).toBe(true)
  expect(p.permits(WRITE, utf8("r"), new Uint8Array())).toBe(false)
  expect(p.permits(WRITE, utf8("w"), new Uint8Array())).toBe(true)
  expect(p.permits(READ, utf8("w"), new Uint8Array())).toBe(false)
  expect(p.permits(READ, utf8("rw"), new Uint8Array())).toBe(true)
  expect(p.permits(WRITE, utf8("rw"), new Uint8Array())).toBe(true)
})

test("RangePermissions: an open-ended permission ('\\0') covers from-key requests", () => {
  const p = new RangePermissions([perm(READ, "m", Z)])
  expect(reads(p, "m", Z)).toBe(true)
  expect(reads(p, "n", Z)).toBe(true)
  expect(reads(p, "l", Z)).toBe(false)
  expect(reads(p, "zzz", "zzzz")).toBe(true)
  const all = new RangePermissions([perm(READ, Z, Z)])
  expect(reads(all, Z, Z)).toBe(true)
  expect(reads(all, "anything")).toBe(true)
})

test("RangePermissions: an inverted request range is allowed only if its key is", () => {
  const p = new RangePermissions([perm(READ, "b")])
  expect(reads(p, "b", "a")).toBe(true)
  expect(reads(p, "c", "a")).toBe(false)
})

test("RangePermissions: permissions with an inverted range grant nothing", () => {
  const p = new RangePermissions([perm(READ, "c", "b")])
  expect(reads(p, "c")).toBe(false)
  expect(reads(p, "b")).toBe(false)
})

test("isValidPermissionRange() follows etcd 3.5+: non-empty key; end empty, '\\0' or above the key", () => {
  expect(isValidPermissionRange(utf8("a"), utf8(""))).toBe(true)
  expect(isValidPermissionRange(utf8("a"), utf8("b"))).toBe(true)
  expect(isValidPermissionRange(utf8("a"), Z)).toBe(true)
  expect(isValidPermissionRange(Z, Z)).toBe(true)
  expect(isValidPermissionRange(utf8(""), utf8("b"))).toBe(false)
  expect(isValidPermissionRange(utf8("b"), utf8("a"))).toBe(false)
  expect(isValidPermissionRange(utf8("a"), utf8("a"))).toBe(false)
})

test("RangePermissions agrees with a brute-force check over every key of a small keyspace (randomized)", () => {
  const seed = Number(process.env.TSKV_SEED ?? Date.now() % 1_000_000)
  console.log(`RangePermissions model seed ${seed}`)
  const prng = seededPrng(seed)
  const alphabet = [0x00, 0x61, 0x62, 0xff]
  const randomKey = (min: number): Uint8Array => {
    const len = min + prng.int(3 - min)
    return Uint8Array.from({ length: len }, () => alphabet[prng.int(alphabet.length)]!)
  }
  // Every key up to 4 bytes: endpoints are at most 3 bytes (+1 for a point permission's end),
  // so any uncovered stretch starts at a key of this universe.
  const universe: Uint8Array[] = []
  const grow = (prefix: number[]) => {
    if (prefix.length > 0) universe.push(Uint8Array.from(prefix))
    if (prefix.length < 4) for (const b of alphabet) grow([...prefix, b])
  }
  grow([])
  const inRange = (k: Uint8Array, key: Uint8Array, end: Uint8Array): boolean => {
    if (end.length === 0) return Buffer.compare(k, key) === 0
    if (isOpenEnded(end)) return Buffer.compare(k, key) >= 0
    return Buffer.compare(k, key) >= 0 && Buffer.compare(k, end) < 0
  }
  for (let round = 0; round < 300; round++) {
    const perms: Permission[] = []
    const n = prng.int(5)
    for (let i = 0; i < n; i++) {
      const key = randomKey(1)
      const kind = prng.int(3)
      const end = kind === 0 ? new Uint8Array() : kind === 1 ? Z : randomKey(1)
      if (!isValidPermissionRange(key, end)) continue
      perms.push({ permType: READ, key, rangeEnd: end })
    }
    const p = new RangePermissions(perms)
    for (let q = 0; q < 20; q++) {
      const key = randomKey(1)
      const kind = prng.int(3)
      const end = kind === 0 ? new Uint8Array() : kind === 1 ? Z : randomKey(1)
      const inverted = end.length > 0 && !isOpenEnded(end) && Buffer.compare(end, key) <= 0
      const probe = inverted ? new Uint8Array() : end
      const expected = universe.every((k) => !inRange(k, key, probe) || perms.some((perm) => inRange(k, perm.key, perm.rangeEnd)))
      expect({ seed, round, perms, key, end, allowed: p.permits(READ, key, end) }).toEqual({ seed, round, perms, key, end, allowed: expected })
    }
  }
})
