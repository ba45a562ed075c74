// Typed errors raft throws to the server. None of them is a broken invariant
// (those are AssertionErrors); each means "this request did not enter raft,
// try again later or elsewhere". The server maps them to etcd errors:
//   ProposalDroppedError("noLeader")        -> TskvError("noLeader") after a retry window
//   ProposalDroppedError("leaderTransfer")  -> retry after the transfer (etcd: "leader changed")
//   ProposalDroppedError("removed")         -> TskvError("memberRemoved") / stopped
//   ProposalDroppedError("confChangePending") -> retry (etcd: "re-configuration failed"-like)
//   ReadIndexDroppedError("noLeader")       -> retry, then TskvError("noLeader")
// A proposal that was accepted (forwarded by a follower, or appended by a
// leader) can still be lost later (leader change, truncated log): the server
// learns that only by not seeing its entry applied, so it keeps a timeout.

export type DropReason =
  /** No known leader (election in progress, or isolated). */
  | "noLeader"
  /** The leader is handing leadership over; it refuses proposals meanwhile. */
  | "leaderTransfer"
  /** This member is not (or no longer) in the configuration. */
  | "removed"
  /** A membership change is proposed but not yet applied by the leader. */
  | "confChangePending"

export class ProposalDroppedError extends Error {
  override readonly name = "ProposalDroppedError"
  constructor(readonly reason: DropReason) {
    super(`raft: proposal dropped (${reason})`)
  }
}

export class ReadIndexDroppedError extends Error {
  override readonly name = "ReadIndexDroppedError"
  constructor(readonly reason: DropReason) {
    super(`raft: read index request dropped (${reason})`)
  }
}

/** Storage: the requested index is older than the first kept entry. */
export class CompactedError extends Error {
  override readonly name = "RaftCompactedError"
  constructor(readonly index: number) {
    super(`raft: requested index ${index} is unavailable due to compaction`)
  }
}

/** Storage: the snapshot is being made; raft asks again later. */
export class SnapshotTemporarilyUnavailableError extends Error {
  override readonly name = "SnapshotTemporarilyUnavailableError"
  constructor() {
    super("raft: snapshot is temporarily unavailable")
  }
}
