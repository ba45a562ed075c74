// What the server passes to PeerTransport and what it reads back: options,
// limits, TLS providers and the metrics (plain numbers for the metrics room).

import type * as tls from "node:tls"
import type { Logger } from "../lib/logger"
import type { Message, NodeId } from "../raft/types"
import { DEFAULT_FRAME_BYTES_MAX } from "./codec"
import type { TlsClientOptionsProvider } from "./connection"
import type { MemberRemovedError } from "./errors"
import type { ReceivedSnapshot } from "./snapshot"

export interface PeerTlsOptions {
  /** node:tls server options of the peer listener (cert, key, ca, requestCert, rejectUnauthorized); read at start(). */
  server: () => tls.TlsOptions
  /** node:tls options for dialing peers (cert, key, ca); read at every dial, so rotated files take effect. */
  client: TlsClientOptionsProvider
  /**
   * Extra check of an accepted peer's verified client certificate
   * (--peer-cert-allowed-cn, --peer-cert-allowed-hostname): return why it is
   * refused, or null to accept. `remoteAddress` (the connection's source)
   * serves etcd's check that the certificate's SANs name the peer.
   */
  checkPeerCertificate?: (certificate: tls.PeerCertificate, remoteAddress?: string) => string | null
}

export interface PeerLimits {
  /** Messages queued per lane before dropping (etcd's stream buffer: 4096). */
  queueMessagesMax: number
  /** Estimated bytes queued per lane before dropping. */
  queueBytesMax: number
  /** A flush is split into frames of about this many bytes. */
  batchBytesMax: number
  /** Largest frame accepted from a peer. */
  frameBytesMax: number
  dialTimeoutMs: number
  backoffMinMs: number
  backoffMaxMs: number
  /** Interval of the pings on every lane (liveness; RTT on the control lane). */
  pingIntervalMs: number
  /** A connection that received nothing for this long is closed and redialed (etcd: ConnReadTimeout 5 s). */
  idleTimeoutMs: number
  /** Calls queued or awaiting an answer, per peer; more fail with etcd's "too many requests". */
  rpcPendingMax: number
  /** A snapshot transfer with no traffic for this long fails. */
  snapshotIdleTimeoutMs: number
}

export const DEFAULT_PEER_LIMITS: PeerLimits = {
  queueMessagesMax: 4096,
  queueBytesMax: 64 * 1024 * 1024,
  batchBytesMax: 4 * 1024 * 1024,
  frameBytesMax: DEFAULT_FRAME_BYTES_MAX,
  dialTimeoutMs: 1000,
  backoffMinMs: 50,
  backoffMaxMs: 1000,
  pingIntervalMs: 1000,
  idleTimeoutMs: 5000,
  rpcPendingMax: 16_384,
  snapshotIdleTimeoutMs: 60_000,
}

export type RpcHandler = (payload: Uint8Array, from: NodeId) => Promise<Uint8Array> | Uint8Array

export interface PeerTransportOptions {
  localId: NodeId
  /** 0n while a joining member does not know it yet (see setClusterId). */
  clusterId: bigint
  /** --listen-peer-urls; port 0 picks a free port (see listenUrls()). */
  listenUrls: readonly string[]
  tls?: PeerTlsOptions
  logger: Logger
  /** Where received snapshot db files are written (<data-dir>/tskv/snap). */
  snapshotDir: string
  /** A batch of raft messages from one peer, in the order it sent them. */
  onMessages: (batch: Message[]) => void
  /** A verified, fsynced snapshot: apply it; resolve when done (the sender learns the outcome). */
  onSnapshot: (snapshot: ReceivedSnapshot) => Promise<void>
  /** Messages to this peer were dropped: raft.reportUnreachable(id). */
  onUnreachable: (id: NodeId) => void
  /** A peer says this member was removed from the cluster: stop serving. */
  onRemoved?: (error: MemberRemovedError) => void
  /** Whether `id` was removed from the cluster (its connections are refused). */
  isRemoved?: (id: NodeId) => boolean
  /** Every RTT probe result (for a histogram). */
  onRoundTrip?: (id: NodeId, ms: number) => void
  limits?: Partial<PeerLimits>
}

export interface PeerMetrics {
  id: NodeId
  sentBytes: number
  receivedBytes: number
  /** Messages dropped (queue full, peer down) and snapshot sends that failed. */
  sentFailures: number
  sentMessages: number
  receivedMessages: number
  /** Times an open control connection to the peer was lost. */
  disconnects: number
  /** Control lane open. */
  active: boolean
  /** Last measured round trip, -1 before the first. */
  rttMs: number
  /** etcd_network_snapshot_send_{success,failures,total_duration_seconds}{To} */
  snapshotsSent: number
  snapshotSendFailures: number
  snapshotSendSeconds: number
  /** etcd_network_snapshot_receive_{success,failures,total_duration_seconds}{From} */
  snapshotsReceived: number
  snapshotReceiveFailures: number
  snapshotReceiveSeconds: number
}

export interface PeerTransportMetrics {
  peers: PeerMetrics[]
  activePeers: number
  /** Times an open control connection was lost. */
  disconnectedTotal: number
  snapshotsSent: number
  snapshotSendFailures: number
  snapshotsReceived: number
  snapshotReceiveFailures: number
  /** Connections closed because a peer sent a malformed frame. */
  malformedFrames: number
  /** Most bytes a snapshot receiver ever held in memory (bounded by design, about 1 MiB). */
  snapshotReceiveBufferedBytesMax: number
}

export interface CallUrlResult {
  payload: Uint8Array
  clusterId: bigint
  memberId: NodeId
}
