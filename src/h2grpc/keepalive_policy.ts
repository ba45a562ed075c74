// Loose --grpc-keepalive-min-time: on an HTTP/2 connection
// with no stream open, a run of pings each closer than half the minimum to
// the previous one earns a GOAWAY (ENHANCE_YOUR_CALM, "too_many_pings", which
// grpc-go clients answer by slowing down). Pings while streams are open are
// never counted: grpc-go sends BDP pings as data arrives.

const PING_STRIKES_MAX = 20

export class PingStrikes {
  private lastPingMs = 0
  private strikes = 0

  constructor(private readonly minTimeMs: number) {}

  /** Records a ping at `nowMs`; true once the connection has earned its GOAWAY. */
  abusive(openStreams: number, nowMs: number): boolean {
    const tooSoon = nowMs - this.lastPingMs < this.minTimeMs / 2 && openStreams === 0
    this.lastPingMs = nowMs
    this.strikes = tooSoon ? this.strikes + 1 : 0
    return this.strikes > PING_STRIKES_MAX
  }
}
