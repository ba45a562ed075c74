// Applying committed entries, in log order, on every member (etcd's apply):
// a normal entry goes to the Applier (mvcc, lease, auth, v2, alarms), a conf
// change to the membership and raft's configuration; each one moves the
// consistent index in the same backend batch, and the proposer's waiter is
// answered on the member that proposed it.

import { BackendWriteRefused, isRefusedWrite } from "../backend/backend"
import { assert } from "../lib/assert"
import { isTskvError, TskvError } from "../lib/errors"
import { decodeConfChange } from "../raft/conf_change_codec"
import { type ConfChange, ConfChangeType, type Entry, EntryType, type NodeId } from "../raft/types"
import { Applier, type ApplyResult } from "./applier"
import type { ServerCore } from "./core"
import { formatId } from "./ids"
import { type DecodedRequest, decodeCbor, decodeRequest, encodeCbor } from "./request"

/** A conf change proposal carries who proposed it, so apply can answer the waiter. */
export interface ConfChangeContext {
  origin: bigint
  seq: number
  member?: { id: bigint; name: string; peerUrls: string[]; isLearner: boolean }
  peerUrls?: string[]
}

export class EntryApplier {
  private readonly applier: Applier
  private applyWaiters: { index: number; resolve: () => void }[] = []

  constructor(private readonly core: ServerCore) {
    this.applier = new Applier({
      backend: core.backend,
      store: core.store,
      kv: core.kv,
      lessor: core.lessor,
      alarms: core.alarms,
      membership: core.membership,
      counters: core.counters,
      onLeaseGrant: (ttl) => core.hooks.onLeaseGrant?.(ttl),
      ...(core.auth ? { auth: core.auth } : {}),
      ...(core.v2 ? { v2: core.v2 } : {}),
    })
    // A batch lost outside apply (the periodic COMMIT, a snapshot's copy): recovered before any read or
    // write comes in (a microtask runs before the next I/O callback); apply recovers at once.
    core.backend.onWriteRefused = () =>
      queueMicrotask(() => {
        if (core.stopped) return
        try {
          this.recoverLostBatch()
        } catch (e) {
          core.fatal(e)
        }
      })
  }

  setAuthApplier(applyAuth: (req: DecodedRequest) => unknown): void {
    this.applier.setAuthApplier(applyAuth)
  }

  /** Resolves once this member applied at least `index`. */
  waitApplied(index: number): Promise<void> {
    if (this.core.appliedIndex >= index) return Promise.resolve()
    return new Promise((resolve) => this.applyWaiters.push({ index, resolve }))
  }

  applyEntries(entries: readonly Entry[]): void {
    const core = this.core
    const started = performance.now()
    for (const e of entries) {
      if (e.index <= core.appliedIndex) {
        // Already in the state (a snapshot db newer than raft's snapshot): raft's configuration still needs it.
        if (e.type === EntryType.ConfChange && this.replayingTo === 0) core.node.applyConfChange(decodeConfChange(e.data))
        continue
      }
      try {
        this.applyEntry(e)
      } catch (error) {
        // A statement that spilled pages to a disk that refused them fails as SQLite's own error.
        const refused = error instanceof BackendWriteRefused || (isRefusedWrite(error) && core.backend.writeFailed(error) instanceof BackendWriteRefused)
        if (!refused || this.replayingTo > 0) throw error
        // The batch is gone: the state goes back to the db's, the entries after it are applied again, then this one.
        this.recoverLostBatch()
        if (e.index > core.appliedIndex) this.applyEntry(e)
      }
    }
    if (performance.now() - started > core.config.warningApplyDurationMs) core.counters.slowApplies++
    if (this.applyWaiters.length > 0) {
      const ready = this.applyWaiters.filter((w) => w.index <= core.appliedIndex)
      this.applyWaiters = this.applyWaiters.filter((w) => w.index > core.appliedIndex)
      for (const w of ready) w.resolve()
    }
  }

  private applyEntry(e: Entry): void {
    const core = this.core
    if (e.type === EntryType.ConfChange) this.applyConfChange(e)
    else if (e.data.length > 0) this.applyNormal(e)
    core.backend.setConsistentIndex(e.index, e.term)
    core.appliedIndex = e.index
    // Between entries only: a batch commit never splits one entry's writes.
    if (this.replayingTo === 0) core.backend.commitIfFull()
  }

  /** While recoverLostBatch() applies entries again: the index it goes up to (0 otherwise). */
  private replayingTo = 0

  /**
   * The disk refused a write of the backend's batch (its COMMIT, or a page
   * spilled by a statement) and SQLite rolled the batch back: the db holds
   * the state of the last commit, the rooms hold more. They reload from the
   * db, and the entries applied since its consistent index are applied again
   * from raft's log (the WAL made them durable; raft's log keeps every entry
   * after the backend's last durable state). Applying is deterministic, so
   * the state and its revisions come back the same; nothing is answered or
   * sent to watchers twice (waiters are gone, watchers wait for revisions
   * after those they got), raft's configuration is not changed again. The new
   * batch stays open until the disk takes a COMMIT. A no-op without a lost batch.
   */
  recoverLostBatch(): void {
    const core = this.core
    if (!core.backend.batchLost()) return
    const target = core.appliedIndex
    const ci = core.backend.reopenBatch()
    core.store.reload()
    core.lessor.reload()
    core.auth?.reload()
    core.v2?.reload()
    core.alarms.reload()
    core.membership.reload()
    core.appliedIndex = ci.index
    const entries = target > ci.index ? core.storage.entries(ci.index + 1, target + 1, Number.MAX_SAFE_INTEGER) : []
    assert(entries.length === target - ci.index, () => `raft's log lacks entries ${ci.index + 1}..${target} to apply again`)
    this.replayingTo = target
    try {
      this.applyEntries(entries)
    } finally {
      this.replayingTo = 0
    }
    assert(core.appliedIndex === target, () => `applied ${core.appliedIndex} after applying again up to ${target}`)
    if (core.lessor.isPrimary()) core.lessor.promote(core.config.electionMs)
    core.logger.warn("the backend's batch was rolled back after a write the disk refused; applied the entries after its last commit again, the batch is held until the disk takes a commit", {
      "consistent-index": ci.index,
      applied: target,
    })
  }

  private applyNormal(e: Entry): void {
    const req = decodeRequest(e.data)
    const result = this.applier.apply(req)
    // mvcc does not count its rows; every applied request counts as one write of the batch.
    this.core.backend.noteWrites(1)
    if (req.origin === this.core.memberId) this.core.waiters.trigger(req.seq, result)
  }

  private applyConfChange(e: Entry): void {
    const core = this.core
    const cc: ConfChange = decodeConfChange(e.data)
    const ctx = decodeCborContext(cc.context)
    let result: ApplyResult = { ok: true, response: {} }
    try {
      this.applyMembership(cc, ctx)
    } catch (error) {
      if (!isTskvError(error)) throw error
      result = { ok: false, error }
    }
    // Applied again after a lost batch: raft's configuration and the peers have it already.
    if (this.replayingTo > 0) return
    core.node.applyConfChange(cc)
    if (ctx && ctx.origin === core.memberId) core.waiters.trigger(ctx.seq, result)
    if (cc.type === ConfChangeType.RemoveNode && cc.nodeId === core.memberId) {
      core.logger.warn("this member was removed from the cluster; stopping")
      core.fatal(new TskvError("memberRemoved"))
    }
  }

  private applyMembership(cc: ConfChange, ctx: ConfChangeContext | undefined): void {
    const core = this.core
    const ms = core.membership
    switch (cc.type) {
      case ConfChangeType.AddNode:
      case ConfChangeType.AddLearnerNode: {
        const existing = ms.get(cc.nodeId)
        if (existing) {
          // Promotion of a learner, or the bootstrap entries of a new cluster (already known).
          if (existing.isLearner && cc.type === ConfChangeType.AddNode) {
            ms.promote(cc.nodeId)
            if (core.isLeader()) core.counters.learnerPromotes++
            core.v2?.recordInternalWrites(1)
          }
          return
        }
        const m = ctx?.member
        if (!m) {
          core.logger.warn("a conf change entry adds a member this member does not know, without its peer URLs (a log written by an older tskv): it cannot reach that member", { "member-id": formatId(cc.nodeId) })
          return
        }
        ms.add({ id: cc.nodeId, name: m.name, peerUrls: m.peerUrls, clientUrls: [], isLearner: cc.type === ConfChangeType.AddLearnerNode })
        // A bootstrap entry (origin 0) replayed into a lost backend: a fresh cluster knew it without a v2 write.
        if (ctx.origin !== 0n) core.v2?.recordInternalWrites(1)
        if (cc.nodeId !== core.memberId && this.replayingTo === 0) core.peers?.addPeer?.(cc.nodeId, m.peerUrls)
        return
      }
      case ConfChangeType.RemoveNode:
        ms.remove(cc.nodeId)
        core.v2?.recordInternalWrites(2)
        if (cc.nodeId !== core.memberId && this.replayingTo === 0) core.peers?.removePeer?.(cc.nodeId)
        return
      case ConfChangeType.UpdateNode:
        if (ctx?.peerUrls) {
          ms.updatePeerUrls(cc.nodeId, ctx.peerUrls)
          core.v2?.recordInternalWrites(1)
          if (cc.nodeId !== core.memberId && this.replayingTo === 0) core.peers?.updatePeer?.(cc.nodeId, ctx.peerUrls)
        }
        return
    }
  }
}

/**
 * The context of a new cluster's bootstrap AddNode entry (etcd: the member's
 * JSON): the member as --initial-cluster names it, so that a replay of the log
 * from its start (a backend lost with the page cache) learns every member.
 */
export function bootstrapConfChangeContext(member: { id: NodeId; name: string; peerUrls: readonly string[] }): Uint8Array {
  const context: ConfChangeContext = { origin: 0n, seq: 0, member: { id: member.id, name: member.name, peerUrls: [...member.peerUrls], isLearner: false } }
  return encodeCbor(context)
}

function decodeCborContext(bytes: Uint8Array): ConfChangeContext | undefined {
  if (bytes.length === 0) return undefined
  const v = decodeCbor(bytes) as Partial<ConfChangeContext> | null
  if (v === null || typeof v !== "object") return undefined
  assert(typeof v.seq === "number", "conf change context: seq")
  return {
    origin: BigInt(v.origin ?? 0),
    seq: v.seq,
    ...(v.member ? { member: { ...v.member, id: BigInt(v.member.id) } } : {}),
    ...(v.peerUrls ? { peerUrls: v.peerUrls } : {}),
  }
}
