// One test per rule of the Raft paper §5 and the thesis sections on PreVote,
// CheckQuorum, ReadIndex, leader transfer and learners.

import { describe, expect, test } from "bun:test"
import { seededPrng } from "../lib/prng"
import { ProposalDroppedError, ReadIndexDroppedError } from "./errors"
import { MemoryStorage } from "./storage"
import { RaftNode } from "./raft_node"
import { TestCluster } from "../../test/sim/raft_test_cluster"
import type { Entry, Message } from "./types"
import { ConfChangeType, EntryType, MessageType, NONE, StateType } from "./types"

const enc = (s: string): Uint8Array => new TextEncoder().encode(s)

function cluster(n: number, member: ConstructorParameters<typeof TestCluster>[0]["member"] = {}): TestCluster {
  const voters = Array.from({ length: n }, (_, k) => BigInt(k + 1))
  const c = new TestCluster({ voters, member })
  c.stabilize()
  return c
}

/** A member of a fresh 3-member cluster whose bootstrap Ready was handled (its peers get nothing). */
function freshNode(id: bigint, options: { preVote?: boolean; seed?: number } = {}): RaftNode {
  const c = new TestCluster({ voters: [1n, 2n, 3n], seed: options.seed ?? 1, member: { preVote: options.preVote ?? true } })
  const member = c.member(id)
  member.processReady()
  return member.node
}

function msg(fields: Partial<Message> & Pick<Message, "type" | "from" | "to" | "term">): Message {
  return { logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0, ...fields }
}

function entry(term: number, index: number, data = ""): Entry {
  return { term, index, type: EntryType.Normal, data: enc(data) }
}

describe("§5.1 terms", () => {
  test("§5.1 a leader that sees a higher term becomes follower", () => {
    const c = cluster(3)
    c.elect(1n)
    const r = c.member(1n).node.raft
    expect(r.state).toBe(StateType.Leader)
    r.step(msg({ type: MessageType.App, from: 2n, to: 1n, term: r.term + 5, index: 0, logTerm: 0 }))
    expect(r.state).toBe(StateType.Follower)
    expect(r.term).toBe(7)
    expect(r.lead).toBe(2n)
  })

  test("§5.1 a request with a stale term is rejected and the sender learns the newer term", () => {
    const c = cluster(3)
    c.elect(1n)
    const f = c.member(2n).node.raft
    const last = f.log.lastIndex()
    f.step(msg({ type: MessageType.App, from: 3n, to: 2n, term: f.term - 1, index: last, logTerm: f.log.lastTerm(), entries: [entry(1, last + 1, "x")] }))
    expect(f.log.lastIndex()).toBe(last)
    expect(f.msgs).toHaveLength(1)
    expect(f.msgs[0]!.type).toBe(MessageType.AppResp)
    expect(f.msgs[0]!.term).toBe(f.term)
  })
})

describe("§5.2 leader election", () => {
  test("§5.2 a follower that hears from no leader for an election timeout starts an election", () => {
    const node = freshNode(1n, { preVote: false })
    for (let k = 0; k < 20; k++) node.tick()
    expect(node.raft.state).toBe(StateType.Candidate)
    expect(node.raft.term).toBe(2)
    expect(node.raft.vote).toBe(1n)
    const votes = node.raft.msgs.filter((m) => m.type === MessageType.Vote)
    expect(votes.map((m) => m.to).sort()).toEqual([2n, 3n])
  })

  test("§5.2 randomized election timeouts fall in [electionTicks, 2*electionTicks)", () => {
    const seen = new Set<number>()
    for (let seed = 0; seed < 200; seed++) {
      const node = freshNode(1n, { preVote: false, seed })
      let ticks = 0
      while (node.raft.state === StateType.Follower) {
        node.tick()
        ticks++
      }
      seen.add(ticks)
    }
    expect(Math.min(...seen)).toBeGreaterThanOrEqual(10)
    expect(Math.max(...seen)).toBeLessThan(20)
    expect(seen.size).toBeGreaterThan(5)
  })

  test("§5.2 a candidate that wins votes from a majority becomes leader, the others follow it", () => {
    const c = cluster(5, { preVote: false })
    c.isolate(4n)
    c.isolate(5n)
    c.elect(1n)
    expect(c.member(1n).node.raft.state).toBe(StateType.Leader)
    expect(c.member(2n).node.raft.lead).toBe(1n)
  })

  test("§5.2 a candidate without a majority does not become leader", () => {
    const c = cluster(5, { preVote: false })
    c.isolate(3n)
    c.isolate(4n)
    c.isolate(5n)
    c.elect(1n)
    expect(c.member(1n).node.raft.state).toBe(StateType.Candidate)
  })

  test("§5.2 each member votes for at most one candidate in a term", () => {
    const r = freshNode(1n, { preVote: false }).raft
    r.step(msg({ type: MessageType.Vote, from: 2n, to: 1n, term: 2, index: 3, logTerm: 1 }))
    r.step(msg({ type: MessageType.Vote, from: 3n, to: 1n, term: 2, index: 3, logTerm: 1 }))
    expect(r.msgs.map((m) => [m.to, m.reject])).toEqual([[2n, false], [3n, true]])
    expect(r.vote).toBe(2n)
  })

  test("§5.2 a candidate that receives AppendEntries from a leader of its term becomes follower", () => {
    const node = freshNode(1n, { preVote: false })
    node.campaign()
    expect(node.raft.state).toBe(StateType.Candidate)
    node.step(msg({ type: MessageType.App, from: 2n, to: 1n, term: node.raft.term, index: 3, logTerm: 1 }))
    expect(node.raft.state).toBe(StateType.Follower)
    expect(node.raft.lead).toBe(2n)
  })
})

describe("§5.3 log replication", () => {
  test("§5.3 the leader commits an entry once a majority stored it, and everyone applies it", () => {
    const c = cluster(3)
    c.elect(1n)
    c.isolate(3n)
    c.propose(1n, "a")
    c.stabilize()
    expect(c.member(1n).applied).toEqual(["a"])
    expect(c.member(2n).applied).toEqual(["a"])
    expect(c.member(3n).applied).toEqual([])
    c.heal()
    c.tick(1n)
    c.stabilize()
    expect(c.member(3n).applied).toEqual(["a"])
  })

  test("§5.3 a follower rejects AppendEntries whose previous entry does not match", () => {
    const node = freshNode(2n)
    node.step(msg({ type: MessageType.App, from: 1n, to: 2n, term: 2, index: 5, logTerm: 2, entries: [entry(2, 6)] }))
    const resp = node.raft.msgs[0]!
    expect(resp.type).toBe(MessageType.AppResp)
    expect(resp.reject).toBe(true)
    expect(resp.rejectHint).toBe(3) // its last index
    expect(node.raft.log.lastIndex()).toBe(3)
  })

  test("§5.3 a follower deletes conflicting uncommitted entries and takes the leader's", () => {
    const node = freshNode(2n)
    node.step(msg({ type: MessageType.App, from: 1n, to: 2n, term: 2, index: 3, logTerm: 1, commit: 3, entries: [entry(2, 4, "x"), entry(2, 5, "y")] }))
    node.step(msg({ type: MessageType.App, from: 3n, to: 2n, term: 3, index: 4, logTerm: 2, commit: 3, entries: [entry(3, 5, "z")] }))
    expect(node.raft.log.lastIndex()).toBe(5)
    expect(node.raft.log.term(5)).toBe(3)
    expect(node.raft.log.term(4)).toBe(2)
  })

  test("§5.3 fast back-tracking: the rejection hint skips the follower's whole divergent term", () => {
    const c = cluster(3, { preVote: false, checkQuorum: false })
    c.elect(1n)
    c.isolate(1n)
    for (let k = 0; k < 20; k++) c.propose(1n, `lost${k}`) // term 2, only on 1
    c.process()
    c.queue = []
    c.elect(2n) // term 3
    for (let k = 0; k < 30; k++) c.propose(2n, `kept${k}`)
    c.stabilize()
    // Re-elected at term 4, 2 starts probing 1 far beyond 1's log.
    const r2 = c.member(2n).node.raft
    r2.becomeFollower(r2.term, NONE)
    c.elect(2n)
    c.heal()
    c.tick(2n)
    const msgs = c.stabilize()
    const rejects = msgs.filter((m) => m.type === MessageType.AppResp && m.reject && m.from === 1n)
    expect(rejects.length).toBeGreaterThan(0)
    expect(rejects.length).toBeLessThanOrEqual(2)
    expect(c.member(1n).applied).toEqual(Array.from({ length: 30 }, (_, k) => `kept${k}`))
    expect(c.member(1n).node.raft.log.lastIndex()).toBe(c.member(2n).node.raft.log.lastIndex())
  })

  test("§5.3 entries go out in batches capped by maxSizePerMsgBytes", () => {
    const c = cluster(3, { maxSizePerMsgBytes: 1000 })
    c.elect(1n)
    for (let k = 0; k < 40; k++) c.member(1n).node.propose(new Uint8Array(100))
    c.process()
    const apps = c.queue.filter((m) => m.type === MessageType.App && m.to === 2n)
    expect(apps.length).toBeGreaterThan(1)
    for (const m of apps) expect(m.entries.reduce((s, e) => s + e.data.length + 16, 0)).toBeLessThanOrEqual(1000)
    expect(apps.reduce((s, m) => s + m.entries.length, 0)).toBe(40)
    c.stabilize()
    expect(c.member(3n).applied).toHaveLength(40)
  })

  test("§5.3 flow control: at most maxInflightMsgs unacknowledged appends per follower", () => {
    const c = cluster(3, { maxSizePerMsgBytes: 200, maxInflightMsgs: 4 })
    c.elect(1n)
    for (let k = 0; k < 40; k++) c.member(1n).node.propose(new Uint8Array(100))
    c.process()
    expect(c.queue.filter((m) => m.type === MessageType.App && m.to === 2n)).toHaveLength(4)
    c.stabilize()
    expect(c.member(2n).applied).toHaveLength(40)
  })
})

describe("§5.4 safety", () => {
  test("§5.4.1 a member denies its vote to a candidate whose log is less up to date", () => {
    const c = cluster(3, { preVote: false, checkQuorum: false })
    c.elect(1n)
    c.isolate(3n)
    c.propose(1n, "a")
    c.stabilize()
    c.heal()
    const r2 = c.member(2n).node.raft
    r2.step(msg({ type: MessageType.Vote, from: 3n, to: 2n, term: r2.term + 1, index: c.member(3n).node.raft.log.lastIndex(), logTerm: c.member(3n).node.raft.log.lastTerm() }))
    const resp = r2.msgs.find((m) => m.type === MessageType.VoteResp)!
    expect(resp.reject).toBe(true)
  })

  test("§5.4.2 a leader does not commit an entry of an earlier term by counting replicas (Figure 8)", () => {
    const c = cluster(3, { preVote: false, checkQuorum: false })
    c.elect(1n) // term 2, entries 1..4 committed
    c.isolate(1n)
    c.propose(1n, "old") // index 5, term 2, only on 1
    c.process()
    c.queue = []
    c.heal()
    const r1 = c.member(1n).node.raft
    r1.becomeFollower(r1.term, NONE)
    c.member(1n).node.campaign()
    for (let k = 0; k < 3; k++) {
      c.process()
      c.deliver((m) => m.type === MessageType.Vote || m.type === MessageType.VoteResp)
    }
    c.process() // persists the new term's empty entry 6
    expect(r1.state).toBe(StateType.Leader)
    expect(r1.term).toBe(3)
    expect(r1.log.lastIndex()).toBe(6)
    expect(r1.log.committed).toBe(4)
    // A majority (1 and 2) now holds entry 5 of term 2: still not committed.
    r1.step(msg({ type: MessageType.AppResp, from: 2n, to: 1n, term: 3, index: 5 }))
    expect(r1.log.committed).toBe(4)
    // Once the majority holds entry 6 of term 3, both commit.
    r1.step(msg({ type: MessageType.AppResp, from: 2n, to: 1n, term: 3, index: 6 }))
    expect(r1.log.committed).toBe(6)
  })

  test("§5.4.2 a new leader appends an empty entry of its term", () => {
    const c = cluster(3)
    c.elect(2n)
    const r = c.member(2n).node.raft
    const last = r.log.lastIndex()
    const e = r.log.slice(last, last + 1, Infinity)[0]!
    expect(e.term).toBe(r.term)
    expect(e.data.length).toBe(0)
    expect(r.log.committed).toBe(last)
  })

  test("durability: the leader counts its own entry only after advance() reports it persisted", () => {
    const node = new RaftNode({ id: 1n, peers: [1n], storage: new MemoryStorage(), prng: seededPrng(1) })
    const storage = node.raft.log.storage as MemoryStorage
    const drive = (): void => {
      const rd = node.ready()
      if (rd.snapshot) storage.applySnapshot(rd.snapshot)
      storage.append(rd.entries)
      if (rd.hardState) storage.setHardState(rd.hardState)
      node.advance(rd)
    }
    drive()
    node.campaign()
    const rd = node.ready()
    expect(node.raft.state).toBe(StateType.Leader)
    expect(rd.entries).toHaveLength(1)
    expect(node.raft.log.committed).toBe(1) // the bootstrap entry only
    storage.append(rd.entries)
    if (rd.hardState) storage.setHardState(rd.hardState)
    node.advance(rd)
    expect(node.raft.log.committed).toBe(2)
  })
})

describe("§5.5 follower crashes", () => {
  test("§5.5 a restarted follower keeps its persisted log and catches up", () => {
    const c = cluster(3)
    c.elect(1n)
    c.propose(1n, "a")
    c.stabilize()
    c.isolate(3n)
    c.propose(1n, "b")
    c.stabilize()
    c.restart(3n)
    expect(c.member(3n).node.raft.log.lastIndex()).toBeGreaterThan(3)
    c.heal()
    c.tick(1n)
    c.stabilize()
    expect(c.member(3n).applied).toEqual(["a", "b"])
  })
})

describe("thesis §9.6 pre-vote, §6.2 check-quorum, §4.2.3 leases", () => {
  test("§9.6 a partitioned member with pre-vote does not raise its term", () => {
    const c = cluster(3)
    c.elect(1n)
    c.isolate(3n)
    const term = c.member(3n).node.raft.term
    for (let k = 0; k < 100; k++) {
      c.tick(3n)
      c.process()
      c.deliver()
    }
    expect(c.member(3n).node.raft.term).toBe(term)
    expect(c.member(3n).node.raft.state).toBe(StateType.PreCandidate)
    c.heal()
    c.tick(1n)
    c.stabilize()
    expect(c.member(1n).node.raft.state).toBe(StateType.Leader)
    expect(c.member(1n).node.raft.term).toBe(term)
  })

  test("§6.2 a leader that has not heard from a quorum for an election timeout steps down", () => {
    const c = cluster(3)
    c.elect(1n)
    c.isolate(1n)
    for (let k = 0; k < 20; k++) c.tick(1n)
    expect(c.member(1n).node.raft.state).toBe(StateType.Follower)
  })

  test("§6.2 a leader in touch with a quorum stays leader", () => {
    const c = cluster(3)
    c.elect(1n)
    c.isolate(3n)
    for (let k = 0; k < 50; k++) {
      c.tick(1n)
      c.stabilize()
    }
    expect(c.member(1n).node.raft.state).toBe(StateType.Leader)
  })

  test("§4.2.3 a member that heard from the leader within the election timeout ignores vote requests", () => {
    const c = cluster(3, { preVote: false })
    c.elect(1n)
    const r2 = c.member(2n).node.raft
    const term = r2.term
    r2.step(msg({ type: MessageType.Vote, from: 3n, to: 2n, term: term + 1, index: 100, logTerm: 100 }))
    expect(r2.term).toBe(term)
    expect(r2.msgs).toHaveLength(0)
  })
})

describe("thesis §6.4 ReadIndex", () => {
  test("§6.4 the leader answers a read after one heartbeat round confirms it is still leader", () => {
    const c = cluster(3)
    c.elect(1n)
    c.member(1n).node.readIndex(enc("r1"))
    c.member(1n).node.readIndex(enc("r2"))
    c.member(1n).node.readIndex(enc("r3"))
    const msgs = c.stabilize()
    expect(c.member(1n).readStates.map((r) => r.ctx)).toEqual(["r1", "r2", "r3"])
    // r1 goes out at once; r2 and r3, queued while that round was out, share the next round.
    expect(msgs.filter((m) => m.type === MessageType.Heartbeat)).toHaveLength(4)
  })

  test("§6.4 a leader cut off from the quorum answers no read", () => {
    const c = cluster(3)
    c.elect(1n)
    c.isolate(1n)
    c.member(1n).node.readIndex(enc("r1"))
    c.stabilize()
    expect(c.member(1n).readStates).toEqual([])
  })

  test("§6.4 a new leader answers reads only after committing an entry of its term", () => {
    const c = cluster(3, { preVote: false, checkQuorum: false })
    c.elect(1n)
    c.member(2n).node.campaign()
    c.process()
    // Deliver the votes but not the appends: 2 is leader without a commit in its term.
    for (let k = 0; k < 4; k++) {
      c.deliver((m) => m.type !== MessageType.App && m.type !== MessageType.AppResp)
      c.process()
    }
    const r2 = c.member(2n).node.raft
    expect(r2.state).toBe(StateType.Leader)
    c.member(2n).node.readIndex(enc("r"))
    c.deliver((m) => m.type !== MessageType.App && m.type !== MessageType.AppResp)
    c.process()
    c.deliver((m) => m.type !== MessageType.App && m.type !== MessageType.AppResp)
    c.process()
    expect(c.member(2n).readStates).toEqual([])
    c.stabilize()
    expect(c.member(2n).readStates.map((r) => r.ctx)).toEqual(["r"])
    expect(c.member(2n).readStates[0]!.index).toBe(r2.log.committed)
  })

  test("§6.4 a follower's read index comes from the leader", () => {
    const c = cluster(3)
    c.elect(1n)
    c.propose(1n, "a")
    c.stabilize()
    c.member(3n).node.readIndex(enc("f"))
    c.stabilize()
    expect(c.member(3n).readStates).toEqual([{ index: c.member(1n).node.raft.log.committed, ctx: "f" }])
  })

  test("§6.4 a follower without a leader refuses reads with ReadIndexDroppedError", () => {
    const node = freshNode(1n)
    expect(() => node.readIndex(enc("x"))).toThrow(ReadIndexDroppedError)
    expect(() => node.propose(enc("x"))).toThrow(ProposalDroppedError)
  })
})

describe("thesis §3.10 leader transfer", () => {
  test("§3.10 transfer to an up-to-date follower: TimeoutNow, and it wins at once", () => {
    const c = cluster(3)
    c.elect(1n)
    c.member(1n).node.transferLeader(2n)
    const msgs = c.stabilize()
    expect(msgs.some((m) => m.type === MessageType.TimeoutNow && m.to === 2n)).toBe(true)
    expect(c.member(2n).node.raft.state).toBe(StateType.Leader)
    expect(c.member(1n).node.raft.state).toBe(StateType.Follower)
  })

  test("§3.10 the leader refuses proposals during a transfer and aborts it after an election timeout", () => {
    const c = cluster(3)
    c.elect(1n)
    c.isolate(3n)
    c.member(1n).node.transferLeader(3n)
    expect(() => c.propose(1n, "x")).toThrow(ProposalDroppedError)
    for (let k = 0; k < 10; k++) c.tick(1n)
    expect(c.member(1n).node.raft.leadTransferee).toBe(NONE)
    c.propose(1n, "y")
    c.heal()
    c.stabilize()
    expect(c.member(1n).applied).toEqual(["y"])
  })

  test("§3.10 a lagging transferee is caught up first", () => {
    const c = cluster(3)
    c.elect(1n)
    c.isolate(3n)
    c.propose(1n, "a")
    c.stabilize()
    c.heal()
    c.member(1n).node.transferLeader(3n)
    c.stabilize()
    expect(c.member(3n).node.raft.state).toBe(StateType.Leader)
    expect(c.member(3n).applied).toEqual(["a"])
  })
})

describe("thesis §4.2.1 learners and membership", () => {
  test("§4.2.1 a learner receives entries but neither votes nor counts toward the quorum", () => {
    const c = new TestCluster({ voters: [1n, 2n], learners: [3n] })
    c.stabilize()
    c.elect(1n)
    c.isolate(2n)
    c.propose(1n, "a")
    c.stabilize()
    expect(c.member(3n).node.raft.log.lastIndex()).toBe(c.member(1n).node.raft.log.lastIndex())
    expect(c.member(1n).applied).toEqual([]) // 1 and learner 3 are not a quorum of {1, 2}
    for (let k = 0; k < 40; k++) c.tick(3n)
    c.stabilize()
    expect(c.member(3n).node.raft.state).toBe(StateType.Follower)
  })

  test("§4.2.1 a learner added, caught up and promoted becomes a voter", () => {
    const c = cluster(1)
    c.elect(1n)
    c.propose(1n, "a")
    c.stabilize()
    c.addMember(2n, false)
    c.member(1n).node.proposeConfChange({ type: ConfChangeType.AddLearnerNode, nodeId: 2n, context: new Uint8Array() })
    c.stabilize()
    c.tick(1n)
    c.stabilize()
    const pr = c.member(1n).node.status().progress.get(2n)!
    expect(pr.isLearner).toBe(true)
    expect(pr.match).toBe(c.member(1n).node.raft.log.lastIndex())
    c.member(1n).node.proposeConfChange({ type: ConfChangeType.AddNode, nodeId: 2n, context: new Uint8Array() })
    c.stabilize()
    expect(c.member(1n).confState.voters.sort()).toEqual([1n, 2n])
    expect(c.member(2n).confState.voters.sort()).toEqual([1n, 2n])
    expect(c.member(2n).applied).toEqual(["a"])
  })

  test("§4.1 one membership change at a time: a second change waits until the first is applied", () => {
    const c = cluster(3)
    c.elect(1n)
    const node = c.member(1n).node
    node.proposeConfChange({ type: ConfChangeType.AddLearnerNode, nodeId: 4n, context: new Uint8Array() })
    expect(() => node.proposeConfChange({ type: ConfChangeType.RemoveNode, nodeId: 3n, context: new Uint8Array() }))
      .toThrow(ProposalDroppedError)
    c.stabilize()
    node.proposeConfChange({ type: ConfChangeType.RemoveNode, nodeId: 3n, context: new Uint8Array() })
    c.stabilize()
    expect(c.member(1n).confState.voters.sort()).toEqual([1n, 2n])
  })

  test("§4.1 a removed leader hands leadership over to a caught-up voter", () => {
    const c = cluster(3)
    c.elect(1n)
    c.member(1n).node.proposeConfChange({ type: ConfChangeType.RemoveNode, nodeId: 1n, context: new Uint8Array() })
    const msgs = c.stabilize()
    expect(msgs.some((m) => m.type === MessageType.TimeoutNow && m.from === 1n)).toBe(true)
    expect(() => c.propose(1n, "x")).toThrow(ProposalDroppedError)
    // The first TimeoutNow may reach a member that has not yet applied the
    // change (it then does not campaign); the leader retries every election timeout.
    for (let k = 0; k < 30 && c.member(1n).node.raft.state === StateType.Leader; k++) {
      c.tick(1n)
      c.stabilize()
    }
    expect(c.member(1n).node.raft.state).toBe(StateType.Follower)
    c.members.delete(1n)
    expect(c.leaders()).toHaveLength(1)
    expect(c.member(2n).confState.voters.sort()).toEqual([2n, 3n])
  })
})

describe("thesis §4.2.2 a removed member may still be needed", () => {
  test("§4.2.2 a voter that applied its own removal still campaigns (without its own vote) to hand over its longer log", () => {
    const c = cluster(2, { preVote: false })
    c.elect(1n)
    c.member(1n).node.proposeConfChange({ type: ConfChangeType.RemoveNode, nodeId: 1n, context: new Uint8Array() })
    c.stabilize() // 2 has the removal; both know it committed
    // 1 (still leader, refusing proposals) is cut off; 2 forgets the commit (crash before persisting it).
    c.isolate(1n)
    const r1 = c.member(1n).node.raft
    r1.becomeFollower(r1.term, NONE)
    expect(r1.voters.has(1n)).toBe(false)
    expect(r1.promotable()).toBe(true)
    c.heal()
    for (let k = 0; k < 60 && c.member(2n).node.raft.state !== StateType.Leader; k++) {
      c.tick(1n)
      c.tick(2n)
      c.stabilize()
    }
    expect(c.member(2n).node.raft.state).toBe(StateType.Leader)
    expect(c.member(2n).confState.voters).toEqual([2n])
  })
})

describe("restart", () => {
  test("RaftNode restarted with `applied` rebuilds the configuration from the ConfChange entries it applied", () => {
    const c = cluster(1)
    c.elect(1n)
    c.addMember(2n, false)
    c.member(1n).node.proposeConfChange({ type: ConfChangeType.AddLearnerNode, nodeId: 2n, context: new Uint8Array() })
    c.stabilize()
    const applied = c.member(1n).appliedIndex
    c.restart(1n)
    const r = c.member(1n).node.raft
    expect(r.log.applied).toBe(applied)
    expect([...r.learners]).toEqual([2n])
    expect([...r.voters]).toEqual([1n])
    expect(r.log.committed).toBe(applied)
  })

  test("an application that applied entries before the hard state recording their commit was durable restarts with commit = applied", () => {
    const restarted = (lastIndex: number, commit: number, applied: number): RaftNode => {
      const storage = new MemoryStorage()
      storage.applySnapshot({ data: new Uint8Array(0), metadata: { index: 1, term: 1, confState: { voters: [1n], learners: [] } } })
      for (let i = 2; i <= lastIndex; i++) storage.append([entry(1, i, `e${i}`)])
      storage.setHardState({ term: 1, vote: 1n, commit })
      return new RaftNode({ id: 1n, storage, prng: seededPrng(1), applied })
    }
    const node = restarted(4, 2, 3)
    expect(node.raft.log.committed).toBe(3)
    expect(node.raft.log.applied).toBe(3)
    // an applied index beyond the log cannot come from this log: refused
    expect(() => restarted(2, 2, 3)).toThrow("applied 3 beyond last index 2")
  })
})

describe("snapshots", () => {
  test("a follower whose next entry was compacted receives a snapshot and catches up", () => {
    const c = cluster(3)
    c.elect(1n)
    c.isolate(3n)
    for (let k = 0; k < 10; k++) c.propose(1n, `v${k}`)
    c.stabilize()
    c.member(1n).compact()
    c.heal()
    c.tick(1n)
    const msgs = c.stabilize()
    const snap = msgs.find((m) => m.type === MessageType.Snap)
    expect(snap?.to).toBe(3n)
    c.member(1n).node.reportSnapshot(3n, true)
    c.propose(1n, "after")
    c.tick(1n)
    c.stabilize()
    expect(c.member(3n).applied).toEqual([...Array.from({ length: 10 }, (_, k) => `v${k}`), "after"])
  })

  test("a failed snapshot send returns the follower to probing", () => {
    const c = cluster(3)
    c.elect(1n)
    c.isolate(3n)
    for (let k = 0; k < 5; k++) c.propose(1n, `v${k}`)
    c.stabilize()
    c.member(1n).compact()
    c.member(1n).node.reportUnreachable(3n)
    c.heal()
    c.cut.add("1->3") // the snapshot will be lost
    c.propose(1n, "next")
    c.stabilize()
    expect(c.member(1n).node.status().progress.get(3n)!.state).toBe("snapshot")
    c.member(1n).node.reportSnapshot(3n, false)
    expect(c.member(1n).node.status().progress.get(3n)!.state).toBe("probe")
  })
})
