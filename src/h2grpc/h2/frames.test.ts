import { expect, test } from "bun:test"
import { ErrorCode, Flag, frame, FrameReader, FrameType, goawayFrame, H2ConnectionError, rstStreamFrame, settingsFrame, windowUpdateFrame } from "./frames"

interface Seen {
  type: number
  flags: number
  streamId: number
  payload: string
}

function readAll(reader: FrameReader, chunks: Buffer[]): Seen[] {
  const seen: Seen[] = []
  for (const chunk of chunks) {
    reader.push(chunk, (type, flags, streamId, payload) => seen.push({ type, flags, streamId, payload: payload.toString("hex") }))
  }
  return seen
}

const stream = Buffer.concat([
  settingsFrame([[4, 1]]),
  frame(FrameType.HEADERS, Flag.END_HEADERS, 1, Buffer.from([0x82, 0x84])),
  frame(FrameType.DATA, Flag.END_STREAM, 1, Buffer.from("hello")),
  frame(FrameType.DATA, 0, 3, new Uint8Array(0)),
  windowUpdateFrame(0, 0x7fffffff),
  rstStreamFrame(3, ErrorCode.CANCEL),
  goawayFrame(7, ErrorCode.PROTOCOL_ERROR, "bye"),
])

test("FrameReader gives the same frames however the bytes are split in two, at every byte", () => {
  const whole = readAll(new FrameReader(16_384), [stream])
  expect(whole.map((f) => f.type)).toEqual([FrameType.SETTINGS, FrameType.HEADERS, FrameType.DATA, FrameType.DATA, FrameType.WINDOW_UPDATE, FrameType.RST_STREAM, FrameType.GOAWAY])
  expect(whole[2]).toEqual({ type: FrameType.DATA, flags: Flag.END_STREAM, streamId: 1, payload: Buffer.from("hello").toString("hex") })
  expect(whole[6]!.payload).toBe(`00000007${"00000001"}${Buffer.from("bye").toString("hex")}`)
  for (let at = 0; at <= stream.length; at++) {
    expect(readAll(new FrameReader(16_384), [stream.subarray(0, at), stream.subarray(at)])).toEqual(whole)
  }
})

test("FrameReader gives the same frames when fed one byte at a time", () => {
  const whole = readAll(new FrameReader(16_384), [stream])
  const bytes = [...stream].map((b) => Buffer.from([b]))
  expect(readAll(new FrameReader(16_384), bytes)).toEqual(whole)
})

test("FrameReader ignores the reserved bit of the stream id", () => {
  const data = frame(FrameType.DATA, 0, 5, Buffer.from("x"))
  data[5] = data[5]! | 0x80
  expect(readAll(new FrameReader(16_384), [data])[0]!.streamId).toBe(5)
})

test("FrameReader refuses a frame above its maximum with FRAME_SIZE_ERROR before the payload arrives", () => {
  const header = frame(FrameType.DATA, 0, 1).subarray(0, 9)
  header[0] = 0x00
  header[1] = 0x40
  header[2] = 0x01 // 16385 bytes
  let error: unknown
  try {
    readAll(new FrameReader(16_384), [header])
  } catch (e) {
    error = e
  }
  expect(error).toBeInstanceOf(H2ConnectionError)
  expect((error as H2ConnectionError).code).toBe(ErrorCode.FRAME_SIZE_ERROR)
})
