// What `tskv version` (and `tskv --version`) prints, and the versions the
// server reports: tskv's own, and the etcd API version it speaks. The etcd
// version is >= 3.5.8 so that kube-apiserver enables watch progress requests
// (reference §0.9), and below 3.5.28 whose Compact became admin-only: tskv
// follows 3.4.23's observed behaviour there.

import packageJson from "../../package.json" with { type: "json" }

export const tskvVersion: string = packageJson.version
/** Status.version and /version "etcdserver". */
export const etcdApiVersion = "3.5.13"
/** /version "etcdcluster" (major.minor.0, as etcd reports it). */
export const etcdClusterVersion = "3.5.0"

export interface VersionInfo {
  readonly tskv: string
  readonly etcdApi: string
  readonly etcdCluster: string
  readonly bun: string
  readonly bunRevision: string
  readonly os: string
  readonly arch: string
}

export function versionInfo(): VersionInfo {
  return {
    tskv: tskvVersion,
    etcdApi: etcdApiVersion,
    etcdCluster: etcdClusterVersion,
    bun: Bun.version,
    bunRevision: Bun.revision,
    os: process.platform,
    arch: process.arch,
  }
}

/** In the shape of `etcd --version`. */
export function versionText(info: VersionInfo = versionInfo()): string {
  return [
    `tskv Version: ${info.tskv}`,
    `etcd API Version: ${info.etcdApi}`,
    `Bun Version: ${info.bun} (${info.bunRevision.slice(0, 12)})`,
    `OS/Arch: ${info.os}/${info.arch}`,
    "",
  ].join("\n")
}
