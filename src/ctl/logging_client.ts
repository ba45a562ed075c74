// EtcdClient that logs a failed unary call on stderr as clientv3 3.4's retry
// interceptor does (etcdctl prints these zap lines before `Error: ...`).
import { randomUUID } from "node:crypto"
import { status } from "@grpc/grpc-js"
import { EtcdClient, GrpcError, grpcCodeOf, type CallOptions, type ClientOptions } from "../client"
import type { PbMethod } from "../pb"
import { jObject, jsonString } from "./go_fmt"
import { goCodeName, out } from "./output"

/** The zap ISO8601 time: milliseconds, UTC. */
export function zapIso(): string {
  return new Date().toISOString()
}

export class LoggingClient extends EtcdClient {
  private readonly target: string

  constructor(options: ClientOptions) {
    super(options)
    const first = (options.endpoints[0] ?? "").replace(/^[a-z]+:\/\//, "")
    this.target = `endpoint://client-${randomUUID()}/${first}`
  }

  override async unary<Req, ReqInit, Res, ResInit>(method: PbMethod<Req, ReqInit, Res, ResInit>, req: ReqInit, opts?: CallOptions): Promise<Res> {
    try {
      return await super.unary(method, req, opts)
    } catch (e) {
      this.log(e)
      throw e
    }
  }

  private log(e: unknown): void {
    const code = grpcCodeOf(e) ?? status.UNKNOWN
    let desc = e instanceof Error ? e.message : String(e)
    if (e instanceof GrpcError) desc = e.details
    let name = goCodeName(code)
    if (code === status.UNAVAILABLE && e instanceof GrpcError && !desc.startsWith("etcdserver:")) {
      name = "DeadlineExceeded"
      desc = "latest balancer error: all SubConns are in TransientFailure"
    }
    if (code === status.DEADLINE_EXCEEDED) desc = "context deadline exceeded"
    out.err(
      `${jObject([
        ["level", '"warn"'],
        ["ts", jsonString(zapIso())],
        ["caller", '"clientv3/retry_interceptor.go:62"'],
        ["msg", '"retrying of unary invoker failed"'],
        ["target", jsonString(this.target)],
        ["attempt", "0"],
        ["error", jsonString(`rpc error: code = ${name} desc = ${desc}`)],
      ])}\n`,
    )
  }
}
