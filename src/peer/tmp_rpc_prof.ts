import { silentLogger } from "../lib/logger"
import { PeerTransport } from "./transport"
const make = (id: bigint) => new PeerTransport({ localId: id, clusterId: 1n, listenUrls: ["http://127.0.0.1:0"], logger: silentLogger, snapshotDir: "/tmp/prof/s", onMessages: () => {}, onSnapshot: async () => {}, onUnreachable: () => {} })
const a = make(1n), b = make(2n)
await a.start(); await b.start()
a.addPeer(2n, b.listenUrls())
b.handle("echo", (p) => p)
const payload = new Uint8Array(256)
let done = 0
const calls = 100_000
const t = performance.now()
await Promise.all(Array.from({ length: 256 }, async () => { while (done < calls) { done++; await a.call(2n, "echo", payload, 10000) } }))
console.log("calls/s", (calls / (performance.now() - t) * 1000).toFixed(0))
await a.stop(); await b.stop()
