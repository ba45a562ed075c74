// The v2 watchers and the window of the last 1000 events they may start from
// (etcd's v2store watcherHub and EventHistory). A watcher with a waitIndex in
// the window gets the first matching event at once; older indexes are
// refused with 401 "event index cleared"; newer ones wait for the event.

import { assert } from "../lib/assert"
import { cloneEvent, type V2Event } from "./event"
import { V2Error, V2ErrorCode } from "./errors"

export const HISTORY_CAPACITY = 1000
/** etcd: a watcher's channel holds 100 events; one that falls further behind is removed. */
export const WATCHER_BUFFER = 100

export class EventHistory {
  private events: V2Event[] = []
  startIndex = 0
  lastIndex = 0
  /** Called with each event added (the store keeps the window in the backend). */
  onAdd: ((e: V2Event) => void) | undefined

  /** Replaces the window (the store was loaded from the backend). */
  restore(events: V2Event[]): void {
    this.events = events.slice(-HISTORY_CAPACITY)
    this.startIndex = this.events[0]?.node.modifiedIndex ?? 0
    this.lastIndex = this.events.at(-1)?.node.modifiedIndex ?? 0
  }

  add(e: V2Event): void {
    this.onAdd?.(e)
    this.events.push(e)
    if (this.events.length > HISTORY_CAPACITY) this.events.shift()
    this.lastIndex = e.node.modifiedIndex
    this.startIndex = this.events[0]!.node.modifiedIndex
  }

  /** The first event at or after `index` that concerns `key`; undefined when none happened yet. */
  scan(key: string, recursive: boolean, index: number): V2Event | undefined {
    if (index < this.startIndex) {
      throw new V2Error(V2ErrorCode.EventIndexCleared, `the requested history has been cleared [${this.startIndex}/${index}]`, 0)
    }
    if (index > this.lastIndex) return undefined
    const prefix = key.endsWith("/") ? key : `${key}/`
    for (let i = Math.max(0, index - this.startIndex); i < this.events.length; i++) {
      const e = this.events[i]!
      if (e.refresh) continue
      let ok = e.node.key === key || (recursive && e.node.key.startsWith(prefix))
      if ((e.action === "delete" || e.action === "expire") && e.prevNode?.dir === true) ok ||= key.startsWith(e.prevNode.key)
      if (ok) return e
    }
    return undefined
  }
}

export interface Watcher {
  readonly recursive: boolean
  readonly stream: boolean
  readonly sinceIndex: number
  /** The store index when the watch began (X-Etcd-Index of a watch). */
  readonly startIndex: number
  /** Stops the watcher (the client went away). */
  remove(): void
  /** Events as they come; `undefined` means the watcher was removed (overflow or recovery). */
  onEvent: ((e: V2Event | undefined) => void) | undefined
  /** Events delivered before onEvent was set. */
  readonly pending: V2Event[]
}

class HubWatcher implements Watcher {
  removed = false
  onEvent: ((e: V2Event | undefined) => void) | undefined
  readonly pending: V2Event[] = []
  constructor(
    readonly recursive: boolean,
    readonly stream: boolean,
    readonly sinceIndex: number,
    readonly startIndex: number,
    readonly removeFn: (w: HubWatcher) => void,
  ) {}

  deliver(e: V2Event): void {
    if (this.onEvent) this.onEvent(e)
    else if (this.pending.length < WATCHER_BUFFER) this.pending.push(e)
    else this.remove()
  }

  remove(): void {
    if (this.removed) return
    this.removed = true
    this.removeFn(this)
    this.onEvent?.(undefined)
  }
}

export class WatcherHub {
  readonly history = new EventHistory()
  private readonly watchers = new Map<string, Set<HubWatcher>>()
  private countValue = 0

  count(): number {
    return this.countValue
  }

  watch(options: { key: string; recursive: boolean; stream: boolean; sinceIndex: number; storeIndex: number }): Watcher {
    let event: V2Event | undefined
    try {
      event = this.history.scan(options.key, options.recursive, options.sinceIndex)
    } catch (e) {
      if (e instanceof V2Error) e.index = options.storeIndex
      throw e
    }
    const w = new HubWatcher(options.recursive, options.stream, options.sinceIndex, options.storeIndex, (x) => this.drop(options.key, x))
    if (event !== undefined) {
      const ne = cloneEvent(event)
      ne.etcdIndex = options.storeIndex
      w.pending.push(ne)
      if (!options.stream) {
        w.removed = true
        return w
      }
    }
    let set = this.watchers.get(options.key)
    if (!set) this.watchers.set(options.key, (set = new Set()))
    set.add(w)
    this.countValue++
    return w
  }

  /** Records an event and tells every watcher on its path or above it. */
  notify(e: V2Event): void {
    this.history.add(e)
    let current = ""
    const segments = e.node.key.split("/").filter((s) => s !== "")
    this.notifyWatchers(e, "/", false)
    for (const s of segments) {
      current += `/${s}`
      this.notifyWatchers(e, current, false)
    }
  }

  /** A refresh goes into the history only. */
  add(e: V2Event): void {
    this.history.add(e)
  }

  notifyWatchers(e: V2Event, nodePath: string, deleted: boolean): void {
    const set = this.watchers.get(nodePath)
    if (!set) return
    for (const w of [...set]) {
      const originalPath = e.node.key === nodePath
      if (!originalPath && isHidden(nodePath, e.node.key)) continue
      if (!((w.recursive || originalPath || deleted) && e.node.modifiedIndex >= w.sinceIndex)) continue
      if (!w.stream) {
        w.removed = true
        set.delete(w)
        this.countValue--
      }
      w.deliver(e)
    }
    if (set.size === 0) this.watchers.delete(nodePath)
  }

  /** Ends every watcher (the store was replaced by a snapshot: etcd's "watcher is cleared"). */
  clear(): void {
    for (const set of this.watchers.values()) for (const w of [...set]) w.remove()
    this.watchers.clear()
    this.countValue = 0
  }

  private drop(key: string, w: HubWatcher): void {
    const set = this.watchers.get(key)
    if (!set?.delete(w)) return
    this.countValue--
    assert(this.countValue >= 0, "negative v2 watcher count")
    if (set.size === 0) this.watchers.delete(key)
  }
}

/** Whether the key is hidden from a watcher at watchPath: a segment below it starts with "_". */
export function isHidden(watchPath: string, keyPath: string): boolean {
  if (watchPath.length > keyPath.length) return false
  const after = `/${keyPath.slice(watchPath.length)}`
  return after.includes("/_")
}
