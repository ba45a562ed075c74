import { expect, test } from "bun:test"
import { join } from "node:path"
import { tempDir } from "../../test/support/tmp"
import { UnixDatagramError, UnixDatagramReceiver, UnixDatagramSender } from "./unix_datagram"

test("UnixDatagramSender.send() delivers each datagram whole to a bound path socket", () => {
  const path = join(tempDir("dgram-").path, "sock")
  const receiver = new UnixDatagramReceiver(path)
  const sender = new UnixDatagramSender(path)
  expect(receiver.receive()).toBeUndefined()
  sender.send(new TextEncoder().encode("READY=1"))
  sender.send(new Uint8Array(100_000).fill(7))
  expect(new TextDecoder().decode(receiver.receive())).toBe("READY=1")
  expect(receiver.receive()?.length).toBe(100_000)
  expect(receiver.receive()).toBeUndefined()
  sender.close()
  receiver.close()
})

test("UnixDatagramSender reaches an abstract socket named '@name'", () => {
  const name = `@tskv-test-${process.pid}-${Date.now()}`
  const receiver = new UnixDatagramReceiver(name)
  const sender = new UnixDatagramSender(name)
  sender.send(new TextEncoder().encode("STOPPING=1"))
  expect(new TextDecoder().decode(receiver.receive())).toBe("STOPPING=1")
  sender.close()
  receiver.close()
})

test("UnixDatagramSender.connect() and send() fail with the errno when nothing listens", () => {
  const path = join(tempDir("dgram-").path, "missing")
  const sender = new UnixDatagramSender(path)
  expect(() => sender.connect()).toThrow(`dial unixgram ${path}: connect: no such file or directory`)
  try {
    sender.send(new Uint8Array([1]))
    throw new Error("send succeeded")
  } catch (e) {
    expect(e).toBeInstanceOf(UnixDatagramError)
    expect((e as UnixDatagramError).errno).toBe(2)
  }
  sender.close()
})

test("UnixDatagramReceiver refuses a path that is taken and one too long for sockaddr_un", () => {
  const path = join(tempDir("dgram-").path, "sock")
  const first = new UnixDatagramReceiver(path)
  expect(() => new UnixDatagramReceiver(path)).toThrow(`bind ${path}: address already in use`)
  expect(() => new UnixDatagramSender(`/tmp/${"x".repeat(120)}`)).toThrow("invalid unix socket path")
  first.close()
})
