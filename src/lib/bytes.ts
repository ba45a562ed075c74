// Byte helpers shared by every room. Keys and values are Uint8Array
// (Buffers are Uint8Arrays too); comparison is unsigned byte-wise, as etcd's.

const encoder = new TextEncoder()
const decoder = new TextDecoder()

export const EMPTY = new Uint8Array(0)
/** range_end "\0": no upper bound. */
export const ZERO_BYTE = new Uint8Array([0])

export function utf8(text: string): Uint8Array {
  return encoder.encode(text)
}

export function fromUtf8(bytes: Uint8Array): string {
  return decoder.decode(bytes)
}

// WHATWG's "latin1" is windows-1252: still one UTF-16 unit per byte, 256 distinct ones (checked in bytes.test.ts).
const byteDecoder = new TextDecoder("latin1")

/**
 * A string standing for `bytes` as a Map key: distinct byte strings give
 * distinct strings (one char per byte). Not for display. About 5x cheaper than
 * Buffer.from(...).toString("latin1"), which a put paid several times.
 */
export function keyString(bytes: Uint8Array): string {
  return byteDecoder.decode(bytes)
}

export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b)
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0
}

/**
 * The end of the range of every key that starts with `prefix` (etcd's
 * clientv3 getPrefix): increment the last byte below 0xff after dropping
 * trailing 0xff bytes; "\0" (no upper bound) when every byte is 0xff.
 */
export function prefixEnd(prefix: Uint8Array): Uint8Array {
  for (let i = prefix.length - 1; i >= 0; i--) {
    const byte = prefix[i]!
    if (byte < 0xff) {
      // Uint8Array's slice copies; Buffer's would be a view that the increment below writes through.
      const end = Uint8Array.prototype.slice.call(prefix, 0, i + 1)
      end[i] = byte + 1
      return end
    }
  }
  return ZERO_BYTE
}

export function isZeroByte(bytes: Uint8Array): boolean {
  return bytes.length === 1 && bytes[0] === 0
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  return Buffer.concat(parts)
}

export function toHex(id: bigint): string {
  return id.toString(16)
}
