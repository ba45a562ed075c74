// etcdctl 3.4's `snapshot status` over a bbolt db: crc32c of every bucket's
// name, keys and values in order, the main revision of the key bucket's last
// key, the number of keys of every bucket and bbolt's tx.Size() — after
// bbolt's integrity check, as etcdctl runs it.

import { decodeRevision, crc32c } from "./etcd_layout"
import { BoltError } from "./format"
import { BoltReader } from "./reader"

export interface BoltStatus {
  hash: number
  revision: number
  totalKey: number
  totalSize: number
}

export function boltStatus(path: string, options: { bytes?: number } = {}): BoltStatus {
  const reader = BoltReader.open(path, options)
  try {
    const problems = reader.check()
    if (problems.length > 0) {
      throw new BoltError(`snapshot file integrity check failed. ${problems.length} errors found.\n${problems.join("\n")}`)
    }
    let hash = 0
    let revision = 0
    let totalKey = 0
    for (const { name, bucket } of reader.buckets()) {
      hash = crc32c(hash, name)
      const isKey = Buffer.from(name).toString("latin1") === "key"
      for (const e of reader.entries(bucket)) {
        hash = crc32c(hash, e.key)
        // A nested bucket's value reads as nil in bbolt's ForEach.
        if (!e.isBucket) hash = crc32c(hash, e.value)
        if (isKey) revision = decodeRevision(e.key)?.main ?? revision
        totalKey++
      }
    }
    return { hash, revision, totalKey, totalSize: reader.sizeBytes() }
  } finally {
    reader.close()
  }
}
