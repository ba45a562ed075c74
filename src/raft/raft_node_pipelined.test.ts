// A pipelined RaftNode (accept() now, persisted() later): the next Ready
// follows before the previous one is durable, and nothing that needs the
// fsync happens before it. The randomized coverage is test/sim/raft_sim.ts
// (about half its member incarnations are pipelined).

import { describe, expect, test } from "bun:test"
import { seededPrng } from "../lib/prng"
import { RaftNode, type Ready, sendableBeforePersist } from "./raft_node"
import { decodeConfChange } from "./conf_change_codec"
import { MemoryStorage } from "./storage"
import { EntryType, type Message, MessageType, type NodeId, StateType } from "./types"

const enc = new TextEncoder()

function node(id: NodeId, peers: NodeId[]): { node: RaftNode; disk: MemoryStorage } {
  const disk = new MemoryStorage()
  return { node: new RaftNode({ id, peers, storage: disk, prng: seededPrng(Number(id)), pipelined: true }), disk }
}

/** What the server does once a Ready is durable: storage first, then persisted(). */
function persist(n: { node: RaftNode; disk: MemoryStorage }, rd: Ready): Message[] {
  if (rd.snapshot) n.disk.applySnapshot(rd.snapshot)
  n.disk.append(rd.entries)
  if (rd.hardState) n.disk.setHardState(rd.hardState)
  n.node.persisted(rd)
  return rd.messages.filter((m) => !sendableBeforePersist(m))
}

/** ready(), the bootstrap configuration applied, accept(). */
function take(n: { node: RaftNode }): Ready {
  const rd = n.node.ready()
  for (const e of rd.committedEntries) if (e.type === EntryType.ConfChange) n.node.applyConfChange(decodeConfChange(e.data))
  n.node.accept(rd)
  return rd
}

/** Persists and applies everything there is. */
function settleOne(n: { node: RaftNode; disk: MemoryStorage }): void {
  while (n.node.hasReady()) persist(n, take(n))
}

/** Drives a lone voter to leadership with everything persisted. */
function loneLeader(): { node: RaftNode; disk: MemoryStorage } {
  const n = node(1n, [1n])
  settleOne(n)
  n.node.campaign()
  while (n.node.hasReady()) persist(n, take(n))
  expect(n.node.raft.state).toBe(StateType.Leader)
  return n
}

describe("pipelined RaftNode", () => {
  test("the next Ready carries only new entries while the previous one persists", () => {
    const n = loneLeader()
    const last = n.node.raft.log.lastIndex()
    n.node.propose(enc.encode("a"))
    const rd1 = take(n)
    expect(rd1.entries.map((e) => e.index)).toEqual([last + 1])
    n.node.propose(enc.encode("b"))
    expect(n.node.hasReady()).toBe(true)
    const rd2 = take(n)
    expect(rd2.entries.map((e) => e.index)).toEqual([last + 2])
    expect(n.node.persistingCount).toBe(2)
    // Not persisted: the lone leader does not count its own copy, nothing commits.
    expect(n.node.raft.log.committed).toBe(last)
    persist(n, rd1)
    expect(n.node.raft.log.committed).toBe(last + 1)
    const rd3 = take(n)
    expect(rd3.committedEntries.map((e) => e.index)).toEqual([last + 1])
    persist(n, rd2)
    persist(n, rd3)
    const rd4 = take(n)
    expect(rd4.committedEntries.map((e) => e.index)).toEqual([last + 2])
  })

  test("persisted() must follow the order of accept()", () => {
    const n = loneLeader()
    n.node.propose(enc.encode("a"))
    take(n)
    n.node.propose(enc.encode("b"))
    const rd2 = take(n)
    expect(() => n.node.persisted(rd2)).toThrow(/order/)
  })

  test("advance() is refused on a pipelined node and accept() on a plain one", () => {
    const n = node(1n, [1n])
    const rd = n.node.ready()
    expect(() => n.node.advance(rd)).toThrow(/pipelined/)
    const plain = new RaftNode({ id: 1n, peers: [1n], storage: new MemoryStorage(), prng: seededPrng(1) })
    expect(() => plain.accept(plain.ready())).toThrow(/not pipelined/)
  })

  test("a leader commits on two followers' acknowledgements but applies only what it persisted itself", () => {
    const ids = [1n, 2n, 3n]
    const members = new Map(ids.map((id) => [id, node(id, ids)]))
    const net: Message[] = []
    const settle = (): void => {
      for (let round = 0; round < 50; round++) {
        for (const m of members.values()) {
          while (m.node.hasReady()) {
            const rd = take(m)
            for (const msg of rd.messages) net.push(msg)
            persist(m, rd)
          }
        }
        if (net.length === 0) return
        for (const msg of net.splice(0)) members.get(msg.to)!.node.step(msg)
      }
    }
    settle()
    members.get(1n)!.node.campaign()
    settle()
    const leader = members.get(1n)!
    expect(leader.node.raft.state).toBe(StateType.Leader)
    const base = leader.node.raft.log.lastIndex()
    expect(leader.node.raft.log.committed).toBe(base)

    leader.node.propose(enc.encode("x"))
    const rd = take(leader)
    expect(rd.entries.map((e) => e.index)).toEqual([base + 1])
    // The appends leave before the leader's fsync.
    const appends = rd.messages.filter((m) => m.type === MessageType.App)
    expect(appends.map((m) => m.to).sort()).toEqual([2n, 3n])
    for (const a of appends) {
      const f = members.get(a.to)!
      f.node.step(a)
      const frd = take(f)
      // The acknowledgement waits for the follower's own persistence.
      expect(frd.messages.every((m) => !sendableBeforePersist(m))).toBe(true)
      for (const resp of persist(f, frd)) leader.node.step(resp)
    }
    // Committed by the two followers, not yet durable on the leader: not handed out to apply.
    expect(leader.node.raft.log.committed).toBe(base + 1)
    const early = take(leader)
    expect(early.committedEntries).toHaveLength(0)
    persist(leader, rd)
    persist(leader, early)
    const later = take(leader)
    expect(later.committedEntries.map((e) => e.index)).toEqual([base + 1])
  })

  test("a follower whose in-flight entries are overwritten persists the new ones and ignores the stale completion", () => {
    const f = node(2n, [1n, 2n, 3n])
    settleOne(f)
    const boot = f.node.raft.log.lastIndex()
    const app = (term: number, index: number, logTerm: number, entries: { term: number; index: number }[]): Message => ({
      type: MessageType.App, from: 1n, to: 2n, term, logTerm, index, commit: boot, reject: false, rejectHint: 0,
      entries: entries.map((e) => ({ ...e, type: 0, data: enc.encode(`${e.term}/${e.index}`) })),
    })
    f.node.step(app(2, boot, 1, [{ term: 2, index: boot + 1 }, { term: 2, index: boot + 2 }]))
    const rd1 = take(f)
    expect(rd1.entries.map((e) => e.index)).toEqual([boot + 1, boot + 2])
    // A new leader of term 3 replaces entry boot+2 while rd1 is still being written.
    f.node.step({ ...app(3, boot + 1, 2, [{ term: 3, index: boot + 2 }]), from: 3n })
    const rd2 = take(f)
    expect(rd2.entries.map((e) => [e.term, e.index])).toEqual([[3, boot + 2]])
    persist(f, rd1)
    // rd1's last entry was replaced: only what rd1 still covers counts as persisted.
    expect(f.node.raft.log.persistedIndex()).toBe(boot)
    persist(f, rd2)
    expect(f.node.raft.log.persistedIndex()).toBe(boot + 2)
    expect(f.node.raft.log.term(boot + 2)).toBe(3)
    expect(f.disk.term(boot + 2)).toBe(3)
  })
})
