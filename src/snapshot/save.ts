// `tskv snapshot save <file>`: streams Maintenance.Snapshot from one member
// into <file>.part, fsyncs it and renames it into place (etcdctl's way); the
// file ends with the sha256 the member appends, which restore verifies.

import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs"
import type { EtcdClient } from "../client"

export async function saveSnapshot(client: EtcdClient, path: string): Promise<number> {
  const partial = `${path}.part`
  rmSync(partial, { force: true })
  const fd = openSync(partial, "wx", 0o600)
  let bytes = 0
  try {
    let last = -1
    for await (const chunk of client.maintenance.snapshot()) {
      for (let off = 0; off < chunk.blob.length; ) off += writeSync(fd, chunk.blob, off, chunk.blob.length - off)
      bytes += chunk.blob.length
      last = chunk.remainingBytes
    }
    if (last !== 0) throw new Error("snapshot stream ended before the member sent the whole db")
    fsyncSync(fd)
  } catch (e) {
    closeSync(fd)
    rmSync(partial, { force: true })
    throw e
  }
  closeSync(fd)
  renameSync(partial, path)
  return bytes
}
