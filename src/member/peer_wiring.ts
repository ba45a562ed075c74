// Wires the peer transport (src/peer) to the member: raft messages both ways,
// snapshots, and the calls members make to each other — the member list for a
// joining member, lease keepalives forwarded to the leader, and learner
// promotion forwarded to the leader. Part of the composition root: the member
// itself knows the transport only through the PeerSender interface.

import { join } from "node:path"
import type { Config } from "../config/config"
import { snapDirOf } from "../lib/data_dir"
import { isTskvError, TskvError } from "../lib/errors"
import type { Logger } from "../lib/logger"
import type { PeerTlsOptions } from "../peer/options"
import { PeerTransport } from "../peer/transport"
import type { NodeId } from "../raft/types"
import { AlarmType } from "../pb"
import type { RemoteCluster } from "../server/bootstrap"
import { compareHashes, type HashCheckDeps } from "../server/corruption"
import { decodeCbor, encodeCbor } from "../server/request"
import type { EtcdServer } from "../server/server"

export const PEER_CALL = {
  members: "members",
  hashKV: "hashkv",
  leaseRenew: "lease-renew",
  memberPromote: "member-promote",
} as const

/** Asks the members at `urls`, one after the other, for the cluster (a joining member's first step). */
export async function fetchRemoteCluster(urls: string[], options: { logger: Logger; tls?: PeerTlsOptions; snapshotDir: string }): Promise<RemoteCluster> {
  const probe = new PeerTransport({
    localId: 0n,
    clusterId: 0n,
    listenUrls: [],
    ...(options.tls ? { tls: options.tls } : {}),
    logger: options.logger,
    snapshotDir: options.snapshotDir,
    onMessages: () => {},
    onSnapshot: async () => {},
    onUnreachable: () => {},
  })
  let lastError: unknown
  for (let attempt = 0; attempt < 3; attempt++) {
    for (const url of urls) {
      try {
        const res = await probe.callUrl(url, PEER_CALL.members, new Uint8Array(0), 5000)
        return decodeRemoteCluster(res.payload)
      } catch (e) {
        lastError = e
        options.logger.warn("fetching the cluster from a peer failed", { url, error: e })
      }
    }
    await Bun.sleep(500)
  }
  throw lastError instanceof Error ? lastError : new Error(String(lastError))
}

function decodeRemoteCluster(bytes: Uint8Array): RemoteCluster {
  const v = decodeCbor(bytes) as { clusterId?: unknown; members?: unknown }
  if (typeof v !== "object" || v === null || !Array.isArray(v.members)) throw new Error("malformed member list from peer")
  return {
    clusterId: BigInt(v.clusterId as bigint),
    members: v.members.map((m: Record<string, unknown>) => ({
      id: BigInt(m.id as bigint),
      name: String(m.name ?? ""),
      peerUrls: (m.peerUrls as string[]).map(String),
      clientUrls: ((m.clientUrls as string[]) ?? []).map(String),
      isLearner: m.isLearner === true,
    })),
  }
}

/** Builds the transport for a member, connects both ways, and returns it (not yet started). */
export function createPeerTransport(server: EtcdServer, config: Config, logger: Logger, tls?: PeerTlsOptions): PeerTransport {
  const transport = new PeerTransport({
    localId: server.memberId,
    clusterId: server.clusterId,
    listenUrls: config.listenPeerUrls.map((u) => u.text),
    ...(tls ? { tls } : {}),
    logger: logger.child({ room: "peer" }),
    snapshotDir: snapDirOf(config.dataDir),
    onMessages: (batch) => server.stepMessages(batch),
    onSnapshot: ({ message, dbPath, fsyncMs, saveMs }) => {
      server.onSnapshotDbSaved?.(fsyncMs, saveMs)
      return server.receiveSnapshot(message, dbPath)
    },
    onUnreachable: (id) => server.reportUnreachable(id),
    onRemoved: (error) => server.stopRemoved(error.message),
    isRemoved: (id) => server.membership.isRemoved(id),
  })

  transport.handle(PEER_CALL.members, () =>
    encodeCbor({
      clusterId: server.clusterId,
      members: server.membership.list().map((m) => ({ id: m.id, name: m.name, peerUrls: m.peerUrls, clientUrls: m.clientUrls, isLearner: m.isLearner })),
    }),
  )
  transport.handle(PEER_CALL.hashKV, (payload) => {
    const { revision } = decodeCbor(payload) as { revision: number }
    const h = server.store.hashKV(Number(revision))
    return encodeCbor({ memberId: server.memberId, hash: h.hash, compactRevision: h.compactRevision, hashRevision: h.hashRevision })
  })
  transport.handle(PEER_CALL.leaseRenew, (payload) => {
    const { id } = decodeCbor(payload) as { id: bigint }
    if (!server.isLeader()) throw new TskvError("notLeader")
    try {
      const ttl = server.lessor.renew(BigInt(id))
      server.counters.leaseRenewed++
      return encodeCbor({ ttl })
    } catch (e) {
      if (isTskvError(e, "leaseNotFound")) return encodeCbor({ ttl: 0 })
      throw e
    }
  })
  transport.handle(PEER_CALL.memberPromote, async (payload) => {
    const { id } = decodeCbor(payload) as { id: bigint }
    await server.memberPromote(BigInt(id))
    return new Uint8Array(0)
  })

  const toLeader = async (method: string, body: unknown): Promise<Uint8Array> => {
    const lead: NodeId = server.lead
    if (lead === 0n) throw new TskvError("noLeader")
    return await transport.call(lead, method, encodeCbor(body), server.requestTimeoutMs())
  }
  server.forwardLeaseRenew = async (id) => (decodeCbor(await toLeader(PEER_CALL.leaseRenew, { id })) as { ttl: number }).ttl
  server.forwardMemberPromote = async (id) => {
    await toLeader(PEER_CALL.memberPromote, { id })
  }
  server.setPeers(transport)
  return transport
}

/** The HashKV comparison with every peer (corruption checks). */
export function hashCheckDeps(server: EtcdServer, transport: PeerTransport): HashCheckDeps {
  return {
    localId: server.memberId,
    localHash: (revision) => {
      const h = server.store.hashKV(revision)
      return { memberId: server.memberId, ...h }
    },
    peers: () => server.membership.list().map((m) => m.id),
    peerHash: async (id, revision) => {
      try {
        const v = decodeCbor(await transport.call(id, PEER_CALL.hashKV, encodeCbor({ revision }), 5000)) as Record<string, unknown>
        return { memberId: BigInt(v.memberId as bigint), hash: Number(v.hash), compactRevision: Number(v.compactRevision), hashRevision: Number(v.hashRevision) }
      } catch {
        return undefined
      }
    },
  }
}

/**
 * --experimental-initial-corrupt-check / InitialCorruptCheck: before serving,
 * compare HashKV with every reachable peer; a difference stops the member
 * (etcd: "found data inconsistency with peers").
 */
export async function initialCorruptionCheck(server: EtcdServer, transport: PeerTransport, logger: Logger): Promise<void> {
  const r = await compareHashes(hashCheckDeps(server, transport))
  if (r.mismatched.length > 0) {
    throw new Error(`found data inconsistency with peers ${r.mismatched.map((id) => id.toString(16)).join(", ")} at revision ${r.revision}`)
  }
  logger.info("initial corruption check passed", { revision: r.revision, compared: r.compared.length })
}

/** --experimental-corrupt-check-time: the leader compares hashes periodically and raises CORRUPT for a member that differs. */
export function periodicCorruptionCheck(server: EtcdServer, transport: PeerTransport, intervalMs: number, logger: Logger): () => void {
  let running = false
  const timer = setInterval(() => {
    if (running || !server.isLeader() || server.isStopped()) return
    running = true
    void compareHashes(hashCheckDeps(server, transport))
      .then(async (r) => {
        for (const id of r.mismatched) {
          logger.error("corruption detected: a member's HashKV differs", { member: id, revision: r.revision })
          await server.raiseAlarm(AlarmType.CORRUPT, id)
        }
      })
      .catch((e) => logger.warn("corruption check failed", { error: e }))
      .finally(() => {
        running = false
      })
  }, intervalMs)
  return () => clearInterval(timer)
}
