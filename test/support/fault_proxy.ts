// FaultProxy: a TCP proxy in front of every member's peer port, so tests can
// cut, delay or one-way-drop the link between any two members.
//
// Each member advertises its proxy port (--initial-advertise-peer-urls,
// --initial-cluster) and listens on its real port (--listen-peer-urls); peers
// dial the advertised URL, so all peer traffic goes through here. A
// connection arriving at member T's proxy port comes from some member S: the
// proxy finds S by looking up, in /proc, which of the member processes owns
// the dialing socket (protocol-agnostic: it works for tskv and for etcd).
// That lookup reads /proc/net/tcp and the members' fd tables, so it is done
// only when it matters: at accept while a cut is in force (to refuse), and in
// one batch for the open links when a fault is set. A lookup per accept made
// the proxy accept slower than isolated members redial under load: the accept
// queues filled, the abandoned dials sat there in CLOSE_WAIT, /proc/net/tcp
// grew with them and each lookup got slower still, until the test process's
// event loop stopped draining the members' stderr and the members blocked
// writing their logs (the campaign's "not healthy after 30000 ms" rounds).
// Bytes on that connection flow S->T (dialer to listener) and T->S (replies).
//
// Faults are per direction: "drop" discards the bytes (the connection is then
// reset on heal, because a TCP stream with a hole in it is garbage), "delay"
// holds them for a while (order kept). cut() resets the connections between
// two members and refuses new ones: a hard partition that peers notice at
// once; blackhole()/dropOneWay() lose bytes silently, as a switch would.

import { readdirSync, readFileSync, readlinkSync } from "node:fs"
import * as net from "node:net"

type Fault = { kind: "drop" } | { kind: "delay"; delayMs: number }

export interface Route {
  name: string
  /** The port peers dial (advertised). */
  proxyPort: number
  /** The port the member listens on (--listen-peer-urls). */
  targetPort: number
}

interface Link {
  /** The dialing member, undefined until looked up (see resolve()). */
  source: string | undefined
  /** The dialing socket's port, to look the source up later. */
  sourcePort: number
  target: string
  inbound: net.Socket
  outbound: net.Socket
  /** Bytes were dropped: the stream is broken and must be reset on heal. */
  broken: boolean
  /** Per direction: when the last delayed chunk is due (keeps order). */
  dueMs: { forward: number; backward: number }
}

export interface FaultProxyOptions {
  routes: Route[]
  /** The pid of every running member by name (looked up per connection, so restarts are seen). */
  pids: () => Map<string, number>
}

export class FaultProxy {
  private readonly servers: net.Server[] = []
  private readonly links = new Set<Link>()
  /** "source>target" -> fault on bytes flowing source -> target. */
  private readonly faults = new Map<string, Fault>()
  /** Pairs "a|b" (sorted) whose connections are refused. */
  private readonly cuts = new Set<string>()
  private readonly acceptedBySource = new Map<string, number>()

  private constructor(private readonly options: FaultProxyOptions) {}

  /** Connections by source, for tests that check the proxy sees who talks. */
  get accepted(): Map<string, number> {
    this.resolve()
    return this.acceptedBySource
  }

  static async start(options: FaultProxyOptions): Promise<FaultProxy> {
    const proxy = new FaultProxy(options)
    for (const route of options.routes) await proxy.listen(route)
    return proxy
  }

  /** Puts a proxy in front of one more member (one added at runtime). */
  async addRoute(route: Route): Promise<void> {
    this.options.routes.push(route)
    await this.listen(route)
  }

  /** Hard partition between a and b: existing connections reset, new ones refused. */
  cut(a: string, b: string): void {
    this.resolve()
    this.cuts.add(pairKey(a, b))
    for (const l of this.links) if (pairKey(l.source ?? "?", l.target) === pairKey(a, b)) this.destroy(l)
  }

  /** Cuts every link of `name` to the others (its peer traffic only; clients still reach it). */
  isolate(name: string): void {
    for (const r of this.options.routes) if (r.name !== name) this.cut(name, r.name)
  }

  /** Silently loses the bytes from `source` to `target` (the other direction still flows). */
  dropOneWay(source: string, target: string): void {
    this.resolve()
    this.faults.set(`${source}>${target}`, { kind: "drop" })
  }

  /** Silently loses the bytes both ways between a and b. */
  blackhole(a: string, b: string): void {
    this.dropOneWay(a, b)
    this.dropOneWay(b, a)
  }

  /** Holds the bytes from `source` to `target` for delayMs. */
  delay(source: string, target: string, delayMs: number): void {
    this.resolve()
    this.faults.set(`${source}>${target}`, { kind: "delay", delayMs })
  }

  /** Removes every fault; connections that lost bytes are reset so peers redial. */
  heal(): void {
    this.faults.clear()
    this.cuts.clear()
    for (const l of this.links) if (l.broken) this.destroy(l)
  }

  async close(): Promise<void> {
    for (const l of this.links) this.destroy(l)
    await Promise.all(this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))))
  }

  private async listen(route: Route): Promise<void> {
    const server = net.createServer({ pauseOnConnect: true }, (socket) => this.accept(route, socket))
    this.servers.push(server)
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject)
      server.listen(route.proxyPort, "127.0.0.1", () => resolve())
    })
  }

  private accept(route: Route, inbound: net.Socket): void {
    const sourcePort = inbound.remotePort ?? 0
    let source: string | undefined
    if (this.cuts.size > 0 || this.faults.size > 0) {
      source = this.sourcesOf([sourcePort], route.proxyPort)[0]!
      this.count(source)
      if (this.cuts.has(pairKey(source, route.name)) || (source === "?" && this.cuts.size > 0 && this.isCutFromAll(route.name))) {
        inbound.resetAndDestroy()
        return
      }
    }
    const outbound = net.connect({ host: "127.0.0.1", port: route.targetPort })
    const link: Link = {
      source,
      sourcePort,
      target: route.name,
      inbound,
      outbound,
      broken: false,
      dueMs: { forward: 0, backward: 0 },
    }
    this.links.add(link)
    inbound.on("data", (chunk: Buffer) => this.pass(link, "forward", chunk))
    outbound.on("data", (chunk: Buffer) => this.pass(link, "backward", chunk))
    const end = (): void => this.destroy(link)
    for (const s of [inbound, outbound]) {
      s.on("error", end)
      s.on("close", end)
    }
    outbound.on("connect", () => inbound.resume())
  }

  private count(source: string): void {
    this.acceptedBySource.set(source, (this.acceptedBySource.get(source) ?? 0) + 1)
  }

  /** Looks up, in one pass, the source of every open link that does not know it yet. */
  private resolve(): void {
    const pending = [...this.links].filter((l) => l.source === undefined)
    if (pending.length === 0) return
    const byTarget = new Map<number, Link[]>()
    for (const l of pending) {
      const port = this.options.routes.find((r) => r.name === l.target)!.proxyPort
      const group = byTarget.get(port)
      if (group) group.push(l)
      else byTarget.set(port, [l])
    }
    for (const [proxyPort, links] of byTarget) {
      const names = this.sourcesOf(
        links.map((l) => l.sourcePort),
        proxyPort,
      )
      links.forEach((l, i) => {
        l.source = names[i]!
        this.count(l.source)
      })
    }
  }

  private pass(link: Link, direction: "forward" | "backward", chunk: Buffer): void {
    const [from, to] = direction === "forward" ? [link.source, link.target] : [link.target, link.source]
    const sink = direction === "forward" ? link.outbound : link.inbound
    const fault = this.faults.size > 0 ? this.faults.get(`${from}>${to}`) : undefined
    if (fault?.kind === "drop") {
      link.broken = true
      return
    }
    const now = performance.now()
    const due = Math.max(now + (fault?.kind === "delay" ? fault.delayMs : 0), link.dueMs[direction])
    link.dueMs[direction] = due
    if (due <= now) sink.write(chunk)
    else setTimeout(() => sink.destroyed || sink.write(chunk), due - now)
  }

  private destroy(link: Link): void {
    if (!this.links.delete(link)) return
    link.inbound.resetAndDestroy()
    link.outbound.resetAndDestroy()
  }

  private isCutFromAll(name: string): boolean {
    return this.options.routes.every((r) => r.name === name || this.cuts.has(pairKey(r.name, name)))
  }

  /** For each dialing port, the member whose process owns the socket 127.0.0.1:port -> :proxyPort ("?" if none). */
  private sourcesOf(sourcePorts: number[], proxyPort: number): string[] {
    const inodes = socketInodes(sourcePorts, proxyPort)
    const owner = new Map<string, string>()
    if (inodes.size > 0) {
      const wanted = new Set([...inodes.values()].map((inode) => `socket:[${inode}]`))
      for (const [name, pid] of this.options.pids()) {
        let fds: string[]
        try {
          fds = readdirSync(`/proc/${pid}/fd`)
        } catch {
          continue
        }
        for (const fd of fds) {
          try {
            const link = readlinkSync(`/proc/${pid}/fd/${fd}`)
            if (wanted.has(link)) owner.set(link, name)
          } catch {}
        }
      }
    }
    return sourcePorts.map((port) => {
      const inode = inodes.get(port)
      return inode === undefined ? "?" : (owner.get(`socket:[${inode}]`) ?? "?")
    })
  }
}

function pairKey(a: string, b: string): string {
  return a < b ? `${a}|${b}` : `${b}|${a}`
}

/** The inodes of the TCP sockets with local port in `localPorts` and remote port `remotePort` (from /proc/net/tcp). */
function socketInodes(localPorts: number[], remotePort: number): Map<number, string> {
  const hex4 = (n: number): string => n.toString(16).toUpperCase().padStart(4, "0")
  const wanted = new Map(localPorts.map((p) => [hex4(p), p]))
  const found = new Map<number, string>()
  // One regular-expression pass over the table: local address, remote address
  // with our port, then six columns (st, queues, timer, retransmits, uid,
  // timeout) before the inode.
  const row = new RegExp(`[0-9A-F]+:([0-9A-F]{4}) [0-9A-F]+:${hex4(remotePort)} (?:\\S+ +){6}(\\d+)`, "g")
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string
    try {
      text = readFileSync(file, "latin1")
    } catch {
      continue
    }
    for (const m of text.matchAll(row)) {
      const port = wanted.get(m[1]!)
      if (port !== undefined && !found.has(port)) found.set(port, m[2]!)
    }
    if (found.size === wanted.size) break
  }
  return found
}
