// The plain data of Raft: what the WAL stores, what peers exchange and what
// the server applies. No behaviour here; wal/, snap/ and peer/ may import it.
//
// Terms and indexes are numbers (checked safe integers); node ids are the
// 64-bit member ids as bigint, 0n meaning "none".

export type NodeId = bigint
export const NONE: NodeId = 0n

export enum EntryType {
  Normal = 0,
  ConfChange = 1,
}

export interface Entry {
  term: number
  index: number
  type: EntryType
  /** Opaque to raft. Empty for the leader's no-op entry at the start of a term. */
  data: Uint8Array
}

export interface HardState {
  term: number
  vote: NodeId
  commit: number
}

export const EMPTY_HARD_STATE: HardState = Object.freeze({ term: 0, vote: NONE, commit: 0 })

export interface ConfState {
  voters: NodeId[]
  learners: NodeId[]
}

export interface SnapshotMetadata {
  index: number
  term: number
  confState: ConfState
}

export interface Snapshot {
  metadata: SnapshotMetadata
  /**
   * Opaque application payload. The server keeps it small (it does not carry
   * the backend db): the db travels beside the raft message on the peer
   * snapshot stream, so no whole db sits in memory.
   */
  data: Uint8Array
}

export enum ConfChangeType {
  AddNode = 0,
  RemoveNode = 1,
  UpdateNode = 2,
  AddLearnerNode = 3,
}

export interface ConfChange {
  type: ConfChangeType
  nodeId: NodeId
  /** Opaque to raft (the server puts the member's attributes here). */
  context: Uint8Array
}

export enum MessageType {
  Hup = 0, // local: campaign now
  Beat = 1, // local: send heartbeats
  Prop = 2, // proposal (local, or forwarded by a follower)
  App = 3,
  AppResp = 4,
  Vote = 5,
  VoteResp = 6,
  Snap = 7,
  Heartbeat = 8,
  HeartbeatResp = 9,
  Unreachable = 10, // local: a peer could not be reached
  SnapStatus = 11, // local: a snapshot send finished (reject = failed)
  CheckQuorum = 12, // local
  TransferLeader = 13,
  TimeoutNow = 14,
  ReadIndex = 15,
  ReadIndexResp = 16,
  PreVote = 17,
  PreVoteResp = 18,
}

export interface Message {
  type: MessageType
  from: NodeId
  to: NodeId
  term: number
  /** Term of the entry at `index` (App) or of the candidate's last entry (Vote). */
  logTerm: number
  index: number
  entries: Entry[]
  commit: number
  reject: boolean
  rejectHint: number
  snapshot?: Snapshot
  /** ReadIndex request context, echoed back; heartbeats carry it too. */
  context?: Uint8Array
}

/** A linearizable read became possible at `index` for the request `requestCtx`. */
export interface ReadState {
  index: number
  requestCtx: Uint8Array
}

export enum StateType {
  Follower = 0,
  Candidate = 1,
  Leader = 2,
  PreCandidate = 3,
}

export interface SoftState {
  lead: NodeId
  state: StateType
}
