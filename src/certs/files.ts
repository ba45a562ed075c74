// Writing certificates and keys: keys are created 0600 (never world-readable,
// not even for a moment), certificates 0644; both written to a temp file and
// renamed so a reader (or the TLS reloader) never sees half a file.

import { chmodSync, closeSync, fsyncSync, openSync, renameSync, writeSync } from "node:fs"

export function writeFileAtomic(path: string, text: string, mode: number): void {
  const temp = `${path}.tmp-${process.pid}-${Date.now()}`
  const fd = openSync(temp, "w", mode)
  try {
    writeSync(fd, text)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  chmodSync(temp, mode)
  renameSync(temp, path)
}

export function writePemFiles(files: { certFile: string; keyFile: string; certPem: string; keyPem: string }): void {
  writeFileAtomic(files.keyFile, files.keyPem, 0o600)
  writeFileAtomic(files.certFile, files.certPem, 0o644)
}
