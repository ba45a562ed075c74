// gRPC response streams as async iterables (watch, keepalive, snapshot, observe).
import { status, type ClientDuplexStream, type ClientReadableStream } from "@grpc/grpc-js"
import { toClientError } from "./errors"

const HIGH_WATER = 1024

/**
 * The responses of a server-streaming or bidi call. Iterate with `for await`,
 * or call next(). The iteration ends when the server ends the stream or
 * close() is called; a server error is thrown from next() as a TskvError or
 * GrpcError. Responses are buffered; reading is paused above 1024 buffered.
 */
export class ResponseStream<T> implements AsyncIterableIterator<T> {
  private readonly buffered: T[] = []
  private readonly waiting: { resolve: (r: IteratorResult<T>) => void; reject: (e: Error) => void }[] = []
  private done = false
  private failure: Error | undefined
  private closedByUs = false

  constructor(
    protected readonly call: ClientReadableStream<T> | ClientDuplexStream<unknown, T>,
    onError?: (e: Error) => void,
  ) {
    call.on("data", (msg: T) => {
      const w = this.waiting.shift()
      if (w !== undefined) return w.resolve({ value: msg, done: false })
      this.buffered.push(msg)
      if (this.buffered.length >= HIGH_WATER) call.pause()
    })
    call.on("end", () => this.finish(undefined))
    call.on("error", (e: Error & { code?: number }) => {
      if (this.closedByUs && e.code === status.CANCELLED) return this.finish(undefined)
      const err = toClientError(e)
      onError?.(err)
      this.finish(err)
    })
  }

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
  constructor(
    private readonly duplex: ClientDuplexStream<Req, Res>,
    onError?: (e: Error) => void,
  ) {
    super(duplex as ClientDuplexStream<unknown, Res>, onError)
  }

  send(req: Req): void {
    this.duplex.write(req)
  }

  /** Half-closes the sending side; the server ends the stream after its last response. */
  end(): void {
    this.duplex.end()
  }
}
