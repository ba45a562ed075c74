// What every service checks before it calls the server: the member is not
// stopped, a learner only serves what etcd lets it serve, the `hasleader`
// requirement, and who the caller is (auth token or client certificate CN).

import type { AuthInfo } from "../../../auth/types"
import { TskvError } from "../../../lib/errors"
import type { EtcdServer, RequestAuth } from "../../../server/server"
import type { CallContext } from "../transport/grpc_server"

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
