// `tskv snapshot status <file>`: the hash, revision, number of keys and size
// of a snapshot's db, read from a private copy (the file is not touched).
// Hash: crc32 over every table's name and rows in primary-key order (etcd
// hashes its bbolt buckets the same way with crc32c, so the values differ
// from etcd's but are stable for equal contents). Total keys: rows of every
// table (etcd counts the keys of every bucket).

import { Database } from "bun:sqlite"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { copyDb, inspectSnapshotFile, SnapshotFileError } from "./snapshot_file"

export interface SnapshotStatus {
  hash: number
  revision: number
  totalKey: number
  totalSize: number
}

export function snapshotStatus(path: string): SnapshotStatus {
  const file = inspectSnapshotFile(path)
  const dir = mkdtempSync(join(tmpdir(), "tskv-snapshot-status-"))
  try {
    const dbPath = join(dir, "db")
    copyDb(file, dbPath)
    let db: Database
    try {
      db = new Database(dbPath, { readonly: true, strict: true })
      db.query("SELECT count(*) FROM sqlite_master").get()
    } catch {
      throw new SnapshotFileError("invalid database")
    }
    try {
      return statusOf(db, file.dbBytes)
    } finally {
      db.close()
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

function statusOf(db: Database, totalSize: number): SnapshotStatus {
  const tables = db
    .query<{ name: string }, []>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
    .all()
    .map((t) => t.name)
  if (!tables.includes("mvcc_kv") || !tables.includes("meta")) throw new SnapshotFileError("invalid database")
  let hash = 0
  let totalKey = 0
  const encoder = new TextEncoder()
  for (const table of tables) {
    hash = Bun.hash.crc32(encoder.encode(table), hash) >>> 0
    const quoted = `"${table.replaceAll('"', '""')}"`
    for (const row of db.query<unknown[], []>(`SELECT * FROM ${quoted} ORDER BY 1`).values()) {
      totalKey++
      for (const cell of row) {
        const bytes = cell instanceof Uint8Array ? cell : encoder.encode(cell === null ? "\0" : String(cell))
        hash = Bun.hash.crc32(bytes, hash) >>> 0
      }
    }
  }
  const compactRaw = db.query<{ value: Uint8Array }, [string]>("SELECT value FROM meta WHERE key = ?").get("mvcc_compact_rev")
  const compacted = compactRaw ? Number(Buffer.from(compactRaw.value).readBigInt64BE(0)) : 0
  const last = db.query<{ main: number }, []>("SELECT max(main) AS main FROM mvcc_kv").get()
  const revision = Math.max(1, compacted, last?.main ?? 0)
  return { hash, revision, totalKey, totalSize }
}

/** go-humanize Bytes (SI units), as etcdctl prints sizes. */
export function humanizeBytes(n: number): string {
  if (n < 10) return `${n} B`
  const units = ["B", "kB", "MB", "GB", "TB", "PB", "EB"]
  const e = Math.floor(Math.log(n) / Math.log(1000))
  const value = Math.floor((n / 1000 ** e) * 10 + 0.5) / 10
  return `${value < 10 ? value.toFixed(1) : value.toFixed(0)} ${units[e]}`
}

/** etcdctl's output of `snapshot status` in the simple, json and table formats. */
export function formatStatus(s: SnapshotStatus, format: "simple" | "json" | "table"): string {
  const hash = s.hash.toString(16)
  switch (format) {
    case "simple":
      return `${hash}, ${s.revision}, ${s.totalKey}, ${humanizeBytes(s.totalSize)}\n`
    case "json":
      return `${JSON.stringify({ hash: s.hash, revision: s.revision, totalKey: s.totalKey, totalSize: s.totalSize })}\n`
    case "table":
      return renderTable(["HASH", "REVISION", "TOTAL KEYS", "TOTAL SIZE"], [[hash, String(s.revision), String(s.totalKey), humanizeBytes(s.totalSize)]])
  }
}

/** olekukonko/tablewriter as etcdctl uses it: centred headers, numbers right-aligned, text left. */
function renderTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)))
  const line = `+${widths.map((w) => "-".repeat(w + 2)).join("+")}+\n`
  const centre = (text: string, w: number): string => {
    const gap = w - text.length
    const left = Math.floor(gap / 2)
    return " ".repeat(left) + text + " ".repeat(gap - left)
  }
  const cell = (text: string, w: number): string => (/^-?\d+\.?\d*$/.test(text) ? text.padStart(w) : text.padEnd(w))
  let out = line
  out += `|${header.map((h, i) => ` ${centre(h, widths[i]!)} `).join("|")}|\n`
  out += line
  for (const r of rows) out += `|${r.map((c, i) => ` ${cell(c, widths[i]!)} `).join("|")}|\n`
  out += line
  return out
}
