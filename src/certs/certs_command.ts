// `tskv certs ...`: a development or production PKI for a tskv (or etcd)
// cluster, like kubeadm's etcd certificate phase.
//
//   tskv certs init-ca [--out certs] [--cn etcd-ca] [--key-type ecdsa|rsa] [--days 3650] [--force]
//   tskv certs issue server|peer|client --name NAME [--san IP|DNS]... [--out certs]
//        [--ca-cert certs/ca.crt] [--ca-key certs/ca.key] [--cn CN] [--org O] [--key-type] [--days 365] [--force]
//   tskv certs cluster --member NAME=IP|DNS[,IP|DNS...]... [--out certs] [--client NAME]... [--key-type] [--force]
//
// Layout under --out: ca.crt ca.key, <member>/server.{crt,key}, <member>/peer.{crt,key},
// clients/<name>.{crt,key}. Keys are written 0600.

import { existsSync, mkdirSync, readFileSync } from "node:fs"
import { isIP } from "node:net"
import { join } from "node:path"
import { writePemFiles } from "./files"
import { type CertAndKey, type KeyType, type LeafKind, createCa, issueCertificate, loadCa, validSan } from "./pki"
import { errorText } from "./tls"

export interface CertsIo {
  readonly out: (text: string) => void
  readonly err: (text: string) => void
}

const defaultIo: CertsIo = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
}

export const certsUsage = `Usage:
  tskv certs init-ca [--out DIR] [--cn NAME] [--key-type ecdsa|rsa] [--days N] [--force]
      Create a CA (DIR/ca.crt, DIR/ca.key; default DIR "certs", CN "etcd-ca", 3650 days).
  tskv certs issue server|peer|client --name NAME [--san IP|DNS]... [--out DIR]
      [--ca-cert FILE] [--ca-key FILE] [--cn CN] [--org ORG] [--key-type ecdsa|rsa] [--days N] [--force]
      Issue a certificate signed by the CA (default DIR/ca.crt and DIR/ca.key; 365 days).
      server and peer certificates always include localhost, 127.0.0.1 and ::1.
  tskv certs cluster --member NAME=IP|DNS[,IP|DNS...] [--member ...] [--out DIR]
      [--client NAME]... [--key-type ecdsa|rsa] [--force]
      Everything a cluster needs: the CA (reused if DIR has one), a server and a peer certificate per
      member, and client certificates for "root" and "kube-apiserver-etcd-client" (plus each --client).
Keys are ECDSA P-256 unless --key-type rsa (2048 bits). Key files are written with mode 0600.
`

class UsageError extends Error {}

interface ParsedArgs {
  readonly positional: string[]
  readonly values: Map<string, string[]>
  readonly flags: Set<string>
}

const valueOptions = new Set(["out", "cn", "key-type", "days", "name", "san", "ca-cert", "ca-key", "org", "member", "client"])
const booleanOptions = new Set(["force", "help"])

function parseArgs(argv: readonly string[]): ParsedArgs {
  const parsed: ParsedArgs = { positional: [], values: new Map(), flags: new Set() }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? ""
    if (arg === "-h") {
      parsed.flags.add("help")
      continue
    }
    if (!arg.startsWith("--")) {
      parsed.positional.push(arg)
      continue
    }
    const eq = arg.indexOf("=")
    const name = arg.slice(2, eq < 0 ? undefined : eq)
    if (booleanOptions.has(name)) {
      if (eq >= 0 && arg.slice(eq + 1) !== "true") {
        if (arg.slice(eq + 1) !== "false") throw new UsageError(`invalid value "${arg.slice(eq + 1)}" for flag --${name}: expected true or false`)
        continue
      }
      parsed.flags.add(name)
      continue
    }
    if (!valueOptions.has(name)) throw new UsageError(`unknown flag: --${name}`)
    let value = eq < 0 ? argv[++i] : arg.slice(eq + 1)
    if (value === undefined) throw new UsageError(`flag needs an argument: --${name}`)
    value = value.trim()
    parsed.values.set(name, [...(parsed.values.get(name) ?? []), value])
  }
  return parsed
}

function single(args: ParsedArgs, name: string, fallback: string): string {
  const values = args.values.get(name) ?? []
  if (values.length > 1) throw new UsageError(`--${name} may be given only once`)
  return values[0] ?? fallback
}

function keyTypeOf(args: ParsedArgs): KeyType {
  const value = single(args, "key-type", "ecdsa")
  if (value !== "ecdsa" && value !== "rsa") throw new UsageError(`invalid value "${value}" for flag --key-type: expected ecdsa or rsa`)
  return value
}

function daysOf(args: ParsedArgs, fallback: number): number {
  const text = single(args, "days", String(fallback))
  const days = Number(text)
  if (!/^[0-9]+$/.test(text) || days < 1 || days > 36500) throw new UsageError(`invalid value "${text}" for flag --days: expected a number of days between 1 and 36500`)
  return days
}

function sansOf(values: readonly string[]): string[] {
  const sans = values.flatMap((v) => v.split(",")).map((s) => s.trim()).filter((s) => s !== "")
  for (const san of sans) {
    if (!validSan(san)) throw new UsageError(`invalid SAN "${san}": expected an IP address or a DNS name`)
  }
  return sans
}

/** One line of the summary: a file and what uses it. */
interface Written {
  readonly path: string
  readonly what: string
  readonly usedBy: string
  readonly key: boolean
}

class Writer {
  readonly written: Written[] = []
  constructor(private readonly force: boolean) {}

  checkFree(...paths: string[]): void {
    if (this.force) return
    for (const path of paths) {
      if (existsSync(path)) throw new UsageError(`${path} already exists (use --force to replace it)`)
    }
  }

  pair(pair: {
    readonly dir: string
    readonly base: string
    readonly material: CertAndKey
    readonly what: string
    readonly usedBy: { readonly cert: string; readonly key: string }
  }): { cert: string; key: string } {
    const { dir, base, material, what, usedBy } = pair
    mkdirSync(dir, { recursive: true, mode: 0o755 })
    const cert = join(dir, `${base}.crt`)
    const key = join(dir, `${base}.key`)
    writePemFiles({ certFile: cert, keyFile: key, certPem: material.certPem, keyPem: material.keyPem })
    this.written.push({ path: cert, what: `${what} certificate`, usedBy: usedBy.cert, key: false })
    this.written.push({ path: key, what: `${what} key`, usedBy: usedBy.key, key: true })
    return { cert, key }
  }

  summary(): string {
    const width = Math.max(...this.written.map((w) => w.path.length)) + 2
    const whatWidth = Math.max(...this.written.map((w) => w.what.length)) + 2
    return this.written
      .map((w) => `wrote ${w.path.padEnd(width)}${(w.key ? "(0600) " : "       ")}${w.what.padEnd(whatWidth)}${w.usedBy}\n`)
      .join("")
  }
}

export async function runCertsCommand(argv: readonly string[], io: CertsIo = defaultIo): Promise<number> {
  let args: ParsedArgs
  try {
    args = parseArgs(argv)
  } catch (e) {
    io.err(`tskv certs: ${errorText(e)}\n${certsUsage}`)
    return 2
  }
  const [command, ...rest] = args.positional
  if (args.flags.has("help") || command === undefined || command === "help") {
    ;(command === undefined && !args.flags.has("help") ? io.err : io.out)(certsUsage)
    return command === undefined && !args.flags.has("help") ? 2 : 0
  }
  try {
    switch (command) {
      case "init-ca":
        if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`)
        return await initCa(args, io)
      case "issue":
        return await issue(args, rest, io)
      case "cluster":
        if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`)
        return await cluster(args, io)
      default:
        throw new UsageError(`unknown command "${command}"`)
    }
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`tskv certs: ${e.message}\n`)
      return 2
    }
    io.err(`tskv certs: ${errorText(e)}\n`)
    return 1
  }
}

async function initCa(args: ParsedArgs, io: CertsIo): Promise<number> {
  const out = single(args, "out", "certs")
  const writer = new Writer(args.flags.has("force"))
  writer.checkFree(join(out, "ca.crt"), join(out, "ca.key"))
  const ca = await createCa({ commonName: single(args, "cn", "etcd-ca"), keyType: keyTypeOf(args), days: daysOf(args, 3650) })
  writer.pair({ dir: out, base: "ca", material: ca, what: "CA", usedBy: caUsage })
  io.out(writer.summary())
  return 0
}

const caUsage = {
  cert: "--trusted-ca-file and --peer-trusted-ca-file on every member; clients: etcdctl/tskv ctl --cacert",
  key: "signs certificates (tskv certs issue --ca-key); keep it off the members",
}

async function readCa(certFile: string, keyFile: string): Promise<CertAndKey> {
  if (!existsSync(certFile) || !existsSync(keyFile)) {
    throw new UsageError(`CA files ${certFile} and ${keyFile} not found (run tskv certs init-ca, or give --ca-cert and --ca-key)`)
  }
  return loadCa(readFileSync(certFile, "utf8"), readFileSync(keyFile, "utf8"))
}

const leafUsage: Record<LeafKind, (name: string) => { cert: string; key: string }> = {
  server: (name) => ({ cert: `--cert-file on member ${name}`, key: `--key-file on member ${name}` }),
  peer: (name) => ({ cert: `--peer-cert-file on member ${name}`, key: `--peer-key-file on member ${name}` }),
  client: (name) => ({ cert: `client of user/CN ${name}: --cert (etcdctl, tskv ctl)`, key: `client of user/CN ${name}: --key` }),
}

async function issue(args: ParsedArgs, rest: string[], io: CertsIo): Promise<number> {
  const [kind, extra] = rest
  if (kind !== "server" && kind !== "peer" && kind !== "client") throw new UsageError("expected issue server, issue peer or issue client")
  if (extra !== undefined) throw new UsageError(`unexpected argument "${extra}"`)
  const name = single(args, "name", "")
  if (name === "" || /[/\\]/.test(name) || name === "." || name === "..") throw new UsageError("--name NAME is required (a member or user name, no slashes)")
  const out = single(args, "out", "certs")
  const ca = await readCa(single(args, "ca-cert", join(out, "ca.crt")), single(args, "ca-key", join(out, "ca.key")))
  const writer = new Writer(args.flags.has("force"))
  const { dir, base } = leafLocation(out, kind, name)
  writer.checkFree(join(dir, `${base}.crt`), join(dir, `${base}.key`))
  const organization = args.values.has("org") ? single(args, "org", "") : undefined
  const material = await issueCertificate({
    ca,
    kind,
    commonName: single(args, "cn", name),
    ...(organization !== undefined ? { organization } : {}),
    sans: sansOf(args.values.get("san") ?? []),
    keyType: keyTypeOf(args),
    days: daysOf(args, 365),
  })
  writer.pair({ dir, base, material, what: `${kind} ${name}`, usedBy: leafUsage[kind](name) })
  io.out(writer.summary())
  return 0
}

function leafLocation(out: string, kind: LeafKind, name: string): { dir: string; base: string } {
  return kind === "client" ? { dir: join(out, "clients"), base: name } : { dir: join(out, name), base: kind }
}

interface MemberSpec {
  readonly name: string
  readonly sans: string[]
}

function parseMember(text: string): MemberSpec {
  const eq = text.indexOf("=")
  const name = eq < 0 ? text : text.slice(0, eq)
  if (name === "" || /[/\\]/.test(name) || name === "." || name === "..") throw new UsageError(`invalid --member "${text}": expected NAME=IP|DNS[,IP|DNS...]`)
  const sans = eq < 0 ? [] : sansOf([text.slice(eq + 1)])
  if (sans.length === 0) throw new UsageError(`invalid --member "${text}": expected NAME=IP|DNS[,IP|DNS...]`)
  return { name, sans }
}

/** kubeadm's client certificates, plus etcd's admin user. */
const defaultClients = ["root", "kube-apiserver-etcd-client"]

async function cluster(args: ParsedArgs, io: CertsIo): Promise<number> {
  const members = (args.values.get("member") ?? []).map(parseMember)
  if (members.length === 0) throw new UsageError("at least one --member NAME=IP|DNS is required")
  const names = new Set<string>()
  for (const member of members) {
    if (names.has(member.name)) throw new UsageError(`member ${member.name} is given twice`)
    names.add(member.name)
  }
  const clients = [...new Set([...defaultClients, ...(args.values.get("client") ?? [])])]
  for (const client of clients) {
    if (client === "" || /[/\\]/.test(client)) throw new UsageError(`invalid --client "${client}"`)
  }
  const out = single(args, "out", "certs")
  const keyType = keyTypeOf(args)
  const writer = new Writer(args.flags.has("force"))
  const caCert = join(out, "ca.crt")
  const caKey = join(out, "ca.key")
  const leafPaths = [
    ...members.flatMap((m) => ["server", "peer"].flatMap((k) => [join(out, m.name, `${k}.crt`), join(out, m.name, `${k}.key`)])),
    ...clients.flatMap((c) => [join(out, "clients", `${c}.crt`), join(out, "clients", `${c}.key`)]),
  ]
  writer.checkFree(...leafPaths)
  let ca: CertAndKey
  const reuse = existsSync(caCert) && existsSync(caKey)
  if (reuse) {
    ca = await readCa(caCert, caKey)
    io.out(`using the existing CA ${caCert}\n`)
  } else {
    ca = await createCa({ keyType })
    writer.pair({ dir: out, base: "ca", material: ca, what: "CA", usedBy: caUsage })
  }
  for (const member of members) {
    for (const kind of ["server", "peer"] as const) {
      const material = await issueCertificate({ ca, kind, commonName: member.name, sans: member.sans, keyType })
      writer.pair({ dir: join(out, member.name), base: kind, material, what: `${kind} ${member.name}`, usedBy: leafUsage[kind](member.name) })
    }
  }
  for (const client of clients) {
    const organization = client === "kube-apiserver-etcd-client" ? "system:masters" : undefined
    const material = await issueCertificate({
      ca,
      kind: "client",
      commonName: client,
      ...(organization !== undefined ? { organization } : {}),
      keyType,
    })
    const usage = leafUsage.client(client)
    if (client === "kube-apiserver-etcd-client") {
      usage.cert = "kube-apiserver --etcd-certfile (CN kube-apiserver-etcd-client)"
      usage.key = "kube-apiserver --etcd-keyfile"
    }
    writer.pair({ dir: join(out, "clients"), base: client, material, what: `client ${client}`, usedBy: usage })
  }
  io.out(writer.summary())
  io.out(clusterExample(out, members))
  return 0
}

function hostForUrl(san: string): string {
  return isIP(san) === 6 ? `[${san}]` : san
}

function clusterExample(out: string, members: readonly MemberSpec[]): string {
  const ca = join(out, "ca.crt")
  const peerUrl = (m: MemberSpec) => `https://${hostForUrl(m.sans[0] ?? "127.0.0.1")}:2380`
  const clientUrl = (m: MemberSpec) => `https://${hostForUrl(m.sans[0] ?? "127.0.0.1")}:2379`
  const initialCluster = members.map((m) => `${m.name}=${peerUrl(m)}`).join(",")
  const lines = ["", "Start each member with:"]
  for (const m of members) {
    const dir = join(out, m.name)
    lines.push(
      `  tskv --name ${m.name} --data-dir ${m.name}.tskv \\`,
      `    --cert-file ${join(dir, "server.crt")} --key-file ${join(dir, "server.key")} --trusted-ca-file ${ca} --client-cert-auth \\`,
      `    --peer-cert-file ${join(dir, "peer.crt")} --peer-key-file ${join(dir, "peer.key")} --peer-trusted-ca-file ${ca} --peer-client-cert-auth \\`,
      `    --listen-client-urls ${[...new Set([clientUrl(m), "https://127.0.0.1:2379"])].join(",")} --advertise-client-urls ${clientUrl(m)} \\`,
      `    --listen-peer-urls ${peerUrl(m)} --initial-advertise-peer-urls ${peerUrl(m)} \\`,
      `    --initial-cluster ${initialCluster} --initial-cluster-state new`,
    )
  }
  lines.push(
    "Then, as root:",
    `  etcdctl --endpoints ${members.map(clientUrl).join(",")} --cacert ${ca} --cert ${join(out, "clients", "root.crt")} --key ${join(out, "clients", "root.key")} endpoint health`,
    "",
  )
  return lines.join("\n")
}
