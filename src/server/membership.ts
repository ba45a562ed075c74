// The cluster's members as applied from the raft log: who they are, their
// peer and client URLs, learner or voter, and the members removed for good
// (a removed id may never come back). Lives in the backend so that a restart
// and a snapshot carry it.

import type { Statement } from "bun:sqlite"
import type { Backend } from "../backend/backend"
import { TskvError } from "../lib/errors"
import type { NodeId } from "../raft/types"

export interface Member {
  id: NodeId
  /** Empty until the member has started and published its attributes. */
  name: string
  peerUrls: string[]
  clientUrls: string[]
  isLearner: boolean
}

interface MemberRow {
  id: string
  name: string
  peer_urls: string
  client_urls: string
  is_learner: number
}

const CLUSTER_ID_KEY = "cluster_id"

export class Membership {
  private readonly backend: Backend
  private readonly members = new Map<NodeId, Member>()
  private readonly removed = new Set<NodeId>()
  private readonly upsertStmt: Statement<unknown, [string, string, string, string, number]>
  private readonly deleteStmt: Statement<unknown, [string]>
  private readonly removedStmt: Statement<unknown, [string]>

  constructor(backend: Backend) {
    this.backend = backend
    const db = backend.db
    db.exec(`CREATE TABLE IF NOT EXISTS members (id TEXT PRIMARY KEY, name TEXT NOT NULL, peer_urls TEXT NOT NULL,
      client_urls TEXT NOT NULL, is_learner INTEGER NOT NULL) WITHOUT ROWID`)
    db.exec("CREATE TABLE IF NOT EXISTS members_removed (id TEXT PRIMARY KEY) WITHOUT ROWID")
    this.upsertStmt = db.query(
      `INSERT INTO members (id, name, peer_urls, client_urls, is_learner) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT(id) DO UPDATE SET name = excluded.name, peer_urls = excluded.peer_urls,
       client_urls = excluded.client_urls, is_learner = excluded.is_learner`,
    )
    this.deleteStmt = db.query("DELETE FROM members WHERE id = ?")
    this.removedStmt = db.query("INSERT OR IGNORE INTO members_removed (id) VALUES (?)")
    this.reload()
  }

  /** Re-reads everything from the backend (after a snapshot replaced the db). */
  reload(): void {
    this.members.clear()
    this.removed.clear()
    for (const row of this.backend.db.query<MemberRow, []>("SELECT * FROM members").all()) {
      const id = BigInt(`0x${row.id}`)
      this.members.set(id, {
        id,
        name: row.name,
        peerUrls: JSON.parse(row.peer_urls) as string[],
        clientUrls: JSON.parse(row.client_urls) as string[],
        isLearner: row.is_learner === 1,
      })
    }
    for (const row of this.backend.db.query<{ id: string }, []>("SELECT id FROM members_removed").all()) {
      this.removed.add(BigInt(`0x${row.id}`))
    }
  }

  clusterId(): NodeId {
    const raw = this.backend.getMeta(CLUSTER_ID_KEY)
    return raw ? Buffer.from(raw).readBigUInt64BE(0) : 0n
  }

  setClusterId(id: NodeId): void {
    const buf = Buffer.alloc(8)
    buf.writeBigUInt64BE(id)
    this.backend.setMeta(CLUSTER_ID_KEY, buf)
  }

  /** Members sorted by id. */
  list(): Member[] {
    return [...this.members.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  }

  get(id: NodeId): Member | undefined {
    return this.members.get(id)
  }

  has(id: NodeId): boolean {
    return this.members.has(id)
  }

  isRemoved(id: NodeId): boolean {
    return this.removed.has(id)
  }

  voters(): Member[] {
    return this.list().filter((m) => !m.isLearner)
  }

  learners(): Member[] {
    return this.list().filter((m) => m.isLearner)
  }

  /** The member whose peer URLs include `url`, if any. */
  byPeerUrl(url: string): Member | undefined {
    for (const m of this.members.values()) if (m.peerUrls.includes(url)) return m
    return undefined
  }

  add(member: Member): void {
    if (this.removed.has(member.id)) throw new TskvError("memberRemoved")
    this.members.set(member.id, { ...member })
    this.persist(member)
  }

  remove(id: NodeId): void {
    this.members.delete(id)
    this.removed.add(id)
    this.backend.begin()
    this.deleteStmt.run(hex(id))
    this.removedStmt.run(hex(id))
    this.backend.noteWrites(2)
  }

  updatePeerUrls(id: NodeId, peerUrls: string[]): void {
    const m = this.members.get(id)
    if (!m) return
    m.peerUrls = [...peerUrls]
    this.persist(m)
  }

  promote(id: NodeId): void {
    const m = this.members.get(id)
    if (!m) return
    m.isLearner = false
    this.persist(m)
  }

  setAttributes(id: NodeId, name: string, clientUrls: string[]): void {
    const m = this.members.get(id)
    if (!m) return
    m.name = name
    m.clientUrls = [...clientUrls]
    this.persist(m)
  }

  private persist(m: Member): void {
    this.backend.begin()
    this.upsertStmt.run(hex(m.id), m.name, JSON.stringify(m.peerUrls), JSON.stringify(m.clientUrls), m.isLearner ? 1 : 0)
    this.backend.noteWrites()
  }
}

function hex(id: NodeId): string {
  return id.toString(16)
}
