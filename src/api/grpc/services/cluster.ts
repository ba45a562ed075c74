// etcdserverpb.Cluster: the member list and runtime reconfiguration
// (add voter or learner, remove, update peer URLs, promote a learner), all
// admin-only when auth is on, as etcd.

import * as pb from "../../../pb"
import type { Member } from "../../../server/membership"
import type { EtcdServer } from "../../../server/server"
import type { GrpcServer } from "../../../h2grpc"
import { admit } from "./context"

export function toPbMember(m: Member): pb.MemberInit {
  return { ID: m.id, name: m.name, peerURLs: m.peerUrls, clientURLs: m.clientUrls, isLearner: m.isLearner }
}

export function registerClusterService(grpc: GrpcServer, server: EtcdServer): void {
  const C = pb.ClusterService
  const members = (): pb.MemberInit[] => server.membership.list().map(toPbMember)
  const header = (): pb.ResponseHeaderInit => {
    const h = server.header()
    return { clusterId: h.clusterId, memberId: h.memberId, raftTerm: h.raftTerm }
  }
  const admin = (call: Parameters<typeof admit>[1]): void => {
    server.auth?.isAdminPermitted(admit(server, call))
  }

  grpc.addUnary(C.MemberList, async (req, call) => {
    admit(server, call, { allowLearner: true, token: "ignored" })
    if (req.linearizable) await server.linearizableBarrier()
    return { header: header(), members: members() }
  })

  grpc.addUnary(C.MemberAdd, async (req, call) => {
    admin(call)
    const member = await server.memberAdd(req.peerURLs, req.isLearner)
    return { header: header(), member: toPbMember(member), members: members() }
  })

  grpc.addUnary(C.MemberRemove, async (req, call) => {
    admin(call)
    await server.memberRemove(req.ID)
    return { header: header(), members: members() }
  })

  grpc.addUnary(C.MemberUpdate, async (req, call) => {
    admin(call)
    await server.memberUpdate(req.ID, req.peerURLs)
    return { header: header(), members: members() }
  })

  grpc.addUnary(C.MemberPromote, async (req, call) => {
    admin(call)
    await server.memberPromote(req.ID)
    return { header: header(), members: members() }
  })
}
