// The Worker thread behind EtcdExportWorker (export_stream.ts): it converts a
// tskv db to etcd's bbolt db with a connection of its own and hands the db's
// bytes over as they are made (etcd_export.ts plans the layout first, so the
// metas and the size are known before the first byte), each chunk's memory
// transferred to the member's thread, with the sha256 computed on the way.
// No file in between. Its own heap: the conversion's garbage is collected
// here, not by the member's collector, which would mark the member's whole
// heap (the key index) each time; its own core: the member keeps serving at
// full speed meanwhile. Listed as an entrypoint in scripts/build.ts.

import { createHash } from "node:crypto"
import { exportSteps, pinnedReader } from "./etcd_export"
import type { ToWorker } from "./export_stream"

declare const self: {
  onmessage: ((event: MessageEvent) => void) | null
  postMessage(message: unknown, transfer?: ArrayBuffer[]): void
}

let steps: Generator<void, unknown> | undefined
let reader: { end(): void } | undefined
/** Made and not yet posted. */
const ready: Uint8Array[] = []
let total = 0
let sent = 0
let hash = createHash("sha256")

function fail(e: unknown): void {
  steps = undefined
  endReader()
  self.postMessage({ type: "error", message: e instanceof Error ? e.message : String(e) })
}

function endReader(): void {
  reader?.end()
  reader = undefined
}

function start(msg: Extract<ToWorker, { type: "export" }>): void {
  const pinned = pinnedReader(msg.dbPath)
  reader = pinned
  self.postMessage({ type: "pinned" })
  steps = exportSteps({
    source: pinned.db,
    target: {
      size: (bytes) => {
        total = bytes
        self.postMessage({ type: "exported", bytes })
        // At least 64 chunks (a progress bar moves on a small db), 32 KiB as etcd at the least.
        return Math.min(msg.chunkBytes, Math.max(32 * 1024, Math.ceil(bytes / 64 / 4096) * 4096))
      },
      chunk: (bytes) => {
        hash.update(bytes)
        ready.push(bytes)
      },
    },
  })
  // Up to the plan's end and the first chunk.
  if (steps.next().done === true) finished()
}

function send(count: number): void {
  for (let i = 0; i < count; i++) {
    while (ready.length === 0 && steps !== undefined) {
      if (steps.next().done === true) finished()
    }
    const bytes = ready.shift()
    if (bytes === undefined) break
    sent += bytes.byteLength
    const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
    const own = whole ? bytes : bytes.slice()
    self.postMessage({ type: "chunk", bytes: own, remaining: total - sent }, [own.buffer as ArrayBuffer])
  }
  if (steps === undefined && ready.length === 0 && sent === total && total > 0) {
    self.postMessage({ type: "end", sha256: new Uint8Array(hash.digest()) })
    total = 0
    hash = createHash("sha256")
  }
}

/** The consumer went away: end the read transaction, then tell it (it terminates this thread). */
function stop(): void {
  const s = steps
  steps = undefined
  ready.length = 0
  try {
    s?.return(undefined)
  } finally {
    endReader()
    self.postMessage({ type: "stopped" })
  }
}

/** The conversion is done (every chunk is in `ready`): the db's state is no longer needed. */
function finished(): void {
  steps = undefined
  endReader()
}

self.onmessage = (event: MessageEvent) => {
  const msg = event.data as ToWorker
  try {
    if (msg.type === "export") start(msg)
    else if (msg.type === "read") send(msg.count)
    else if (msg.type === "stop") stop()
  } catch (e) {
    fail(e)
  }
}
