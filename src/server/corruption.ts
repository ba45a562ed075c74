// Corruption checks (etcd's --experimental-initial-corrupt-check /
// --feature-gates=InitialCorruptCheck and --experimental-corrupt-check-time):
// members that applied the same log must hold the same key-value history, so
// HashKV at one revision must agree wherever the compacted revision agrees.
// The initial check refuses to start a member whose state differs from its
// peers'; the periodic check (on the leader) raises the CORRUPT alarm for a
// member that differs, after which the cluster refuses writes.

import type { NodeId } from "../raft/types"

export interface PeerHash {
  memberId: NodeId
  hash: number
  compactRevision: number
  hashRevision: number
}

export interface HashCheckDeps {
  localId: NodeId
  /** This member's hash at `revision` (current when 0). */
  localHash(revision: number): PeerHash
  peers(): NodeId[]
  /** A peer's hash at `revision`; undefined when it cannot answer (unreachable, compacted past it, behind it). */
  peerHash(id: NodeId, revision: number): Promise<PeerHash | undefined>
}

export interface HashCheckResult {
  revision: number
  /** Peers that answered with a comparable hash. */
  compared: NodeId[]
  /** Peers whose hash differs from ours at the same revision and compacted revision. */
  mismatched: NodeId[]
}

export async function compareHashes(deps: HashCheckDeps): Promise<HashCheckResult> {
  const local = deps.localHash(0)
  const compared: NodeId[] = []
  const mismatched: NodeId[] = []
  await Promise.all(
    deps.peers().map(async (id) => {
      if (id === deps.localId) return
      const remote = await deps.peerHash(id, local.hashRevision)
      if (!remote || remote.hashRevision !== local.hashRevision || remote.compactRevision !== local.compactRevision) return
      compared.push(id)
      if (remote.hash !== local.hash) mismatched.push(id)
    }),
  )
  return { revision: local.hashRevision, compared, mismatched }
}
