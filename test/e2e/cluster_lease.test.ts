// Leases in a cluster: granted and kept alive through a follower (the
// keepalives must reach the leader), they survive kill -9 of the leader
// (the new leader extends every lease's expiry), and a lease no longer kept
// alive still expires, on every member, deleting its key.

import { afterEach, describe, expect, test } from "bun:test"
import { utf8 } from "../../src/lib/bytes"
import { Cluster, clusterKinds, eventually } from "../support/cluster"

let cluster: Cluster | undefined
afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

const TTL_SECONDS = 5

describe("cluster leases", () => {
  for (const kind of clusterKinds()) {
    test(`${kind}: a lease kept alive through a follower survives kill -9 of the leader, then expires once not kept alive`, async () => {
      const c = (cluster = await Cluster.start({ kind, size: 3 }))
      try {
        const leader = await c.leader()
        const [follower, other] = c.members.map((m) => m.name).filter((n) => n !== leader.name) as [string, string]
        const client = c.client(follower)
        const lease = await client.lease.leaseGrant({ TTL: TTL_SECONDS })
        await client.kv.put({ key: utf8("leased"), value: utf8("v"), lease: lease.ID })
        // Keepalives through the follower renew the lease on the leader: wait past the TTL while renewing.
        for (let i = 0; i < 3; i++) {
          await Bun.sleep(2_000)
          const renewed = await client.lease.keepAliveOnce(lease.ID)
          expect(renewed.TTL).toBe(TTL_SECONDS)
        }
        const ttl = await c.client(leader.name).lease.leaseTimeToLive({ ID: lease.ID })
        expect(ttl.TTL).toBeGreaterThan(TTL_SECONDS - 3)

        await c.kill(leader.name)
        await c.leader({ among: [follower, other], timeoutMs: 10_000 })
        // The new leader still has the lease, with (at least) most of its TTL left.
        const after = await c.client(other).lease.leaseTimeToLive({ ID: lease.ID, keys: true })
        expect(after.TTL).toBeGreaterThan(0)
        expect(after.keys.map((k) => Buffer.from(k).toString())).toEqual(["leased"])
        expect((await c.client(other).lease.keepAliveOnce(lease.ID)).TTL).toBe(TTL_SECONDS)
        const renewedAt = Date.now()

        // No more keepalives: it expires, and the key goes with it, on both members.
        await eventually(
          "the lease expires",
          async () => {
            const r = await c.client(other).kv.range({ key: utf8("leased") })
            return r.kvs.length === 0 ? true : undefined
          },
          (TTL_SECONDS + 5) * 1_000,
        )
        expect(Date.now() - renewedAt).toBeGreaterThanOrEqual((TTL_SECONDS - 1) * 1_000)
        const gone = await c.client(follower).lease.leaseTimeToLive({ ID: lease.ID })
        expect(gone.TTL).toBe(-1)
        expect((await c.client(follower).kv.range({ key: utf8("leased") })).kvs).toEqual([])
      } catch (e) {
        console.error(c.logs())
        throw e
      }
    }, 60_000)
  }
})
