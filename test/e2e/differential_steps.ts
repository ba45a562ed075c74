// The etcdctl steps of the differential test and how outputs are masked.

export interface Ctx {
  lease: string
  lease2: string
  rev: number
}

export interface Step {
  name: string
  args: (ctx: Ctx) => string[]
  input?: string
  /** Reads the output into the context (lease ids, revisions) before masking. */
  capture?: (out: string, ctx: Ctx) => void
}

const leaseOf = (out: string): string => /lease ([0-9a-f]+) granted/.exec(out)?.[1] ?? "none"

export const steps: Step[] = [
  { name: "put", args: () => ["put", "foo", "bar"] },
  { name: "get", args: () => ["get", "foo"] },
  { name: "get json", args: () => ["get", "foo", "-w", "json"] },
  { name: "put child a", args: () => ["put", "foo/a", "1"] },
  { name: "put child b", args: () => ["put", "foo/b", "2"] },
  { name: "get prefix", args: () => ["get", "foo", "--prefix"] },
  { name: "get prefix limit json", args: () => ["get", "foo", "--prefix", "--limit=1", "-w", "json"] },
  { name: "get fields", args: () => ["get", "foo", "-w", "fields"] },
  { name: "get keys-only", args: () => ["get", "foo", "--prefix", "--keys-only"] },
  { name: "get print-value-only", args: () => ["get", "foo", "--prefix", "--print-value-only"] },
  { name: "get sort desc by value", args: () => ["get", "foo", "--prefix", "--order=DESCEND", "--sort-by=VALUE"] },
  { name: "get sort by version", args: () => ["get", "foo", "--prefix", "--sort-by=VERSION", "-w", "json"] },
  { name: "get from-key", args: () => ["get", "foo/a", "--from-key"] },
  { name: "get range", args: () => ["get", "foo", "foo/b"] },
  { name: "get count via json", args: () => ["get", "", "--prefix", "--keys-only", "-w", "json"] },
  { name: "get serializable", args: () => ["get", "foo", "--consistency=s"] },
  { name: "put prev-kv", args: () => ["put", "foo", "baz", "--prev-kv"] },
  { name: "get rev 2", args: () => ["get", "foo", "--rev=2"] },
  { name: "put ignore-value", args: () => ["put", "foo", "--ignore-value"] },
  { name: "put ignore-value missing key", args: () => ["put", "nokey", "--ignore-value"] },
  { name: "put empty key", args: () => ["put", "", "v"] },
  { name: "del one", args: () => ["del", "foo/a"] },
  { name: "del prefix prev-kv", args: () => ["del", "foo", "--prefix", "--prev-kv"] },
  { name: "del nothing", args: () => ["del", "nothing"] },
  { name: "put k1 v1", args: () => ["put", "k1", "v1"] },
  { name: "put k1 v2", args: () => ["put", "k1", "v2"] },
  { name: "put k1 v3", args: () => ["put", "k1", "v3"] },
  {
    name: "txn success",
    args: () => ["txn"],
    input: 'value("k1") = "v3"\n\nput k1 v4\nput k2 x\n\nget k1\n\n',
  },
  { name: "txn failure json", args: () => ["txn", "-w", "json"], input: 'value("k1") = "v3"\n\nput k1 v4\n\nget k1\n\n' },
  { name: "txn compare mod", args: () => ["txn"], input: 'mod("k1") > "0"\n\nget k2\n\n\n' },
  { name: "txn duplicate key", args: () => ["txn"], input: "\nput d 1\nput d 2\n\n\n" },
  { name: "txn too many ops", args: () => ["txn"], input: `\n${Array.from({ length: 129 }, (_, i) => `put t${i} v`).join("\n")}\n\n\n` },
  { name: "txn version compare missing key", args: () => ["txn", "-w", "json"], input: 'version("missing") = "0"\n\nput created yes\n\n\n' },
  {
    name: "current revision",
    args: () => ["get", "k1", "-w", "json"],
    capture: (out, ctx) => {
      ctx.rev = JSON.parse(out).header.revision as number
    },
  },
  { name: "compaction", args: (c) => ["compaction", String(c.rev - 2)] },
  { name: "compacted read", args: (c) => ["get", "k1", `--rev=${c.rev - 3}`] },
  { name: "read at compact revision", args: (c) => ["get", "k1", `--rev=${c.rev - 2}`] },
  { name: "future read", args: (c) => ["get", "k1", `--rev=${c.rev + 100}`] },
  { name: "compaction again", args: (c) => ["compaction", String(c.rev - 3)] },
  { name: "compaction future", args: (c) => ["compaction", String(c.rev + 100)] },
  { name: "lease grant", args: () => ["lease", "grant", "60"], capture: (out, c) => void (c.lease = leaseOf(out)) },
  { name: "lease grant min ttl json", args: () => ["lease", "grant", "1", "-w", "json"] },
  { name: "lease grant 2", args: () => ["lease", "grant", "30"], capture: (out, c) => void (c.lease2 = leaseOf(out)) },
  { name: "put with lease", args: (c) => ["put", "lk", "v", `--lease=${c.lease2}`] },
  { name: "lease timetolive keys", args: (c) => ["lease", "timetolive", c.lease2, "--keys"] },
  { name: "lease keep-alive once", args: (c) => ["lease", "keep-alive", "--once", c.lease2] },
  { name: "lease revoke", args: (c) => ["lease", "revoke", c.lease2] },
  { name: "lease revoked key gone", args: () => ["get", "lk"] },
  { name: "lease timetolive revoked", args: (c) => ["lease", "timetolive", c.lease2] },
  { name: "lease revoke again", args: (c) => ["lease", "revoke", c.lease2] },
  { name: "put unknown lease", args: () => ["put", "x", "y", "--lease=1234abcd"] },
  { name: "lease keep-alive unknown", args: () => ["lease", "keep-alive", "--once", "1234abcd"] },
  { name: "member list", args: () => ["member", "list"] },
  { name: "member list json", args: () => ["member", "list", "-w", "json"] },
  { name: "member list table", args: () => ["member", "list", "-w", "table"] },
  { name: "endpoint status json", args: () => ["endpoint", "status", "-w", "json"] },
  { name: "endpoint health", args: () => ["endpoint", "health"] },
  { name: "alarm list", args: () => ["alarm", "list"] },
  { name: "alarm disarm", args: () => ["alarm", "disarm"] },
  { name: "defrag", args: () => ["defrag"] },
  { name: "get table unsupported", args: () => ["get", "k1", "-w", "table"] },
]

/** Replaces what legitimately differs between two clusters with placeholders. */
export function mask(text: string, eps: string[]): string {
  let t = text
  for (const [i, ep] of eps.entries()) t = t.split(ep).join(`<endpoint${i}>`)
  return t
    .replace(/"ts":"[^"]*"/g, '"ts":"<ts>"')
    .replace(/"target":"[^"]*"/g, '"target":"<target>"')
    .replace(/https?:\/\/127\.0\.0\.1:\d+/g, "<url>")
    .replace(/127\.0\.0\.1:\d+/g, "<hostport>")
    .replace(/"(cluster_id|member_id|ID|leader|raft_term|raftTerm|raftIndex|raftAppliedIndex|dbSize|dbSizeInUse|hash)":\d+/g, '"$1":<n>')
    .replace(/"version":"[^"]*"/g, '"version":"<v>"')
    .replace(/"(ClusterID|MemberID|RaftTerm)" : \d+/g, '"$1" : <n>')
    .replace(/\b[0-9a-f]{14,16}\b/g, "<id>")
    .replace(/took = [0-9.]+[µnm]?s/g, "took = <t>")
    .replace(/"took":"[^"]*"/g, '"took":"<t>"')
    .replace(/\d+(\.\d+)? kB/g, "<size>")
    .replace(/remaining\(\d+s\)/g, "remaining(<s>)")
    .replace(/"peerURLs":\["[^"]*"\]/g, '"peerURLs":[<u>]')
    .replace(/\b\d+\.\d+\.\d+\b/g, "<ver>")
    .replace(/\b(\d+), (\d+), (\d+),/g, "<n>, <n>, <n>,")
    // Table columns are as wide as their widest cell (a 15-digit id makes a narrower ID column).
    .replace(/^[|+].*$/gm, (line) => line.replace(/ {2,}/g, " ").replace(/-{2,}/g, "-"))
}

