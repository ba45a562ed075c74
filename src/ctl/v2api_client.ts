// The v2 HTTP client of `tskv ctl` in ETCDCTL_API=2 mode (etcd's client/v2 as
// etcdctl 3.4 uses it): keys requests to the first endpoint that answers,
// members, and the v2 error type whose text etcdctl prints.

import { readFileSync } from "node:fs"

export interface V2Node {
  key?: string
  dir?: boolean
  value?: string
  nodes?: V2Node[]
  expiration?: string
  ttl?: number
  modifiedIndex?: number
  createdIndex?: number
}

export interface V2Response {
  action: string
  node: V2Node
  prevNode?: V2Node
  /** X-Etcd-Index. */
  index: number
}

export interface V2Member {
  id: string
  name: string
  peerURLs: string[]
  clientURLs: string[]
}

/** client.Error: "<code>: <message> (<cause>) [<index>]". */
export class V2ClientError extends Error {
  constructor(
    readonly errorCode: number,
    readonly etcdMessage: string,
    readonly cause_: string,
    readonly index: number,
  ) {
    super(`${errorCode}: ${etcdMessage} (${cause_}) [${index}]`)
  }
}

/** A request that reached no member (client.ErrClusterUnavailable). */
export class V2ClusterUnavailable extends Error {}

export interface V2ClientOptions {
  endpoints: string[]
  timeoutMs: number
  certFile?: string
  keyFile?: string
  caFile?: string
  username?: string
}

export type Form = Record<string, string>

function escapeKey(key: string): string {
  const k = key.startsWith("/") ? key : `/${key}`
  return k.split("/").map(encodeURIComponent).join("/")
}

export class V2Client {
  private readonly tls: { cert?: string; key?: string; ca?: string } | undefined
  constructor(private readonly options: V2ClientOptions) {
    const o = options
    this.tls =
      o.certFile || o.keyFile || o.caFile
        ? {
            ...(o.certFile ? { cert: readFileSync(o.certFile, "utf8") } : {}),
            ...(o.keyFile ? { key: readFileSync(o.keyFile, "utf8") } : {}),
            ...(o.caFile ? { ca: readFileSync(o.caFile, "utf8") } : {}),
          }
        : undefined
  }

  endpoints(): string[] {
    return this.options.endpoints
  }

  /** One HTTP request, to each endpoint in turn until one answers. */
  async request(method: string, path: string, options: { query?: Form; form?: Form; json?: unknown; timeoutMs?: number; signal?: AbortSignal } = {}): Promise<Response> {
    const errors: string[] = []
    for (const ep of this.options.endpoints) {
      const url = new URL(`${ep.replace(/\/$/, "")}${path}`)
      for (const [k, v] of Object.entries(options.query ?? {})) url.searchParams.set(k, v)
      const headers: Record<string, string> = {}
      let body: string | undefined
      if (options.form !== undefined) {
        headers["content-type"] = "application/x-www-form-urlencoded"
        body = new URLSearchParams(options.form).toString()
      } else if (options.json !== undefined) {
        headers["content-type"] = "application/json"
        body = JSON.stringify(options.json)
      }
      if (this.options.username) headers.authorization = `Basic ${Buffer.from(this.options.username.includes(":") ? this.options.username : `${this.options.username}:`).toString("base64")}`
      const timeoutMs = options.timeoutMs ?? this.options.timeoutMs
      const signals = [options.signal, timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : undefined].filter((s): s is AbortSignal => s !== undefined)
      try {
        return await fetch(url, {
          method,
          headers,
          ...(body !== undefined ? { body } : {}),
          ...(signals.length > 0 ? { signal: AbortSignal.any(signals) } : {}),
          ...(this.tls ? { tls: this.tls } : {}),
        })
      } catch (e) {
        if (options.signal?.aborted === true) throw e
        errors.push(`${url.host}: ${e instanceof Error ? e.message : String(e)}`)
      }
    }
    throw new V2ClusterUnavailable(
      `client: etcd cluster is unavailable or misconfigured; ${errors.map((e, i) => `error #${i}: ${e}`).join("; ")}`,
    )
  }

  async keys(method: string, key: string, options: { query?: Form; form?: Form; timeoutMs?: number; signal?: AbortSignal } = {}): Promise<V2Response> {
    const res = await this.request(method, `/v2/keys${escapeKey(key)}`, options)
    const text = await res.text()
    let body: Record<string, unknown>
    try {
      body = JSON.parse(text) as Record<string, unknown>
    } catch {
      throw new V2ClusterUnavailable("client: response is invalid json. The endpoint is probably not valid etcd cluster endpoint")
    }
    if (typeof body.errorCode === "number") {
      throw new V2ClientError(body.errorCode, String(body.message ?? ""), String(body.cause ?? ""), Number(body.index ?? 0))
    }
    return { action: String(body.action), node: (body.node ?? {}) as V2Node, ...(body.prevNode ? { prevNode: body.prevNode as V2Node } : {}), index: Number(res.headers.get("x-etcd-index") ?? 0) }
  }

  async members(): Promise<V2Member[]> {
    const res = await this.request("GET", "/v2/members")
    const body = (await res.json()) as { members?: V2Member[] }
    return body.members ?? []
  }

  async leader(): Promise<V2Member | undefined> {
    const res = await this.request("GET", "/v2/members/leader")
    if (res.status !== 200) return undefined
    return (await res.json()) as V2Member
  }
}
