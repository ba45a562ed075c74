import { expect, test } from "bun:test"
import { H2ConnectionError } from "./frames"
import { HpackDecoder } from "./hpack_decoder"
import { encodeHeaders } from "./hpack_encoder"

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ""), "hex")

function decodeAll(decoder: HpackDecoder, block: Buffer): [string, string][] {
  const fields: [string, string][] = []
  decoder.decode(block, (name, value) => fields.push([name, value]))
  return fields
}

/** Decodes the blocks in order on one decoder: each gives its fields and leaves the table at its size. */
function expectBlocks(decoder: HpackDecoder, blocks: string[], fields: [string, string][][], tableBytes: number[]): void {
  blocks.forEach((block, i) => {
    expect(decodeAll(decoder, hex(block))).toEqual(fields[i]!)
    expect(decoder.tableBytes).toBe(tableBytes[i]!)
  })
}

const requests: [string, string][][] = [
  [[":method", "GET"], [":scheme", "http"], [":path", "/"], [":authority", "www.example.com"]],
  [[":method", "GET"], [":scheme", "http"], [":path", "/"], [":authority", "www.example.com"], ["cache-control", "no-cache"]],
  [[":method", "GET"], [":scheme", "https"], [":path", "/index.html"], [":authority", "www.example.com"], ["custom-key", "custom-value"]],
]
const requestTableBytes = [57, 110, 164]

test("HpackDecoder decodes RFC 7541 C.3 (requests without Huffman) and keeps the table size", () => {
  const decoder = new HpackDecoder()
  const blocks = [
    "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
    "8286 84be 5808 6e6f 2d63 6163 6865",
    "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
  ]
  expectBlocks(decoder, blocks, requests, requestTableBytes)
})

test("HpackDecoder decodes RFC 7541 C.4 (requests with Huffman)", () => {
  const decoder = new HpackDecoder()
  const blocks = ["8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff", "8286 84be 5886 a8eb 1064 9cbf", "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"]
  expectBlocks(decoder, blocks, requests, requestTableBytes)
})

const responses: [string, string][][] = [
  [[":status", "302"], ["cache-control", "private"], ["date", "Mon, 21 Oct 2013 20:13:21 GMT"], ["location", "https://www.example.com"]],
  [[":status", "307"], ["cache-control", "private"], ["date", "Mon, 21 Oct 2013 20:13:21 GMT"], ["location", "https://www.example.com"]],
  [
    [":status", "200"],
    ["cache-control", "private"],
    ["date", "Mon, 21 Oct 2013 20:13:22 GMT"],
    ["location", "https://www.example.com"],
    ["content-encoding", "gzip"],
    ["set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"],
  ],
]
const responseTableBytes = [222, 222, 215]

test("HpackDecoder decodes RFC 7541 C.5 (responses without Huffman, 256-byte table: evictions)", () => {
  const decoder = new HpackDecoder(256)
  const blocks = [
    "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
    "4803 3330 37c1 c0bf",
    "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31",
  ]
  expectBlocks(decoder, blocks, responses, responseTableBytes)
})

test("HpackDecoder decodes RFC 7541 C.6 (responses with Huffman, 256-byte table: evictions)", () => {
  const decoder = new HpackDecoder(256)
  const blocks = [
    "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
    "4883 640e ffc1 c0bf",
    "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
  ]
  expectBlocks(decoder, blocks, responses, responseTableBytes)
})

test("HpackDecoder applies a dynamic table size update at the start of a block and evicts", () => {
  const decoder = new HpackDecoder()
  decodeAll(decoder, hex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d"))
  expect(decoder.tableBytes).toBe(57)
  // 0x20: size update to 0 empties the table; then index 62 no longer exists
  expect(decodeAll(decoder, hex("20 82"))).toEqual([[":method", "GET"]])
  expect(decoder.tableBytes).toBe(0)
  expect(() => decodeAll(decoder, hex("be"))).toThrow(H2ConnectionError)
})

test("HpackDecoder refuses malformed blocks with COMPRESSION_ERROR", () => {
  const cases = {
    "index 0": "80",
    "index past the tables": "ff 00",
    "truncated integer": "ff",
    "string past the block": "40 05 61",
    "size update above the setting": "3f e2 1f", // 31 + 0x62 + (0x1f << 7) = 4097
    "size update after a field": "82 20",
    "bad Huffman padding": "40 81 00 81 00",
  }
  for (const [what, block] of Object.entries(cases)) {
    const decoder = new HpackDecoder()
    let error: unknown
    try {
      decodeAll(decoder, hex(block))
    } catch (e) {
      error = e
    }
    expect({ what, code: (error as H2ConnectionError | undefined)?.code }).toEqual({ what, code: 0x9 })
  }
})

test("encodeHeaders() output decodes back to the same fields (static indexes, literals, long values, repeated names)", () => {
  const headers = {
    ":status": 200,
    "content-type": "application/grpc",
    "grpc-message": "x".repeat(300),
    "set-cookie": ["a=1", "b=2"],
    "x-custom": "",
  }
  const fields = decodeAll(new HpackDecoder(), encodeHeaders(headers))
  expect(fields).toEqual([
    [":status", "200"],
    ["content-type", "application/grpc"],
    ["grpc-message", "x".repeat(300)],
    ["set-cookie", "a=1"],
    ["set-cookie", "b=2"],
    ["x-custom", ""],
  ])
  // :status 200 is static index 8, one byte
  expect(encodeHeaders({ ":status": 200 })).toEqual(Buffer.from([0x88]))
})

test("encodeHeaders() encodes a frozen header object once and returns the same block after", () => {
  const frozen = Object.freeze({ "grpc-status": "0" })
  expect(encodeHeaders(frozen)).toBe(encodeHeaders(frozen))
  const mutable: Record<string, string> = { "grpc-status": "0" }
  const first = encodeHeaders(mutable)
  mutable["grpc-status"] = "1"
  expect(encodeHeaders(mutable)).not.toEqual(first)
})

test("HpackDecoder.decodeMap() collects a repeated name into an array", () => {
  const block = encodeHeaders({ ":path": "/x", cookie: ["a", "b", "c"] })
  expect(new HpackDecoder().decodeMap(block)).toEqual({ ":path": "/x", cookie: ["a", "b", "c"] })
})
