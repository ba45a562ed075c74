// HPACK's header tables (RFC 7541 §2.3): the static table of Appendix A and
// the dynamic table a decoder keeps in step with the peer's encoder.

export type HeaderField = readonly [name: string, value: string]

/** RFC 7541 Appendix A; index 1 is STATIC_TABLE[0]. */
export const STATIC_TABLE: readonly HeaderField[] = [
  [":authority", ""],
  [":method", "GET"],
  [":method", "POST"],
  [":path", "/"],
  [":path", "/index.html"],
  [":scheme", "http"],
  [":scheme", "https"],
  [":status", "200"],
  [":status", "204"],
  [":status", "206"],
  [":status", "304"],
  [":status", "400"],
  [":status", "404"],
  [":status", "500"],
  ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"],
  ["accept-language", ""],
  ["accept-ranges", ""],
  ["accept", ""],
  ["access-control-allow-origin", ""],
  ["age", ""],
  ["allow", ""],
  ["authorization", ""],
  ["cache-control", ""],
  ["content-disposition", ""],
  ["content-encoding", ""],
  ["content-language", ""],
  ["content-length", ""],
  ["content-location", ""],
  ["content-range", ""],
  ["content-type", ""],
  ["cookie", ""],
  ["date", ""],
  ["etag", ""],
  ["expect", ""],
  ["expires", ""],
  ["from", ""],
  ["host", ""],
  ["if-match", ""],
  ["if-modified-since", ""],
  ["if-none-match", ""],
  ["if-range", ""],
  ["if-unmodified-since", ""],
  ["last-modified", ""],
  ["link", ""],
  ["location", ""],
  ["max-forwards", ""],
  ["proxy-authenticate", ""],
  ["proxy-authorization", ""],
  ["range", ""],
  ["referer", ""],
  ["refresh", ""],
  ["retry-after", ""],
  ["server", ""],
  ["set-cookie", ""],
  ["strict-transport-security", ""],
  ["transfer-encoding", ""],
  ["user-agent", ""],
  ["vary", ""],
  ["via", ""],
  ["www-authenticate", ""],
]

/** Every entry costs its name and value octets plus 32 (§4.1). */
const ENTRY_OVERHEAD_BYTES = 32

/**
 * The dynamic table: newest entry first (index 62 in the combined space),
 * evicting the oldest to stay within `maxBytes`. Entries live in a ring so
 * that adding and evicting cost no copying.
 */
export class DynamicTable {
  private ring: (HeaderField | undefined)[] = new Array<HeaderField | undefined>(16)
  /** Ring slot of the newest entry. */
  private head = 0
  private count = 0
  sizeBytes = 0

  constructor(public maxBytes: number) {}

  get length(): number {
    return this.count
  }

  /** Entry `i` (0 = newest), or undefined past the end. */
  get(i: number): HeaderField | undefined {
    if (i < 0 || i >= this.count) return undefined
    return this.ring[(this.head + i) % this.ring.length]
  }

  add(field: HeaderField): void {
    const size = entryBytes(field)
    if (size > this.maxBytes) {
      // §4.4: an entry larger than the table empties it and is not added
      this.clear()
      return
    }
    while (this.sizeBytes + size > this.maxBytes) this.evictOldest()
    if (this.count === this.ring.length) this.grow()
    this.head = (this.head - 1 + this.ring.length) % this.ring.length
    this.ring[this.head] = field
    this.count++
    this.sizeBytes += size
  }

  /** A dynamic table size update (§6.3) or a new SETTINGS_HEADER_TABLE_SIZE. */
  resize(maxBytes: number): void {
    this.maxBytes = maxBytes
    while (this.sizeBytes > maxBytes) this.evictOldest()
  }

  private evictOldest(): void {
    const slot = (this.head + this.count - 1) % this.ring.length
    const field = this.ring[slot]!
    this.ring[slot] = undefined
    this.count--
    this.sizeBytes -= entryBytes(field)
  }

  private clear(): void {
    while (this.count > 0) this.evictOldest()
  }

  private grow(): void {
    const next = new Array<HeaderField | undefined>(this.ring.length * 2)
    for (let i = 0; i < this.count; i++) next[i] = this.get(i)
    this.ring = next
    this.head = 0
  }
}

function entryBytes(field: HeaderField): number {
  return field[0].length + field[1].length + ENTRY_OVERHEAD_BYTES
}
