import { expect, test } from "bun:test"
import { compareHashes, type PeerHash } from "./corruption"

const at = (memberId: bigint, hash: number, compactRevision = 5, hashRevision = 10): PeerHash => ({ memberId, hash, compactRevision, hashRevision })

test("compareHashes() names the peers whose hash differs at the same revision and compaction", async () => {
  const remote = new Map<bigint, PeerHash | undefined>([
    [2n, at(2n, 111)],
    [3n, at(3n, 999)],
    [4n, at(4n, 999, 7)], // compacted differently: not comparable
    [5n, undefined], // unreachable
  ])
  const r = await compareHashes({
    localId: 1n,
    localHash: () => at(1n, 111),
    peers: () => [1n, 2n, 3n, 4n, 5n],
    peerHash: async (id) => remote.get(id),
  })
  expect(r.revision).toBe(10)
  expect(r.compared.sort()).toEqual([2n, 3n])
  expect(r.mismatched).toEqual([3n])
})
