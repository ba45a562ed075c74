// Shapes of the auth requests and responses (authpb / etcdserverpb, per the
// shared pb convention: camelCase fields, bytes as Uint8Array), declared here
// structurally so that a decoded request passes straight down; Permission,
// its type and UserAddOptions are src/pb's own. Responses omit the header; the
// server adds it.

export { Permission_Type as PermissionType, type Permission, type UserAddOptions } from "../pb/authpb"
import type { Permission, UserAddOptions } from "../pb/authpb"

/** Who a request comes from, as etcd's auth.AuthInfo. */
export interface AuthInfo {
  username: string
  /** The auth revision the credentials were issued at. */
  revision: number
}

export interface AuthStatus {
  enabled: boolean
  authRevision: number
}

export interface AuthUserAddRequest {
  name: string
  /** Plain password: never applied; the API layer hashes it into hashedPassword before raft. */
  password?: string
  hashedPassword: string
  options?: UserAddOptions
}

export interface AuthUserChangePasswordRequest {
  name: string
  password?: string
  hashedPassword: string
}

export interface AuthUserGrantRoleRequest {
  user: string
  role: string
}

export interface AuthUserRevokeRoleRequest {
  name: string
  role: string
}

export interface AuthRoleGrantPermissionRequest {
  name: string
  perm?: Permission
}

export interface AuthRoleRevokePermissionRequest {
  role: string
  key: Uint8Array
  rangeEnd: Uint8Array
}

export interface AuthUserGetResponse {
  roles: string[]
}

export interface AuthRoleGetResponse {
  perm: Permission[]
}

/** What the Authenticate apply needs (etcd's InternalAuthenticateRequest, plus the raft index). */
export interface AuthenticateApply {
  name: string
  /** Simple-token prefix drawn by the API layer before raft (genSimpleTokenPrefix()). */
  simpleToken: string
  /** Index of the raft entry being applied: the suffix of a simple token. */
  index: number
  /** Auth revision at which the API layer checked the password; stale → authOldRevision (retry). */
  checkedRevision?: number
}
