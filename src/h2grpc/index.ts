// h2grpc: the client port's wire, a small library of its own. It knows HTTP/2,
// HPACK and gRPC framing; it knows nothing of etcd, raft or tskv's errors.
//
// What it implements
// - ClientListener (listener.ts): one listener per --listen-client-urls URL
//   (http, https, unix, unixs). Like etcd's cmux, one port serves gRPC and
//   HTTP/1.1: ALPN h2 on TLS, otherwise the first bytes decide (the HTTP/2
//   preface, h2c with prior knowledge, or HTTP/1.x).
// - Our own HTTP/2 server engine (h2/, RFC 9113): preface and SETTINGS, flow
//   control both ways with large windows, HEADERS + CONTINUATION, HPACK
//   decoding with the dynamic table (RFC 7541; static Huffman code) and
//   stateless encoding of responses, RST_STREAM, PING, GOAWAY on close, any
//   :authority (grpc-go sends etcdctl's endpoint URL or socket path there).
//   Outgoing frames are batched into one socket write per turn of the loop.
// - GrpcServer (grpc_server.ts): gRPC over HTTP/2 for unary, server-streaming
//   and bidi methods, length-prefixed messages (framing.ts), gzip/deflate
//   request decompression, grpc-timeout deadlines, message size limits, and
//   grpc-go's Prometheus counters (grpc_server_*_total). What a thrown error
//   becomes is the caller's policy (GrpcServerOptions.statusOf): api/grpc
//   passes etcd's codes and messages.
// - fetch_adapter.ts: non-gRPC requests (HTTP/1.1, or HTTP/2 without
//   application/grpc) go to a fetch handler (hono: /health, /metrics, /v3).
// - keepalive_policy.ts: keepalive as grpc-go's server (--grpc-keepalive-*):
//   ping strikes, GOAWAY on the third; server pings, close when unanswered.
//
// What it refuses (and how)
// - Floods: PINGs or SETTINGS while the client does not read its replies
//   (CVE-2019-9512/9515), streams reset as fast as they are opened (rapid
//   reset, CVE-2023-44487), header blocks over 1 MiB: GOAWAY ENHANCE_YOUR_CALM.
// - Pings sooner than the keepalive minimum (2 h with no stream open) with
//   nothing sent since the previous one, three times: GOAWAY
//   ENHANCE_YOUR_CALM "too_many_pings", as grpc-go's server does.
// - Protocol errors (bad preface, a first frame that is not SETTINGS, even or
//   decreasing stream ids, PUSH_PROMISE from a client, windows past 2^31-1,
//   malformed HPACK): GOAWAY with the RFC's error code; stream-level ones get
//   RST_STREAM. Streams beyond SETTINGS_MAX_CONCURRENT_STREAMS: REFUSED_STREAM.
// - Not implemented on purpose: server push, the HTTP/1.1 Upgrade to h2c,
//   CONNECT, priorities (PRIORITY frames are parsed and ignored), response
//   compression, grpc-encoding other than gzip/deflate (UNIMPLEMENTED).
//
// Imports: lib only (logger, metrics). Test support stays in test/.

export { ClientListener, parseListenUrl, type ClientListenerOptions, type Http2Tuning } from "./listener"
export {
  DEFAULT_MAX_RECEIVE_BYTES,
  GrpcServer,
  type BidiCall,
  type BidiHandler,
  type CallContext,
  type CallKind,
  type GrpcServerOptions,
  type MethodDescriptor,
  type RegisteredMethod,
  type ServerStreamHandler,
  type UnaryHandler,
  type WritableCall,
} from "./grpc_server"
export { GrpcError, GrpcStatus, grpcCodeNames, statusOfGrpcError, type GrpcStatusCode, type StatusOf } from "./status"
export type { FetchHandler } from "./fetch_adapter"
export { connectionDrop } from "./fetch_adapter"
export type { UpgradeHandler } from "./listener"
