import { expect, test } from "bun:test"
import { createLogger } from "./logger"

test("createLogger({ format: 'console' }) writes zap's console encoding: ts, level, msg, then the fields as JSON", () => {
  const lines: string[] = []
  const logger = createLogger({ format: "console", write: (l) => lines.push(l), fields: { name: "n1" } })
  logger.warn("slow fdatasync", { "took-ms": 120 })
  createLogger({ format: "console", write: (l) => lines.push(l) }).info("bare")
  expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\twarn\tslow fdatasync\t\{"name":"n1","took-ms":120\}\n$/)
  expect(lines[1]).toMatch(/^\S+\tinfo\tbare\n$/)
})

test("createLogger() writes one JSON object a line by default", () => {
  const lines: string[] = []
  createLogger({ write: (l) => lines.push(l) }).error("boom", { id: 10n })
  expect(JSON.parse(lines[0]!)).toMatchObject({ level: "error", msg: "boom", id: "a" })
})
