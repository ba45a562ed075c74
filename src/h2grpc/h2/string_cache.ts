// Header strings seen before, by their encoded bytes. nghttp2 clients send
// :path as a Huffman-coded literal without indexing on every request, and
// grpc clients repeat the same few values; looking the bytes up costs one
// pass over them instead of a Huffman decode and a new string each time.

/** Longer strings are decoded every time (they are rarely repeated, and comparing them costs as much). */
const CACHED_BYTES_MAX = 64
/** When full the cache starts over: bounded memory whatever a client sends. */
const ENTRIES_MAX = 1024

interface Entry {
  readonly bytes: Uint8Array
  readonly huffman: boolean
  readonly value: string
}

export class StringCache {
  private readonly entries = new Map<number, Entry>()

  get size(): number {
    return this.entries.size
  }

  /** The string cached for input[start, end) coded as `huffman`, else undefined. */
  get(input: Uint8Array, start: number, end: number, huffman: boolean): string | undefined {
    if (end - start > CACHED_BYTES_MAX) return undefined
    const entry = this.entries.get(hashOf(input, start, end, huffman))
    if (entry === undefined || entry.huffman !== huffman || entry.bytes.length !== end - start) return undefined
    const bytes = entry.bytes
    for (let i = 0; i < bytes.length; i++) if (bytes[i] !== input[start + i]) return undefined
    return entry.value
  }

  set(input: Uint8Array, start: number, end: number, huffman: boolean, value: string): void {
    if (end - start > CACHED_BYTES_MAX) return
    if (this.entries.size >= ENTRIES_MAX) this.entries.clear()
    this.entries.set(hashOf(input, start, end, huffman), { bytes: input.slice(start, end), huffman, value })
  }
}

/** FNV-1a over the bytes and the coding. */
function hashOf(input: Uint8Array, start: number, end: number, huffman: boolean): number {
  let h = huffman ? 0x811c9dc5 : 0x050c5d1f
  for (let i = start; i < end; i++) h = Math.imul(h ^ input[i]!, 0x01000193)
  return h >>> 0
}
