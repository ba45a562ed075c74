// Alarms raised on members (NOSPACE when the backend passes its quota,
// CORRUPT when hashes disagree). Activated and deactivated through raft so
// every member agrees; NOSPACE is sticky until `alarm disarm`, as in etcd.

import type { Statement } from "bun:sqlite"
import type { Backend } from "../backend/backend"
import { AlarmType, type AlarmMember } from "../pb"
import type { NodeId } from "../raft/types"

export class Alarms {
  private readonly backend: Backend
  private active: AlarmMember[] = []
  private readonly insertStmt: Statement<unknown, [string, number]>
  private readonly deleteStmt: Statement<unknown, [string, number]>

  constructor(backend: Backend) {
    this.backend = backend
    backend.db.exec("CREATE TABLE IF NOT EXISTS alarms (member_id TEXT NOT NULL, alarm INTEGER NOT NULL, PRIMARY KEY (member_id, alarm)) WITHOUT ROWID")
    this.insertStmt = backend.db.query("INSERT OR IGNORE INTO alarms (member_id, alarm) VALUES (?, ?)")
    this.deleteStmt = backend.db.query("DELETE FROM alarms WHERE member_id = ? AND alarm = ?")
    this.reload()
  }

  reload(): void {
    this.active = this.backend.db
      .query<{ member_id: string; alarm: number }, []>("SELECT member_id, alarm FROM alarms ORDER BY member_id, alarm")
      .all()
      .map((r) => ({ memberID: BigInt(`0x${r.member_id}`), alarm: r.alarm }))
  }

  list(type: AlarmType = AlarmType.NONE): AlarmMember[] {
    return this.active.filter((a) => type === AlarmType.NONE || a.alarm === type).map((a) => ({ ...a }))
  }

  has(type: AlarmType): boolean {
    return this.active.some((a) => a.alarm === type)
  }

  /** Returns the alarm if it was newly raised, undefined if it already was. */
  activate(memberId: NodeId, type: AlarmType): AlarmMember | undefined {
    if (this.active.some((a) => a.memberID === memberId && a.alarm === type)) return undefined
    this.backend.begin()
    this.insertStmt.run(memberId.toString(16), type)
    this.backend.noteWrites()
    this.reload()
    return { memberID: memberId, alarm: type }
  }

  /** Returns the alarm if it was active. */
  deactivate(memberId: NodeId, type: AlarmType): AlarmMember | undefined {
    if (!this.active.some((a) => a.memberID === memberId && a.alarm === type)) return undefined
    this.backend.begin()
    this.deleteStmt.run(memberId.toString(16), type)
    this.backend.noteWrites()
    this.reload()
    return { memberID: memberId, alarm: type }
  }

  /** etcd's Status.errors strings: "memberID:<decimal> alarm:NOSPACE". */
  statusErrors(): string[] {
    return this.active.map((a) => `memberID:${a.memberID} alarm:${AlarmType[a.alarm]}`)
  }
}
