// /v2/keys of etcd 3.4 (etcdserver/api/v2http keysHandler): reads from the
// local v2 store (quorum=true goes through raft as etcd's QGET), writes as
// raft entries applied on every member, wait=true as long-poll or streamed
// watches. Every answer carries X-Etcd-Cluster-ID; events carry X-Etcd-Index,
// X-Raft-Index and X-Raft-Term; errors are etcd's v2 error bodies.

import type { Context, Hono } from "hono"
import { isTskvError } from "../../lib/errors"
import { RequestKind } from "../../server/request"
import type { EtcdServer } from "../../server/server"
import { encodeV2Request, v2Request, type V2Result } from "../../v2store/apply"
import { V2Error, V2ErrorCode } from "../../v2store/errors"
import { eventToJson, isCreated, type V2Event } from "../../v2store/event"
import type { V2Store } from "../../v2store/store"
import { WATCHER_BUFFER, type Watcher } from "../../v2store/watcher_hub"
import { keyAccessError } from "./v2_auth"
import { goJson, type KeyRequest, parseForm, parseKeyRequest } from "./v2_form"

const KEYS_PREFIX = "/v2/keys"
const JSON_TYPE = "application/json"

export function mountV2Keys(app: Hono, server: EtcdServer, store: V2Store): void {
  const handler = async (c: Context): Promise<Response> => {
    const method = c.req.method
    if (!["HEAD", "GET", "PUT", "POST", "DELETE"].includes(method)) {
      return new Response("Method Not Allowed\n", {
        status: 405,
        headers: { Allow: "HEAD,GET,PUT,POST,DELETE", "content-type": "text/plain; charset=utf-8", "x-content-type-options": "nosniff" },
      })
    }
    const cluster = { "X-Etcd-Cluster-ID": server.clusterId.toString(16) }
    try {
      const url = new URL(c.req.url)
      const keyPath = decodeURIComponent(url.pathname.slice(KEYS_PREFIX.length))
      const r = parseKeyRequest(method, keyPath, await parseForm(c.req.raw))
      const denied = keyAccessError(c.req.raw, store.auth, keyPath, r.recursive)
      if (denied) return errorResponse(denied, cluster)
      if (method === "GET" && r.wait) return watch(c.req.raw, server, store, r, cluster)
      if ((method === "GET" || method === "HEAD") && !r.quorum) return eventResponse(server, store.get(r.path, r.recursive && method === "GET", r.sorted && method === "GET"), cluster, r, method)
      const result = (await server.propose(RequestKind.V2, encodeV2Request(toV2Request(r, server)))) as V2Result
      if ("error" in result) return errorResponse(V2Error.fromJson(result.error), cluster)
      if (!("event" in result)) throw new Error("v2 apply answered without an event")
      return eventResponse(server, result.event, cluster, r, method)
    } catch (e) {
      if (e instanceof V2Error) return errorResponse(e, cluster)
      if (isTskvError(e)) return errorResponse(new V2Error(V2ErrorCode.RaftInternal, e.message, 0), cluster)
      throw e
    }
  }
  app.all(KEYS_PREFIX, handler)
  app.all(`${KEYS_PREFIX}/*`, handler)
}

function toV2Request(r: KeyRequest, server: EtcdServer): ReturnType<typeof v2Request> {
  const expireMs = r.ttlSeconds === undefined ? 0 : server.clock.wallNow() + r.ttlSeconds * 1000
  const method = r.method === "GET" || r.method === "HEAD" ? "QGET" : (r.method as "PUT" | "POST" | "DELETE")
  const { path, val, dir, prevValue, prevIndex, prevExist, recursive, sorted, refresh } = r
  return v2Request({ method, path, val, dir, prevValue, prevIndex, prevExist, recursive, sorted, refresh, expireMs })
}

function raftHeaders(server: EtcdServer): Record<string, string> {
  return { "X-Raft-Index": String(server.committedIndex), "X-Raft-Term": String(server.term) }
}

function eventResponse(server: EtcdServer, e: V2Event, cluster: Record<string, string>, r: KeyRequest, method: string): Response {
  const headers = { ...cluster, "content-type": JSON_TYPE, "X-Etcd-Index": String(e.etcdIndex), ...raftHeaders(server) }
  const noValue = r.noValueOnSuccess && ["set", "compareAndSwap", "create", "update"].includes(e.action)
  const body = method === "HEAD" ? null : `${goJson(eventToJson(e, { noValue }))}\n`
  return new Response(body, { status: isCreated(e) ? 201 : 200, headers })
}

export function errorResponse(e: V2Error, extra: Record<string, string> = {}): Response {
  return new Response(`${goJson(e.toJson())}\n`, {
    status: e.status(),
    headers: { ...extra, "content-type": JSON_TYPE, "X-Etcd-Index": String(e.index) },
  })
}

/** A long-poll (one event) or stream=true watch: headers at once, then each event as a JSON line. */
function watch(req: Request, server: EtcdServer, store: V2Store, r: KeyRequest, cluster: Record<string, string>): Response {
  const w: Watcher = store.watch(r.path, r.recursive, r.stream, r.waitIndex)
  const enc = new TextEncoder()
  let closed = false
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      const end = (): void => {
        if (closed) return
        closed = true
        w.remove()
        controller.close()
      }
      const send = (e: V2Event | undefined): void => {
        if (closed) return
        if (e === undefined) return end()
        controller.enqueue(enc.encode(`${goJson(eventToJson(e))}\n`))
        // etcd drops a watcher that is 100 events behind (its channel is full): the stream ends.
        if (!r.stream || (controller.desiredSize ?? 1) <= 0) end()
      }
      for (const e of w.pending.splice(0)) send(e)
      if (!closed) w.onEvent = send
      req.signal.addEventListener("abort", () => {
        closed = true
        w.remove()
      })
    },
    cancel() {
      closed = true
      w.remove()
    },
  }, new CountQueuingStrategy({ highWaterMark: WATCHER_BUFFER }))
  const headers = { ...cluster, "content-type": JSON_TYPE, "X-Etcd-Index": String(w.startIndex), ...raftHeaders(server) }
  return new Response(body, { status: 200, headers })
}
