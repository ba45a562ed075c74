// etcdserverpb.Maintenance: Status, Alarm, Defragment, Hash, HashKV,
// Snapshot (the member's state as the bbolt db etcd 3.4 would hold for it,
// streamed with a trailing sha256 as etcd sends it), MoveLeader.

import { createHash } from "node:crypto"
import { closeSync, openSync, readSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { etcdApiVersion } from "../../../config/version"
import { TskvError } from "../../../lib/errors"
import * as pb from "../../../pb"
import { RequestKind } from "../../../server/request"
import type { EtcdServer } from "../../../server/server"
import { exportEtcdDbAsync, pinnedReader } from "../../../snapshot/etcd_export"
import type { GrpcServer } from "../../../h2grpc"
import { admit, maintenanceAuthCheck, requestAuth } from "./context"

const SNAPSHOT_CHUNK_BYTES = 32 * 1024

export function registerMaintenanceService(grpc: GrpcServer, server: EtcdServer): void {
  const M = pb.MaintenanceService
  const adminOnly = (info: ReturnType<typeof admit>): void => server.auth?.isAdminPermitted(info)
  /** Admin, with etcd 3.4's unmapped errors (context.ts). */
  const adminOnly34 = (call: Parameters<typeof admit>[1]): void => maintenanceAuthCheck(() => adminOnly(admit(server, call)))

  grpc.addUnary(M.Status, (_req, call) => {
    admit(server, call, { allowLearner: true })
    return statusOf(server)
  })

  grpc.addUnary(M.Alarm, async (req, call) => {
    const info = admit(server, call)
    // etcd 3.4 answers alarms without a response header (3.5 added it)
    if (req.action === pb.AlarmRequest_AlarmAction.GET) {
      return { alarms: server.alarms.list(req.alarm) }
    }
    adminOnly(info)
    const res = (await server.propose(RequestKind.Alarm, pb.encodeAlarmRequest(req), requestAuth(info))) as pb.AlarmResponse
    return { alarms: res.alarms }
  })

  grpc.addUnary(M.Defragment, (_req, call) => {
    adminOnly34(call)
    server.defragment()
    return { header: server.header() }
  })

  grpc.addUnary(M.Hash, (_req, call) => {
    adminOnly34(call)
    return { header: server.header(), hash: server.store.hash() }
  })

  grpc.addUnary(M.HashKV, (req, call) => {
    adminOnly34(call)
    const h = server.store.hashKV(req.revision)
    return { header: server.header(), hash: h.hash, compactRevision: h.compactRevision, hashRevision: h.hashRevision }
  })

  grpc.addServerStream(M.Snapshot, (_req, call) => {
    try {
      adminOnly34(call)
    } catch (e) {
      call.end(e)
      return
    }
    void streamSnapshot(server, call)
  })

  grpc.addUnary(M.MoveLeader, async (req, call) => {
    adminOnly(admit(server, call))
    await server.moveLeader(req.targetID)
    return { header: server.header() }
  })
}

export function statusOf(server: EtcdServer): pb.StatusResponseInit {
  const errors = server.alarms.statusErrors()
  if (!server.hasLeader()) errors.push("etcdserver: no leader")
  return {
    header: server.header(),
    version: etcdApiVersion,
    dbSize: server.backend.sizeBytes(),
    leader: server.lead,
    raftIndex: server.committedIndex,
    raftTerm: server.term,
    raftAppliedIndex: server.appliedIndex,
    errors,
    dbSizeInUse: server.backend.sizeInUseBytes(),
    isLearner: server.isLearner(),
  }
}

/**
 * The etcd-format bbolt db of the member's state at its last commit, written
 * to `boltPath` in slices (the member keeps serving). A file-backed member is
 * read through a second connection pinned at that commit, with no copy; an
 * in-memory one (tests) through a consistent copy.
 */
async function writeEtcdDb(server: EtcdServer, boltPath: string): Promise<void> {
  const started = performance.now()
  if (server.backend.path === ":memory:") {
    const copy = `${boltPath}.sqlite`
    try {
      server.copyBackend(copy)
      await exportEtcdDbAsync({ source: copy, targetPath: boltPath })
    } finally {
      rmSync(copy, { force: true })
    }
    return
  }
  server.backend.commit()
  const reader = pinnedReader(server.backend.path)
  try {
    await exportEtcdDbAsync({ source: reader.db, targetPath: boltPath })
  } finally {
    reader.end()
  }
  server.onBackendSnapshot?.(performance.now() - started)
}

async function streamSnapshot(server: EtcdServer, call: Parameters<Parameters<GrpcServer["addServerStream"]>[1]>[1]): Promise<void> {
  const boltPath = join(tmpdir(), `tskv-snapshot-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}.db`)
  let fd = -1
  const cleanup = (): void => {
    if (fd >= 0) closeSync(fd)
    fd = -1
    rmSync(boltPath, { force: true })
  }
  let total = 0
  try {
    await writeEtcdDb(server, boltPath)
    if (call.ended || call.cancelled) {
      cleanup()
      return
    }
    fd = openSync(boltPath, "r")
    total = statSync(boltPath).size
  } catch (e) {
    cleanup()
    call.end(e instanceof TskvError ? e : new Error(`snapshot failed: ${String(e)}`))
    return
  }
  const hash = createHash("sha256")
  let sent = 0
  const header = server.header()
  const pump = (): void => {
    try {
      while (!call.ended && !call.cancelled) {
        if (sent >= total) {
          // etcd appends the sha256 of the db so that restore can verify it.
          call.write({ header, remainingBytes: 0, blob: hash.digest() })
          cleanup()
          call.end()
          return
        }
        const chunk = Buffer.allocUnsafe(Math.min(SNAPSHOT_CHUNK_BYTES, total - sent))
        const n = readSync(fd, chunk, 0, chunk.length, sent)
        sent += n
        hash.update(chunk.subarray(0, n))
        if (!call.write({ header, remainingBytes: total - sent, blob: chunk.subarray(0, n) })) {
          call.onDrain(pump)
          return
        }
      }
      cleanup()
    } catch (e) {
      cleanup()
      call.end(e)
    }
  }
  call.onCancel(cleanup)
  pump()
}
