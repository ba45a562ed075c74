// etcd 3.4's v2 HTTP API (--enable-v2): keys, members, machines, stats, auth.

import type { Hono } from "hono"
import type { EtcdServer } from "../../server/server"
import { mountV2Auth } from "./v2_auth"
import { mountV2Cluster } from "./v2_cluster"
import { mountV2Keys } from "./v2_keys"

export function mountV2(app: Hono, server: EtcdServer): void {
  const store = server.v2
  if (store === undefined) throw new Error("--enable-v2 needs the member's v2 store")
  mountV2Keys(app, server, store)
  mountV2Cluster(app, server, store)
  mountV2Auth(app, server, store)
}
