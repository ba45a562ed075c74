// EtcdClient over TLS and mTLS against real etcd 3.4, with a throwaway PKI made by openssl.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { spawn, spawnSync, type Subprocess } from "bun"
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { createServer } from "node:tls"
import { status } from "@grpc/grpc-js"
import { freePorts } from "../../test/support/ports"
import { tempDir } from "../../test/support/tmp"
import { fromUtf8, utf8 } from "../lib/bytes"
import { EtcdClient } from "./client"
import { GrpcError } from "./errors"

const dir = tempDir("pb-client-tls-")
let etcd: Subprocess | undefined
let endpoint = ""

function openssl(args: string[]): void {
  const r = spawnSync(["openssl", ...args], { cwd: dir.path, stdout: "pipe", stderr: "pipe" })
  if (r.exitCode !== 0) throw new Error(`openssl ${args.join(" ")}: ${r.stderr.toString()}`)
}

/** A CA and a certificate signed by it (EC P-256, one day). */
function makeCert(name: string, ca: string, ext: string): void {
  writeFileSync(join(dir.path, `${name}.ext`), ext)
  openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name}`])
  openssl(["x509", "-req", "-in", `${name}.csr`, "-CA", `${ca}.crt`, "-CAkey", `${ca}.key`, "-CAcreateserial", "-out", `${name}.crt`, "-days", "1", "-extfile", `${name}.ext`])
}

function makeCa(name: string): void {
  openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.crt`, "-days", "1", "-subj", `/CN=${name}`])
}

const file = (name: string): Buffer => readFileSync(join(dir.path, name))

beforeAll(async () => {
  makeCa("ca")
  makeCa("otherca")
  makeCert("server", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n")
  makeCert("client", "ca", "extendedKeyUsage=clientAuth\n")
  makeCert("stranger", "otherca", "extendedKeyUsage=clientAuth\n")
  makeCert("noip", "ca", "subjectAltName=DNS:elsewhere.example\nextendedKeyUsage=serverAuth\n")
  const [clientPort, peerPort] = (await freePorts(2)) as [number, number]
  endpoint = `https://127.0.0.1:${clientPort}`
  const peerUrl = `http://127.0.0.1:${peerPort}`
  etcd = spawn(
    [
      "/usr/bin/etcd",
      `--data-dir=${join(dir.path, "data")}`,
      `--listen-client-urls=${endpoint}`,
      `--advertise-client-urls=${endpoint}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=default=${peerUrl}`,
      `--cert-file=${join(dir.path, "server.crt")}`,
      `--key-file=${join(dir.path, "server.key")}`,
      `--trusted-ca-file=${join(dir.path, "ca.crt")}`,
      "--client-cert-auth",
    ],
    { stdio: ["ignore", "ignore", "ignore"] },
  )
  const probe = new EtcdClient({ endpoints: [endpoint], tls: { ca: file("ca.crt"), cert: file("client.crt"), key: file("client.key") } })
  try {
    for (let i = 0; ; i++) {
      try {
        await probe.maintenance.status({}, { timeoutMs: 1_000 })
        break
      } catch (e) {
        if (i > 100) throw e
        await Bun.sleep(100)
      }
    }
  } finally {
    probe.close()
  }
}, 60_000)

afterAll(async () => {
  if (etcd !== undefined) {
    etcd.kill("SIGTERM")
    await etcd.exited
  }
  dir.remove()
})

describe("EtcdClient over mTLS (etcd 3.4 with --client-cert-auth)", () => {
  test("with the CA and a client certificate, put/range work", async () => {
    const c = new EtcdClient({ endpoints: [endpoint], tls: { ca: file("ca.crt"), cert: file("client.crt"), key: file("client.key") } })
    try {
      await c.kv.put({ key: utf8("tls"), value: utf8("yes") })
      expect(fromUtf8((await c.kv.range({ key: utf8("tls") })).kvs[0]!.value)).toBe("yes")
      const members = await c.cluster.memberList()
      expect(members.members[0]!.clientURLs).toEqual([endpoint])
    } finally {
      c.close()
    }
  })

  test("a bare host:port endpoint uses TLS when tls options are given", async () => {
    const c = new EtcdClient({
      endpoints: [endpoint.slice("https://".length)],
      tls: { ca: file("ca.crt"), cert: file("client.crt"), key: file("client.key") },
    })
    try {
      expect((await c.kv.range({ key: utf8("tls") })).count).toBe(1)
    } finally {
      c.close()
    }
  })

  test("without a client certificate, or trusting another CA, the call fails Unavailable", async () => {
    const cases = [
      { ca: file("ca.crt") },
      { ca: file("otherca.crt"), cert: file("client.crt"), key: file("client.key") },
      { ca: file("ca.crt"), cert: file("stranger.crt"), key: file("stranger.key") },
    ]
    for (const tls of cases) {
      const c = new EtcdClient({ endpoints: [endpoint], tls, callTimeoutMs: 3_000 })
      const err = await c.kv.range({ key: utf8("tls") }).catch((e: unknown) => e)
      c.close()
      expect(err).toBeInstanceOf(GrpcError)
      expect((err as GrpcError).grpcCode).toBe(status.UNAVAILABLE)
    }
  })

  test("a server certificate without the endpoint's IP address is rejected", async () => {
    const server = createServer({ key: file("noip.key"), cert: file("noip.crt"), ALPNProtocols: ["h2"] }, (socket) => socket.end())
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    const port = (server.address() as { port: number }).port
    const c = new EtcdClient({ endpoints: [`https://127.0.0.1:${port}`], tls: { ca: file("ca.crt") }, callTimeoutMs: 3_000 })
    try {
      const err = await c.kv.range({ key: utf8("x") }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(GrpcError)
      expect((err as GrpcError).grpcCode).toBe(status.UNAVAILABLE)
      expect((err as GrpcError).details).toContain("127.0.0.1")
    } finally {
      c.close()
      server.close()
    }
  })
})
