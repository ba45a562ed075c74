import { expect, test } from "bun:test"
import { rmSync } from "node:fs"
import { join } from "node:path"
import { tempDir } from "../../test/support/tmp"
import { journalEntry, openJournalWriter } from "./journald"
import { UnixDatagramReceiver } from "./unix_datagram"
import { parseJournalEntry } from "../../test/support/journal_entry"

test("journalEntry() sends the JSON line as MESSAGE with the syslog priority of its level", () => {
  const line = JSON.stringify({ level: "warn", ts: "t", msg: "slow fdatasync" }) + "\n"
  expect(parseJournalEntry(journalEntry(line, "tskv"))).toEqual({
    MESSAGE: line.trimEnd(),
    PRIORITY: "4",
    SYSLOG_IDENTIFIER: "tskv",
  })
  const priorities = ["debug", "info", "error", "fatal"].map((level) => parseJournalEntry(journalEntry(JSON.stringify({ level }), "x")).PRIORITY)
  expect(priorities).toEqual(["7", "6", "3", "2"])
})

test("journalEntry() reads the level of a --log-format=console line", () => {
  expect(parseJournalEntry(journalEntry("2026-01-01T00:00:00.000Z\terror\tboom\n", "tskv")).PRIORITY).toBe("3")
})

test("journalEntry() uses the length-prefixed form for a value with a newline", () => {
  const line = JSON.stringify({ level: "info", msg: "a" }).replace('"a"', '"a\nb"')
  const bytes = journalEntry(line, "tskv")
  expect(new TextDecoder().decode(bytes.subarray(0, 8))).toBe("MESSAGE\n")
  expect(parseJournalEntry(bytes).MESSAGE).toBe(line)
})

test("openJournalWriter() throws when journald is absent, and falls back per line when it goes away", () => {
  const dir = tempDir("journal-").path
  const path = join(dir, "socket")
  expect(() => openJournalWriter({ identifier: "tskv", fallback: () => {}, path })).toThrow(`dial unixgram ${path}: connect: no such file or directory`)
  const journal = new UnixDatagramReceiver(path)
  const fellBack: string[] = []
  const write = openJournalWriter({ identifier: "tskv", fallback: (l) => fellBack.push(l), path })
  write('{"level":"info","msg":"one"}\n')
  expect(parseJournalEntry(journal.receive() ?? new Uint8Array()).MESSAGE).toBe('{"level":"info","msg":"one"}')
  journal.close()
  rmSync(path)
  write('{"level":"info","msg":"two"}\n')
  expect(fellBack).toEqual(['{"level":"info","msg":"two"}\n'])
})
