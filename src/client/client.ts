// A typed etcd v3 client over @grpc/grpc-js, using the generated service
// descriptors of src/pb (no protobufjs at run time). Used by `tskv ctl` and the
// end-to-end tests; it talks to real etcd as well as to tskv.
//
//   const client = new EtcdClient({ endpoints: ["127.0.0.1:2379"] })
//   await client.kv.put({ key: utf8("a"), value: utf8("1") })
//   const res = await client.kv.range({ key: utf8("a") })
//   client.close()
import {
  Client,
  credentials,
  Metadata,
  status,
  type CallCredentials,
  type CallOptions as GrpcCallOptions,
  type ChannelCredentials,
  type ClientDuplexStream,
} from "@grpc/grpc-js"
import { isIP } from "node:net"
import { checkServerIdentity } from "node:tls"
import { isTskvError } from "../lib/errors"
import {
  AuthService,
  ClusterService,
  ElectionService,
  HealthService,
  KVService,
  LeaseService,
  LockService,
  MaintenanceService,
  WatchService,
  type AnyPbMethod,
  type HealthCheckRequestInit,
  type HealthCheckResponse,
  type LeaderRequestInit,
  type LeaderResponse,
  type LeaseKeepAliveRequestInit,
  type LeaseKeepAliveResponse,
  type PbMethod,
  type SnapshotResponse,
  type WatchCreateRequestInit,
  type WatchRequestInit,
  type WatchResponse,
} from "../pb"
import { GrpcError, grpcCodeOf, toClientError } from "./errors"
import { DuplexStream, ResponseStream, type OpenCall } from "./stream"

export interface TlsOptions {
  /** Trusted CA certificates (PEM). Without it the system roots are used. */
  ca?: Buffer | undefined
  /** Client certificate and key (PEM) for mTLS. */
  cert?: Buffer | undefined
  key?: Buffer | undefined
  /** Name to verify the server certificate against, if not the endpoint host. */
  serverName?: string | undefined
  /** Accept any server certificate (etcdctl --insecure-skip-tls-verify: for tests only). */
  insecureSkipVerify?: boolean | undefined
}

export interface ClientOptions {
  /**
   * "http://host:port" (plaintext), "https://host:port" (TLS) or "host:port"
   * (TLS when `tls` is given); tried in turn on Unavailable.
   */
  endpoints: readonly string[]
  /** TLS for every endpoint (also implied by an https:// endpoint). */
  tls?: TlsOptions | undefined
  /** With a user, every call carries the token of Authenticate in metadata "token". */
  auth?: { username: string; password: string } | undefined
  /** Deadline of each unary call (default 5000 ms). Streams have none unless given per call. */
  callTimeoutMs?: number | undefined
  /** Largest message sent (bytes, default unlimited here; the server enforces its own). */
  maxSendBytes?: number | undefined
}

export interface CallOptions {
  /** Deadline of this call in ms from now; overrides ClientOptions.callTimeoutMs. */
  timeoutMs?: number | undefined
  /** Sends metadata hasleader=true: the server fails the call when it has no leader. */
  requireLeader?: boolean | undefined
}

type UnaryFn<M> = M extends PbMethod<infer _Req, infer ReqInit, infer Res, infer _ResInit>
  ? (req?: ReqInit, opts?: CallOptions) => Promise<Res>
  : never

/** The unary RPCs of a service as methods named in lowerCamelCase (Range -> range). */
export type UnaryApi<S, Streams extends string = never> = {
  readonly [K in Exclude<keyof S & string, Streams> as Uncapitalize<K>]: UnaryFn<S[K]>
}

/** RPCs that only read: safe to send again to another member after any Unavailable. */
const READ_ONLY = new Set<string>([
  KVService.Range.path,
  ClusterService.MemberList.path,
  MaintenanceService.Status.path,
  MaintenanceService.Hash.path,
  MaintenanceService.HashKV.path,
  LeaseService.LeaseTimeToLive.path,
  LeaseService.LeaseLeases.path,
  AuthService.AuthStatus.path,
  AuthService.UserGet.path,
  AuthService.UserList.path,
  AuthService.RoleGet.path,
  AuthService.RoleList.path,
  ElectionService.Leader.path,
  HealthService.Check.path,
])

const DEFAULT_TIMEOUT_MS = 5_000

interface Endpoint {
  target: string
  secure: boolean
  client: Client | undefined
}

/** The host of "host:port", "[v6]:port" or "unix:path" ("" for unix). */
function hostOf(target: string): string {
  if (target.startsWith("unix:")) return ""
  const v6 = /^\[(.*)\](?::\d+)?$/.exec(target)
  if (v6 !== null) return v6[1]!
  const i = target.lastIndexOf(":")
  return i < 0 ? target : target.slice(0, i)
}

export class EtcdClient {
  readonly kv: UnaryApi<typeof KVService>
  readonly lease: UnaryApi<typeof LeaseService, "LeaseKeepAlive"> & {
    /** Opens a keepalive stream: send({ ID }) per renewal, read the TTLs. */
    leaseKeepAlive(opts?: CallOptions): DuplexStream<LeaseKeepAliveRequestInit, LeaseKeepAliveResponse>
    /** One renewal over a short-lived keepalive stream (etcdctl lease keep-alive --once). */
    keepAliveOnce(ID: bigint, opts?: CallOptions): Promise<LeaseKeepAliveResponse>
  }
  readonly cluster: UnaryApi<typeof ClusterService>
  readonly maintenance: UnaryApi<typeof MaintenanceService, "Snapshot"> & {
    /** Streams the backend: chunks in `blob`, `remainingBytes` counting down. */
    snapshot(opts?: CallOptions): ResponseStream<SnapshotResponse>
  }
  readonly auth: UnaryApi<typeof AuthService>
  readonly lock: UnaryApi<typeof LockService>
  readonly election: UnaryApi<typeof ElectionService, "Observe"> & {
    observe(req: LeaderRequestInit, opts?: CallOptions): ResponseStream<LeaderResponse>
  }
  readonly health: UnaryApi<typeof HealthService, "Watch"> & {
    watch(req: HealthCheckRequestInit, opts?: CallOptions): ResponseStream<HealthCheckResponse>
  }

  private readonly endpoints: Endpoint[]
  private readonly channelOptions: Record<string, string | number>
  private current = 0
  private token: string | undefined
  private authenticating: Promise<string> | undefined
  private closed = false

  constructor(private readonly options: ClientOptions) {
    if (options.endpoints.length === 0) throw new Error("no endpoints")
    const tls = options.tls
    this.endpoints = options.endpoints.map((e) => parseEndpoint(e, tls !== undefined))
    this.channelOptions = {
      "grpc.max_receive_message_length": -1,
      "grpc.max_send_message_length": options.maxSendBytes ?? -1,
      "grpc.initial_reconnect_backoff_ms": 100,
      "grpc.max_reconnect_backoff_ms": 2_000,
    }
    if (tls?.serverName !== undefined) {
      this.channelOptions["grpc.ssl_target_name_override"] = tls.serverName
      this.channelOptions["grpc.default_authority"] = tls.serverName
    }
    this.kv = this.unaryApi(KVService, [])
    this.lease = {
      ...this.unaryApi(LeaseService, ["LeaseKeepAlive"]),
      leaseKeepAlive: (opts) => this.bidi(LeaseService.LeaseKeepAlive, opts),
      keepAliveOnce: async (ID, opts) => {
        const stream = this.bidi(LeaseService.LeaseKeepAlive, { ...opts, timeoutMs: this.timeoutOf(opts) })
        try {
          stream.send({ ID })
          return await stream.read()
        } finally {
          stream.close()
        }
      },
    }
    this.cluster = this.unaryApi(ClusterService, [])
    this.maintenance = {
      ...this.unaryApi(MaintenanceService, ["Snapshot"]),
      snapshot: (opts) => this.serverStream(MaintenanceService.Snapshot, {}, opts),
    }
    this.auth = this.unaryApi(AuthService, [])
    this.lock = this.unaryApi(LockService, [])
    this.election = {
      ...this.unaryApi(ElectionService, ["Observe"]),
      observe: (req, opts) => this.serverStream(ElectionService.Observe, req, opts),
    }
    this.health = {
      ...this.unaryApi(HealthService, ["Watch"]),
      watch: (req, opts) => this.serverStream(HealthService.Watch, req, opts),
    }
  }

  /** Opens a watch stream; create watchers on it with create(). */
  watch(opts?: CallOptions): WatchStream {
    return new WatchStream(this.bidiOpener(WatchService.Watch, opts), (e) => this.noteStreamError(e))
  }

  /** The endpoint that answered last ("host:port"). */
  get endpoint(): string {
    return this.endpoints[this.current]!.target
  }

  close(): void {
    this.closed = true
    for (const e of this.endpoints) {
      e.client?.close()
      e.client = undefined
    }
  }

  // ---- calls

  private unaryApi<S extends Record<string, AnyPbMethod>, X extends string>(service: S, streams: X[]): UnaryApi<S, X> {
    const api: Record<string, unknown> = {}
    for (const [name, method] of Object.entries(service)) {
      if ((streams as string[]).includes(name)) continue
      api[method.originalName] = (req?: unknown, opts?: CallOptions) => this.unary(method, req ?? {}, opts)
    }
    return api as UnaryApi<S, X>
  }

  /** A unary call with auth (re-authenticating once on an invalid token) and failover. */
  async unary<Req, ReqInit, Res, ResInit>(method: PbMethod<Req, ReqInit, Res, ResInit>, req: ReqInit, opts?: CallOptions): Promise<Res> {
    const deadline = Date.now() + this.timeoutOf(opts)
    for (let reauthenticated = false; ; reauthenticated = true) {
      const token = await this.currentToken()
      try {
        return await this.withFailover(method, (ep) => this.unaryOn(ep, method, req, this.metadata(token, opts), deadline))
      } catch (e) {
        if (this.options.auth !== undefined && !reauthenticated && isTskvError(e, "invalidAuthToken")) {
          this.token = undefined
          continue
        }
        throw e
      }
    }
  }

  private async withFailover<T>(method: AnyPbMethod, attempt: (ep: Endpoint) => Promise<T>): Promise<T> {
    const n = this.endpoints.length
    let lastError: unknown
    for (let i = 0; i < n; i++) {
      const index = (this.current + i) % n
      try {
        const result = await attempt(this.endpoints[index]!)
        this.current = index
        return result
      } catch (e) {
        lastError = e
        if (!this.shouldFailover(method, e)) throw e
      }
    }
    throw lastError
  }

  private shouldFailover(method: AnyPbMethod, e: unknown): boolean {
    if (grpcCodeOf(e) !== status.UNAVAILABLE) return false
    // Reads go to the next member after any Unavailable (no leader, leader
    // changed, stopped, connection lost). Writes only when the request cannot
    // have reached the member (no connection), so that none is applied twice.
    if (READ_ONLY.has(method.path)) return true
    return e instanceof GrpcError && e.details.startsWith("No connection established")
  }

  private unaryOn<Req, ReqInit, Res, ResInit>(
    ep: Endpoint,
    method: PbMethod<Req, ReqInit, Res, ResInit>,
    req: ReqInit,
    metadata: Metadata,
    deadline: number,
  ): Promise<Res> {
    const client = this.clientOf(ep)
    return new Promise((resolve, reject) => {
      client.makeUnaryRequest<ReqInit, Res>(
        method.path,
        method.requestSerialize,
        method.responseDeserialize,
        req,
        metadata,
        { deadline } satisfies GrpcCallOptions,
        (err, res) => {
          if (err !== null || res === undefined) reject(toClientError(err ?? new Error("empty response")))
          else resolve(res)
        },
      )
    })
  }

  private serverStream<Req, ReqInit, Res, ResInit>(
    method: PbMethod<Req, ReqInit, Res, ResInit>,
    req: ReqInit,
    opts?: CallOptions,
  ): ResponseStream<Res> {
    const options = this.streamOptions(opts)
    const open = (attempt: number) => {
      const client = this.streamClient(attempt)
      return client?.makeServerStreamRequest<ReqInit, Res>(
        method.path,
        method.requestSerialize,
        method.responseDeserialize,
        req,
        this.metadata(undefined, opts),
        options,
      )
    }
    return new ResponseStream(open, (e) => this.noteStreamError(e))
  }

  private bidi<Req, ReqInit, Res, ResInit>(method: PbMethod<Req, ReqInit, Res, ResInit>, opts?: CallOptions): DuplexStream<ReqInit, Res> {
    return new DuplexStream(this.bidiOpener(method, opts), (e) => this.noteStreamError(e))
  }

  private bidiOpener<Req, ReqInit, Res, ResInit>(method: PbMethod<Req, ReqInit, Res, ResInit>, opts?: CallOptions): OpenCall<ClientDuplexStream<ReqInit, Res>> {
    const options = this.streamOptions(opts)
    return (attempt) =>
      this.streamClient(attempt)?.makeBidiStreamRequest<ReqInit, Res>(
        method.path,
        method.requestSerialize,
        method.responseDeserialize,
        this.metadata(undefined, opts),
        options,
      )
  }

  /** The client of the attempt-th endpoint from the current one; undefined after the last. */
  private streamClient(attempt: number): Client | undefined {
    if (attempt >= this.endpoints.length) return undefined
    return this.clientOf(this.endpoints[(this.current + attempt) % this.endpoints.length]!)
  }

  /** Streams get the token through call credentials, which may authenticate first. */
  private streamOptions(opts?: CallOptions): GrpcCallOptions {
    const options: GrpcCallOptions = opts?.timeoutMs === undefined ? {} : { deadline: Date.now() + opts.timeoutMs }
    if (this.options.auth !== undefined) options.credentials = this.tokenCredentials()
    return options
  }

  private tokenCredentials(): CallCredentials {
    return credentials.createFromMetadataGenerator((_params, callback) => {
      this.currentToken().then(
        (token) => {
          const md = new Metadata()
          if (token !== undefined && token !== "") md.set("token", token)
          callback(null, md)
        },
        (e: unknown) => callback(e instanceof Error ? e : new Error(String(e))),
      )
    })
  }

  private noteStreamError(e: Error): void {
    if (isTskvError(e, "invalidAuthToken")) this.token = undefined
  }

  /** Authenticates now, replacing the current token. */
  async authenticate(): Promise<string> {
    this.token = undefined
    return await this.currentToken().then((t) => t ?? "")
  }

  private async currentToken(): Promise<string | undefined> {
    const auth = this.options.auth
    if (auth === undefined) return undefined
    if (this.token !== undefined) return this.token
    this.authenticating ??= (async () => {
      try {
        const deadline = Date.now() + this.timeoutOf(undefined)
        const req = { name: auth.username, password: auth.password }
        const res = await this.withFailover(AuthService.Authenticate, (ep) =>
          this.unaryOn(ep, AuthService.Authenticate, req, new Metadata(), deadline),
        )
        this.token = res.token
        return res.token
      } finally {
        this.authenticating = undefined
      }
    })()
    return await this.authenticating
  }

  private metadata(token: string | undefined, opts?: CallOptions): Metadata {
    const md = new Metadata()
    if (token !== undefined && token !== "") md.set("token", token)
    if (opts?.requireLeader === true) md.set("hasleader", "true")
    return md
  }

  private timeoutOf(opts: CallOptions | undefined): number {
    return opts?.timeoutMs ?? this.options.callTimeoutMs ?? DEFAULT_TIMEOUT_MS
  }

  private clientOf(ep: Endpoint): Client {
    if (this.closed) throw new Error("client is closed")
    if (ep.client === undefined) {
      if (!ep.secure) {
        ep.client = new Client(ep.target, credentials.createInsecure(), this.channelOptions)
      } else {
        const { creds, options } = this.tlsFor(ep)
        ep.client = new Client(ep.target, creds, options)
      }
    }
    return ep.client
  }

  private tlsFor(ep: Endpoint): { creds: ChannelCredentials; options: Record<string, string | number> } {
    const tls = this.options.tls
    const host = hostOf(ep.target)
    if (tls?.insecureSkipVerify === true) {
      const creds = credentials.createSsl(tls.ca ?? null, tls.key ?? null, tls.cert ?? null, {
        rejectUnauthorized: false,
        checkServerIdentity: () => undefined,
      })
      // Bun refuses an IP address as TLS server name (see below); nothing is verified here anyway.
      return { creds, options: isIP(host) === 0 ? this.channelOptions : { ...this.channelOptions, "grpc.ssl_target_name_override": "localhost" } }
    }
    if (tls?.serverName !== undefined || isIP(host) === 0) {
      return { creds: credentials.createSsl(tls?.ca ?? null, tls?.key ?? null, tls?.cert ?? null), options: this.channelOptions }
    }
    // Bun refuses an IP address as TLS server name (SNI), which grpc-js would
    // send for an IP endpoint. Send a placeholder name instead and verify the
    // certificate against the IP address (its IP SANs) ourselves.
    const creds = credentials.createSsl(tls?.ca ?? null, tls?.key ?? null, tls?.cert ?? null, {
      checkServerIdentity: (_name, cert) => checkServerIdentity(host, cert),
    })
    return { creds, options: { ...this.channelOptions, "grpc.ssl_target_name_override": "localhost" } }
  }
}

/** A watch stream (one gRPC Watch call carrying any number of watchers). */
export class WatchStream extends DuplexStream<WatchRequestInit, WatchResponse> {
  /** Asks for a new watcher; its response has created=true and the watch id. */
  create(req: WatchCreateRequestInit): void {
    this.send({ createRequest: req })
  }

  cancel(watchId: number): void {
    this.send({ cancelRequest: { watchId } })
  }

  /** Asks the server for a progress notification (a response with no events). */
  requestProgress(): void {
    this.send({ progressRequest: {} })
  }
}

function parseEndpoint(endpoint: string, tls: boolean): Endpoint {
  const m = /^(https?|unixs?):\/\/(.+?)\/?$/.exec(endpoint)
  if (m === null) return { target: endpoint, secure: tls, client: undefined }
  const scheme = m[1]!
  if (scheme.startsWith("unix")) return { target: `unix:${m[2]}`, secure: scheme === "unixs" || tls, client: undefined }
  return { target: m[2]!, secure: scheme === "https", client: undefined }
}
