// --log-outputs=systemd/journal: each JSON log line goes to journald's native
// socket as one datagram (MESSAGE, PRIORITY, SYSLOG_IDENTIFIER), as etcd's zap
// journal writer sends it. A line journald cannot take (the socket went away,
// a datagram too large) is written to the fallback (stderr) instead.

import { UnixDatagramSender } from "./unix_datagram"

export const journalSocketPath = "/run/systemd/journal/socket"

/** syslog priorities of etcd's zap levels (zap_journal.go). */
const priorities: Record<string, number> = { debug: 7, info: 6, warn: 4, error: 3, dpanic: 2, panic: 2, fatal: 2 }

/** One field in the native protocol: KEY=value\n, or KEY\n<le64 length><value>\n when the value holds a newline. */
function field(key: string, value: string): Uint8Array {
  const bytes = new TextEncoder().encode(value)
  if (!bytes.includes(0x0a)) return new TextEncoder().encode(`${key}=${value}\n`)
  const out = new Uint8Array(key.length + 1 + 8 + bytes.length + 1)
  out.set(new TextEncoder().encode(`${key}\n`), 0)
  new DataView(out.buffer).setBigUint64(key.length + 1, BigInt(bytes.length), true)
  out.set(bytes, key.length + 9)
  out[out.length - 1] = 0x0a
  return out
}

/** The datagram for one log line (the JSON record is the MESSAGE). */
export function journalEntry(line: string, identifier: string): Uint8Array {
  const message = line.endsWith("\n") ? line.slice(0, -1) : line
  // A JSON line's "level", or the second field of a console line.
  let level = message.split("\t")[1] ?? "info"
  try {
    const parsed: unknown = JSON.parse(message)
    if (typeof parsed === "object" && parsed !== null && "level" in parsed && typeof parsed.level === "string") level = parsed.level
  } catch {}
  const parts = [field("MESSAGE", message), field("PRIORITY", String(priorities[level] ?? 6)), field("SYSLOG_IDENTIFIER", identifier)]
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

export interface JournalWriterOptions {
  identifier: string
  /** Where a line goes when journald cannot take it. */
  fallback: (line: string) => void
  path?: string
}

/**
 * Dials journald (throws, as etcd's "can't find journal", when nothing listens)
 * and returns the line writer.
 */
export function openJournalWriter(options: JournalWriterOptions): (line: string) => void {
  const sender = new UnixDatagramSender(options.path ?? journalSocketPath)
  try {
    sender.connect()
  } catch (e) {
    sender.close()
    throw e
  }
  return (line) => {
    try {
      sender.send(journalEntry(line, options.identifier))
    } catch {
      options.fallback(line)
    }
  }
}
