// What every service checks before it calls the server: the member is not
// stopped, a learner only serves what etcd lets it serve, the `hasleader`
// requirement, and who the caller is (auth token or client certificate CN).

import { simpleTokenIndex } from "../../../auth/tokens"
import type { AuthInfo } from "../../../auth/types"
import { isTskvError, TskvError } from "../../../lib/errors"
import type { EtcdServer, RequestAuth } from "../../../server/server"
import { type CallContext, type GrpcServer, GrpcError, GrpcStatus } from "../../../h2grpc"

export interface RequestOptions {
  /** Learners serve only Status and serializable Range (etcd). */
  allowLearner?: boolean
  /**
   * How etcd 3.4 reads the caller's token here: "checked" (the default: every raft
   * request, Range, watch creates, member changes, Defragment/Hash/Snapshot), or
   * not at all while auth is off ("ignoredWhileAuthOff": the lease reads, MoveLeader,
   * lock and election, which reach the server without the caller's metadata), or
   * never ("ignored": MemberList, Status, the watch stream's start).
   */
  token?: "checked" | "ignoredWhileAuthOff" | "ignored"
}

/** Checks common to every request; returns the caller's auth info (null: auth off). */
export function admit(server: EtcdServer, call: CallContext, options: RequestOptions = {}): AuthInfo | null {
  if (server.isStopped()) throw new TskvError("stopped")
  if (!options.allowLearner && server.isLearner()) throw new TskvError("notSupportedForLearner")
  if (call.header("hasleader") === "true" && !server.hasLeader()) throw new TskvError("noLeader")
  const token = options.token ?? "checked"
  if (token === "ignored") return null
  if (token === "ignoredWhileAuthOff" && !server.auth?.isEnabled()) return null
  return callerAuth(server, call)
}

/** Who the caller is; with auth off, null (a token that does not verify is refused, as etcd 3.4 does). */
export function callerAuth(server: EtcdServer, call: CallContext): AuthInfo | null {
  const auth = server.auth
  if (!auth) return null
  return auth.authInfo(callToken(call), auth.isEnabled() ? call.peerCommonName : undefined)
}

/**
 * The auth token a call carries: gRPC metadata `token`, else `authorization` as it
 * came (etcd 3.4 strips no `Bearer ` prefix: such a token is invalid there).
 */
export function callToken(call: CallContext): string | undefined {
  return call.header("token") ?? call.header("authorization")
}

/**
 * The raft index of the simple token a call carries when this member has not
 * applied it yet (the client logged in through another member), else null.
 */
export function pendingTokenIndex(server: EtcdServer, call: CallContext): number | null {
  const auth = server.auth
  if (!auth || !auth.isEnabled()) return null
  const token = callToken(call)
  const index = token === undefined ? null : simpleTokenIndex(token)
  return index !== null && index > server.appliedIndex ? index : null
}

/**
 * Registers unary handlers so that a call with a simple token issued at an
 * index this member has not applied yet first waits for that index (at most
 * the request timeout), as etcd's simple token provider does: a client that
 * logged in on one member can use its token on another at once.
 */
export function waitingForSimpleTokens(grpc: GrpcServer, server: EtcdServer): GrpcServer {
  const addUnary: GrpcServer["addUnary"] = (method, handler) =>
    grpc.addUnary(method, (req, call) => {
      const index = pendingTokenIndex(server, call)
      if (index === null) return handler(req, call)
      return waitAppliedAtMost(server, index, server.requestTimeoutMs()).then(() => handler(req, call))
    })
  return new Proxy(grpc, {
    get(target, prop) {
      if (prop === "addUnary") return addUnary
      const value: unknown = Reflect.get(target, prop, target)
      return typeof value === "function" ? value.bind(target) : value
    },
  })
}

async function waitAppliedAtMost(server: EtcdServer, index: number, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined
  await Promise.race([server.waitApplied(index), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))])
  clearTimeout(timer)
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
