// grpc.health.v1.Health, as grpc-go's health server behaves: Check answers the
// status set for a service name ("" = the whole server) or NOT_FOUND "unknown
// service"; Watch sends the current status (SERVICE_UNKNOWN when unset) and
// every change after it.

import { HealthCheckResponse_ServingStatus as ServingStatus, HealthService as HealthMethods, type HealthCheckResponseInit } from "../../../pb"
import { type GrpcServer, type WritableCall, GrpcError, GrpcStatus } from "../../../h2grpc"

export { ServingStatus }

export class HealthService {
  private readonly statuses = new Map<string, ServingStatus>()
  private readonly watchers = new Map<string, Set<WritableCall<HealthCheckResponseInit>>>()

  constructor(initial: ServingStatus = ServingStatus.SERVING) {
    this.statuses.set("", initial)
  }

  register(server: GrpcServer): void {
    server.addUnary(HealthMethods.Check, (request) => {
      const status = this.statuses.get(request.service)
      if (status === undefined) throw new GrpcError(GrpcStatus.NOT_FOUND, "unknown service")
      return { status }
    })
    server.addServerStream(HealthMethods.Watch, (request, call) => {
      const service = request.service
      let set = this.watchers.get(service)
      if (set === undefined) this.watchers.set(service, (set = new Set()))
      const watchers = set
      watchers.add(call)
      call.onCancel(() => watchers.delete(call))
      call.write({ status: this.statuses.get(service) ?? ServingStatus.SERVICE_UNKNOWN })
    })
  }

  status(service = ""): ServingStatus | undefined {
    return this.statuses.get(service)
  }

  setStatus(status: ServingStatus, service = ""): void {
    if (this.statuses.get(service) === status) return
    this.statuses.set(service, status)
    for (const call of this.watchers.get(service) ?? []) {
      if (call.ended) this.watchers.get(service)?.delete(call)
      else call.write({ status })
    }
  }
}
