// deploy/: each file checked as far as this machine allows. The systemd unit
// passes `systemd-analyze verify` and, run the way systemd runs it (its
// Environment=, EnvironmentFile=, ExecStart=, a notify socket and journald
// stood in for), sends READY=1. The Kubernetes manifests parse, hang together
// (selectors, service names, probe ports), and their flags, with this machine's
// addresses and free ports put in, start members that answer the probes. The
// Dockerfile's commands build the image's file tree from dist/tskv, and its
// ENTRYPOINT + CMD + ENV serve as the image's non-root user.

import { afterAll, expect, test } from "bun:test"
import { spawn, spawnSync, type Subprocess } from "bun"
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { DatagramSink } from "../support/datagram_sink"
import { FakeJournald } from "../support/fake_journald"
import { parseJournalEntry } from "../support/journal_entry"
import { freePorts } from "../support/ports"
import { collectOutput, etcdctl, repoRoot, tskvBinary } from "../support/procs"
import { tempDir } from "../support/tmp"

const deploy = join(repoRoot, "deploy")
const running: Subprocess[] = []
afterAll(async () => {
  for (const p of running) p.kill("SIGKILL")
  await Promise.all(running.map((p) => p.exited))
})

interface Launched {
  proc: Subprocess<"ignore", "pipe", "pipe">
  output(): string
}

function track(proc: Subprocess<"ignore", "pipe", "pipe">): Launched {
  running.push(proc)
  return { proc, output: collectOutput(proc) }
}

function launch(argv: string[], env: Record<string, string>): Launched {
  return track(spawn(argv, { stdio: ["ignore", "pipe", "pipe"], env }))
}

/** Waits (bounded) until GET url answers 200. */
async function until200(url: string, l: Launched, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (l.proc.exitCode !== null) throw new Error(`exited ${l.proc.exitCode}:\n${l.output()}`)
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) }).catch(() => undefined)
    if (res?.status === 200) return
    await Bun.sleep(100)
  }
  throw new Error(`${url} not 200 within ${timeoutMs} ms:\n${l.output()}`)
}

/** Replaces every key of `map` in `text` (longest first). */
function substitute(text: string, map: Record<string, string>): string {
  let out = text
  for (const key of Object.keys(map).sort((a, b) => b.length - a.length)) out = out.split(key).join(map[key]!)
  return out
}

// ---- systemd

function unitSettings(text: string, section: string): [key: string, value: string][] {
  const out: [string, string][] = []
  let current = ""
  for (const raw of text.split("\n")) {
    const line = raw.trim()
    if (line === "" || line.startsWith("#")) continue
    if (line.startsWith("[")) current = line
    else if (current === `[${section}]`) {
      const eq = line.indexOf("=")
      out.push([line.slice(0, eq), line.slice(eq + 1)])
    }
  }
  return out
}

function envFile(text: string): Record<string, string> {
  const env: Record<string, string> = {}
  for (const raw of text.split("\n")) {
    const line = raw.trim()
    if (line === "" || line.startsWith("#")) continue
    const eq = line.indexOf("=")
    env[line.slice(0, eq)] = line.slice(eq + 1).replace(/^"(.*)"$/, "$1")
  }
  return env
}

function verifyUnit(text: string): { code: number; output: string } {
  const dir = tempDir("unit-").path
  const path = join(dir, "tskv.service")
  writeFileSync(path, text)
  const r = spawnSync(["systemd-analyze", "verify", "--man=no", path], { timeout: 20_000 })
  return { code: r.exitCode ?? -1, output: r.stdout.toString() + r.stderr.toString() }
}

test("deploy/systemd/tskv.service passes systemd-analyze verify without a warning; a broken copy does not", () => {
  const unit = readFileSync(join(deploy, "systemd/tskv.service"), "utf8")
  const local = unit.replace("ExecStart=/usr/local/bin/tskv", `ExecStart=${tskvBinary}`)
  expect(verifyUnit(local)).toEqual({ code: 0, output: "" })
  expect(verifyUnit(local.replace(/^Type=notify$/m, "Type=notifyy")).output).toContain("Failed to parse service type")
  expect(verifyUnit(local.replace(`ExecStart=${tskvBinary}`, "ExecStart=/nonexistent/tskv")).code).not.toBe(0)
  const service = new Map(unitSettings(unit, "Service"))
  expect(service.get("Type")).toBe("notify")
  expect(service.get("Restart")).toBe("on-failure")
  expect(service.get("LimitNOFILE")).toBe("65536")
  expect(service.get("NoNewPrivileges")).toBe("yes")
  expect(service.get("ProtectSystem")).toBe("strict")
  expect(service.get("ReadWritePaths")).toBe("/var/lib/tskv")
})

test("the unit's Environment=, EnvironmentFile= and ExecStart= start a member that sends READY=1 and logs to journald", async () => {
  const unit = readFileSync(join(deploy, "systemd/tskv.service"), "utf8")
  const settings = unitSettings(unit, "Service")
  const [client, peer, metrics] = (await freePorts(3)) as [number, number, number]
  const ports = { "127.0.0.1:2379": `127.0.0.1:${client}`, "127.0.0.1:2380": `127.0.0.1:${peer}`, "127.0.0.1:2381": `127.0.0.1:${metrics}` }
  const dataDir = join(tempDir("unit-data-").path, "default")
  // systemd: Environment= first, then the EnvironmentFile= (which wins), %H the host name.
  const env: Record<string, string> = { PATH: process.env.PATH ?? "/usr/bin:/bin" }
  for (const [key, value] of settings) {
    if (key !== "Environment") continue
    const eq = value.indexOf("=")
    env[value.slice(0, eq)] = value.slice(eq + 1).replace("%H", "host")
  }
  const fileSetting = settings.find(([k]) => k === "EnvironmentFile")?.[1]
  expect(fileSetting).toBe("-/etc/default/tskv")
  const fromFile = envFile(readFileSync(join(deploy, "systemd/tskv.env"), "utf8"))
  for (const [k, v] of Object.entries(fromFile)) env[k] = substitute(v, ports)
  env.ETCD_DATA_DIR = dataDir
  const notify = new DatagramSink(join(tempDir("unit-notify-").path, "notify"))
  env.NOTIFY_SOCKET = notify.path
  const execStart = settings.find(([k]) => k === "ExecStart")?.[1] ?? ""
  const argv = execStart.split(/\s+/).flatMap((word) => (word === "$DAEMON_ARGS" ? (env.DAEMON_ARGS ?? "").split(/\s+/).filter((w) => w !== "") : [word]))
  expect(argv[0]).toBe("/usr/local/bin/tskv")
  expect(argv.slice(1)).toEqual(["--log-outputs=systemd/journal"])
  const journald = new FakeJournald()
  try {
    const member = track(journald.spawn([tskvBinary, ...argv.slice(1)], env))
    await notify.waitFor((d) => d.text === "READY=1")
    await until200(`http://127.0.0.1:${metrics}/readyz`, member)
    expect(etcdctl(`http://127.0.0.1:${client}`, ["put", "k", "v"]).code).toBe(0)
    const messages = journald.sink.received.map((d) => parseJournalEntry(d.bytes).MESSAGE ?? "")
    expect(messages.some((m) => m.includes('"msg":"ready to serve client requests","name":"default"'))).toBe(true)
    member.proc.kill("SIGTERM")
    expect(await member.proc.exited).toBe(0)
    await notify.waitFor((d) => d.text === "STOPPING=1")
    expect(existsSync(join(dataDir, "tskv", "wal"))).toBe(true)
  } finally {
    journald.close()
    notify.close()
  }
}, 30_000)

// ---- Kubernetes

interface Probe {
  httpGet: { host?: string; path: string; port: number | string; scheme?: string }
}
interface Container {
  name: string
  command?: string[]
  args?: string[]
  ports?: { name: string; containerPort: number }[]
  livenessProbe: Probe
  readinessProbe: Probe
  startupProbe: Probe
  volumeMounts?: { name: string; mountPath: string }[]
}

function probes(c: Container): Probe[] {
  return [c.livenessProbe, c.readinessProbe, c.startupProbe]
}

test("deploy/kubernetes/static-pod.yaml: kubeadm's flags start a TLS member (certificates by tskv certs) that answers the three probes", async () => {
  const pod = Bun.YAML.parse(readFileSync(join(deploy, "kubernetes/static-pod.yaml"), "utf8")) as {
    kind: string
    metadata: { namespace: string }
    spec: { hostNetwork: boolean; containers: Container[]; volumes: { name: string; hostPath: { path: string } }[] }
  }
  expect([pod.kind, pod.metadata.namespace, pod.spec.hostNetwork]).toEqual(["Pod", "kube-system", true])
  const c = pod.spec.containers[0]!
  const command = c.command ?? []
  expect(command[0]).toBe("tskv")
  // Every mount is a hostPath volume, and the data dir and the certificates are mounted.
  const mounts = new Map((c.volumeMounts ?? []).map((m) => [m.mountPath, pod.spec.volumes.find((v) => v.name === m.name)?.hostPath.path]))
  expect(mounts.get("/var/lib/etcd")).toBe("/var/lib/etcd")
  expect(mounts.get("/etc/kubernetes/pki/etcd")).toBe("/etc/kubernetes/pki/etcd")
  expect(command).toContain("--data-dir=/var/lib/etcd")
  for (const p of probes(c)) expect([p.httpGet.host, p.httpGet.port, p.httpGet.scheme]).toEqual(["127.0.0.1", 2381, "HTTP"])
  expect(command).toContain("--listen-metrics-urls=http://127.0.0.1:2381")

  const pki = tempDir("pki-").path
  const certs = spawnSync([tskvBinary, "certs", "cluster", "--member", "node-1=127.0.0.1", "--out", pki])
  expect(certs.exitCode).toBe(0)
  const [client, peer, metrics] = (await freePorts(3)) as [number, number, number]
  const data = join(tempDir("static-pod-").path, "etcd")
  const map = {
    "10.0.0.10:2379": `127.0.0.1:${client}`,
    "127.0.0.1:2379": `127.0.0.1:${client}`,
    "10.0.0.10:2380": `127.0.0.1:${peer}`,
    "127.0.0.1:2381": `127.0.0.1:${metrics}`,
    "/etc/kubernetes/pki/etcd/ca.crt": join(pki, "ca.crt"),
    "/etc/kubernetes/pki/etcd/server": join(pki, "node-1", "server"),
    "/etc/kubernetes/pki/etcd/peer": join(pki, "node-1", "peer"),
    "/var/lib/etcd": data,
  }
  const args = command.slice(1).map((a) => substitute(a, map))
  for (const a of args) expect({ a, left: /10\.0\.0\.10|\/etc\/kubernetes|:238[01]\b|:2379\b/.test(a) }).toEqual({ a, left: false })
  const member = launch([tskvBinary, ...args], { PATH: process.env.PATH ?? "" })
  for (const p of probes(c)) await until200(`http://127.0.0.1:${metrics}${p.httpGet.path}`, member)
  const tls = [`--cacert=${join(pki, "ca.crt")}`, `--cert=${join(pki, "clients", "kube-apiserver-etcd-client.crt")}`, `--key=${join(pki, "clients", "kube-apiserver-etcd-client.key")}`]
  const put = etcdctl(`https://127.0.0.1:${client}`, [...tls, "put", "/registry/k", "v"])
  expect(put.stdout + put.stderr).toBe("OK\n")
  member.proc.kill("SIGTERM")
  expect(await member.proc.exited).toBe(0)
}, 40_000)

test("deploy/kubernetes/statefulset.yaml: the Services, the StatefulSet and the PDB agree; the three pods' flags form a cluster", async () => {
  const docs = Bun.YAML.parse(readFileSync(join(deploy, "kubernetes/statefulset.yaml"), "utf8")) as {
    kind: string
    metadata: { name: string }
    spec: Record<string, unknown>
  }[]
  expect(docs.map((d) => d.kind)).toEqual(["Service", "Service", "StatefulSet", "PodDisruptionBudget"])
  const [headless, , sts, pdb] = docs as [
    { metadata: { name: string }; spec: { clusterIP: string; publishNotReadyAddresses: boolean; selector: Record<string, string> } },
    unknown,
    {
      metadata: { name: string }
      spec: {
        serviceName: string
        replicas: number
        selector: { matchLabels: Record<string, string> }
        template: { metadata: { labels: Record<string, string> }; spec: { securityContext: { runAsNonRoot: boolean; runAsUser: number }; containers: Container[] } }
        volumeClaimTemplates: { metadata: { name: string } }[]
      }
    },
    { spec: { maxUnavailable: number; selector: { matchLabels: Record<string, string> } } },
  ]
  expect([headless.spec.clusterIP, headless.spec.publishNotReadyAddresses]).toEqual(["None", true])
  expect(sts.spec.serviceName).toBe(headless.metadata.name)
  expect(sts.spec.replicas).toBe(3)
  const labels = sts.spec.template.metadata.labels
  for (const selector of [headless.spec.selector, sts.spec.selector.matchLabels, pdb.spec.selector.matchLabels]) {
    for (const [k, v] of Object.entries(selector)) expect(labels[k]).toBe(v)
  }
  expect(pdb.spec.maxUnavailable).toBe(1)
  expect(sts.spec.template.spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532 })
  const c = sts.spec.template.spec.containers[0]!
  const metricsPort = c.ports?.find((p) => p.name === "metrics")?.containerPort
  expect(metricsPort).toBe(2381)
  for (const p of probes(c)) expect(p.httpGet.port).toBe("metrics")
  const dataMount = c.volumeMounts?.find((m) => m.name === sts.spec.volumeClaimTemplates[0]!.metadata.name)?.mountPath
  expect(dataMount).toBe("/var/lib/tskv")
  expect(c.args).toContain(`--data-dir=${dataMount}/data`)

  // The pods tskv-0..2 in namespace "default", their DNS names pointed at loopback ports.
  const ports = (await freePorts(9)) as number[]
  const base = tempDir("sts-").path
  const map: Record<string, string> = {}
  for (let i = 0; i < 3; i++) {
    map[`tskv-${i}.tskv.default.svc:2379`] = `127.0.0.1:${ports[i * 3]}`
    map[`tskv-${i}.tskv.default.svc:2380`] = `127.0.0.1:${ports[i * 3 + 1]}`
  }
  const pods = [0, 1, 2].map((i) => {
    const own = {
      ...map,
      "$(POD_NAME)": `tskv-${i}`,
      "$(POD_NAMESPACE)": "default",
      "0.0.0.0:2379": `127.0.0.1:${ports[i * 3]}`,
      "0.0.0.0:2380": `127.0.0.1:${ports[i * 3 + 1]}`,
      "0.0.0.0:2381": `127.0.0.1:${ports[i * 3 + 2]}`,
      "/var/lib/tskv": join(base, `pod-${i}`),
    }
    // Kubernetes expands $(VAR) first; then the addresses of this machine.
    const args = (c.args ?? []).map((a) => substitute(substitute(a, { "$(POD_NAME)": `tskv-${i}`, "$(POD_NAMESPACE)": "default" }), own))
    return launch([tskvBinary, ...args], { PATH: process.env.PATH ?? "" })
  })
  for (let i = 0; i < 3; i++) {
    for (const p of probes(c)) await until200(`http://127.0.0.1:${ports[i * 3 + 2]}${p.httpGet.path}`, pods[i]!)
  }
  const list = JSON.parse(etcdctl(`http://127.0.0.1:${ports[0]}`, ["member", "list", "-w", "json"]).stdout) as { members: { name: string }[] }
  expect(list.members.map((m) => m.name).sort()).toEqual(["tskv-0", "tskv-1", "tskv-2"])
  expect(etcdctl(`http://127.0.0.1:${ports[3]}`, ["put", "k", "v"]).code).toBe(0)
  for (const p of pods) p.proc.kill("SIGTERM")
  for (const p of pods) expect(await p.proc.exited).toBe(0)
}, 60_000)

// ---- Dockerfile

interface Instruction {
  stage: number
  op: string
  args: string
}

function dockerfile(text: string): Instruction[] {
  const joined = text.replace(/\\\n/g, " ")
  const out: Instruction[] = []
  let stage = -1
  for (const raw of joined.split("\n")) {
    const line = raw.trim()
    if (line === "" || line.startsWith("#")) continue
    const m = /^(\w+)\s+(.*)$/.exec(line)
    if (!m) throw new Error(`Dockerfile line: ${line}`)
    const op = m[1]!.toUpperCase()
    if (op === "FROM") stage++
    out.push({ stage, op, args: m[2]!.replace(/\s+/g, " ") })
  }
  return out
}

test("deploy/docker/Dockerfile: its commands build the image's tree from dist/tskv; ENTRYPOINT + CMD + ENV serve as uid 65532", async () => {
  const steps = dockerfile(readFileSync(join(deploy, "docker/Dockerfile"), "utf8"))
  const runs = steps.filter((s) => s.stage === 0 && s.op === "RUN").map((s) => s.args)
  // The dependencies and the build are the repository's own commands (npm ci, package.json's build script).
  expect(runs.slice(0, 2)).toEqual(["npm ci --no-audit --no-fund", "npm run build"])
  expect((JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts.build).toBe("bun scripts/build.ts")
  // The rest runs here: WORKDIR /src holds dist/tskv, /rootfs is a temp dir.
  const work = tempDir("docker-").path
  chmodSync(work, 0o755)
  const src = join(work, "src")
  mkdirSync(join(src, "dist"), { recursive: true })
  copyFileSync(tskvBinary, join(src, "dist", "tskv"))
  chmodSync(join(src, "dist", "tskv"), 0o755)
  const rootfs = join(work, "rootfs")
  for (const run of runs.slice(2)) {
    const r = spawnSync(["sh", "-ec", run.split("/rootfs/").join(`${rootfs}/`)], { cwd: src })
    expect({ run, code: r.exitCode, stderr: r.stderr.toString() }).toEqual({ run, code: 0, stderr: "" })
    expect(r.stdout.toString()).toContain("tskv Version: ")
  }
  expect(readlinkSync(join(rootfs, "usr/local/bin/tskvctl"))).toBe("tskv")
  // COPY --from=build --chown=65532:65532 /rootfs/ /
  const copy = steps.find((s) => s.stage === 1 && s.op === "COPY")?.args
  expect(copy).toBe("--from=build --chown=65532:65532 /rootfs/ /")
  const chown = (dir: string): void => {
    chownSync(dir, 65532, 65532)
  }
  chown(join(rootfs, "var/lib/tskv"))
  for (const d of [rootfs, join(rootfs, "usr"), join(rootfs, "usr/local"), join(rootfs, "usr/local/bin"), join(rootfs, "var"), dirname(join(rootfs, "var/lib/tskv"))]) chmodSync(d, 0o755)
  expect(steps.find((s) => s.stage === 1 && s.op === "USER")?.args).toBe("65532:65532")

  const env: Record<string, string> = { PATH: `${join(rootfs, "usr/local/bin")}:/usr/bin:/bin` }
  for (const s of steps.filter((x) => x.stage === 1 && x.op === "ENV")) {
    const [k, v] = s.args.split("=") as [string, string]
    env[k] = v.replace("/var/lib/tskv", join(rootfs, "var/lib/tskv"))
  }
  const entrypoint = JSON.parse(steps.find((s) => s.stage === 1 && s.op === "ENTRYPOINT")!.args) as string[]
  const cmd = JSON.parse(steps.find((s) => s.stage === 1 && s.op === "CMD")!.args) as string[]
  const [client, peer, metrics] = (await freePorts(3)) as [number, number, number]
  const ports = {
    "0.0.0.0:2379": `127.0.0.1:${client}`,
    "127.0.0.1:2379": `127.0.0.1:${client}`,
    "0.0.0.0:2380": `127.0.0.1:${peer}`,
    "127.0.0.1:2380": `127.0.0.1:${peer}`,
    "0.0.0.0:2381": `127.0.0.1:${metrics}`,
  }
  const argv = [...entrypoint, ...cmd].map((a) => substitute(a, { ...ports, "/usr/local/bin/": `${join(rootfs, "usr/local/bin")}/` }))
  const asUser = ["setpriv", "--reuid=65532", "--regid=65532", "--clear-groups"]
  const member = launch([...asUser, ...argv], env)
  await until200(`http://127.0.0.1:${metrics}/readyz`, member)
  const ctl = spawnSync([...asUser, join(rootfs, "usr/local/bin/tskvctl"), `--endpoints=127.0.0.1:${client}`, "put", "k", "v"], { env })
  expect(ctl.stdout.toString()).toBe("OK\n")
  member.proc.kill("SIGTERM")
  expect(await member.proc.exited).toBe(0)
  // The data dir is the image's volume, written by the non-root user.
  const wal = spawnSync(["stat", "-c", "%u", join(rootfs, "var/lib/tskv/data/tskv/wal")]).stdout.toString().trim()
  expect(wal).toBe("65532")
}, 30_000)
