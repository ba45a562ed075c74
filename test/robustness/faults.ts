// The faults of the robustness campaign, on a running Cluster: kill -9,
// SIGSTOP/SIGCONT, partitions through the fault proxy (both ways, or one way:
// asymmetric), a member removed and added back empty, a full disk under one
// member's data dir (a tmpfs mounted there before it started), and a
// follower restarted while the leader sends it a snapshot.

import { spawnSync } from "bun"
import { mkdirSync, statfsSync, unlinkSync } from "node:fs"
import { join } from "node:path"
import type { Cluster } from "../support/cluster"
import { waitHealthy } from "../support/procs"
import type { FaultKind } from "./plan"

/** Size of the tmpfs under a disk-full member: its 64 MB WAL segment, the db, a snapshot. */
export const DISK_FULL_TMPFS_MB = 100

/** Mounts a small tmpfs on `dir` (made if missing). */
export function mountTmpfs(dir: string, sizeMb = DISK_FULL_TMPFS_MB): void {
  mkdirSync(dir, { recursive: true })
  const r = spawnSync(["mount", "-t", "tmpfs", "-o", `size=${sizeMb}m`, "tmpfs", dir])
  if (r.exitCode !== 0) throw new Error(`mount tmpfs on ${dir}: ${r.stderr.toString()}`)
}

export function unmount(dir: string): void {
  spawnSync(["umount", "-l", dir])
}

/** Fills the file system of `dir` up to the last byte with a file; returns its path. */
export function fillDisk(dir: string): string {
  const filler = join(dir, "filler")
  const free = (): number => {
    const s = statfsSync(dir)
    return Number(s.bavail) * Number(s.bsize)
  }
  const avail = free()
  if (avail > 4096) {
    const r = spawnSync(["fallocate", "-l", String(avail - 4096), filler])
    if (r.exitCode !== 0) throw new Error(`fallocate: ${r.stderr.toString()}`)
  }
  // The last blocks, until the file system says no.
  spawnSync(["sh", "-c", `cat /dev/zero >> ${filler}`])
  return filler
}

export function freeDisk(filler: string): void {
  try {
    unlinkSync(filler)
  } catch {}
}

/** What a fault did, for the report and for the round to undo. */
export interface Injected {
  kind: FaultKind
  victim: string
  detail: string
  /** The disk-full member's process exited while the disk was full. */
  exitedOnFullDisk?: boolean
}

export interface FaultContext {
  cluster: Cluster
  victimPick: number
  holdMs: number
  /** The member whose data dir is on a tmpfs (disk-full rounds). */
  diskMember: string | undefined
  /** Writes that make the full disk bite (the round's bulk writer), started and stopped around the hold. */
  bulk: { start(): void; stop(): Promise<void> }
  snapshotCount: number
}

async function followerOf(c: Cluster, pick: number): Promise<{ leader: string; follower: string }> {
  const leader = (await c.leader()).name
  const followers = c.live.filter((m) => m.name !== leader).map((m) => m.name)
  return { leader, follower: followers[pick % followers.length]! }
}

/** Injects the fault, holds it, and undoes it (every member running and connected again). */
export async function injectFault(kind: FaultKind, ctx: FaultContext): Promise<Injected> {
  const c = ctx.cluster
  const hold = (): Promise<void> => Bun.sleep(ctx.holdMs)
  switch (kind) {
    case "none":
      await hold()
      return { kind, victim: "", detail: "" }
    case "kill-leader":
    case "kill-follower": {
      const { leader, follower } = await followerOf(c, ctx.victimPick)
      const victim = kind === "kill-leader" ? leader : follower
      await c.kill(victim)
      await hold()
      await c.restart(victim)
      return { kind, victim, detail: "kill -9, restart" }
    }
    case "stop-leader":
    case "stop-follower": {
      const { leader, follower } = await followerOf(c, ctx.victimPick)
      const victim = kind === "stop-leader" ? leader : follower
      c.pause(victim)
      await hold()
      c.resume(victim)
      return { kind, victim, detail: "SIGSTOP, SIGCONT" }
    }
    case "isolate-leader":
    case "isolate-follower": {
      const { leader, follower } = await followerOf(c, ctx.victimPick)
      const victim = kind === "isolate-leader" ? leader : follower
      c.proxy!.isolate(victim)
      await hold()
      c.proxy!.heal()
      return { kind, victim, detail: "peer links cut both ways" }
    }
    case "one-way-leader":
    case "one-way-follower": {
      const { leader, follower } = await followerOf(c, ctx.victimPick)
      const others = c.live.map((m) => m.name)
      if (kind === "one-way-leader") {
        // The leader hears its followers but they do not hear it.
        for (const o of others) if (o !== leader) c.proxy!.dropOneWay(leader, o)
      } else {
        // The follower is heard (its votes disrupt) but hears nobody.
        for (const o of others) if (o !== follower) c.proxy!.dropOneWay(o, follower)
      }
      await hold()
      c.proxy!.heal()
      return { kind, victim: kind === "one-way-leader" ? leader : follower, detail: "bytes dropped one way" }
    }
    case "member-replace": {
      const { leader, follower } = await followerOf(c, ctx.victimPick)
      const id = await c.idOf(follower)
      // Our client, not etcdctl: etcdctl's retries turn "unhealthy cluster" (peers connected
      // for less than 5 s, right after a start) into "context deadline exceeded".
      c.member(follower).removed = true
      for (const deadline = Date.now() + 15_000; ; ) {
        try {
          await c.client(leader, 10_000).cluster.memberRemove({ ID: id })
          break
        } catch (e) {
          if (!String(e).includes("unhealthy cluster") || Date.now() > deadline) throw e
          await Bun.sleep(300)
        }
      }
      await Bun.sleep(300)
      await c.kill(follower)
      await hold()
      await c.addMember({ name: follower, via: leader })
      await waitHealthy(c.running(follower), 30_000)
      return { kind, victim: follower, detail: "removed, added back with an empty data dir" }
    }
    case "disk-full": {
      const victim = ctx.diskMember!
      const dir = c.member(victim).dataDir
      const filler = fillDisk(dir)
      ctx.bulk.start()
      await hold()
      await ctx.bulk.stop()
      const m = c.member(victim)
      const exited = m.process !== undefined && (m.process.proc.exitCode !== null || m.process.proc.signalCode !== null)
      freeDisk(filler)
      if (exited) {
        await c.kill(victim)
        await c.restart(victim)
      }
      return { kind, victim, detail: exited ? "disk filled, member exited, restarted once space was back" : "disk filled, space given back", exitedOnFullDisk: exited }
    }
    case "snapshot-restart": {
      const { leader, follower } = await followerOf(c, ctx.victimPick)
      await c.kill(follower)
      // Enough entries that the leader compacts its log past the follower: it must get a snapshot.
      const start = (await c.status(leader)).raftIndex
      const deadline = Date.now() + 3_000
      while (Date.now() < deadline && (await c.status(leader)).raftIndex < start + ctx.snapshotCount * 2 + 10) await Bun.sleep(100)
      const restarting = c.restart(follower).catch(() => undefined)
      await Bun.sleep(20 + (ctx.victimPick % 400))
      await c.kill(follower)
      await restarting
      // (If the kill came before the process was spawned, the restart went through.)
      if (c.member(follower).process === undefined) await c.restart(follower)
      return { kind, victim: follower, detail: `killed ${20 + (ctx.victimPick % 400)} ms into its restart, while it caught up by snapshot` }
    }
  }
}
