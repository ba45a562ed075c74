// lock <name> [cmd ...] and elect <name> [proposal] | -l, through the
// v3lock / v3election services with a session lease kept alive by this process
// (the same keys etcdctl's client-side recipes make: <name>/<lease id hex>).
import { spawnSync } from "node:child_process"
import type { EtcdClient } from "../client"
import type { KeyValue, ResponseHeader } from "../pb"
import type { Command, Ctx } from "./context"
import { showGet } from "./display"
import { CtlExit, ExitCode, errorText, out } from "./output"

const enc = new TextEncoder()

interface Session {
  lease: bigint
  /** Resolves when the lease could not be renewed. */
  lost: Promise<void>
  close(): Promise<void>
}

async function openSession(client: EtcdClient, ttlSeconds: number): Promise<Session> {
  const grant = await client.lease.leaseGrant({ TTL: ttlSeconds })
  const lease = grant.ID
  const stream = client.lease.leaseKeepAlive()
  let closed = false
  const lost = (async () => {
    try {
      while (!closed) {
        stream.send({ ID: lease })
        const r = await stream.read()
        if (r.TTL <= 0) return
        await Bun.sleep(Math.max(300, (r.TTL * 1000) / 3))
      }
    } catch {
      // the keepalive stream broke: the session is lost unless we are closing
    }
  })()
  return {
    lease,
    lost,
    close: async () => {
      closed = true
      stream.close()
      await client.lease.leaseRevoke({ ID: lease }).catch(() => undefined)
    },
  }
}

function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    process.once("SIGINT", () => resolve())
    process.once("SIGTERM", () => resolve())
  })
}

function showKv(ctx: Parameters<Command["run"]>[0], header: ResponseHeader | undefined, kv: KeyValue): void {
  showGet(ctx.display, { kvs: [kv], more: false, count: 1, ...(header === undefined ? {} : { header }) })
}

export const lockCommand: Command = {
  async run(ctx) {
    if (ctx.args.length === 0) throw new CtlExit(ExitCode.badArgs, "lock takes a lock name argument and an optional command to execute")
    const client = ctx.client()
    const session = await openSession(client, ttlOf(ctx))
    try {
      const signalled = untilSignal()
      const locked = await client.lock.lock({ name: enc.encode(ctx.args[0]!), lease: session.lease }, { timeoutMs: 2 ** 31 - 1 })
      if (ctx.args.length > 1) {
        const env = { ...process.env, ETCD_LOCK_KEY: Buffer.from(locked.key).toString(), ETCD_LOCK_REV: String(locked.header?.revision ?? 0) }
        const res = spawnSync(ctx.args[1]!, ctx.args.slice(2), { env, stdio: "inherit" })
        await client.lock.unlock({ key: locked.key })
        if (res.error !== undefined) throw new CtlExit(ExitCode.error, res.error.message)
        if (res.status !== 0) throw new CtlExit(ExitCode.error, `exit status ${res.status ?? 1}`)
        return
      }
      const got = await client.kv.range({ key: locked.key })
      const kv = got.kvs[0]
      if (kv === undefined) throw new CtlExit(ExitCode.error, "lock lost on init")
      showKv(ctx, got.header, kv)
      const which = await Promise.race([signalled.then(() => "signal"), session.lost.then(() => "lost")])
      if (which === "lost") throw new CtlExit(ExitCode.error, "session expired")
      await client.lock.unlock({ key: locked.key })
    } finally {
      await session.close()
    }
  },
}

/** lock --ttl; elect has no such flag in etcdctl 3.4 and takes concurrency's default session TTL. */
function ttlOf(ctx: Ctx): number {
  return ctx.flag("ttl") !== "" ? Number(ctx.flag("ttl")) : SESSION_TTL_SECONDS
}

/** clientv3/concurrency's defaultSessionTTL. */
const SESSION_TTL_SECONDS = 60

export const electCommand: Command = {
  async run(ctx) {
    if (ctx.args.length !== 1 && ctx.args.length !== 2) {
      throw new CtlExit(ExitCode.badArgs, "elect takes one election name argument and an optional proposal argument")
    }
    const client = ctx.client()
    const name = enc.encode(ctx.args[0]!)
    if (ctx.bool("listen")) {
      if (ctx.args.length === 2) throw new CtlExit(ExitCode.error, "--listen can't be used with a proposal")
      const stream = client.election.observe({ name })
      const signalled = untilSignal().then(() => stream.close())
      try {
        for await (const r of stream) if (r.kv !== undefined) showKv(ctx, r.header, r.kv)
      } catch (e) {
        throw new CtlExit(ExitCode.error, errorText(e))
      }
      await Promise.race([signalled, Promise.resolve()])
      return
    }
    if (ctx.args.length !== 2) throw new CtlExit(ExitCode.error, "no proposal argument but -l not set")
    const session = await openSession(client, ttlOf(ctx))
    try {
      const signalled = untilSignal()
      const r = await client.election.campaign({ name, lease: session.lease, value: enc.encode(ctx.args[1]!) }, { timeoutMs: 2 ** 31 - 1 })
      const leader = r.leader
      if (leader === undefined) throw new CtlExit(ExitCode.error, "no leader key")
      const got = await client.kv.range({ key: leader.key })
      const kv = got.kvs[0]
      if (kv === undefined) throw new CtlExit(ExitCode.error, "elect lost on init")
      showKv(ctx, got.header, kv)
      const which = await Promise.race([signalled.then(() => "signal"), session.lost.then(() => "lost")])
      if (which === "lost") throw new CtlExit(ExitCode.error, "session expired")
      await client.election.resign({ leader })
    } finally {
      await session.close()
    }
    void out
  },
}
