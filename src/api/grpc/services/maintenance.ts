// etcdserverpb.Maintenance: Status, Alarm, Defragment, Hash, HashKV,
// Snapshot (the member's state as the bbolt db etcd 3.4 would hold for it,
// streamed with a trailing sha256 as etcd sends it), MoveLeader.

import { rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { etcdApiVersion } from "../../../config/version"
import { TskvError } from "../../../lib/errors"
import * as pb from "../../../pb"
import { RequestKind } from "../../../server/request"
import type { EtcdServer } from "../../../server/server"
import { EtcdExportWorker } from "../../../snapshot/export_stream"
import type { GrpcServer } from "../../../h2grpc"
import { admit, maintenanceAuthCheck, requestAuth } from "./context"

/** Bytes of the db per SnapshotResponse (etcd sends 32 KiB; fewer, larger messages cost this thread less, and stay under gRPC's default 4 MiB receive limit). */
const SNAPSHOT_CHUNK_BYTES = 1 << 20

export function registerMaintenanceService(grpc: GrpcServer, server: EtcdServer): void {
  const M = pb.MaintenanceService
  const adminOnly = (info: ReturnType<typeof admit>): void => server.auth?.isAdminPermitted(info)
  /** Admin, with etcd 3.4's unmapped errors (context.ts). */
  const adminOnly34 = (call: Parameters<typeof admit>[1]): void => maintenanceAuthCheck(() => adminOnly(admit(server, call)))

  grpc.addUnary(M.Status, (_req, call) => {
    admit(server, call, { allowLearner: true, token: "ignored" })
    return statusOf(server)
  })

  grpc.addUnary(M.Alarm, async (req, call) => {
    // the alarm goes through raft, where etcd 3.4 reads the token; its auth errors come unmapped
    let info: ReturnType<typeof admit> = null
    maintenanceAuthCheck(() => void (info = admit(server, call)))
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
    // etcd 3.4's DefragmentResponse has no header (3.5 added it)
    return {}
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
    adminOnly(admit(server, call, { token: "ignoredWhileAuthOff" }))
    await server.moveLeader(req.targetID)
    // etcd 3.4's MoveLeaderResponse has no header
    return {}
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
 * Streams the etcd-format bbolt db of the member's state at its last commit,
 * with etcd's sha256 trailer. The db is made on a Worker as it is sent
 * (snapshot/export_stream.ts), read through a second connection pinned at
 * that commit; this thread only frames the chunks. An in-memory backend
 * (tests) is first copied to a file.
 */
async function streamSnapshot(server: EtcdServer, call: Parameters<Parameters<GrpcServer["addServerStream"]>[1]>[1]): Promise<void> {
  const base = join(tmpdir(), `tskv-snapshot-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`)
  const memory = server.backend.path === ":memory:"
  const started = performance.now()
  let exporter: EtcdExportWorker | undefined
  const cleanup = (): void => {
    exporter?.close()
    if (memory) rmSync(`${base}.sqlite`, { force: true })
  }
  let drained: (() => void) | undefined
  call.onCancel(() => {
    cleanup()
    drained?.()
  })
  call.onDrain(() => {
    drained?.()
    drained = undefined
  })
  try {
    let dbPath = server.backend.path
    if (memory) {
      dbPath = `${base}.sqlite`
      server.copyBackend(dbPath)
    } else {
      server.backend.commit()
    }
    exporter = new EtcdExportWorker({ dbPath, chunkBytes: SNAPSHOT_CHUNK_BYTES })
    await exporter.pinned
    await exporter.exported
    if (!memory) server.onBackendSnapshot?.(performance.now() - started)
    // etcd 3.4 sends SnapshotResponses without a header (3.5 added it)
    for (;;) {
      if (call.ended || call.cancelled) break
      const chunk = await exporter.next()
      if (call.ended || call.cancelled) break
      if (chunk === undefined) {
        // etcd appends the sha256 of the db so that restore can verify it.
        call.write({ remainingBytes: 0, blob: exporter.sha256! })
        call.end()
        break
      }
      if (!call.write({ remainingBytes: chunk.remaining, blob: chunk.bytes }) && !call.ended && !call.cancelled) {
        await new Promise<void>((resolve) => (drained = resolve))
      }
    }
  } catch (e) {
    call.end(e instanceof TskvError ? e : new Error(`snapshot failed: ${e instanceof Error ? e.message : String(e)}`))
  } finally {
    cleanup()
  }
}
