// Output and exit codes of etcdctl: synchronous writes (so nothing is lost at
// process.exit), `Error: <msg>` on stderr, etcdctl's exit codes.
import { status } from "@grpc/grpc-js"
import { writeSync } from "node:fs"
import { GrpcError } from "../client"
import { TskvError } from "../lib/errors"

export const ExitCode = {
  success: 0,
  error: 1,
  badConnection: 2,
  invalidInput: 3,
  badFeature: 4,
  interrupted: 5,
  io: 6,
  badArgs: 128,
} as const

/** Ends the command: prints `Error: <message>` and exits with `code`. */
export class CtlExit extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly opts: { usage?: boolean; silent?: boolean } = {},
  ) {
    super(message)
  }
}

function writeAll(fd: number, s: string | Uint8Array): void {
  let buf = typeof s === "string" ? Buffer.from(s) : Buffer.from(s.buffer, s.byteOffset, s.byteLength)
  while (buf.length > 0) {
    try {
      const n = writeSync(fd, buf)
      buf = buf.subarray(n)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EAGAIN") continue
      throw e
    }
  }
}

export const out = {
  write: (s: string | Uint8Array): void => writeAll(1, s),
  line: (s = ""): void => writeAll(1, `${s}\n`),
  err: (s: string): void => writeAll(2, s),
}

const goCodeNames: Record<number, string> = {
  [status.CANCELLED]: "Canceled",
  [status.UNKNOWN]: "Unknown",
  [status.INVALID_ARGUMENT]: "InvalidArgument",
  [status.DEADLINE_EXCEEDED]: "DeadlineExceeded",
  [status.NOT_FOUND]: "NotFound",
  [status.ALREADY_EXISTS]: "AlreadyExists",
  [status.PERMISSION_DENIED]: "PermissionDenied",
  [status.RESOURCE_EXHAUSTED]: "ResourceExhausted",
  [status.FAILED_PRECONDITION]: "FailedPrecondition",
  [status.ABORTED]: "Aborted",
  [status.OUT_OF_RANGE]: "OutOfRange",
  [status.UNIMPLEMENTED]: "Unimplemented",
  [status.INTERNAL]: "Internal",
  [status.UNAVAILABLE]: "Unavailable",
  [status.DATA_LOSS]: "DataLoss",
  [status.UNAUTHENTICATED]: "Unauthenticated",
}

export function goCodeName(code: number): string {
  return goCodeNames[code] ?? String(code)
}

/** The text etcdctl prints for an error of a call (clientv3's err.Error()). */
export function errorText(e: unknown): string {
  if (e instanceof CtlExit) return e.message
  if (e instanceof TskvError) return e.message
  if (e instanceof GrpcError) {
    if (e.grpcCode === status.DEADLINE_EXCEEDED) return "context deadline exceeded"
    if (e.grpcCode === status.UNAVAILABLE && /No connection established|connect|ECONNREFUSED/i.test(e.details)) {
      return "context deadline exceeded"
    }
    if (e.grpcCode === status.CANCELLED) return "context canceled"
    return `rpc error: code = ${goCodeNames[e.grpcCode] ?? e.grpcCode} desc = ${e.details}`
  }
  return e instanceof Error ? e.message : String(e)
}
