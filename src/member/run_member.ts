// Runs a member: bootstrap, client listeners (gRPC + HTTP on each
// --listen-client-urls), metrics listeners, and a graceful stop on SIGTERM /
// SIGINT (stop accepting, finish in-flight work, flush, exit 0).

import type { Config } from "../config/config"
import { etcdApiVersion, etcdClusterVersion } from "../config/version"
import { peerTransportTls, setupMemberTls } from "../certs/member_tls"
import { systemClock } from "../lib/clock"
import { snapDirOf } from "../lib/data_dir"
import type { Logger } from "../lib/logger"
import { Registry, registerProcessMetrics } from "../lib/metrics"
import { corsHeadersOf, createHttpApp } from "../api/http/app"
import { gatewayWebsocket } from "../api/http/gateway_ws"
import { ClientListener, GrpcServer } from "../h2grpc"
import { etcdGrpcErrors } from "../api/grpc/errors"
import { HealthService, ServingStatus } from "../api/grpc/services/health"
import { registerServices } from "../api/grpc/services/register"
import { join } from "node:path"
import { bootstrapServer, memberDir, walDir } from "../server/bootstrap"
import { discardNewDataDir, isNewDataDir } from "../server/half_made"
import { probeListenUrls } from "./listen_probe"
import { registerPeerMetrics } from "./peer_metrics"
import { createPeerTransport, fetchRemoteCluster, initialCorruptionCheck, periodicCorruptionCheck } from "./peer_wiring"
import { registerServerMetrics } from "../server/metrics"
import type { EtcdServer } from "../server/server"

export interface RunningMember {
  server: EtcdServer
  stop(): Promise<void>
}

export async function runMember(config: Config, logger: Logger): Promise<RunningMember> {
  for (const w of config.warnings) logger.warn(w)
  for (const e of config.envUsed) logger.info("recognized and used environment variable", { variable: e })
  const snapshotDir = snapDirOf(config.dataDir)
  // Peer TLS (certificates, --peer-auto-tls, allowed CN/hostname, SAN check) with hot reload.
  const peerTls = await setupMemberTls({ config, side: "peer", logger })
  const peerTlsOptions = peerTls ? { tls: peerTransportTls(peerTls) } : {}
  // Client TLS (certificates, --auto-tls) with hot reload of certificate, key and CA bundle;
  // loaded before the data dir is touched, so that a wrong file stops the start early.
  const clientTls = await setupMemberTls({ config, side: "client", logger }).catch((e: unknown) => {
    peerTls?.stop()
    throw e
  })
  // Nothing is written before every listener could be bound (etcd binds first); a start that fails later removes the data dir it made.
  try {
    await probeListenUrls([...config.listenPeerUrls, ...config.listenClientUrls, ...config.listenMetricsUrls])
  } catch (e) {
    peerTls?.stop()
    clientTls?.stop()
    throw e
  }
  const paths = { memberDir: memberDir(config), walDir: walDir(config) }
  const discardIfNew = isNewDataDir(paths) ? () => discardNewDataDir(paths) : () => {}
  const server = await bootstrapServer({
    config,
    logger,
    clock: systemClock,
    fetchRemoteCluster: (urls) => fetchRemoteCluster(urls, { logger, snapshotDir, ...peerTlsOptions }),
  }).catch((e: unknown) => {
    peerTls?.stop()
    clientTls?.stop()
    discardIfNew()
    throw e
  })
  const peers = createPeerTransport(server, config, logger, peerTlsOptions.tls)
  peerTls?.server.onReload(() => peers.reloadTls())
  try {
    await peers.start()
    if (config.features.initialCorruptCheck) await initialCorruptionCheck(server, peers, logger)
  } catch (e) {
    await peers.stop()
    peerTls?.stop()
    clientTls?.stop()
    await server.stop()
    discardIfNew()
    throw e
  }
  for (const url of peers.listenUrls()) logger.info("serving peer traffic", { address: url })
  const registry = new Registry()
  // process_resident_memory_bytes & co., as etcd's Prometheus registry has them (etcdctl check datascale reads it)
  registerProcessMetrics(registry)
  registerPeerMetrics(registry, peers, server.memberId)
  registerServerMetrics(registry, server)
  const grpc = new GrpcServer({
    maxReceiveMessageBytes: config.maxRequestBytes + 512 * 1024,
    registry,
    logger,
    handlingTimeHistogram: config.metrics === "extensive",
    ...etcdGrpcErrors,
  })
  const health = new HealthService(ServingStatus.SERVING)
  health.register(grpc)
  registerServices(grpc, server)

  const httpDeps = {
    hasLeader: () => server.hasLeader(),
    alarms: () => server.alarms.list().map((a) => (a.alarm === 1 ? "NOSPACE" : a.alarm === 2 ? "CORRUPT" : "NONE")),
    serializableRead: async () => {
      server.kv.range({ key: new Uint8Array([0x68]), rangeEnd: new Uint8Array(0), limit: 1, revision: 0, sortOrder: 0, sortTarget: 0, serializable: true, keysOnly: true, countOnly: false, minModRevision: 0, maxModRevision: 0, minCreateRevision: 0, maxCreateRevision: 0 })
    },
    linearizableRead: async () => {
      await server.linearizableBarrier()
    },
    isLearner: () => server.isLearner(),
    versions: () => ({ server: etcdApiVersion, cluster: etcdClusterVersion }),
    registry,
    logger,
    readTimeoutMs: server.requestTimeoutMs(),
  }
  // The client port also serves the /v3 JSON gateway (--enable-grpc-gateway); metrics URLs do not.
  const app = createHttpApp({ ...httpDeps, cors: config.cors, ...(config.enableGrpcGateway ? { gateway: grpc } : {}), ...(config.enableV2 ? { v2: server } : {}) })
  const metricsApp = createHttpApp(httpDeps)

  const tlsListen = clientTls ? { tls: clientTls.server.serverOptions(), checkTlsConnection: clientTls.connectionRefusal } : undefined
  const secure = (scheme: string): boolean => scheme === "https" || scheme === "unixs"
  const http2 = {
    maxConcurrentStreams: config.maxConcurrentStreams,
    keepaliveMinTimeMs: config.grpcKeepaliveMinTimeMs,
    keepaliveIntervalMs: config.grpcKeepaliveIntervalMs,
    keepaliveTimeoutMs: config.grpcKeepaliveTimeoutMs,
  }
  const listeners: ClientListener[] = []
  try {
    for (const url of config.listenClientUrls) {
      const upgrade = config.enableGrpcGateway ? gatewayWebsocket({ fetch: app.fetch, scheme: secure(url.scheme) ? "https" : "http", corsHeaders: corsHeadersOf(config.cors) }) : undefined
      const listener = await ClientListener.listen({ url: url.text, grpc, fetch: app.fetch, ...(secure(url.scheme) ? tlsListen : {}), http2, logger, ...(upgrade ? { upgrade } : {}) })
      listeners.push(listener)
      if (clientTls && secure(url.scheme)) clientTls.server.attach(listener)
      logger.info("serving client traffic", { address: url.text })
    }
    for (const url of config.listenMetricsUrls) {
      const listener = await ClientListener.listen({ url: url.text, fetch: metricsApp.fetch, ...(secure(url.scheme) ? tlsListen : {}), logger })
      listeners.push(listener)
      if (clientTls && secure(url.scheme)) clientTls.server.attach(listener)
      logger.info("serving metrics", { address: url.text })
    }
  } catch (e) {
    clientTls?.stop()
    for (const l of listeners) await l.close(0)
    await peers.stop()
    peerTls?.stop()
    await server.stop()
    discardIfNew()
    throw e
  }
  server.start()
  const stopCorruptionChecks = config.corruptCheckTimeMs > 0 ? periodicCorruptionCheck(server, peers, config.corruptCheckTimeMs, logger) : () => {}

  let stopping: Promise<void> | undefined
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      stopCorruptionChecks()
      await server.transferLeadershipForShutdown()
      health.setStatus(ServingStatus.NOT_SERVING)
      // Streams end first (UNAVAILABLE), so that closing the listeners need not wait out the grace period.
      grpc.shutdown()
      await Promise.all(listeners.map((l) => l.close(2000)))
      clientTls?.stop()
      await server.stop()
      await peers.stop()
      peerTls?.stop()
    })()
    return stopping
  }
  return { server, stop }
}
