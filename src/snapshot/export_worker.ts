// The Worker thread behind EtcdExportWorker (export_stream.ts): it converts a
// tskv db to etcd's bbolt db with a connection of its own, then reads the file
// back in chunks with its sha256, handing each chunk's memory over to the
// member's thread. Its own heap: the conversion's garbage (a few objects per
// row) is collected here, not by the member's collector, which would mark the
// member's whole heap (the key index) each time; its own core: the member keeps
// serving at full speed meanwhile. Listed as an entrypoint in scripts/build.ts.

import { createHash, type Hash } from "node:crypto"
import { closeSync, fstatSync, openSync, readSync, rmSync } from "node:fs"
import { exportEtcdDb, pinnedReader } from "./etcd_export"
import type { ToWorker } from "./export_stream"

declare const self: {
  onmessage: ((event: MessageEvent) => void) | null
  postMessage(message: unknown, transfer?: ArrayBuffer[]): void
}

let fd = -1
let total = 0
let read = 0
let chunkBytes = 1 << 20
let hash: Hash | undefined

function fail(e: unknown): void {
  self.postMessage({ type: "error", message: e instanceof Error ? e.message : String(e) })
}

function exportDb(msg: Extract<ToWorker, { type: "export" }>): void {
  const reader = pinnedReader(msg.dbPath)
  let rows: number
  try {
    self.postMessage({ type: "pinned" })
    rows = exportEtcdDb({ source: reader.db, targetPath: msg.targetPath, sync: false }).rows
  } finally {
    reader.end()
  }
  // Open, then unlink: the bytes live as long as the descriptor, and nothing is left behind.
  fd = openSync(msg.targetPath, "r")
  rmSync(msg.targetPath, { force: true })
  total = fstatSync(fd).size
  // At least 64 chunks (a progress bar moves on a small db), 32 KiB as etcd at the least.
  chunkBytes = Math.min(msg.chunkBytes, Math.max(32 * 1024, Math.ceil(total / 64 / 4096) * 4096))
  hash = createHash("sha256")
  self.postMessage({ type: "exported", bytes: total, rows })
}

function readChunks(count: number): void {
  for (let i = 0; i < count && read < total; i++) {
    const buffer = new ArrayBuffer(Math.min(chunkBytes, total - read))
    const bytes = new Uint8Array(buffer)
    for (let off = 0; off < bytes.byteLength; ) {
      const n = readSync(fd, bytes, off, bytes.byteLength - off, read + off)
      if (n === 0) throw new Error(`snapshot file ended at ${read + off} of ${total} bytes`)
      off += n
    }
    hash!.update(bytes)
    read += bytes.byteLength
    self.postMessage({ type: "chunk", bytes, remaining: total - read }, [buffer])
  }
  if (read >= total && hash !== undefined) {
    self.postMessage({ type: "end", sha256: new Uint8Array(hash.digest()) })
    hash = undefined
    closeSync(fd)
    fd = -1
  }
}

self.onmessage = (event: MessageEvent) => {
  const msg = event.data as ToWorker
  try {
    if (msg.type === "export") exportDb(msg)
    else if (msg.type === "read") readChunks(msg.count)
  } catch (e) {
    fail(e)
  }
}
