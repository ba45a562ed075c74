import { expect, test } from "bun:test"
import { TskvError } from "../../lib/errors"
import { Registry } from "../../lib/metrics"
import { createHttpApp, type HttpDeps } from "./app"

interface FakeMember {
  leader: boolean
  alarms: string[]
  localReadError?: Error
  linearReadError?: Error
  learner: boolean
}

function appFor(member: FakeMember): { app: ReturnType<typeof createHttpApp>; registry: Registry } {
  const registry = new Registry()
  const deps: HttpDeps = {
    hasLeader: () => member.leader,
    alarms: () => member.alarms,
    serializableRead: async () => {
      if (member.localReadError !== undefined) throw member.localReadError
    },
    linearizableRead: async () => {
      if (member.linearReadError !== undefined) throw member.linearReadError
    },
    isLearner: () => member.learner,
    versions: () => ({ server: "3.4.23", cluster: "3.4.0" }),
    registry,
  }
  return { app: createHttpApp(deps), registry }
}

const healthy = (): FakeMember => ({ leader: true, alarms: [], learner: false })

async function get(app: ReturnType<typeof createHttpApp>, path: string, method = "GET"): Promise<{ status: number; body: string; type: string | null }> {
  const response = await app.fetch(new Request(`http://localhost${path}`, { method }))
  return { status: response.status, body: await response.text(), type: response.headers.get("content-type") }
}

test("GET /health answers etcd 3.4's body when healthy", async () => {
  const { app, registry } = appFor(healthy())
  expect(await get(app, "/health")).toEqual({ status: 200, body: '{"health":"true"}', type: "text/plain; charset=utf-8" })
  expect(registry.expose()).toContain("etcd_server_health_success 1\n")
})

test("GET /health is 503 {\"health\":\"false\"} for an alarm, no leader, or a failed read (etcd 3.4 only logs the reason)", async () => {
  const member = healthy()
  const { app, registry } = appFor(member)
  member.alarms = ["NOSPACE"]
  expect(await get(app, "/health")).toEqual({ status: 503, body: '{"health":"false"}\n', type: "text/plain; charset=utf-8" })
  expect((await get(app, "/health?exclude=NOSPACE")).status).toBe(200)
  member.alarms = []
  member.leader = false
  expect((await get(app, "/health")).body).toBe('{"health":"false"}\n')
  member.linearReadError = new TskvError("noLeader")
  expect((await get(app, "/health?serializable=true")).status).toBe(200)
  member.leader = true
  expect((await get(app, "/health")).body).toBe('{"health":"false"}\n')
  expect(registry.expose()).toContain("etcd_server_health_failures 3\n")
})

test("GET /livez and /readyz answer ok, list checks with ?verbose, honour ?exclude and per-check paths", async () => {
  const member = healthy()
  const { app } = appFor(member)
  expect(await get(app, "/livez")).toEqual({ status: 200, body: "ok\n", type: "text/plain; charset=utf-8" })
  expect((await get(app, "/readyz?verbose")).body).toBe("[+]data_corruption ok\n[+]serializable_read ok\n[+]linearizable_read ok\n[+]non_learner ok\nok\n")
  member.linearReadError = new TskvError("timeout")
  member.learner = true
  expect(await get(app, "/readyz")).toEqual({
    status: 503,
    body: "[+]data_corruption ok\n[+]serializable_read ok\n[-]linearizable_read failed: etcdserver: request timed out\n[-]non_learner failed: not supported for learner\n\n",
    type: "text/plain; charset=utf-8",
  })
  expect((await get(app, "/readyz?exclude=linearizable_read&exclude=non_learner&verbose")).body).toBe("[+]data_corruption ok\n[+]serializable_read ok\nok\n")
  expect((await get(app, "/readyz/serializable_read")).status).toBe(200)
  expect((await get(app, "/readyz/linearizable_read")).status).toBe(503)
  expect((await get(app, "/livez")).status).toBe(200)
  member.alarms = ["CORRUPT"]
  expect((await get(app, "/readyz/data_corruption")).body).toBe("[-]data_corruption failed: alarm activated: CORRUPT\n\n")
})

test("GET /version answers the versions the server passes", async () => {
  const { app } = appFor(healthy())
  expect(await get(app, "/version")).toEqual({ status: 200, body: '{"etcdserver":"3.4.23","etcdcluster":"3.4.0"}', type: "application/json" })
})

test("GET /metrics serves the registry in the text format", async () => {
  const { app, registry } = appFor(healthy())
  registry.counter({ name: "tskv_test_total", help: "A test." }).inc(3)
  const response = await get(app, "/metrics")
  expect(response.type).toBe("text/plain; version=0.0.4; charset=utf-8")
  expect(response.body).toContain("# HELP tskv_test_total A test.\n# TYPE tskv_test_total counter\ntskv_test_total 3\n")
})

test("health endpoints refuse other methods with 405 and unknown paths with 404", async () => {
  const { app } = appFor(healthy())
  expect(await get(app, "/health", "POST")).toEqual({ status: 405, body: "Method Not Allowed\n", type: "text/plain; charset=utf-8" })
  expect(await get(app, "/nope")).toEqual({ status: 404, body: "404 page not found\n", type: "text/plain; charset=utf-8" })
})
