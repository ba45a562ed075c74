// Raft snapshot files in `<data-dir>/tskv/snap`: `<term>-<index>.snap`, 16
// hex digits each, holding the snapshot's metadata and its (small) data; the
// backend's db file beside them is not ours and is never touched.
//
// A file is written to a temp file, fsynced, renamed and its directory
// fsynced, so a crash leaves either the whole file or none. Loading picks the
// newest file that checks out; a damaged one is logged, renamed to
// `*.broken` (as etcd does) and skipped. After each save the oldest files
// beyond --max-snapshots are deleted.
//
// File layout: u32 crc32 of the payload (little endian), then the CBOR payload
// [index, term, voters, learners, data].

import { Decoder, Encoder } from "cbor-x"
import { assert, assertIndex } from "../lib/assert"
import type { FsPort } from "../lib/fs_port"
import { mkdirDurable, writeFileAtomic } from "../lib/fs_port"
import type { Logger } from "../lib/logger"
import { silentLogger } from "../lib/logger"
import type { NodeId, Snapshot } from "../raft/types"

/** etcd's --max-snapshots default. */
export const DEFAULT_MAX_SNAPSHOTS = 5

export interface SnapshotterOptions {
  fs: FsPort
  /** `<data-dir>/tskv/snap`. */
  dir: string
  logger?: Logger
  /** --max-snapshots: files kept after a save (0: keep all). Default 5. */
  maxSnapshots?: number
}

/** A snapshot's position in the log, as the WAL records it. */
export interface SnapshotPosition {
  index: number
  term: number
}

const namePattern = /^([0-9a-f]{16})-([0-9a-f]{16})\.snap$/
const encoder = new Encoder({ useRecords: false, tagUint8Array: false })
const decoder = new Decoder({ useRecords: false })

export class SnapshotError extends Error {
  override readonly name = "SnapshotError"
}

export class Snapshotter {
  private readonly fs: FsPort
  private readonly dir: string
  private readonly logger: Logger
  private readonly maxSnapshots: number

  constructor(options: SnapshotterOptions) {
    this.fs = options.fs
    this.dir = options.dir
    this.logger = options.logger ?? silentLogger
    this.maxSnapshots = options.maxSnapshots ?? DEFAULT_MAX_SNAPSHOTS
    if (!this.fs.exists(this.dir)) mkdirDurable(this.fs, this.dir)
    // A save interrupted by a crash leaves its temp file; it was never renamed, so never used.
    for (const name of this.fs.readdir(this.dir)) if (name.endsWith(".snap.tmp")) this.fs.unlink(`${this.dir}/${name}`)
  }

  /** The file name of a snapshot at {term, index}. */
  static fileName(position: SnapshotPosition): string {
    return `${hex16(position.term)}-${hex16(position.index)}.snap`
  }

  /** Writes `snapshot` durably (an empty snapshot, index 0, is not written), then applies --max-snapshots. */
  save(snapshot: Snapshot): void {
    const { index, term } = snapshot.metadata
    assertIndex(index, "snapshot index")
    assertIndex(term, "snapshot term")
    if (index === 0) return
    const started = performance.now()
    const bytes = encodeSnapshot(snapshot)
    const marshallingMs = performance.now() - started
    const name = Snapshotter.fileName({ index, term })
    // Check the bytes on this side of the boundary too.
    assert(decodeSnapshot(bytes, name).metadata.index === index, "snapshot does not round-trip")
    const fsyncMs = writeFileAtomic(this.fs, `${this.dir}/${name}`, bytes)
    this.onSave?.({ marshallingMs, fsyncMs, totalMs: performance.now() - started })
    this.purge()
  }

  /** Timings of each save (etcd_snap_fsync_duration_seconds, etcd_debugging_snap_save_*). */
  onSave: ((timing: { marshallingMs: number; fsyncMs: number; totalMs: number }) => void) | undefined

  /** The newest snapshot that checks out, or undefined when there is none. */
  load(): Snapshot | undefined {
    return this.loadMatching(() => true)
  }

  /**
   * The newest snapshot that checks out and whose {index, term} is one of
   * `positions` (the WAL's valid snapshot markers): a snapshot file whose
   * marker never reached the WAL is not used (etcd's LoadNewestAvailable).
   */
  loadNewestAvailable(positions: readonly SnapshotPosition[]): Snapshot | undefined {
    const wanted = new Set(positions.map((p) => Snapshotter.fileName(p)))
    return this.loadMatching((name) => wanted.has(name))
  }

  /** The snapshot file names, newest first. */
  names(): string[] {
    const names = this.fs.readdir(this.dir).filter((n) => namePattern.test(n))
    return names.sort(compareNames).reverse()
  }

  private loadMatching(accept: (name: string) => boolean): Snapshot | undefined {
    for (const name of this.names()) {
      if (!accept(name)) continue
      const path = `${this.dir}/${name}`
      try {
        return decodeSnapshot(this.fs.readFile(path), name)
      } catch (e) {
        if (!(e instanceof SnapshotError)) throw e
        this.logger.warn("snap: skipping a damaged snapshot file", { file: path, reason: e.message })
        this.fs.rename(path, `${path}.broken`)
        this.fs.fsyncDir(this.dir)
      }
    }
    return undefined
  }

  private purge(): void {
    if (this.maxSnapshots === 0) return
    const names = this.names()
    const stale = names.slice(this.maxSnapshots)
    for (const name of stale) {
      this.fs.unlink(`${this.dir}/${name}`)
      this.logger.info("snap: purged snapshot file", { file: `${this.dir}/${name}` })
    }
    if (stale.length > 0) this.fs.fsyncDir(this.dir)
  }
}

export function encodeSnapshot(snapshot: Snapshot): Uint8Array {
  const { metadata, data } = snapshot
  const payload = encoder.encode([metadata.index, metadata.term, metadata.confState.voters, metadata.confState.learners, data])
  const out = new Uint8Array(4 + payload.length)
  out.set(payload, 4)
  new DataView(out.buffer).setUint32(0, Bun.hash.crc32(payload) >>> 0, true)
  return out
}

/** Decodes and checks a snapshot file; throws SnapshotError when it is damaged or does not match `name`. */
export function decodeSnapshot(bytes: Uint8Array, name: string): Snapshot {
  if (bytes.length < 5) throw new SnapshotError(`${name}: file too short (${bytes.length} bytes)`)
  const payload = bytes.subarray(4)
  const crc = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true)
  if ((Bun.hash.crc32(payload) >>> 0) !== crc) throw new SnapshotError(`${name}: crc mismatch`)
  let value: unknown
  try {
    value = decoder.decode(payload) as unknown
  } catch (e) {
    throw new SnapshotError(`${name}: undecodable: ${e instanceof Error ? e.message : String(e)}`)
  }
  if (!Array.isArray(value) || value.length !== 5) throw new SnapshotError(`${name}: not a snapshot`)
  const [index, term, voters, learners, data] = value as unknown[]
  const snapshot: Snapshot = {
    metadata: {
      index: count(index, name, "index"),
      term: count(term, name, "term"),
      confState: { voters: ids(voters, name, "voters"), learners: ids(learners, name, "learners") },
    },
    data: bytesOf(data, name),
  }
  if (name !== Snapshotter.fileName(snapshot.metadata)) {
    throw new SnapshotError(`${name}: holds the snapshot at term ${snapshot.metadata.term}, index ${snapshot.metadata.index}`)
  }
  return snapshot
}

function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

function count(value: unknown, name: string, what: string): number {
  if (typeof value === "bigint" && value >= 0n && value <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(value)
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) throw new SnapshotError(`${name}: bad ${what}`)
  return value
}

function ids(value: unknown, name: string, what: string): NodeId[] {
  if (!Array.isArray(value)) throw new SnapshotError(`${name}: bad ${what}`)
  return value.map((v: unknown) => {
    if (typeof v === "bigint" && v >= 0n) return v
    if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) return BigInt(v)
    throw new SnapshotError(`${name}: bad ${what}`)
  })
}

function bytesOf(value: unknown, name: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new SnapshotError(`${name}: bad data`)
  return new Uint8Array(value)
}

function hex16(n: number): string {
  return n.toString(16).padStart(16, "0")
}
