// The bytes of a ConfChange entry's data (EntryType.ConfChange): one byte of
// type, the node id as 8 big-endian bytes, then the opaque context. raft
// writes them in proposeConfChange() and reads them back on restart; the
// server decodes them when it applies the entry.

import { assert } from "../lib/assert"
import type { ConfChange } from "./types"
import { ConfChangeType } from "./types"

export function encodeConfChange(cc: ConfChange): Uint8Array {
  const out = new Uint8Array(9 + cc.context.length)
  const view = new DataView(out.buffer)
  out[0] = cc.type
  view.setBigUint64(1, cc.nodeId)
  out.set(cc.context, 9)
  return out
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  assert(data.length >= 9, () => `conf change entry too short: ${data.length} bytes`)
  const type = data[0]!
  assert(type in ConfChangeType && type <= ConfChangeType.AddLearnerNode, () => `unknown conf change type ${type}`)
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength)
  return { type: type as ConfChangeType, nodeId: view.getBigUint64(1), context: data.slice(9) }
}
