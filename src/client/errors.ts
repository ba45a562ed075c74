// Errors the client hands back: a TskvError when the server sent one of etcd's
// messages, else a GrpcError carrying the gRPC status code and details.
import { status, type ServiceError } from "@grpc/grpc-js"
import { codeOfMessage, TskvError } from "../lib/errors"

export class GrpcError extends Error {
  override readonly name = "GrpcError"
  constructor(
    /** gRPC status code (`status.UNAVAILABLE` ...). */
    readonly grpcCode: number,
    readonly details: string,
  ) {
    super(`${status[grpcCode] ?? grpcCode}: ${details}`)
  }
}

/** A TskvError that also remembers the gRPC code it arrived with. */
export interface ClientTskvError extends TskvError {
  readonly grpcCode?: number
}

function isServiceError(e: unknown): e is ServiceError {
  return e instanceof Error && typeof (e as Partial<ServiceError>).code === "number" && "details" in e
}

/** Grpc status code of an error made by toClientError (undefined for other errors). */
export function grpcCodeOf(e: unknown): number | undefined {
  if (e instanceof GrpcError) return e.grpcCode
  if (e instanceof TskvError) return (e as ClientTskvError).grpcCode
  return undefined
}

export function toClientError(e: unknown): Error {
  if (!isServiceError(e)) return e instanceof Error ? e : new Error(String(e))
  const details = e.details ?? ""
  const code = codeOfMessage(details)
  if (code !== undefined) {
    const err = new TskvError(code)
    Object.defineProperty(err, "grpcCode", { value: e.code, enumerable: false })
    return err
  }
  return new GrpcError(e.code, details)
}
