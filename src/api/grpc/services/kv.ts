// etcdserverpb.KV: Range, Put, DeleteRange, Txn, Compact.
// Validate -> authorise -> (read locally | propose through raft) -> header.

import * as perms from "../../../auth/request_perms"
import { isReadOnly } from "../../../mvcc/kv_applier"
import { checkDeleteRangeRequest, checkPutRequest, checkRangeRequest, checkTxnRequest } from "../../../mvcc/validate"
import * as pb from "../../../pb"
import { countTxnOps } from "../../../server/applier"
import { RequestKind } from "../../../server/request"
import type { EtcdServer } from "../../../server/server"
import type { GrpcServer } from "../../../h2grpc"
import { admit, requestAuth } from "./context"

export function registerKvService(grpc: GrpcServer, server: EtcdServer): void {
  const K = pb.KVService
  const leaseKeys = (id: bigint): readonly Uint8Array[] => server.lessor.attachedKeys(id)

  grpc.addUnary(K.Range, async (req, call) => {
    const info = admit(server, call, { allowLearner: req.serializable })
    checkRangeRequest(req)
    if (server.auth) perms.checkRange(server.auth, info, req)
    if (!req.serializable) await server.linearizableBarrier()
    server.counters.mvccRange++
    const res = server.kv.range(req)
    res.header = server.header(res.header?.revision)
    return res
  })

  grpc.addUnary(K.Put, async (req, call) => {
    const info = admit(server, call)
    checkPutRequest(req)
    if (server.auth) perms.checkPut(server.auth, info, req, leaseKeys)
    await server.checkQuota(putCost(req))
    // The client's bytes as they came (decoding them gives `req`), not a re-encoding.
    const body = call.requestBytes ?? pb.encodePutRequest(req)
    const res = (await server.propose(RequestKind.Put, body, requestAuth(info))) as pb.PutResponse
    res.header = server.header(res.header?.revision)
    return res
  })

  grpc.addUnary(K.DeleteRange, async (req, call) => {
    const info = admit(server, call)
    checkDeleteRangeRequest(req)
    if (server.auth) perms.checkDeleteRange(server.auth, info, req)
    const res = (await server.propose(RequestKind.DeleteRange, pb.encodeDeleteRangeRequest(req), requestAuth(info))) as pb.DeleteRangeResponse
    res.header = server.header(res.header?.revision)
    return res
  })

  grpc.addUnary(K.Txn, async (req, call) => {
    const info = admit(server, call)
    checkTxnRequest(req, server.config.maxTxnOps)
    if (server.auth) perms.checkTxn(server.auth, info, req, leaseKeys)
    if (isReadOnly(req)) {
      if (!allSerializable(req)) await server.linearizableBarrier()
      const res = server.kv.txn(req)
      countTxnOps(server.counters, res)
      res.header = server.header(res.header?.revision)
      return res
    }
    await server.checkQuota(txnCost(req))
    const body = call.requestBytes ?? pb.encodeTxnRequest(req)
    const res = (await server.propose(RequestKind.Txn, body, requestAuth(info))) as pb.TxnResponse
    res.header = server.header(res.header?.revision)
    return res
  })

  grpc.addUnary(K.Compact, async (req, call) => {
    const info = admit(server, call)
    void info
    const res = (await server.propose(RequestKind.Compaction, pb.encodeCompactionRequest(req), requestAuth(info))) as pb.CompactionResponse
    if (req.physical) {
      while (server.store.compactionPending() && !server.isStopped()) await Bun.sleep(5)
    }
    res.header = server.header(res.header?.revision)
    return res
  })
}

/** etcd's quota cost of a put: key + value + 256 bytes of overhead (+64 with a lease). */
function putCost(req: pb.PutRequest): number {
  return req.key.length + req.value.length + 256 + (req.lease !== 0n ? 64 : 0)
}

function txnCost(req: pb.TxnRequest): number {
  let cost = 0
  for (const op of [...req.success, ...req.failure]) {
    if (op.requestPut) cost += putCost(op.requestPut)
    else if (op.requestTxn) cost += txnCost(op.requestTxn)
  }
  return cost
}

/** A read-only txn whose ranges are all serializable needs no ReadIndex (etcd). */
function allSerializable(req: pb.TxnRequest): boolean {
  const ops = [...req.success, ...req.failure]
  return ops.length > 0 && ops.every((op) => op.requestRange?.serializable === true)
}
