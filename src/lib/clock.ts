// Time is passed in, never read directly by the rooms below server/, so
// tests and simulations run on a FakeClock.

export interface Clock {
  /** Monotonic milliseconds (not wall time). */
  now(): number
  /** Wall-clock milliseconds since the epoch (for logs and tokens only). */
  wallNow(): number
}

export const systemClock: Clock = {
  now: () => performance.now(),
  wallNow: () => Date.now(),
}

export class FakeClock implements Clock {
  constructor(private monotonicMs = 0, private wallMs = 1_700_000_000_000) {}
  now(): number {
    return this.monotonicMs
  }
  wallNow(): number {
    return this.wallMs + this.monotonicMs
  }
  advance(ms: number): void {
    this.monotonicMs += ms
  }
}
