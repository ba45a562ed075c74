// Auth tokens (--auth-token). Three kinds; a member verifies every kind it can,
// whatever kind it issues, so changing the option member by member works.
//
// - simple: etcd's `<16 letters>.<raft index>`. Authenticate is applied on
//   every member, which registers the token in memory with an idle TTL
//   (--auth-token-ttl) refreshed on each use. Unknown to a restarted or new
//   member, and its idle clock runs separately on each member: etcd's
//   "invalid auth token after failover" (etcd-io/etcd#7012).
// - signed (tskv): `tskv1.<claims>.<HMAC-SHA256>`, keyed by a cluster secret
//   that AuthEnable stores in the backend (replicated through raft and
//   snapshots). Any member, restarted or new, verifies it without having seen
//   it; it carries the user name and auth revision and an absolute expiry.
// - jwt: etcd's `jwt,pub-key=…,priv-key=…,sign-method=…,ttl=…` (claims
//   username, revision, exp), RS/PS/ES/EdDSA via node:crypto.

import { createHmac, createPrivateKey, createPublicKey, sign, timingSafeEqual, verify, constants, type KeyObject } from "node:crypto"
import { readFileSync } from "node:fs"
import { assert } from "../lib/assert"
import type { Clock } from "../lib/clock"

export interface TokenClaims {
  username: string
  /** Auth revision the token was issued at; null for simple tokens (they follow the store). */
  revision: number | null
}

export interface TokenProvider {
  readonly type: "simple" | "signed" | "jwt"
  /** False for a jwt provider with only a public key: it verifies but cannot issue. */
  canAssign(): boolean
  /** Called by the Authenticate apply (check canAssign() first). `simpleToken` and `index` make the simple token. */
  assign(claims: { username: string; revision: number }, context: { simpleToken: string; index: number }): string
  /** The claims of a valid token this provider can check, else null. */
  info(token: string): TokenClaims | null
  /** Auth was disabled: forget every token held in memory. */
  disable(): void
  /** The user was deleted or its password changed: forget its tokens held in memory. */
  invalidateUser(username: string): void
}

export class InvalidAuthOptionsError extends Error {
  override readonly name = "InvalidAuthOptionsError"
}

// ---------------------------------------------------------------- simple

const LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
const SIMPLE_TOKEN_RE = /^[a-zA-Z]{16}\.[0-9]+$/

/** The 16 random letters of a simple token, drawn by the API layer before raft. */
export function genSimpleTokenPrefix(randomBytes: (n: number) => Uint8Array = (n) => crypto.getRandomValues(new Uint8Array(n))): string {
  let out = ""
  while (out.length < 16) {
    for (const b of randomBytes(32)) {
      if (b < 208 && out.length < 16) out += LETTERS[b % 52] // 208 = 4 × 52: no modulo bias
    }
  }
  return out
}

/**
 * The raft index a simple token was issued at, or null for other tokens. A
 * member that has not applied that index yet does not know the token: the API
 * layer may wait for it (as etcd's simple token provider does) before
 * calling AuthStore.authInfo().
 */
export function simpleTokenIndex(token: string): number | null {
  if (!SIMPLE_TOKEN_RE.test(token)) return null
  const index = Number(token.slice(17))
  return Number.isSafeInteger(index) ? index : null
}

export class SimpleTokens implements TokenProvider {
  readonly type = "simple"
  private readonly tokens = new Map<string, { username: string; expiresAtMs: number }>()
  private lastSweepMs = -Infinity

  constructor(private readonly options: { clock: Clock; ttlSeconds: number }) {
    assert(options.ttlSeconds > 0, "auth token TTL must be positive")
  }

  canAssign(): boolean {
    return true
  }

  assign(claims: { username: string }, context: { simpleToken: string; index: number }): string {
    // An entry proposed by a member that issues another kind of token may carry
    // no prefix: the token made here then only matters locally (the client
    // gets its token from the proposing member's apply).
    const prefix = /^[a-zA-Z]{16}$/.test(context.simpleToken) ? context.simpleToken : genSimpleTokenPrefix()
    const token = `${prefix}.${context.index}`
    this.tokens.set(token, { username: claims.username, expiresAtMs: this.expiry() })
    this.sweep()
    return token
  }

  info(token: string): TokenClaims | null {
    if (!SIMPLE_TOKEN_RE.test(token)) return null
    const entry = this.tokens.get(token)
    if (entry === undefined) return null
    if (this.options.clock.now() >= entry.expiresAtMs) {
      this.tokens.delete(token)
      return null
    }
    entry.expiresAtMs = this.expiry()
    return { username: entry.username, revision: null }
  }

  disable(): void {
    this.tokens.clear()
  }

  invalidateUser(username: string): void {
    for (const [token, entry] of this.tokens) if (entry.username === username) this.tokens.delete(token)
  }

  get size(): number {
    return this.tokens.size
  }

  private expiry(): number {
    return this.options.clock.now() + this.options.ttlSeconds * 1000
  }

  /** Drops idle tokens, at most once a TTL. */
  private sweep(): void {
    const now = this.options.clock.now()
    if (now - this.lastSweepMs < this.options.ttlSeconds * 1000) return
    this.lastSweepMs = now
    for (const [token, entry] of this.tokens) if (now >= entry.expiresAtMs) this.tokens.delete(token)
  }
}

// ---------------------------------------------------------------- signed

const SIGNED_PREFIX = "tskv1."

/** 32 random bytes for the AuthEnable proposal: the key of signed tokens. */
export function newAuthSecret(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(32))
}

export class SignedTokens implements TokenProvider {
  readonly type = "signed"

  constructor(private readonly options: { clock: Clock; ttlSeconds: number; secret: () => Uint8Array | null }) {
    assert(options.ttlSeconds > 0, "auth token TTL must be positive")
  }

  canAssign(): boolean {
    return this.options.secret() !== null
  }

  assign(claims: { username: string; revision: number }): string {
    const secret = this.options.secret()
    assert(secret !== null, "signed tokens need the cluster auth secret (set by AuthEnable)")
    const payload = { u: claims.username, r: claims.revision, x: this.options.clock.wallNow() + this.options.ttlSeconds * 1000 }
    const body = SIGNED_PREFIX + Buffer.from(JSON.stringify(payload)).toString("base64url")
    return `${body}.${mac(secret, body)}`
  }

  info(token: string): TokenClaims | null {
    if (!token.startsWith(SIGNED_PREFIX)) return null
    const secret = this.options.secret()
    if (secret === null) return null
    const dot = token.lastIndexOf(".")
    if (dot <= SIGNED_PREFIX.length) return null
    const body = token.slice(0, dot)
    const given = Buffer.from(token.slice(dot + 1), "base64url")
    const expected = Buffer.from(mac(secret, body), "base64url")
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null
    const payload = parseJson(Buffer.from(body.slice(SIGNED_PREFIX.length), "base64url").toString())
    if (!isRecord(payload)) return null
    const { u, r, x } = payload
    if (typeof u !== "string" || !Number.isSafeInteger(r) || typeof x !== "number") return null
    if (this.options.clock.wallNow() >= x) return null
    return { username: u, revision: r as number }
  }

  // Stateless: the revision bumped by every auth change invalidates them.
  disable(): void {}
  invalidateUser(): void {}
}

function mac(secret: Uint8Array, body: string): string {
  return createHmac("sha256", secret).update(body).digest("base64url")
}

// ---------------------------------------------------------------- jwt

const JWT_METHODS = {
  RS256: { hash: "sha256", kind: "rsa" },
  RS384: { hash: "sha384", kind: "rsa" },
  RS512: { hash: "sha512", kind: "rsa" },
  PS256: { hash: "sha256", kind: "rsa-pss" },
  PS384: { hash: "sha384", kind: "rsa-pss" },
  PS512: { hash: "sha512", kind: "rsa-pss" },
  ES256: { hash: "sha256", kind: "ec", curve: "prime256v1" },
  ES384: { hash: "sha384", kind: "ec", curve: "secp384r1" },
  ES512: { hash: "sha512", kind: "ec", curve: "secp521r1" },
  EdDSA: { hash: null, kind: "ed25519" },
} as const

export type JwtSignMethod = keyof typeof JWT_METHODS

export interface JwtOptions {
  clock: Clock
  signMethod: JwtSignMethod
  /** PEM; without it the member only verifies. */
  privateKeyPem?: string
  publicKeyPem: string
  ttlSeconds: number
}

export class JwtTokens implements TokenProvider {
  readonly type = "jwt"
  private readonly privateKey: KeyObject | null
  private readonly publicKey: KeyObject
  private readonly method: (typeof JWT_METHODS)[JwtSignMethod]

  constructor(private readonly options: JwtOptions) {
    this.method = JWT_METHODS[options.signMethod]
    if (this.method === undefined) throw new InvalidAuthOptionsError(`auth: invalid auth signature method ${options.signMethod}`)
    try {
      this.publicKey = createPublicKey(options.publicKeyPem)
      this.privateKey = options.privateKeyPem === undefined ? null : createPrivateKey(options.privateKeyPem)
    } catch (e) {
      throw new InvalidAuthOptionsError(`auth: missing key data: ${(e as Error).message}`)
    }
    this.checkKeyKind(this.publicKey)
    if (this.privateKey !== null) {
      this.checkKeyKind(this.privateKey)
      const probe = Buffer.from("tskv key pair check")
      if (!this.verifyBytes(probe, this.signBytes(probe))) throw new InvalidAuthOptionsError("auth: public and private keys don't match")
    }
  }

  canAssign(): boolean {
    return this.privateKey !== null
  }

  assign(claims: { username: string; revision: number }): string {
    assert(this.privateKey !== null, "auth: token signing attempted with verify-only key")
    const header = b64json({ alg: this.options.signMethod, typ: "JWT" })
    const exp = Math.floor((this.options.clock.wallNow() + this.options.ttlSeconds * 1000) / 1000)
    const payload = b64json({ exp, revision: claims.revision, username: claims.username })
    const signingInput = `${header}.${payload}`
    return `${signingInput}.${this.signBytes(Buffer.from(signingInput)).toString("base64url")}`
  }

  info(token: string): TokenClaims | null {
    const parts = token.split(".")
    if (parts.length !== 3) return null
    const [header, payload, signature] = parts as [string, string, string]
    const head = parseJson(Buffer.from(header, "base64url").toString())
    if (!isRecord(head) || head.alg !== this.options.signMethod) return null
    if (!this.verifyBytes(Buffer.from(`${header}.${payload}`), Buffer.from(signature, "base64url"))) return null
    const claims = parseJson(Buffer.from(payload, "base64url").toString())
    if (!isRecord(claims)) return null
    const { username, revision, exp } = claims
    if (typeof username !== "string" || !Number.isSafeInteger(revision) || typeof exp !== "number") return null
    if (this.options.clock.wallNow() >= exp * 1000) return null
    return { username, revision: revision as number }
  }

  disable(): void {}
  invalidateUser(): void {}

  private checkKeyKind(key: KeyObject): void {
    const kind = key.asymmetricKeyType
    const ok =
      this.method.kind === "rsa" || this.method.kind === "rsa-pss"
        ? kind === "rsa" || kind === "rsa-pss"
        : this.method.kind === "ec"
          ? kind === "ec" && key.asymmetricKeyDetails?.namedCurve === this.method.curve
          : kind === "ed25519"
    if (!ok) throw new InvalidAuthOptionsError(`auth: invalid auth signature method: ${this.options.signMethod} with a ${kind} key`)
  }

  private signBytes(data: Buffer): Buffer {
    const key = this.privateKey!
    switch (this.method.kind) {
      case "rsa":
        return sign(this.method.hash, data, key)
      case "rsa-pss":
        return sign(this.method.hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST })
      case "ec":
        return sign(this.method.hash, data, { key, dsaEncoding: "ieee-p1363" })
      case "ed25519":
        return sign(null, data, key)
    }
  }

  private verifyBytes(data: Buffer, signature: Buffer): boolean {
    const key = this.publicKey
    try {
      switch (this.method.kind) {
        case "rsa":
          return verify(this.method.hash, data, key, signature)
        case "rsa-pss":
          return verify(this.method.hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO }, signature)
        case "ec":
          return verify(this.method.hash, data, { key, dsaEncoding: "ieee-p1363" }, signature)
        case "ed25519":
          return verify(null, data, key, signature)
      }
    } catch {
      return false
    }
  }
}

function b64json(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString("base64url")
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value)
}

// ---------------------------------------------------------------- --auth-token

export interface AuthTokenSpec {
  type: "simple" | "signed" | "jwt"
  options: Record<string, string>
}

/** Splits `type,k=v,...` as etcd's decomposeOpts does (a bad or repeated pair is an error). */
export function parseAuthTokenSpec(spec: string): AuthTokenSpec {
  const [type = "", ...pairs] = spec.split(",")
  if (type !== "simple" && type !== "signed" && type !== "jwt") throw new InvalidAuthOptionsError(`auth: invalid auth options: unknown token type ${JSON.stringify(type)}`)
  const options: Record<string, string> = {}
  for (const pair of pairs) {
    const kv = pair.split("=")
    if (kv.length !== 2) throw new InvalidAuthOptionsError(`auth: invalid auth options: ${JSON.stringify(pair)}`)
    const [k, v] = kv as [string, string]
    if (Object.hasOwn(options, k)) throw new InvalidAuthOptionsError(`auth: invalid auth options: duplicate ${k}`)
    options[k] = v
  }
  return { type, options }
}

/** Go's time.ParseDuration, for `ttl=5m` (whole milliseconds). */
export function parseGoDurationMs(text: string): number {
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, "µs": 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
  const re = /([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)/y
  let total = 0
  let pos = 0
  if (text === "0") return 0
  while (pos < text.length) {
    re.lastIndex = pos
    const m = re.exec(text)
    if (m === null) throw new InvalidAuthOptionsError(`invalid duration ${JSON.stringify(text)}`)
    total += Number(m[1]) * units[m[2]!]!
    pos = re.lastIndex
  }
  if (pos === 0) throw new InvalidAuthOptionsError(`invalid duration ${JSON.stringify(text)}`)
  return Math.round(total)
}

export interface TokenProviderDeps {
  clock: Clock
  /** --auth-token-ttl: the simple token idle TTL, and the default TTL of signed tokens. */
  ttlSeconds: number
  /** The cluster secret of signed tokens (AuthStore passes its own). */
  secret: () => Uint8Array | null
  readFile?: (path: string) => string
}

const JWT_DEFAULT_TTL_SECONDS = 300

export function createTokenProvider(spec: AuthTokenSpec, deps: TokenProviderDeps): TokenProvider {
  switch (spec.type) {
    case "simple":
      return new SimpleTokens({ clock: deps.clock, ttlSeconds: deps.ttlSeconds })
    case "signed": {
      const ttl = spec.options.ttl === undefined ? deps.ttlSeconds : parseGoDurationMs(spec.options.ttl) / 1000
      return new SignedTokens({ clock: deps.clock, ttlSeconds: ttl, secret: deps.secret })
    }
    case "jwt": {
      const read = deps.readFile ?? ((path: string) => readFileSync(path, "utf8"))
      const { "pub-key": pub, "priv-key": priv, "sign-method": method, ttl } = spec.options
      if (pub === undefined || method === undefined) throw new InvalidAuthOptionsError("auth: invalid auth options: jwt needs pub-key and sign-method")
      if (!Object.hasOwn(JWT_METHODS, method)) throw new InvalidAuthOptionsError(`auth: invalid auth signature method ${method}`)
      return new JwtTokens({
        clock: deps.clock,
        signMethod: method as JwtSignMethod,
        publicKeyPem: read(pub),
        ...(priv === undefined ? {} : { privateKeyPem: read(priv) }),
        ttlSeconds: ttl === undefined ? JWT_DEFAULT_TTL_SECONDS : parseGoDurationMs(ttl) / 1000,
      })
    }
  }
}
