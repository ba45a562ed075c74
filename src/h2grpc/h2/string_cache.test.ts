import { expect, test } from "bun:test"
import { huffmanEncode } from "./hpack_huffman"
import { HpackDecoder } from "./hpack_decoder"
import { StringCache } from "./string_cache"

const bytes = (s: string): Uint8Array => Buffer.from(s, "latin1")

test("StringCache.get() finds a string by its exact bytes and coding, at any offset", () => {
  const cache = new StringCache()
  cache.set(bytes("xx/etcdserverpb.KV/Put"), 2, 22, false, "/etcdserverpb.KV/Put")
  expect(cache.get(bytes("/etcdserverpb.KV/Put"), 0, 20, false)).toBe("/etcdserverpb.KV/Put")
  expect(cache.get(bytes("/etcdserverpb.KV/Put"), 0, 20, true)).toBeUndefined()
  expect(cache.get(bytes("/etcdserverpb.KV/Pux"), 0, 20, false)).toBeUndefined()
  expect(cache.get(bytes("/etcdserverpb.KV/Pu"), 0, 19, false)).toBeUndefined()
})

test("StringCache keeps no long strings and stays bounded whatever it is fed", () => {
  const cache = new StringCache()
  const long = bytes("v".repeat(65))
  cache.set(long, 0, long.length, false, "v".repeat(65))
  expect(cache.get(long, 0, long.length, false)).toBeUndefined()
  for (let i = 0; i < 5000; i++) {
    const b = bytes(`value-${i}`)
    cache.set(b, 0, b.length, false, `value-${i}`)
  }
  expect(cache.size).toBeLessThanOrEqual(1024)
})

test("HpackDecoder gives the same fields for literals sent again (cached), Huffman-coded or raw", () => {
  const decoder = new HpackDecoder()
  const path = bytes("/etcdserverpb.KV/Put")
  const coded = huffmanEncode(path)
  // literal without indexing, name :path (static index 4): Huffman-coded, then raw
  const huffmanBlock = Buffer.concat([Buffer.from([0x04, 0x80 | coded.length]), coded])
  const rawBlock = Buffer.concat([Buffer.from([0x04, path.length]), path])
  for (let i = 0; i < 3; i++) {
    expect(decoder.decodeMap(huffmanBlock)).toEqual({ ":path": "/etcdserverpb.KV/Put" })
    expect(decoder.decodeMap(rawBlock)).toEqual({ ":path": "/etcdserverpb.KV/Put" })
  }
  // a corrupt Huffman code is refused every time, not cached
  const bad = Buffer.from([0x04, 0x81, 0x00])
  for (let i = 0; i < 2; i++) expect(() => decoder.decodeMap(bad)).toThrow("bad Huffman code")
})
