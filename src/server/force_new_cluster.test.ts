import { expect, test } from "bun:test"
import { decodeConfChange, encodeConfChange } from "../raft/conf_change_codec"
import { ConfChangeType, type Entry, EntryType } from "../raft/types"
import { forceNewClusterLog, membersAfter } from "./force_new_cluster"

const cc = (index: number, type: ConfChangeType, nodeId: bigint, term = 1): Entry => ({
  term,
  index,
  type: EntryType.ConfChange,
  data: encodeConfChange({ type, nodeId, context: new Uint8Array(0) }),
})
const put = (index: number, term: number): Entry => ({ term, index, type: EntryType.Normal, data: new Uint8Array([index]) })

test("membersAfter() follows the snapshot's configuration through the conf changes of the log", () => {
  const entries = [cc(11, ConfChangeType.AddLearnerNode, 9n), cc(12, ConfChangeType.RemoveNode, 2n), cc(13, ConfChangeType.AddNode, 9n)]
  expect(membersAfter({ voters: [3n, 1n, 2n], learners: [] }, entries)).toEqual([1n, 3n, 9n])
})

test("forceNewClusterLog() drops the entries after the commit index and commits one RemoveNode per other member", () => {
  const entries = [cc(1, ConfChangeType.AddNode, 1n), cc(2, ConfChangeType.AddNode, 2n), cc(3, ConfChangeType.AddNode, 3n), put(4, 2), put(5, 2), put(6, 3)]
  const forced = forceNewClusterLog({ self: 2n, confState: { voters: [], learners: [] }, entries, hardState: { term: 3, vote: 1n, commit: 5 } })
  expect(forced.discarded).toBe(1)
  expect(forced.removed).toEqual([1n, 3n])
  expect(forced.appended.map((e) => [e.index, e.term, decodeConfChange(e.data).type, decodeConfChange(e.data).nodeId])).toEqual([
    [6, 3, ConfChangeType.RemoveNode, 1n],
    [7, 3, ConfChangeType.RemoveNode, 3n],
  ])
  expect(forced.entries.map((e) => e.index)).toEqual([1, 2, 3, 4, 5, 6, 7])
  expect(forced.hardState).toEqual({ term: 3, vote: 1n, commit: 7 })
})

test("forceNewClusterLog() on a one-member log changes nothing", () => {
  const entries = [cc(1, ConfChangeType.AddNode, 1n), put(2, 1)]
  const forced = forceNewClusterLog({ self: 1n, confState: { voters: [], learners: [] }, entries, hardState: { term: 1, vote: 1n, commit: 2 } })
  expect(forced).toEqual({ entries, appended: [], hardState: { term: 1, vote: 1n, commit: 2 }, discarded: 0, removed: [] })
})
