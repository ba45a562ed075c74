// make-mirror [--prefix] [--dest-prefix|--no-dest-prefix] [--dest-* TLS] <destination>:
// copies the keys under a prefix to another cluster as of one revision (paged,
// as clientv3/mirror's SyncBase), then replays every later change from a watch
// starting right after that revision, one destination txn per source revision.
// Like etcdctl it prints the count of keys mirrored every 30 s and runs until
// killed or an error (destination down, compacted watch) ends it.
import type { EtcdClient } from "../client"
import type { Event, RequestOpInit, WatchResponse } from "../pb"
import { prefixEnd } from "./cmd_kv"
import { clientOptions, type Command, type Ctx } from "./context"
import { LoggingClient } from "./logging_client"
import { CtlExit, ExitCode, errorText, out } from "./output"
import { TskvError } from "../lib/errors"

/** clientv3/mirror's batchLimit: keys per range request of the initial sync. */
const SYNC_PAGE_KEYS = 1000
const REPORT_INTERVAL_MS = 30_000

const enc = new TextEncoder()

/** The source range: the prefix, or every key (from "\0") when it is empty. */
function sourceRange(prefix: Uint8Array): { key: Uint8Array; rangeEnd: Uint8Array } {
  return prefix.length === 0 ? { key: Uint8Array.of(0), rangeEnd: Uint8Array.of(0) } : { key: prefix, rangeEnd: prefixEnd(prefix) }
}

/** etcdctl's modifyPrefix: strings.Replace(key, prefix, destPrefix, 1) on bytes. */
export function renameKey(key: Uint8Array, source: Uint8Array, target: Uint8Array): Uint8Array {
  const at = Buffer.from(key).indexOf(Buffer.from(source))
  if (at < 0) return key
  return Buffer.concat([key.subarray(0, at), target, key.subarray(at + source.length)])
}

/** The destination client: the global timeouts, the --dest-* TLS flags, no auth (as etcdctl). */
function destinationClient(ctx: Ctx, endpoint: string): EtcdClient {
  const get = (name: string): string => {
    if (name === "cacert" || name === "cert" || name === "key") return ctx.flag(`dest-${name}`)
    if (name === "insecure-transport") return ctx.flag("dest-insecure-transport")
    if (name === "user" || name === "password" || name === "insecure-skip-tls-verify") return ""
    return ctx.flag(name)
  }
  return new LoggingClient(clientOptions(get, [endpoint]))
}

class Mirror {
  /** Keys put or deleted at the destination so far (what etcdctl prints). */
  total = 0

  constructor(
    private readonly source: EtcdClient,
    private readonly target: EtcdClient,
    private readonly prefixes: { source: Uint8Array; target: Uint8Array },
  ) {}

  private rename(key: Uint8Array): Uint8Array {
    return renameKey(key, this.prefixes.source, this.prefixes.target)
  }

  /** Copies the range as of one revision, page by page; returns that revision. */
  async syncBase(): Promise<number> {
    const first = await this.source.kv.range({ key: enc.encode("foo") })
    const revision = first.header?.revision ?? 0
    let { key, rangeEnd } = sourceRange(this.prefixes.source)
    for (;;) {
      const page = await this.source.kv.range({ key, rangeEnd, revision, limit: SYNC_PAGE_KEYS })
      for (const kv of page.kvs) {
        await this.target.kv.put({ key: this.rename(kv.key), value: kv.value })
        this.total++
      }
      const last = page.kvs[page.kvs.length - 1]
      if (!page.more || last === undefined) return revision
      key = Uint8Array.from([...last.key, 0])
    }
  }

  /** Replays the changes after `revision`; returns only by throwing. */
  async syncUpdates(revision: number): Promise<never> {
    const stream = this.source.watch()
    stream.create({ ...sourceRange(this.prefixes.source), startRevision: revision + 1 })
    try {
      for await (const r of stream as AsyncIterable<WatchResponse>) {
        if (r.compactRevision !== 0) throw new TskvError("compacted")
        if (r.canceled) throw new CtlExit(ExitCode.error, r.cancelReason || "watch canceled")
        await this.apply(r.events)
      }
    } finally {
      stream.close()
    }
    throw new CtlExit(ExitCode.error, "watch closed by the source cluster")
  }

  /** One destination txn per source revision, so a source txn stays atomic. */
  private async apply(events: Event[]): Promise<void> {
    let ops: RequestOpInit[] = []
    let revision = 0
    for (const ev of events) {
      const kv = ev.kv
      if (kv === undefined) continue
      if (revision !== 0 && kv.modRevision > revision) {
        await this.target.kv.txn({ success: ops })
        ops = []
      }
      revision = kv.modRevision
      const key = this.rename(kv.key)
      ops.push(ev.type === 1 ? { requestDeleteRange: { key } } : { requestPut: { key, value: kv.value } })
      this.total++
    }
    if (ops.length > 0) await this.target.kv.txn({ success: ops })
  }
}

export const makeMirror: Command = {
  async run(ctx) {
    if (ctx.args.length !== 1) throw new CtlExit(ExitCode.badArgs, "make-mirror takes one destination argument")
    const target = destinationClient(ctx, ctx.args[0]!)
    const source = ctx.client()
    const prefix = ctx.flag("prefix")
    if (ctx.bool("no-dest-prefix") && ctx.flag("dest-prefix") !== "") {
      throw new CtlExit(ExitCode.badArgs, "`--dest-prefix` and `--no-dest-prefix` cannot be set at the same time, choose one")
    }
    const destPrefix = ctx.bool("no-dest-prefix") ? "" : ctx.flag("dest-prefix") || prefix
    // etcdctl would retry a dead destination forever, silently: say so at once instead
    try {
      await target.maintenance.status({}, { timeoutMs: ctx.commandTimeoutMs })
    } catch (e) {
      target.close()
      throw new CtlExit(ExitCode.badConnection, `cannot reach the destination ${ctx.args[0]!} (${errorText(e)})`)
    }
    const mirror = new Mirror(source, target, { source: enc.encode(prefix), target: enc.encode(destPrefix) })
    const report = setInterval(() => out.line(String(mirror.total)), REPORT_INTERVAL_MS)
    try {
      await mirror.syncUpdates(await mirror.syncBase())
    } finally {
      clearInterval(report)
      target.close()
    }
  },
}
