// etcdserverpb.Cluster: the member list (membership changes arrive with
// the cluster issue).

import * as pb from "../../../pb"
import type { Member } from "../../../server/membership"
import type { EtcdServer } from "../../../server/server"
import type { GrpcServer } from "../transport/grpc_server"
import { admit } from "./context"

export function toPbMember(m: Member): pb.MemberInit {
  return { ID: m.id, name: m.name, peerURLs: m.peerUrls, clientURLs: m.clientUrls, isLearner: m.isLearner }
}

export function registerClusterService(grpc: GrpcServer, server: EtcdServer): void {
  const C = pb.ClusterService
  grpc.addUnary(C.MemberList, async (req, call) => {
    admit(server, call, { allowLearner: true })
    if (req.linearizable) await server.linearizableBarrier()
    const header = server.header()
    return { header: { clusterId: header.clusterId, memberId: header.memberId, raftTerm: header.raftTerm }, members: server.membership.list().map(toPbMember) }
  })
}
