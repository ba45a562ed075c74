// etcdserverpb.Auth: users, roles, permissions, enable/disable and
// Authenticate. Every mutation is one RequestKind.Auth raft entry (an AuthOp,
// server/auth_apply.ts) applied by every member; what is expensive or must
// not enter the log is done here first: the bcrypt hash of a new password
// (--bcrypt-cost), the password check of Authenticate, the random prefix of
// a simple token and the secret drawn by AuthEnable. The admin rule is
// checked here (so an unauthorised caller costs no hash) and again at apply.

import { hashPassword } from "../../../auth/password"
import { genSimpleTokenPrefix, newAuthSecret } from "../../../auth/tokens"
import type { AuthStore } from "../../../auth/store"
import type { AuthInfo } from "../../../auth/types"
import { utf8 } from "../../../lib/bytes"
import { isTskvError, TskvError } from "../../../lib/errors"
import * as pb from "../../../pb"
import { type AuthApplyResult, type AuthOp, encodeAuthOp } from "../../../server/auth_apply"
import { RequestKind } from "../../../server/request"
import type { EtcdServer } from "../../../server/server"
import { type CallContext, type GrpcServer, GrpcError, GrpcStatus } from "../../../h2grpc"
import { admit, requestAuth } from "./context"

/** etcd retries Authenticate while the auth store changes under it; tskv gives up after this many tries. */
const AUTHENTICATE_TRIES = 8
/** The raft entry records the user name in 16 bits of length. */
const MAX_NAME_BYTES = 0xffff

export function registerAuthService(grpc: GrpcServer, server: EtcdServer): void {
  const A = pb.AuthService
  const store = (): AuthStore => {
    if (!server.auth) throw new TskvError("notCapable", "auth is not configured on this member")
    return server.auth
  }
  const header = (): pb.ResponseHeaderInit => server.header()

  /** Admin check before raft, then the op through raft (checked again at apply). */
  const mutate = async (call: CallContext, op: (info: AuthInfo | null) => Promise<AuthOp> | AuthOp): Promise<AuthApplyResult> => {
    const info = admit(server, call)
    store().isAdminPermitted(info)
    const body = encodeAuthOp(await op(info))
    return (await server.propose(RequestKind.Auth, body, requestAuth(info))) as AuthApplyResult
  }
  const hash = (password: string): Promise<string> => hashPassword(password, server.config.bcryptCost)

  grpc.addUnary(A.AuthEnable, async (_req, call) => {
    await mutate(call, () => ({ op: "enable", secret: newAuthSecret() }))
    return { header: header() }
  })

  grpc.addUnary(A.AuthDisable, async (_req, call) => {
    await mutate(call, () => ({ op: "disable" }))
    return { header: header() }
  })

  grpc.addUnary(A.AuthStatus, async (_req, call) => {
    admit(server, call)
    await server.linearizableBarrier()
    const s = store().status()
    return { header: header(), enabled: s.enabled, authRevision: s.authRevision }
  })

  grpc.addUnary(A.Authenticate, async (req, call) => {
    if (server.isStopped()) throw new TskvError("stopped")
    if (server.isLearner()) throw new TskvError("notSupportedForLearner")
    const auth = store()
    // etcd answers so (unmapped) from a member whose jwt key is public only.
    if (auth.isEnabled() && !auth.canIssueTokens()) throw new GrpcError(GrpcStatus.UNKNOWN, "auth: token signing attempted with verify-only key")
    for (let attempt = 1; ; attempt++) {
      const checkedRevision = await auth.checkPassword(req.name, req.password)
      const op: AuthOp = { op: "authenticate", name: req.name, simpleToken: genSimpleTokenPrefix(), checkedRevision }
      try {
        const res = (await server.propose(RequestKind.Auth, encodeAuthOp(op))) as { token: string }
        return { header: header(), token: res.token }
      } catch (e) {
        // The user changed between the password check and the apply: check again (etcd does).
        if (!isTskvError(e, "authOldRevision") || attempt >= AUTHENTICATE_TRIES) throw e
      }
    }
  })

  grpc.addUnary(A.UserAdd, async (req, call) => {
    if (utf8(req.name).length > MAX_NAME_BYTES) throw new TskvError("requestTooLarge", "user name longer than 65535 bytes")
    const noPassword = req.options?.noPassword === true
    await mutate(call, async () => ({
      op: "userAdd",
      name: req.name,
      noPassword,
      hashedPassword: noPassword ? "" : await chosenHash(req, hash),
    }))
    return { header: header() }
  })

  grpc.addUnary(A.UserGet, async (req, call) => {
    const info = admit(server, call)
    await server.linearizableBarrier()
    store().isUserGetPermitted(info, req.name)
    return { header: header(), roles: store().userGet(req.name).roles }
  })

  grpc.addUnary(A.UserList, async (_req, call) => {
    const info = admit(server, call)
    await server.linearizableBarrier()
    store().isAdminPermitted(info)
    return { header: header(), users: store().userList() }
  })

  grpc.addUnary(A.UserDelete, async (req, call) => {
    await mutate(call, () => ({ op: "userDelete", name: req.name }))
    return { header: header() }
  })

  grpc.addUnary(A.UserChangePassword, async (req, call) => {
    await mutate(call, async () => ({ op: "userChangePassword", name: req.name, hashedPassword: await chosenHash(req, hash) }))
    return { header: header() }
  })

  grpc.addUnary(A.UserGrantRole, async (req, call) => {
    await mutate(call, () => ({ op: "userGrantRole", user: req.user, role: req.role }))
    return { header: header() }
  })

  grpc.addUnary(A.UserRevokeRole, async (req, call) => {
    await mutate(call, () => ({ op: "userRevokeRole", name: req.name, role: req.role }))
    return { header: header() }
  })

  grpc.addUnary(A.RoleAdd, async (req, call) => {
    await mutate(call, () => ({ op: "roleAdd", name: req.name }))
    return { header: header() }
  })

  grpc.addUnary(A.RoleGet, async (req, call) => {
    const info = admit(server, call)
    await server.linearizableBarrier()
    store().isRoleGetPermitted(info, req.role)
    return { header: header(), perm: store().roleGet(req.role).perm }
  })

  grpc.addUnary(A.RoleList, async (_req, call) => {
    const info = admit(server, call)
    await server.linearizableBarrier()
    store().isAdminPermitted(info)
    return { header: header(), roles: store().roleList() }
  })

  grpc.addUnary(A.RoleDelete, async (req, call) => {
    await mutate(call, () => ({ op: "roleDelete", name: req.role }))
    return { header: header() }
  })

  grpc.addUnary(A.RoleGrantPermission, async (req, call) => {
    const perm = req.perm
    if (perm === undefined) throw new TskvError("permissionNotGiven")
    await mutate(call, () => ({ op: "roleGrantPermission", name: req.name, permType: perm.permType, key: perm.key, rangeEnd: perm.rangeEnd }))
    return { header: header() }
  })

  grpc.addUnary(A.RoleRevokePermission, async (req, call) => {
    await mutate(call, () => ({ op: "roleRevokePermission", role: req.role, key: req.key, rangeEnd: req.rangeEnd }))
    return { header: header() }
  })
}

/**
 * The hash to store: the bcrypt hash of `password`, or a bcrypt hash the
 * client made itself (etcd 3.5+ `hashedPassword`, with no plain password).
 */
async function chosenHash(req: { password: string; hashedPassword: string }, hash: (p: string) => Promise<string>): Promise<string> {
  if (req.password === "" && req.hashedPassword !== "") {
    if (!/^\$2[abxy]?\$\d\d\$[./A-Za-z0-9]{53}$/.test(req.hashedPassword)) throw new TskvError("authFailed", "hashedPassword is not a bcrypt hash")
    return req.hashedPassword
  }
  return await hash(req.password)
}
