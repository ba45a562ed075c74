// RaftNode's bootstrap of a fresh cluster: the ConfChange entries it writes.

import { expect, test } from "bun:test"
import { seededPrng } from "../lib/prng"
import { decodeConfChange } from "./conf_change_codec"
import { RaftNode } from "./raft_node"
import { MemoryStorage } from "./storage"
import { ConfChangeType, EntryType } from "./types"

const enc = (s: string): Uint8Array => new TextEncoder().encode(s)

function bootstrapEntries(options: { bootstrapContext?: (id: bigint) => Uint8Array }) {
  const node = new RaftNode({ id: 2n, peers: [3n, 1n, 2n], learners: [4n], storage: new MemoryStorage(), prng: seededPrng(1), ...options })
  const rd = node.ready()
  expect(rd.entries.map((e) => e.index)).toEqual([1, 2, 3, 4])
  expect(rd.committedEntries.map((e) => e.index)).toEqual([1, 2, 3, 4])
  for (const e of rd.entries) expect(e.type).toBe(EntryType.ConfChange)
  return rd.entries.map((e) => decodeConfChange(e.data))
}

test("bootstrap entries carry each member's context (what a replay from the log's start learns the members from)", () => {
  const changes = bootstrapEntries({ bootstrapContext: (id) => enc(`member ${id}`) })
  expect(changes.map((cc) => [cc.type, cc.nodeId, new TextDecoder().decode(cc.context)])).toEqual([
    [ConfChangeType.AddNode, 1n, "member 1"],
    [ConfChangeType.AddNode, 2n, "member 2"],
    [ConfChangeType.AddNode, 3n, "member 3"],
    [ConfChangeType.AddLearnerNode, 4n, "member 4"],
  ])
})

test("without bootstrapContext the bootstrap entries have empty contexts", () => {
  for (const cc of bootstrapEntries({})) expect(cc.context.length).toBe(0)
})
