// gRPC keepalive as grpc-go's server does it (internal/transport/http2_server.go),
// which is what etcd's --grpc-keepalive-* flags configure:
//
// - Enforcement (--grpc-keepalive-min-time, keepalive.EnforcementPolicy with
//   PermitWithoutStream false): a PING from the client is a strike when it
//   comes sooner than the minimum time after the previous one (2 h when no
//   stream is open: without a stream no keepalive is allowed at all) and
//   nothing, no HEADERS and no DATA, was sent since; a ping after a write
//   clears the strikes instead. The third strike (more than 2) earns GOAWAY
//   ENHANCE_YOUR_CALM "too_many_pings". grpc-go clients ping once per response
//   (BDP estimation), and every response is a write, so they never strike.
// - Server pings (--grpc-keepalive-interval and -timeout, ServerParameters
//   Time and Timeout): after an interval with nothing read the server pings;
//   if nothing is read within the timeout after that, it closes the
//   connection (no GOAWAY). Anything read counts, not only the PING ACK.

/** grpc-go's maxPingStrikes: the GOAWAY comes with the strike after these. */
export const PING_STRIKES_MAX = 2
/** grpc-go's defaultPingTimeout: the minimum between pings with no stream open. */
export const PING_MIN_TIME_NO_STREAM_MS = 2 * 60 * 60 * 1000
/** grpc-go's defaultKeepalivePolicyMinTime: what etcd's --grpc-keepalive-min-time=0 leaves. */
export const PING_MIN_TIME_DEFAULT_MS = 5 * 60 * 1000
/** grpc-go's defaultServerKeepaliveTime and -Timeout: what etcd leaves when either flag is 0. */
export const SERVER_PING_INTERVAL_DEFAULT_MS = 2 * 60 * 60 * 1000
export const SERVER_PING_TIMEOUT_DEFAULT_MS = 20 * 1000

export interface KeepaliveFlags {
  /** --grpc-keepalive-min-time */
  minTimeMs: number
  /** --grpc-keepalive-interval */
  intervalMs: number
  /** --grpc-keepalive-timeout */
  timeoutMs: number
}

/**
 * What grpc-go ends up with for etcd's flags: etcd passes the enforcement
 * policy only for a min time > 0 and the server parameters only when both
 * the interval and the timeout are > 0; grpc-go's defaults fill in the rest.
 */
export function effectiveKeepalive(flags: KeepaliveFlags): KeepaliveFlags {
  const both = flags.intervalMs > 0 && flags.timeoutMs > 0
  return {
    minTimeMs: flags.minTimeMs > 0 ? flags.minTimeMs : PING_MIN_TIME_DEFAULT_MS,
    intervalMs: both ? flags.intervalMs : SERVER_PING_INTERVAL_DEFAULT_MS,
    timeoutMs: both ? flags.timeoutMs : SERVER_PING_TIMEOUT_DEFAULT_MS,
  }
}

/** The client's pings on one connection (grpc-go's handlePing). */
export class PingEnforcer {
  private lastPingMs = Number.NEGATIVE_INFINITY
  private strikes = 0
  private writesSeen = 0

  constructor(private readonly minTimeMs: number) {}

  /**
   * A PING (not an ACK) arrived at `nowMs`, with `openStreams` streams open
   * and `writes` HEADERS and DATA frames sent on the connection so far.
   * Returns true when it earns the GOAWAY.
   */
  onPing(nowMs: number, openStreams: number, writes: number): boolean {
    const sinceLastMs = nowMs - this.lastPingMs
    this.lastPingMs = nowMs
    if (writes !== this.writesSeen) {
      this.writesSeen = writes
      this.strikes = 0
      return false
    }
    const minMs = openStreams < 1 ? PING_MIN_TIME_NO_STREAM_MS : this.minTimeMs
    if (sinceLastMs < minMs) this.strikes++
    return this.strikes > PING_STRIKES_MAX
  }
}

export type PingerStep = { action: "wait" | "ping"; nextMs: number } | { action: "close" }

/**
 * The server's keepalive pings on one connection (grpc-go's keepalive()
 * loop): call step() when the timer it asked for fires, with the time of the
 * last read; it says whether to ping, to close, and when to call it again.
 */
export class ServerPinger {
  private prevReadMs: number
  private outstanding = false
  private timeoutLeftMs = 0

  constructor(
    private readonly intervalMs: number,
    private readonly timeoutMs: number,
    startMs: number,
  ) {
    this.prevReadMs = startMs
  }

  /** When to call step() first. */
  firstAtMs(): number {
    return this.prevReadMs + this.intervalMs
  }

  step(nowMs: number, lastReadMs: number): PingerStep {
    if (lastReadMs > this.prevReadMs) {
      // Something was read since: the next check is an interval after that read.
      this.outstanding = false
      this.prevReadMs = lastReadMs
      return { action: "wait", nextMs: lastReadMs + this.intervalMs }
    }
    if (this.outstanding && this.timeoutLeftMs <= 0) return { action: "close" }
    let action: "wait" | "ping" = "wait"
    if (!this.outstanding) {
      action = "ping"
      this.outstanding = true
      this.timeoutLeftMs = this.timeoutMs
    }
    const sleepMs = Math.min(this.intervalMs, this.timeoutLeftMs)
    this.timeoutLeftMs -= sleepMs
    return { action, nextMs: nowMs + sleepMs }
  }
}
