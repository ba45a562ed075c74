// --client-cert-auth: the verified client certificate's common name is the
// user when no token is sent, and a password login takes precedence; run
// with real etcdctl against etcd 3.4 and dist/tskv with the same
// certificates, outputs compared.

import { afterAll, beforeAll, expect, test } from "bun:test"
import { etcdctl, hasEtcd, type MemberProcess, startMember } from "../support/procs"
import { freePorts } from "../support/ports"
import { writeTestPki } from "../support/pki"
import { tempDir } from "../support/tmp"
import { mask } from "./differential_steps"

const dir = tempDir("auth-cn-")
const members: MemberProcess[] = []
let files: Record<string, string> = {}

beforeAll(async () => {
  if (!hasEtcd()) throw new Error("real etcd 3.4 is required: apt-get install -y etcd-server etcd-client")
  files = await writeTestPki({ dir: dir.path, caName: "auth-test-ca", clients: ["root", "alice", "mallory"] })
})

afterAll(async () => {
  await Promise.all(members.map((m) => m.stop()))
  dir.remove()
})

async function startTls(kind: "etcd" | "tskv"): Promise<{ m: MemberProcess; ep: string }> {
  const [clientPort, peerPort] = (await freePorts(2)) as [number, number]
  const url = `https://127.0.0.1:${clientPort}`
  const m = await startMember({
    kind,
    name: "cn",
    clientPort,
    peerPort,
    waitReady: false,
    extraArgs: [
      `--listen-client-urls=${url}`,
      `--advertise-client-urls=${url}`,
      `--cert-file=${files.serverCert}`,
      `--key-file=${files.serverKey}`,
      `--trusted-ca-file=${files.ca}`,
      "--client-cert-auth=true",
      "--bcrypt-cost=4",
    ],
  })
  members.push(m)
  const ep = `127.0.0.1:${clientPort}`
  const deadline = Date.now() + 20_000
  while (ctl(ep, "root", ["endpoint", "health"]).code !== 0) {
    if (Date.now() > deadline || m.proc.exitCode !== null) throw new Error(`${kind} did not start:\n${m.output()}`)
    await Bun.sleep(100)
  }
  return { m, ep }
}

function ctl(ep: string, cn: string, args: string[]): ReturnType<typeof etcdctl> {
  return etcdctl(ep, [`--cacert=${files.ca}`, `--cert=${files[`${cn}Cert`]}`, `--key=${files[`${cn}Key`]}`, ...args])
}

const steps: { cn: string; args: string[] }[] = [
  { cn: "root", args: ["user", "add", "root:rootpw"] },
  { cn: "root", args: ["role", "add", "root"] },
  { cn: "root", args: ["user", "grant-role", "root", "root"] },
  { cn: "root", args: ["user", "add", "alice:apw"] },
  { cn: "root", args: ["role", "add", "ro"] },
  { cn: "root", args: ["role", "grant-permission", "ro", "read", "/app/", "--prefix"] },
  { cn: "root", args: ["user", "grant-role", "alice", "ro"] },
  { cn: "root", args: ["put", "/app/x", "1"] },
  { cn: "root", args: ["auth", "enable"] },
  { cn: "alice", args: ["get", "/app/x"] },
  { cn: "alice", args: ["put", "/app/x", "2"] },
  { cn: "alice", args: ["user", "list"] },
  { cn: "alice", args: ["user", "get", "alice"] },
  { cn: "alice", args: ["defrag"] },
  { cn: "mallory", args: ["get", "/app/x"] },
  { cn: "mallory", args: ["user", "get", "mallory"] },
  { cn: "root", args: ["user", "list"] },
  { cn: "root", args: ["put", "/app/x", "3"] },
  { cn: "alice", args: ["--user", "root:rootpw", "put", "/app/x", "4"] },
  { cn: "root", args: ["--user", "alice:apw", "put", "/app/x", "5"] },
  { cn: "root", args: ["--user", "alice:wrong", "get", "/app/x"] },
  { cn: "alice", args: ["get", "/app/x", "--print-value-only"] },
  { cn: "root", args: ["auth", "disable"] },
  { cn: "mallory", args: ["get", "/app/x", "--print-value-only"] },
]

test("client certificate CN is the user (etcd 3.4 and tskv agree)", async () => {
  const [e, t] = await Promise.all([startTls("etcd"), startTls("tskv")])
  const diffs: string[] = []
  const tskvOut: string[] = []
  const show = (r: ReturnType<typeof etcdctl>, ep: string): string => `exit ${r.code}\n${mask(r.stdout, [ep])}\n${mask(r.stderr, [ep])}`
  for (const step of steps) {
    const a = show(ctl(e.ep, step.cn, step.args), e.ep)
    const b = show(ctl(t.ep, step.cn, step.args), t.ep)
    tskvOut.push(b)
    if (a !== b) diffs.push(`--- ${step.cn}: ${step.args.join(" ")}\netcd:\n${a}\ntskv:\n${b}`)
  }
  expect(diffs.join("\n")).toBe("")
  // The CN really was the user: alice could read but not write, mallory (no such user) could do nothing.
  expect(tskvOut[9]).toStartWith("exit 0\n/app/x\n1\n")
  expect(tskvOut[10]).toContain("Error: etcdserver: permission denied")
  expect(tskvOut[14]).toContain("Error: etcdserver: permission denied")
  expect(tskvOut[21]).toBe("exit 0\n4\n\n")
}, 60_000)
