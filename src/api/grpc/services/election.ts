// v3electionpb.Election: etcd's server-side election recipe
// (clientv3/concurrency.Election) on the member's own KV, Lease and Watch.
//
// A candidate's key is `name/<lease hex>`; the leader is the key under
// `name/` with the lowest create revision, its value the proclaimed value.
// Campaign returns once every older candidate's key is gone; Proclaim and
// Resign act only while the key still has the create revision the campaign
// got (else `election: not leader`, or nothing for Resign); Observe streams
// the leader's value at every change and follows leadership as it passes on.

import { isTskvError, TskvError } from "../../../lib/errors"
import { concatBytes, prefixEnd, toHex, utf8 } from "../../../lib/bytes"
import * as pb from "../../../pb"
import type { EtcdServer } from "../../../server/server"
import type { GrpcServer } from "../../../h2grpc"
import { admit } from "./context"
import { Recipe, recipeCaller } from "./lock"

const SLASH = utf8("/")

export function registerElectionService(grpc: GrpcServer, server: EtcdServer): void {
  const E = pb.ElectionService

  grpc.addUnary(E.Campaign, async (req, call) => {
    const info = recipeCaller(server, call)
    const recipe = new Recipe(server, info, call)
    const lease = req.lease !== 0n ? req.lease : await recipe.grantSessionLease()
    const prefix = concatBytes([req.name, SLASH])
    const key = concatBytes([prefix, utf8(toHex(lease))])
    const own = await recipe.createOwnKey(key, req.value, lease)
    const leader = { name: req.name, key, rev: own.revision, lease }
    let headerRevision = own.existing === undefined ? own.revision : server.store.currentRevision()
    try {
      if (own.existing !== undefined && Buffer.compare(own.existing.value, req.value) !== 0) {
        headerRevision = await proclaim(recipe, leader, req.value)
      }
      await recipe.waitDeletes(prefix, own.revision - 1)
    } catch (e) {
      await resign(recipe, leader)
      throw e
    }
    return { header: server.header(headerRevision), leader }
  })

  grpc.addUnary(E.Proclaim, async (req, call) => {
    const info = recipeCaller(server, call)
    if (req.leader === undefined) throw new TskvError("electionLeaderMissing")
    const recipe = new Recipe(server, info, call)
    await sessionOf(recipe, req.leader)
    const revision = await proclaim(recipe, req.leader, req.value)
    return { header: server.header(revision) }
  })

  grpc.addUnary(E.Resign, async (req, call) => {
    const info = recipeCaller(server, call)
    if (req.leader === undefined) throw new TskvError("electionLeaderMissing")
    const recipe = new Recipe(server, info, call)
    await sessionOf(recipe, req.leader)
    const revision = await resign(recipe, req.leader)
    return { header: server.header(revision) }
  })

  grpc.addUnary(E.Leader, async (req, call) => {
    const info = recipeCaller(server, call)
    const recipe = new Recipe(server, info, call)
    const { kv, revision } = await recipe.firstCreated(concatBytes([req.name, SLASH]))
    if (kv === undefined) throw new TskvError("electionNoLeader")
    return { header: server.header(revision), kv }
  })

  grpc.addServerStream(E.Observe, async (req, call) => {
    let recipe: Recipe
    try {
      recipe = new Recipe(server, admit(server, call), call)
    } catch (e) {
      // etcd's observe loop ends quietly when its client's first read fails on the token
      call.end(isTskvError(e, "invalidAuthToken") ? undefined : e)
      return
    }
    try {
      await observe(recipe, concatBytes([req.name, SLASH]), (res) => call.write(res))
      call.end()
    } catch (e) {
      if (!call.ended && !call.cancelled) call.end(e)
    }
  })
}

/**
 * etcd opens a concurrency session on the leader key's lease for Proclaim and
 * Resign: a leader key without a lease gets a new 60 s session lease, left to expire.
 */
async function sessionOf(recipe: Recipe, leader: pb.LeaderKey): Promise<void> {
  if (leader.lease === 0n) await recipe.grantSessionLease()
}

/** Puts `value` on the leader key if it still has the campaign's create revision; the txn's revision. */
async function proclaim(recipe: Recipe, leader: pb.LeaderKey, value: Uint8Array): Promise<number> {
  const res = await recipe.txn({
    compare: [{ target: pb.Compare_CompareTarget.CREATE, result: pb.Compare_CompareResult.EQUAL, key: leader.key, createRevision: leader.rev }],
    success: [{ requestPut: { key: leader.key, value, lease: leader.lease } }],
  })
  if (!res.succeeded) throw new TskvError("electionNotLeader")
  return res.header!.revision
}

/** Deletes the leader key if it still has the campaign's create revision (no error otherwise). */
async function resign(recipe: Recipe, leader: pb.LeaderKey): Promise<number> {
  const res = await recipe.txn({
    compare: [{ target: pb.Compare_CompareTarget.CREATE, result: pb.Compare_CompareResult.EQUAL, key: leader.key, createRevision: leader.rev }],
    success: [{ requestDeleteRange: { key: leader.key } }],
  })
  return res.header!.revision
}

/**
 * etcd's Election.observe: the current leader (or the first put under the
 * prefix when there is none), then every new value of that leader's key,
 * until it is deleted; then the next leader. Runs until the call ends.
 */
async function observe(recipe: Recipe, prefix: Uint8Array, send: (res: pb.LeaderResponseInit) => void): Promise<void> {
  const server = recipe.server
  const rangeEnd = prefixEnd(prefix)
  while (recipe.active) {
    const first = await recipe.firstCreated(prefix)
    let kv = first.kv
    let revision = first.revision
    if (kv === undefined) {
      const put = await recipe.watchUntil({ key: prefix, rangeEnd, startRevision: first.revision }, (ev) => ev.type === 0)
      if (put === undefined || put.kv === undefined) continue
      kv = put.kv
      revision = kv.modRevision
    }
    send({ header: server.header(revision), kv })
    await recipe.watchUntil(
      { key: kv.key, startRevision: revision + 1 },
      (ev) => ev.type === 1,
      (ev, response) => {
        if (ev.kv !== undefined) send({ header: server.header(response.header.revision), kv: ev.kv })
      },
    )
  }
}
