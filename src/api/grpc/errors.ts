// The one place where tskv's typed errors become gRPC statuses. The message is
// etcd's exact text (src/lib/errors.ts); the code is etcd 3.4's
// (etcd-io/etcd api/v3rpc/rpctypes/error.go at v3.4.x), because etcdctl 3.4 and
// the clients built against it are what we must satisfy. Where later versions
// changed a code (NotCapable, NotSupportedForLearner became FailedPrecondition
// in 3.6), we keep 3.4's Unavailable.

import { TskvError, type TskvErrorCode } from "../../lib/errors"
import { GrpcStatus, statusOfGrpcError, type GrpcServerOptions, type GrpcStatusCode, type StatusOf } from "../../h2grpc"

const S = GrpcStatus

export const grpcCodeOf = {
  emptyKey: S.INVALID_ARGUMENT,
  keyNotFound: S.INVALID_ARGUMENT,
  valueProvided: S.INVALID_ARGUMENT,
  leaseProvided: S.INVALID_ARGUMENT,
  tooManyOps: S.INVALID_ARGUMENT,
  duplicateKey: S.INVALID_ARGUMENT,
  invalidSortOption: S.INVALID_ARGUMENT,
  compacted: S.OUT_OF_RANGE,
  futureRev: S.OUT_OF_RANGE,
  noSpace: S.RESOURCE_EXHAUSTED,
  leaseNotFound: S.NOT_FOUND,
  leaseExist: S.FAILED_PRECONDITION,
  leaseTTLTooLarge: S.OUT_OF_RANGE,
  watchCanceled: S.CANCELLED,
  memberExist: S.FAILED_PRECONDITION,
  peerURLExist: S.FAILED_PRECONDITION,
  memberNotEnoughStarted: S.FAILED_PRECONDITION,
  memberBadURLs: S.INVALID_ARGUMENT,
  memberNotFound: S.NOT_FOUND,
  memberNotLearner: S.FAILED_PRECONDITION,
  learnerNotReady: S.FAILED_PRECONDITION,
  tooManyLearners: S.FAILED_PRECONDITION,
  clusterIdMismatch: S.FAILED_PRECONDITION,
  requestTooLarge: S.INVALID_ARGUMENT,
  tooManyRequests: S.RESOURCE_EXHAUSTED,
  // Unavailable: clients try another member, whose disk is fine.
  storageUnavailable: S.UNAVAILABLE,
  rootUserNotExist: S.FAILED_PRECONDITION,
  rootRoleNotExist: S.FAILED_PRECONDITION,
  userAlreadyExist: S.FAILED_PRECONDITION,
  userEmpty: S.INVALID_ARGUMENT,
  userNotFound: S.FAILED_PRECONDITION,
  roleAlreadyExist: S.FAILED_PRECONDITION,
  roleNotFound: S.FAILED_PRECONDITION,
  roleEmpty: S.INVALID_ARGUMENT,
  authFailed: S.INVALID_ARGUMENT,
  permissionNotGiven: S.INVALID_ARGUMENT,
  permissionDenied: S.PERMISSION_DENIED,
  roleNotGranted: S.FAILED_PRECONDITION,
  permissionNotGranted: S.FAILED_PRECONDITION,
  authNotEnabled: S.FAILED_PRECONDITION,
  invalidAuthToken: S.UNAUTHENTICATED,
  invalidAuthMgmt: S.INVALID_ARGUMENT,
  authOldRevision: S.INVALID_ARGUMENT,
  noLeader: S.UNAVAILABLE,
  notLeader: S.FAILED_PRECONDITION,
  leaderChanged: S.UNAVAILABLE,
  notCapable: S.UNAVAILABLE,
  stopped: S.UNAVAILABLE,
  timeout: S.UNAVAILABLE,
  timeoutDueToLeaderFail: S.UNAVAILABLE,
  timeoutDueToConnectionLost: S.UNAVAILABLE,
  timeoutWaitAppliedIndex: S.UNAVAILABLE,
  unhealthy: S.UNAVAILABLE,
  corrupt: S.DATA_LOSS,
  notSupportedForLearner: S.UNAVAILABLE,
  badLeaderTransferee: S.FAILED_PRECONDITION,
  canceled: S.CANCELLED,
  deadlineExceeded: S.DEADLINE_EXCEEDED,
  // Not rpctypes errors: etcd returns these raw (watch cancel reasons travel in
  // WatchResponse.cancel_reason; election errors reach clients as Unknown).
  watchDuplicateId: S.UNKNOWN,
  watchRangeEmpty: S.UNKNOWN,
  electionNoLeader: S.UNKNOWN,
  electionNotLeader: S.UNKNOWN,
  electionLeaderMissing: S.UNKNOWN,
  memberRemoved: S.UNKNOWN,
  proposalNoLeader: S.UNKNOWN,
} as const satisfies Record<TskvErrorCode, GrpcStatusCode>

export type { StatusOf }

/** The gRPC status a call ends with when its handler throws `error`. */
export function statusOfError(error: unknown): StatusOf {
  if (error instanceof TskvError) return { code: grpcCodeOf[error.code], message: error.message, unexpected: false }
  return statusOfGrpcError(error)
}

/** What a GrpcServer serving etcd's API needs: etcd's codes and texts for thrown errors and for shutdown. */
export const etcdGrpcErrors = {
  statusOf: statusOfError,
  stoppedMessage: new TskvError("stopped").message,
} as const satisfies GrpcServerOptions
