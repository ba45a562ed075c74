// HPACK encoding for a server's responses (RFC 7541 §6.1, §6.2.2): static
// table indexes and literals without indexing, so the peer's decoder table is
// never touched and no state is kept. Blocks of frozen header objects (the
// gRPC response headers and OK trailers) are encoded once and reused.

import { STATIC_TABLE } from "./hpack_table"

export type OutgoingHeaders = Readonly<Record<string, string | number | readonly string[]>>

/** Static index of each exact field ("name\0value") and of each name (first occurrence). */
const fieldIndex = new Map<string, number>()
const nameIndex = new Map<string, number>()
STATIC_TABLE.forEach(([name, value], i) => {
  fieldIndex.set(`${name}\0${value}`, i + 1)
  if (!nameIndex.has(name)) nameIndex.set(name, i + 1)
})

const frozenBlocks = new WeakMap<object, Buffer>()

/** The header block for `headers`; names must be lowercase. */
export function encodeHeaders(headers: OutgoingHeaders): Buffer {
  const frozen = Object.isFrozen(headers)
  if (frozen) {
    const block = frozenBlocks.get(headers)
    if (block !== undefined) return block
  }
  const parts: number[] = []
  for (const name in headers) {
    const value = headers[name]!
    if (typeof value === "object") for (const v of value) encodeField(parts, name, v)
    else encodeField(parts, name, String(value))
  }
  const block = Buffer.from(parts)
  if (frozen) frozenBlocks.set(headers, block)
  return block
}

function encodeField(out: number[], name: string, value: string): void {
  const exact = fieldIndex.get(`${name}\0${value}`)
  if (exact !== undefined) {
    writeInteger(out, exact, 7, 0x80)
    return
  }
  const named = nameIndex.get(name)
  if (named !== undefined) {
    writeInteger(out, named, 4, 0x00)
  } else {
    out.push(0x00)
    writeString(out, name)
  }
  writeString(out, value)
}

/** §5.1 with the pattern bits `high` above the prefix. */
export function writeInteger(out: number[], value: number, prefixBits: number, high: number): void {
  const max = (1 << prefixBits) - 1
  if (value < max) {
    out.push(high | value)
    return
  }
  out.push(high | max)
  let rest = value - max
  while (rest >= 0x80) {
    out.push((rest & 0x7f) | 0x80)
    rest = Math.floor(rest / 0x80)
  }
  out.push(rest)
}

/** §5.2 raw (not Huffman-coded): values are short and encoding time matters more than bytes. */
function writeString(out: number[], value: string): void {
  const bytes = Buffer.from(value, "latin1")
  writeInteger(out, bytes.length, 7, 0x00)
  for (const byte of bytes) out.push(byte)
}
