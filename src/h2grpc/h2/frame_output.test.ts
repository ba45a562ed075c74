import { expect, test } from "bun:test"
import type * as net from "node:net"
import { Flag, FrameReader, FrameType, rstStreamFrame } from "./frames"
import { FrameOutput } from "./frame_output"

/** A socket that records what is written to it. */
function recordingSocket(): { socket: net.Socket; writes: Buffer[] } {
  const writes: Buffer[] = []
  const socket = { writableLength: 0, write: (bytes: Buffer) => writes.push(Buffer.from(bytes)) } as unknown as net.Socket
  return { socket, writes }
}

function framesOf(bytes: Buffer): string[] {
  const out: string[] = []
  new FrameReader(2 ** 24 - 1).push(bytes, (type, flags, streamId, payload) => out.push(`${type}/${flags}/${streamId}/${payload.length}/${payload[0] ?? ""}`))
  return out
}

test("FrameOutput writes everything queued in one turn as one socket.write, in order, small and large payloads mixed", async () => {
  const { socket, writes } = recordingSocket()
  let flushes = 0
  const output = new FrameOutput(socket, { beforeFlush: () => flushes++, afterFlush: () => {} })
  const expected: string[] = []
  for (let i = 1; i <= 40; i++) {
    output.pushHeaders({ streamId: i, block: Buffer.alloc(100, i), endStream: false, maxFrameBytes: 16_384 })
    expected.push(`${FrameType.HEADERS}/${Flag.END_HEADERS}/${i}/100/${i}`)
    const size = i % 3 === 0 ? 5000 : 700 // some go as views, the rest into the arena (which overflows)
    output.pushData(i, Buffer.alloc(size, i), i % 2 === 0)
    expected.push(`${FrameType.DATA}/${i % 2 === 0 ? Flag.END_STREAM : 0}/${i}/${size}/${i}`)
    if (i % 10 === 0) {
      output.push(rstStreamFrame(i, 8))
      expected.push(`${FrameType.RST_STREAM}/0/${i}/4/0`)
    }
  }
  expect(writes.length).toBe(0)
  await new Promise((resolve) => setImmediate(resolve))
  expect(writes.length).toBe(1)
  expect(flushes).toBe(1)
  expect(framesOf(writes[0]!)).toEqual(expected)
})

test("FrameOutput splits a header block larger than the frame size into HEADERS + CONTINUATION, END_STREAM on the first", async () => {
  const { socket, writes } = recordingSocket()
  const output = new FrameOutput(socket, { beforeFlush: () => {}, afterFlush: () => {} })
  output.pushHeaders({ streamId: 3, block: Buffer.alloc(40_000, 1), endStream: true, maxFrameBytes: 16_384 })
  output.flush()
  expect(framesOf(writes[0]!)).toEqual([`${FrameType.HEADERS}/${Flag.END_STREAM}/3/16384/1`, `${FrameType.CONTINUATION}/0/3/16384/1`, `${FrameType.CONTINUATION}/${Flag.END_HEADERS}/3/7232/1`])
})

test("FrameOutput drops what is queued once closed, and writes nothing after", async () => {
  const { socket, writes } = recordingSocket()
  const output = new FrameOutput(socket, { beforeFlush: () => {}, afterFlush: () => {} })
  output.pushData(1, Buffer.from("x"), false)
  output.close()
  output.pushData(1, Buffer.from("y"), true)
  output.flush()
  await new Promise((resolve) => setImmediate(resolve))
  expect(writes).toEqual([])
})
