// Every etcd service the client port serves, registered on one GrpcServer.

import type { EtcdServer } from "../../../server/server"
import type { GrpcServer } from "../transport/grpc_server"
import { registerAuthService } from "./auth"
import { registerClusterService } from "./cluster"
import { registerKvService } from "./kv"
import { registerLeaseService } from "./lease"
import { registerMaintenanceService } from "./maintenance"
import { registerWatchService } from "./watch"

export function registerServices(grpc: GrpcServer, server: EtcdServer): void {
  registerKvService(grpc, server)
  registerLeaseService(grpc, server)
  registerMaintenanceService(grpc, server)
  registerClusterService(grpc, server)
  registerWatchService(grpc, server)
  registerAuthService(grpc, server)
}
