import { afterEach, describe, expect, test } from "bun:test"
import { readdirSync, readlinkSync } from "node:fs"
import * as net from "node:net"
import { FaultProxy } from "./fault_proxy"
import { freePorts } from "./ports"

// The test process plays member "a" (it dials); an echo server plays "b".
let proxy: FaultProxy | undefined
let echo: net.Server | undefined
afterEach(async () => {
  await proxy?.close()
  await new Promise<void>((resolve) => (echo ? echo.close(() => resolve()) : resolve()))
  proxy = undefined
  echo = undefined
})

async function setup(): Promise<{ proxyPort: number }> {
  const [proxyPort, targetPort] = (await freePorts(2)) as [number, number]
  echo = net.createServer((s) => {
    s.on("data", (d) => (d.toString() === "bye" ? s.end() : s.write(d)))
    s.on("error", () => {})
  })
  await new Promise<void>((resolve) => echo!.listen(targetPort, "127.0.0.1", () => resolve()))
  proxy = await FaultProxy.start({
    routes: [
      { name: "a", proxyPort: (await freePorts(1))[0]!, targetPort: 1 },
      { name: "b", proxyPort, targetPort },
    ],
    pids: () => new Map([["a", process.pid]]),
  })
  return { proxyPort }
}

interface Conn {
  socket: net.Socket
  received: () => string
  closed: () => boolean
}

async function dial(port: number): Promise<Conn> {
  const socket = net.connect({ host: "127.0.0.1", port })
  let received = ""
  let closed = false
  socket.on("data", (d) => (received += d.toString()))
  socket.on("error", () => {})
  socket.on("close", () => (closed = true))
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()))
  return { socket, received: () => received, closed: () => closed }
}

async function until(cond: () => boolean, timeoutMs = 2_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (cond()) return true
    await Bun.sleep(10)
  }
  return cond()
}

/** Sockets this process holds open (a leaked one stays in CLOSE_WAIT for ever). */
function openSockets(): number {
  let n = 0
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith("socket:")) n++
    } catch {}
  }
  return n
}

describe("FaultProxy", () => {
  test("forwards both ways and knows which member process dialed", async () => {
    const { proxyPort } = await setup()
    const c = await dial(proxyPort)
    c.socket.write("hello")
    expect(await until(() => c.received() === "hello")).toBe(true)
    expect(proxy!.accepted.get("a")).toBe(1)
    c.socket.destroy()
  })

  test("delay() holds the bytes of one direction, in order", async () => {
    const { proxyPort } = await setup()
    const c = await dial(proxyPort)
    proxy!.delay("a", "b", 300)
    const sentAt = performance.now()
    c.socket.write("1")
    c.socket.write("2")
    expect(await until(() => c.received() === "12")).toBe(true)
    expect(performance.now() - sentAt).toBeGreaterThanOrEqual(290)
    c.socket.destroy()
  })

  test("dropOneWay() loses one direction silently; heal() resets the broken connection", async () => {
    const { proxyPort } = await setup()
    const c = await dial(proxyPort)
    proxy!.dropOneWay("b", "a") // the echo's replies are lost, the requests arrive
    c.socket.write("lost")
    expect(await until(() => c.received() !== "", 300)).toBe(false)
    expect(c.closed()).toBe(false)
    proxy!.heal()
    expect(await until(() => c.closed())).toBe(true)
    const d = await dial(proxyPort)
    d.socket.write("back")
    expect(await until(() => d.received() === "back")).toBe(true)
    d.socket.destroy()
  })

  test("cut() resets open connections and refuses new ones until heal()", async () => {
    const { proxyPort } = await setup()
    const c = await dial(proxyPort)
    proxy!.cut("a", "b")
    expect(await until(() => c.closed())).toBe(true)
    const d = await dial(proxyPort)
    expect(await until(() => d.closed())).toBe(true)
    proxy!.heal()
    const e = await dial(proxyPort)
    e.socket.write("ok")
    expect(await until(() => e.received() === "ok")).toBe(true)
    e.socket.destroy()
  })

  // A campaign round's members redial peers many times a second while a peer is down or cut; every
  // connection the proxy forwarded must be closed once either end closes, or the proxy piles up
  // sockets in CLOSE_WAIT (thousands per round), /proc/net/tcp grows with them, and the proxy's
  // lookup of the dialing member ends up starving the test process's event loop.
  test("releases both sockets of a connection whichever end closes it, and refused ones", async () => {
    const { proxyPort } = await setup()
    const before = openSockets()
    for (let i = 0; i < 20; i++) {
      const c = await dial(proxyPort)
      c.socket.write("x")
      await until(() => c.received() === "x")
      if (i % 3 === 0) c.socket.end() // a FIN from the dialer
      else if (i % 3 === 1) c.socket.destroy()
      else c.socket.write("bye") // the member closes its side
      await until(() => c.closed())
      c.socket.destroy()
    }
    await new Promise<void>((resolve) => echo!.close(() => resolve())) // the member is down: dials refused
    for (let i = 0; i < 10; i++) {
      const d = await dial(proxyPort)
      await until(() => d.closed())
      d.socket.destroy()
    }
    echo = undefined
    proxy!.cut("a", "b")
    for (let i = 0; i < 10; i++) {
      const d = await dial(proxyPort)
      await until(() => d.closed())
      d.socket.destroy()
    }
    expect(await until(() => openSockets() <= before, 3_000)).toBe(true)
  })
})
