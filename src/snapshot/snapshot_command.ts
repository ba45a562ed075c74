// `tskv snapshot save|restore|status`, with etcdctl 3.4's flags, outputs and
// exit codes (1 for a failure, 128 for bad arguments).

import { readFileSync } from "node:fs"
import { EtcdClient, type TlsOptions } from "../client"
import { restoreSnapshot } from "./restore"
import { saveSnapshot } from "./save"
import { formatStatus, snapshotStatus } from "./status"

const EXIT_ERROR = 1
const EXIT_BAD_ARGS = 128

const usage = `Usage:
  tskv snapshot save <filename> [--endpoints=127.0.0.1:2379] [--cacert=] [--cert=] [--key=]
  tskv snapshot restore <filename> [--name=default] [--data-dir=<name>.etcd] [--wal-dir=]
      [--initial-cluster=default=http://localhost:2380] [--initial-cluster-token=etcd-cluster]
      [--initial-advertise-peer-urls=http://localhost:2380] [--skip-hash-check] [--bump-revision=N --mark-compacted]
  tskv snapshot status <filename> [-w simple|json|table]
`

/** Every flag `tskv snapshot` parses, for the test that holds the help to it. */
export function snapshotFlagNames(): string[] {
  return [...booleanFlags, ...valueFlags]
}

const booleanFlags = new Set(["skip-hash-check", "mark-compacted", "help"])
const valueFlags = new Set([
  "endpoints", "cacert", "cert", "key", "write-out", "w", "name", "data-dir", "wal-dir",
  "initial-cluster", "initial-cluster-token", "initial-advertise-peer-urls", "dial-timeout", "command-timeout", "bump-revision",
])

class UsageError extends Error {}

interface Parsed {
  args: string[]
  flags: Map<string, string>
}

function parse(argv: readonly string[]): Parsed {
  const args: string[] = []
  const flags = new Map<string, string>()
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === "--") {
      args.push(...argv.slice(i + 1))
      break
    }
    if (!a.startsWith("-") || a === "-") {
      args.push(a)
      continue
    }
    const body = a.replace(/^--?/, "")
    const eq = body.indexOf("=")
    const name = eq >= 0 ? body.slice(0, eq) : body
    if (booleanFlags.has(name)) {
      const v = eq >= 0 ? body.slice(eq + 1) : "true"
      if (v !== "true" && v !== "false") throw new UsageError(`invalid argument "${v}" for "--${name}" flag`)
      flags.set(name, v)
    } else if (valueFlags.has(name)) {
      const v = eq >= 0 ? body.slice(eq + 1) : argv[++i]
      if (v === undefined) throw new UsageError(`flag needs an argument: ${a}`)
      flags.set(name === "w" ? "write-out" : name, v)
    } else {
      throw new UsageError(`unknown flag: ${a}`)
    }
  }
  return { args, flags }
}

function env(name: string): string | undefined {
  const v = process.env[`ETCDCTL_${name.toUpperCase().replaceAll("-", "_")}`]
  return v === "" ? undefined : v
}

function flagOr(p: Parsed, name: string, fallback: string): string {
  return p.flags.get(name) ?? env(name) ?? fallback
}

export async function runSnapshotCommand(argv: readonly string[]): Promise<number> {
  const [sub, ...rest] = argv
  try {
    switch (sub) {
      case "save":
        return await save(parse(rest))
      case "restore":
        return restore(parse(rest))
      case "status":
        return status(parse(rest))
      case undefined:
      case "help":
      case "--help":
      case "-h":
        process.stdout.write(usage)
        return sub === undefined ? EXIT_BAD_ARGS : 0
      default:
        throw new UsageError(`unknown command "${sub}" for "tskv snapshot"`)
    }
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e)
    process.stderr.write(`Error: ${message}\n`)
    return e instanceof UsageError ? EXIT_BAD_ARGS : EXIT_ERROR
  }
}

async function save(p: Parsed): Promise<number> {
  if (p.args.length !== 1) throw new UsageError("snapshot save expects one argument")
  const endpoints = flagOr(p, "endpoints", "127.0.0.1:2379").split(",").filter((e) => e !== "")
  if (endpoints.length !== 1) throw new Error(`snapshot must be requested to one selected node, not multiple [${endpoints.join(" ")}]`)
  const tls = tlsOptions(p)
  const client = new EtcdClient({ endpoints, ...(tls ? { tls } : {}) })
  try {
    await saveSnapshot(client, p.args[0]!)
  } finally {
    client.close()
  }
  process.stdout.write(`Snapshot saved at ${p.args[0]}\n`)
  return 0
}

function tlsOptions(p: Parsed): TlsOptions | undefined {
  const cacert = p.flags.get("cacert") ?? env("cacert")
  const cert = p.flags.get("cert") ?? env("cert")
  const key = p.flags.get("key") ?? env("key")
  if (cacert === undefined && cert === undefined && key === undefined) return undefined
  return {
    ...(cacert ? { ca: readFileSync(cacert) } : {}),
    ...(cert ? { cert: readFileSync(cert) } : {}),
    ...(key ? { key: readFileSync(key) } : {}),
  }
}

function restore(p: Parsed): number {
  if (p.args.length !== 1) throw new UsageError("snapshot restore requires exactly one argument")
  const name = p.flags.get("name") ?? "default"
  restoreSnapshot({
    snapshotPath: p.args[0]!,
    name,
    dataDir: p.flags.get("data-dir") ?? `${name}.etcd`,
    walDir: p.flags.get("wal-dir") ?? "",
    initialCluster: p.flags.get("initial-cluster") ?? "default=http://localhost:2380",
    initialClusterToken: p.flags.get("initial-cluster-token") ?? "etcd-cluster",
    initialAdvertisePeerUrls: (p.flags.get("initial-advertise-peer-urls") ?? "http://localhost:2380").split(",").filter((u) => u !== ""),
    skipHashCheck: p.flags.get("skip-hash-check") === "true",
    bumpRevision: bumpRevisionOf(p.flags.get("bump-revision") ?? "0"),
    markCompacted: p.flags.get("mark-compacted") === "true",
  })
  return 0
}

function bumpRevisionOf(text: string): number {
  const n = Number(text)
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n)) throw new UsageError(`invalid argument "${text}" for "--bump-revision" flag`)
  return n
}

function status(p: Parsed): number {
  if (p.args.length !== 1) throw new UsageError("snapshot status requires exactly one argument")
  const format = flagOr(p, "write-out", "simple")
  if (format !== "simple" && format !== "json" && format !== "table") throw new Error(`unsupported output format ${format}`)
  process.stdout.write(formatStatus(snapshotStatus(p.args[0]!), format))
  return 0
}
