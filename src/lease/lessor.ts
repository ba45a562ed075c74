// The lessor: leases, their attached keys and their expiry, as etcd's
// server/lease keeps them. Grant, revoke, checkpoint, attach and detach are
// applied from raft entries on every member and persisted in the backend;
// renew, expiry and the checkpoint schedule belong to the primary (the raft
// leader) only, which proposes what `expired()` and `dueCheckpoints()` return.
// Time comes from the injected Clock; nothing here reads a timer.

import type { Backend } from "../backend/backend"
import { assert } from "../lib/assert"
import { keyString as keyId } from "../lib/bytes"
import type { Clock } from "../lib/clock"
import { TskvError } from "../lib/errors"
import { TimeQueue } from "./time_queue"

/** etcd's MaxLeaseTTL, in seconds. */
export const MAX_LEASE_TTL_SECONDS = 9_000_000_000
/** etcd checks for expired leases every 500 ms; the server calls expired() as often. */
export const EXPIRY_CHECK_INTERVAL_MS = 500
const DEFAULT_CHECKPOINT_INTERVAL_MS = 5 * 60_000
const DEFAULT_REVOKE_RATE_PER_SECOND = 1000
const DEFAULT_EXPIRED_RETRY_MS = 3000
const MAX_INT63 = (1n << 63n) - 1n

/** etcd's minimum TTL: ceil(1.5 × election timeout) seconds (2 s for the default 1000 ms). */
export function minLeaseTtlSeconds(electionTimeoutMs: number): number {
  assert(Number.isSafeInteger(electionTimeoutMs) && electionTimeoutMs > 0, "election timeout must be positive")
  return Math.ceil((electionTimeoutMs * 3) / 2 / 1000)
}

/**
 * A random positive int63 lease id, drawn by the API layer before proposing a
 * grant whose ID is 0 (the apply never sees ID 0).
 */
export function newLeaseId(randomBytes: (n: number) => Uint8Array = (n) => crypto.getRandomValues(new Uint8Array(n))): bigint {
  for (;;) {
    const bytes = randomBytes(8)
    let id = 0n
    for (const b of bytes) id = (id << 8n) | BigInt(b)
    id &= MAX_INT63
    if (id !== 0n) return id
  }
}

/** A LeaseCheckpoint of etcdserverpb (LeaseCheckpointRequest.checkpoints[]). */
export interface LeaseCheckpoint {
  ID: bigint
  remainingTTL: number
}

export interface LeaseGrantResult {
  ID: bigint
  /** The TTL granted, after raising it to the minimum. */
  TTL: number
}

export interface LeaseTimeToLiveResult {
  ID: bigint
  /** Remaining seconds (truncated; 0, -1, ... once expired and not yet revoked); -1 when the lease is unknown. */
  TTL: number
  grantedTTL: number
  keys: Uint8Array[]
}

export interface LessorOptions {
  backend: Backend
  clock: Clock
  /** Deletes the keys of a revoked lease in the current mvcc txn (one revision). */
  deleteKeys: (keys: Uint8Array[]) => void
  /** minLeaseTtlSeconds(electionTimeoutMs). */
  minTtlSeconds: number
  /** How often the primary checkpoints remaining TTLs; null turns checkpoints off. */
  checkpointIntervalMs?: number | null
  revokeRatePerSecond?: number
  /** When an expired lease returned by expired() is offered again if still not revoked. */
  expiredRetryMs?: number
}

interface Lease {
  readonly id: bigint
  ttlSeconds: number
  /** Last checkpointed remaining TTL; 0 means "use the full TTL". */
  remainingTtlSeconds: number
  /** Monotonic ms; Infinity while this member is not the primary. */
  expiryMs: number
  /** Time of this lease's live entry in the expiry queue. */
  queuedMs: number
  /** Time of this lease's live entry in the checkpoint schedule. */
  checkpointMs: number
  /** latin1 of the key -> key. */
  readonly keys: Map<string, Uint8Array>
}


export class Lessor {
  private backend: Backend
  private readonly clock: Clock
  private readonly deleteKeysCallback: (keys: Uint8Array[]) => void
  private readonly minTtlSeconds: number
  private readonly checkpointIntervalMs: number | null
  private readonly revokeRatePerSecond: number
  private readonly expiredRetryMs: number
  private readonly leaseMap = new Map<bigint, Lease>()
  /** latin1 of the key -> lease id. */
  private readonly keyLease = new Map<string, bigint>()
  private readonly expiryQueue = new TimeQueue()
  private readonly checkpointQueue = new TimeQueue()
  /** Checkpoints that clear a remaining TTL after a renew, proposed before scheduled ones. */
  private pendingClears: LeaseCheckpoint[] = []
  private primary = false
  private revokeTokens = 0
  private revokeTokensAtMs = 0

  constructor(options: LessorOptions) {
    assert(Number.isSafeInteger(options.minTtlSeconds) && options.minTtlSeconds >= 0, "minTtlSeconds must be a non-negative integer")
    this.backend = options.backend
    this.clock = options.clock
    this.deleteKeysCallback = options.deleteKeys
    this.minTtlSeconds = options.minTtlSeconds
    this.checkpointIntervalMs = options.checkpointIntervalMs === undefined ? DEFAULT_CHECKPOINT_INTERVAL_MS : options.checkpointIntervalMs
    this.revokeRatePerSecond = options.revokeRatePerSecond ?? DEFAULT_REVOKE_RATE_PER_SECOND
    this.expiredRetryMs = options.expiredRetryMs ?? DEFAULT_EXPIRED_RETRY_MS
    assert(this.revokeRatePerSecond > 0, "revoke rate must be positive")
    this.reload()
  }

  /**
   * Re-reads every lease and attached key from the backend: at start, and
   * after a snapshot install (pass the new backend if it was replaced).
   */
  reload(backend: Backend = this.backend): void {
    this.backend = backend
    backend.db.exec("CREATE TABLE IF NOT EXISTS lease (id INTEGER PRIMARY KEY, ttl INTEGER NOT NULL, remaining_ttl INTEGER NOT NULL)")
    backend.db.exec("CREATE TABLE IF NOT EXISTS lease_key (key BLOB PRIMARY KEY, lease_id INTEGER NOT NULL) WITHOUT ROWID")
    this.leaseMap.clear()
    this.keyLease.clear()
    this.expiryQueue.clear()
    this.checkpointQueue.clear()
    this.pendingClears = []
    const db = this.backend.db
    const leaseRows = db.query<{ id: bigint; ttl: bigint; remaining_ttl: bigint }, []>("SELECT id, ttl, remaining_ttl FROM lease")
    leaseRows.safeIntegers(true)
    for (const row of leaseRows.all()) {
      const lease = this.newLease(row.id, Math.max(Number(row.ttl), this.minTtlSeconds))
      lease.remainingTtlSeconds = Number(row.remaining_ttl)
      this.leaseMap.set(row.id, lease)
    }
    const keyRows = db.query<{ key: Uint8Array; lease_id: bigint }, []>("SELECT key, lease_id FROM lease_key")
    keyRows.safeIntegers(true)
    for (const row of keyRows.all()) {
      const lease = this.leaseMap.get(row.lease_id)
      assert(lease !== undefined, () => `key attached to missing lease ${row.lease_id.toString(16)}`)
      const key = new Uint8Array(row.key)
      lease.keys.set(keyId(key), key)
      this.keyLease.set(keyId(key), row.lease_id)
    }
    if (this.primary) this.promote(0)
  }

  // ---- applied from raft entries (every member) ----

  grant(id: bigint, ttlSeconds: number): LeaseGrantResult {
    // The API layer replaces ID 0 by a random positive id; a client may still
    // choose any other int64, negative ones included, as etcd allows.
    if (id === 0n || id > MAX_INT63 || id < -MAX_INT63 - 1n) throw new TskvError("leaseNotFound", `lease id ${id}`)
    assert(Number.isSafeInteger(ttlSeconds), () => `lease TTL must be an integer, got ${ttlSeconds}`)
    if (ttlSeconds > MAX_LEASE_TTL_SECONDS) throw new TskvError("leaseTTLTooLarge")
    if (this.leaseMap.has(id)) throw new TskvError("leaseExist")
    const lease = this.newLease(id, Math.max(ttlSeconds, this.minTtlSeconds))
    this.leaseMap.set(id, lease)
    this.persist(lease)
    this.backend.noteWrites()
    if (this.primary) {
      this.refresh(lease, 0)
      this.scheduleCheckpoint(lease)
    }
    return { ID: id, TTL: lease.ttlSeconds }
  }

  /**
   * Revokes a lease: its keys (sorted, as every member must delete them in the
   * same order) go to deleteKeys() in this batch, then the lease is removed.
   */
  revoke(id: bigint): Uint8Array[] {
    const lease = this.leaseMap.get(id)
    if (lease === undefined) throw new TskvError("leaseNotFound")
    const keys = [...lease.keys.values()].sort((a, b) => Buffer.compare(a, b))
    // Forget the lease first: deleting its keys may call detach() back.
    this.leaseMap.delete(id)
    for (const key of keys) this.keyLease.delete(keyId(key))
    if (keys.length > 0) this.deleteKeysCallback(keys)
    this.backend.begin()
    const deleteKey = this.backend.db.query("DELETE FROM lease_key WHERE key = ?")
    for (const key of keys) deleteKey.run(key)
    this.backend.db.query("DELETE FROM lease WHERE id = ?").run(id)
    this.backend.noteWrites(1 + keys.length)
    return keys
  }

  /** Applies a checkpoint: the remaining TTL survives a leader change and a restart. Unknown ids are ignored. */
  checkpoint(id: bigint, remainingTtlSeconds: number): void {
    const lease = this.leaseMap.get(id)
    if (lease === undefined) return
    assert(Number.isSafeInteger(remainingTtlSeconds) && remainingTtlSeconds >= 0, "remaining TTL must be a non-negative integer")
    lease.remainingTtlSeconds = remainingTtlSeconds
    this.persist(lease)
    this.backend.noteWrites()
    if (this.primary) this.scheduleCheckpoint(lease)
  }

  /** Attaches `key` to lease `id`, detaching it from any other lease (a key has at most one). */
  attach(id: bigint, key: Uint8Array): void {
    const lease = this.leaseMap.get(id)
    if (lease === undefined) throw new TskvError("leaseNotFound")
    const k = keyId(key)
    const current = this.keyLease.get(k)
    if (current === id) return
    if (current !== undefined) this.leaseMap.get(current)?.keys.delete(k)
    const copy = Uint8Array.from(key)
    lease.keys.set(k, copy)
    this.keyLease.set(k, id)
    this.backend.begin()
    this.backend.db
      .query("INSERT INTO lease_key (key, lease_id) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET lease_id = excluded.lease_id")
      .run(copy, id)
    this.backend.noteWrites()
  }

  /** Detaches `key` from its lease, if it has one (a put without lease, a delete). */
  detach(key: Uint8Array): void {
    const k = keyId(key)
    const id = this.keyLease.get(k)
    if (id === undefined) return
    this.keyLease.delete(k)
    this.leaseMap.get(id)?.keys.delete(k)
    this.backend.begin()
    this.backend.db.query("DELETE FROM lease_key WHERE key = ?").run(key)
    this.backend.noteWrites()
  }

  // ---- reads (every member) ----

  /** The lease `key` is attached to; 0n for none. */
  leaseOf(key: Uint8Array): bigint {
    return this.keyLease.get(keyId(key)) ?? 0n
  }

  has(id: bigint): boolean {
    return this.leaseMap.has(id)
  }

  /** The keys attached to lease `id` in no particular order ([] for an unknown lease): permission checks. */
  attachedKeys(id: bigint): Uint8Array[] {
    const lease = this.leaseMap.get(id)
    return lease === undefined ? [] : [...lease.keys.values()]
  }

  /** The attached keys of a lease, sorted; [] for an unknown lease. */
  keysOf(id: bigint): Uint8Array[] {
    const lease = this.leaseMap.get(id)
    if (lease === undefined) return []
    return [...lease.keys.values()].sort((a, b) => Buffer.compare(a, b))
  }

  /**
   * LeaseTimeToLive. An unknown lease is not an error (TTL -1). The remaining
   * time is truncated to seconds, as etcd does; on a member that is not the
   * primary it is the checkpointed remaining TTL (the server asks the leader).
   */
  timeToLive(id: bigint, withKeys: boolean): LeaseTimeToLiveResult {
    const lease = this.leaseMap.get(id)
    if (lease === undefined) return { ID: id, TTL: -1, grantedTTL: 0, keys: [] }
    let ttl: number
    if (lease.expiryMs === Infinity) {
      ttl = lease.remainingTtlSeconds > 0 ? lease.remainingTtlSeconds : lease.ttlSeconds
    } else {
      // etcd: int64(time.Until(expiry).Seconds()), truncated toward zero: an expired lease whose revoke is
      // not applied yet (its keys are still there) reads 0, then -1, -2, ... (+ 0: no -0).
      ttl = Math.trunc((lease.expiryMs - this.clock.now()) / 1000) + 0
    }
    return { ID: id, TTL: ttl, grantedTTL: lease.ttlSeconds, keys: withKeys ? this.keysOf(id) : [] }
  }

  /** LeaseLeases: every lease, soonest expiry first (then by id). */
  leases(): { ID: bigint }[] {
    return [...this.leaseMap.values()]
      .sort((a, b) => a.expiryMs - b.expiryMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .map((lease) => ({ ID: lease.id }))
  }

  get size(): number {
    return this.leaseMap.size
  }

  // ---- the primary (raft leader) ----

  isPrimary(): boolean {
    return this.primary
  }

  /**
   * Renews a lease on the primary and returns its granted TTL (what
   * LeaseKeepAlive answers). Throws notLeader on other members (the server
   * forwards), leaseNotFound for an unknown lease or one already expired and
   * waiting to be revoked (the API answers TTL 0).
   */
  renew(id: bigint): number {
    if (!this.primary) throw new TskvError("notLeader")
    const lease = this.leaseMap.get(id)
    if (lease === undefined) throw new TskvError("leaseNotFound")
    if (this.clock.now() >= lease.expiryMs) throw new TskvError("leaseNotFound", "lease expired, revoke pending")
    if (this.checkpointIntervalMs !== null && lease.remainingTtlSeconds > 0) {
      // Clear the checkpointed remaining TTL through raft, so that a new leader
      // or a restart starts from the full TTL again.
      this.pendingClears.push({ ID: id, remainingTTL: 0 })
    }
    lease.expiryMs = this.clock.now() + lease.ttlSeconds * 1000
    this.enqueueExpiry(lease, lease.expiryMs)
    return lease.ttlSeconds
  }

  /**
   * This member became the leader: every lease expires `extendMs` (the
   * election timeout) after its remaining TTL from now, and when more than
   * the revoke rate of leases would expire together, later ones are spread
   * out (etcd's Promote).
   */
  promote(extendMs: number): void {
    this.primary = true
    this.expiryQueue.clear()
    this.checkpointQueue.clear()
    this.revokeTokens = this.revokeRatePerSecond / 2
    this.revokeTokensAtMs = this.clock.now()
    for (const lease of this.leaseMap.values()) {
      this.refresh(lease, extendMs)
      this.scheduleCheckpoint(lease)
    }
    if (this.leaseMap.size < this.revokeRatePerSecond) return
    const now = this.clock.now()
    const sorted = [...this.leaseMap.values()].sort((a, b) => a.expiryMs - b.expiryMs || (a.id < b.id ? -1 : 1))
    const targetPerSecond = (3 * this.revokeRatePerSecond) / 4
    let baseWindowMs = sorted[0]!.expiryMs - now
    let nextWindowMs = baseWindowMs + 1000
    let expires = 0
    for (const lease of sorted) {
      const remainingMs = lease.expiryMs - now
      if (remainingMs > nextWindowMs) {
        baseWindowMs = remainingMs
        nextWindowMs = baseWindowMs + 1000
        expires = 1
        continue
      }
      expires++
      if (expires <= targetPerSecond) continue
      const delayMs = Math.trunc(1000 * (expires / targetPerSecond) - (remainingMs - baseWindowMs))
      nextWindowMs = baseWindowMs + delayMs
      this.refresh(lease, delayMs + extendMs)
      this.scheduleCheckpoint(lease)
    }
  }

  /** This member is no longer the leader: nothing expires here until promoted again. */
  demote(): void {
    this.primary = false
    for (const lease of this.leaseMap.values()) lease.expiryMs = Infinity
    this.expiryQueue.clear()
    this.checkpointQueue.clear()
    this.pendingClears = []
  }

  /**
   * Leases past their expiry that the leader should propose to revoke, at
   * most `limit` and at most what the revoke rate (etcd: 1000/s) allows since
   * the last call. A lease returned here is offered again after the retry
   * interval if its revoke has not been applied by then.
   */
  expired(limit: number): bigint[] {
    if (!this.primary) return []
    const now = this.clock.now()
    const capacity = this.revokeRatePerSecond / 2
    this.revokeTokens = Math.min(capacity, this.revokeTokens + ((now - this.revokeTokensAtMs) * this.revokeRatePerSecond) / 1000)
    this.revokeTokensAtMs = now
    const max = Math.min(limit, Math.floor(this.revokeTokens))
    const result: bigint[] = []
    while (result.length < max) {
      const entry = this.expiryQueue.peek()
      if (entry === undefined || entry.timeMs > now) break
      this.expiryQueue.pop()
      const lease = this.leaseMap.get(entry.id)
      if (lease === undefined || lease.queuedMs !== entry.timeMs) continue // revoked or moved
      if (now < lease.expiryMs) {
        this.enqueueExpiry(lease, lease.expiryMs)
        continue
      }
      result.push(lease.id)
      this.enqueueExpiry(lease, now + this.expiredRetryMs)
    }
    this.revokeTokens -= result.length
    return result
  }

  /**
   * Checkpoints the leader should propose now (at most `limit`): clears after
   * renewals first, then leases whose scheduled checkpoint time has come and
   * whose remaining TTL is below their TTL.
   */
  dueCheckpoints(limit: number): LeaseCheckpoint[] {
    if (!this.primary || this.checkpointIntervalMs === null) return []
    const result = this.pendingClears.splice(0, limit)
    const now = this.clock.now()
    while (result.length < limit) {
      const entry = this.checkpointQueue.peek()
      if (entry === undefined || entry.timeMs > now) break
      this.checkpointQueue.pop()
      const lease = this.leaseMap.get(entry.id)
      if (lease === undefined || lease.checkpointMs !== entry.timeMs) continue
      if (now >= lease.expiryMs) continue
      const remainingTtl = Math.ceil((lease.expiryMs - now) / 1000)
      if (remainingTtl >= lease.ttlSeconds) continue
      result.push({ ID: lease.id, remainingTTL: remainingTtl })
    }
    return result
  }

  // ---- internals ----

  private newLease(id: bigint, ttlSeconds: number): Lease {
    return { id, ttlSeconds, remainingTtlSeconds: 0, expiryMs: Infinity, queuedMs: NaN, checkpointMs: NaN, keys: new Map() }
  }

  private persist(lease: Lease): void {
    this.backend.begin()
    this.backend.db
      .query("INSERT INTO lease (id, ttl, remaining_ttl) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET ttl = excluded.ttl, remaining_ttl = excluded.remaining_ttl")
      .run(lease.id, lease.ttlSeconds, lease.remainingTtlSeconds)
  }

  /** Expiry = now + extend + (checkpointed remaining TTL, or the full TTL). */
  private refresh(lease: Lease, extendMs: number): void {
    const seconds = lease.remainingTtlSeconds > 0 ? lease.remainingTtlSeconds : lease.ttlSeconds
    lease.expiryMs = this.clock.now() + extendMs + seconds * 1000
    this.enqueueExpiry(lease, lease.expiryMs)
  }

  private enqueueExpiry(lease: Lease, timeMs: number): void {
    lease.queuedMs = timeMs
    this.expiryQueue.push({ id: lease.id, timeMs })
  }

  private scheduleCheckpoint(lease: Lease): void {
    if (this.checkpointIntervalMs === null) return
    const remaining = lease.remainingTtlSeconds > 0 ? lease.remainingTtlSeconds : lease.ttlSeconds
    if (remaining * 1000 <= this.checkpointIntervalMs) return
    lease.checkpointMs = this.clock.now() + this.checkpointIntervalMs
    this.checkpointQueue.push({ id: lease.id, timeMs: lease.checkpointMs })
  }
}
