// Member and cluster ids, derived exactly as etcd derives them so that a
// member keeps its id across restarts and every member of a new cluster
// computes the same ids from the same --initial-cluster and token:
//   member id  = first 8 bytes (big-endian) of sha1(sorted peer URLs joined ‖ token [‖ unix seconds])
//   cluster id = first 8 bytes of sha1(the sorted member ids, 8 bytes big-endian each)
// (the unix time is mixed in only for members added at run time).

import { createHash } from "node:crypto"
import type { NodeId } from "../raft/types"

export function computeMemberId(peerUrls: readonly string[], token: string, unixSeconds?: number): NodeId {
  const sorted = [...peerUrls].sort()
  let text = sorted.join("") + token
  if (unixSeconds !== undefined) text += String(unixSeconds)
  const digest = createHash("sha1").update(text).digest()
  return digest.readBigUInt64BE(0)
}

export function computeClusterId(memberIds: readonly NodeId[]): NodeId {
  const sorted = [...memberIds].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  const buf = Buffer.alloc(8 * sorted.length)
  sorted.forEach((id, i) => buf.writeBigUInt64BE(id, 8 * i))
  return createHash("sha1").update(buf).digest().readBigUInt64BE(0)
}

/** Member ids print as lowercase hex without leading zeros, as etcd's types.ID. */
export function formatId(id: bigint): string {
  return id.toString(16)
}
