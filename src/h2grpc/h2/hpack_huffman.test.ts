import { expect, test } from "bun:test"
import { huffmanDecode, huffmanEncode, huffmanEncodedLength } from "./hpack_huffman"

const text = (s: string): Uint8Array => new TextEncoder().encode(s)
const hex = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h.replace(/ /g, ""), "hex"))

// RFC 7541 Appendix C.4 and C.6 request/response examples
const vectors: [string, string][] = [
  ["www.example.com", "f1e3 c2e5 f23a 6ba0 ab90 f4ff"],
  ["no-cache", "a8eb 1064 9cbf"],
  ["custom-key", "25a8 49e9 5ba9 7d7f"],
  ["custom-value", "25a8 49e9 5bb8 e8b4 bf"],
  ["302", "6402"],
  ["private", "aec3 771a 4b"],
  ["Mon, 21 Oct 2013 20:13:21 GMT", "d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff"],
  ["https://www.example.com", "9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3"],
  ["foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1", "94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07"],
]

test("huffmanDecode() and huffmanEncode() match the RFC 7541 Appendix C examples", () => {
  for (const [plain, coded] of vectors) {
    expect(Buffer.from(huffmanEncode(text(plain))).toString("hex")).toBe(Buffer.from(hex(coded)).toString("hex"))
    expect(new TextDecoder().decode(huffmanDecode(hex(coded)))).toBe(plain)
    expect(huffmanEncodedLength(text(plain))).toBe(hex(coded).length)
  }
})

test("huffmanDecode() round-trips every byte value", () => {
  const all = Uint8Array.from({ length: 256 }, (_, i) => i)
  expect(huffmanDecode(huffmanEncode(all))).toEqual(all)
  for (let i = 0; i < 256; i++) expect(huffmanDecode(huffmanEncode(Uint8Array.of(i, 255 - i, i)))).toEqual(Uint8Array.of(i, 255 - i, i))
  expect(huffmanDecode(new Uint8Array(0))).toEqual(new Uint8Array(0))
})

test("huffmanDecode() rejects bad padding and the EOS symbol (RFC 7541 §5.2)", () => {
  // "0" is 00000 (5 bits): padding with ones is fine, with a zero is not
  expect(huffmanDecode(Uint8Array.of(0b00000111))).toEqual(text("0"))
  expect(huffmanDecode(Uint8Array.of(0b00000110))).toBeUndefined()
  // a whole byte of padding (8 ones) is more than 7 bits
  expect(huffmanDecode(Uint8Array.of(0b00000111, 0xff))).toBeUndefined()
  // EOS: 30 ones
  expect(huffmanDecode(Uint8Array.of(0xff, 0xff, 0xff, 0xff))).toBeUndefined()
})
