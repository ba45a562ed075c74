// The v2 tree in the backend: one row per node, written inside the batch
// transaction of the entry that changed it (so the consistent index covers
// it), plus the store index in the meta table.

import type { Statement } from "bun:sqlite"
import type { Backend } from "../backend/backend"
import type { V2Event } from "./event"
import { HISTORY_CAPACITY } from "./watcher_hub"

export interface PersistedNode {
  path: string
  dir: boolean
  value: string
  createdIndex: number
  modifiedIndex: number
  expireMs: number
}

interface Row {
  path: string
  dir: number
  value: string
  created: number
  modified: number
  expire_ms: number
}

const INDEX_KEY = "v2_index"
const enc = new TextEncoder()
const dec = new TextDecoder()

export class V2Table {
  private readonly upsertStmt: Statement<unknown, [string, number, string, number, number, number]>
  private readonly deleteStmt: Statement<unknown, [string, string, string]>
  private readonly addEventStmt: Statement<unknown, [number, string]>
  private readonly trimEventsStmt: Statement<unknown, [number]>

  constructor(readonly backend: Backend) {
    backend.db.exec(
      "CREATE TABLE IF NOT EXISTS v2_node (path TEXT PRIMARY KEY, dir INTEGER NOT NULL, value TEXT NOT NULL, created INTEGER NOT NULL, modified INTEGER NOT NULL, expire_ms INTEGER NOT NULL) WITHOUT ROWID",
    )
    this.upsertStmt = backend.db.query(
      "INSERT INTO v2_node (path, dir, value, created, modified, expire_ms) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET dir = excluded.dir, value = excluded.value, created = excluded.created, modified = excluded.modified, expire_ms = excluded.expire_ms",
    )
    // "/" + 1 sorts right after every "p/..." child: "0" is the character after "/".
    this.deleteStmt = backend.db.query("DELETE FROM v2_node WHERE path = ? OR (path >= ? AND path < ?)")
    // The window of the last 1000 events, so that waitIndex answers the same after a restart or a snapshot (etcd's snapshot carries it too).
    backend.db.exec("CREATE TABLE IF NOT EXISTS v2_event (idx INTEGER PRIMARY KEY, event TEXT NOT NULL)")
    this.addEventStmt = backend.db.query("INSERT OR REPLACE INTO v2_event (idx, event) VALUES (?, ?)")
    this.trimEventsStmt = backend.db.query("DELETE FROM v2_event WHERE idx <= ?")
  }

  addEvent(e: V2Event): void {
    this.backend.begin()
    const index = e.node.modifiedIndex
    this.addEventStmt.run(index, JSON.stringify(e))
    if (index > HISTORY_CAPACITY) this.trimEventsStmt.run(index - HISTORY_CAPACITY)
  }

  load(): { index: number; nodes: PersistedNode[]; events: V2Event[] } {
    const raw = this.backend.getMeta(INDEX_KEY)
    const index = raw ? Number(dec.decode(raw)) : 0
    const events = this.backend.db
      .query<{ event: string }, []>("SELECT event FROM v2_event ORDER BY idx")
      .all()
      .map((r) => JSON.parse(r.event) as V2Event)
    const rows = this.backend.db.query<Row, []>("SELECT path, dir, value, created, modified, expire_ms FROM v2_node").all()
    return {
      index,
      events,
      nodes: rows.map((r) => ({ path: r.path, dir: r.dir === 1, value: r.value, createdIndex: r.created, modifiedIndex: r.modified, expireMs: r.expire_ms })),
    }
  }

  upsert(n: PersistedNode, storeIndex: number): void {
    this.backend.begin()
    this.upsertStmt.run(n.path, n.dir ? 1 : 0, n.value, n.createdIndex, n.modifiedIndex, n.expireMs)
    this.setIndex(storeIndex)
  }

  removeTree(path: string): void {
    this.backend.begin()
    this.deleteStmt.run(path, `${path}/`, `${path}0`)
  }

  setIndex(storeIndex: number): void {
    this.backend.begin()
    this.backend.setMeta(INDEX_KEY, enc.encode(String(storeIndex)))
  }
}
