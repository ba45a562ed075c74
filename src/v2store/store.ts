// etcd's v2 store: a tree of nodes (directories and files), each with a
// created and a modified index, an optional expiry time, and "_" names hidden
// from listings. Every change gets the next store index and an event, which
// goes into the watcher hub's history. Pure apart from the wall clock it is
// given, which only turns expiry times into the "ttl" of answers: expiry
// itself happens when the member applies a SYNC with the leader's time
// (deleteExpired), so every member removes the same keys at the same index.
//
// The tree is kept in the backend (V2Table) when one is given, so that it
// survives restarts and travels in raft snapshots with the rest of the db.

import { V2Auth } from "./auth"
import { V2Error, V2ErrorCode } from "./errors"
import { newEvent, type NodeExtern, newNodeExtern, type V2Event } from "./event"
import { V2Stats } from "./stats"
import type { PersistedNode, V2Table } from "./v2_table"
import { type Watcher, WatcherHub } from "./watcher_hub"

/** A node of the tree (expireMs: wall-clock ms since the epoch; 0 is permanent). */
export interface V2Node extends PersistedNode {
  children: Map<string, V2Node> | undefined
  parent: V2Node | undefined
}

/** What a write may say about the node's expiry. */
export interface TtlOptions {
  /** Absolute wall-clock ms; 0 makes the node permanent. */
  expireMs: number
  refresh: boolean
}

const PERMANENT: TtlOptions = { expireMs: 0, refresh: false }

/** Go's path.Clean(path.Join("/", p)). */
export function cleanPath(p: string): string {
  const out: string[] = []
  for (const part of p.split("/")) {
    if (part === "" || part === ".") continue
    if (part === "..") out.pop()
    else out.push(part)
  }
  return `/${out.join("/")}`
}

function splitPath(p: string): [string, string] {
  const i = p.lastIndexOf("/")
  return [p.slice(0, i + 1), p.slice(i + 1)]
}

export class V2Store {
  private root: V2Node = newDir("/", 0, undefined, 0)
  private index = 0
  private readonly ttlNodes = new Set<V2Node>()
  readonly hub = new WatcherHub()
  readonly stats = new V2Stats()
  readonly auth: V2Auth

  constructor(
    private readonly wallNow: () => number,
    private readonly table?: V2Table,
  ) {
    this.auth = new V2Auth(table?.backend)
    if (table) {
      this.load(table.load())
      this.hub.history.onAdd = (e) => table.addEvent(e)
    }
  }

  currentIndex(): number {
    return this.index
  }

  hasTtlKeys(): boolean {
    return this.ttlNodes.size > 0
  }

  /** Rebuilds the tree from the backend (after a snapshot replaced the db); watchers are cleared. */
  reload(): void {
    if (!this.table) return
    this.hub.clear()
    this.auth.reload()
    this.load(this.table.load())
  }

  private load(persisted: { index: number; nodes: PersistedNode[]; events: V2Event[] }): void {
    this.hub.history.restore(persisted.events)
    this.root = newDir("/", 0, undefined, 0)
    this.ttlNodes.clear()
    this.index = persisted.index
    // Parents sort before their children.
    for (const p of persisted.nodes.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
      if (p.path === "/") continue
      const [dirName, name] = splitPath(p.path)
      const parent = this.lookup(cleanPath(dirName))
      if (!parent?.dir) continue
      const n: V2Node = p.dir ? newDir(p.path, p.createdIndex, parent, p.expireMs) : newFile(p.path, p.value, p.createdIndex, parent, p.expireMs)
      n.modifiedIndex = p.modifiedIndex
      parent.children!.set(name, n)
      if (n.expireMs !== 0) this.ttlNodes.add(n)
    }
  }

  private lookup(p: string): V2Node | undefined {
    let n: V2Node | undefined = this.root
    for (const part of p.split("/")) {
      if (part === "") continue
      n = n?.children?.get(part)
    }
    return n
  }

  // ---- reads

  get(nodePath: string, recursive: boolean, sorted: boolean): V2Event {
    try {
      const n = this.internalGet(nodePath)
      const e = newEvent("get", cleanPath(nodePath), n.modifiedIndex, n.createdIndex)
      e.etcdIndex = this.index
      this.loadInto(e.node, n, recursive, sorted)
      this.stats.getsSuccess++
      return e
    } catch (err) {
      this.stats.getsFail++
      throw err
    }
  }

  watch(key: string, recursive: boolean, stream: boolean, sinceIndex: number): Watcher {
    const since = sinceIndex === 0 ? this.index + 1 : sinceIndex
    return this.hub.watch({ key: cleanPath(key), recursive, stream, sinceIndex: since, storeIndex: this.index })
  }

  // ---- writes (apply only)

  set(nodePath: string, dir: boolean, value: string, ttl: TtlOptions = PERMANENT): V2Event {
    let prev: V2Node | undefined
    try {
      prev = this.internalGet(nodePath)
    } catch (e) {
      if (!(e instanceof V2Error && e.errorCode === V2ErrorCode.KeyNotFound)) return this.fail("setsFail", e)
      if (ttl.refresh) return this.fail("setsFail", e)
    }
    if (ttl.refresh && prev) value = prev.value
    const prevRepr = prev ? this.repr(prev, false, false) : undefined
    const e = this.track("setsSuccess", "setsFail", () => this.internalCreate({ nodePath, dir, value, unique: false, replace: true, expireMs: ttl.expireMs, action: "set" }))
    e.etcdIndex = this.index
    if (prevRepr) e.prevNode = prevRepr
    this.emit(e, ttl.refresh)
    return e
  }

  create(nodePath: string, dir: boolean, value: string, unique: boolean, ttl: TtlOptions = PERMANENT): V2Event {
    const e = this.track("createSuccess", "createFail", () => this.internalCreate({ nodePath, dir, value, unique, replace: false, expireMs: ttl.expireMs, action: "create" }))
    e.etcdIndex = this.index
    this.hub.notify(e)
    return e
  }

  update(nodePath: string, newValue: string, ttl: TtlOptions = PERMANENT): V2Event {
    return this.track("updateSuccess", "updateFail", () => {
      const p = cleanPath(nodePath)
      if (p === "/") throw new V2Error(V2ErrorCode.RootReadOnly, "/", this.index)
      const next = this.index + 1
      const n = this.internalGet(p)
      if (n.dir && newValue.length !== 0) throw new V2Error(V2ErrorCode.NotFile, p, this.index)
      const value = ttl.refresh ? n.value : newValue
      const e = newEvent("update", p, next, n.createdIndex)
      e.etcdIndex = next
      e.prevNode = this.repr(n, false, false)
      // etcd's node.Write refuses a directory: its value and modified index stay.
      if (!n.dir) {
        n.value = value
        n.modifiedIndex = next
        e.node.value = value
      } else e.node.dir = true
      this.setExpiry(n, ttl.expireMs)
      this.fillTtl(e.node, n)
      this.index = next
      this.persist(n)
      this.emit(e, ttl.refresh)
      return e
    })
  }

  compareAndSwap(options: { nodePath: string; prevValue: string; prevIndex: number; value: string; ttl?: TtlOptions }): V2Event {
    return this.track("compareAndSwapSuccess", "compareAndSwapFail", () => {
      const p = cleanPath(options.nodePath)
      const ttl = options.ttl ?? PERMANENT
      if (p === "/") throw new V2Error(V2ErrorCode.RootReadOnly, "/", this.index)
      const n = this.internalGet(p)
      if (n.dir) throw new V2Error(V2ErrorCode.NotFile, p, this.index)
      this.compare(n, options.prevValue, options.prevIndex)
      const value = ttl.refresh ? n.value : options.value
      this.index++
      const e = newEvent("compareAndSwap", p, this.index, n.createdIndex)
      e.etcdIndex = this.index
      e.prevNode = this.repr(n, false, false)
      n.value = value
      n.modifiedIndex = this.index
      this.setExpiry(n, ttl.expireMs)
      e.node.value = value
      this.fillTtl(e.node, n)
      this.persist(n)
      this.emit(e, ttl.refresh)
      return e
    })
  }

  delete(nodePath: string, dir: boolean, recursive: boolean): V2Event {
    return this.track("deleteSuccess", "deleteFail", () => {
      const p = cleanPath(nodePath)
      if (p === "/") throw new V2Error(V2ErrorCode.RootReadOnly, "/", this.index)
      const n = this.internalGet(p)
      const next = this.index + 1
      const e = newEvent("delete", p, next, n.createdIndex)
      e.etcdIndex = next
      e.prevNode = this.repr(n, false, false)
      if (n.dir) e.node.dir = true
      this.remove(n, recursive || dir, recursive, e)
      this.index = next
      this.table?.setIndex(this.index)
      this.hub.notify(e)
      return e
    })
  }

  compareAndDelete(nodePath: string, prevValue: string, prevIndex: number): V2Event {
    return this.track("compareAndDeleteSuccess", "compareAndDeleteFail", () => {
      const p = cleanPath(nodePath)
      const n = this.internalGet(p)
      if (n.dir) throw new V2Error(V2ErrorCode.NotFile, p, this.index)
      this.compare(n, prevValue, prevIndex)
      this.index++
      const e = newEvent("compareAndDelete", p, this.index, n.createdIndex)
      e.etcdIndex = this.index
      e.prevNode = this.repr(n, false, false)
      this.remove(n, false, false, e)
      this.table?.setIndex(this.index)
      this.hub.notify(e)
      return e
    })
  }

  /**
   * etcd 3.4 also keeps the membership (under "/0") and v2 auth (under "/2")
   * in its v2 store, out of the clients' reach: each such write takes a store
   * index and a place in the event history. tskv keeps them elsewhere and
   * records only that.
   */
  recordInternalWrites(count: number): void {
    for (let i = 0; i < count; i++) {
      this.index++
      const e = newEvent("set", `\u0000/members`, this.index, this.index)
      e.etcdIndex = this.index
      this.hub.add(e)
    }
    this.table?.setIndex(this.index)
  }

  /** Removes every node whose expiry is at or before `cutoffMs`, oldest first, one "expire" event each. */
  deleteExpired(cutoffMs: number): V2Event[] {
    const events: V2Event[] = []
    for (;;) {
      let top: V2Node | undefined
      for (const n of this.ttlNodes) {
        if (!top || n.expireMs < top.expireMs || (n.expireMs === top.expireMs && n.path < top.path)) top = n
      }
      if (!top || top.expireMs > cutoffMs) break
      this.index++
      const e = newEvent("expire", top.path, this.index, top.createdIndex)
      e.etcdIndex = this.index
      e.prevNode = this.repr(top, false, false)
      if (top.dir) e.node.dir = true
      this.remove(top, true, true, e)
      this.table?.setIndex(this.index)
      this.stats.expireCount++
      this.hub.notify(e)
      events.push(e)
    }
    return events
  }

  // ---- internals

  private track<T>(ok: keyof V2Stats, bad: keyof V2Stats, f: () => T): T {
    try {
      const r = f()
      this.stats[ok]++
      return r
    } catch (e) {
      return this.fail(bad, e)
    }
  }

  private fail(bad: keyof V2Stats, e: unknown): never {
    if (e instanceof V2Error) this.stats[bad]++
    throw e
  }

  private emit(e: V2Event, refresh: boolean): void {
    if (refresh) {
      e.refresh = true
      this.hub.add(e)
    } else this.hub.notify(e)
  }

  private compare(n: V2Node, prevValue: string, prevIndex: number): void {
    const indexMatch = prevIndex === 0 || n.modifiedIndex === prevIndex
    const valueMatch = prevValue === "" || n.value === prevValue
    if (indexMatch && valueMatch) return
    let cause: string
    if (indexMatch) cause = `[${prevValue} != ${n.value}]`
    else if (valueMatch) cause = `[${prevIndex} != ${n.modifiedIndex}]`
    else cause = `[${prevValue} != ${n.value}] [${prevIndex} != ${n.modifiedIndex}]`
    throw new V2Error(V2ErrorCode.TestFailed, cause, this.index)
  }

  private internalGet(nodePath: string): V2Node {
    const p = cleanPath(nodePath)
    let n = this.root
    for (const part of p.split("/")) {
      if (part === "") continue
      if (!n.dir) throw new V2Error(V2ErrorCode.NotDir, n.path, this.index)
      const child = n.children!.get(part)
      if (!child) throw new V2Error(V2ErrorCode.KeyNotFound, n.path === "/" ? `/${part}` : `${n.path}/${part}`, this.index)
      n = child
    }
    return n
  }

  private internalCreate(o: { nodePath: string; dir: boolean; value: string; unique: boolean; replace: boolean; expireMs: number; action: "set" | "create" }): V2Event {
    const current = this.index
    const next = current + 1
    let nodePath = o.nodePath
    if (o.unique) nodePath += `/${String(next).padStart(20, "0")}`
    nodePath = cleanPath(nodePath)
    if (nodePath === "/") throw new V2Error(V2ErrorCode.RootReadOnly, "/", current)
    const [dirName, nodeName] = splitPath(nodePath)
    const d = this.walkCreatingDirs(dirName, next)
    const e = newEvent(o.action, nodePath, next, next)
    const existing = d.children!.get(nodeName)
    if (existing) {
      if (!o.replace) throw new V2Error(V2ErrorCode.NodeExist, nodePath, current)
      if (existing.dir) throw new V2Error(V2ErrorCode.NotFile, nodePath, current)
      e.prevNode = this.repr(existing, false, false)
      this.remove(existing, false, false, undefined)
    }
    const n = o.dir ? newDir(nodePath, next, d, o.expireMs) : newFile(nodePath, o.value, next, d, o.expireMs)
    if (o.dir) e.node.dir = true
    else e.node.value = o.value
    d.children!.set(nodeName, n)
    if (n.expireMs !== 0) {
      this.ttlNodes.add(n)
      this.fillTtl(e.node, n)
    }
    this.index = next
    this.persist(n)
    return e
  }

  /** etcd's walk with checkDir: missing directories are made (permanent, at the next index). */
  private walkCreatingDirs(dirName: string, next: number): V2Node {
    let n = this.root
    const made: V2Node[] = []
    for (const part of dirName.split("/")) {
      if (part === "") continue
      const child = n.children!.get(part)
      if (child) {
        if (!child.dir) throw new V2Error(V2ErrorCode.NotDir, child.path, this.index)
        n = child
        continue
      }
      const d = newDir(n.path === "/" ? `/${part}` : `${n.path}/${part}`, next, n, 0)
      n.children!.set(part, d)
      made.push(d)
      n = d
    }
    for (const d of made) this.persist(d)
    return n
  }

  private remove(n: V2Node, dir: boolean, recursive: boolean, e: V2Event | undefined): void {
    if (n.dir) {
      if (!dir) throw new V2Error(V2ErrorCode.NotFile, n.path, this.index)
      if (n.children!.size !== 0 && !recursive) throw new V2Error(V2ErrorCode.DirNotEmpty, n.path, this.index)
    }
    this.detach(n, e)
    this.table?.removeTree(n.path)
  }

  private detach(n: V2Node, e: V2Event | undefined): void {
    if (n.children) for (const c of [...n.children.values()]) this.detach(c, e)
    const name = splitPath(n.path)[1]
    if (n.parent?.children?.get(name) === n) n.parent.children.delete(name)
    this.ttlNodes.delete(n)
    if (e) this.hub.notifyWatchers(e, n.path, true)
  }

  private setExpiry(n: V2Node, expireMs: number): void {
    n.expireMs = expireMs
    if (expireMs === 0) this.ttlNodes.delete(n)
    else this.ttlNodes.add(n)
  }

  private persist(n: V2Node): void {
    this.table?.upsert({ path: n.path, dir: n.dir, value: n.value, createdIndex: n.createdIndex, modifiedIndex: n.modifiedIndex, expireMs: n.expireMs }, this.index)
  }

  private fillTtl(x: NodeExtern, n: V2Node): void {
    x.expireMs = n.expireMs
    x.ttl = n.expireMs === 0 ? 0 : ttlSeconds(n.expireMs - this.wallNow())
  }

  private repr(n: V2Node, recursive: boolean, sorted: boolean): NodeExtern {
    const x = newNodeExtern(n.path, n.modifiedIndex, n.createdIndex)
    if (n.dir) {
      x.dir = true
      if (recursive) x.nodes = this.listChildren(n, recursive, sorted)
    } else x.value = n.value
    this.fillTtl(x, n)
    return x
  }

  private loadInto(x: NodeExtern, n: V2Node, recursive: boolean, sorted: boolean): void {
    if (n.dir) {
      x.dir = true
      x.nodes = this.listChildren(n, recursive, sorted)
    } else x.value = n.value
    this.fillTtl(x, n)
  }

  private listChildren(n: V2Node, recursive: boolean, sorted: boolean): NodeExtern[] {
    const out: NodeExtern[] = []
    for (const [name, c] of n.children!) if (!name.startsWith("_")) out.push(this.repr(c, recursive, sorted))
    if (sorted) out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    return out
  }
}

/** etcd: ceil((expire - now) / 1 s), as Go computes it (truncating division, +1 on a positive remainder). */
export function ttlSeconds(remainingMs: number): number {
  const whole = Math.trunc(remainingMs / 1000)
  return remainingMs % 1000 > 0 ? whole + 1 : whole
}

function newDir(path: string, index: number, parent: V2Node | undefined, expireMs: number): V2Node {
  return { path, dir: true, value: "", createdIndex: index, modifiedIndex: index, expireMs, children: new Map(), parent }
}

function newFile(path: string, value: string, index: number, parent: V2Node, expireMs: number): V2Node {
  return { path, dir: false, value, createdIndex: index, modifiedIndex: index, expireMs, children: undefined, parent }
}
