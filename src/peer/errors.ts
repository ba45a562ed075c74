// Typed errors of the peer transport. The server acts on them: a
// MemberRemovedError means this member must stop serving; the others mean a
// peer could not be reached or refused us, and raft retries.

import { TskvError, etcdMessages, type TskvErrorCode } from "../lib/errors"

/** A peer sent bytes that are not a valid frame; the connection is closed. */
export class MalformedFrameError extends Error {
  override readonly name = "MalformedFrameError"
}

/** etcd's rafthttp text for a peer of another cluster (HTTP 412 there). */
export const CLUSTER_ID_MISMATCH_TEXT = "request cluster ID mismatch"

export class ClusterIdMismatchError extends Error {
  override readonly name = "ClusterIdMismatchError"
  constructor(readonly detail: string) {
    super(CLUSTER_ID_MISMATCH_TEXT)
  }
}

/** A peer told us that this member has been removed from the cluster: stop serving. */
export class MemberRemovedError extends TskvError {
  constructor(detail?: string) {
    super("memberRemoved", detail)
  }
}

/** The peer answered, but it is not the member we meant to reach. */
export class MemberIdMismatchError extends Error {
  override readonly name = "MemberIdMismatchError"
}

/** No connection to the peer (not added, dial failed, connection lost, transport stopped). */
export class PeerUnreachableError extends Error {
  override readonly name = "PeerUnreachableError"
}

/** A call got no answer within its timeout. */
export class RpcTimeoutError extends Error {
  override readonly name = "RpcTimeoutError"
}

/** The remote handler failed with an error that is not a TskvError. */
export class RpcRemoteError extends Error {
  override readonly name = "RpcRemoteError"
}

/** A snapshot transfer failed (the sender reports it to raft with reportSnapshot(failure)). */
export class SnapshotTransferError extends Error {
  override readonly name = "SnapshotTransferError"
}

export function tskvErrorOf(code: string, message: string): Error {
  return isErrorCode(code) ? new TskvError(code, `remote: ${message}`) : new RpcRemoteError(message)
}

function isErrorCode(code: string): code is TskvErrorCode {
  return Object.hasOwn(etcdMessages, code)
}
