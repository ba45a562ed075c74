import { afterEach, expect, test } from "bun:test"
import { AuthStore } from "../../../auth/store"
import { newAuthSecret } from "../../../auth/tokens"
import { Backend } from "../../../backend/backend"
import { FakeClock } from "../../../lib/clock"
import type { EtcdServer } from "../../../server/server"
import type { CallContext, GrpcServer, UnaryHandler } from "../../../h2grpc"
import { pendingTokenIndex, waitingForSimpleTokens } from "./context"

const backends: Backend[] = []
afterEach(() => {
  for (const b of backends.splice(0)) b.close()
})

/** A member that has applied up to `appliedIndex`; apply(i) moves it on. */
function fakeServer(enabled: boolean) {
  const backend = Backend.open({ path: ":memory:" })
  backends.push(backend)
  const auth = new AuthStore({ backend, clock: new FakeClock(), bcryptCost: 4 })
  if (enabled) {
    auth.userAdd({ name: "root", hashedPassword: "" })
    auth.userGrantRole({ user: "root", role: "root" })
    auth.enable(newAuthSecret())
  }
  let waiters: { index: number; resolve: () => void }[] = []
  const server = {
    auth,
    appliedIndex: 10,
    requestTimeoutMs: () => 200,
    waitApplied(index: number): Promise<void> {
      if (server.appliedIndex >= index) return Promise.resolve()
      return new Promise((resolve) => waiters.push({ index, resolve }))
    },
    apply(index: number): void {
      server.appliedIndex = index
      for (const w of waiters.filter((x) => x.index <= index)) w.resolve()
      waiters = waiters.filter((x) => x.index > index)
    },
  }
  return server
}

function callWith(headers: Record<string, string>): CallContext {
  return { header: (name: string) => headers[name], peerCommonName: undefined } as unknown as CallContext
}

function captureUnary(): { grpc: GrpcServer; handler: () => UnaryHandler<unknown, unknown> } {
  let captured: UnaryHandler<unknown, unknown> | undefined
  const grpc = { addUnary: (_m: unknown, h: UnaryHandler<unknown, unknown>) => void (captured = h), other: () => "bound" } as unknown as GrpcServer
  return { grpc, handler: () => captured! }
}

test("pendingTokenIndex(): only a simple token from an index not applied yet, only with auth on", () => {
  const on = fakeServer(true) as unknown as EtcdServer
  const off = fakeServer(false) as unknown as EtcdServer
  expect(pendingTokenIndex(on, callWith({ token: "abcdefghijklmnop.11" }))).toBe(11)
  expect(pendingTokenIndex(on, callWith({ authorization: "abcdefghijklmnop.12" }))).toBe(12)
  expect(pendingTokenIndex(on, callWith({ token: "abcdefghijklmnop.10" }))).toBeNull()
  expect(pendingTokenIndex(on, callWith({ token: "a.b.c" }))).toBeNull()
  expect(pendingTokenIndex(on, callWith({}))).toBeNull()
  expect(pendingTokenIndex(off, callWith({ token: "abcdefghijklmnop.11" }))).toBeNull()
})

test("waitingForSimpleTokens(): a unary call waits until the member applied its token's index", async () => {
  const server = fakeServer(true)
  const { grpc, handler } = captureUnary()
  const wrapped = waitingForSimpleTokens(grpc, server as unknown as EtcdServer)
  const seen: number[] = []
  wrapped.addUnary({} as never, () => {
    seen.push(server.appliedIndex)
    return "done"
  })
  expect((wrapped as unknown as { other(): string }).other()).toBe("bound")
  const pending = handler()({}, callWith({ token: "abcdefghijklmnop.12" }))
  await Bun.sleep(20)
  expect(seen).toEqual([])
  server.apply(12)
  expect(await pending).toBe("done")
  expect(seen).toEqual([12])
})

test("waitingForSimpleTokens(): gives up waiting after the request timeout and runs the handler", async () => {
  const server = fakeServer(true)
  const { grpc, handler } = captureUnary()
  waitingForSimpleTokens(grpc, server as unknown as EtcdServer).addUnary({} as never, () => server.appliedIndex)
  const started = performance.now()
  expect(await handler()({}, callWith({ token: "abcdefghijklmnop.999" }))).toBe(10)
  expect(performance.now() - started).toBeGreaterThanOrEqual(150)
})
