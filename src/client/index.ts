export { EtcdClient, WatchStream, type CallOptions, type ClientOptions, type TlsOptions, type UnaryApi } from "./client"
export { GrpcError, grpcCodeOf, toClientError } from "./errors"
export { DuplexStream, ResponseStream } from "./stream"
