// Preloaded into every `bun test` run (bunfig.toml): after the last test, kill
// any member a test left running and remove every temporary directory, so a run
// leaves neither processes nor gigabytes of data dirs behind.
import { afterAll } from "bun:test"
import { killAllMembers } from "./procs"
import { removeAllTempDirs } from "./tmp"

afterAll(async () => {
  await killAllMembers()
  removeAllTempDirs()
})
