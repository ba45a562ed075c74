// Raft snapshots, both kinds: the member's own (--snapshot-count: the backend
// made durable at the applied index, a .snap file and a WAL record, then the
// log before it released), and the leader's to a follower that fell behind
// (a consistent copy of the backend streamed with the snapshot message,
// installed as the follower's whole applied state).

import { rmSync } from "node:fs"
import { BackendWriteRefused } from "../backend/backend"
import { join } from "node:path"
import { assert } from "../lib/assert"
import { snapDirOf } from "../lib/data_dir"
import { TskvError } from "../lib/errors"
import { isFsError } from "../lib/fs_port"
import type { ConfState, Message, NodeId, Snapshot } from "../raft/types"
import { REFUSED_SYNC_CODES, WalWriteRefused } from "../wal/errors"
import type { ServerCore } from "./core"

export class Snapshots {
  private snapshotting = false
  /** A snapshot whose backend state is durable, waiting for finishSnapshot(). */
  private durableSnapshot: { index: number; confState: ConfState; started: number } | undefined
  /** Db files received from the leader, by snapshot index, until raft hands the snapshot over. */
  private readonly receivedSnapshots = new Map<number, { dbPath: string; done: () => void }>()

  constructor(
    private readonly core: ServerCore,
    /** Hands raft messages to the Ready loop (the snapshot message of a received snapshot). */
    private readonly step: (messages: readonly Message[]) => void,
  ) {}

  /** Takes a raft snapshot once --snapshot-count entries were applied since the last one. */
  maybeSnapshot(): void {
    if (this.backendSyncFailed) return
    if (this.core.appliedIndex - this.core.snapshotIndex > this.core.config.snapshotCount) this.takeSnapshot()
  }

  /**
   * A raft snapshot of the applied state (--snapshot-count): make the backend
   * durable at the applied index, write the .snap file, record it in the WAL,
   * then let go of the log before it (keeping --snapshot-catchup-entries in
   * memory for slow followers) and of WAL segments beyond --max-wals.
   */
  private takeSnapshot(): void {
    if (this.snapshotting) return
    this.snapshotting = true
    const started = performance.now()
    const index = this.core.appliedIndex
    const config = this.core.node.status().config
    const confState = { voters: [...config.voters], learners: [...config.learners] }
    // The backend's fdatasync runs on the thread pool; applying goes on meanwhile.
    try {
      this.core.backend.commitDurablyAsync((error) => {
        if (this.core.stopped) return
        if (error !== null) return this.syncRefused(error)
        this.durableSnapshot = { index, confState, started }
        this.core.kick()
      })
    } catch (e) {
      // The COMMIT was refused: the batch is applied again (apply_entries.ts); a later snapshot is taken.
      if (!(e instanceof BackendWriteRefused)) throw e
      this.snapshotting = false
    }
  }

  /** A snapshot whose backend state is durable waits for finishSnapshot(). */
  snapshotToFinish(): boolean {
    return this.durableSnapshot !== undefined
  }

  /**
   * The fdatasync of SQLite's -wal file failed: Linux may have dropped pages
   * of commits made before it, and a later fdatasync succeeding would not
   * show they reached the disk. No raft snapshot is taken for the rest of
   * this process (they would let WAL segments go that the backend may need):
   * the raft WAL keeps every entry, and a restart replays from what the db holds.
   */
  private syncRefused(error: Error): void {
    if (!isFsError(error) || !REFUSED_SYNC_CODES.has(error.code)) return this.core.fatal(error)
    this.backendSyncFailed = true
    this.core.logger.warn("the backend's fdatasync failed: no more raft snapshots until a restart, the WAL keeps every entry", { error: error.message })
  }

  /** Set once the backend's fdatasync failed (syncRefused()). */
  private backendSyncFailed = false

  /**
   * The second half of takeSnapshot(), with no WAL save in flight (the
   * snapshot record goes into the same WAL).
   */
  finishSnapshot(): void {
    const s = this.durableSnapshot
    if (s === undefined) return
    this.durableSnapshot = undefined
    this.snapshotting = false
    // A snapshot from the leader installed meanwhile is newer: nothing to record.
    if (s.index <= this.core.snapshotIndex) return
    const snap = this.core.storage.createSnapshot(s.index, s.confState, new Uint8Array(0))
    try {
      this.core.snapshotter.save(snap)
      this.core.wal.saveSnapshot({ index: s.index, term: snap.metadata.term })
    } catch (e) {
      // The data dir refuses writes: a .snap file without its WAL marker is ignored; a later snapshot is taken.
      if (!(e instanceof WalWriteRefused) && !(isFsError(e) && REFUSED_SYNC_CODES.has(e.code))) throw e
      this.core.logger.warn("a raft snapshot could not be recorded: the data dir refuses writes", { index: s.index, error: e.message })
      return
    }
    const compactTo = s.index - this.core.config.snapshotCatchupEntries
    if (compactTo > this.core.storage.firstIndex()) this.core.storage.compact(compactTo)
    this.core.wal.releaseTo(s.index)
    this.core.snapshotIndex = s.index
    this.core.logger.info("saved snapshot", { index: s.index, term: snap.metadata.term, "took-ms": Math.round(performance.now() - s.started) })
  }

  /**
   * The leader sends a snapshot: a consistent copy of the backend at the
   * applied index, with raft metadata for that index (etcd's merged snapshot:
   * entries the follower then gets start right after the db's state).
   */
  sendSnapshot(m: Message): void {
    const peers = this.core.peers
    if (!peers) {
      this.core.node.reportSnapshot(m.to, false)
      return
    }
    const index = this.core.appliedIndex
    const config = this.core.node.status().config
    const dbPath = join(snapDirOf(this.core.config.dataDir), `send-${m.to.toString(16)}-${index.toString(16)}.db`)
    try {
      this.copyBackend(dbPath)
    } catch (e) {
      this.core.logger.error("copying the backend for a snapshot failed", { error: e })
      this.core.node.reportSnapshot(m.to, false)
      return
    }
    const snapshot: Snapshot = {
      metadata: { index, term: this.core.storage.term(index), confState: { voters: [...config.voters], learners: [...config.learners] } },
      data: new Uint8Array(0),
    }
    const message: Message = { ...m, snapshot }
    this.core.logger.info("sending a snapshot", { to: m.to, index })
    peers.sendSnapshot(message, dbPath).then(
      () => {
        this.core.node.reportSnapshot(m.to, true)
        this.core.kick()
      },
      (e) => {
        this.core.logger.warn("sending a snapshot failed", { to: m.to, error: e })
        this.core.node.reportSnapshot(m.to, false)
        this.core.kick()
      },
    ).finally(() => rmSync(dbPath, { force: true }))
  }

  /** A snapshot (db file + message) arrived from the leader: hand the message to raft; resolve once installed. */
  receiveSnapshot(message: Message, dbPath: string): Promise<void> {
    const snap = message.snapshot
    if (!snap || this.core.stopped) return Promise.reject(new TskvError("stopped"))
    const index = snap.metadata.index
    this.core.counters.snapshotApplyInProgress++
    return new Promise<void>((resolve) => {
      const finish = resolve
      resolve = () => {
        this.core.counters.snapshotApplyInProgress--
        finish()
      }
      const timer = setTimeout(() => {
        // raft did not take it (stale, or this member moved on): drop the file.
        if (this.receivedSnapshots.get(index)?.dbPath === dbPath) this.receivedSnapshots.delete(index)
        rmSync(dbPath, { force: true })
        resolve()
      }, this.core.requestTimeoutMs())
      this.receivedSnapshots.set(index, {
        dbPath,
        done: () => {
          clearTimeout(timer)
          resolve()
        },
      })
      this.step([message])
    })
  }

  /** Durability first: the .snap file and the WAL marker, before raft's state moves past the log. */
  persistReceivedSnapshot(snap: Snapshot): void {
    const received = this.receivedSnapshots.get(snap.metadata.index)
    assert(received !== undefined, () => `raft installs snapshot ${snap.metadata.index} but no db file arrived for it`)
    this.core.snapshotter.save(snap)
    this.core.wal.saveSnapshot({ index: snap.metadata.index, term: snap.metadata.term })
    this.core.storage.applySnapshot(snap)
  }

  /** Replaces the applied state with the snapshot's db and reloads every room from it. */
  installReceivedSnapshot(snap: Snapshot): void {
    const index = snap.metadata.index
    const received = this.receivedSnapshots.get(index)
    assert(received !== undefined, () => `no db file for snapshot ${index}`)
    this.receivedSnapshots.delete(index)
    const started = performance.now()
    this.core.backend.replaceContentsFrom(received.dbPath)
    const ci = this.core.backend.consistentIndex().index
    assert(ci >= index, () => `snapshot db at consistent index ${ci} is older than snapshot ${index}`)
    this.core.store.reload()
    this.core.lessor.reload()
    this.core.auth?.reload()
    this.core.v2?.reload()
    this.core.alarms.reload()
    const before = new Set(this.core.membership.list().map((m) => m.id))
    this.core.membership.reload()
    this.syncPeersWithMembership(before)
    this.core.watchable.restore()
    this.core.appliedIndex = ci
    this.core.snapshotIndex = index
    rmSync(received.dbPath, { force: true })
    received.done()
    this.core.logger.info("installed a snapshot from the leader", { index, "consistent-index": ci, "took-ms": Math.round(performance.now() - started) })
    if (this.core.lessor.isPrimary()) this.core.lessor.promote(this.core.config.electionMs)
  }

  private syncPeersWithMembership(before: ReadonlySet<NodeId>): void {
    const peers = this.core.peers
    if (!peers) return
    const now = new Set<NodeId>()
    for (const m of this.core.membership.list()) {
      now.add(m.id)
      if (m.id === this.core.memberId) continue
      if (before.has(m.id)) peers.updatePeer(m.id, m.peerUrls)
      else peers.addPeer(m.id, m.peerUrls)
    }
    for (const id of before) if (!now.has(id) && id !== this.core.memberId) peers.removePeer(id)
  }

  /** A consistent copy of the backend (snapshots to followers and Maintenance.Snapshot), timed. */
  copyBackend(path: string): void {
    const started = performance.now()
    this.core.backend.copyTo(path)
    this.core.hooks.onBackendSnapshot?.(performance.now() - started)
  }
}
