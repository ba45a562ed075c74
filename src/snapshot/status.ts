// `tskv snapshot status <file>`: etcdctl 3.4's hash, revision, number of keys
// and size. An etcd-format (bbolt) file, as Maintenance.Snapshot streams it and
// etcd writes it, is read as etcdctl reads it (bbolt/status.ts). An older tskv
// snapshot (a SQLite db) is first converted to the bbolt db that tskv would
// stream for it today, in a private temp dir, so that both kinds print what
// etcdctl prints for the etcd-format snapshot of the same state.

import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { BoltError } from "../bbolt/format"
import { boltStatus } from "../bbolt/status"
import { humanizeBytes } from "../lib/humanize"
import { exportEtcdDb } from "./etcd_export"
import { copyDb, detectDbFormat, inspectSnapshotFile, SnapshotFileError } from "./snapshot_file"

export { humanizeBytes }

export interface SnapshotStatus {
  hash: number
  revision: number
  totalKey: number
  totalSize: number
}

export function snapshotStatus(path: string): SnapshotStatus {
  const file = inspectSnapshotFile(path)
  const format = detectDbFormat(file)
  if (format === "bbolt") return boltStatusOrError(path, file.dbBytes)
  if (format !== "sqlite") throw new SnapshotFileError("invalid database")
  const dir = mkdtempSync(join(tmpdir(), "tskv-snapshot-status-"))
  try {
    const dbPath = join(dir, "db")
    copyDb(file, dbPath)
    const boltPath = join(dir, "bolt.db")
    try {
      exportEtcdDb({ source: dbPath, target: boltPath })
    } catch {
      throw new SnapshotFileError("invalid database")
    }
    return boltStatusOrError(boltPath, undefined)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

function boltStatusOrError(path: string, bytes: number | undefined): SnapshotStatus {
  try {
    return boltStatus(path, bytes === undefined ? {} : { bytes })
  } catch (e) {
    if (e instanceof BoltError) throw new SnapshotFileError(e.message)
    throw e
  }
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

/** olekukonko/tablewriter as etcdctl's DBStatus sets it: centred headers, every cell right-aligned (ALIGN_RIGHT). */
function renderTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)))
  const line = `+${widths.map((w) => "-".repeat(w + 2)).join("+")}+\n`
  const centre = (text: string, w: number): string => {
    const gap = w - text.length
    const left = Math.floor(gap / 2)
    return " ".repeat(left) + text + " ".repeat(gap - left)
  }
  const cell = (text: string, w: number): string => text.padStart(w)
  let out = line
  out += `|${header.map((h, i) => ` ${centre(h, widths[i]!)} `).join("|")}|\n`
  out += line
  for (const r of rows) out += `|${r.map((c, i) => ` ${cell(c, widths[i]!)} `).join("|")}|\n`
  out += line
  return out
}
