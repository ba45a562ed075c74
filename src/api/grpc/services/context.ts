// What every service checks before it calls the server: the member is not
// stopped, a learner only serves what etcd lets it serve, the `hasleader`
// requirement, and who the caller is (auth token or client certificate CN).

import type { AuthInfo } from "../../../auth/types"
import { isTskvError, TskvError } from "../../../lib/errors"
import type { EtcdServer, RequestAuth } from "../../../server/server"
import type { CallContext } from "../transport/grpc_server"
import { GrpcError, GrpcStatus } from "../transport/status"

export interface RequestOptions {
  /** Learners serve only Status and serializable Range (etcd). */
  allowLearner?: boolean
}

/** Checks common to every request; returns the caller's auth info (null: auth off). */
export function admit(server: EtcdServer, call: CallContext, options: RequestOptions = {}): AuthInfo | null {
  if (server.isStopped()) throw new TskvError("stopped")
  if (!options.allowLearner && server.isLearner()) throw new TskvError("notSupportedForLearner")
  if (call.header("hasleader") === "true" && !server.hasLeader()) throw new TskvError("noLeader")
  return callerAuth(server, call)
}

export function callerAuth(server: EtcdServer, call: CallContext): AuthInfo | null {
  const auth = server.auth
  if (!auth || !auth.isEnabled()) return null
  return auth.authInfo(call.header("token") ?? call.header("authorization")?.replace(/^Bearer /, ""), call.peerCommonName)
}

/** What the raft entry records of the caller. */
export function requestAuth(info: AuthInfo | null): RequestAuth | undefined {
  return info ? { user: info.username, revision: info.revision } : undefined
}

/**
 * etcd 3.4's Defragment, Snapshot, Hash and HashKV check the caller outside
 * the error mapping: the auth package's own errors reach the client as
 * Unknown with an `auth: ` message (etcdctl prints e.g. `rpc error: code =
 * Unknown desc = auth: permission denied`). Runs `check` and answers so.
 */
export function maintenanceAuthCheck(check: () => void): void {
  try {
    check()
  } catch (e) {
    if (!isTskvError(e) || !["permissionDenied", "userEmpty", "userNotFound", "invalidAuthToken", "authOldRevision"].includes(e.code)) throw e
    const message = e.code === "authOldRevision" ? "auth: revision in header is old" : e.message.replace(/^etcdserver: /, "auth: ")
    throw new GrpcError(GrpcStatus.UNKNOWN, message)
  }
}
