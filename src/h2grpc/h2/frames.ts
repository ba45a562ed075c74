// HTTP/2 frames (RFC 9113 §4, §6): the wire constants, an incremental reader
// that cuts socket chunks into frames, and the writers of the frames a server
// sends. Payloads are views into the chunks they arrived in (no copy) unless a
// frame spans chunks.

export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const

export const Flag = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const

export const ErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
} as const

export const Setting = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const

export const FRAME_HEADER_BYTES = 9
/** The protocol's default and smallest SETTINGS_MAX_FRAME_SIZE; also what we accept. */
export const DEFAULT_MAX_FRAME_BYTES = 16_384
export const MAX_FRAME_BYTES_LIMIT = 2 ** 24 - 1
export const DEFAULT_WINDOW_BYTES = 65_535
export const MAX_WINDOW_BYTES = 2 ** 31 - 1
export const CLIENT_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1")

/** A connection error (RFC 9113 §5.4.1): GOAWAY with this code, then close. */
export class H2ConnectionError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message)
  }
}

export type FrameHandler = (type: number, flags: number, streamId: number, payload: Buffer) => void

/**
 * Cuts a byte stream into frames. A frame longer than `maxPayloadBytes` (our
 * SETTINGS_MAX_FRAME_SIZE) is a FRAME_SIZE_ERROR, raised before its payload
 * is buffered.
 */
export class FrameReader {
  private held: Buffer | undefined

  constructor(private readonly maxPayloadBytes: number) {}

  push(chunk: Buffer, onFrame: FrameHandler): void {
    let data = chunk
    if (this.held !== undefined) {
      data = Buffer.concat([this.held, chunk])
      this.held = undefined
    }
    let offset = 0
    const end = data.length
    while (end - offset >= FRAME_HEADER_BYTES) {
      const length = (data[offset]! << 16) | (data[offset + 1]! << 8) | data[offset + 2]!
      if (length > this.maxPayloadBytes) throw new H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, `frame of ${length} bytes exceeds ${this.maxPayloadBytes}`)
      if (end - offset - FRAME_HEADER_BYTES < length) break
      const type = data[offset + 3]!
      const flags = data[offset + 4]!
      const streamId = data.readUInt32BE(offset + 5) & 0x7fffffff
      const start = offset + FRAME_HEADER_BYTES
      offset = start + length
      onFrame(type, flags, streamId, data.subarray(start, offset))
    }
    if (offset < end) this.held = data.subarray(offset)
  }
}

export function writeFrameHeader(target: Uint8Array, offset: number, frame: { length: number; type: number; flags: number; streamId: number }): void {
  target[offset] = (frame.length >>> 16) & 0xff
  target[offset + 1] = (frame.length >>> 8) & 0xff
  target[offset + 2] = frame.length & 0xff
  target[offset + 3] = frame.type
  target[offset + 4] = frame.flags
  target[offset + 5] = (frame.streamId >>> 24) & 0x7f
  target[offset + 6] = (frame.streamId >>> 16) & 0xff
  target[offset + 7] = (frame.streamId >>> 8) & 0xff
  target[offset + 8] = frame.streamId & 0xff
}

/** A whole frame with a small payload (control frames, short DATA). */
export function frame(type: number, flags: number, streamId: number, payload?: Uint8Array): Buffer {
  const length = payload?.length ?? 0
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + length)
  writeFrameHeader(out, 0, { length, type, flags, streamId })
  if (payload !== undefined) out.set(payload, FRAME_HEADER_BYTES)
  return out
}

export function settingsFrame(settings: readonly (readonly [id: number, value: number])[]): Buffer {
  const payload = Buffer.allocUnsafe(settings.length * 6)
  settings.forEach(([id, value], i) => {
    payload.writeUInt16BE(id, i * 6)
    payload.writeUInt32BE(value, i * 6 + 2)
  })
  return frame(FrameType.SETTINGS, 0, 0, payload)
}

export function windowUpdateFrame(streamId: number, increment: number): Buffer {
  const out = frame(FrameType.WINDOW_UPDATE, 0, streamId, FOUR_ZEROS)
  out.writeUInt32BE(increment, FRAME_HEADER_BYTES)
  return out
}

export function rstStreamFrame(streamId: number, code: number): Buffer {
  const out = frame(FrameType.RST_STREAM, 0, streamId, FOUR_ZEROS)
  out.writeUInt32BE(code, FRAME_HEADER_BYTES)
  return out
}

export function goawayFrame(lastStreamId: number, code: number, debug = ""): Buffer {
  const debugBytes = Buffer.from(debug)
  const payload = Buffer.allocUnsafe(8 + debugBytes.length)
  payload.writeUInt32BE(lastStreamId & 0x7fffffff, 0)
  payload.writeUInt32BE(code, 4)
  payload.set(debugBytes, 8)
  return frame(FrameType.GOAWAY, 0, 0, payload)
}

const FOUR_ZEROS = new Uint8Array(4)
