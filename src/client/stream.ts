// gRPC response streams as async iterables (watch, keepalive, snapshot, observe).
import { status, type ClientDuplexStream, type ClientReadableStream } from "@grpc/grpc-js"
import { GrpcError, toClientError } from "./errors"

const HIGH_WATER = 1024

type Call<T> = ClientReadableStream<T> | ClientDuplexStream<unknown, T>

/**
 * Opens the call on the attempt-th endpoint (0 = the current one); undefined
 * when every endpoint has been tried.
 */
export type OpenCall<C> = (attempt: number) => C | undefined

/**
 * The responses of a server-streaming or bidi call. Iterate with `for await`,
 * or call next()/read(). The iteration ends when the server ends the stream or
 * close() is called; a server error is thrown from next() as a TskvError or
 * GrpcError. Until the first response arrives, a transport failure
 * (Unavailable without an etcd message) reopens the call on the next endpoint
 * and sends the requests again. Responses are buffered; reading is paused
 * above 1024 buffered.
 */
export class ResponseStream<T> implements AsyncIterableIterator<T> {
  private readonly buffered: T[] = []
  private readonly waiting: { resolve: (r: IteratorResult<T>) => void; reject: (e: Error) => void }[] = []
  private done = false
  private failure: Error | undefined
  private closedByUs = false
  private attempt = 0
  protected receivedAny = false
  protected call: Call<T>

  constructor(
    private readonly open: OpenCall<Call<T>>,
    private readonly onError?: (e: Error) => void,
  ) {
    const call = open(0)
    if (call === undefined) throw new Error("no endpoint to open the stream on")
    this.call = call
    this.attach(call)
  }

  private attach(call: Call<T>): void {
    call.on("data", (msg: T) => {
      if (call !== this.call) return
      this.receivedAny = true
      const w = this.waiting.shift()
      if (w !== undefined) return w.resolve({ value: msg, done: false })
      this.buffered.push(msg)
      if (this.buffered.length >= HIGH_WATER) call.pause()
    })
    call.on("end", () => {
      if (call === this.call) this.finish(undefined)
    })
    call.on("error", (e: Error & { code?: number }) => {
      if (call !== this.call) return
      if (this.closedByUs && e.code === status.CANCELLED) return this.finish(undefined)
      const err = toClientError(e)
      if (!this.receivedAny && !this.closedByUs && err instanceof GrpcError && err.grpcCode === status.UNAVAILABLE) {
        const next = this.open(++this.attempt)
        if (next !== undefined) {
          this.call = next
          this.attach(next)
          this.reopened()
          return
        }
      }
      this.onError?.(err)
      this.finish(err)
    })
  }

  /** Called after the call moved to another endpoint (bidi streams send again). */
  protected reopened(): void {}

  private finish(err: Error | undefined): void {
    if (this.done) return
    this.done = true
    this.failure = err
    for (const w of this.waiting.splice(0)) {
      if (err === undefined) w.resolve({ value: undefined, done: true })
      else w.reject(err)
    }
  }

  next(): Promise<IteratorResult<T>> {
    const msg = this.buffered.shift()
    if (msg !== undefined) {
      if (this.buffered.length === HIGH_WATER / 2) this.call.resume()
      return Promise.resolve({ value: msg, done: false })
    }
    if (this.done) {
      return this.failure === undefined
        ? Promise.resolve({ value: undefined, done: true })
        : Promise.reject(this.failure)
    }
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }))
  }

  /** Waits for the next response; throws if the stream ended first. */
  async read(): Promise<T> {
    const r = await this.next()
    if (r.done === true) throw new Error("stream ended")
    return r.value
  }

  async return(): Promise<IteratorResult<T>> {
    this.close()
    return { value: undefined, done: true }
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this
  }

  /** Cancels the call; pending and later next() calls report the end of the stream. */
  close(): void {
    if (this.done) return
    this.closedByUs = true
    this.call.cancel()
    this.finish(undefined)
  }
}

/** A bidi stream: send requests with send(), read responses by iterating. */
export class DuplexStream<Req, Res> extends ResponseStream<Res> {
  /** Requests sent before the first response, replayed if the call moves to another endpoint. */
  private unanswered: Req[] | undefined = []
  private ended = false

  constructor(open: OpenCall<ClientDuplexStream<Req, Res>>, onError?: (e: Error) => void) {
    super(open as OpenCall<Call<Res>>, onError)
  }

  private get duplex(): ClientDuplexStream<Req, Res> {
    return this.call as ClientDuplexStream<Req, Res>
  }

  send(req: Req): void {
    if (this.receivedAny) this.unanswered = undefined
    this.unanswered?.push(req)
    this.duplex.write(req)
  }

  /** Half-closes the sending side; the server ends the stream after its last response. */
  end(): void {
    this.ended = true
    this.duplex.end()
  }

  protected override reopened(): void {
    for (const req of this.unanswered ?? []) this.duplex.write(req)
    if (this.ended) this.duplex.end()
  }
}
