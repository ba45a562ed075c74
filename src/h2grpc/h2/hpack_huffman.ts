// The static Huffman code of HPACK (RFC 7541 Appendix B): decode and encode
// header strings for our HPACK decoder (hpack_decoder.ts).

/** Code of each symbol 0..255, right-aligned (RFC 7541 Appendix B). EOS (256) is 30 one-bits. */
const CODES: readonly number[] = [
  0x1ff8, 0x7fffd8, 0xfffffe2, 0xfffffe3, 0xfffffe4, 0xfffffe5, 0xfffffe6, 0xfffffe7,
  0xfffffe8, 0xffffea, 0x3ffffffc, 0xfffffe9, 0xfffffea, 0x3ffffffd, 0xfffffeb, 0xfffffec,
  0xfffffed, 0xfffffee, 0xfffffef, 0xffffff0, 0xffffff1, 0xffffff2, 0x3ffffffe, 0xffffff3,
  0xffffff4, 0xffffff5, 0xffffff6, 0xffffff7, 0xffffff8, 0xffffff9, 0xffffffa, 0xffffffb,
  0x14, 0x3f8, 0x3f9, 0xffa, 0x1ff9, 0x15, 0xf8, 0x7fa,
  0x3fa, 0x3fb, 0xf9, 0x7fb, 0xfa, 0x16, 0x17, 0x18,
  0x0, 0x1, 0x2, 0x19, 0x1a, 0x1b, 0x1c, 0x1d,
  0x1e, 0x1f, 0x5c, 0xfb, 0x7ffc, 0x20, 0xffb, 0x3fc,
  0x1ffa, 0x21, 0x5d, 0x5e, 0x5f, 0x60, 0x61, 0x62,
  0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a,
  0x6b, 0x6c, 0x6d, 0x6e, 0x6f, 0x70, 0x71, 0x72,
  0xfc, 0x73, 0xfd, 0x1ffb, 0x7fff0, 0x1ffc, 0x3ffc, 0x22,
  0x7ffd, 0x3, 0x23, 0x4, 0x24, 0x5, 0x25, 0x26,
  0x27, 0x6, 0x74, 0x75, 0x28, 0x29, 0x2a, 0x7,
  0x2b, 0x76, 0x2c, 0x8, 0x9, 0x2d, 0x77, 0x78,
  0x79, 0x7a, 0x7b, 0x7ffe, 0x7fc, 0x3ffd, 0x1ffd, 0xffffffc,
  0xfffe6, 0x3fffd2, 0xfffe7, 0xfffe8, 0x3fffd3, 0x3fffd4, 0x3fffd5, 0x7fffd9,
  0x3fffd6, 0x7fffda, 0x7fffdb, 0x7fffdc, 0x7fffdd, 0x7fffde, 0xffffeb, 0x7fffdf,
  0xffffec, 0xffffed, 0x3fffd7, 0x7fffe0, 0xffffee, 0x7fffe1, 0x7fffe2, 0x7fffe3,
  0x7fffe4, 0x1fffdc, 0x3fffd8, 0x7fffe5, 0x3fffd9, 0x7fffe6, 0x7fffe7, 0xffffef,
  0x3fffda, 0x1fffdd, 0xfffe9, 0x3fffdb, 0x3fffdc, 0x7fffe8, 0x7fffe9, 0x1fffde,
  0x7fffea, 0x3fffdd, 0x3fffde, 0xfffff0, 0x1fffdf, 0x3fffdf, 0x7fffeb, 0x7fffec,
  0x1fffe0, 0x1fffe1, 0x3fffe0, 0x1fffe2, 0x7fffed, 0x3fffe1, 0x7fffee, 0x7fffef,
  0xfffea, 0x3fffe2, 0x3fffe3, 0x3fffe4, 0x7ffff0, 0x3fffe5, 0x3fffe6, 0x7ffff1,
  0x3ffffe0, 0x3ffffe1, 0xfffeb, 0x7fff1, 0x3fffe7, 0x7ffff2, 0x3fffe8, 0x1ffffec,
  0x3ffffe2, 0x3ffffe3, 0x3ffffe4, 0x7ffffde, 0x7ffffdf, 0x3ffffe5, 0xfffff1, 0x1ffffed,
  0x7fff2, 0x1fffe3, 0x3ffffe6, 0x7ffffe0, 0x7ffffe1, 0x3ffffe7, 0x7ffffe2, 0xfffff2,
  0x1fffe4, 0x1fffe5, 0x3ffffe8, 0x3ffffe9, 0xffffffd, 0x7ffffe3, 0x7ffffe4, 0x7ffffe5,
  0xfffec, 0xfffff3, 0xfffed, 0x1fffe6, 0x3fffe9, 0x1fffe7, 0x1fffe8, 0x7ffff3,
  0x3fffea, 0x3fffeb, 0x1ffffee, 0x1ffffef, 0xfffff4, 0xfffff5, 0x3ffffea, 0x7ffff4,
  0x3ffffeb, 0x7ffffe6, 0x3ffffec, 0x3ffffed, 0x7ffffe7, 0x7ffffe8, 0x7ffffe9, 0x7ffffea,
  0x7ffffeb, 0xffffffe, 0x7ffffec, 0x7ffffed, 0x7ffffee, 0x7ffffef, 0x7fffff0, 0x3ffffee,
]

/** Bit length of each code, 16 symbols a row. */
const LENGTHS: readonly number[] = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
  5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
  7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,
  6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
]

const EOS = 256
const EOS_CODE = 0x3fffffff
const EOS_BITS = 30

/**
 * The code as a binary trie: node n has children at [2n] (bit 0) and [2n+1]
 * (bit 1); a child is another node (> 0), a symbol (-1 - symbol), or absent (0).
 */
const trie: Int32Array = buildTrie()

function buildTrie(): Int32Array {
  const children = new Int32Array(2 * 512) // a complete prefix code over 257 symbols has 256 inner nodes
  let nodes = 1
  const insert = (symbol: number, code: number, bits: number): void => {
    let node = 0
    for (let b = bits - 1; b >= 0; b--) {
      const slot = 2 * node + ((code >>> b) & 1)
      if (b === 0) {
        if (children[slot] !== 0) throw new Error(`hpack huffman table: symbol ${symbol} collides`)
        children[slot] = -1 - symbol
        return
      }
      let next = children[slot]!
      if (next < 0) throw new Error(`hpack huffman table: symbol ${symbol} is not prefix-free`)
      if (next === 0) {
        next = nodes++
        children[slot] = next
      }
      node = next
    }
  }
  for (let symbol = 0; symbol < 256; symbol++) insert(symbol, CODES[symbol]!, LENGTHS[symbol]!)
  insert(EOS, EOS_CODE, EOS_BITS)
  return children
}

/**
 * Decodes a Huffman-coded string; undefined when it is malformed (an EOS
 * symbol, padding longer than 7 bits or not all ones: RFC 7541 §5.2).
 */
export function huffmanDecode(input: Uint8Array): Uint8Array | undefined {
  const out = new Uint8Array(huffmanDecodedLengthMax(input.length))
  const length = huffmanDecodeInto({ input, start: 0, end: input.length, out })
  return length < 0 ? undefined : out.subarray(0, length)
}

/** The most bytes `codedBytes` of Huffman code can decode to (the shortest code is 5 bits). */
export function huffmanDecodedLengthMax(codedBytes: number): number {
  return Math.ceil((codedBytes * 8) / 5)
}

/**
 * Decodes input[start, end) into `out` (at least huffmanDecodedLengthMax
 * bytes): the decoded length, or -1 when the code is malformed. No
 * allocation, for the HPACK decoder's hot path.
 */
export function huffmanDecodeInto(options: { input: Uint8Array; start: number; end: number; out: Uint8Array }): number {
  const { input, end, out } = options
  let length = 0
  let node = 0
  let depth = 0 // bits consumed since the last symbol
  let allOnes = true // all of them were ones
  for (let i = options.start; i < end; i++) {
    const byte = input[i]!
    for (let b = 7; b >= 0; b--) {
      const bit = (byte >>> b) & 1
      const next = trie[2 * node + bit]!
      if (next === 0) return -1
      if (next < 0) {
        const symbol = -1 - next
        if (symbol === EOS) return -1
        out[length++] = symbol
        node = 0
        depth = 0
        allOnes = true
      } else {
        node = next
        depth++
        allOnes &&= bit === 1
      }
    }
  }
  if (depth > 7 || !allOnes) return -1
  return length
}

/** Encoded size in bytes of `input` under the Huffman code. */
export function huffmanEncodedLength(input: Uint8Array): number {
  let bits = 0
  for (let i = 0; i < input.length; i++) bits += LENGTHS[input[i]!]!
  return Math.ceil(bits / 8)
}

/** Huffman-codes a string, padding the last byte with ones. */
export function huffmanEncode(input: Uint8Array): Uint8Array {
  const out = new Uint8Array(huffmanEncodedLength(input))
  let length = 0
  let pending = 0 // bits not yet written, right-aligned in `acc`
  let acc = 0
  for (let i = 0; i < input.length; i++) {
    const symbol = input[i]!
    const bits = LENGTHS[symbol]!
    const code = CODES[symbol]!
    // codes are at most 30 bits: feed them in two halves to stay within 32-bit arithmetic
    for (const [part, partBits] of bits > 16 ? [[code >>> 16, bits - 16], [code & 0xffff, 16]] : [[code, bits]]) {
      acc = ((acc << partBits!) | part!) >>> 0
      pending += partBits!
      while (pending >= 8) {
        pending -= 8
        out[length++] = (acc >>> pending) & 0xff
      }
      acc &= (1 << pending) - 1
    }
  }
  if (pending > 0) out[length++] = ((acc << (8 - pending)) | ((1 << (8 - pending)) - 1)) & 0xff
  return out
}
