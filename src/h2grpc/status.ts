// gRPC status codes (grpc/grpc doc/statuscodes.md). Numbers on the wire; names
// for logs and for the grpc_code label of grpc_server_handled_total.

export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const

export type GrpcStatusCode = (typeof GrpcStatus)[keyof typeof GrpcStatus]

/** Go's codes.Code.String(), as go-grpc-prometheus writes it in grpc_code. */
export const grpcCodeNames: readonly string[] = [
  "OK",
  "Canceled",
  "Unknown",
  "InvalidArgument",
  "DeadlineExceeded",
  "NotFound",
  "AlreadyExists",
  "PermissionDenied",
  "ResourceExhausted",
  "FailedPrecondition",
  "Aborted",
  "OutOfRange",
  "Unimplemented",
  "Internal",
  "Unavailable",
  "DataLoss",
  "Unauthenticated",
]

/** A call's final status, from whatever its handler threw. */
export interface StatusOf {
  code: GrpcStatusCode
  message: string
  /** True when the error is not one we expected (the transport logs it). */
  unexpected: boolean
}

/** An error a handler (or the transport) ends a call with: a code and a message. */
export class GrpcError extends Error {
  override readonly name = "GrpcError"
  constructor(
    readonly code: GrpcStatusCode,
    message: string,
  ) {
    super(message)
  }
}

/** The default GrpcServerOptions.statusOf: a GrpcError's code and message; anything else is UNKNOWN and logged. */
export function statusOfGrpcError(error: unknown): StatusOf {
  if (error instanceof GrpcError) return { code: error.code, message: error.message, unexpected: false }
  const message = error instanceof Error ? error.message : String(error)
  return { code: GrpcStatus.UNKNOWN, message, unexpected: true }
}
