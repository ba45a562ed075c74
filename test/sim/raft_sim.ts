// Deterministic simulation of a raft cluster (test support). Everything
// random comes from one seeded PRNG: the network (loss, duplication,
// reordering by random delay, partitions, one-way links), crashes that lose
// whatever a member had not yet persisted, snapshots, membership changes and
// a client workload over a small key-value state machine. About half the
// member incarnations run a pipelined RaftNode (several Readies persisting at
// once, applied before their fsync, persisted in order at random later
// rounds). Half the seeds of
// a multi-member cluster add leader churn (raft's Figure 8; see `churn`). After every round
// the invariants are checked; at the end, every member's applied sequence
// and the client history (linearizability of per-key registers) are checked,
// then the network heals and the cluster must elect a leader and commit
// within a bounded number of ticks.

import { assert } from "../../src/lib/assert"
import type { Prng } from "../../src/lib/prng"
import { seededPrng } from "../../src/lib/prng"
import { decodeConfChange } from "../../src/raft/conf_change_codec"
import { ProposalDroppedError, ReadIndexDroppedError } from "../../src/raft/errors"
import type { Ready } from "../../src/raft/raft_node"
import { RaftNode, sendableBeforePersist } from "../../src/raft/raft_node"
import { MemoryStorage } from "../../src/raft/storage"
import type { ConfState, Message, NodeId } from "../../src/raft/types"
import { ConfChangeType, EntryType, MessageType, StateType } from "../../src/raft/types"

const enc = new TextEncoder()
const dec = new TextDecoder()

export interface SimOptions {
  seed: number
  members: number
  /** Ticks of the faulty phase. */
  faultTicks?: number
  /** Election timeout in ticks (default 10). */
  electionTicks?: number
}

interface ClientOp {
  id: number
  kind: "put" | "get"
  key: string
  value: string // put: the unique value written; get: the value read ("" = none)
  invoke: number
  respond: number | undefined
  readIndex?: number
  member: NodeId
  incarnation: number
}

interface InFlight {
  m: Message
  at: number
  fromIncarnation: number
}

class SimMember {
  /** The disk: what was persisted survives a crash. */
  readonly disk: MemoryStorage
  node: RaftNode
  incarnation: number
  kv = new Map<string, string>()
  appliedReqs = new Set<number>()
  appliedIndex = 0
  confState: ConfState = { voters: [], learners: [] }
  pending: Ready | undefined = undefined
  /** Pipelined: Readies accepted and not yet persisted, oldest first. */
  persisting: Ready[] = []
  alive = true
  removed = false
  removedAt = 0
  restartAt = 0
  /** Highest commit index whose terms were checked against the global committed log. */
  checkedCommit = 0

  constructor(readonly id: NodeId, disk: MemoryStorage, node: RaftNode, incarnation: number, readonly peers: NodeId[]) {
    this.disk = disk
    this.node = node
    this.incarnation = incarnation
  }
}

export class SimFailure extends Error {}

export class RaftSimulator {
  readonly prng: Prng
  readonly members = new Map<NodeId, SimMember>()
  private network: InFlight[] = []
  private now = 0
  tick = 0
  private incarnations = 0
  private nextMemberId: bigint
  private readonly trace: string[] = []
  /** Links that drop messages, "a->b". */
  private readonly cut = new Set<string>()
  private lossRatio = 0.05
  private dupRatio = 0.02
  private maxDelay = 3
  // Invariant bookkeeping.
  private readonly leaderOfTerm = new Map<number, NodeId>()
  private readonly committedTerm = new Map<number, number>()
  private readonly appliedPrint = new Map<number, string>()
  private readonly leaderMark = new Map<NodeId, { term: number; index: number; logTerm: number }>()
  // Client history.
  private readonly ops: ClientOp[] = []
  private nextOpId = 1
  private readonly pendingPuts = new Map<number, ClientOp>()
  private readonly pendingGets = new Map<number, ClientOp>()
  private readonly keys = ["a", "b", "c"]
  readonly stats = { messages: 0, committed: 0, elections: 0, crashes: 0, snapshots: 0, confChanges: 0 }

  /** Per seed: one entry per message sometimes, so that old-term entries travel apart from new ones. */
  private readonly maxSizePerMsgBytes: number
  private readonly maxInflightMsgs: number
  /**
   * Per seed: leader churn (raft's Figure 8). A new leader is sometimes cut off
   * at once, so that what it appends stays on its own log, and a leader is
   * sometimes crashed the moment its commit index moves, before the entries
   * and commit index it is about to send leave it. With one entry per message,
   * this leaves minorities holding tails of different old terms and leaders
   * that commit while their own term's entry is still on a minority: the
   * situations in which counting replicas of an earlier term's entry loses
   * committed data.
   */
  private readonly churn: boolean
  /** Members cut off from everyone until the given tick (leader churn). */
  private readonly isolatedUntil = new Map<NodeId, number>()
  private faulting = false

  constructor(readonly options: SimOptions) {
    this.prng = seededPrng(options.seed)
    this.maxSizePerMsgBytes = this.prng.next() < 0.5 ? 1 : 4096
    this.maxInflightMsgs = this.prng.next() < 0.5 ? 2 : 8
    this.churn = options.members > 1 && this.prng.next() < 0.5
    if (this.churn) this.maxSizePerMsgBytes = 1
    const voters = Array.from({ length: options.members }, (_, k) => BigInt(k + 1))
    this.nextMemberId = BigInt(options.members + 1)
    for (const id of voters) this.startMember(id, voters)
  }

  private log(event: string): void {
    this.trace.push(`t=${this.tick} ${event}`)
    if (this.trace.length > 60) this.trace.shift()
  }

  fail(what: string): never {
    throw new SimFailure(`seed ${this.options.seed} (${this.options.members} members): ${what}\n` +
      `replay: TSKV_SEED=${this.options.seed} npx bun test test/sim/raft_sim\ntrace:\n  ${this.trace.join("\n  ")}`)
  }

  private check(condition: boolean, what: () => string): void {
    if (!condition) this.fail(what())
  }

  // ---- members ---------------------------------------------------------------

  private startMember(id: NodeId, peers: NodeId[]): SimMember {
    const disk = new MemoryStorage()
    const node = new RaftNode({
      pipelined: this.prng.next() < 0.5,
      id,
      peers,
      storage: disk,
      prng: seededPrng(this.options.seed * 7919 + Number(id)),
      electionTicks: this.options.electionTicks ?? 10,
      heartbeatTicks: 1,
      maxSizePerMsgBytes: this.maxSizePerMsgBytes,
      maxInflightMsgs: this.maxInflightMsgs,
    })
    const m = new SimMember(id, disk, node, ++this.incarnations, peers)
    this.members.set(id, m)
    return m
  }

  private crash(m: SimMember, downTicks: number): void {
    m.alive = false
    m.pending = undefined
    m.persisting = []
    m.restartAt = this.tick + downTicks
    this.stats.crashes++
    this.log(`crash ${m.id} (down ${downTicks} ticks)`)
    for (const [reqId, op] of this.pendingPuts) if (op.member === m.id) this.pendingPuts.delete(reqId)
    for (const [reqId, op] of this.pendingGets) if (op.member === m.id) this.pendingGets.delete(reqId)
  }

  private restart(m: SimMember): void {
    const snap = m.disk.snapshot()
    m.kv = new Map()
    m.appliedReqs = new Set()
    m.appliedIndex = snap.metadata.index
    m.confState = snap.metadata.confState
    if (snap.metadata.index > 0) this.restoreState(m, snap.data)
    m.node = new RaftNode({
      pipelined: this.prng.next() < 0.5,
      id: m.id,
      // Nothing persisted yet (crashed before the first Ready): bootstrap again, as a fresh data dir would.
      ...(m.disk.lastIndex() === 0 ? { peers: m.peers } : {}),
      storage: m.disk,
      prng: seededPrng(this.options.seed * 7919 + Number(m.id) * 31 + this.incarnations),
      electionTicks: this.options.electionTicks ?? 10,
      heartbeatTicks: 1,
      maxSizePerMsgBytes: this.maxSizePerMsgBytes,
      maxInflightMsgs: this.maxInflightMsgs,
      applied: snap.metadata.index,
    })
    m.incarnation = ++this.incarnations
    m.alive = true
    m.checkedCommit = 0
    this.leaderMark.delete(m.id)
    this.log(`restart ${m.id} at applied ${m.appliedIndex}, last ${m.disk.lastIndex()}`)
  }

  private restoreState(m: SimMember, data: Uint8Array): void {
    const state = JSON.parse(dec.decode(data)) as { kv: [string, string][]; reqs: number[] }
    m.kv = new Map(state.kv)
    m.appliedReqs = new Set(state.reqs)
  }

  // ---- ready loop ---------------------------------------------------------

  private drive(m: SimMember): boolean {
    if (!m.alive) return false
    if (m.node.pipelined) return this.drivePipelined(m)
    let moved = false
    if (m.pending !== undefined) {
      this.finishReady(m, m.pending)
      moved = true
    }
    if (m.node.hasReady()) {
      const rd = m.node.ready()
      // Messages a leader may send before its own fsync go out now; the rest wait for persistence.
      for (const msg of rd.messages) if (sendableBeforePersist(msg)) this.send(m, msg)
      if (this.prng.next() < 0.7) this.finishReady(m, rd)
      else m.pending = rd
      moved = true
    }
    return moved
  }

  /**
   * A pipelined member: takes every Ready at once (early messages out,
   * committed entries applied) and persists the accepted ones in order, some
   * now and some in later rounds.
   */
  private drivePipelined(m: SimMember): boolean {
    let moved = false
    while (m.persisting.length > 0 && this.prng.next() < 0.5) {
      this.persistReady(m, m.persisting.shift()!)
      moved = true
    }
    if (m.node.hasReady()) {
      const rd = m.node.ready()
      for (const msg of rd.messages) if (sendableBeforePersist(msg)) this.send(m, msg)
      for (const e of rd.committedEntries) {
        const persisted = e.index <= m.disk.lastIndex() && (e.index < m.disk.firstIndex() || m.disk.term(e.index) === e.term)
        this.check(persisted, () => `member ${m.id} applies ${e.term}/${e.index} before persisting it (last persisted ${m.disk.lastIndex()})`)
        this.applyEntry(m, e.index, e.term, e.type, e.data)
      }
      this.takeReadStates(m, rd)
      m.node.accept(rd)
      m.persisting.push(rd)
      moved = true
    }
    return moved
  }

  private persistReady(m: SimMember, rd: Ready): void {
    if (rd.snapshot !== undefined) m.disk.applySnapshot(rd.snapshot)
    m.disk.append(rd.entries)
    if (rd.hardState !== undefined) m.disk.setHardState(rd.hardState)
    if (rd.snapshot !== undefined) {
      m.appliedIndex = rd.snapshot.metadata.index
      m.confState = rd.snapshot.metadata.confState
      this.restoreState(m, rd.snapshot.data)
    }
    m.node.persisted(rd)
    for (const msg of rd.messages) if (!sendableBeforePersist(msg)) this.send(m, msg)
    this.maybeSnapshot(m)
  }

  private takeReadStates(m: SimMember, rd: Ready): void {
    for (const rs of rd.readStates) {
      const op = this.pendingGets.get(Number(dec.decode(rs.requestCtx)))
      if (op !== undefined && op.incarnation === m.incarnation) op.readIndex = rs.index
    }
  }

  private finishReady(m: SimMember, rd: Ready): void {
    m.pending = undefined
    if (rd.snapshot !== undefined) m.disk.applySnapshot(rd.snapshot)
    m.disk.append(rd.entries)
    if (rd.hardState !== undefined) m.disk.setHardState(rd.hardState)
    for (const msg of rd.messages) if (!sendableBeforePersist(msg)) this.send(m, msg)
    if (rd.snapshot !== undefined) {
      m.appliedIndex = rd.snapshot.metadata.index
      m.confState = rd.snapshot.metadata.confState
      this.restoreState(m, rd.snapshot.data)
    }
    for (const e of rd.committedEntries) this.applyEntry(m, e.index, e.term, e.type, e.data)
    this.takeReadStates(m, rd)
    m.node.advance(rd)
    this.maybeSnapshot(m)
  }

  private applyEntry(m: SimMember, index: number, term: number, type: EntryType, data: Uint8Array): void {
    this.check(index === m.appliedIndex + 1, () => `member ${m.id} applies ${index} after ${m.appliedIndex}`)
    m.appliedIndex = index
    const print = `${term}:${type}:${dec.decode(data)}`
    const seen = this.appliedPrint.get(index)
    if (seen === undefined) this.appliedPrint.set(index, print)
    else this.check(seen === print, () => `member ${m.id} applied ${print} at ${index}, another member applied ${seen}`)
    if (type === EntryType.ConfChange) {
      const cc = decodeConfChange(data)
      m.confState = m.node.applyConfChange(cc)
      if (cc.type === ConfChangeType.RemoveNode) {
        const target = this.members.get(cc.nodeId)
        if (target !== undefined && !target.removed) {
          target.removed = true
          target.removedAt = index
          this.log(`removed ${cc.nodeId} (applied on ${m.id})`)
        }
      }
      return
    }
    if (data.length === 0) return
    const [reqText, key, value] = dec.decode(data).split("|") as [string, string, string]
    const reqId = Number(reqText)
    if (m.appliedReqs.has(reqId)) return // a duplicated proposal
    m.appliedReqs.add(reqId)
    m.kv.set(key, value)
    const op = this.pendingPuts.get(reqId)
    if (op !== undefined && op.member === m.id && op.incarnation === m.incarnation) {
      op.respond = this.now
      this.pendingPuts.delete(reqId)
    }
    if (m.id === 1n || this.stats.committed < index) this.stats.committed = Math.max(this.stats.committed, index)
  }

  private maybeSnapshot(m: SimMember): void {
    const snapIndex = m.disk.snapshot().metadata.index
    if (m.appliedIndex - snapIndex < 25 || this.prng.next() > 0.5) return
    if (m.appliedIndex > m.disk.lastIndex()) return
    const data = enc.encode(JSON.stringify({ kv: [...m.kv], reqs: [...m.appliedReqs] }))
    m.disk.createSnapshot(m.appliedIndex, m.confState, data)
    m.disk.compact(Math.max(m.disk.firstIndex() - 1, m.appliedIndex - 5))
    this.stats.snapshots++
  }

  // ---- network ----------------------------------------------------------------

  private send(from: SimMember, m: Message): void {
    this.stats.messages++
    if (this.prng.next() < this.lossRatio) return this.dropped(from, m)
    const copies = this.prng.next() < this.dupRatio ? 2 : 1
    for (let k = 0; k < copies; k++) {
      const delay = this.maxDelay === 0 ? 0 : this.prng.int(this.maxDelay + 1)
      this.network.push({ m, at: this.tick + delay, fromIncarnation: from.incarnation })
    }
  }

  private dropped(from: SimMember, m: Message): void {
    if (m.type === MessageType.Snap && from.alive) from.node.reportSnapshot(m.to, false)
    else if (from.alive && this.prng.next() < 0.1) from.node.reportUnreachable(m.to)
  }

  /** Delivers the messages due now; returns how many were delivered. */
  private deliver(): number {
    const due: InFlight[] = []
    const later: InFlight[] = []
    for (const f of this.network) (f.at <= this.tick ? due : later).push(f)
    this.network = later
    // Reorder what is due together.
    for (let k = due.length - 1; k > 0; k--) {
      const j = this.prng.int(k + 1)
      const t = due[k]!
      due[k] = due[j]!
      due[j] = t
    }
    for (const f of due) {
      this.now++
      const from = this.members.get(f.m.from)
      const to = this.members.get(f.m.to)
      const fromLive = from !== undefined && from.alive && from.incarnation === f.fromIncarnation
      if (to === undefined || !to.alive || this.cut.has(`${f.m.from}->${f.m.to}`) ||
        this.isolatedUntil.has(f.m.from) || this.isolatedUntil.has(f.m.to)) {
        if (fromLive) this.dropped(from, f.m)
        continue
      }
      to.node.step(f.m)
      if (f.m.type === MessageType.Snap && fromLive) from.node.reportSnapshot(f.m.to, true)
      this.checkMember(to)
    }
    return due.length
  }

  // ---- faults and workload ---------------------------------------------------------

  /** Running members that are still in the cluster. */
  private liveMembers(): SimMember[] {
    return [...this.members.values()].filter((m) => m.alive && !m.removed)
  }

  private runningMembers(): SimMember[] {
    return [...this.members.values()].filter((m) => m.alive)
  }

  leader(): SimMember | undefined {
    let best: SimMember | undefined
    for (const m of this.liveMembers()) {
      if (m.node.raft.state === StateType.Leader && (best === undefined || m.node.raft.term > best.node.raft.term)) best = m
    }
    return best
  }

  private randomMember(): SimMember | undefined {
    const live = this.liveMembers()
    return live.length === 0 ? undefined : live[this.prng.int(live.length)]
  }

  private faults(): void {
    const p = this.prng
    const ids = [...this.members.keys()]
    // Partitions come and go.
    if (p.next() < 0.02) {
      this.cut.clear()
      const kind = p.int(4)
      const leader = this.leader()
      if (kind === 0 && leader !== undefined) {
        for (const o of ids) if (o !== leader.id) { this.cut.add(`${leader.id}->${o}`); this.cut.add(`${o}->${leader.id}`) }
        this.log(`partition: isolate leader ${leader.id}`)
      } else if (kind === 1) {
        const side = new Set(ids.filter(() => p.next() < 0.5))
        for (const a of ids) for (const b of ids) if (side.has(a) !== side.has(b)) this.cut.add(`${a}->${b}`)
        this.log(`partition: {${[...side].join(",")}} | rest`)
      } else if (kind === 2 && ids.length > 1) {
        const a = ids[p.int(ids.length)]!
        const b = ids[p.int(ids.length)]!
        if (a !== b) this.cut.add(`${a}->${b}`)
        this.log(`partition: one-way ${a}->${b}`)
      } else {
        this.log("heal")
      }
    }
    // Crashes: lose the unpersisted Ready and everything in memory.
    if (p.next() < 0.01) {
      const m = this.randomMember()
      if (m !== undefined) this.crash(m, 1 + p.int(30))
    }
    for (const m of this.members.values()) if (!m.alive && !m.removed && m.restartAt <= this.tick) this.restart(m)
    for (const [id, until] of this.isolatedUntil) {
      if (until <= this.tick) {
        this.isolatedUntil.delete(id)
        this.log(`rejoin ${id}`)
      }
    }
    // Membership changes and leader transfers.
    if (p.next() < 0.01) this.changeMembership()
    if (p.next() < 0.005) {
      const leader = this.leader()
      const voters = leader === undefined ? [] : [...leader.node.raft.voters].filter((v) => v !== leader.id)
      if (leader !== undefined && voters.length > 0) {
        const to = voters[p.int(voters.length)]!
        leader.node.transferLeader(to)
        this.log(`transfer leadership ${leader.id} -> ${to}`)
      }
    }
    // Client workload.
    if (p.next() < 0.3) this.clientOp()
  }

  private changeMembership(): void {
    const leader = this.leader()
    if (leader === undefined) return
    const cfg = leader.node.raft
    const status = leader.node.status()
    const voters = [...cfg.voters]
    const learners = [...cfg.learners]
    const n = this.options.members
    let cc: { type: ConfChangeType; nodeId: NodeId } | undefined
    const ready = learners.find((l) => (status.progress.get(l)?.match ?? 0) >= cfg.log.committed)
    if (ready !== undefined && voters.length < n + 1) {
      cc = { type: ConfChangeType.AddNode, nodeId: ready }
    } else if (learners.length === 0 && voters.length <= n) {
      cc = { type: ConfChangeType.AddLearnerNode, nodeId: this.nextMemberId }
    } else if (voters.length > Math.max(1, n - 1)) {
      cc = { type: ConfChangeType.RemoveNode, nodeId: voters[this.prng.int(voters.length)]! }
    } else if (learners.length > 0) {
      cc = { type: ConfChangeType.RemoveNode, nodeId: learners[0]! }
    }
    if (cc === undefined) return
    try {
      leader.node.proposeConfChange({ ...cc, context: new Uint8Array(0) })
    } catch (e) {
      if (e instanceof ProposalDroppedError) return
      throw e
    }
    this.stats.confChanges++
    this.log(`propose ${ConfChangeType[cc.type]} ${cc.nodeId} on ${leader.id}`)
    if (cc.type === ConfChangeType.AddLearnerNode) {
      this.startMember(this.nextMemberId, [])
      this.nextMemberId++
    }
  }

  private clientOp(): void {
    const m = this.randomMember()
    if (m === undefined) return
    const key = this.keys[this.prng.int(this.keys.length)]!
    const id = this.nextOpId++
    const op: ClientOp = { id, kind: this.prng.next() < 0.6 ? "put" : "get", key, value: "", invoke: ++this.now, respond: undefined, member: m.id, incarnation: m.incarnation }
    try {
      if (op.kind === "put") {
        op.value = `v${id}`
        m.node.propose(enc.encode(`${id}|${key}|${op.value}`))
        this.pendingPuts.set(id, op)
      } else {
        m.node.readIndex(enc.encode(String(id)))
        this.pendingGets.set(id, op)
      }
    } catch (e) {
      if (e instanceof ProposalDroppedError || e instanceof ReadIndexDroppedError) return
      throw e
    }
    this.ops.push(op)
  }

  private serveReads(): void {
    for (const [id, op] of this.pendingGets) {
      if (op.readIndex === undefined) continue
      const m = this.members.get(op.member)!
      if (!m.alive || m.incarnation !== op.incarnation || m.appliedIndex < op.readIndex) continue
      op.value = m.kv.get(op.key) ?? ""
      op.respond = ++this.now
      this.pendingGets.delete(id)
    }
  }

  // ---- invariants ------------------------------------------------------------------

  private checkMember(m: SimMember): void {
    const r = m.node.raft
    const log = r.log
    const last = log.lastIndex()
    this.check(log.applied <= log.committed, () => `member ${m.id}: applied ${log.applied} > committed ${log.committed}`)
    this.check(log.committed <= last, () => `member ${m.id}: committed ${log.committed} > last ${last}`)
    if (r.state === StateType.Leader) {
      const prev = this.leaderOfTerm.get(r.term)
      if (prev === undefined) {
        this.leaderOfTerm.set(r.term, m.id)
        this.stats.elections++
        this.log(`leader ${m.id} term ${r.term} last ${last} commit ${log.committed}`)
        // Leader completeness: every committed entry is in the new leader's log.
        for (const [i, t] of this.committedTerm) {
          if (i < log.firstIndex()) continue
          this.check(log.term(i) === t, () => `leader ${m.id} of term ${r.term} lacks committed entry ${t}/${i}`)
        }
      } else {
        this.check(prev === m.id, () => `two leaders in term ${r.term}: ${prev} and ${m.id}`)
      }
      // Leader append-only: within its term it never changes or drops an entry.
      const mark = this.leaderMark.get(m.id)
      if (mark !== undefined && mark.term === r.term) {
        this.check(last >= mark.index, () => `leader ${m.id} log shrank from ${mark.index} to ${last}`)
        const t = log.term(mark.index)
        this.check(t === undefined || t === mark.logTerm, () => `leader ${m.id} rewrote entry ${mark.index}`)
      }
      this.leaderMark.set(m.id, { term: r.term, index: last, logTerm: log.term(last) ?? 0 })
      if (prev === undefined) this.churnNewLeader(m)
    }
    const commitMoved = log.committed > m.checkedCommit
    // State machine safety: committed entries agree everywhere.
    if (log.committed > m.checkedCommit) {
      for (let i = Math.max(m.checkedCommit + 1, log.firstIndex()); i <= log.committed; i++) {
        const t = log.term(i)!
        const known = this.committedTerm.get(i)
        if (known === undefined) this.committedTerm.set(i, t)
        else this.check(known === t, () => `member ${m.id} committed ${t}/${i}, another member committed term ${known}`)
      }
      m.checkedCommit = log.committed
    }
    if (commitMoved && r.state === StateType.Leader) this.churnCommittingLeader(m)
  }

  /** Leader churn: sometimes cut a new leader off before anything it appends leaves it. */
  private churnNewLeader(m: SimMember): void {
    if (!this.churn || !this.faulting || this.prng.next() >= 0.5) return
    const until = this.tick + 5 + this.prng.int(60)
    this.isolatedUntil.set(m.id, until)
    this.log(`isolate new leader ${m.id} until t=${until}`)
  }

  /** Leader churn: sometimes crash a leader the moment it commits, before its messages leave it. */
  private churnCommittingLeader(m: SimMember): void {
    if (!this.churn || !this.faulting || m.removed || this.prng.next() >= 0.3) return
    this.log(`leader ${m.id} commits ${m.node.raft.log.committed} (term ${m.node.raft.log.term(m.node.raft.log.committed)})`)
    this.crash(m, 10 + this.prng.int(40))
  }

  /** Log matching: if two logs hold an entry with the same index and term, all earlier entries agree. */
  checkLogMatching(): void {
    const live = this.liveMembers()
    for (let a = 0; a < live.length; a++) {
      for (let b = a + 1; b < live.length; b++) {
        const la = live[a]!.node.raft.log
        const lb = live[b]!.node.raft.log
        const lo = Math.max(la.firstIndex(), lb.firstIndex())
        let i = Math.min(la.lastIndex(), lb.lastIndex())
        while (i >= lo && la.term(i) !== lb.term(i)) i--
        for (; i >= lo; i--) {
          this.check(la.term(i) === lb.term(i), () => `log matching broken between ${live[a]!.id} and ${live[b]!.id} at ${i}`)
        }
      }
    }
  }

  // ---- running -------------------------------------------------------------------

  private round(): void {
    for (let k = 0; k < 50; k++) {
      let moved = false
      for (const m of this.members.values()) if (this.drive(m)) moved = true
      this.serveReads()
      if (this.deliver() > 0) moved = true
      if (!moved) return
    }
  }

  private step(withFaults: boolean): void {
    this.tick++
    this.faulting = withFaults
    if (withFaults) this.faults()
    for (const m of this.runningMembers()) {
      m.node.tick()
      this.checkMember(m)
    }
    this.round()
    // A removed member keeps running until every remaining member has applied
    // its removal (until then it may still be needed for a quorum of the old
    // configuration), then stops for good.
    for (const m of this.members.values()) {
      if (!m.removed || !m.alive) continue
      const rest = [...this.members.values()].filter((o) => !o.removed)
      if (rest.every((o) => o.alive && o.appliedIndex >= m.removedAt)) {
        m.alive = false
        m.pending = undefined
        m.persisting = []
        this.log(`stop removed ${m.id}`)
      }
    }
    if (this.tick % 32 === 0) this.checkLogMatching()
  }

  run(): void {
    const faultTicks = this.options.faultTicks ?? 300
    for (let t = 0; t < faultTicks; t++) this.step(true)
    this.healAndCheckLiveness()
    this.checkLogMatching()
    this.checkHistory()
  }

  /** After healing, a leader is elected and a proposal commits everywhere within a bounded number of ticks. */
  private healAndCheckLiveness(): void {
    this.cut.clear()
    this.isolatedUntil.clear()
    this.lossRatio = 0
    this.dupRatio = 0
    this.maxDelay = 1
    this.log("heal all, restart all")
    for (const m of this.members.values()) if (!m.alive && !m.removed) this.restart(m)
    const bound = 40 * (this.options.electionTicks ?? 10)
    const start = this.tick
    let sentinel: number | undefined
    let sentinelAt = 0
    while (this.tick - start < bound) {
      this.step(false)
      const leader = this.leader()
      if (leader === undefined) continue
      if (sentinel === undefined || this.tick - sentinelAt > 5 * (this.options.electionTicks ?? 10)) {
        // (Re)propose: a proposal can be lost with a leader change.
        sentinelAt = this.tick
        try {
          const id = this.nextOpId++
          leader.node.propose(enc.encode(`${id}|z|sentinel`))
          sentinel = id
        } catch (e) {
          if (!(e instanceof ProposalDroppedError)) throw e
        }
        continue
      }
      const members = this.liveMembers().filter((m) => m.confState.voters.includes(m.id) || m.confState.learners.includes(m.id))
      if (sentinel !== undefined && members.length > 0 && members.every((m) => m.appliedReqs.has(sentinel!) && m.appliedIndex === leader.node.raft.log.committed)) {
        return
      }
    }
    this.fail(`no progress within ${bound} ticks after healing (leader ${this.leader()?.id ?? "none"}, sentinel ${sentinel})\n` +
      [...this.members.values()].map((m) => {
        const r = m.node.raft
        return `  ${m.id}: alive=${m.alive} removed=${m.removed} state=${StateType[r.state]} term=${r.term} lead=${r.lead} ` +
          `last=${r.log.lastIndex()} commit=${r.log.committed} applied=${m.appliedIndex} voters=${[...r.voters]} learners=${[...r.learners]} ` +
          `progress=${[...m.node.status().progress].map(([id, p]) => `${id}:${p.state}/${p.match}/${p.next}`).join(",")}`
      }).join("\n"))
  }

  /** Linearizability of every key as a register, given the total order of writes by log index. */
  checkHistory(): void {
    const index = new Map<string, number>() // value -> apply index
    for (const [i, print] of this.appliedPrint) {
      const parts = print.split(":")
      if (parts[1] !== String(EntryType.Normal)) continue
      const data = parts.slice(2).join(":")
      if (data === "") continue
      const value = data.split("|")[2]!
      if (!index.has(value)) index.set(value, i)
    }
    const puts = this.ops.filter((o) => o.kind === "put")
    const byKey = new Map<string, ClientOp[]>()
    for (const o of puts) {
      const list = byKey.get(o.key) ?? []
      list.push(o)
      byKey.set(o.key, list)
    }
    for (const o of puts) {
      if (o.respond !== undefined) this.check(index.has(o.value), () => `acknowledged write ${o.value} was never applied`)
    }
    // Writes: real-time order is respected by log order.
    for (const a of puts) {
      if (a.respond === undefined) continue
      for (const b of byKey.get(a.key)!) {
        const ib = index.get(b.value)
        if (b.invoke > a.respond && ib !== undefined) {
          this.check(index.get(a.value)! < ib, () => `write ${b.value} invoked after ${a.value} completed but ordered before it`)
        }
      }
    }
    const gets = this.ops.filter((o) => o.kind === "get" && o.respond !== undefined)
    for (const r of gets) {
      const iw = r.value === "" ? 0 : index.get(r.value)
      this.check(iw !== undefined, () => `read ${r.id} returned ${r.value}, which was never written`)
      for (const w of byKey.get(r.key) ?? []) {
        const i = index.get(w.value)
        if (w.value === r.value) {
          this.check(w.invoke < r.respond!, () => `read ${r.id} saw ${w.value} before it was written`)
        } else if (i !== undefined && i > iw! && w.respond !== undefined) {
          this.check(w.respond > r.invoke, () => `stale read ${r.id} of ${r.key}: saw ${r.value || "nothing"} after ${w.value} completed`)
        }
      }
    }
    // Reads are monotonic in real time.
    for (const a of gets) {
      for (const b of gets) {
        if (a.key !== b.key || b.invoke <= a.respond!) continue
        const ia = a.value === "" ? 0 : index.get(a.value)!
        const ib = b.value === "" ? 0 : index.get(b.value)!
        this.check(ib >= ia, () => `read ${b.id} saw an older ${b.key} (${b.value || "nothing"}) than earlier read ${a.id} (${a.value})`)
      }
    }
  }

  completedOps(): number {
    return this.ops.filter((o) => o.respond !== undefined).length
  }
}
