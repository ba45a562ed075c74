// `tskv --help`: grouped like `etcd --help`, generated from the flag table.

import { type FlagGroup, flagSpecs } from "./flags"

const groupOrder: readonly FlagGroup[] = [
  "Member",
  "Clustering",
  "Security",
  "Auth",
  "Profiling and Monitoring",
  "Logging",
  "Features",
  "Unsafe feature",
  "v2 Proxy and discovery (not supported)",
]

const usage = `Usage:

  tskv [flags]
    Start a tskv member (an etcd v3 API server).

  tskv version | tskv --version
    Show the version of tskv and of the etcd API it speaks.

  tskv -h | --help
    Show the help information about tskv.

  tskv --config-file <path>
    Path to the server configuration file (etcd's YAML format). Note that if a configuration file is provided, other command line flags and environment variables will be ignored.

  tskv ctl ...          etcdctl-compatible client (also as 'tskvctl')
  tskv certs ...        make a PKI: init-ca, issue, cluster
  tskv snapshot ...     save, restore, status

  tskv help <command>   the help of a command: ctl [command], snapshot [save|restore|status], certs, serve, version
  tskv <command> --help the same

Every flag may also be set as ETCD_<FLAG> or TSKV_<FLAG> (e.g. ETCD_DATA_DIR);
a flag given on the command line wins and the same setting in the environment is an error.
Flags marked (not supported yet) are accepted only with their default value.
`

export function helpText(notBuilt: readonly string[] = []): string {
  const lines = [usage]
  for (const group of groupOrder) {
    lines.push(`${group}:`)
    for (const spec of flagSpecs) {
      if (spec.group !== group || spec.hidden === true) continue
      const shownDefault = spec.kind === "uint" && spec.default === "4294967295" ? "math.MaxUint32" : spec.default
      const names = [spec.name, ...(spec.aliases ?? [])].map((n) => `--${n}`).join(", ")
      const mark = spec.unsupported === true || notBuilt.includes(spec.name) ? " (not supported yet)" : ""
      lines.push(`  ${names} '${shownDefault}'${mark}`)
      lines.push(`    ${spec.help}`)
    }
    lines.push("")
  }
  return lines.join("\n")
}

/** The flag table for the README, in Markdown, from the same source as --help. */
export function flagTableMarkdown(): string {
  const lines = ["| Flag | Default | Env | Status | Meaning |", "|---|---|---|---|---|"]
  for (const group of groupOrder) {
    for (const spec of flagSpecs) {
      if (spec.group !== group || spec.hidden === true) continue
      const names = [spec.name, ...(spec.aliases ?? [])].map((n) => `\`--${n}\``).join(", ")
      const status = spec.unsupported === true ? "not supported yet" : spec.noEffect !== undefined ? "no effect" : ""
      const env = `\`ETCD_${spec.name.toUpperCase().replaceAll("-", "_")}\``
      lines.push(`| ${names} | \`${spec.default === "" ? "''" : spec.default}\` | ${env} | ${status} | ${spec.help.replaceAll("|", "\\|")} |`)
    }
  }
  return `${lines.join("\n")}\n`
}
