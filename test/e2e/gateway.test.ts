// The /v3 JSON gateway on the client port of the compiled member, side by
// side with real etcd 3.4: the same HTTP requests to both, the answers
// compared once ids, terms and lease ids are masked (status code and JSON
// body: int64 as strings, bytes base64, proto field names, etcd's error
// objects). Streaming calls (watch, observe) are read line by line.

import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test"
import { hasEtcd, type MemberProcess, startMember } from "../support/procs"

// Spawned binaries are slow to start on a loaded 2-core machine.
setDefaultTimeout(30_000)

const b64 = (s: string): string => Buffer.from(s).toString("base64")

interface Answer {
  status: number
  body: unknown
}

async function post(m: MemberProcess, path: string, body: unknown): Promise<Answer> {
  const res = await fetch(`${m.clientUrl}${path}`, {
    method: "POST",
    body: typeof body === "string" ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  })
  const text = await res.text()
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    parsed = text
  }
  return { status: res.status, body: parsed }
}

/** Reads `count` newline-delimited JSON objects of a streaming call, then hangs up. */
async function stream(m: MemberProcess, path: string, body: unknown, count: number, during?: () => Promise<void>): Promise<{ status: number; lines: unknown[] }> {
  const abort = new AbortController()
  const timer = setTimeout(() => abort.abort(), 3_000)
  const res = await fetch(`${m.clientUrl}${path}`, { method: "POST", body: JSON.stringify(body), signal: abort.signal })
  const lines: unknown[] = []
  const reader = res.body!.getReader()
  const decoder = new TextDecoder()
  let buffered = ""
  let started = false
  try {
    while (lines.length < count) {
      if (!started && during) {
        started = true
        void during()
      }
      const next = await reader.read().catch(() => ({ value: undefined, done: true as const }))
      if (next.done) break
      const value = next.value
      buffered += decoder.decode(value, { stream: true })
      let nl: number
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl).trim()
        buffered = buffered.slice(nl + 1)
        if (line !== "") lines.push(JSON.parse(line))
      }
    }
  } finally {
    clearTimeout(timer)
    abort.abort()
  }
  return { status: res.status, lines }
}

/** Masks what differs between two clusters by nature: ids, terms, lease ids (also inside lock keys). */
function mask(value: unknown, leases: Map<string, string>): unknown {
  if (Array.isArray(value)) return value.map((v) => mask(v, leases))
  if (value === null || typeof value !== "object") return value
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (k === "cluster_id" || k === "member_id" || k === "raft_term") out[k] = "<masked>"
    else if ((k === "ID" || k === "lease") && typeof v === "string") out[k] = leaseName(v, leases)
    else if (k === "key" && typeof v === "string") out[k] = maskLeaseInKey(v, leases)
    else out[k] = mask(v, leases)
  }
  return out
}

function leaseName(id: string, leases: Map<string, string>): string {
  if (id === "0") return id
  let name = leases.get(id)
  if (name === undefined) {
    name = `<lease${leases.size + 1}>`
    leases.set(id, name)
  }
  return name
}

/** `name/<lease hex>` keys of the lock and election recipes. */
function maskLeaseInKey(key: string, leases: Map<string, string>): string {
  const text = Buffer.from(key, "base64").toString()
  const m = /^(.*\/)([0-9a-f]{1,16})$/.exec(text)
  if (!m) return key
  const id = BigInt(`0x${m[2]}`).toString()
  if (!leases.has(id)) return key
  return `${m[1]}${leases.get(id)}`
}

let etcd: MemberProcess
let tskv: MemberProcess
const etcdLeases = new Map<string, string>()
const tskvLeases = new Map<string, string>()

beforeAll(async () => {
  if (!hasEtcd()) return
  ;[etcd, tskv] = await Promise.all([startMember({ kind: "etcd", name: "gw" }), startMember({ kind: "tskv", name: "gw" })])
})

afterAll(async () => {
  await etcd?.stop()
  await tskv?.stop()
})

/** Sends the same request to both; returns both answers masked. */
async function both(path: string, body: unknown): Promise<{ etcd: Answer; tskv: Answer }> {
  const e = await post(etcd, path, body)
  const t = await post(tskv, path, body)
  return {
    etcd: { status: e.status, body: mask(e.body, etcdLeases) },
    tskv: { status: t.status, body: mask(t.body, tskvLeases) },
  }
}

async function same(path: string, body: unknown): Promise<Answer> {
  const r = await both(path, body)
  expect(r.tskv).toEqual(r.etcd)
  return r.tskv
}

describe.if(hasEtcd())("/v3 gateway: tskv answers as etcd 3.4", () => {
  test("kv put, range (with count_only over the whole keyspace), deleterange with prev_kv", async () => {
    const put = await same("/v3/kv/put", { key: b64("foo"), value: b64("bar") })
    expect(put.status).toBe(200)
    expect((put.body as { header: { revision: string } }).header.revision).toBe("2")
    await same("/v3/kv/put", { key: b64("foo"), value: b64("baz"), prev_kv: true })
    await same("/v3/kv/put", { key: b64("zoo"), value: b64("1") })
    const range = await same("/v3/kv/range", { key: b64("foo") })
    expect((range.body as { count: string }).count).toBe("1")
    await same("/v3/kv/range", { key: "AA==", range_end: "AA==", count_only: true })
    await same("/v3/kv/range", { key: "AA==", range_end: "AA==", keys_only: true, limit: 1 })
    await same("/v3/kv/range", { key: b64("foo"), revision: "2" })
    await same("/v3/kv/range", { key: b64("nothing") })
    // an unknown sort order number: etcd 3.4 reads the range unsorted, limit after (3.5 refuses it)
    const unknownOrder = await same("/v3/kv/range", { key: "AA==", range_end: "AA==", sort_order: 7, limit: 1 })
    expect(unknownOrder).toMatchObject({ status: 200, body: { more: true, count: "2" } })
    await same("/v3/kv/range", { key: "AA==", range_end: "AA==", sort_order: 7, sort_target: "MOD" })
    await same("/v3/kv/deleterange", { key: b64("zoo"), prev_kv: true })
  })

  test("txn: failure branch with a range, success branch with a put", async () => {
    const txn = {
      compare: [{ target: "CREATE", key: b64("foo"), create_revision: "0" }],
      success: [{ request_put: { key: b64("foo"), value: b64("new") } }],
      failure: [{ request_range: { key: b64("foo") } }],
    }
    await same("/v3/kv/txn", txn)
    await same("/v3/kv/txn", { ...txn, compare: [{ target: "VALUE", key: b64("foo"), value: b64("baz") }] })
    await same("/v3/kv/range", { key: b64("foo") })
  })

  test("errors: etcd's message, gRPC code and HTTP status", async () => {
    const empty = await same("/v3/kv/range", {})
    expect(empty.status).toBe(400)
    expect(empty.body).toEqual({ error: "etcdserver: key is not provided", message: "etcdserver: key is not provided", code: 3 })
    const future = await same("/v3/kv/range", { key: b64("foo"), revision: "1000" })
    expect(future.status).toBe(400)
    await same("/v3/lease/revoke", { ID: "1" })
    await same("/v3/kv/put", { key: b64("foo"), value: b64("x"), lease: "1" })
    await same("/v3/kv/txn", {
      success: [{ request_put: { key: b64("d"), value: b64("1") } }, { request_put: { key: b64("d"), value: b64("2") } }],
    })
    await same("/v3/election/leader", { name: b64("none") })
    const compact = await same("/v3/kv/compaction", { revision: "3" })
    expect(compact.status).toBe(200)
    const compacted = await same("/v3/kv/range", { key: b64("foo"), revision: "2" })
    expect(compacted.status).toBe(400)
    expect((compacted.body as { code: number }).code).toBe(11)
  })

  test("leases: grant, timetolive with keys, leases, revoke", async () => {
    const grant = await same("/v3/lease/grant", { TTL: "30" })
    const id = (await post(tskv, "/v3/lease/leases", {})).body as { leases: { ID: string }[] }
    const etcdIds = (await post(etcd, "/v3/lease/leases", {})).body as { leases: { ID: string }[] }
    expect(grant.body).toMatchObject({ TTL: "30" })
    const tId = id.leases[0]!.ID
    const eId = etcdIds.leases[0]!.ID
    const e = await post(etcd, "/v3/kv/put", { key: b64("leased"), value: b64("v"), lease: eId })
    const t = await post(tskv, "/v3/kv/put", { key: b64("leased"), value: b64("v"), lease: tId })
    expect(mask(t.body, tskvLeases)).toEqual(mask(e.body, etcdLeases))
    const ttlE = await post(etcd, "/v3/kv/lease/timetolive", { ID: eId, keys: true })
    const ttlT = await post(tskv, "/v3/kv/lease/timetolive", { ID: tId, keys: true })
    expect(ttlT.status).toBe(ttlE.status)
    expect(mask(ttlT.body, tskvLeases)).toEqual(mask(ttlE.body, etcdLeases))
    const revE = await post(etcd, "/v3/lease/revoke", { ID: eId })
    const revT = await post(tskv, "/v3/lease/revoke", { ID: tId })
    expect(mask(revT.body, tskvLeases)).toEqual(mask(revE.body, etcdLeases))
    await same("/v3/kv/range", { key: b64("leased") })
  })

  test("watch streams {\"result\": ...} lines: created, then events from a past revision and new ones", async () => {
    const first = await same("/v3/kv/put", { key: b64("w"), value: b64("1") })
    await same("/v3/kv/put", { key: b64("w"), value: b64("2") })
    const from = (first.body as { header: { revision: string } }).header.revision
    const watch = (m: MemberProcess): ReturnType<typeof stream> =>
      stream(m, "/v3/watch", { create_request: { key: b64("w"), start_revision: from, prev_kv: true } }, 3, async () => {
        await Bun.sleep(200)
        await post(m, "/v3/kv/put", { key: b64("w"), value: b64("3") })
      })
    const [e, t] = await Promise.all([watch(etcd), watch(tskv)])
    expect(t.status).toBe(e.status)
    // etcd sends the catch-up events in one response; the same number of events in all.
    const events = (lines: unknown[]): unknown[] => lines.flatMap((l) => ((l as { result: { events?: unknown[] } }).result.events ?? []))
    expect(mask(t.lines[0], tskvLeases)).toEqual(mask(e.lines[0], etcdLeases))
    const more = async (m: MemberProcess, lines: unknown[]): Promise<unknown[]> => {
      const deadline = Date.now() + 2000
      while (events(lines).length < 3 && Date.now() < deadline) await Bun.sleep(50)
      return events(lines)
    }
    expect(events(e.lines).length).toBe(3)
    expect(mask(await more(tskv, t.lines), tskvLeases)).toEqual(mask(await more(etcd, e.lines), etcdLeases))
  }, 15_000)

  test("lock and election over the gateway", async () => {
    const grantE = (await post(etcd, "/v3/lease/grant", { TTL: "30" })).body as { ID: string }
    const grantT = (await post(tskv, "/v3/lease/grant", { TTL: "30" })).body as { ID: string }
    mask({ ID: grantE.ID }, etcdLeases)
    mask({ ID: grantT.ID }, tskvLeases)
    const lockE = await post(etcd, "/v3/lock/lock", { name: b64("mylock"), lease: grantE.ID })
    const lockT = await post(tskv, "/v3/lock/lock", { name: b64("mylock"), lease: grantT.ID })
    expect(lockT.status).toBe(200)
    expect(mask(lockT.body, tskvLeases)).toEqual(mask(lockE.body, etcdLeases))
    const keyE = (lockE.body as { key: string }).key
    const keyT = (lockT.body as { key: string }).key
    const unE = await post(etcd, "/v3/lock/unlock", { key: keyE })
    const unT = await post(tskv, "/v3/lock/unlock", { key: keyT })
    expect(mask(unT.body, tskvLeases)).toEqual(mask(unE.body, etcdLeases))

    const campE = await post(etcd, "/v3/election/campaign", { name: b64("el"), lease: grantE.ID, value: b64("v1") })
    const campT = await post(tskv, "/v3/election/campaign", { name: b64("el"), lease: grantT.ID, value: b64("v1") })
    expect(mask(campT.body, tskvLeases)).toEqual(mask(campE.body, etcdLeases))
    const leaderE = (campE.body as { leader: unknown }).leader
    const leaderT = (campT.body as { leader: unknown }).leader
    const proE = await post(etcd, "/v3/election/proclaim", { leader: leaderE, value: b64("v2") })
    const proT = await post(tskv, "/v3/election/proclaim", { leader: leaderT, value: b64("v2") })
    expect(mask(proT.body, tskvLeases)).toEqual(mask(proE.body, etcdLeases))
    await same("/v3/election/leader", { name: b64("el") })
    const [obsE, obsT] = await Promise.all([stream(etcd, "/v3/election/observe", { name: b64("el") }, 1), stream(tskv, "/v3/election/observe", { name: b64("el") }, 1)])
    expect(mask(obsT.lines, tskvLeases)).toEqual(mask(obsE.lines, etcdLeases))
    const resE = await post(etcd, "/v3/election/resign", { leader: leaderE })
    const resT = await post(tskv, "/v3/election/resign", { leader: leaderT })
    expect(mask(resT.body, tskvLeases)).toEqual(mask(resE.body, etcdLeases))
    // After the resign: no leader, and the old leader key proclaims no more.
    await same("/v3/election/leader", { name: b64("el") })
    const staleE = await post(etcd, "/v3/election/proclaim", { leader: leaderE, value: b64("v3") })
    const staleT = await post(tskv, "/v3/election/proclaim", { leader: leaderT, value: b64("v3") })
    expect(staleT).toEqual(staleE)
    expect(staleT.status).toBe(500)
    await same("/v3/election/proclaim", { leader: {}, value: b64("x") })
    await same("/v3/election/proclaim", { value: b64("x") })
    await same("/v3/election/resign", {})
    // A lock on a lease that does not exist.
    await same("/v3/lock/lock", { name: b64("nolease"), lease: "1" })
    await same("/v3/lock/lock", { lease: "1" })
  }, 15_000)

  test("lease keepalive answers each request in the body with {\"result\": ...}, the unknown id too; ids as JSON numbers are exact", async () => {
    const ids: Record<string, string> = {}
    for (const [name, m] of [["etcd", etcd], ["tskv", tskv]] as const) {
      const grant = (await post(m, "/v3/lease/grant", { TTL: "60" })).body as { ID: string }
      ids[name] = grant.ID
      mask({ ID: grant.ID }, name === "etcd" ? etcdLeases : tskvLeases)
    }
    const run = async (m: MemberProcess, id: string, leases: Map<string, string>): Promise<unknown> => {
      // the id unquoted: a number past 2^53, as Python's json and etcd3gw send it
      const keepalive = await fetch(`${m.clientUrl}/v3/lease/keepalive`, { method: "POST", body: `{"ID":${id}}{"ID":"${id}"}\n{"ID":"12345"}`, signal: AbortSignal.timeout(10_000) })
      const lines = (await keepalive.text()).trim().split("\n").map((line) => mask(JSON.parse(line), leases))
      const put = await post(m, "/v3/kv/put", `{"key":"${b64("ka")}","value":"${b64("v")}","lease":${id}}`)
      const ttl = await post(m, "/v3/lease/timetolive", `{"ID":${id},"keys":true}`)
      const revoke = await post(m, "/v3/lease/revoke", `{"ID":${id}}`)
      const ttlText = JSON.stringify(mask(ttl.body, leases)).replace(/"TTL":"(59|60)"/, '"TTL":"<ttl>"')
      return { status: keepalive.status, type: keepalive.headers.get("content-type"), lines, put: mask(put, leases), ttl: ttlText, revoke: mask(revoke, leases) }
    }
    const e = await run(etcd, ids.etcd!, etcdLeases)
    const t = await run(tskv, ids.tskv!, tskvLeases)
    expect(t).toEqual(e)
    expect((e as { lines: unknown[] }).lines).toHaveLength(3)
  })

  test("bad JSON, wrong types, unknown fields: etcd's status, code and Go's message, word for word", async () => {
    const bodies = [
      "{not json",
      "{",
      "[]",
      '"str"',
      "null",
      "",
      '{"key":"Zm9v",}',
      '{"key":5}',
      '{"key":"Zm9v_-"}',
      '{"key":"Zm9"}',
      '{"key":"Zm9v","limit":1.5}',
      '{"key":"Zm9v","limit":"abc"}',
      '{"key":"Zm9v","limit":"7"}',
      '{"key":"Zm9v","limit":99999999999999999999}',
      '{"key":"Zm9v","keys_only":"true"}',
      '{"key":"Zm9v","sort_order":"BOGUS"}',
      '{"key":"Zm9v","sort_order":true}',
      '{"key":"Zm9v","sortOrder":"DESCEND","sort_target":"MOD"}',
      '{"key":"Zm9v","nope":{"deep":[1]}}',
      '{"key":[102,111,111]}',
    ]
    for (const body of bodies) {
      const r = await both("/v3/kv/range", body)
      expect({ request: body, ...r.tskv }).toEqual({ request: body, ...r.etcd })
    }
    for (const [path, body] of [
      ["/v3/kv/put", '{"key":"Zm9v","value":"***"}'],
      ["/v3/kv/put", '{"key":"Zm9v","value":"YQ==","lease":"-1"}'],
      ["/v3/kv/txn", '{"compare":{}}'],
      ["/v3/kv/txn", '{"success":[{"request_put":"x"}]}'],
      ["/v3/lease/keepalive", '{"ID":"x"}'],
      ["/v3/watch", '{"create_request":{"key":"Zm9v","filters":["BOGUS"]}}'],
      ["/v3/maintenance/alarm", '{"action":"BOGUS"}'],
      ["/v3/maintenance/alarm", '{"action":"GET"}'],
      ["/v3/auth/user/get", '{"name":1}'],
      ["/v3/kv/nothing", "{}"],
      ["/v3/auth/status", "{}"],
    ] as const) {
      const r = await both(path, body)
      expect({ path, request: body, ...r.tskv }).toEqual({ path, request: body, ...r.etcd })
    }
  })
})
