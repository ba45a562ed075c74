// From Config to the TLS a member's listeners and dialers use: one call per
// side (client port, peer port). Handles --auto-tls/--peer-auto-tls, the
// separate --client-cert-file/--peer-client-cert-file identities, and starts
// the hot reload. member/run_member.ts calls it for both sides: the client
// listeners take server.serverOptions(), attach() and connectionRefusal; the
// PeerTransport takes peerTransportTls(), with its reloadTls() on onReload.

import type { Config, TransportSecurity } from "../config/config"
import type { Logger } from "../lib/logger"
import { ensureSelfSignedCert } from "./auto_tls"
import type * as tls from "node:tls"
import {
  type AllowedPeerPolicy,
  type AllowedPeerResult,
  checkAllowedCertificate,
  checkAllowedPeer,
  checkClientSan,
  checkSanSync,
  ResolvedNames,
  type TlsConfig,
  type TlsPolicy,
} from "./tls"
import { TlsReloader } from "./tls_reloader"

export interface MemberTls {
  /** Server side of the listener: serverOptions(), attach(server), secureContextOptions(). */
  readonly server: TlsReloader
  /**
   * Identity used when this member dials as a client (peers, or itself):
   * --client-cert-file / --peer-client-cert-file when given, else the server
   * certificate. clientOptions() is read at each dial.
   */
  readonly dialer: TlsReloader
  /** Checks to run on each accepted connection (checkAllowedPeer). */
  readonly allowed: AllowedPeerPolicy
  /** Self-signed: nobody can verify it; dialers skip verification (etcd's InsecureSkipVerify). */
  readonly autoTls: boolean
  /** Whether client certificates are required and verified. */
  readonly clientCertAuth: boolean
  /**
   * What etcd checks after the handshake of an accepted connection: the
   * allowed CN/hostname lists and, on the peer side with client-cert-auth
   * (unless --peer-skip-client-san-verification), that the client
   * certificate's SANs name the remote address. Close the socket on failure.
   */
  checkConnection(socket: tls.TLSSocket): Promise<AllowedPeerResult>
  /**
   * The synchronous part of checkConnection for a listener's connection
   * hook: the allowed CN/hostname lists, and (peer side, when the remote
   * address is given) the certificate's IP SANs or DNS SANs already
   * resolved (names are resolved in the background on first sight, so the
   * first connection from a peer known only by a DNS SAN may be refused and
   * the peer's redial accepted). Returns why the connection is refused, or null.
   */
  refusal(certificate: tls.PeerCertificate, remoteAddress?: string): string | null
  /** refusal() for an accepted socket (ClientListener's checkTlsConnection): also refuses an unverified certificate when lists are set. */
  connectionRefusal(socket: tls.TLSSocket): string | null
  stop(): void
}

export interface MemberTlsOptions {
  readonly config: Config
  readonly side: "client" | "peer"
  readonly logger: Logger
  /** Poll period of the reloaders (default 1 s). */
  readonly reloadIntervalMs?: number
}

/** undefined when the side has neither certificates nor auto-TLS (plain http URLs). */
export async function setupMemberTls(options: MemberTlsOptions): Promise<MemberTls | undefined> {
  const { config, side } = options
  const security: TransportSecurity = side === "client" ? config.client : config.peer
  const logger = options.logger.child({ tls: side })
  const policy: TlsPolicy = {
    clientCertAuth: security.clientCertAuth,
    cipherSuites: config.cipherSuites,
    minVersion: config.tlsMinVersion,
    maxVersion: config.tlsMaxVersion,
  }
  let serverFiles: TlsConfig
  let autoTls = false
  if (security.certFile !== "") {
    serverFiles = { certFile: security.certFile, keyFile: security.keyFile, trustedCaFile: security.trustedCaFile, crlFile: security.crlFile, ...policy }
  } else if (security.autoTls) {
    const urls = side === "client" ? config.listenClientUrls : config.listenPeerUrls
    const generated = await ensureSelfSignedCert({
      dataDir: config.dataDir,
      side,
      hosts: urls.map((u) => u.host),
      validityYears: config.selfSignedCertValidityYears,
    })
    serverFiles = { ...generated, trustedCaFile: security.trustedCaFile, ...policy }
    autoTls = true
    logger.warn("using a self-signed certificate (auto TLS): connections are encrypted but not authenticated", { "cert-file": generated.certFile })
  } else {
    return undefined
  }
  const clientSettings = autoTls ? { insecureSkipVerify: true } : {}
  const reloadOptions = { logger, ...(options.reloadIntervalMs !== undefined ? { intervalMs: options.reloadIntervalMs } : {}) }
  const server = new TlsReloader({ config: serverFiles, client: clientSettings, ...reloadOptions })
  const dialer =
    security.clientCertFile !== ""
      ? new TlsReloader({
          config: { ...serverFiles, certFile: security.clientCertFile, keyFile: security.clientKeyFile },
          client: clientSettings,
          ...reloadOptions,
        })
      : server
  server.start()
  if (dialer !== server) dialer.start()
  const allowed: AllowedPeerPolicy = { allowedCn: security.allowedCn, allowedHostname: security.allowedHostname }
  const checkSan = side === "peer" && security.clientCertAuth && !security.skipClientSanVerification && !autoTls
  const resolved = new ResolvedNames()
  return {
    server,
    dialer,
    allowed,
    autoTls,
    clientCertAuth: security.clientCertAuth,
    checkConnection: async (socket) => {
      const result = checkAllowedPeer(socket, allowed)
      if (!result.ok || !checkSan) return result
      return await checkClientSan(socket)
    },
    refusal: (certificate, remoteAddress) => {
      const result = checkAllowedCertificate(certificate, allowed)
      if (!result.ok) return result.reason
      if (!checkSan || remoteAddress === undefined) return null
      const san = checkSanSync({ subjectAltName: certificate.subjectaltname ?? "", remote: remoteAddress, resolved })
      return san.ok ? null : san.reason
    },
    connectionRefusal: (socket) => {
      const allowedResult = checkAllowedPeer(socket, allowed)
      if (!allowedResult.ok) return allowedResult.reason
      if (!checkSan) return null
      const san = checkSanSync({ subjectAltName: socket.getPeerCertificate().subjectaltname ?? "", remote: socket.remoteAddress ?? "", resolved })
      return san.ok ? null : san.reason
    },
    stop: () => {
      server.stop()
      dialer.stop()
    },
  }
}

/** What PeerTransport takes as its `tls` option (src/peer/options.ts PeerTlsOptions). */
export interface PeerTransportTls {
  server: () => tls.TlsOptions
  client: () => tls.ConnectionOptions
  checkPeerCertificate: (certificate: tls.PeerCertificate, remoteAddress?: string) => string | null
}

/**
 * The peer side of a member's TLS in PeerTransport's shape. `onReload` runs
 * after the listener's files were reloaded (pass `() => transport.reloadTls()`);
 * dials read client() each time, so they need no hook.
 */
export function peerTransportTls(memberTls: MemberTls, onReload?: () => void): PeerTransportTls {
  if (onReload !== undefined) memberTls.server.onReload(() => onReload())
  return {
    server: () => memberTls.server.serverOptions(),
    client: () => memberTls.dialer.clientOptions(),
    checkPeerCertificate: (certificate, remoteAddress) => memberTls.refusal(certificate, remoteAddress),
  }
}
