// Helpers for the certs tests: a TLS echo server on 127.0.0.1 and a client
// that reports what the handshake and the first bytes looked like.

import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as tls from "node:tls"
import { verifiedPeerCommonName } from "./tls"

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix))
}

export interface EchoServer {
  readonly server: tls.Server
  readonly port: number
  readonly clientErrors: string[]
  close(): Promise<void>
}

/** Answers every verified connection with "hello <client CN>" and closes it. */
export async function startEchoServer(options: tls.TlsOptions): Promise<EchoServer> {
  const clientErrors: string[] = []
  const server = tls.createServer(options, (socket) => {
    socket.on("error", () => {})
    socket.end(`hello ${verifiedPeerCommonName(socket) ?? "-"}`)
  })
  server.on("tlsClientError", (e: Error) => clientErrors.push(e.message))
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()))
  const address = server.address()
  const port = typeof address === "object" && address !== null ? address.port : 0
  return {
    server,
    port,
    clientErrors,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

export interface Handshake {
  /** The server's answer; "" when the server refused us after the handshake. */
  readonly data: string
  /** The server certificate's CN; undefined when the handshake failed. */
  readonly serverCn?: string
  readonly cipher?: string
  readonly protocol?: string
  readonly error?: string
}

/** Connects, reads until the server closes, within 5 s. */
export function handshake(port: number, options: tls.ConnectionOptions): Promise<Handshake> {
  return new Promise((resolve) => {
    let data = ""
    let result: Omit<Handshake, "data"> = {}
    const timer = setTimeout(() => {
      socket.destroy()
      resolve({ ...result, data, error: "timeout" })
    }, 5000)
    const finish = (error?: string) => {
      clearTimeout(timer)
      resolve({ ...result, data, ...(error !== undefined ? { error } : {}) })
    }
    const socket = tls.connect({ host: "127.0.0.1", port, ...options }, () => {
      const cn = socket.getPeerCertificate().subject?.CN
      result = {
        ...(typeof cn === "string" ? { serverCn: cn } : {}),
        cipher: socket.getCipher().name,
        protocol: socket.getProtocol() ?? "",
      }
    })
    socket.on("data", (chunk) => (data += chunk.toString()))
    socket.on("error", (e) => finish(e.message))
    socket.on("close", () => finish())
  })
}
