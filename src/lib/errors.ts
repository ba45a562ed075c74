// Every error a user can trigger has a code here and etcd's exact message
// (etcd-io/etcd api/v3rpc/rpctypes/error.go). Lower rooms throw TskvError with a
// code; api/grpc maps the code to a gRPC status once (src/api/grpc/errors.ts);
// ctl and the client print the same text. The message lives here rather than
// at the gRPC edge because ctl, the HTTP gateway and the logs need it too.

export const etcdMessages = {
  emptyKey: "etcdserver: key is not provided",
  keyNotFound: "etcdserver: key not found",
  valueProvided: "etcdserver: value is provided",
  leaseProvided: "etcdserver: lease is provided",
  tooManyOps: "etcdserver: too many operations in txn request",
  duplicateKey: "etcdserver: duplicate key given in txn request",
  invalidSortOption: "etcdserver: invalid sort option",
  compacted: "etcdserver: mvcc: required revision has been compacted",
  futureRev: "etcdserver: mvcc: required revision is a future revision",
  noSpace: "etcdserver: mvcc: database space exceeded",
  leaseNotFound: "etcdserver: requested lease not found",
  leaseExist: "etcdserver: lease already exists",
  leaseTTLTooLarge: "etcdserver: too large lease TTL",
  watchCanceled: "etcdserver: watch canceled",
  memberExist: "etcdserver: member ID already exist",
  peerURLExist: "etcdserver: Peer URLs already exists",
  memberNotEnoughStarted: "etcdserver: re-configuration failed due to not enough started members",
  memberBadURLs: "etcdserver: given member URLs are invalid",
  memberNotFound: "etcdserver: member not found",
  memberNotLearner: "etcdserver: can only promote a learner member",
  learnerNotReady: "etcdserver: can only promote a learner member which is in sync with leader",
  tooManyLearners: "etcdserver: too many learner members in cluster",
  clusterIdMismatch: "etcdserver: cluster ID mismatch",
  requestTooLarge: "etcdserver: request is too large",
  tooManyRequests: "etcdserver: too many requests",
  /** tskv's: the member's data dir is full or read-only (server/storage_guard.ts); etcd 3.4 stops instead. */
  storageUnavailable: "etcdserver: the data dir cannot take writes (disk full or read-only)",
  rootUserNotExist: "etcdserver: root user does not exist",
  rootRoleNotExist: "etcdserver: root user does not have root role",
  userAlreadyExist: "etcdserver: user name already exists",
  userEmpty: "etcdserver: user name is empty",
  userNotFound: "etcdserver: user name not found",
  roleAlreadyExist: "etcdserver: role name already exists",
  roleNotFound: "etcdserver: role name not found",
  roleEmpty: "etcdserver: role name is empty",
  authFailed: "etcdserver: authentication failed, invalid user ID or password",
  permissionNotGiven: "etcdserver: permission not given",
  permissionDenied: "etcdserver: permission denied",
  roleNotGranted: "etcdserver: role is not granted to the user",
  permissionNotGranted: "etcdserver: permission is not granted to the role",
  authNotEnabled: "etcdserver: authentication is not enabled",
  invalidAuthToken: "etcdserver: invalid auth token",
  invalidAuthMgmt: "etcdserver: invalid auth management",
  authOldRevision: "etcdserver: revision of auth store is old",
  noLeader: "etcdserver: no leader",
  notLeader: "etcdserver: not leader",
  leaderChanged: "etcdserver: leader changed",
  notCapable: "etcdserver: not capable",
  stopped: "etcdserver: server stopped",
  timeout: "etcdserver: request timed out",
  timeoutDueToLeaderFail: "etcdserver: request timed out, possibly due to previous leader failure",
  timeoutDueToConnectionLost: "etcdserver: request timed out, possibly due to connection lost",
  timeoutWaitAppliedIndex: "etcdserver: request timed out, waiting for the applied index took too long",
  unhealthy: "etcdserver: unhealthy cluster",
  corrupt: "etcdserver: corrupt cluster",
  notSupportedForLearner: "etcdserver: rpc not supported for learner",
  badLeaderTransferee: "etcdserver: bad leader transferee",
  canceled: "etcdserver: request canceled",
  deadlineExceeded: "etcdserver: context deadline exceeded",
  // Not in rpctypes, but seen on the wire.
  watchDuplicateId: "mvcc: duplicate watch ID provided on the WatchStream",
  watchRangeEmpty: "mvcc: watcher range is empty",
  electionNoLeader: "election: no leader",
  electionNotLeader: "election: not leader",
  electionLeaderMissing: "\"leader\" field must be provided",
  memberRemoved: "the member has been permanently removed from the cluster",
  /** etcd 3.4 answers a proposal that found no leader within its request timeout with the raw context error. */
  proposalNoLeader: "context deadline exceeded",
} as const

export type TskvErrorCode = keyof typeof etcdMessages

export class TskvError extends Error {
  override readonly name = "TskvError"
  constructor(
    readonly code: TskvErrorCode,
    /** Extra context for logs; never replaces etcd's message on the wire. */
    readonly detail?: string,
  ) {
    super(etcdMessages[code])
  }
}

export function isTskvError(e: unknown, code?: TskvErrorCode): e is TskvError {
  return e instanceof TskvError && (code === undefined || e.code === code)
}

/** Finds the code whose etcd message is `message` (used by clients to type server errors). */
export function codeOfMessage(message: string): TskvErrorCode | undefined {
  for (const [code, text] of Object.entries(etcdMessages)) if (text === message) return code as TskvErrorCode
  return undefined
}
