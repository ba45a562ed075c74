// etcd's v2 error codes, messages and HTTP statuses (etcd 3.4 etcdserver/api/v2error).
// A V2Error is an answer, not a failure of the member: apply returns it to the
// proposer, and the HTTP room writes it as {"errorCode","message","cause","index"}.

export const V2ErrorCode = {
  KeyNotFound: 100,
  TestFailed: 101,
  NotFile: 102,
  NotDir: 104,
  NodeExist: 105,
  RootReadOnly: 107,
  DirNotEmpty: 108,
  Unauthorized: 110,
  PrevValueRequired: 201,
  TtlNaN: 202,
  IndexNaN: 203,
  InvalidField: 209,
  InvalidForm: 210,
  RefreshValue: 211,
  RefreshTtlRequired: 212,
  RaftInternal: 300,
  LeaderElect: 301,
  WatcherCleared: 400,
  EventIndexCleared: 401,
} as const

export type V2ErrorCodeValue = (typeof V2ErrorCode)[keyof typeof V2ErrorCode]

const messages: Record<V2ErrorCodeValue, string> = {
  100: "Key not found",
  101: "Compare failed",
  102: "Not a file",
  104: "Not a directory",
  105: "Key already exists",
  107: "Root is read only",
  108: "Directory not empty",
  110: "The request requires user authentication",
  201: "PrevValue is Required in POST form",
  202: "The given TTL in POST form is not a number",
  203: "The given index in POST form is not a number",
  209: "Invalid field",
  210: "Invalid POST form",
  211: "Value provided on refresh",
  212: "A TTL must be provided on refresh",
  300: "Raft Internal Error",
  301: "During Leader Election",
  400: "watcher is cleared due to etcd recovery",
  401: "The event in requested index is outdated and cleared",
}

/** etcd's errorStatus; every other code answers 400. */
const statuses: Partial<Record<V2ErrorCodeValue, number>> = {
  100: 404,
  101: 412,
  102: 403,
  105: 412,
  108: 403,
  110: 401,
  300: 500,
  301: 500,
}

export interface V2ErrorJson {
  errorCode: number
  message: string
  cause?: string
  index: number
}

export class V2Error extends Error {
  override readonly name = "V2Error"
  constructor(
    readonly errorCode: V2ErrorCodeValue,
    readonly cause_: string,
    public index: number,
  ) {
    super(`${errorCode}: ${messages[errorCode]} (${cause_}) [${index}]`)
  }

  status(): number {
    return statuses[this.errorCode] ?? 400
  }

  toJson(): V2ErrorJson {
    const j: V2ErrorJson = { errorCode: this.errorCode, message: messages[this.errorCode], index: this.index }
    if (this.cause_ !== "") j.cause = this.cause_
    return { errorCode: j.errorCode, message: j.message, ...(j.cause !== undefined ? { cause: j.cause } : {}), index: j.index }
  }

  static fromJson(j: V2ErrorJson): V2Error {
    return new V2Error(j.errorCode as V2ErrorCodeValue, j.cause ?? "", j.index)
  }
}

export function v2Message(code: V2ErrorCodeValue): string {
  return messages[code]
}
