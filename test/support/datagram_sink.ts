// A bound unix datagram socket standing in for systemd's notify socket or
// journald's native socket: collects every datagram with its arrival time.
import { UnixDatagramReceiver } from "../../src/lib/unix_datagram"

export interface Datagram {
  /** Milliseconds since the sink was made. */
  atMs: number
  bytes: Uint8Array
  text: string
}

export class DatagramSink {
  readonly received: Datagram[] = []
  private readonly socket: UnixDatagramReceiver
  private readonly started = performance.now()
  private readonly timer: ReturnType<typeof setInterval>

  constructor(readonly path: string) {
    this.socket = new UnixDatagramReceiver(path)
    this.timer = setInterval(() => this.drain(), 5)
  }

  private drain(): void {
    for (let d = this.socket.receive(); d !== undefined; d = this.socket.receive()) {
      this.received.push({ atMs: Math.round(performance.now() - this.started), bytes: d, text: new TextDecoder().decode(d) })
    }
  }

  /** Waits (bounded) for a datagram that `match` accepts and returns it. */
  async waitFor(match: (d: Datagram) => boolean, timeoutMs = 15_000): Promise<Datagram> {
    const deadline = performance.now() + timeoutMs
    while (performance.now() < deadline) {
      this.drain()
      const hit = this.received.find(match)
      if (hit) return hit
      await Bun.sleep(10)
    }
    throw new Error(`no matching datagram at ${this.path} within ${timeoutMs} ms; got ${JSON.stringify(this.received.map((d) => d.text))}`)
  }

  close(): void {
    clearInterval(this.timer)
    this.drain()
    this.socket.close()
  }
}
