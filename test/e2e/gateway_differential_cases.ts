// The requests of the gateway differential test, in the order they are sent.
// Bodies are functions of each member's own context (lease ids, member ids,
// tokens, lock keys captured from its earlier answers).

export interface Answer {
  status: number
  headers: Record<string, string>
  text: string
}

export interface Ctx {
  /** Masked ids (lease, member) in order of appearance. */
  ids: Map<string, string>
  /** This member's URLs and their placeholders. */
  urls: Map<string, string>
  /** Values captured from earlier answers. */
  v: Record<string, string>
}

export interface Case {
  name: string
  path: string
  method?: "GET" | "POST" | "PUT"
  body: string | ((c: Ctx) => string)
  headers?: Record<string, string> | ((c: Ctx) => Record<string, string>)
  /** A stream: read `lines` lines, or for `ms` milliseconds. */
  stream?: { lines?: number; ms: number }
  /** Raw HTTP/1.1; the client shuts its writing side after the first answer line. */
  halfClose?: boolean
  /** One member after the other (a case whose answer depends on timing). */
  sequential?: boolean
  capture?: (a: Answer, c: Ctx) => void
}

/** Every path of etcd 3.4's gateway (POST). */
export const PATHS = [
  "/v3/kv/range", "/v3/kv/put", "/v3/kv/deleterange", "/v3/kv/txn", "/v3/kv/compaction",
  "/v3/watch",
  "/v3/lease/grant", "/v3/lease/revoke", "/v3/kv/lease/revoke", "/v3/lease/keepalive", "/v3/lease/timetolive",
  "/v3/kv/lease/timetolive", "/v3/lease/leases", "/v3/kv/lease/leases",
  "/v3/cluster/member/add", "/v3/cluster/member/remove", "/v3/cluster/member/update", "/v3/cluster/member/list", "/v3/cluster/member/promote",
  "/v3/maintenance/alarm", "/v3/maintenance/status", "/v3/maintenance/defragment", "/v3/maintenance/hash", "/v3/maintenance/snapshot",
  "/v3/maintenance/transfer-leadership",
  "/v3/auth/enable", "/v3/auth/disable", "/v3/auth/authenticate",
  "/v3/auth/user/add", "/v3/auth/user/get", "/v3/auth/user/list", "/v3/auth/user/delete", "/v3/auth/user/changepw", "/v3/auth/user/grant", "/v3/auth/user/revoke",
  "/v3/auth/role/add", "/v3/auth/role/get", "/v3/auth/role/list", "/v3/auth/role/delete", "/v3/auth/role/grant", "/v3/auth/role/revoke",
  "/v3/election/campaign", "/v3/election/proclaim", "/v3/election/leader", "/v3/election/observe", "/v3/election/resign",
  "/v3/lock/lock", "/v3/lock/unlock",
]

const b = (s: string): string => Buffer.from(s).toString("base64")
const first = (a: Answer): Record<string, unknown> => {
  try {
    return JSON.parse(a.text.split("\n")[0] ?? "{}") as Record<string, unknown>
  } catch {
    return {}
  }
}
const field = (a: Answer, ...path: string[]): string => {
  let v: unknown = first(a)
  for (const p of path) v = (v as Record<string, unknown> | undefined)?.[p]
  return typeof v === "string" ? v : JSON.stringify(v ?? null)
}
const STREAM_PATHS = new Set(["/v3/watch", "/v3/lease/keepalive", "/v3/maintenance/snapshot", "/v3/election/observe"])
const streamOf = (path: string): Case["stream"] =>
  path === "/v3/watch" || path === "/v3/election/observe" ? { ms: 400 } : STREAM_PATHS.has(path) ? { ms: 3000 } : undefined

/** A path's usual variants: the good request, its numbers as numbers, a wrong type, an unknown field, a token while auth is off. */
function variants(
  path: string,
  v: { good: string | ((c: Ctx) => string); numbers?: string | ((c: Ctx) => string); wrong: string; unknown?: string | ((c: Ctx) => string); token?: boolean; capture?: Case["capture"] },
): Case[] {
  const stream = streamOf(path)
  const at = (name: string, body: Case["body"], extra: Partial<Case> = {}): Case => ({ name, path, body, ...(stream ? { stream } : {}), ...extra })
  const out: Case[] = [at("good", v.good, v.capture ? { capture: v.capture } : {})]
  if (v.numbers !== undefined) out.push(at("numbers as JSON numbers", v.numbers))
  out.push(at("wrong type", v.wrong))
  if (v.unknown !== undefined) out.push(at("unknown field", v.unknown))
  if (v.token !== false) out.push(at("a token while auth is off", v.good, { headers: { authorization: "bogus" } }))
  return out
}

const BAD_JSON = ["{", '{"key":"Zm9v",}', "[1", "nul", '{"a":1}x', "[]"]

export const cases: Case[] = [
  // --- stateless: answers of the mux and the JSON decoder on every path and its /v3beta alias
  ...PATHS.flatMap((path): Case[] => [
    { name: "bad JSON", path, body: BAD_JSON[path.length % BAD_JSON.length]!, ...(streamOf(path) ? { stream: streamOf(path)! } : {}) },
    { name: "bad JSON on /v3beta", path: path.replace("/v3/", "/v3beta/"), body: "{", ...(streamOf(path) ? { stream: streamOf(path)! } : {}) },
    { name: "GET", path, method: "GET", body: "" },
  ]),
  { name: "a 3.5 path", path: "/v3/maintenance/hashkv", body: "{}" },
  { name: "a 3.5 path", path: "/v3/auth/status", body: "{}" },
  { name: "a 3.5 path", path: "/v3/maintenance/downgrade", body: "{}" },
  { name: "unknown path", path: "/v3/kv/nothing", body: "{}" },
  { name: "PUT", path: "/v3/kv/put", method: "PUT", body: "{}" },
  { name: "health", path: "/health", method: "GET", body: "" },
  { name: "health exclude", path: "/health?exclude=NOSPACE", method: "GET", body: "" },
  { name: "version", path: "/version", method: "GET", body: "" },
  { name: "health POST", path: "/health", body: "" },
  { name: "CORS preflight", path: "/v3/kv/range", method: "GET", body: "", headers: { origin: "http://example.com" } },

  // --- kv
  ...variants("/v3/kv/put", {
    good: `{"key":"${b("foo")}","value":"${b("bar")}","lease":"0"}`,
    numbers: `{"key":"${b("foo")}","value":"${b("bar")}","lease":0,"prev_kv":true}`,
    wrong: `{"key":"${b("foo")}","value":true}`,
    unknown: `{"key":"${b("foo")}","value":"${b("baz")}","bogus":{"x":[1]},"prevKv":true}`,
  }),
  { name: "put child", path: "/v3/kv/put", body: `{"key":"${b("foo/a")}","value":"${b("1")}"}` },
  { name: "put child", path: "/v3/kv/put", body: `{"key":"${b("foo/b")}","value":"${b("2")}"}` },
  { name: "put ignore_value", path: "/v3/kv/put", body: `{"key":"${b("foo")}","ignore_value":true}` },
  { name: "put ignore_value missing", path: "/v3/kv/put", body: `{"key":"${b("none")}","ignore_value":true}` },
  { name: "put no key", path: "/v3/kv/put", body: "{}" },
  { name: "put url-safe base64", path: "/v3/kv/put", body: `{"key":"_-8=","value":"YQ=="}` },
  { name: "put bytes as numbers", path: "/v3/kv/put", body: `{"key":[102,111,111],"value":"YQ=="}` },
  ...variants("/v3/kv/range", {
    good: `{"key":"${b("foo")}","range_end":"${b("fop")}","limit":"2","revision":"0","sort_order":"DESCEND","sort_target":"VALUE"}`,
    numbers: `{"key":"${b("foo")}","range_end":"${b("fop")}","limit":2,"revision":0,"sort_order":2,"sort_target":4}`,
    wrong: `{"key":"${b("foo")}","limit":true}`,
    unknown: `{"key":"${b("foo")}","bogus":null,"keysOnly":true}`,
  }),
  { name: "range filters", path: "/v3/kv/range", body: `{"key":"AA==","range_end":"AA==","min_mod_revision":"2","max_mod_revision":5,"min_create_revision":"1","max_create_revision":9}` },
  { name: "range count_only", path: "/v3/kv/range", body: `{"key":"AA==","range_end":"AA==","count_only":true,"serializable":true}` },
  { name: "range big limit", path: "/v3/kv/range", body: `{"key":"AA==","range_end":"AA==","limit":"9223372036854775807"}` },
  { name: "range limit past int64", path: "/v3/kv/range", body: `{"key":"AA==","range_end":"AA==","limit":9223372036854775808}` },
  { name: "range limit 2^53+1", path: "/v3/kv/range", body: `{"key":"AA==","range_end":"AA==","limit":9007199254740993,"keys_only":true}` },
  { name: "range future revision", path: "/v3/kv/range", body: `{"key":"${b("foo")}","revision":"9007199254740993"}` },
  { name: "range revision negative", path: "/v3/kv/range", body: `{"key":"${b("foo")}","revision":-1}` },
  { name: "range revision float", path: "/v3/kv/range", body: `{"key":"${b("foo")}","revision":2.0}` },
  { name: "range revision exponent", path: "/v3/kv/range", body: `{"key":"${b("foo")}","revision":"2e0"}` },
  // not sent: an unknown sort_target number (9) crashes etcd 3.4.23 (sort.Sort of a nil sorter in applierV3backend.Range)
  { name: "range enum unknown number", path: "/v3/kv/range", body: `{"key":"${b("foo")}","sort_order":9}` },
  { name: "range null message", path: "/v3/kv/range", body: "null" },
  ...variants("/v3/kv/deleterange", {
    good: `{"key":"${b("foo/a")}","prev_kv":true}`,
    numbers: `{"key":"${b("foo/b")}","range_end":"${b("foo/c")}","prevKv":1}`,
    wrong: `{"key":"${b("foo/b")}","prev_kv":"yes"}`,
    unknown: `{"key":"${b("nothing")}","bogus":1}`,
  }),
  ...variants("/v3/kv/txn", {
    good: `{"compare":[{"target":"VERSION","key":"${b("foo")}","version":"3","result":"EQUAL"},{"target":"CREATE","key":"${b("foo")}","create_revision":"2","result":"GREATER"},{"target":"MOD","key":"${b("foo")}","mod_revision":"100","result":"LESS"},{"target":"VALUE","key":"${b("foo")}","value":"${b("baz")}","result":"NOT_EQUAL"},{"target":"LEASE","key":"${b("foo")}","lease":"0"}],"success":[{"request_put":{"key":"${b("t1")}","value":"${b("x")}"}},{"request_range":{"key":"${b("foo")}"}},{"request_delete_range":{"key":"${b("none")}"}},{"request_txn":{"success":[{"request_range":{"key":"${b("t1")}"}}]}}],"failure":[{"request_range":{"key":"${b("foo")}","count_only":true}}]}`,
    numbers: `{"compare":[{"target":0,"key":"${b("foo")}","version":3,"result":0},{"target":1,"key":"${b("foo")}","create_revision":2,"result":1},{"target":2,"key":"${b("foo")}","mod_revision":100,"result":2},{"target":4,"key":"${b("foo")}","lease":0,"result":3}],"success":[{"requestPut":{"key":"${b("t2")}","value":"${b("x")}"}}],"failure":[{"requestRange":{"key":"${b("foo")}"}}]}`,
    wrong: `{"compare":[{"target":"VERSION","key":"${b("foo")}","version":"x"}]}`,
    unknown: `{"compare":[{"target":"VERSION","key":"${b("foo")}","bogus":1}],"success":[{"request_put":{"key":"${b("t3")}","value":"${b("x")}","bogus":2}}],"bogus":3}`,
  }),
  { name: "txn null in the compare list", path: "/v3/kv/txn", body: `{"compare":[null],"success":[{"request_range":{"key":"${b("foo")}"}}]}` },
  { name: "txn null in the success list", path: "/v3/kv/txn", body: `{"success":[null,{"request_range":{"key":"${b("foo")}"}}]}` },
  { name: "txn oneof set to null", path: "/v3/kv/txn", body: `{"success":[{"request_put":null}]}` },
  { name: "txn compare oneof null", path: "/v3/kv/txn", body: `{"compare":[{"target":"VERSION","key":"${b("foo")}","version":null,"result":"GREATER"}],"success":[{"request_range":{"key":"${b("foo")}"}}]}` },
  { name: "txn compare without target value", path: "/v3/kv/txn", body: `{"compare":[{"target":"MOD","key":"${b("foo")}","result":"GREATER"}]}` },
  { name: "txn unknown enum name", path: "/v3/kv/txn", body: `{"compare":[{"target":"BOGUS","key":"${b("foo")}"}]}` },
  { name: "txn compare list not a list", path: "/v3/kv/txn", body: `{"compare":{}}` },
  { name: "txn duplicate key", path: "/v3/kv/txn", body: `{"success":[{"request_put":{"key":"${b("d")}","value":"${b("1")}"}},{"request_put":{"key":"${b("d")}","value":"${b("2")}"}}]}` },

  // --- watch (before the compaction: from revision 2)
  ...variants("/v3/watch", {
    good: `{"create_request":{"key":"${b("foo")}","start_revision":"2","prev_kv":true}}`,
    numbers: `{"create_request":{"key":"${b("foo")}","start_revision":2,"prev_kv":true,"filters":[1]}}`,
    wrong: `{"create_request":{"key":"${b("foo")}","start_revision":"two"}}`,
    unknown: `{"create_request":{"key":"${b("foo")}","bogus":1},"bogus":2}`,
  }),
  { name: "watch filters by name", path: "/v3/watch", body: `{"create_request":{"key":"${b("foo")}","start_revision":"2","filters":["NOPUT"]}}`, stream: { ms: 400 } },
  {
    name: "watch ids past 2^53, created and cancelled",
    path: "/v3/watch",
    body: `{"create_request":{"key":"${b("foo")}","watch_id":"9007199254740993"}}{"create_request":{"key":"${b("foo")}","watch_id":9007199254740995}}{"cancel_request":{"watch_id":9007199254740993}}`,
    stream: { lines: 3, ms: 2000 },
  },
  { name: "watch id as number", path: "/v3/watch", body: `{"create_request":{"key":"${b("foo")}","watch_id":7}}`, stream: { lines: 1, ms: 2000 } },
  { name: "watch create then cancel", path: "/v3/watch", body: `{"create_request":{"key":"${b("foo")}","watch_id":"5"}}{"cancel_request":{"watch_id":"5"}}`, stream: { lines: 2, ms: 2000 } },
  { name: "watch progress", path: "/v3/watch", body: `{"create_request":{"key":"${b("foo")}"}}{"progress_request":{}}`, stream: { lines: 2, ms: 2000 } },
  { name: "watch bad second message", path: "/v3/watch", body: `{"create_request":{"key":"${b("foo")}"}}{bad`, stream: { ms: 400 } },
  { name: "watch empty request", path: "/v3/watch", body: "{}", stream: { ms: 400 } },
  { name: "watch oneof null", path: "/v3/watch", body: `{"create_request":null}`, stream: { ms: 400 } },
  { name: "watch fragment and progress_notify", path: "/v3/watch", body: `{"create_request":{"key":"${b("foo")}","fragment":true,"progress_notify":true}}`, stream: { lines: 1, ms: 2000 } },
  { name: "watch half-closed", path: "/v3/watch", body: `{"create_request":{"key":"${b("foo")}"}}`, halfClose: true },

  // --- compaction
  { name: "current revision", path: "/v3/kv/range", body: `{"key":"${b("foo")}"}`, capture: (a, c) => void (c.v.rev = field(a, "header", "revision")) },
  ...variants("/v3/kv/compaction", {
    good: (c) => `{"revision":"${Number(c.v.rev) - 3}"}`,
    numbers: (c) => `{"revision":${Number(c.v.rev) - 2},"physical":true}`,
    wrong: `{"revision":"x"}`,
    unknown: (c) => `{"revision":"${Number(c.v.rev) - 2}","bogus":1}`,
  }),
  { name: "compaction future", path: "/v3/kv/compaction", body: `{"revision":"9007199254740993"}` },
  { name: "range compacted", path: "/v3/kv/range", body: `{"key":"${b("foo")}","revision":"2"}` },
  { name: "watch compacted", path: "/v3/watch", body: `{"create_request":{"key":"${b("foo")}","start_revision":"2"}}`, stream: { lines: 2, ms: 2000 } },

  // --- leases
  ...variants("/v3/lease/grant", {
    good: `{"TTL":"60"}`,
    numbers: `{"TTL":60,"ID":5925524374510888774}`,
    wrong: `{"TTL":"abc"}`,
    unknown: `{"TTL":"60","ID":"12345","bogus":1}`,
    capture: (a, c) => void (c.v.lease = field(a, "ID")),
  }),
  { name: "grant id as number", path: "/v3/lease/grant", body: `{"TTL":30,"ID":7777}` },
  { name: "grant duplicate id", path: "/v3/lease/grant", body: `{"TTL":30,"ID":"7777"}` },
  { name: "grant ttl too large", path: "/v3/lease/grant", body: `{"TTL":"9000000001"}` },
  { name: "grant ttl 2^53+1", path: "/v3/lease/grant", body: `{"TTL":9007199254740993}` },
  { name: "grant negative id", path: "/v3/lease/grant", body: `{"TTL":30,"ID":"-5"}` },
  { name: "put with the lease", path: "/v3/kv/put", body: (c) => `{"key":"${b("leased")}","value":"${b("v")}","lease":${c.v.lease}}` },
  ...variants("/v3/lease/timetolive", {
    good: (c) => `{"ID":"${c.v.lease}","keys":true}`,
    numbers: (c) => `{"ID":${c.v.lease},"keys":1}`,
    wrong: `{"ID":true}`,
    unknown: `{"ID":"1","bogus":1}`,
  }),
  ...variants("/v3/kv/lease/timetolive", { good: `{"ID":"7777"}`, numbers: `{"ID":5925524374510888774}`, wrong: `{"ID":{}}`, unknown: `{"ID":"12345","keys":true,"bogus":[]}` }),
  ...variants("/v3/lease/leases", { good: "{}", wrong: "[]", unknown: `{"bogus":1}` }),
  ...variants("/v3/kv/lease/leases", { good: "{}", wrong: '"x"', unknown: `{"bogus":1}` }),
  ...variants("/v3/lease/keepalive", {
    good: (c) => `{"ID":"${c.v.lease}"}`,
    numbers: (c) => `{"ID":${c.v.lease}}\n{"ID":"12345"} {"ID":1}`,
    wrong: `{"ID":"x"}`,
    unknown: (c) => `{"ID":"${c.v.lease}","bogus":1}`,
  }),
  { name: "keepalive bad second message", path: "/v3/lease/keepalive", body: `{"ID":"7777"}{"ID":true}`, stream: { ms: 3000 } },
  { name: "keepalive empty body", path: "/v3/lease/keepalive", body: "", stream: { ms: 3000 } },
  ...variants("/v3/kv/lease/revoke", { good: `{"ID":"12345"}`, numbers: `{"ID":5925524374510888774}`, wrong: `{"ID":[1]}`, unknown: `{"ID":"12345","bogus":1}` }),
  ...variants("/v3/lease/revoke", { good: `{"ID":"7777"}`, numbers: (c) => `{"ID":${c.v.lease}}`, wrong: `{"ID":1.5}`, unknown: `{"ID":"7777","bogus":1}` }),
  { name: "leased key gone", path: "/v3/kv/range", body: `{"key":"${b("leased")}"}` },

  // --- cluster
  ...variants("/v3/cluster/member/list", {
    good: "{}",
    wrong: "[]",
    unknown: `{"bogus":1}`,
    capture: (a, c) => {
      c.v.self = field(a, "header", "member_id")
      c.v.peer = ((first(a).members as { peerURLs: string[] }[] | undefined)?.[0]?.peerURLs ?? [])[0] ?? ""
    },
  }),
  ...variants("/v3/cluster/member/add", {
    good: `{"peerURLs":["http://127.0.0.1:1"],"isLearner":true}`,
    wrong: `{"peerURLs":"http://127.0.0.1:1"}`,
    // (etcd's member ID hashes the URLs and the second: the same URLs again within a second is "member ID already exist")
    unknown: (c) => `{"peerURLs":["${c.v.peer}"],"isLearner":true,"bogus":1}`,
    capture: (a, c) => void (c.v.learner = field(a, "member", "ID")),
  }),
  { name: "member add bad url", path: "/v3/cluster/member/add", body: `{"peerURLs":["x"]}` },
  { name: "member add no url", path: "/v3/cluster/member/add", body: "{}" },
  { name: "member add learner as string", path: "/v3/cluster/member/add", body: `{"peerURLs":["http://127.0.0.1:3"],"isLearner":"true"}` },
  // (is_learner is not a field name of the request: an unknown field, and a voting member that breaks the quorum),
  ...variants("/v3/cluster/member/promote", {
    good: (c) => `{"ID":"${c.v.learner}"}`,
    numbers: (c) => `{"ID":${c.v.self}}`,
    wrong: `{"ID":-1}`,
    unknown: `{"ID":"1","bogus":1}`,
  }),
  // (not sent: an update of the learner, after which etcd 3.4.23 lists it as a voting member)
  ...variants("/v3/cluster/member/update", {
    good: (c) => `{"ID":"${c.v.self}","peerURLs":["${c.v.peer}"]}`,
    numbers: (c) => `{"ID":${c.v.self},"peerURLs":["${c.v.peer}"]}`,
    wrong: `{"ID":"1","peerURLs":[1]}`,
    unknown: `{"ID":"1","peerURLs":["http://127.0.0.1:2"],"bogus":1}`,
  }),
  { name: "member list with the learner", path: "/v3/cluster/member/list", body: "{}" },
  ...variants("/v3/cluster/member/remove", {
    good: (c) => `{"ID":"${c.v.learner}"}`,
    numbers: (c) => `{"ID":${c.v.learner}}`,
    wrong: `{"ID":"abc"}`,
    unknown: `{"ID":"1","bogus":1}`,
  }),

  // --- maintenance
  ...variants("/v3/maintenance/alarm", {
    good: `{"action":"GET"}`,
    numbers: `{"action":0,"memberID":0,"alarm":0}`,
    wrong: `{"action":{}}`,
    unknown: `{"action":"GET","bogus":1}`,
  }),
  { name: "alarm activate", path: "/v3/maintenance/alarm", body: (c) => `{"action":"ACTIVATE","memberID":"${c.v.self}","alarm":"NOSPACE"}` },
  { name: "put while NOSPACE", path: "/v3/kv/put", body: `{"key":"${b("foo")}","value":"${b("x")}"}` },
  { name: "health while NOSPACE", path: "/health", method: "GET", body: "" },
  { name: "health while NOSPACE excluded", path: "/health?exclude=NOSPACE", method: "GET", body: "" },
  { name: "alarm list", path: "/v3/maintenance/alarm", body: "{}" },
  { name: "alarm deactivate", path: "/v3/maintenance/alarm", body: (c) => `{"action":2,"memberID":${c.v.self},"alarm":1}` },
  ...variants("/v3/maintenance/status", { good: "{}", wrong: "[1]", unknown: `{"bogus":1}` }),
  ...variants("/v3/maintenance/defragment", { good: "{}", wrong: '"x"', unknown: `{"bogus":1}` }),
  ...variants("/v3/maintenance/hash", { good: "{}", wrong: "true", unknown: `{"revision":"x"}` }),
  ...variants("/v3/maintenance/snapshot", { good: "{}", wrong: "1", unknown: `{"bogus":1}` }),
  ...variants("/v3/maintenance/transfer-leadership", {
    good: (c) => `{"targetID":"${c.v.self}"}`,
    numbers: `{"targetID":1}`,
    wrong: `{"targetID":"-1"}`,
    unknown: `{"targetID":"1","bogus":1}`,
  }),

  // --- auth (off)
  ...variants("/v3/auth/user/add", {
    good: `{"name":"root","password":"rootpw"}`,
    numbers: `{"name":"u1","password":"p","options":{"no_password":false}}`,
    wrong: `{"name":1}`,
    unknown: `{"name":"u2","options":{"no_password":true},"bogus":1}`,
  }),
  { name: "user add empty name", path: "/v3/auth/user/add", body: `{"password":"x"}` },
  { name: "user add no password", path: "/v3/auth/user/add", body: `{"name":"u3"}` },
  ...variants("/v3/auth/user/get", { good: `{"name":"root"}`, wrong: `{"name":["root"]}`, unknown: `{"name":"nobody","bogus":1}` }),
  ...variants("/v3/auth/user/list", { good: "{}", wrong: "[]", unknown: `{"bogus":1}` }),
  ...variants("/v3/auth/role/add", { good: `{"name":"root"}`, numbers: `{"name":"r1"}`, wrong: `{"name":false}`, unknown: `{"name":"r2","bogus":1}` }),
  { name: "role add empty", path: "/v3/auth/role/add", body: "{}" },
  ...variants("/v3/auth/role/grant", {
    good: `{"name":"r1","perm":{"permType":"READWRITE","key":"${b("foo")}","range_end":"${b("fop")}"}}`,
    numbers: `{"name":"r1","perm":{"permType":1,"key":"${b("a")}"}}`,
    wrong: `{"name":"r1","perm":{"permType":"ALL"}}`,
    unknown: `{"name":"r2","perm":{"perm_type":"WRITE","key":"${b("b")}","bogus":1}}`,
  }),
  ...variants("/v3/auth/role/get", { good: `{"role":"r1"}`, wrong: `{"role":1}`, unknown: `{"role":"nobody","bogus":1}` }),
  ...variants("/v3/auth/role/list", { good: "{}", wrong: "[]", unknown: `{"bogus":1}` }),
  ...variants("/v3/auth/role/revoke", {
    good: `{"role":"r1","key":"${b("a")}"}`,
    numbers: `{"role":"r1","key":"${b("a")}","range_end":""}`,
    wrong: `{"role":"r1","key":1}`,
    unknown: `{"role":"r2","key":"${b("b")}","bogus":1}`,
  }),
  ...variants("/v3/auth/user/grant", { good: `{"user":"root","role":"root"}`, numbers: `{"user":"u1","role":"r1"}`, wrong: `{"user":"u1","role":{}}`, unknown: `{"user":"u2","role":"r2","bogus":1}` }),
  ...variants("/v3/auth/user/revoke", { good: `{"name":"u2","role":"r2"}`, numbers: `{"name":"u1","role":"nope"}`, wrong: `{"name":"u1","role":7}`, unknown: `{"name":"u1","role":"r1","bogus":1}` }),
  ...variants("/v3/auth/user/changepw", { good: `{"name":"u1","password":"p2"}`, wrong: `{"name":"u1","password":2}`, unknown: `{"name":"nobody","password":"x","bogus":1}` }),
  ...variants("/v3/auth/user/delete", { good: `{"name":"u2"}`, wrong: `{"name":{}}`, unknown: `{"name":"nobody","bogus":1}` }),
  ...variants("/v3/auth/role/delete", { good: `{"role":"r2"}`, wrong: `{"role":[]}`, unknown: `{"role":"nobody","bogus":1}` }),
  ...variants("/v3/auth/authenticate", { good: `{"name":"root","password":"rootpw"}`, wrong: `{"name":"root","password":1}`, unknown: `{"name":"root","password":"rootpw","bogus":1}` }),
  ...variants("/v3/auth/disable", { good: "{}", wrong: "[]", unknown: `{"bogus":1}` }),

  // --- lock and election (auth off)
  { name: "lease for the recipes", path: "/v3/lease/grant", body: `{"TTL":"60"}`, capture: (a, c) => void (c.v.rlease = field(a, "ID")) },
  ...variants("/v3/lock/lock", {
    good: (c) => `{"name":"${b("l1")}","lease":"${c.v.rlease}"}`,
    wrong: `{"name":"${b("l2")}","lease":"x"}`,
    unknown: `{"name":"${b("l3")}","lease":"1","bogus":1}`,
    capture: (a, c) => void (c.v.lockKey = field(a, "key")),
    token: false,
  }),
  { name: "lock lease as number", path: "/v3/lock/lock", body: (c) => `{"name":"${b("l4")}","lease":${c.v.rlease}}`, capture: (a, c) => void (c.v.lockKey2 = field(a, "key")) },
  { name: "lock without name", path: "/v3/lock/lock", body: `{"lease":"1"}` },
  ...variants("/v3/lock/unlock", {
    good: (c) => `{"key":"${c.v.lockKey}"}`,
    numbers: (c) => `{"key":"${c.v.lockKey2}"}`,
    wrong: `{"key":1}`,
    unknown: `{"key":"${b("nothing")}","bogus":1}`,
  }),
  ...variants("/v3/election/campaign", {
    good: (c) => `{"name":"${b("e1")}","lease":"${c.v.rlease}","value":"${b("v1")}"}`,
    wrong: `{"name":"${b("e2")}","lease":{}}`,
    unknown: `{"name":"${b("e3")}","lease":"1","value":"${b("v")}","bogus":1}`,
    capture: (a, c) => void (c.v.leader = JSON.stringify(first(a).leader)),
    token: false,
  }),
  { name: "campaign without name", path: "/v3/election/campaign", body: `{"lease":"1"}` },
  ...variants("/v3/election/proclaim", {
    good: (c) => `{"leader":${c.v.leader},"value":"${b("v2")}"}`,
    numbers: (c) => {
      const l = JSON.parse(c.v.leader ?? "{}") as { name: string; key: string; rev: string; lease: string }
      return `{"leader":{"name":"${l.name}","key":"${l.key}","rev":${l.rev},"lease":${l.lease}},"value":"${b("v3")}"}`
    },
    wrong: `{"leader":"x"}`,
    unknown: `{"leader":{"name":"${b("e1")}","bogus":1},"value":"${b("v")}"}`,
  }),
  { name: "proclaim without leader", path: "/v3/election/proclaim", body: `{"value":"${b("x")}"}` },
  ...variants("/v3/election/leader", { good: `{"name":"${b("e1")}"}`, wrong: `{"name":5}`, unknown: `{"name":"${b("none")}","bogus":1}` }),
  ...variants("/v3/election/observe", { good: `{"name":"${b("e1")}"}`, wrong: `{"name":true}`, unknown: `{"name":"${b("e1")}","bogus":1}` }),
  { name: "observe lines", path: "/v3/election/observe", body: `{"name":"${b("e1")}"}`, stream: { lines: 1, ms: 2000 } },
  ...variants("/v3/election/resign", {
    good: (c) => `{"leader":${c.v.leader}}`,
    wrong: `{"leader":[]}`,
    unknown: `{"leader":{"name":"${b("e9")}","key":"${b("e9/1")}"},"bogus":1}`,
    token: false,
  }),
  { name: "leader after resign", path: "/v3/election/leader", body: `{"name":"${b("e1")}"}` },
  { name: "resign without leader", path: "/v3/election/resign", body: "{}" },

  // --- auth on
  ...variants("/v3/auth/enable", { good: "{}", wrong: "[]", unknown: `{"bogus":1}`, token: false }),
  { name: "authenticate", path: "/v3/auth/authenticate", body: `{"name":"root","password":"rootpw"}`, capture: (a, c) => void (c.v.token = field(a, "token")) },
  { name: "authenticate bad password", path: "/v3/auth/authenticate", body: `{"name":"root","password":"nope"}` },
  { name: "authenticate user without password", path: "/v3/auth/authenticate", body: `{"name":"u3","password":""}` },
  { name: "range without token", path: "/v3/kv/range", body: `{"key":"${b("foo")}"}` },
  { name: "range with token", path: "/v3/kv/range", body: `{"key":"${b("foo")}"}`, headers: (c) => ({ authorization: c.v.token! }) },
  { name: "range with Bearer token", path: "/v3/kv/range", body: `{"key":"${b("foo")}"}`, headers: (c) => ({ authorization: `Bearer ${c.v.token}` }) },
  { name: "range with bogus token", path: "/v3/kv/range", body: `{"key":"${b("foo")}"}`, headers: { authorization: "bogus" } },
  { name: "watch with token", path: "/v3/watch", body: `{"create_request":{"key":"${b("foo")}"}}`, headers: (c) => ({ authorization: c.v.token! }), stream: { lines: 1, ms: 2000 } },
  { name: "watch without token", path: "/v3/watch", body: `{"create_request":{"key":"${b("foo")}"}}`, stream: { lines: 1, ms: 2000 } },
  { name: "member list with bogus token", path: "/v3/cluster/member/list", body: "{}", headers: { authorization: "bogus" } },
  { name: "status with bogus token", path: "/v3/maintenance/status", body: "{}", headers: { authorization: "bogus" } },
  { name: "defragment without token", path: "/v3/maintenance/defragment", body: "{}" },
  { name: "hash with bogus token", path: "/v3/maintenance/hash", body: "{}", headers: { authorization: "bogus" } },
  { name: "lease leases without token", path: "/v3/lease/leases", body: "{}" },
  { name: "lease grant without token", path: "/v3/lease/grant", body: `{"TTL":"5"}` },
  { name: "user list without token", path: "/v3/auth/user/list", body: "{}" },
  { name: "user list with token", path: "/v3/auth/user/list", body: "{}", headers: (c) => ({ authorization: c.v.token! }) },
  { name: "user get with token", path: "/v3/auth/user/get", body: `{"name":"root"}`, headers: (c) => ({ authorization: c.v.token! }) },
  { name: "lock without token", path: "/v3/lock/lock", body: `{"name":"${b("l5")}"}`, stream: { ms: 3000 } },
  { name: "auth disable without token", path: "/v3/auth/disable", body: "{}" },
  { name: "auth disable with token", path: "/v3/auth/disable", body: "{}", headers: (c) => ({ authorization: c.v.token! }) },
  { name: "old token after disable", path: "/v3/kv/range", body: `{"key":"${b("foo")}"}`, headers: (c) => ({ authorization: c.v.token! }) },
  { name: "member list after all", path: "/v3/cluster/member/list", body: "{}" },
]
