// journald's native protocol, parsed: what a test standing in for journald reads.

/** Parses journald's native protocol (both field forms). */
export function parseJournalEntry(bytes: Uint8Array): Record<string, string> {
  const fields: Record<string, string> = {}
  const decoder = new TextDecoder()
  let at = 0
  while (at < bytes.length) {
    const nl = bytes.indexOf(0x0a, at)
    const head = decoder.decode(bytes.subarray(at, nl))
    const eq = head.indexOf("=")
    if (eq >= 0) {
      fields[head.slice(0, eq)] = head.slice(eq + 1)
      at = nl + 1
      continue
    }
    const length = Number(new DataView(bytes.buffer, bytes.byteOffset + nl + 1, 8).getBigUint64(0, true))
    fields[head] = decoder.decode(bytes.subarray(nl + 9, nl + 9 + length))
    if (bytes[nl + 9 + length] !== 0x0a) throw new Error(`field ${head} does not end with a newline`)
    at = nl + 10 + length
  }
  return fields
}
