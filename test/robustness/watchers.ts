// Watchers of a robustness round. Each records every event it is sent, the
// revision ranges it was watching ("segments": from the start revision of a
// watch to the last event it saw), and how its watches were cancelled. When a
// stream breaks (its member killed, removed, restarted), a resumable watcher
// opens a new watch from the last revision it saw + 1 on another member, as
// clientv3 does; a compaction in between cancels that watch with
// compact_revision, and the watcher goes on from there (a hole it knows of).

import type { EtcdClient } from "../../src/client"
import { fromUtf8, utf8 } from "../../src/lib/bytes"
import type { Event, KeyValue } from "../../src/pb"

export interface SeenKv {
  key: string
  value: string
  createRevision: number
  modRevision: number
  version: number
  lease: string
}

export interface SeenEvent {
  type: "put" | "delete"
  revision: number
  kv: SeenKv
  prevKv: SeenKv | undefined
  /** When this watcher received it (ms on the round's clock). */
  atMs: number
}

export interface Segment {
  member: string
  /** The revision the watch was created from. */
  from: number
  /** The last revision seen in this segment (from - 1: none). */
  to: number
}

export interface Cancellation {
  member: string
  requested: number
  compactRevision: number
  reason: string
}

function seenKv(kv: KeyValue): SeenKv {
  return {
    key: fromUtf8(kv.key),
    value: fromUtf8(kv.value),
    createRevision: kv.createRevision,
    modRevision: kv.modRevision,
    version: kv.version,
    lease: kv.lease.toString(16),
  }
}

function seenEvent(e: Event, atMs: number): SeenEvent {
  const kv = seenKv(e.kv!)
  return { type: e.type === 1 ? "delete" : "put", revision: kv.modRevision, kv, prevKv: e.prevKv === undefined ? undefined : seenKv(e.prevKv), atMs }
}

export interface WatcherOptions {
  name: string
  /** The key, or the prefix when `prefix` is set. */
  key: string
  prefix: boolean
  /** First revision (0: from the next one). */
  startRevision: number
  prevKv: boolean
  /** Resume on another member after a broken stream or a compaction cancel. */
  resumable: boolean
  /** The member to watch on for attempt n (undefined: none available now). */
  memberFor: (attempt: number) => string | undefined
  client: (member: string) => EtcdClient
  now: () => number
}

export class Watcher {
  readonly events: SeenEvent[] = []
  readonly segments: Segment[] = []
  readonly cancellations: Cancellation[] = []
  /** Protocol complaints seen while watching (a created response missing, a second one, ...). */
  readonly problems: string[] = []
  private stopped = false
  private stream: ReturnType<EtcdClient["watch"]> | undefined
  private loop: Promise<void> | undefined
  /** The revision the next watch starts from. */
  private next: number
  private attempts = 0

  constructor(readonly options: WatcherOptions) {
    this.next = options.startRevision
  }

  get lastRevision(): number {
    return this.events.at(-1)?.revision ?? 0
  }

  /** The key range as [key, rangeEnd) strings (rangeEnd "" for one key). */
  covers(key: string): boolean {
    return this.options.prefix ? key.startsWith(this.options.key) : key === this.options.key
  }

  start(): void {
    this.loop = this.run()
  }

  async stop(): Promise<void> {
    this.stopped = true
    this.stream?.close()
    await this.loop
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const member = this.options.memberFor(this.attempts++)
      if (member === undefined) {
        await Bun.sleep(200)
        continue
      }
      const again = await this.watchOnce(member)
      if (!again || !this.options.resumable) return
      await Bun.sleep(150)
    }
  }

  /** One watch on one member; true when the watcher should go on elsewhere. */
  private async watchOnce(member: string): Promise<boolean> {
    const o = this.options
    let stream: ReturnType<EtcdClient["watch"]>
    try {
      stream = this.stream = o.client(member).watch()
    } catch {
      return true
    }
    const key = utf8(o.key)
    const rangeEnd = o.prefix ? prefixEnd(key) : undefined
    const requested = this.next
    stream.create({ key, ...(rangeEnd === undefined ? {} : { rangeEnd }), startRevision: requested, prevKv: o.prevKv })
    let segment: Segment | undefined
    try {
      for await (const res of stream) {
        if (res.canceled) {
          this.cancellations.push({ member, requested, compactRevision: res.compactRevision, reason: res.cancelReason })
          if (res.compactRevision > 0) {
            this.next = res.compactRevision
            return true
          }
          this.problems.push(`watch on ${member} from ${requested} cancelled without compact_revision: ${res.cancelReason}`)
          return true
        }
        if (res.created) {
          if (segment !== undefined) this.problems.push(`second created response on ${member}`)
          // startRevision 0 means "from the next revision": the header says which one that is.
          const from = requested === 0 ? (res.header?.revision ?? 0) + 1 : requested
          segment = { member, from, to: from - 1 }
          this.segments.push(segment)
          if (requested === 0) this.next = from
          continue
        }
        if (segment === undefined) {
          this.problems.push(`events before the created response on ${member}`)
          continue
        }
        const at = o.now()
        for (const e of res.events) {
          const seen = seenEvent(e, at)
          this.events.push(seen)
          segment.to = Math.max(segment.to, seen.revision)
          this.next = seen.revision + 1
        }
      }
    } catch {
      // The stream broke (member down, removed, restarted): resume elsewhere.
    }
    return !this.stopped
  }
}

export function prefixEnd(key: Uint8Array): Uint8Array {
  const end = new Uint8Array(key)
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++
      return end.slice(0, i + 1)
    }
  }
  return new Uint8Array([0])
}
