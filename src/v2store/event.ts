// The v2 store's answers: an event with the node it concerns (etcd's
// v2store.Event and NodeExtern). toJson() writes the fields in etcd's order and
// leaves out the empty ones, as Go's encoding/json does with omitempty.

export interface NodeExtern {
  key: string
  dir: boolean
  value: string | undefined
  nodes: NodeExtern[] | undefined
  /** Wall-clock ms since the epoch; 0 for a permanent node. */
  expireMs: number
  ttl: number
  modifiedIndex: number
  createdIndex: number
}

export type V2Action = "get" | "create" | "set" | "update" | "delete" | "compareAndSwap" | "compareAndDelete" | "expire"

export interface V2Event {
  action: V2Action
  node: NodeExtern
  prevNode: NodeExtern | undefined
  /** The store's index when the event was made (X-Etcd-Index). */
  etcdIndex: number
  /** A TTL refresh: kept in the history, never sent to watchers. */
  refresh: boolean
}

export function newNodeExtern(key: string, modifiedIndex: number, createdIndex: number): NodeExtern {
  return { key, dir: false, value: undefined, nodes: undefined, expireMs: 0, ttl: 0, modifiedIndex, createdIndex }
}

export function newEvent(action: V2Action, key: string, modifiedIndex: number, createdIndex: number): V2Event {
  return { action, node: newNodeExtern(key, modifiedIndex, createdIndex), prevNode: undefined, etcdIndex: 0, refresh: false }
}

/** Is it a creation (201 Created): create, or a set that replaced nothing. */
export function isCreated(e: V2Event): boolean {
  return e.action === "create" || (e.action === "set" && e.prevNode === undefined)
}

/** Go's time.Time JSON (RFC 3339, UTC; milliseconds here). */
export function formatExpiration(ms: number): string {
  return new Date(ms).toISOString()
}

export type NodeJson = Record<string, unknown>

export function nodeToJson(n: NodeExtern): NodeJson {
  const j: NodeJson = {}
  // The root of the keyspace has no key in etcd's answers ("/1" trimmed to "").
  if (n.key !== "" && n.key !== "/") j.key = n.key
  if (n.dir) j.dir = true
  if (n.value !== undefined) j.value = n.value
  if (n.nodes !== undefined && n.nodes.length > 0) j.nodes = n.nodes.map(nodeToJson)
  if (n.expireMs !== 0) j.expiration = formatExpiration(n.expireMs)
  if (n.ttl !== 0) j.ttl = n.ttl
  if (n.modifiedIndex !== 0) j.modifiedIndex = n.modifiedIndex
  if (n.createdIndex !== 0) j.createdIndex = n.createdIndex
  return j
}

export function eventToJson(e: V2Event, options: { noValue?: boolean } = {}): NodeJson {
  const j: NodeJson = { action: e.action }
  if (options.noValue === true) return j
  j.node = nodeToJson(e.node)
  if (e.prevNode !== undefined) j.prevNode = nodeToJson(e.prevNode)
  return j
}

export function cloneEvent(e: V2Event): V2Event {
  return { ...e }
}
