// --grpc-keepalive-min-time, --grpc-keepalive-interval and
// --grpc-keepalive-timeout, against etcd 3.4 with the same flags: raw HTTP/2
// pings at a fixed spacing with and without a stream open (grpc-go's
// enforcement: without a stream no keepalive is allowed at all, with one
// the minimum applies), and the server's own pings to a client that answers
// them and to one that does not (test/go/clientv3_check -only keepalive).

import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test"
import { runToExit } from "../integration/member_support"
import { buildGoClient, type GoCheck, hostPort, runGoClient } from "../support/go_client"
import { hasEtcd, type MemberProcess, startMember } from "../support/procs"

setDefaultTimeout(60_000)

const SHORT = ["--grpc-keepalive-min-time=100ms", "--grpc-keepalive-interval=1s", "--grpc-keepalive-timeout=1s"]
type Setup = "defaults" | "short"
type Kind = "etcd" | "tskv"

const members: MemberProcess[] = []
const results = new Map<string, Map<string, GoCheck>>()
const key = (kind: Kind, setup: Setup): string => `${kind}/${setup}`

beforeAll(async () => {
  if (!hasEtcd()) throw new Error("real etcd 3.4 is required: apt-get install -y etcd-server (.ci/run does)")
  buildGoClient()
  const runs: Promise<void>[] = []
  for (const kind of ["etcd", "tskv"] as const)
    for (const setup of ["defaults", "short"] as const)
      runs.push(
        (async () => {
          const m = await startMember({ kind, name: `ka-${setup}`, extraArgs: setup === "short" ? SHORT : [] })
          members.push(m)
          const lines = (await runGoClient(hostPort(m.clientUrl), ["-only", "keepalive", "-ping-spacing", "300ms"])) as unknown as GoCheck[]
          results.set(key(kind, setup), new Map(lines.map((l) => [l.check, l])))
        })(),
      )
  await Promise.all(runs)
})

afterAll(async () => {
  await Promise.all(members.map((m) => m.stop()))
})

function resultOf(kind: Kind, setup: Setup, check: string): GoCheck["result"] {
  const r = results.get(key(kind, setup))?.get(check)
  expect(r, `${kind} ${setup} ${check}`).toBeDefined()
  expect({ check, error: r!.error }).toEqual({ check, error: undefined })
  return r!.result
}

const expected: Record<Setup, Record<string, unknown>> = {
  defaults: {
    // 300 ms apart: within 2 h (no stream) and within 5 s (a stream open): the third strike, on the 4th ping.
    spaced_pings_idle: { pings: 4, goaway: "ENHANCE_YOUR_CALM too_many_pings" },
    spaced_pings_open_stream: { pings: 4, goaway: "ENHANCE_YOUR_CALM too_many_pings" },
    // The server pings every 2 h: not within the 8 s the check waits.
    server_ping_unanswered: { pinged: false, closed: false },
    server_ping_answered: { pinged: false, closed: false },
  },
  short: {
    // The 100 ms minimum lets a stream's pings be; without a stream none is allowed, whatever the flag.
    spaced_pings_idle: { pings: 4, goaway: "ENHANCE_YOUR_CALM too_many_pings" },
    spaced_pings_open_stream: { pings: 6, goaway: "" },
    // A ping after 1 s without a read; nothing read within 1 s more closes the connection.
    server_ping_unanswered: { pinged: true, closed: true },
    server_ping_answered: { pinged: true, closed: false },
  },
}

for (const setup of ["defaults", "short"] as const) {
  describe(`--grpc-keepalive-* ${setup === "short" ? SHORT.join(" ") : "at their defaults (5s, 2h, 20s)"}: as etcd`, () => {
    for (const [check, want] of Object.entries(expected[setup])) {
      test(check, () => {
        expect(resultOf("etcd", setup, check)).toEqual(want as Record<string, unknown>)
        expect(resultOf("tskv", setup, check)).toEqual(want as Record<string, unknown>)
      })
    }
  })
}

describe("--grpc-keepalive-*: bad values are refused", () => {
  for (const flag of ["grpc-keepalive-min-time", "grpc-keepalive-interval", "grpc-keepalive-timeout"]) {
    test(`--${flag}=soon`, () => {
      const r = runToExit([`--${flag}=soon`])
      expect(r.code).toBe(2)
      expect(r.stderr).toStartWith(`invalid value "soon" for flag --${flag}: `)
    })
    test(`ETCD_${flag.toUpperCase().replaceAll("-", "_")}=zz`, () => {
      const env = `ETCD_${flag.toUpperCase().replaceAll("-", "_")}`
      const r = runToExit([], { [env]: "zz" })
      expect(r.code).toBe(2)
      expect(r.stderr).toStartWith(`invalid value "zz" for ${env}: `)
    })
  }
})
