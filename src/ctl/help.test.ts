import { expect, test } from "bun:test"
import { snapshotFlagNames } from "../snapshot/snapshot_command"
import { SNAPSHOT_GLOBAL_FLAGS } from "../snapshot/snapshot_flags"
import { commands } from "./commands"
import { helpText, tabwrite, topicOf } from "./help"
import { COMMAND_SPECS, GROUPS, commandFlags } from "./help_table"

test("tabwrite() pads each column block with tabs to a multiple of 8, as Go's tabwriter", () => {
  expect(tabwrite("\ta\tone\n\tlonger-name\ttwo\nbreak\n\tb\tthree")).toBe("\ta\t\tone\n\tlonger-name\ttwo\nbreak\n\tb\tthree")
  expect(tabwrite("  -h, --help[=false]\thelp")).toBe("  -h, --help[=false]\thelp")
})

test("every command of the table has an implementation and every v3 implementation is in the table", () => {
  const external = ["snapshot restore", "snapshot status", "help"]
  for (const name of Object.keys(COMMAND_SPECS)) {
    if (!external.includes(name)) expect(commands[name], name).toBeDefined()
  }
  for (const [name, command] of Object.entries(commands)) {
    // only the v2 verbs (ETCDCTL_API=2's world, hidden from the v3 help) keep flags of their own
    if (COMMAND_SPECS[name] !== undefined) expect(command.flags, name).toBeUndefined()
    else expect(["set", "mk", "mkdir", "ls", "rm", "rmdir", "update", "exec-watch", "cluster-health"]).toContain(name)
  }
})

test("the groups of the help are the first words of the table's two-word commands", () => {
  const firsts = new Set(Object.keys(COMMAND_SPECS).filter((n) => n.includes(" ")).map((n) => n.split(" ")[0]!))
  expect([...firsts].sort()).toEqual(Object.keys(GROUPS).sort())
})

test("tskv snapshot parses exactly the flags its help (the table's snapshot commands) shows", () => {
  const shown = new Set<string>(["help", ...SNAPSHOT_GLOBAL_FLAGS])
  for (const sub of ["save", "restore", "status"]) for (const f of Object.keys(commandFlags(`snapshot ${sub}`)!)) shown.add(f)
  // "w" is -w; the timeouts are parsed and do nothing in tskv snapshot, so the help leaves them out
  const parsed = snapshotFlagNames().filter((f) => !["w", "dial-timeout", "command-timeout"].includes(f))
  expect(parsed.sort()).toEqual([...shown].sort())
})

test("topicOf() finds leaves, groups and nothing", () => {
  expect(topicOf([])).toEqual({ kind: "root" })
  expect(topicOf(["lease"])).toEqual({ kind: "group", name: "lease" })
  expect(topicOf(["lease", "grant", "10"])).toEqual({ kind: "leaf", name: "lease grant" })
  expect(topicOf(["get", "foo"])).toEqual({ kind: "leaf", name: "get" })
  expect(topicOf(["nosuch"])).toBeUndefined()
})

test("helpText() shows endpoint's --cluster as the group's own flag and as a global one of its leaves", () => {
  expect(helpText({ kind: "group", name: "endpoint" }, "x")).toContain("OPTIONS:\n      --cluster[=false]\tuse all endpoints")
  const leaf = helpText({ kind: "leaf", name: "endpoint health" }, "x")
  expect(leaf.slice(leaf.indexOf("GLOBAL OPTIONS:"))).toContain("--cluster[=false]")
})
