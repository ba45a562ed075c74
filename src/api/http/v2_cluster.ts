// The v2 cluster endpoints of etcd 3.4 over tskv's membership:
// /v2/members (GET, POST, PUT, DELETE, /leader), /v2/machines and
// /v2/stats/{self,leader,store}. Errors are etcd's {"message": ...} bodies.

import type { Context, Hono } from "hono"
import { isTskvError } from "../../lib/errors"
import type { NodeId } from "../../raft/types"
import type { Member } from "../../server/membership"
import type { EtcdServer } from "../../server/server"
import type { V2Store } from "../../v2store/store"
import { goJson } from "./v2_form"

const JSON_TYPE = "application/json"

function memberJson(m: Member): Record<string, unknown> {
  return { id: m.id.toString(16), name: m.name, peerURLs: m.peerUrls, clientURLs: m.clientUrls }
}

/** json.NewEncoder(w).Encode (members: a trailing newline), or w.Write(json.Marshal) (stats: none). */
function json(value: unknown, status: number, headers: Record<string, string> = {}, newline = true): Response {
  return new Response(`${goJson(value)}${newline ? "\n" : ""}`, { status, headers: { ...headers, "content-type": JSON_TYPE } })
}

/** etcd's httptypes.HTTPError: {"message"} without a trailing newline. */
function httpError(status: number, message: string, headers: Record<string, string> = {}): Response {
  return new Response(goJson({ message }), { status, headers: { ...headers, "content-type": JSON_TYPE } })
}

function methodNotAllowed(allow: string): Response {
  return new Response("Method Not Allowed\n", { status: 405, headers: { Allow: allow, "content-type": "text/plain; charset=utf-8", "x-content-type-options": "nosniff" } })
}

/** Go's time.Duration.String(). */
export function goDuration(ms: number): string {
  if (ms < 1) return `${Math.round(ms * 1e6) / 1e3}µs`
  if (ms < 1000) return `${trimFraction(ms.toFixed(6))}ms`
  let s = ms / 1000
  const h = Math.floor(s / 3600)
  s -= h * 3600
  const m = Math.floor(s / 60)
  s -= m * 60
  const sec = `${trimFraction(s.toFixed(9))}s`
  if (h > 0) return `${h}h${m}m${sec}`
  if (m > 0) return `${m}m${sec}`
  return sec
}

function trimFraction(s: string): string {
  return s.includes(".") ? s.replace(/0+$/, "").replace(/\.$/, "") : s
}

async function peerUrlsOf(c: Context, cluster: Record<string, string>): Promise<string[] | Response> {
  const type = (c.req.header("content-type") ?? "").split(";")[0]!.trim()
  if (type !== "application/json") return httpError(415, `Bad Content-Type ${type}, accept application/json`, cluster)
  let body: unknown
  try {
    body = JSON.parse(await c.req.text())
  } catch (e) {
    return httpError(400, e instanceof Error ? e.message : String(e))
  }
  const urls = (body as { peerURLs?: unknown } | null)?.peerURLs
  if (!Array.isArray(urls) || !urls.every((u) => typeof u === "string")) return httpError(400, "json: cannot unmarshal peerURLs")
  for (const u of urls) {
    try {
      const parsed = new URL(u)
      if (parsed.protocol !== "http:" && parsed.protocol !== "https:") return httpError(400, `URL scheme must be http, https, unix, or unixs: ${u}`)
    } catch {
      return httpError(400, `parse ${u}: invalid URI for request`)
    }
  }
  return urls as string[]
}

function memberError(e: unknown, id: string, cluster: Record<string, string>): Response {
  if (isTskvError(e, "peerURLExist")) return httpError(409, "membership: peerURL exists", cluster)
  if (isTskvError(e, "memberExist")) return httpError(409, "membership: ID exists", cluster)
  if (isTskvError(e, "memberNotFound")) return httpError(404, `No such member: ${id}`, cluster)
  if (isTskvError(e)) return httpError(500, "Internal Server Error", cluster)
  throw e
}

function parseId(text: string): NodeId | undefined {
  if (!/^[0-9a-fA-F]{1,16}$/.test(text)) return undefined
  return BigInt(`0x${text}`)
}

export function mountV2Cluster(app: Hono, server: EtcdServer, store: V2Store): void {
  const startedWall = new Date(server.clock.wallNow()).toISOString()
  const cluster = (): Record<string, string> => ({ "X-Etcd-Cluster-ID": server.clusterId.toString(16) })

  app.all("/v2/members", async (c) => {
    if (c.req.method === "GET" || c.req.method === "HEAD") {
      return json({ members: server.membership.list().map(memberJson) }, 200, cluster())
    }
    if (c.req.method !== "POST") return methodNotAllowed("GET, POST")
    const urls = await peerUrlsOf(c, cluster())
    if (urls instanceof Response) return urls
    try {
      const m = await server.memberAdd(urls, false)
      return json(memberJson(m), 201, cluster())
    } catch (e) {
      return memberError(e, "", cluster())
    }
  })

  app.all("/v2/members/:id", async (c) => {
    const idText = c.req.param("id")
    if (idText === "leader" && c.req.method === "GET") {
      const lead = server.membership.get(server.lead)
      if (!lead) return httpError(503, "During election", cluster())
      return json(memberJson(lead), 200, cluster())
    }
    if (c.req.method !== "DELETE" && c.req.method !== "PUT") return methodNotAllowed("GET, POST, DELETE, PUT")
    const id = parseId(idText)
    if (id === undefined) return httpError(404, `No such member: ${idText}`, cluster())
    try {
      if (c.req.method === "DELETE") await server.memberRemove(id)
      else {
        const urls = await peerUrlsOf(c, cluster())
        if (urls instanceof Response) return urls
        await server.memberUpdate(id, urls)
      }
      return new Response(null, { status: 204, headers: cluster() })
    } catch (e) {
      return memberError(e, idText, cluster())
    }
  })

  app.all("/v2/machines", (c) => {
    if (c.req.method !== "GET" && c.req.method !== "HEAD") return methodNotAllowed("GET, HEAD")
    const urls = server.membership.list().flatMap((m) => m.clientUrls)
    return new Response(urls.join(", "), { status: 200, headers: { "content-type": "text/plain; charset=utf-8" } })
  })

  app.all("/v2/stats/self", (c) => {
    if (c.req.method !== "GET") return methodNotAllowed("GET")
    const me = server.membership.get(server.memberId)
    const leaderUptimeMs = performance.now() - server.leaderSince
    return json(
      {
        name: me?.name ?? server.config.name,
        id: server.memberId.toString(16),
        state: server.isLeader() ? "StateLeader" : server.raftState === 1 ? "StateCandidate" : "StateFollower",
        startTime: startedWall,
        leaderInfo: {
          leader: server.lead.toString(16),
          uptime: goDuration(leaderUptimeMs),
          startTime: new Date(server.clock.wallNow() - leaderUptimeMs).toISOString(),
        },
        recvAppendRequestCnt: 0,
        sendAppendRequestCnt: 0,
      },
      200,
      {},
      false,
    )
  })

  app.all("/v2/stats/leader", (c) => {
    if (c.req.method !== "GET") return methodNotAllowed("GET")
    if (!server.isLeader()) return httpError(403, "not current leader")
    const followers: Record<string, unknown> = {}
    for (const m of server.membership.list()) {
      if (m.id === server.memberId) continue
      followers[m.id.toString(16)] = {
        latency: { current: 0, average: 0, standardDeviation: 0, minimum: 0, maximum: 0 },
        counts: { fail: 0, success: 0 },
      }
    }
    return json({ leader: server.memberId.toString(16), followers }, 200, {}, false)
  })

  app.all("/v2/stats/store", (c) => {
    if (c.req.method !== "GET") return methodNotAllowed("GET")
    return json(store.stats.toJson(store.hub.count()), 200, {}, false)
  })
}
