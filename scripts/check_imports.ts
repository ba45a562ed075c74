// Keeps the arrows of ARCHITECTURE.md honest: each room may import only the
// rooms below it. Run in the suite (test/arch/imports.test.ts) and by hand:
// `bun scripts/check_imports.ts` prints every import against the flow.

import { readdirSync, readFileSync, statSync } from "node:fs"
import { join, relative, resolve } from "node:path"

/** Room -> rooms it may import (besides itself). Test files may also import test/ helpers. */
export const allowed: Record<string, readonly string[]> = {
  lib: [],
  pb: ["lib"],
  raft: ["lib"],
  wal: ["lib", "raft"],
  snap: ["lib", "raft"],
  backend: ["lib"],
  // the bbolt file format and etcd's layout in it
  bbolt: ["lib"],
  mvcc: ["lib", "backend", "pb"],
  lease: ["lib", "backend"],
  auth: ["lib", "backend", "pb"],
  v2store: ["lib", "backend"],
  config: ["lib", "certs"],
  certs: ["lib", "config"],
  peer: ["lib", "raft"],
  client: ["lib", "pb"],
  // HTTP/2 + gRPC server transport: a library that knows nothing of etcd
  h2grpc: ["lib"],
  server: ["lib", "raft", "wal", "snap", "backend", "mvcc", "lease", "auth", "config", "pb", "v2store"],
  // The composition of a running member: server + listeners + peers + TLS.
  member: ["lib", "raft", "server", "api", "h2grpc", "peer", "certs", "config", "pb"],
  // snapshot: Maintenance.Snapshot streams the etcd-format db of snapshot/etcd_export.ts
  api: ["lib", "pb", "h2grpc", "server", "mvcc", "auth", "lease", "config", "raft", "v2store", "snapshot"],
  // backend: defrag --data-dir rewrites a stopped member's db itself, as etcdctl does
  ctl: ["lib", "pb", "client", "config", "certs", "backend"],
  snapshot: ["lib", "pb", "client", "backend", "server", "raft", "wal", "snap", "config", "mvcc", "lease", "auth", "bbolt"],
  main: ["*"],
}

export interface Violation {
  file: string
  imported: string
  from: string
  to: string
}

function roomOf(srcRelative: string): string {
  const first = srcRelative.split("/")[0] ?? ""
  return first.endsWith(".ts") ? "main" : first
}

function* tsFiles(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) yield* tsFiles(path)
    else if (name.endsWith(".ts")) yield path
  }
}

export function checkImports(root: string): Violation[] {
  const src = resolve(root, "src")
  const violations: Violation[] = []
  for (const file of tsFiles(src)) {
    if (file.endsWith(".test.ts")) continue
    const from = roomOf(relative(src, file))
    const rules = allowed[from]
    const text = readFileSync(file, "utf8")
    for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)[^"'\n]*?from\s+["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g)) {
      const spec = m[1] ?? m[2]
      if (!spec || !spec.startsWith(".")) continue
      const target = resolve(file, "..", spec)
      const rel = relative(src, target)
      // product code never leans on test support (test/): what a test needs lives with the tests
      if (relative(resolve(root, "test"), target).split("/")[0] !== "..") {
        violations.push({ file: relative(root, file), imported: spec, from, to: "test" })
        continue
      }
      if (rel.startsWith("..")) continue
      const isDir = (() => {
        try {
          return statSync(target).isDirectory()
        } catch {
          return false
        }
      })()
      const to = isDir ? (rel.split("/")[0] ?? "") : roomOf(rel.endsWith(".ts") ? rel : `${rel}.ts`)
      if (to === from || rules === undefined || rules.includes("*") || rules.includes(to)) continue
      violations.push({ file: relative(root, file), imported: spec, from, to })
    }
  }
  return violations
}

if (import.meta.main) {
  const found = checkImports(resolve(import.meta.dir, ".."))
  for (const v of found) console.log(`${v.file}: ${v.from} -> ${v.to} (${v.imported})`)
  console.log(found.length === 0 ? "imports follow the room arrows" : `${found.length} imports against the arrows`)
  process.exit(found.length === 0 ? 0 : 1)
}
