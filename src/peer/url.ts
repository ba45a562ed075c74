// Peer URLs are http(s)://host:port, as etcd's --listen-peer-urls and
// --initial-advertise-peer-urls: http means plain TCP, https means TLS.

export interface PeerAddress {
  tls: boolean
  host: string
  port: number
}

export function parsePeerUrl(url: string): PeerAddress {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new Error(`invalid peer URL ${JSON.stringify(url)}`)
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new Error(`peer URL ${JSON.stringify(url)} must use http or https`)
  }
  const tls = parsed.protocol === "https:"
  // A URL without a port is an etcd error too ("missing port in address").
  if (parsed.port === "") throw new Error(`peer URL ${JSON.stringify(url)} has no port`)
  const host = parsed.hostname.startsWith("[") ? parsed.hostname.slice(1, -1) : parsed.hostname
  return { tls, host, port: Number(parsed.port) }
}

export function formatPeerUrl(address: PeerAddress): string {
  const host = address.host.includes(":") ? `[${address.host}]` : address.host
  return `${address.tls ? "https" : "http"}://${host}:${address.port}`
}
