// The HTTP endpoints of the client port (and of --listen-metrics-urls), as etcd
// serves them (server/etcdserver/api/etcdhttp): /health, /livez, /readyz and
// their per-check paths, /version, /metrics. Bodies, status codes and content
// types follow Go's net/http as etcd uses it: http.Error writes the text plus
// "\n" as text/plain with X-Content-Type-Options: nosniff.
// The /v3/* JSON gateway is in gateway.ts.

import { Hono, type Context } from "hono"
import { silentLogger, type Logger } from "../../lib/logger"
import { EXPOSITION_CONTENT_TYPE, type Counter, type CounterChild, type Gauge, type Registry } from "../../lib/metrics"
import type { GrpcServer } from "../../h2grpc"
import { mountGateway } from "./gateway"
import type { EtcdServer } from "../../server/server"
import { mountV2 } from "./v2"

/** What the HTTP endpoints need from the member; the server implements it. */
export interface HttpDeps {
  hasLeader(): boolean
  /** Names of the active alarms: "NOSPACE", "CORRUPT". */
  alarms(): readonly string[]
  /** A local Range{keysOnly, limit 1} as root; rejects with the read's error. */
  serializableRead(): Promise<void>
  /** The same read, linearizable (needs a leader and a ReadIndex round). */
  linearizableRead(): Promise<void>
  isLearner(): boolean
  /** {"etcdserver": server, "etcdcluster": cluster}: e.g. "3.4.23" and "3.4.0" (or "not_decided"). */
  versions(): { server: string; cluster: string }
  registry: Registry
  logger?: Logger
  /** Bound on each health read (etcd: its request timeout, 7 s by default). */
  readTimeoutMs?: number
  /**
   * Serves the /v3/* JSON gateway from this server's handlers (register every
   * service before calling createHttpApp). Leave out on --listen-metrics-urls.
   */
  gateway?: GrpcServer
  /** --cors: allowed origins; "*" or empty allows all (the default). */
  cors?: readonly string[]
  /** Serves etcd's v2 API (--enable-v2) from this member. */
  v2?: EtcdServer
}

type Check = () => Promise<void>

const TEXT = "text/plain; charset=utf-8"

const CORS_HEADERS: Record<string, string> = {
  "Access-Control-Allow-Headers": "accept, content-type, authorization",
  "Access-Control-Allow-Methods": "POST, GET, OPTIONS, PUT, DELETE",
  "Access-Control-Allow-Origin": "*",
}

/**
 * --cors: etcd's access controller. With "*" (the default) every answer allows every
 * origin; with a list, only an Origin on the list is echoed back.
 */
export function corsHeadersOf(cors: readonly string[] | undefined): (origin: string | undefined) => Record<string, string> {
  const corsAll = cors === undefined || cors.length === 0 || cors.includes("*")
  const allowed = new Set(cors ?? [])
  return (origin) => {
    if (corsAll) return CORS_HEADERS
    return origin !== undefined && allowed.has(origin) ? { ...CORS_HEADERS, "Access-Control-Allow-Origin": origin } : {}
  }
}

export function createHttpApp(deps: HttpDeps): Hono {
  const logger = deps.logger ?? silentLogger
  const readTimeoutMs = deps.readTimeoutMs ?? 7000
  const metrics = healthMetrics(deps.registry)
  const read = (serializable: boolean): Check => () =>
    withTimeout(serializable ? deps.serializableRead() : deps.linearizableRead(), readTimeoutMs)

  const app = new Hono()

  // A preflight OPTIONS is answered 200 empty, with or without CORS headers.
  const corsHeaders = corsHeadersOf(deps.cors)
  app.use("*", async (c, next) => {
    const headers = corsHeaders(c.req.header("origin"))
    if (c.req.method === "OPTIONS") {
      return c.body(null, 200, headers)
    }
    await next()
    for (const [name, value] of Object.entries(headers)) c.res.headers.set(name, value)
  })

  app.get("/health", async (c) => {
    const excluded = new Set(c.req.queries("exclude") ?? [])
    const serializable = c.req.query("serializable") === "true"
    const health = await checkHealth(deps, excluded, serializable, read(serializable))
    if (health.health === "true") metrics.success.inc()
    else metrics.failures.inc()
    // etcd 3.4's body: {"health":"true"} or {"health":"false"}, the reason only logged
    const body = JSON.stringify({ health: health.health })
    if (health.health !== "true") {
      logger.warn("/health error", { reason: health.reason, "status-code": 503 })
      return goError(c, body, 503)
    }
    return whole(c, body, 200, { "content-type": TEXT })
  })

  const livez: [string, Check][] = [["serializable_read", read(true)]]
  const readyz: [string, Check][] = [
    ["data_corruption", async () => {
      if (deps.alarms().includes("CORRUPT")) throw new Error("alarm activated: CORRUPT")
    }],
    ["serializable_read", read(true)],
    ["linearizable_read", read(false)],
    ["non_learner", async () => {
      if (deps.isLearner()) throw new Error("not supported for learner")
    }],
  ]
  for (const [type, checks] of [["livez", livez], ["readyz", readyz]] as const) {
    app.get(`/${type}`, async (c) => {
      const excluded = new Set((c.req.queries("exclude") ?? []).filter((name) => name !== ""))
      return runChecks(c, type, checks.filter(([name]) => !excluded.has(name)), metrics, logger)
    })
    for (const check of checks) {
      app.get(`/${type}/${check[0]}`, (c) => runChecks(c, type, [check], metrics, logger))
    }
  }

  app.get("/version", (c) => {
    const { server, cluster } = deps.versions()
    return whole(c, JSON.stringify({ etcdserver: server, etcdcluster: cluster }), 200, { "content-type": "application/json" })
  })

  const scrapes = scrapeMetrics(deps.registry)
  app.get("/metrics", (c) => {
    scrapes.inFlight.inc()
    try {
      return c.body(deps.registry.expose(), 200, { "content-type": EXPOSITION_CONTENT_TYPE })
    } finally {
      scrapes.inFlight.dec()
      scrapes.ok.inc()
    }
  })

  const getOnly = ["/health", "/livez", "/livez/*", "/readyz", "/readyz/*", "/version", "/metrics"]
  for (const path of getOnly) {
    app.on(["POST", "PUT", "DELETE", "PATCH", "OPTIONS"], path, (c) => {
      c.header("allow", "GET")
      return goError(c, "Method Not Allowed", 405)
    })
  }

  if (deps.gateway !== undefined) mountGateway(app, deps.gateway, { logger })
  if (deps.v2 !== undefined) mountV2(app, deps.v2)

  app.notFound((c) => goError(c, "404 page not found", 404))
  app.onError((error, c) => {
    logger.warn("http handler failed", { path: c.req.path, error: error.message })
    return goError(c, "Internal Server Error", 500)
  })
  return app
}

interface Health {
  health: "true" | "false"
  reason: string
}

async function checkHealth(deps: HttpDeps, excludedAlarms: Set<string>, serializable: boolean, read: Check): Promise<Health> {
  for (const alarm of deps.alarms()) {
    if (excludedAlarms.has(alarm)) continue
    const reason = alarm === "NOSPACE" || alarm === "CORRUPT" ? `ALARM ${alarm}` : "ALARM UNKNOWN"
    return { health: "false", reason }
  }
  if (!serializable && !deps.hasLeader()) return { health: "false", reason: "RAFT NO LEADER" }
  try {
    await read()
  } catch (e) {
    return { health: "false", reason: `RANGE ERROR:${errorText(e)}` }
  }
  return { health: "true", reason: "" }
}

interface HealthMetrics {
  success: Counter
  failures: Counter
  gauge: Gauge
  total: Counter
}

async function runChecks(c: Context, type: string, checks: readonly [string, Check][], metrics: HealthMetrics, logger: Logger): Promise<Response> {
  let ok = true
  let reason = ""
  for (const [name, check] of checks) {
    try {
      await check()
      reason += `[+]${name} ok\n`
      metrics.gauge.labels(type, name).set(1)
      metrics.total.labels(type, name, "success").inc()
    } catch (e) {
      ok = false
      reason += `[-]${name} failed: ${errorText(e)}\n`
      metrics.gauge.labels(type, name).set(0)
      metrics.total.labels(type, name, "error").inc()
    }
  }
  if (!ok) {
    logger.error("Health check error", { path: c.req.path, reason, "status-code": 503 })
    return goError(c, reason, 503)
  }
  const verbose = c.req.queries("verbose") !== undefined
  return whole(c, `${verbose ? reason : ""}ok\n`, 200, { "content-type": TEXT, "x-content-type-options": "nosniff" })
}

/** Go's http.Error. */
function goError(c: Context, text: string, status: 404 | 405 | 500 | 503): Response {
  return whole(c, `${text}\n`, status, { "content-type": TEXT, "x-content-type-options": "nosniff" })
}

/** A small answer written whole: Go's server gives it a Content-Length. */
function whole(c: Context, body: string, status: 200 | 404 | 405 | 500 | 503, headers: Record<string, string>): Response {
  return c.body(body, status, { ...headers, "content-length": String(Buffer.byteLength(body)) })
}

function healthMetrics(registry: Registry): HealthMetrics {
  const counter = (name: string, help: string, labelNames?: string[]): Counter =>
    (registry.get(name) as Counter | undefined) ?? registry.counter(labelNames === undefined ? { name, help } : { name, help, labelNames })
  return {
    success: counter("etcd_server_health_success", "The total number of successful health checks"),
    failures: counter("etcd_server_health_failures", "The total number of failed health checks"),
    gauge:
      (registry.get("etcd_server_healthcheck") as Gauge | undefined) ??
      registry.gauge({ name: "etcd_server_healthcheck", help: "The result of each kind of healthcheck.", labelNames: ["type", "name"] }),
    total: counter("etcd_server_healthchecks_total", "The total number of each kind of healthcheck.", ["type", "name", "status"]),
  }
}

function withTimeout(promise: Promise<void>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<void>((_, reject) => {
    timer = setTimeout(() => reject(new Error("context deadline exceeded")), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e)
}

/** client_golang's promhttp handler metrics (shared by the client and the --listen-metrics-urls apps). */
function scrapeMetrics(registry: Registry): { inFlight: Gauge; ok: CounterChild } {
  const inFlight =
    (registry.get("promhttp_metric_handler_requests_in_flight") as Gauge | undefined) ??
    registry.gauge({ name: "promhttp_metric_handler_requests_in_flight", help: "Current number of scrapes being served." })
  const total =
    (registry.get("promhttp_metric_handler_requests_total") as Counter | undefined) ??
    registry.counter({ name: "promhttp_metric_handler_requests_total", help: "Total number of scrapes by HTTP status code.", labelNames: ["code"] })
  for (const code of ["500", "503"]) total.labels(code)
  return { inFlight, ok: total.labels("200") }
}
