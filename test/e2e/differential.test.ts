// Differential test: real etcd 3.4 (Debian's etcd-server) and dist/tskv are
// started with the same flags, the same sequence of real etcdctl 3.4 commands
// runs against both, and the outputs must be identical once ids, terms,
// sizes, versions, hashes and timings are masked.

import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { spawn } from "bun"
import { etcdctl, hasEtcd, type MemberProcess, startMember } from "../support/procs"
import { type Ctx, mask, steps } from "./differential_steps"

describe("differential: etcdctl against etcd 3.4 and tskv", () => {
  let etcd: MemberProcess
  let tskv: MemberProcess
  beforeAll(async () => {
    if (!hasEtcd()) throw new Error("real etcd 3.4 is required: apt-get install -y etcd-server etcd-client (.ci/run does)")
    ;[etcd, tskv] = await Promise.all([startMember({ kind: "etcd", name: "d1" }), startMember({ kind: "tskv", name: "d1" })])
  })
  afterAll(async () => {
    await Promise.all([etcd?.stop(), tskv?.stop()])
  })

  test("every step prints the same output and exit code", () => {
    const ctxE: Ctx = { lease: "", lease2: "", rev: 0 }
    const ctxT: Ctx = { lease: "", lease2: "", rev: 0 }
    const diffs: string[] = []
    for (const step of steps) {
      const rE = etcdctl(etcd.clientUrl, step.args(ctxE), step.input)
      const rT = etcdctl(tskv.clientUrl, step.args(ctxT), step.input)
      step.capture?.(rE.stdout, ctxE)
      step.capture?.(rT.stdout, ctxT)
      const a = `exit ${rE.code}\n${mask(rE.stdout, [etcd.clientUrl])}\n${mask(rE.stderr, [etcd.clientUrl])}`
      const b = `exit ${rT.code}\n${mask(rT.stdout, [tskv.clientUrl])}\n${mask(rT.stderr, [tskv.clientUrl])}`
      if (a !== b) diffs.push(`--- step "${step.name}"\netcd:\n${a}\ntskv:\n${b}`)
    }
    if (diffs.length > 0) console.error(tskv.output().slice(-3000))
    expect(diffs.join("\n")).toBe("")
  })

  test("watch from a past revision replays the same events", async () => {
    const startRev = new Map<MemberProcess, number>()
    const run = async (m: MemberProcess): Promise<string> => {
      const proc = spawn(["etcdctl", `--endpoints=${m.clientUrl}`, "watch", "w", "--prefix", "--prev-kv", `--rev=${startRev.get(m)}`, "-w", "json"], {
        env: { ...process.env, ETCDCTL_API: "3" },
        stdout: "pipe",
        stderr: "pipe",
      })
      await Bun.sleep(1500)
      proc.kill()
      return await new Response(proc.stdout).text()
    }
    for (const m of [etcd, tskv]) {
      startRev.set(m, (JSON.parse(etcdctl(m.clientUrl, ["get", "w", "-w", "json"]).stdout).header.revision as number) + 1)
      etcdctl(m.clientUrl, ["put", "w/1", "a"])
      etcdctl(m.clientUrl, ["put", "w/1", "b"])
      etcdctl(m.clientUrl, ["del", "w/1"])
    }
    // Revisions differ between the two stores only if an earlier step diverged; compare events by content.
    const events = (out: string): unknown[] =>
      out
        .trim()
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .flatMap((l) => (JSON.parse(l).Events as { type?: number; kv: { key: string; value?: string; version?: number } }[]) ?? [])
        .map((e) => ({ type: e.type ?? 0, key: e.kv.key, value: e.kv.value ?? "", version: e.kv.version ?? 0 }))
    const [outE, outT] = await Promise.all([run(etcd), run(tskv)])
    expect(events(outT)).toEqual(events(outE))
    expect(events(outE).length).toBe(3)
  })
})
