import { expect, test } from "bun:test"
import { type KeyObject, generateKeyPairSync } from "node:crypto"
import { FakeClock } from "../lib/clock"
import {
  InvalidAuthOptionsError,
  JwtTokens,
  type JwtSignMethod,
  SignedTokens,
  SimpleTokens,
  createTokenProvider,
  genSimpleTokenPrefix,
  newAuthSecret,
  parseAuthTokenSpec,
  parseGoDurationMs,
  simpleTokenIndex,
} from "./tokens"

test("parseAuthTokenSpec() splits type and options; bad or repeated pairs are invalid auth options", () => {
  expect(parseAuthTokenSpec("simple")).toEqual({ type: "simple", options: {} })
  expect(parseAuthTokenSpec("jwt,pub-key=a.pem,priv-key=b.pem,sign-method=RS256,ttl=5m")).toEqual({
    type: "jwt",
    options: { "pub-key": "a.pem", "priv-key": "b.pem", "sign-method": "RS256", ttl: "5m" },
  })
  expect(() => parseAuthTokenSpec("jwt,pub-key")).toThrow(InvalidAuthOptionsError)
  expect(() => parseAuthTokenSpec("jwt,ttl=1m,ttl=2m")).toThrow(InvalidAuthOptionsError)
  expect(() => parseAuthTokenSpec("magic")).toThrow(InvalidAuthOptionsError)
  expect(() => parseAuthTokenSpec("")).toThrow(InvalidAuthOptionsError)
})

test("parseGoDurationMs() reads Go durations", () => {
  expect(parseGoDurationMs("5m")).toBe(300_000)
  expect(parseGoDurationMs("1h30m")).toBe(5_400_000)
  expect(parseGoDurationMs("10m0s")).toBe(600_000)
  expect(parseGoDurationMs("1.5s")).toBe(1500)
  expect(parseGoDurationMs("250ms")).toBe(250)
  expect(parseGoDurationMs("0")).toBe(0)
  expect(() => parseGoDurationMs("5")).toThrow(InvalidAuthOptionsError)
  expect(() => parseGoDurationMs("5 m")).toThrow(InvalidAuthOptionsError)
  expect(() => parseGoDurationMs("")).toThrow(InvalidAuthOptionsError)
})

test("genSimpleTokenPrefix() is 16 letters", () => {
  for (let i = 0; i < 50; i++) expect(genSimpleTokenPrefix()).toMatch(/^[a-zA-Z]{16}$/)
})

test("SimpleTokens: the token is prefix.index and is unknown to a member that did not apply it", () => {
  const clock = new FakeClock()
  const a = new SimpleTokens({ clock, ttlSeconds: 300 })
  const b = new SimpleTokens({ clock, ttlSeconds: 300 })
  const token = a.assign({ username: "u" }, { simpleToken: "abcdefghijklmnop", index: 42 })
  expect(token).toBe("abcdefghijklmnop.42")
  expect(a.info(token)).toEqual({ username: "u", revision: null })
  expect(b.info(token)).toBeNull()
  expect(a.info("abcdefghijklmnop.43")).toBeNull()
})

test("SimpleTokens sweeps idle tokens so memory does not grow", () => {
  const clock = new FakeClock()
  const s = new SimpleTokens({ clock, ttlSeconds: 1 })
  for (let i = 0; i < 100; i++) s.assign({ username: "u" }, { simpleToken: "abcdefghijklmnop", index: i })
  clock.advance(2000)
  s.assign({ username: "u" }, { simpleToken: "abcdefghijklmnop", index: 1000 })
  expect(s.size).toBe(1)
})

test("SignedTokens: unusable without a secret, rejects a payload edited without the key", () => {
  const clock = new FakeClock()
  let secret: Uint8Array | null = null
  const s = new SignedTokens({ clock, ttlSeconds: 60, secret: () => secret })
  expect(() => s.assign({ username: "u", revision: 3 })).toThrow()
  secret = newAuthSecret()
  const token = s.assign({ username: "u", revision: 3 })
  expect(s.info(token)).toEqual({ username: "u", revision: 3 })
  const [prefix, , mac] = token.split(".")
  const edited = `${prefix}.${Buffer.from(JSON.stringify({ u: "root", r: 3, x: clock.wallNow() + 60_000 })).toString("base64url")}.${mac}`
  expect(s.info(edited)).toBeNull()
  expect(s.info("tskv1.")).toBeNull()
  expect(s.info("tskv1.x.y")).toBeNull()
  secret = newAuthSecret() // re-enabled with a new secret
  expect(s.info(token)).toBeNull()
})

const keyPairs: Record<JwtSignMethod, () => { privateKey: string; publicKey: string }> = (() => {
  const pem = (kp: { privateKey: KeyObject; publicKey: KeyObject }) => ({
    privateKey: kp.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicKey: kp.publicKey.export({ type: "spki", format: "pem" }).toString(),
  })
  const rsa = () => pem(generateKeyPairSync("rsa", { modulusLength: 2048 }))
  return {
    RS256: rsa,
    RS384: rsa,
    RS512: rsa,
    PS256: rsa,
    PS384: rsa,
    PS512: rsa,
    ES256: () => pem(generateKeyPairSync("ec", { namedCurve: "prime256v1" })),
    ES384: () => pem(generateKeyPairSync("ec", { namedCurve: "secp384r1" })),
    ES512: () => pem(generateKeyPairSync("ec", { namedCurve: "secp521r1" })),
    EdDSA: () => pem(generateKeyPairSync("ed25519")),
  }
})()

test("JwtTokens sign and verify with every sign method etcd accepts", () => {
  const clock = new FakeClock()
  let rsa: { privateKey: string; publicKey: string } | undefined
  for (const method of Object.keys(keyPairs) as JwtSignMethod[]) {
    const pair = method.startsWith("RS") || method.startsWith("PS") ? (rsa ??= keyPairs[method]()) : keyPairs[method]()
    const signer = new JwtTokens({ clock, signMethod: method, privateKeyPem: pair.privateKey, publicKeyPem: pair.publicKey, ttlSeconds: 300 })
    const verifier = new JwtTokens({ clock, signMethod: method, publicKeyPem: pair.publicKey, ttlSeconds: 300 })
    const token = signer.assign({ username: "alice", revision: 7 })
    expect(JSON.parse(Buffer.from(token.split(".")[0]!, "base64url").toString())).toEqual({ alg: method, typ: "JWT" })
    expect(verifier.info(token)).toEqual({ username: "alice", revision: 7 })
    const parts = token.split(".")
    const forged = [parts[0], Buffer.from(JSON.stringify({ exp: 9e9, revision: 7, username: "root" })).toString("base64url"), parts[2]].join(".")
    expect(verifier.info(forged)).toBeNull()
    expect(() => verifier.assign({ username: "x", revision: 1 })).toThrow() // verify-only
  }
})

test("JwtTokens refuses a key that does not fit the sign method, and mismatched key pairs", () => {
  const clock = new FakeClock()
  const ec = keyPairs.ES256()
  const ed = keyPairs.EdDSA()
  expect(() => new JwtTokens({ clock, signMethod: "RS256", publicKeyPem: ec.publicKey, ttlSeconds: 60 })).toThrow(InvalidAuthOptionsError)
  expect(() => new JwtTokens({ clock, signMethod: "ES384", publicKeyPem: ec.publicKey, ttlSeconds: 60 })).toThrow(InvalidAuthOptionsError)
  const other = keyPairs.ES256()
  expect(() => new JwtTokens({ clock, signMethod: "ES256", privateKeyPem: ec.privateKey, publicKeyPem: other.publicKey, ttlSeconds: 60 })).toThrow(InvalidAuthOptionsError)
  expect(() => new JwtTokens({ clock, signMethod: "EdDSA", publicKeyPem: "not a pem", ttlSeconds: 60 })).toThrow(InvalidAuthOptionsError)
  // A token of another method is not accepted.
  const edSigner = new JwtTokens({ clock, signMethod: "EdDSA", privateKeyPem: ed.privateKey, publicKeyPem: ed.publicKey, ttlSeconds: 60 })
  const ecVerifier = new JwtTokens({ clock, signMethod: "ES256", publicKeyPem: ec.publicKey, ttlSeconds: 60 })
  expect(ecVerifier.info(edSigner.assign({ username: "u", revision: 1 }))).toBeNull()
})

test("createTokenProvider() builds each kind from --auth-token; jwt needs pub-key and a known sign-method", () => {
  const clock = new FakeClock()
  const deps = { clock, ttlSeconds: 300, secret: () => null }
  expect(createTokenProvider(parseAuthTokenSpec("simple"), deps).type).toBe("simple")
  expect(createTokenProvider(parseAuthTokenSpec("signed,ttl=1h"), deps).type).toBe("signed")
  const pair = keyPairs.ES256()
  const files: Record<string, string> = { pub: pair.publicKey, priv: pair.privateKey }
  const jwt = createTokenProvider(parseAuthTokenSpec("jwt,pub-key=pub,priv-key=priv,sign-method=ES256"), { ...deps, readFile: (p) => files[p]! })
  expect(jwt.type).toBe("jwt")
  expect(() => createTokenProvider(parseAuthTokenSpec("jwt,priv-key=priv,sign-method=ES256"), deps)).toThrow(InvalidAuthOptionsError)
  expect(() => createTokenProvider(parseAuthTokenSpec("jwt,pub-key=pub,sign-method=HS256"), deps)).toThrow(InvalidAuthOptionsError)
})

test("simpleTokenIndex() reads the raft index of a simple token, null for other tokens", () => {
  expect(simpleTokenIndex("abcdefghijklmnop.112")).toBe(112)
  expect(simpleTokenIndex("tskv1.abc.def")).toBeNull()
  expect(simpleTokenIndex("abcdefghijklmno.112")).toBeNull()
})

test("SimpleTokens.assign() without a valid prefix (entry from a member issuing another kind) still makes a token", () => {
  const s = new SimpleTokens({ clock: new FakeClock(), ttlSeconds: 300 })
  const token = s.assign({ username: "u" }, { simpleToken: "", index: 9 })
  expect(token).toMatch(/^[a-zA-Z]{16}\.9$/)
  expect(s.info(token)?.username).toBe("u")
})
