// Opens or creates a member's data dir and builds every room of the member
// from the config: a new cluster from --initial-cluster, or a restart from the
// WAL (the --initial-* flags are then ignored, as etcd ignores them).
//
//   <data-dir>/tskv/wal/     raft log segments (or --wal-dir)
//   <data-dir>/tskv/snap/db  the backend (SQLite)
// (lib/data_dir.ts; a data dir of an older tskv, under member/, is moved first)

import { existsSync, mkdirSync, rmSync } from "node:fs"
import { join } from "node:path"
import { AuthStore } from "../auth/store"
import type { AuthTokenSpec } from "../auth/tokens"
import { Backend } from "../backend/backend"
import type { Config } from "../config/config"
import { backendPathOf, DataDirError, memberDirOf, migrateDataDir, snapDirOf, walDirOf } from "../lib/data_dir"
import { TskvError } from "../lib/errors"
import type { Clock } from "../lib/clock"
import { type FsPort, nodeFsPort } from "../lib/fs_port"
import type { Logger } from "../lib/logger"
import { randomPrng } from "../lib/prng"
import { Lessor, minLeaseTtlSeconds } from "../lease/lessor"
import { KvApplier } from "../mvcc/kv_applier"
import { MvccStore } from "../mvcc/kv_store"
import { WatchableStore } from "../mvcc/watchable_store"
import { RaftNode } from "../raft/raft_node"
import { MemoryStorage } from "../raft/storage"
import type { NodeId } from "../raft/types"
import { Snapshotter } from "../snap/snapshotter"
import { Wal } from "../wal/wal"
import { Alarms } from "./alarms"
import { applyAuthRequest } from "./auth_apply"
import { computeClusterId, computeMemberId, formatId } from "./ids"
import { Membership } from "./membership"
import { forceNewClusterLog } from "./force_new_cluster"
import { neverServed, removeHalfMade } from "./half_made"
import { bootstrapConfChangeContext } from "./apply_entries"
import { EtcdServer } from "./server"
import { V2Store } from "../v2store/store"
import { V2Table } from "../v2store/v2_table"

export class BootstrapError extends Error {
  override readonly name = "BootstrapError"
}

/** The cluster as a running member describes it to one that joins (--initial-cluster-state existing). */
export interface RemoteCluster {
  clusterId: NodeId
  members: { id: NodeId; name: string; peerUrls: string[]; clientUrls: string[]; isLearner: boolean }[]
}

export interface BootstrapOptions {
  config: Config
  logger: Logger
  clock: Clock
  fs?: FsPort
  /** Asks the members at these peer URLs for the cluster (joining an existing cluster). */
  fetchRemoteCluster?: (peerUrls: string[]) => Promise<RemoteCluster>
}

export function memberDir(config: Config): string {
  return memberDirOf(config.dataDir)
}

export function walDir(config: Config): string {
  return walDirOf(config.dataDir, config.walDir)
}

export function backendPath(config: Config): string {
  return backendPathOf(config.dataDir)
}

/** Builds the member. The caller starts it (server.start()) once listeners are up. */
export async function bootstrapServer(options: BootstrapOptions): Promise<EtcdServer> {
  const { config, logger, clock } = options
  const fs = options.fs ?? nodeFsPort
  try {
    if (migrateDataDir(config.dataDir)) logger.info("moved the data dir to its new layout", { from: join(config.dataDir, "member"), to: memberDir(config) })
  } catch (e) {
    if (e instanceof DataDirError) throw new BootstrapError(e.message)
    throw e
  }
  const snapDir = snapDirOf(config.dataDir)
  const dir = walDir(config)
  if (Wal.exists(fs, dir) && neverServed(fs, dir)) removeHalfMade({ memberDir: memberDir(config), walDir: dir }, logger)
  mkdirSync(snapDir, { recursive: true })
  const restarting = Wal.exists(fs, dir)
  const snapshotter = new Snapshotter({ fs, dir: snapDir, logger, maxSnapshots: config.maxSnapshots })
  const snapshot = restarting ? snapshotter.loadNewestAvailable(Wal.validSnapshots({ fs, dir })) : undefined

  const backend = Backend.open({
    path: backendPath(config),
    batchLimit: config.backendBatchLimit,
    checkpointInWorker: true,
    onCheckpointError: (error) => logger.warn("SQLite checkpoints are back inside commits: the checkpoint worker failed", { error: error.message }),
    onCheckpointReport: (r) => {
      if (r.durationMs > 100) logger.debug("slow backend checkpoint (on the worker thread)", { "took-ms": Math.round(r.durationMs), frames: r.logFrames })
    },
  })
  if (snapshot && backend.consistentIndex().index < snapshot.metadata.index) {
    // A crash after a snapshot from the leader was recorded but before its db was installed.
    const received = join(snapDir, `${snapshot.metadata.index.toString(16).padStart(16, "0")}.snap.db`)
    if (!existsSync(received)) {
      throw new BootstrapError(
        `the backend (consistent index ${backend.consistentIndex().index}) is older than the newest snapshot (index ${snapshot.metadata.index}) and ${received} is missing`,
      )
    }
    logger.info("installing the snapshot db received before the restart", { file: received })
    backend.replaceContentsFrom(received)
    rmSync(received, { force: true })
  }
  const store = MvccStore.open({ backend, compactionBatchLimit: config.compactionBatchLimit })
  const lessor = new Lessor({
    backend,
    clock,
    minTtlSeconds: minLeaseTtlSeconds(config.electionMs),
    checkpointIntervalMs: config.features.leaseCheckpoint ? 5 * 60_000 : null,
    deleteKeys: (keys) => {
      const txn = store.write()
      for (const key of keys) txn.deleteRange(key, undefined)
      txn.end()
    },
  })
  store.onLeaseChange((key, previous, next) => {
    if (previous !== 0n) lessor.detach(key)
    if (next !== 0n) lessor.attach(next, key)
  })
  const kv = new KvApplier({ store, leaseExists: (id) => lessor.has(id) })
  const watchable = new WatchableStore({ store, fragmentBytesMax: config.maxRequestBytes })
  const alarms = new Alarms(backend)
  const membership = new Membership(backend)
  const auth = new AuthStore({ backend, clock, bcryptCost: config.bcryptCost, authTokenTtlSeconds: config.authTokenTtlSeconds, authToken: authTokenSpec(config.authToken) })
  const v2 = new V2Store(() => clock.wallNow(), new V2Table(backend))

  const storage = new MemoryStorage()
  // The WAL reports fsync timings to the member, which exists only once the WAL is open.
  let built: EtcdServer | undefined
  const onSync = (ms: number): void => built?.onWalSync?.(ms)
  let memberId: NodeId
  let clusterId: NodeId
  let wal: Wal
  let peers: NodeId[] | undefined
  let bootstrapContexts: Map<NodeId, Uint8Array> | undefined
  if (restarting) {
    const from = snapshot ? { index: snapshot.metadata.index, term: snapshot.metadata.term } : undefined
    const opened = Wal.open({ fs, dir, logger, maxWals: config.maxWals, noFsync: config.unsafeNoFsync, onSync, ...(from ? { snapshot: from } : {}) })
    wal = opened.wal
    memberId = opened.metadata.memberId
    clusterId = opened.metadata.clusterId
    if (snapshot) storage.applySnapshot(snapshot)
    let { hardState, entries } = opened
    if (config.forceNewCluster) {
      const confState = snapshot?.metadata.confState ?? { voters: [], learners: [] }
      const forced = forceNewClusterLog({ self: memberId, confState, entries, hardState })
      if (forced.discarded > 0) logger.info("discarding uncommitted WAL entries", { "commit-index": hardState.commit, "discarded-entries": forced.discarded })
      wal.save(forced.hardState, forced.appended)
      ;({ hardState, entries } = forced)
      logger.warn("forcing restart member as a one-member cluster (--force-new-cluster)", {
        "member-id": formatId(memberId),
        "removed-members": forced.removed.map(formatId),
        "commit-index": hardState.commit,
      })
    }
    storage.setHardState(hardState)
    storage.append(entries)
    logger.info("restarting member from its data dir", {
      "member-id": formatId(memberId),
      "cluster-id": formatId(clusterId),
      "consistent-index": backend.consistentIndex().index,
      "commit-index": opened.hardState.commit,
      "last-index": storage.lastIndex(),
    })
    if (config.explicitFlags.some((f) => f.startsWith("initial-cluster"))) {
      logger.info("--initial-cluster* flags are ignored: the member restarts from its data dir")
    }
  } else if (config.initialClusterState === "existing") {
    const joined = await joinExisting(config, logger, options.fetchRemoteCluster)
    memberId = joined.self
    clusterId = joined.cluster.clusterId
    for (const m of joined.cluster.members) membership.add({ ...m })
    membership.setClusterId(clusterId)
    backend.commit()
    wal = Wal.create({ fs, dir, logger, metadata: { memberId, clusterId }, maxWals: config.maxWals, noFsync: config.unsafeNoFsync, onSync })
    logger.info("joining an existing cluster", { "member-id": formatId(memberId), "cluster-id": formatId(clusterId), members: joined.cluster.members.length })
  } else {
    const ids = initialMembers(config)
    memberId = ids.self
    clusterId = computeClusterId(ids.members.map((m) => m.id))
    for (const m of ids.members) {
      membership.add({ id: m.id, name: m.name, peerUrls: m.peerUrls, clientUrls: [], isLearner: false })
    }
    membership.setClusterId(clusterId)
    backend.commit()
    wal = Wal.create({ fs, dir, logger, metadata: { memberId, clusterId }, maxWals: config.maxWals, noFsync: config.unsafeNoFsync, onSync })
    peers = ids.members.map((m) => m.id)
    bootstrapContexts = new Map(ids.members.map((m) => [m.id, bootstrapConfChangeContext(m)]))
    logger.info("starting a new cluster", { "member-id": formatId(memberId), "cluster-id": formatId(clusterId), members: ids.members.length })
  }

  const node = new RaftNode({
    id: memberId,
    ...(peers ? { peers } : {}),
    ...(bootstrapContexts ? { bootstrapContext: (id: NodeId) => bootstrapContexts.get(id) ?? new Uint8Array(0) } : {}),
    storage,
    prng: randomPrng(),
    electionTicks: config.electionTicks,
    heartbeatTicks: config.heartbeatTicks,
    preVote: config.preVote,
    checkQuorum: true,
    pipelined: true,
    applied: backend.consistentIndex().index,
  })
  const server = new EtcdServer({ config, logger, clock, memberId, clusterId, backend, store, watchable, kv, lessor, alarms, membership, auth, v2, node, storage, wal, snapshotter })
  // Entries are applied in index order, one at a time: the entry being applied is the one after appliedIndex.
  server.setAuthApplier((req) => applyAuthRequest(auth, req, server.appliedIndex + 1))
  built = server
  return server
}

/** --auth-token as the auth room reads it: simple, jwt (etcd's options) or tskv's signed tokens. */
export function authTokenSpec(token: Config["authToken"]): AuthTokenSpec {
  const t = token
  switch (t.kind) {
    case "simple":
      return { type: "simple", options: {} }
    case "signed":
      return { type: "signed", options: t.ttlMs ? { ttl: `${t.ttlMs}ms` } : {} }
    case "jwt":
      return {
        type: "jwt",
        options: {
          "pub-key": t.pubKeyFile,
          "sign-method": t.signMethod,
          ttl: `${t.ttlMs}ms`,
          ...(t.privKeyFile !== "" ? { "priv-key": t.privKeyFile } : {}),
        },
      }
  }
}

/** Learns the cluster and this member's id from the running members (etcd: GetClusterFromRemotePeers). */
async function joinExisting(
  config: Config,
  logger: Logger,
  fetch: BootstrapOptions["fetchRemoteCluster"],
): Promise<{ self: NodeId; cluster: RemoteCluster }> {
  if (!fetch) throw new BootstrapError("--initial-cluster-state=existing needs the peer transport")
  const mine = new Set(config.initialAdvertisePeerUrls.map((u) => u.text))
  const others = config.initialCluster.flatMap((m) => m.peerUrls.map((u) => u.text)).filter((u) => !mine.has(u))
  if (others.length === 0) throw new BootstrapError("--initial-cluster names no other member to join")
  let cluster: RemoteCluster
  try {
    cluster = await fetch(others)
  } catch (e) {
    throw new BootstrapError(`cannot fetch cluster info from peer urls ${others.join(",")}: ${e instanceof Error ? e.message : String(e)}`)
  }
  const self = cluster.members.find((m) => m.peerUrls.some((u) => mine.has(u)))
  if (!self) {
    throw new BootstrapError(
      `member with peer URLs ${[...mine].join(",")} is not in the cluster: add it first (tskv ctl member add ${config.name} --peer-urls=${[...mine].join(",")})`,
    )
  }
  logger.info("fetched the cluster from a running member", { members: cluster.members.length })
  return { self: self.id, cluster }
}

interface InitialMember {
  id: NodeId
  name: string
  peerUrls: string[]
}

/** The members of a new cluster from --initial-cluster, and which one this member is. */
export function initialMembers(config: Config): { self: NodeId; members: InitialMember[] } {
  const members: InitialMember[] = config.initialCluster.map((m) => {
    const peerUrls = m.peerUrls.map((u) => u.text)
    return { id: computeMemberId(peerUrls, config.initialClusterToken), name: m.name, peerUrls }
  })
  const self = members.find((m) => m.name === config.name)
  if (!self) {
    throw new BootstrapError(
      `couldn't find local name "${config.name}" in the initial cluster configuration`,
    )
  }
  const advertised = config.initialAdvertisePeerUrls.map((u) => u.text).sort()
  const listed = [...self.peerUrls].sort()
  if (advertised.join(",") !== listed.join(",")) {
    throw new BootstrapError(
      `--initial-cluster has ${config.name}=${listed.join(",")} but missing from --initial-advertise-peer-urls=${advertised.join(",")}`,
    )
  }
  const seen = new Set<NodeId>()
  for (const m of members) {
    if (seen.has(m.id)) throw new TskvError("memberExist", `duplicate member in --initial-cluster: ${m.name}`)
    seen.add(m.id)
  }
  return { self: self.id, members }
}
