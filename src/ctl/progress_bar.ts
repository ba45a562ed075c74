// The progress line etcdctl's checks print with gopkg.in/cheggaaa/pb.v1 on a
// stream that is not a terminal (no bar, only counters): "\r3 / 60    5.00% 00m57s",
// redrawn every 200 ms, and at finish() the final state with the time taken
// ("60 / 60  100.00% 1m0s") and a newline.
import { goDuration } from "./go_fmt"
import { out } from "./output"

const REFRESH_MS = 200

export class ProgressBar {
  private current = 0
  private readonly started: number
  private readonly timer: ReturnType<typeof setInterval>

  constructor(
    private readonly total: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.started = now()
    this.timer = setInterval(() => this.draw(), REFRESH_MS)
  }

  add(n = 1): void {
    this.current += n
  }

  /** pb's line: counters, percent, and the time left once something is done (the time taken once finished). */
  render(finished = false): string {
    const percent = this.total === 0 ? 100 : (this.current / this.total) * 100
    let eta = ""
    if (finished) eta = ` ${goDuration(Math.trunc((this.now() - this.started) / 1000) * 1e9)}`
    else if (this.current > 0 && this.current < this.total) {
      const leftSeconds = Math.trunc((((this.now() - this.started) / this.current) * (this.total - this.current)) / 1000)
      eta = ` ${String(Math.trunc(leftSeconds / 60)).padStart(2, "0")}m${String(leftSeconds % 60).padStart(2, "0")}s`
    }
    return `\r${this.current} / ${this.total}  ${percent.toFixed(2).padStart(6)}%${eta}`
  }

  private draw(): void {
    out.write(this.render())
  }

  /** Shows the whole total done (pb's goroutines end at the total) with the time taken, and a newline. */
  finish(): void {
    clearInterval(this.timer)
    this.current = this.total
    out.write(`${this.render(true)}\n`)
  }
}
