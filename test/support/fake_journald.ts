// journald stand-in: a DatagramSink bound in a temp dir, and a command run in a
// private mount namespace where that dir is mounted over /run/systemd/journal
// (the native socket's path is fixed). Needs root (unshare, mount: util-linux).
import { spawn, type Subprocess } from "bun"
import { mkdirSync } from "node:fs"
import { join } from "node:path"
import { DatagramSink } from "./datagram_sink"
import { tempDir } from "./tmp"

export class FakeJournald {
  readonly dir = join(tempDir("journald-").path, "journal")
  readonly sink: DatagramSink

  constructor() {
    mkdirSync(this.dir)
    this.sink = new DatagramSink(join(this.dir, "socket"))
  }

  /** Spawns argv where /run/systemd/journal/socket is this journald (stdout and stderr piped). */
  spawn(argv: string[], env: Record<string, string | undefined> = process.env): Subprocess<"ignore", "pipe", "pipe"> {
    const script = `mount -t tmpfs tmpfs /run/systemd && mkdir /run/systemd/journal && mount --bind "$1" /run/systemd/journal && shift && exec "$@"`
    return spawn(["unshare", "--mount", "sh", "-c", script, "sh", this.dir, ...argv], { stdio: ["ignore", "pipe", "pipe"], env })
  }

  close(): void {
    this.sink.close()
  }
}
