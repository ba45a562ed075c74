import { expect, test } from "bun:test"
import { StdinLines } from "./stdin_lines"

async function* chunks(...parts: Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const p of parts) yield p
}

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)

test("StdinLines.next() returns lines split across chunks, a multi-byte character split included", async () => {
  const e = bytes("é")
  const lines = new StdinLines(chunks(bytes("wat"), bytes("ch a\nb"), e.subarray(0, 1), e.subarray(1), bytes("\n\n")))
  expect(await lines.next()).toBe("watch a")
  expect(await lines.next()).toBe("bé")
  expect(await lines.next()).toBe("")
  expect(await lines.next()).toBeUndefined()
})

test("StdinLines.next() treats a last line without newline as EOF, as bufio.ReadString does", async () => {
  const lines = new StdinLines(chunks(bytes("one\ntwo")))
  expect(await lines.next()).toBe("one")
  expect(await lines.next()).toBeUndefined()
  expect(await lines.next()).toBeUndefined()
})

test("StdinLines.next() returns a line before the source has more to give", async () => {
  let release: () => void = () => {}
  const gate = new Promise<void>((r) => (release = r))
  async function* slow(): AsyncGenerator<Uint8Array> {
    yield bytes("first\n")
    await gate
    yield bytes("second\n")
  }
  const lines = new StdinLines(slow())
  expect(await lines.next()).toBe("first")
  const second = lines.next()
  release()
  expect(await second).toBe("second")
})
