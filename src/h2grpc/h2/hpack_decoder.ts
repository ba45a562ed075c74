// HPACK decoding (RFC 7541 §6): header blocks to header fields, keeping the
// dynamic table in step with the peer's encoder. Any malformed block is a
// COMPRESSION_ERROR for the whole connection (RFC 9113 §4.3): the table is
// then out of step and cannot be trusted.

import { huffmanDecodedLengthMax, huffmanDecodeInto } from "./hpack_huffman"
import { ErrorCode, H2ConnectionError } from "./frames"
import { DynamicTable, STATIC_TABLE, type HeaderField } from "./hpack_table"
import { StringCache } from "./string_cache"

/** Request headers as node:http2 gives them: lowercase names; a repeated name collects an array. */
export type HeaderMap = Record<string, string | string[] | undefined>

/** Integers beyond this are refused (no header field or table is that large). */
const INTEGER_MAX = 2 ** 31 - 1

export class HpackDecoder {
  private readonly table: DynamicTable
  private readonly strings = new StringCache()

  /** `maxTableBytes`: our SETTINGS_HEADER_TABLE_SIZE, the most the peer may ask for. */
  constructor(private readonly maxTableBytes = 4096) {
    this.table = new DynamicTable(maxTableBytes)
  }

  /** The dynamic table's current size in octets (for tests). */
  get tableBytes(): number {
    return this.table.sizeBytes
  }

  /** Decodes one complete header block, calling `onField` for each field in order. */
  decode(block: Uint8Array, onField: (name: string, value: string) => void): void {
    const cursor = { offset: 0 }
    let fieldSeen = false
    while (cursor.offset < block.length) {
      const first = block[cursor.offset]!
      if (first & 0x80) {
        // §6.1 indexed header field
        const field = this.lookup(readInteger(block, cursor, 7))
        onField(field[0], field[1])
        fieldSeen = true
      } else if (first & 0x40) {
        // §6.2.1 literal with incremental indexing
        const field = this.readLiteral(block, cursor, 6)
        this.table.add(field)
        onField(field[0], field[1])
        fieldSeen = true
      } else if (first & 0x20) {
        // §6.3 dynamic table size update: only at the start of a block
        if (fieldSeen) throw compressionError("table size update after a header field")
        const size = readInteger(block, cursor, 5)
        if (size > this.maxTableBytes) throw compressionError(`table size update to ${size} exceeds ${this.maxTableBytes}`)
        this.table.resize(size)
      } else {
        // §6.2.2 without indexing, §6.2.3 never indexed: 4-bit prefix either way
        const field = this.readLiteral(block, cursor, 4)
        onField(field[0], field[1])
        fieldSeen = true
      }
    }
  }

  /** Decodes a block into a HeaderMap. */
  decodeMap(block: Uint8Array): HeaderMap {
    const headers: HeaderMap = {}
    this.decode(block, (name, value) => {
      const seen = headers[name]
      if (seen === undefined) headers[name] = value
      else if (typeof seen === "string") headers[name] = [seen, value]
      else seen.push(value)
    })
    return headers
  }

  private lookup(index: number): HeaderField {
    if (index === 0) throw compressionError("index 0")
    if (index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1]!
    const field = this.table.get(index - STATIC_TABLE.length - 1)
    if (field === undefined) throw compressionError(`index ${index} beyond the table`)
    return field
  }

  private readLiteral(block: Uint8Array, cursor: { offset: number }, prefixBits: number): HeaderField {
    const nameIndex = readInteger(block, cursor, prefixBits)
    const name = nameIndex === 0 ? this.readString(block, cursor) : this.lookup(nameIndex)[0]
    return [name, this.readString(block, cursor)]
  }

  /** §5.2: a string literal, Huffman-coded or raw; octets map to latin1 characters as node:http2 does. */
  private readString(block: Uint8Array, cursor: { offset: number }): string {
    if (cursor.offset >= block.length) throw compressionError("truncated string")
    const huffman = (block[cursor.offset]! & 0x80) !== 0
    const length = readInteger(block, cursor, 7)
    const start = cursor.offset
    const end = start + length
    if (end > block.length) throw compressionError("string past the end of the block")
    cursor.offset = end
    const cached = this.strings.get(block, start, end, huffman)
    if (cached !== undefined) return cached
    const value = huffman ? decodeHuffman(block, start, end) : latin1(block, start, end)
    this.strings.set(block, start, end, huffman, value)
    return value
  }
}

/** §5.1: an integer with an N-bit prefix, advancing the cursor. */
export function readInteger(block: Uint8Array, cursor: { offset: number }, prefixBits: number): number {
  if (cursor.offset >= block.length) throw compressionError("truncated integer")
  const mask = (1 << prefixBits) - 1
  let value = block[cursor.offset++]! & mask
  if (value < mask) return value
  let shift = 0
  for (;;) {
    if (cursor.offset >= block.length) throw compressionError("truncated integer")
    const byte = block[cursor.offset++]!
    value += (byte & 0x7f) * 2 ** shift
    if (value > INTEGER_MAX) throw compressionError("integer overflow")
    if ((byte & 0x80) === 0) return value
    shift += 7
  }
}

function decodeHuffman(block: Uint8Array, start: number, end: number): string {
  const needed = huffmanDecodedLengthMax(end - start)
  if (scratch.length < needed) scratch = new Uint8Array(Math.max(needed, scratch.length * 2))
  const decoded = huffmanDecodeInto({ input: block, start, end, out: scratch })
  if (decoded < 0) throw compressionError("bad Huffman code")
  return latin1(scratch, 0, decoded)
}

/** Where Huffman-coded strings are decoded (one decode at a time: decoding is synchronous). */
let scratch = new Uint8Array(256)

/** bytes[start, end) as a latin1 string, without making a view for the short strings headers are. */
function latin1(bytes: Uint8Array, start: number, end: number): string {
  if (end - start > 256) return Buffer.from(bytes.slice(start, end)).toString("latin1")
  let s = ""
  for (let i = start; i < end; i++) s += String.fromCharCode(bytes[i]!)
  return s
}

function compressionError(message: string): H2ConnectionError {
  return new H2ConnectionError(ErrorCode.COMPRESSION_ERROR, `hpack: ${message}`)
}
