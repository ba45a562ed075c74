// --cors with a list of origins, on the compiled member and on etcd 3.4: an allowed
// Origin is echoed back in Access-Control-Allow-Origin, another gets no CORS headers,
// a preflight OPTIONS is 200 either way; the default (*) allows every origin.
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test"
import { type MemberProcess, startMember } from "../support/procs"

setDefaultTimeout(60_000)

const members: MemberProcess[] = []

beforeAll(async () => {
  const args = ["--cors", "http://a.example:8080,http://b.example:8080"]
  members.push(...(await Promise.all([startMember({ kind: "etcd", name: "cors", extraArgs: args }), startMember({ kind: "tskv", name: "cors", extraArgs: args }), startMember({ kind: "tskv", name: "corsdefault" })])))
})

afterAll(async () => {
  for (const m of members) await m.stop()
})

async function cors(m: MemberProcess, method: string, origin: string | undefined): Promise<unknown> {
  const headers: Record<string, string> = origin === undefined ? {} : { origin }
  const res = await fetch(`${m.clientUrl}/v3/kv/range`, { method, headers, body: method === "POST" ? '{"key":"YQ=="}' : null, signal: AbortSignal.timeout(10_000) })
  await res.text()
  const picked: Record<string, string> = {}
  res.headers.forEach((value, name) => {
    if (name.startsWith("access-control-")) picked[name] = value
  })
  return { status: res.status, cors: picked }
}

test("--cors with origins: allowed ones echoed, others get no CORS headers, as etcd 3.4", async () => {
  const [etcd, tskv, tskvDefault] = members as [MemberProcess, MemberProcess, MemberProcess]
  for (const method of ["POST", "OPTIONS"]) {
    for (const origin of ["http://a.example:8080", "http://b.example:8080", "http://c.example:8080", undefined]) {
      expect({ method, origin, answer: await cors(tskv, method, origin) }).toEqual({ method, origin, answer: await cors(etcd, method, origin) })
    }
  }
  expect(await cors(tskv, "POST", "http://b.example:8080")).toMatchObject({ status: 200, cors: { "access-control-allow-origin": "http://b.example:8080" } })
  expect(await cors(tskv, "POST", "http://c.example:8080")).toEqual({ status: 200, cors: {} })
  expect(await cors(tskvDefault, "POST", "http://c.example:8080")).toMatchObject({ cors: { "access-control-allow-origin": "*" } })
})

test("--cors origins that are not scheme://host:port are refused at start with exit 2, as etcd 3.4 refuses them", async () => {
  const start = async (kind: "tskv" | "etcd", value: string): Promise<{ code: number; first: string }> => {
    const m = await startMember({ kind, name: "corsbad", extraArgs: [`--cors=${value}`], waitReady: false })
    const code = await Promise.race([m.proc.exited, Bun.sleep(15_000).then(() => -1)])
    await m.stop()
    // etcd (Go's flag package) names the flag -cors and lists unix schemes tskv does not serve
    const first = (m.output().split("\n").find((l) => l.startsWith("invalid value")) ?? m.output()).replace(" flag -cors:", " flag --cors:")
    return { code, first }
  }
  const cases = ["http://a.example", "http://a.example:80/app", "http://a.example:80,*"]
  const runs = await Promise.all(cases.flatMap((v) => [start("etcd", v), start("tskv", v)]))
  expect(runs[0]).toEqual({ code: 2, first: 'invalid value "http://a.example" for flag --cors: URL address does not have the form "host:port": http://a.example' })
  expect(runs[1]).toEqual(runs[0])
  expect(runs[3]).toEqual(runs[2])
  expect(runs[4]!.code).toBe(2)
  expect(runs[5]).toEqual({ code: 2, first: 'invalid value "http://a.example:80,*" for flag --cors: URL scheme must be http or https: *' })
})
