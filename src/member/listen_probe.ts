// Before a member touches its data dir, every address it will listen on is
// bound once and released: a port in use stops the start with etcd's message
// ("listen tcp 127.0.0.1:2379: bind: address already in use") and nothing is
// written, as etcd binds its listeners before it creates the data dir.

import { createServer } from "node:net"
import type { EtcdUrl } from "../config/values"

export class ListenError extends Error {
  override readonly name = "ListenError"
}

const reasons: Record<string, string> = {
  EADDRINUSE: "address already in use",
  EACCES: "permission denied",
  EADDRNOTAVAIL: "cannot assign requested address",
}

function bindOnce(url: EtcdUrl): Promise<void> {
  const address = url.host.includes(":") ? `[${url.host}]:${url.port}` : `${url.host}:${url.port}`
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once("error", (e: NodeJS.ErrnoException) => {
      const reason = reasons[e.code ?? ""] ?? e.message
      reject(new ListenError(`listen tcp ${address}: bind: ${reason}`))
    })
    server.listen({ host: url.host, port: url.port, exclusive: true }, () => server.close(() => resolve()))
  })
}

/** Binds and releases each URL in turn; throws ListenError for the first that cannot be bound. */
export async function probeListenUrls(urls: readonly EtcdUrl[]): Promise<void> {
  const seen = new Set<string>()
  for (const url of urls) {
    const key = `${url.host}:${url.port}`
    if (seen.has(key) || url.port === 0) continue
    seen.add(key)
    await bindOnce(url)
  }
}
