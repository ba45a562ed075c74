// Test support (not used by the product): members of one cluster in one
// process over a scripted in-memory network. Each member persists its
// Ready into its MemoryStorage (the "disk"), applies committed entries to a
// list, and advances. Used by raft.test.ts and the scenario scripts.

import { assert } from "../../src/lib/assert"
import { seededPrng } from "../../src/lib/prng"
import { decodeConfChange } from "../../src/raft/conf_change_codec"
import type { RaftNodeOptions, Ready } from "../../src/raft/raft_node"
import { RaftNode } from "../../src/raft/raft_node"
import { MemoryStorage } from "../../src/raft/storage"
import type { ConfState, Message, NodeId } from "../../src/raft/types"
import { EntryType, MessageType } from "../../src/raft/types"

const encoder = new TextEncoder()
const decoder = new TextDecoder()

export type MemberOptions = Partial<Omit<RaftNodeOptions, "id" | "storage" | "prng">>

export class TestMember {
  readonly storage: MemoryStorage
  node: RaftNode
  /** Data of every applied normal, non-empty entry, in order. */
  applied: string[] = []
  appliedIndex = 0
  confState: ConfState = { voters: [], learners: [] }
  readStates: { index: number; ctx: string }[] = []

  constructor(readonly id: NodeId, readonly options: RaftNodeOptions) {
    assert(options.storage instanceof MemoryStorage, "test members use MemoryStorage")
    this.storage = options.storage
    this.node = new RaftNode(options)
  }

  /** Handles every Ready; returns the messages to send. */
  processReady(): Message[] {
    const out: Message[] = []
    while (this.node.hasReady()) {
      const rd = this.node.ready()
      this.persist(rd)
      for (const m of rd.messages) out.push(m)
      this.apply(rd)
      this.node.advance(rd)
    }
    return out
  }

  private persist(rd: Ready): void {
    if (rd.snapshot !== undefined) this.storage.applySnapshot(rd.snapshot)
    this.storage.append(rd.entries)
    if (rd.hardState !== undefined) this.storage.setHardState(rd.hardState)
  }

  private apply(rd: Ready): void {
    if (rd.snapshot !== undefined) {
      const state = JSON.parse(decoder.decode(rd.snapshot.data)) as { applied: string[] }
      this.applied = [...state.applied]
      this.appliedIndex = rd.snapshot.metadata.index
      this.confState = rd.snapshot.metadata.confState
    }
    for (const e of rd.committedEntries) {
      assert(e.index === this.appliedIndex + 1, () => `member ${this.id} applies ${e.index} after ${this.appliedIndex}`)
      this.appliedIndex = e.index
      if (e.type === EntryType.ConfChange) this.confState = this.node.applyConfChange(decodeConfChange(e.data))
      else if (e.data.length > 0) this.applied.push(decoder.decode(e.data))
    }
    for (const rs of rd.readStates) this.readStates.push({ index: rs.index, ctx: decoder.decode(rs.requestCtx) })
  }

  /** Snapshots the applied state and compacts the log up to the applied index. */
  compact(): void {
    const data = encoder.encode(JSON.stringify({ applied: this.applied }))
    this.storage.createSnapshot(this.appliedIndex, this.confState, data)
    this.storage.compact(this.appliedIndex)
  }
}

export interface ClusterOptions {
  voters: NodeId[]
  learners?: NodeId[]
  seed?: number
  member?: MemberOptions
}

export class TestCluster {
  readonly members = new Map<NodeId, TestMember>()
  /** Messages sent and not yet delivered, in order. */
  queue: Message[] = []
  /** Cut links "from->to". */
  readonly cut = new Set<string>()
  private seed: number

  constructor(readonly options: ClusterOptions) {
    this.seed = options.seed ?? 1
    for (const id of options.voters) this.addMember(id, true)
    for (const id of options.learners ?? []) this.addMember(id, true)
  }

  /** Adds a member; `bootstrap` members start with the initial configuration, others empty (joining). */
  addMember(id: NodeId, bootstrap: boolean, extra: MemberOptions = {}): TestMember {
    const options: RaftNodeOptions = {
      id,
      storage: new MemoryStorage(),
      prng: seededPrng(this.seed * 1000 + Number(id)),
      ...this.options.member,
      ...extra,
    }
    if (bootstrap) {
      options.peers = this.options.voters
      options.learners = this.options.learners ?? []
    }
    const member = new TestMember(id, options)
    this.members.set(id, member)
    return member
  }

  member(id: NodeId): TestMember {
    const m = this.members.get(id)
    assert(m !== undefined, () => `no member ${id}`)
    return m
  }

  /** Restarts a member from its storage (everything persisted survives). */
  restart(id: NodeId): void {
    const old = this.member(id)
    const options: RaftNodeOptions = { ...old.options, storage: old.storage, applied: old.appliedIndex }
    delete options.peers
    delete options.learners
    const fresh = new TestMember(id, options)
    fresh.applied = old.applied
    fresh.appliedIndex = old.appliedIndex
    fresh.confState = old.confState
    this.members.set(id, fresh)
  }

  /** Runs every member's Ready loop; queues their messages. */
  process(): void {
    for (const m of this.members.values()) this.send(m.processReady())
  }

  send(msgs: Message[]): void {
    for (const m of msgs) {
      if (this.cut.has(`${m.from}->${m.to}`)) continue
      this.queue.push(m)
    }
  }

  /** Delivers the queued messages (only those matching `filter`); returns what was delivered. */
  deliver(filter: (m: Message) => boolean = () => true): Message[] {
    const now = this.queue
    this.queue = []
    const delivered: Message[] = []
    for (const m of now) {
      if (!filter(m)) {
        this.queue.push(m)
        continue
      }
      const target = this.members.get(m.to)
      if (target === undefined || this.cut.has(`${m.from}->${m.to}`)) continue
      target.node.step(m)
      delivered.push(m)
    }
    return delivered
  }

  /** Processes and delivers until nothing moves. */
  stabilize(limit = 10_000): Message[] {
    const all: Message[] = []
    for (let round = 0; round < limit; round++) {
      this.process()
      if (this.queue.length === 0) return all
      for (const m of this.deliver()) all.push(m)
    }
    throw new Error("cluster did not stabilize")
  }

  tick(id: NodeId, n = 1): void {
    for (let k = 0; k < n; k++) this.member(id).node.tick()
  }

  isolate(id: NodeId): void {
    for (const other of this.members.keys()) {
      if (other === id) continue
      this.cut.add(`${id}->${other}`)
      this.cut.add(`${other}->${id}`)
    }
  }

  heal(): void {
    this.cut.clear()
  }

  /** Campaigns on `id` and stabilizes. */
  elect(id: NodeId): void {
    this.member(id).node.campaign()
    this.stabilize()
  }

  propose(id: NodeId, data: string): void {
    this.member(id).node.propose(encoder.encode(data))
  }

  leaders(): NodeId[] {
    return [...this.members.values()].filter((m) => m.node.raft.state === 2).map((m) => m.id)
  }
}

export function describeMessage(m: Message): string {
  let s = `${m.from}->${m.to} ${MessageType[m.type]} term=${m.term}`
  switch (m.type) {
    case MessageType.App:
      s += ` log=${m.logTerm}/${m.index} commit=${m.commit}`
      if (m.entries.length > 0) {
        s += ` entries=[${m.entries.map((e) => `${e.term}/${e.index}${e.type === EntryType.ConfChange ? ":conf" : e.data.length > 0 ? `:${decoder.decode(e.data)}` : ""}`).join(" ")}]`
      }
      break
    case MessageType.AppResp:
      s += ` index=${m.index}`
      if (m.reject) s += ` rejected hint=${m.logTerm}/${m.rejectHint}`
      break
    case MessageType.Vote:
    case MessageType.PreVote:
      s += ` last=${m.logTerm}/${m.index}`
      break
    case MessageType.VoteResp:
    case MessageType.PreVoteResp:
      if (m.reject) s += " rejected"
      break
    case MessageType.Heartbeat:
      s += ` commit=${m.commit}`
      break
    case MessageType.Snap:
      s += ` snapshot=${m.snapshot?.metadata.term}/${m.snapshot?.metadata.index}`
      break
    case MessageType.ReadIndexResp:
      s += ` index=${m.index}`
      break
    default:
      break
  }
  if (m.context !== undefined && m.context.length > 0 && m.type !== MessageType.Vote) s += ` ctx=${decoder.decode(m.context)}`
  return s
}
