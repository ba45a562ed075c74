// --force-new-cluster (etcd's restartAsStandaloneNode): the survivor of a lost
// quorum restarts as a one-member cluster. Entries after the WAL's commit index
// are discarded (nothing acknowledged can be among them: a write is answered
// after it was applied, and applied <= commit); then one RemoveNode entry per
// other member is appended at commit+1.. in the current term and committed by
// force, so that applying them leaves this member the only voter.

import { decodeConfChange, encodeConfChange } from "../raft/conf_change_codec"
import { ConfChangeType, type ConfState, type Entry, EntryType, type HardState, type NodeId } from "../raft/types"

export interface ForcedLog {
  /** The log to start raft with: the committed entries, then the forced conf changes. */
  entries: Entry[]
  /** The forced conf changes alone (to append to the WAL). */
  appended: Entry[]
  hardState: HardState
  /** How many uncommitted entries were dropped. */
  discarded: number
  /** The members removed. */
  removed: NodeId[]
}

/** The members (voters and learners) in the configuration after `entries` (etcd: getIDs). */
export function membersAfter(confState: ConfState, entries: readonly Entry[]): NodeId[] {
  const ids = new Set<NodeId>([...confState.voters, ...confState.learners])
  for (const e of entries) {
    if (e.type !== EntryType.ConfChange) continue
    const cc = decodeConfChange(e.data)
    if (cc.type === ConfChangeType.AddNode || cc.type === ConfChangeType.AddLearnerNode) ids.add(cc.nodeId)
    else if (cc.type === ConfChangeType.RemoveNode) ids.delete(cc.nodeId)
  }
  return [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
}

export function forceNewClusterLog(options: { self: NodeId; confState: ConfState; entries: readonly Entry[]; hardState: HardState }): ForcedLog {
  const { self, hardState } = options
  const committed = options.entries.filter((e) => e.index <= hardState.commit)
  const removed = membersAfter(options.confState, committed).filter((id) => id !== self)
  const appended = removed.map(
    (nodeId, k): Entry => ({
      term: hardState.term,
      index: hardState.commit + 1 + k,
      type: EntryType.ConfChange,
      data: encodeConfChange({ type: ConfChangeType.RemoveNode, nodeId, context: new Uint8Array(0) }),
    }),
  )
  return {
    entries: [...committed, ...appended],
    appended,
    hardState: { ...hardState, commit: hardState.commit + appended.length },
    discarded: options.entries.length - committed.length,
    removed,
  }
}
