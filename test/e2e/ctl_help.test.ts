// The help of `tskv ctl` against real etcdctl 3.4's: for every command and
// group etcdctl lists, `<cmd> --help` must print the same text (program name
// aside), except for the commands tskv does not have and the flags of later
// etcdctl versions tskv also parses, both named by the help table. Plus
// --version/version, `help ...`, usage on a bad flag, and the server's
// `tskv help <command>` / `tskv snapshot ... --help`.

import { expect, test } from "bun:test"
import { spawnSync } from "bun"
import { helpText, topicOf } from "../../src/ctl/help"
import { ABSENT_COMMANDS, COMMAND_SPECS, GROUPS } from "../../src/ctl/help_table"
import { requireBinary, tskvBinary } from "../support/procs"

interface Run {
  code: number
  stdout: string
  stderr: string
}

function run(argv: string[]): Run {
  const r = spawnSync(argv, { env: { ...process.env, ETCDCTL_API: "3" }, stdin: "ignore" })
  return { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() }
}
const etcdctl = (args: string[]): Run => run(["etcdctl", ...args])
const tskv = (args: string[]): Run => run([tskvBinary, ...args])
/** The program's name where the help says it: NAME, USAGE, and `help`'s description. */
const normal = (text: string, program: string): string =>
  text.replaceAll(`\t${program} `, "\tPROG ").replaceAll(`\t${program}\n`, "\tPROG\n").replaceAll(`type ${program} help`, "type PROG help")

/** Drops the lines of flags that etcdctl 3.4 does not have (`since` in the table). */
function withoutLaterFlags(text: string, command: string): string {
  const later = Object.entries(COMMAND_SPECS[command]?.flags ?? {}).filter(([, f]) => f.since !== undefined).map(([n]) => `--${n}`)
  return text
    .split("\n")
    .filter((line) => !later.some((f) => line.startsWith(`      ${f}=`) || line.startsWith(`      ${f}[`)))
    .join("\n")
}

/** The command words etcdctl 3.4's root help lists. */
function etcdctlCommands(): string[] {
  const top = etcdctl(["--help"]).stdout
  const section = top.slice(top.indexOf("COMMANDS:\n") + 10, top.indexOf("\n\nOPTIONS:"))
  return section.split("\n").map((line) => line.split("\t").filter((c) => c !== "")[0]!)
}

test("etcdctl 3.4 lists the commands tskv ctl has, and the absent ones only", () => {
  requireBinary()
  const listed = etcdctlCommands()
  expect(listed.length).toBeGreaterThan(50)
  const ours = Object.keys(COMMAND_SPECS)
  expect(listed.filter((c) => !ours.includes(c)).sort()).toEqual(Object.keys(ABSENT_COMMANDS).sort())
  expect(ours.filter((c) => !listed.includes(c))).toEqual([])
})

test("the root help is etcdctl's without the absent commands", () => {
  const theirs = normal(etcdctl(["--help"]).stdout, "etcdctl")
  const absent = Object.keys(ABSENT_COMMANDS)
  const expected = theirs
    .split("\n")
    .filter((line) => !absent.some((c) => line.startsWith(`\t${c}\t`)))
    .join("\n")
  const ours = tskv(["ctl", "--help"])
  expect(ours.code).toBe(0)
  expect(normal(ours.stdout, "tskv ctl")).toBe(expected)
  expect(normal(tskv(["ctl", "-h"]).stdout, "tskv ctl")).toBe(expected)
  expect(normal(tskv(["ctl", "help"]).stdout, "tskv ctl")).toBe(expected)
  expect(normal(tskv(["ctl"]).stdout, "tskv ctl")).toBe(expected)
})

// Every command through the help printer in-process (the binary takes ~0.4 s a start on a loaded
// machine), a sample of them through the binary, which must print the same.
test("each command's and group's --help is etcdctl's: usage, description, flags with kinds and defaults, global options", () => {
  const names = [...Object.keys(COMMAND_SPECS), ...Object.keys(GROUPS)]
  const diffs: string[] = []
  for (const name of names) {
    const theirs = etcdctl([...name.split(" "), "--help"])
    expect(theirs.code, name).toBe(0)
    const expected = normal(theirs.stdout, "etcdctl")
    const got = withoutLaterFlags(normal(helpText(topicOf(name.split(" "))!, "tskv ctl"), "tskv ctl"), name)
    if (got !== expected) diffs.push(`${name}:\n--- etcdctl\n${expected}\n--- tskv ctl\n${got}`)
  }
  expect(diffs).toEqual([])
  for (const name of ["get", "put", "endpoint status", "lease", "endpoint", "check datascale", "watch"]) {
    const ours = tskv(["ctl", ...name.split(" "), "--help"])
    expect(ours.code, name).toBe(0)
    expect(ours.stdout, name).toBe(helpText(topicOf(name.split(" "))!, "tskv ctl"))
  }
}, 30_000)

test("help <command> and flags after the arguments print the same help", () => {
  const leaf = tskv(["ctl", "lease", "grant", "--help"]).stdout
  expect(leaf).toStartWith("NAME:\n\tlease grant - Creates leases\n\nUSAGE:\n\ttskv ctl lease grant <ttl> [flags]\n")
  expect(tskv(["ctl", "help", "lease", "grant"]).stdout).toBe(leaf)
  expect(tskv(["ctl", "lease", "grant", "10", "--help"]).stdout).toBe(leaf)
  expect(tskv(["ctl", "--endpoints=x:1", "lease", "grant", "-h"]).stdout).toBe(leaf)
  // a group without a subcommand, or with an unknown one, prints the group's help (cobra)
  const group = tskv(["ctl", "lease"])
  expect(group.code).toBe(0)
  expect(group.stdout).toBe(tskv(["ctl", "help", "lease"]).stdout)
  expect(group.stdout).toStartWith("NAME:\n\tlease - Lease related commands\n")
}, 20_000)

test("help with an unknown topic says so and prints the root help, as etcdctl", () => {
  const theirs = etcdctl(["help", "nosuch"])
  const ours = tskv(["ctl", "help", "nosuch"])
  expect([ours.code, ours.stderr]).toEqual([theirs.code, theirs.stderr])
  expect(ours.stdout).toBe(tskv(["ctl", "--help"]).stdout)
})

test("an unknown flag prints the command's usage on stdout and the error on stderr, as etcdctl", () => {
  const theirs = etcdctl(["get", "--bogus"])
  const ours = tskv(["ctl", "get", "--bogus"])
  expect([ours.code, ours.stderr]).toEqual([theirs.code, theirs.stderr])
  expect(ours.stdout).toBe(tskv(["ctl", "get", "--help"]).stdout)
})

test("version and --version print etcdctl's two lines", () => {
  const theirs = etcdctl(["version"])
  expect(tskv(["ctl", "version"])).toEqual(theirs)
  // etcdctl 3.4 refuses --version (unknown flag); tskv ctl answers it as `version` for scripts
  expect(tskv(["ctl", "--version"])).toEqual(theirs)
  expect(theirs.stdout).toBe("etcdctl version: 3.4.23\nAPI version: 3.4\n")
})

test("tskv help <command> and tskv snapshot ... --help", () => {
  const server = tskv(["--help"])
  expect(server.code).toBe(0)
  expect(server.stdout).toContain("tskv help <command>")
  expect(tskv(["help"]).stdout).toBe(server.stdout)
  expect(tskv(["help", "serve"]).stdout).toBe(server.stdout)
  expect(tskv(["help", "ctl"]).stdout).toBe(tskv(["ctl", "--help"]).stdout)
  expect(tskv(["help", "ctl", "get"]).stdout).toBe(tskv(["ctl", "get", "--help"]).stdout)
  const restore = tskv(["snapshot", "restore", "--help"])
  expect(restore.code).toBe(0)
  expect(restore.stdout).toStartWith("NAME:\n\tsnapshot restore - Restores an etcd member snapshot to an etcd directory\n\nUSAGE:\n\ttskv snapshot restore <filename> [options] [flags]\n")
  expect(restore.stdout).toContain('      --initial-cluster="default=http://localhost:2380"\t\tInitial cluster configuration for restore bootstrap\n')
  expect(tskv(["help", "snapshot", "restore"]).stdout).toBe(restore.stdout)
  expect(tskv(["snapshot", "help", "restore"]).stdout).toBe(restore.stdout)
  const group = tskv(["snapshot", "--help"])
  expect(group.stdout).toContain("COMMANDS:\n\trestore\tRestores an etcd member snapshot to an etcd directory\n\tsave\tStores")
  expect(tskv(["help", "snapshot"]).stdout).toBe(group.stdout)
  expect(tskv(["snapshot"]).stdout).toBe(group.stdout)
  const certs = tskv(["help", "certs"])
  expect(certs.code).toBe(0)
  expect(certs.stdout).toBe(tskv(["certs", "--help"]).stdout)
  expect(certs.stdout).toContain("tskv certs init-ca")
  expect(tskv(["help", "version"]).stdout).toContain("tskv version")
  const unknown = tskv(["help", "nosuch"])
  expect(unknown.code).toBe(2)
  expect(unknown.stderr).toBe('tskv: unknown help topic "nosuch" (topics: serve, ctl, snapshot, certs, version)\n')
}, 30_000)

test("tskv ctl snapshot status and restore run tskv snapshot's code with the table's flags", () => {
  const missing = tskv(["ctl", "snapshot", "status", "/nonexistent/x.db", "-w", "json"])
  expect(missing).toEqual(tskv(["snapshot", "status", "/nonexistent/x.db", "-w", "json"]))
  expect(missing.code).not.toBe(0)
  const bad = tskv(["ctl", "snapshot", "restore", "/nonexistent/x.db", "--bogus"])
  expect(bad.code).toBe(1)
  expect(bad.stderr).toBe("Error: unknown flag: --bogus\n\nError: unknown flag: --bogus\n")
})
