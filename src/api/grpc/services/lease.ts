// etcdserverpb.Lease: grants and revokes go through raft; keepalives are
// answered by the leader's lessor (a follower forwards them); TimeToLive and
// Leases read the lessor after a linearizable barrier.

import * as perms from "../../../auth/request_perms"
import { isTskvError, TskvError } from "../../../lib/errors"
import { MAX_LEASE_TTL_SECONDS, newLeaseId } from "../../../lease/lessor"
import * as pb from "../../../pb"
import { RequestKind } from "../../../server/request"
import type { EtcdServer } from "../../../server/server"
import type { GrpcServer } from "../../../h2grpc"
import { admit, requestAuth } from "./context"

export function registerLeaseService(grpc: GrpcServer, server: EtcdServer): void {
  const L = pb.LeaseService

  grpc.addUnary(L.LeaseGrant, async (req, call) => {
    const info = admit(server, call)
    if (req.TTL > MAX_LEASE_TTL_SECONDS) throw new TskvError("leaseTTLTooLarge")
    await server.checkQuota(64)
    const ID = req.ID === 0n ? newLeaseId() : req.ID
    const res = (await server.propose(RequestKind.LeaseGrant, pb.encodeLeaseGrantRequest({ ID, TTL: req.TTL }), requestAuth(info))) as pb.LeaseGrantResponse
    res.header = server.header(res.header?.revision)
    return res
  })

  grpc.addUnary(L.LeaseRevoke, async (req, call) => {
    const info = admit(server, call)
    if (server.auth && server.lessor.has(req.ID)) perms.checkLeaseRevoke(server.auth, info, server.lessor.keysOf(req.ID))
    const res = (await server.propose(RequestKind.LeaseRevoke, pb.encodeLeaseRevokeRequest(req), requestAuth(info))) as pb.LeaseRevokeResponse
    res.header = server.header(res.header?.revision)
    return res
  })

  grpc.addUnary(L.LeaseTimeToLive, async (req, call) => {
    const info = admit(server, call, { token: "ignoredWhileAuthOff" })
    await server.linearizableBarrier()
    if (server.auth && server.lessor.has(req.ID)) perms.checkLeaseTimeToLive(server.auth, info, server.lessor.keysOf(req.ID))
    const ttl = server.lessor.timeToLive(req.ID, req.keys)
    return { header: server.header(), ID: ttl.ID, TTL: ttl.TTL, grantedTTL: ttl.grantedTTL, keys: ttl.keys }
  })

  grpc.addUnary(L.LeaseLeases, async (_req, call) => {
    admit(server, call, { token: "ignoredWhileAuthOff" })
    await server.linearizableBarrier()
    return { header: server.header(), leases: server.lessor.leases() }
  })

  grpc.addBidi(L.LeaseKeepAlive, (call) => {
    try {
      admit(server, call, { token: "ignoredWhileAuthOff" })
    } catch (e) {
      call.end(e)
      return
    }
    // one renewal at a time, answered in order, as etcd's loop does; the end of the
    // client's stream ends ours after the last answer (the gateway's keepalive)
    let pending = Promise.resolve()
    call.onMessage((req) => {
      pending = pending.then(() =>
        renew(server, req.ID).then(
          (TTL) => {
            if (!call.ended) call.write({ header: server.header(), ID: req.ID, TTL })
          },
          (e: unknown) => call.end(e),
        ),
      )
    })
    call.onHalfClose(() => void pending.then(() => call.end()))
  })
}

/** TTL after renewing; 0 for an unknown or expired lease (etcd answers so, without an error). */
async function renew(server: EtcdServer, id: bigint): Promise<number> {
  if (!server.isLeader()) {
    if (server.forwardLeaseRenew) return await server.forwardLeaseRenew(id)
    throw new TskvError("notLeader")
  }
  try {
    const ttl = server.lessor.renew(id)
    server.counters.leaseRenewed++
    return ttl
  } catch (e) {
    if (isTskvError(e, "leaseNotFound")) return 0
    throw e
  }
}
