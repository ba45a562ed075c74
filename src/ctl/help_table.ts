// The declarative table of `tskv ctl`: every command word, its usage line and
// description, and every flag with its kind, default and description, as
// etcdctl 3.4.23 shows them. The parser (flags.ts, main.ts) takes a command's
// flags from here and the help (help.ts) is printed from here, so the two
// cannot drift. Flags etcdctl 3.4 does not have carry `since`.

export type FlagKind = "bool" | "string" | "int" | "duration" | "strings"

export interface FlagSpec {
  kind: FlagKind
  short?: string
  /** Default as the text pflag would parse. */
  def: string
  /** The description in the help. */
  usage: string
  /** A flag from a later etcdctl than 3.4 (shown, and named in the test's list of extras). */
  since?: string
}

export type FlagSpecs = Record<string, FlagSpec>

export interface CommandSpec {
  /** The usage after the command words: "[options] <key> [range_end]". */
  use: string
  short: string
  /** The DESCRIPTION section, one paragraph per line. */
  long?: string
  flags: FlagSpecs
}

export const ROOT_SHORT = "A simple command line client for etcd3."
/** What etcdctl 3.4.23's `version` and the help's VERSION say. */
export const CTL_VERSION = "3.4.23"
export const CTL_API_VERSION = "3.4"

export const GLOBAL_FLAGS: FlagSpecs = {
  endpoints: { kind: "strings", def: "127.0.0.1:2379", usage: "gRPC endpoints" },
  debug: { kind: "bool", def: "false", usage: "enable client-side debug logging" },
  "write-out": { kind: "string", short: "w", def: "simple", usage: "set the output format (fields, json, protobuf, simple, table)" },
  hex: { kind: "bool", def: "false", usage: "print byte strings as hex encoded strings" },
  "dial-timeout": { kind: "duration", def: "2s", usage: "dial timeout for client connections" },
  "command-timeout": { kind: "duration", def: "5s", usage: "timeout for short running command (excluding dial timeout)" },
  "keepalive-time": { kind: "duration", def: "2s", usage: "keepalive time for client connections" },
  "keepalive-timeout": { kind: "duration", def: "6s", usage: "keepalive timeout for client connections" },
  "insecure-transport": { kind: "bool", def: "true", usage: "disable transport security for client connections" },
  "insecure-discovery": { kind: "bool", def: "true", usage: "accept insecure SRV records describing cluster endpoints" },
  "insecure-skip-tls-verify": {
    kind: "bool",
    def: "false",
    usage: "skip server certificate verification (CAUTION: this option should be enabled only for testing purposes)",
  },
  cert: { kind: "string", def: "", usage: "identify secure client using this TLS certificate file" },
  key: { kind: "string", def: "", usage: "identify secure client using this TLS key file" },
  cacert: { kind: "string", def: "", usage: "verify certificates of TLS-enabled secure servers using this CA bundle" },
  user: { kind: "string", def: "", usage: "username[:password] for authentication (prompt if password is not supplied)" },
  password: { kind: "string", def: "", usage: "password for authentication (if this option is used, --user option shouldn't include password)" },
  "discovery-srv": { kind: "string", short: "d", def: "", usage: "domain name to query for SRV records describing cluster endpoints" },
  "discovery-srv-name": { kind: "string", def: "", usage: "service name to query when using DNS discovery" },
  help: { kind: "bool", short: "h", def: "false", usage: "help for etcdctl" },
}

/** Commands that only group others: `lease` -> its description. */
export const GROUPS: Record<string, string> = {
  alarm: "Alarm related commands",
  auth: "Enable or disable authentication",
  check: "commands for checking properties of the etcd cluster",
  endpoint: "Endpoint related commands",
  lease: "Lease related commands",
  member: "Membership related commands",
  role: "Role related commands",
  snapshot: "Manages etcd node snapshots",
  user: "User related commands",
}

/** A group's usage words where they are not `<subcommand>`. */
export const GROUP_USE: Record<string, string> = { auth: "<enable or disable>" }

const b = (usage: string, def = "false"): FlagSpec => ({ kind: "bool", def, usage })
const s = (usage: string, def = ""): FlagSpec => ({ kind: "string", def, usage })
const i = (usage: string, def = "0"): FlagSpec => ({ kind: "int", def, usage })

function checkFlags(what: string, prefix: string): FlagSpecs {
  return {
    load: s(`The ${what} check's workload model. Accepted workloads: s(small), m(medium), l(large), xl(xLarge)`, "s"),
    prefix: s(`The prefix for writing the ${what} check's keys.`, prefix),
    "auto-compact": b("Compact storage with last revision after test is finished."),
    "auto-defrag": b("Defragment storage after test is finished."),
  }
}

const CLUSTER = { cluster: b("use all endpoints from the cluster member list") }

const PUT_LONG = `Puts the given key into the store.

When <value> begins with '-', <value> is interpreted as a flag.
Insert '--' for workaround:

$ put <key> -- <value>
$ put -- <key> <value>

If <value> isn't given as a command line argument and '--ignore-value' is not specified,
this command tries to read the value from standard input.

If <lease> isn't given as a command line argument and '--ignore-lease' is not specified,
this command tries to read the value from standard input.

For example,
$ cat file | put <key>
will store the content of the file to <key>.`

/** Every leaf command of etcdctl 3.4 that tskv ctl has, by its command words. */
export const COMMAND_SPECS: Record<string, CommandSpec> = {
  get: {
    use: "[options] <key> [range_end]",
    short: "Gets the key or a range of keys",
    flags: {
      consistency: s("Linearizable(l) or Serializable(s)", "l"),
      order: s("Order of results; ASCEND or DESCEND (ASCEND by default)"),
      "sort-by": s("Sort target; CREATE, KEY, MODIFY, VALUE, or VERSION"),
      limit: i("Maximum number of results"),
      prefix: b("Get keys with matching prefix"),
      "from-key": b("Get keys that are greater than or equal to the given key using byte compare"),
      rev: i("Specify the kv revision"),
      "keys-only": b("Get only the keys"),
      "count-only": { ...b("Get only the count"), since: "3.5" },
      "print-value-only": b('Only write values when using the "simple" output format'),
    },
  },
  put: {
    use: "[options] <key> <value> (<value> can also be given from stdin)",
    short: "Puts the given key into the store",
    long: PUT_LONG,
    flags: {
      lease: s("lease ID (in hexadecimal) to attach to the key", "0"),
      "prev-kv": b("return the previous key-value pair before modification"),
      "ignore-value": b("updates the key using its current value"),
      "ignore-lease": b("updates the key using its current lease"),
    },
  },
  del: {
    use: "[options] <key> [range_end]",
    short: "Removes the specified key or range of keys [key, range_end)",
    flags: {
      prefix: b("delete keys with matching prefix"),
      "prev-kv": b("return deleted key-value pairs"),
      "from-key": b("delete keys that are greater than or equal to the given key using byte compare"),
    },
  },
  txn: {
    use: "[options]",
    short: "Txn processes all the requests in one transaction",
    flags: { interactive: { ...b("Input transaction in interactive mode"), short: "i" } },
  },
  compaction: {
    use: "[options] <revision>",
    short: "Compacts the event history in etcd",
    flags: { physical: b("'true' to wait for compaction to physically remove all old revisions") },
  },
  "alarm disarm": { use: "", short: "Disarms all alarms", flags: {} },
  "alarm list": { use: "", short: "Lists all alarms", flags: {} },
  "auth disable": { use: "", short: "Disables authentication", flags: {} },
  "auth enable": { use: "", short: "Enables authentication", flags: {} },
  "check datascale": {
    use: "[options]",
    short: "Check the memory usage of holding data for different workloads on a given server endpoint.",
    long: "If no endpoint is provided, localhost will be used. If multiple endpoints are provided, first endpoint will be used.",
    flags: checkFlags("datascale", "/etcdctl-check-datascale/"),
  },
  "check perf": { use: "[options]", short: "Check the performance of the etcd cluster", flags: checkFlags("performance", "/etcdctl-check-perf/") },
  defrag: {
    use: "",
    short: "Defragments the storage of the etcd members with given endpoints",
    flags: { ...CLUSTER, "data-dir": s("Optional. If present, defragments a data directory not in use by etcd.") },
  },
  elect: {
    use: "<election-name> [proposal]",
    short: "Observes and participates in leader election",
    flags: { listen: { ...b("observation mode"), short: "l" } },
  },
  "endpoint hashkv": {
    use: "",
    short: "Prints the KV history hash for each endpoint in --endpoints",
    flags: { rev: i("maximum revision to hash (default: all revisions)") },
  },
  "endpoint health": { use: "", short: "Checks the healthiness of endpoints specified in `--endpoints` flag", flags: {} },
  "endpoint status": {
    use: "",
    short: "Prints out the status of endpoints specified in `--endpoints` flag",
    long:
      "When --write-out is set to simple, this command prints out comma-separated status lists for each endpoint.\n" +
      "The items in the lists are endpoint, ID, version, db size, is leader, is learner, raft term, raft index, raft applied index, errors.",
    flags: {},
  },
  "lease grant": { use: "<ttl>", short: "Creates leases", flags: {} },
  "lease keep-alive": {
    use: "[options] <leaseID>",
    short: "Keeps leases alive (renew)",
    flags: { once: b("Resets the keep-alive time to its original value and exits immediately") },
  },
  "lease list": { use: "", short: "List all active leases", flags: {} },
  "lease revoke": { use: "<leaseID>", short: "Revokes leases", flags: {} },
  "lease timetolive": { use: "<leaseID> [options]", short: "Get lease information", flags: { keys: b("Get keys attached to this lease") } },
  lock: { use: "<lockname> [exec-command arg1 arg2 ...]", short: "Acquires a named lock", flags: { ttl: i("timeout for session", "10") } },
  "make-mirror": {
    use: "[options] <destination>",
    short: "Makes a mirror at the destination etcd cluster",
    flags: {
      prefix: s("Key-value prefix to mirror"),
      "dest-prefix": s("destination prefix to mirror a prefix to a different prefix in the destination cluster"),
      "no-dest-prefix": b("mirror key-values to the root of the destination cluster"),
      "dest-cert": s("Identify secure client using this TLS certificate file for the destination cluster"),
      "dest-key": s("Identify secure client using this TLS key file"),
      "dest-cacert": s("Verify certificates of TLS enabled secure servers using this CA bundle"),
      "dest-insecure-transport": b("Disable transport security for client connections", "true"),
    },
  },
  "member add": {
    use: "<memberName> [options]",
    short: "Adds a member into the cluster",
    flags: { "peer-urls": s("comma separated peer URLs for the new member."), learner: b("indicates if the new member is raft learner") },
  },
  "member list": {
    use: "",
    short: "Lists all members in the cluster",
    long:
      "When --write-out is set to simple, this command prints out comma-separated member lists for each endpoint.\n" +
      "The items in the lists are ID, Status, Name, Peer Addrs, Client Addrs, Is Learner.",
    flags: {},
  },
  "member promote": {
    use: "<memberID>",
    short: "Promotes a non-voting member in the cluster",
    long: "Promotes a non-voting learner member to a voting one in the cluster.",
    flags: {},
  },
  "member remove": { use: "<memberID>", short: "Removes a member from the cluster", flags: {} },
  "member update": {
    use: "<memberID> [options]",
    short: "Updates a member in the cluster",
    flags: { "peer-urls": s("comma separated peer URLs for the updated member.") },
  },
  "move-leader": { use: "<transferee-member-id>", short: "Transfers leadership to another etcd cluster member.", flags: {} },
  "role add": { use: "<role name>", short: "Adds a new role", flags: {} },
  "role delete": { use: "<role name>", short: "Deletes a role", flags: {} },
  "role get": { use: "<role name>", short: "Gets detailed information of a role", flags: {} },
  "role grant-permission": {
    use: "[options] <role name> <permission type> <key> [endkey]",
    short: "Grants a key to a role",
    flags: {
      prefix: b("grant a prefix permission"),
      "from-key": b("grant a permission of keys that are greater than or equal to the given key using byte compare"),
    },
  },
  "role list": { use: "", short: "Lists all roles", flags: {} },
  "role revoke-permission": {
    use: "<role name> <key> [endkey]",
    short: "Revokes a key from a role",
    flags: {
      prefix: b("revoke a prefix permission"),
      "from-key": b("revoke a permission of keys that are greater than or equal to the given key using byte compare"),
    },
  },
  "snapshot restore": {
    use: "<filename> [options]",
    short: "Restores an etcd member snapshot to an etcd directory",
    flags: {
      "data-dir": s("Path to the data directory"),
      "wal-dir": s("Path to the WAL directory (use --data-dir if none given)"),
      "initial-cluster": s("Initial cluster configuration for restore bootstrap", "default=http://localhost:2380"),
      "initial-cluster-token": s("Initial cluster token for the etcd cluster during restore bootstrap", "etcd-cluster"),
      "initial-advertise-peer-urls": s("List of this member's peer URLs to advertise to the rest of the cluster", "http://localhost:2380"),
      name: s("Human-readable name for this member", "default"),
      "skip-hash-check": b("Ignore snapshot integrity hash value (required if copied from data directory)"),
      "bump-revision": { ...i("How much to increase the latest revision after restore"), since: "3.5" },
      "mark-compacted": { ...b("Mark the latest revision after restore as the point of scheduled compaction (required if --bump-revision > 0, disallowed otherwise)"), since: "3.5" },
    },
  },
  "snapshot save": { use: "<filename>", short: "Stores an etcd node backend snapshot to a given file", flags: {} },
  "snapshot status": {
    use: "<filename>",
    short: "Gets backend snapshot status of a given file",
    long:
      "When --write-out is set to simple, this command prints out comma-separated status lists for each endpoint.\n" +
      "The items in the lists are hash, revision, total keys, total size.",
    flags: {},
  },
  "user add": {
    use: "<user name or user:password> [options]",
    short: "Adds a new user",
    flags: {
      interactive: b("Read password from stdin instead of interactive terminal", "true"),
      "no-password": b("Create a user without password (CN based auth only)"),
      "new-user-password": s("Supply password from the command line flag"),
    },
  },
  "user delete": { use: "<user name>", short: "Deletes a user", flags: {} },
  "user get": { use: "<user name> [options]", short: "Gets detailed information of a user", flags: { detail: b("Show permissions of roles granted to the user") } },
  "user grant-role": { use: "<user name> <role name>", short: "Grants a role to a user", flags: {} },
  "user list": { use: "", short: "Lists all users", flags: {} },
  "user passwd": {
    use: "<user name> [options]",
    short: "Changes password of user",
    flags: { interactive: b("If true, read password from stdin instead of interactive terminal", "true") },
  },
  "user revoke-role": { use: "<user name> <role name>", short: "Revokes a role from a user", flags: {} },
  version: { use: "", short: "Prints the version of etcdctl", flags: {} },
  watch: {
    use: "[options] [key or prefix] [range_end] [--] [exec-command arg1 arg2 ...]",
    short: "Watches events stream on keys or prefixes",
    flags: {
      interactive: { ...b("Interactive mode"), short: "i" },
      prefix: b("Watch on a prefix if prefix is set"),
      rev: i("Revision to start watching"),
      "prev-kv": b("get the previous key-value pair before the event happens"),
      "progress-notify": { ...b("get periodic watch progress notification from server"), since: "3.5" },
    },
  },
  help: {
    use: "[command]",
    short: "Help about any command",
    long: "Help provides help for any command in the application.\nSimply type etcdctl help [path to command] for full details.",
    flags: {},
  },
}

/** Flags a group gives every command under it (cobra's persistent flags): `endpoint --cluster`. */
export const GROUP_FLAGS: Record<string, FlagSpecs> = { endpoint: CLUSTER }

/** Every flag a leaf command parses besides the global ones: its own and its group's. */
export function commandFlags(name: string): FlagSpecs | undefined {
  const spec = COMMAND_SPECS[name]
  if (spec === undefined) return undefined
  const group = name.includes(" ") ? GROUP_FLAGS[name.split(" ")[0]!] : undefined
  return { ...group, ...spec.flags }
}

/** etcdctl 3.4 commands tskv ctl does not have, and why (the help test and the README name them). */
export const ABSENT_COMMANDS: Record<string, string> = {
  "completion bash": "shell completion scripts are not generated",
  "completion fish": "shell completion scripts are not generated",
  "completion powershell": "shell completion scripts are not generated",
  "completion zsh": "shell completion scripts are not generated",
  migrate: "tskv has no v2 store on disk to migrate from",
}
