// etcd's etcd_network_* series, mirrored from the peer transport's own
// counters at scrape time (nothing is added to the peer hot path).

import type { Registry } from "../lib/metrics"
import type { PeerTransport } from "../peer/transport"
import type { NodeId } from "../raft/types"

export function registerPeerMetrics(registry: Registry, transport: PeerTransport, localId: NodeId): void {
  const local = localId.toString(16)
  const counter = (name: string, help: string, label: string) => registry.counter({ name, help, labelNames: [label] })
  const sentBytes = counter("etcd_network_peer_sent_bytes_total", "The total number of bytes sent to peers.", "To")
  const receivedBytes = counter("etcd_network_peer_received_bytes_total", "The total number of bytes received from peers.", "From")
  const sentFailures = counter("etcd_network_peer_sent_failures_total", "The total number of send failures from peers.", "To")
  const snapSent = counter("etcd_network_snapshot_send_success", "Total number of successful snapshot sends", "To")
  const snapSendFailures = counter("etcd_network_snapshot_send_failures", "Total number of snapshot send failures", "To")
  const snapReceived = counter("etcd_network_snapshot_receive_success", "Total number of successful snapshot receives", "From")
  const snapReceiveFailures = counter("etcd_network_snapshot_receive_failures", "Total number of snapshot receive failures", "From")
  const active = registry.gauge({ name: "etcd_network_active_peers", help: "The current number of active peer connections.", labelNames: ["Local", "Remote"] })
  const disconnected = registry.counter({
    name: "etcd_network_disconnected_peers_total",
    help: "The total number of disconnected peers.",
    labelNames: ["Local", "Remote"],
  })
  const rtt = registry.histogram({
    name: "etcd_network_peer_round_trip_time_seconds",
    help: "Round-Trip-Time histogram between peers",
    labelNames: ["To"],
    buckets: [0.0001, 0.0002, 0.0004, 0.0008, 0.0016, 0.0032, 0.0064, 0.0128, 0.0256, 0.0512, 0.1024, 0.2048, 0.4096, 0.8192],
  })
  let lastRtt = new Map<string, number>()
  registry.onExpose(() => {
    const m = transport.metrics()
    const seen = new Map<string, number>()
    for (const p of m.peers) {
      const id = p.id.toString(16)
      sentBytes.labels(id).value = p.sentBytes
      receivedBytes.labels(id).value = p.receivedBytes
      sentFailures.labels(id).value = p.sentFailures
      snapSent.labels(id).value = p.snapshotsSent
      snapSendFailures.labels(id).value = p.snapshotSendFailures
      snapReceived.labels(id).value = p.snapshotsReceived
      snapReceiveFailures.labels(id).value = p.snapshotReceiveFailures
      active.labels(local, id).set(p.active ? 1 : 0)
      disconnected.labels(local, id).value = p.disconnects
      if (p.rttMs >= 0 && lastRtt.get(id) !== p.rttMs) rtt.labels(id).observe(p.rttMs / 1000)
      seen.set(id, p.rttMs)
    }
    lastRtt = seen
  })
}
