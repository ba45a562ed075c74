// benchmark: 3 members in one process, no disk, 256-byte proposals. Every
// round the leader takes a batch of proposals (as the server's proposal
// batching would hand them over), then every member runs its Ready loop and
// the messages are delivered until the cluster is quiet; one tick per round.
// Tiny by default; TSKV_BENCH=1 for the full size.

import { expect, test } from "bun:test"
import { seededPrng } from "../lib/prng"
import { RaftNode } from "./raft_node"
import { MemoryStorage } from "./storage"
import type { Message, NodeId } from "./types"
import { StateType } from "./types"

const full = process.env.TSKV_BENCH === "1"

interface BenchMember {
  node: RaftNode
  storage: MemoryStorage
  applied: number
}

function runRounds(options: { proposals: number; batch: number }): { committed: number; ticks: number; ms: number; messages: number } {
  const ids: NodeId[] = [1n, 2n, 3n]
  const members = new Map<NodeId, BenchMember>()
  for (const id of ids) {
    const storage = new MemoryStorage()
    members.set(id, { node: new RaftNode({ id, peers: ids, storage, prng: seededPrng(Number(id)) }), storage, applied: 0 })
  }
  let queue: Message[] = []
  let messages = 0
  const drain = (): void => {
    for (;;) {
      let moved = false
      for (const m of members.values()) {
        while (m.node.hasReady()) {
          const rd = m.node.ready()
          if (rd.snapshot !== undefined) m.storage.applySnapshot(rd.snapshot)
          m.storage.append(rd.entries)
          if (rd.hardState !== undefined) m.storage.setHardState(rd.hardState)
          for (const msg of rd.messages) queue.push(msg)
          const last = rd.committedEntries[rd.committedEntries.length - 1]
          if (last !== undefined) m.applied = last.index
          m.node.advance(rd)
          // Compact behind the applied index, as the server does after a snapshot.
          if (m.applied - m.storage.firstIndex() > 20_000) m.storage.compact(m.applied - 10_000)
          moved = true
        }
      }
      if (queue.length === 0 && !moved) return
      const now = queue
      queue = []
      messages += now.length
      for (const msg of now) members.get(msg.to)!.node.step(msg)
    }
  }
  const leader = members.get(1n)!
  drain()
  leader.node.campaign()
  drain()
  expect(leader.node.raft.state).toBe(StateType.Leader)
  const start = leader.node.raft.log.committed
  const payload = new Uint8Array(256).fill(7)
  const batch: Uint8Array[] = new Array<Uint8Array>(options.batch).fill(payload)
  let ticks = 0
  messages = 0
  const t0 = performance.now()
  for (let proposed = 0; proposed < options.proposals; proposed += options.batch) {
    leader.node.proposeBatch(batch)
    drain()
    for (const m of members.values()) m.node.tick()
    ticks++
  }
  drain()
  const ms = performance.now() - t0
  const committed = leader.node.raft.log.committed - start
  for (const m of members.values()) expect(m.applied).toBe(leader.node.raft.log.committed)
  return { committed, ticks, ms, messages }
}

test("benchmark: raft 3 members in one process, 256-byte proposals", () => {
  const proposals = full ? Number(process.env.TSKV_BENCH_PROPOSALS ?? "300000") : 2_000
  for (const batch of full ? [1, 16, 128] : [16]) {
    const r = runRounds({ proposals, batch })
    expect(r.committed).toBe(Math.ceil(proposals / batch) * batch)
    console.log(
      `raft bench batch=${batch}: ${r.committed} entries in ${r.ms.toFixed(0)} ms = ` +
      `${Math.round((r.committed / r.ms) * 1000)} entries/s, ${(r.committed / r.ticks).toFixed(1)} entries/tick, ` +
      `${(r.messages / r.committed).toFixed(2)} messages/entry`,
    )
  }
}, 600_000)
