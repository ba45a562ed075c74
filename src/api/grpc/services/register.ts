// Every etcd service the client port serves, registered on one GrpcServer.

import type { EtcdServer } from "../../../server/server"
import type { GrpcServer } from "../../../h2grpc"
import { registerAuthService } from "./auth"
import { registerClusterService } from "./cluster"
import { registerElectionService } from "./election"
import { waitingForSimpleTokens } from "./context"
import { registerKvService } from "./kv"
import { registerLeaseService } from "./lease"
import { registerLockService } from "./lock"
import { registerMaintenanceService } from "./maintenance"
import { registerWatchService } from "./watch"

export function registerServices(target: GrpcServer, server: EtcdServer): void {
  const grpc = waitingForSimpleTokens(target, server)
  registerKvService(grpc, server)
  registerLeaseService(grpc, server)
  registerMaintenanceService(grpc, server)
  registerClusterService(grpc, server)
  registerWatchService(grpc, server)
  registerAuthService(grpc, server)
  registerLockService(grpc, server)
  registerElectionService(grpc, server)
}
