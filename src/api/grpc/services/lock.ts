// v3lockpb.Lock: etcd's server-side mutex recipe (clientv3/concurrency.Mutex)
// run on the member's own KV, Lease and Watch, without a client loopback.
//
// Lock{name, lease} writes `name/<lease hex>` under the lease if it is not
// there yet, then waits until every key under `name/` created before it has
// been deleted; the lock is held from then until the key is deleted (Unlock,
// or the lease ends). Lease 0: a 60 s session lease is granted and left to
// expire (etcd orphans it). A caller that goes away while waiting has its key
// deleted; a waiter whose lease ended meanwhile gets "session expired". The helpers below are shared with the election service.

import * as perms from "../../../auth/request_perms"
import { concatBytes, prefixEnd, toHex, utf8 } from "../../../lib/bytes"
import { isTskvError } from "../../../lib/errors"
import { newLeaseId } from "../../../lease/lessor"
import { checkTxnRequest } from "../../../mvcc/validate"
import type { KeyValue, RangeRequest } from "../../../mvcc/types"
import type { WatchResponse } from "../../../mvcc/watchable_store"
import * as pb from "../../../pb"
import { RequestKind } from "../../../server/request"
import type { EtcdServer } from "../../../server/server"
import type { AuthInfo } from "../../../auth/types"
import { type CallContext, type GrpcServer, GrpcError, GrpcStatus } from "../../../h2grpc"
import { admit, requestAuth } from "./context"

/** etcd's concurrency.defaultSessionTTL. */
export const SESSION_TTL_SECONDS = 60

const SLASH = utf8("/")

export function registerLockService(grpc: GrpcServer, server: EtcdServer): void {
  const L = pb.LockService

  grpc.addUnary(L.Lock, async (req, call) => {
    const info = recipeCaller(server, call)
    const recipe = new Recipe(server, info, call)
    const lease = req.lease !== 0n ? req.lease : await recipe.grantSessionLease()
    const prefix = concatBytes([req.name, SLASH])
    const key = concatBytes([prefix, utf8(toHex(lease))])
    const { revision } = await recipe.createOwnKey(key, new Uint8Array(0), lease)
    try {
      await recipe.waitDeletes(prefix, revision - 1)
    } catch (e) {
      await recipe.deleteQuietly(key)
      throw e
    }
    // The key may have gone with its lease while waiting: then the lock is not
    // held (etcd 3.5's Mutex checks this too; 3.4 answered as if it were).
    const own = await recipe.range({ key, rangeEnd: new Uint8Array(0) })
    if (own.kvs[0]?.createRevision !== revision) throw new GrpcError(GrpcStatus.UNKNOWN, "session expired")
    return { header: server.header(own.header!.revision), key }
  })

  grpc.addUnary(L.Unlock, async (req, call) => {
    const info = recipeCaller(server, call)
    const recipe = new Recipe(server, info, call)
    await recipe.txn({ success: [{ requestDeleteRange: { key: req.key } }] })
    return { header: server.header() }
  })
}

/**
 * The caller of a recipe: etcd's in-process client passes the caller's token on
 * (checked with auth off too), and its refusal comes as a plain error (Unknown).
 */
export function recipeCaller(server: EtcdServer, call: CallContext): AuthInfo | null {
  return asClientErrorSync(() => admit(server, call))
}

/** The result of writing one's own key under a prefix. */
export interface OwnKey {
  /** The key's create revision. */
  revision: number
  /** The key as it was before, if it existed (a second Lock/Campaign with the same lease). */
  existing: KeyValue | undefined
}

/**
 * The member-side equivalent of a concurrency session: KV operations through
 * raft with the caller's auth, waits through the watchable store, and an end
 * when the caller cancels the call.
 */
export class Recipe {
  private readonly cancelled: Promise<never>
  private isCancelled = false

  constructor(
    readonly server: EtcdServer,
    readonly info: AuthInfo | null,
    call: CallContext,
  ) {
    this.cancelled = new Promise<never>((_resolve, reject) => {
      call.onCancel(() => {
        this.isCancelled = true
        reject(new Error("the caller cancelled the request"))
      })
    })
    this.cancelled.catch(() => {})
  }

  get active(): boolean {
    return !this.isCancelled && !this.server.isStopped()
  }

  /** A fresh lease of SESSION_TTL_SECONDS, as concurrency.NewSession grants. */
  async grantSessionLease(): Promise<bigint> {
    return await asClientError(async () => {
      await this.server.checkQuota(64)
      const ID = newLeaseId()
      const body = pb.encodeLeaseGrantRequest({ ID, TTL: SESSION_TTL_SECONDS })
      const res = (await this.server.propose(RequestKind.LeaseGrant, body, requestAuth(this.info))) as pb.LeaseGrantResponse
      return res.ID
    })
  }

  /** Proposes a txn (checked against the caller's permissions) and returns its response. */
  async txn(init: pb.TxnRequestInit): Promise<pb.TxnResponse> {
    return await asClientError(async () => {
      const body = pb.encodeTxnRequest(init)
      const decoded = pb.decodeTxnRequest(body)
      checkTxnRequest(decoded, this.server.config.maxTxnOps)
      if (this.server.auth) perms.checkTxn(this.server.auth, this.info, decoded, (id) => this.server.lessor.attachedKeys(id))
      return (await this.server.propose(RequestKind.Txn, body, requestAuth(this.info))) as pb.TxnResponse
    })
  }

  /** A linearizable range, checked against the caller's permissions. */
  async range(req: RangeRequest & { rangeEnd: Uint8Array }): Promise<pb.RangeResponse> {
    return await asClientError(async () => {
      if (this.server.auth) perms.checkRange(this.server.auth, this.info, req)
      await this.server.linearizableBarrier()
      return this.server.kv.range(req) as pb.RangeResponse
    })
  }

  /** Writes `key` = `value` under `lease` unless it exists (etcd's Mutex.tryAcquire / Election.Campaign txn). */
  async createOwnKey(key: Uint8Array, value: Uint8Array, lease: bigint): Promise<OwnKey> {
    await asClientError(() => this.server.checkQuota(key.length + value.length + 256 + 64))
    const res = await this.txn({
      compare: [{ target: pb.Compare_CompareTarget.CREATE, result: pb.Compare_CompareResult.EQUAL, key, createRevision: 0 }],
      success: [{ requestPut: { key, value, lease } }],
      failure: [{ requestRange: { key } }],
    })
    if (res.succeeded) return { revision: res.header!.revision, existing: undefined }
    const existing = res.responses[0]?.responseRange?.kvs[0]
    // The key may have vanished between the compare and now only if a later
    // write deleted it; a retry takes the same path as a first attempt.
    if (existing === undefined) return await this.createOwnKey(key, value, lease)
    return { revision: existing.createRevision, existing }
  }

  /** The oldest key under `prefix` (the lock owner, the election leader), with the read's revision. */
  async firstCreated(prefix: Uint8Array): Promise<{ kv: KeyValue | undefined; revision: number }> {
    const res = await this.range({
      key: prefix,
      rangeEnd: prefixEnd(prefix),
      sortTarget: pb.RangeRequest_SortTarget.CREATE,
      sortOrder: pb.RangeRequest_SortOrder.ASCEND,
      limit: 1,
    })
    return { kv: res.kvs[0], revision: res.header!.revision }
  }

  /**
   * Waits until no key under `prefix` has a create revision at or below
   * `maxCreateRevision` (etcd's waitDeletes): watches the newest such key
   * until it is deleted, then looks again.
   */
  async waitDeletes(prefix: Uint8Array, maxCreateRevision: number): Promise<void> {
    for (;;) {
      this.throwIfInactive()
      const res = await this.range({
        key: prefix,
        rangeEnd: prefixEnd(prefix),
        sortTarget: pb.RangeRequest_SortTarget.CREATE,
        sortOrder: pb.RangeRequest_SortOrder.DESCEND,
        maxCreateRevision,
        limit: 1,
      })
      const last = res.kvs[0]
      if (last === undefined) return
      await this.watchUntil({ key: last.key, startRevision: res.header!.revision + 1, filters: [pb.WatchCreateRequest_FilterType.NOPUT] }, (ev) => ev.type === 1)
    }
  }

  /**
   * Watches from `req.startRevision` and resolves with the first event for
   * which `stop` is true (and every event before it went to `onEvent`).
   * Resolves with undefined when the watch is cancelled (compaction): the
   * caller then reads the state again.
   */
  watchUntil(
    req: { key: Uint8Array; rangeEnd?: Uint8Array; startRevision: number; filters?: number[] },
    stop: (event: pb.Event) => boolean,
    onEvent?: (event: pb.Event, response: WatchResponse) => void,
  ): Promise<pb.Event | undefined> {
    this.throwIfInactive()
    const auth = this.server.auth
    if (auth) asClientErrorSync(() => perms.checkWatch(auth, this.info, { key: req.key, rangeEnd: req.rangeEnd ?? new Uint8Array(0) }))
    let done = false
    let finish: (event: pb.Event | undefined) => void = () => {}
    const result = new Promise<pb.Event | undefined>((resolve) => {
      finish = (event) => {
        if (done) return
        done = true
        resolve(event)
      }
    })
    const stream = this.server.watchable.newStream((r) => {
      if (done) return true
      if (r.canceled) {
        finish(undefined)
        return true
      }
      for (const ev of r.events) {
        if (done) break
        if (stop(ev)) finish(ev)
        else onEvent?.(ev, r)
      }
      return true
    })
    const watchId = stream.watch({ key: req.key, ...(req.rangeEnd ? { rangeEnd: req.rangeEnd } : {}), startRevision: req.startRevision, filters: req.filters ?? [] })
    if (watchId < 0) finish(undefined)
    const stopped = setInterval(() => {
      if (this.server.isStopped()) finish(undefined)
    }, 500)
    // Close outside the store's delivery loop.
    const closed = result.then(() => {
      clearInterval(stopped)
      setImmediate(() => stream.close())
    })
    void closed
    return Promise.race([result, this.cancelled.catch((e: unknown) => {
      finish(undefined)
      throw e
    })])
  }

  /** Deletes `key`, ignoring failures (cleanup after a cancelled wait). */
  async deleteQuietly(key: Uint8Array): Promise<void> {
    try {
      if (!this.server.isStopped()) await this.txn({ success: [{ requestDeleteRange: { key } }] })
    } catch {
      // The key ends with its lease anyway.
    }
  }

  private throwIfInactive(): void {
    if (this.isCancelled) throw new Error("the caller cancelled the request")
    if (this.server.isStopped()) throw new Error("the member is stopping")
  }
}

/**
 * etcd runs these recipes through its in-process client, whose errors reach
 * the caller as plain errors: gRPC Unknown with etcd's message (observed:
 * `/v3/election/proclaim` with an empty leader key answers HTTP 500, code 2,
 * "etcdserver: key is not provided").
 */
async function asClientError<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run()
  } catch (e) {
    throw isTskvError(e) ? new GrpcError(GrpcStatus.UNKNOWN, e.message) : e
  }
}

function asClientErrorSync<T>(run: () => T): T {
  try {
    return run()
  } catch (e) {
    throw isTskvError(e) ? new GrpcError(GrpcStatus.UNKNOWN, e.message) : e
  }
}
