// One round of the robustness campaign: a new cluster of the compiled binary,
// the planned traffic, watchers, leases, compactions and defrags, one fault,
// then every check (see checks.ts), a restart of every member on its data
// dir, and the cluster torn down.

import { EtcdClient } from "../../src/client"
import { fromUtf8, utf8 } from "../../src/lib/bytes"
import { Cluster } from "../support/cluster"
import { checkLinearizable, describe as describeOps } from "../support/linearizability"
import { checkRound, type FinalState, type Violation } from "./checks"
import { DISK_FULL_TMPFS_MB, injectFault, type Injected, mountTmpfs, unmount } from "./faults"
import type { RoundPlan } from "./plan"
import { Traffic } from "./traffic"
import { prefixEnd, Watcher } from "./watchers"

export interface RoundResult {
  plan: RoundPlan
  violations: Violation[]
  /** Operations in the linearizability check (known outcomes). */
  operations: number
  /** Watch events checked. */
  events: number
  acked: number
  injected: Injected | undefined
  durationMs: number
  /** The members' output, when a check failed. */
  logs: string | undefined
}

const DISK_HEADROOM_MB = DISK_FULL_TMPFS_MB

export async function runRound(plan: RoundPlan): Promise<RoundResult> {
  const began = performance.now()
  const prefix = `/robust/${plan.round}/`
  const violations: Violation[] = []
  const diskMember = plan.fault === "disk-full" ? `m${(plan.victimPick % plan.size) + 1}` : undefined
  const mounted: string[] = []
  const clients = new Map<string, EtcdClient>()
  let cluster: Cluster | undefined
  let injected: Injected | undefined
  let operations = 0
  let events = 0
  let acked = 0
  const watchers: Watcher[] = []
  try {
    const c = (cluster = await Cluster.start({
      kind: "tskv",
      size: plan.size,
      // Peer traffic through the fault proxy only for the partitions: a member added through the
      // proxy is never committed within etcdctl's timeout (etcd 3.4's members neither), so
      // member-replace rounds run without it.
      faults: plan.fault.startsWith("isolate-") || plan.fault.startsWith("one-way-"),
      snapshotCount: plan.snapshotCount,
      readyTimeoutMs: 30_000,
      prepareDataDir: (m) => {
        if (m.name === diskMember && !mounted.includes(m.dataDir)) {
          mountTmpfs(m.dataDir, DISK_HEADROOM_MB)
          mounted.push(m.dataDir)
        }
      },
    }))
    const clientFor = (name: string): EtcdClient => {
      const url = c.member(name).clientUrl
      let client = clients.get(url)
      if (client === undefined) clients.set(url, (client = new EtcdClient({ endpoints: [url], callTimeoutMs: 5_000 })))
      return client
    }
    const names = (): string[] => c.members.map((m) => m.name)
    const liveNames = (): string[] => c.live.filter((m) => !m.removed).map((m) => m.name)
    await c.leader({ timeoutMs: 20_000 })
    const traffic = new Traffic(plan, prefix, clientFor, names)
    const now = (): number => traffic.history.now()
    const watcher = (name: string, o: { key: string; prefix: boolean; startRevision: number; prevKv: boolean }, first: number): Watcher => {
      const w = new Watcher({
        name,
        ...o,
        resumable: true,
        memberFor: (attempt) => {
          const live = liveNames()
          return live.length === 0 ? undefined : live[(first + attempt) % live.length]
        },
        client: clientFor,
        now,
      })
      watchers.push(w)
      w.start()
      return w
    }
    // Two historians: the whole prefix from revision 1, with prev_kv, on two members.
    watcher("historian-1", { key: prefix, prefix: true, startRevision: 1, prevKv: true }, 0)
    watcher("historian-2", { key: prefix, prefix: true, startRevision: 1, prevKv: true }, 1)

    const t0 = performance.now()
    const at = (ms: number): Promise<void> => Bun.sleep(Math.max(0, ms - (performance.now() - t0)))
    const lastRevision = (): number => Math.max(1, ...traffic.acked.map((a) => a.revision))
    const randomMember = (i: number): string => {
      const live = liveNames()
      return live[i % live.length] ?? names()[0]!
    }
    const compactions: { revision: number }[] = []
    const side: Promise<void>[] = []
    // Bulk writes for the disk-full fault: big values through the member with the full disk.
    let bulkRun: Promise<void> | undefined
    let bulkStop = false
    const bulk = {
      start: () => {
        bulkRun = (async () => {
          for (let i = 0; !bulkStop && i < 200; i++) {
            const value = `${prefix}bulk-${i}-${"x".repeat(100_000)}`
            const key = `${prefix}b/${i % 8}`
            traffic.issued.set(value, { key, outcome: "unknown" })
            try {
              const res = await clientFor(diskMember!).kv.put({ key: utf8(key), value: utf8(value) }, { timeoutMs: 2_000 })
              traffic.acked.push({ revision: res.header!.revision, key, value, lease: "0" })
              traffic.issued.get(value)!.outcome = "acked"
            } catch {
              await Bun.sleep(100)
            }
          }
        })()
      },
      stop: async () => {
        bulkStop = true
        await bulkRun
      },
    }

    const run = traffic.run()
    plan.leases.forEach((_, i) => side.push(traffic.lease(i, () => randomMember(plan.victimPick + i), (ms) => Bun.sleep(ms))))
    plan.watches.forEach((p, i) =>
      side.push(
        (async () => {
          await at(p.atMs)
          const start = p.from === "current" ? 0 : 1 + ((plan.victimPick * (i + 3)) % lastRevision())
          const key = p.range === "prefix" ? prefix : traffic.registerKeys[i % traffic.registerKeys.length]!
          watcher(`late-${i}`, { key, prefix: p.range === "prefix", startRevision: start, prevKv: p.prevKv }, plan.victimPick + i)
        })(),
      ),
    )
    plan.compactions.forEach((p, i) =>
      side.push(
        (async () => {
          await at(p.atMs)
          const revision = lastRevision() - p.behind
          if (revision < 2) return
          const member = randomMember(plan.victimPick + 2 * i)
          try {
            await clientFor(member).kv.compact({ revision, physical: p.physical }, { timeoutMs: 3_000 })
          } catch {
            return // refused (already compacted further) or lost with the fault
          }
          traffic.counts.compactions++
          compactions.push({ revision })
          // A watch from before the compaction is cancelled with the compacted revision.
          const probe = clientFor(member).watch()
          try {
            probe.create({ key: utf8(prefix), rangeEnd: prefixEnd(utf8(prefix)), startRevision: revision - 1 })
            // etcd answers created first, then cancels with compact_revision.
            const deadline = Date.now() + 3_000
            for (;;) {
              const res = await Promise.race([probe.read(), Bun.sleep(Math.max(0, deadline - Date.now())).then(() => undefined)])
              if (res === undefined) {
                violations.push({ check: "watch compact_revision", detail: `a watch from ${revision - 1} on ${member} after compacting to ${revision} was not cancelled within 3 s` })
                break
              }
              if (res.events.length > 0) {
                violations.push({ check: "watch compact_revision", detail: `a watch from ${revision - 1} on ${member} after compacting to ${revision} got events` })
                break
              }
              if (res.canceled) {
                if (res.compactRevision < revision) violations.push({ check: "watch compact_revision", detail: `a watch from ${revision - 1} on ${member} after compacting to ${revision} was cancelled with compact_revision ${res.compactRevision}` })
                break
              }
            }
          } catch {
            // the member went away meanwhile
          } finally {
            probe.close()
          }
        })(),
      ),
    )
    plan.defrags.forEach((ms, i) =>
      side.push(
        (async () => {
          await at(ms)
          try {
            await clientFor(randomMember(plan.victimPick + 3 * i)).maintenance.defragment({}, { timeoutMs: 10_000 })
            traffic.counts.defrags++
          } catch {}
        })(),
      ),
    )
    await at(plan.faultAtMs)
    injected = await injectFault(plan.fault, { cluster: c, victimPick: plan.victimPick, holdMs: plan.faultHoldMs, diskMember, bulk, snapshotCount: plan.snapshotCount })
    await at(Math.max(plan.trafficMs, performance.now() - t0 + 800))
    traffic.stop()
    await run
    await Promise.all(side)

    // Settle: a leader, the same HashKV everywhere, the leases gone.
    const leader = (await c.leader({ timeoutMs: 30_000 })).name
    await c.waitConverged(30_000)
    for (const l of traffic.leases) {
      if (l.revoked === "yes") continue
      const deadline = l.latestRenewMs + l.ttl * 1_000 + 15_000
      while (true) {
        const ttl = await clientFor(leader)
          .lease.leaseTimeToLive({ ID: l.id }, { timeoutMs: 2_000 })
          .then((r) => Number(r.TTL))
          .catch(() => 0)
        // Gone means: no TTL any more, and no key left (a revoke may still be pending after the TTL).
        const keysLeft =
          ttl !== -1
            ? -1
            : await clientFor(leader)
                .kv.range({ key: utf8(`${prefix}l/${l.id.toString(16)}/`), rangeEnd: prefixEnd(utf8(`${prefix}l/${l.id.toString(16)}/`)), countOnly: true }, { timeoutMs: 2_000 })
                .then((r) => r.count)
                .catch(() => -1)
        if (ttl === -1 && keysLeft === 0) break
        if (now() > deadline) {
          violations.push({ check: "lease expires", detail: `lease ${l.id.toString(16)} (TTL ${l.ttl} s): TTL ${ttl}, ${keysLeft} key(s) left, 15 s after it was due` })
          break
        }
        await Bun.sleep(200)
      }
    }
    // The fence: every watcher must get to it.
    const fence = await clientFor(leader).kv.put({ key: utf8(`${prefix}fence`), value: utf8("fence") }, { timeoutMs: 5_000 })
    const fenceRevision = fence.header!.revision
    const fenceDeadline = Date.now() + 20_000
    while (Date.now() < fenceDeadline && watchers.some((w) => w.covers(`${prefix}fence`) && w.lastRevision < fenceRevision)) await Bun.sleep(100)
    for (const w of watchers) {
      if (w.covers(`${prefix}fence`) && w.lastRevision < fenceRevision) violations.push({ check: "watch delivers", detail: `${w.options.name} is at revision ${w.lastRevision}, the fence at ${fenceRevision}` })
    }
    const converged = await c.waitConverged(30_000)
    const finals: FinalState[] = []
    for (const m of c.live) {
      const res = await clientFor(m.name).kv.range({ key: utf8(prefix), rangeEnd: prefixEnd(utf8(prefix)), serializable: true }, { timeoutMs: 5_000 })
      finals.push({
        member: m.name,
        revision: res.header!.revision,
        kvs: res.kvs.map((kv) => ({ key: fromUtf8(kv.key), value: fromUtf8(kv.value), createRevision: kv.createRevision, modRevision: kv.modRevision, version: kv.version, lease: kv.lease.toString(16) })),
      })
    }
    await Promise.all(watchers.map((w) => w.stop()))

    const summary = checkRound({ prefix, watchers, acked: traffic.acked, issued: traffic.issued, leases: traffic.leases, finalRevision: converged.revision, finals, compactions })
    violations.push(...summary.violations)
    events = summary.events
    acked = traffic.acked.length
    // An operation whose outcome is unknown may have taken effect at any time after its call,
    // which makes the search exponential when many are (a member down for a while). With the
    // whole log known, a write whose value never committed took no effect: drop it.
    const history = summary.completeLog
      ? traffic.history.entries.filter((e) => {
          if (e.outcome !== undefined) return true
          const value = e.op.kind === "put" || e.op.kind === "cas" || e.op.kind === "txn" ? e.op.value : null
          return value === null || summary.committedValues.has(value)
        })
      : traffic.history.entries
    const lin = checkLinearizable(history)
    if (lin.ok) operations = lin.operations
    else violations.push({ check: "linearizable", detail: `key ${lin.key}: ${lin.reason}\n${describeOps(lin.operations)}` })

    // Every data dir restarts: kill -9 all, start all, the same state.
    const before = converged
    for (const m of c.live) await c.kill(m.name)
    await Promise.all(c.members.map((m) => c.restart(m.name, 30_000)))
    await c.leader({ timeoutMs: 30_000 })
    const after = await c.waitConverged(30_000)
    if (after.hash !== before.hash || after.revision !== before.revision) {
      violations.push({ check: "data dirs restart", detail: `before the restart rev ${before.revision} hash ${before.hash}, after rev ${after.revision} hash ${after.hash}` })
    }
  } catch (e) {
    violations.push({ check: "round completes", detail: e instanceof Error ? (e.stack ?? e.message) : String(e) })
  }
  await Promise.all(watchers.map((w) => w.stop()))
  for (const client of clients.values()) client.close()
  for (const crash of cluster?.crashed() ?? []) violations.push({ check: "no member crashes", detail: crash })
  const logs = violations.length > 0 ? cluster?.logs(20_000) : undefined
  // The tmpfs goes before the cluster's temp dir is removed.
  if (diskMember !== undefined) await cluster?.kill(diskMember).catch(() => undefined)
  for (const dir of mounted) unmount(dir)
  await cluster?.close().catch(() => undefined)
  return { plan, violations, operations, events, acked, injected, durationMs: performance.now() - began, logs }
}
