import { describe, expect, test } from "bun:test"
import { goDuration, goQuote, humanizeBytes, jsonString, parseGoDuration, renderTable } from "./go_fmt"

describe("go_fmt", () => {
  test("goQuote() escapes as strconv.Quote: controls, quotes, invalid UTF-8, keeps printable unicode", () => {
    expect(goQuote('a"b\\c')).toBe('"a\\"b\\\\c"')
    expect(goQuote("tab\there\n")).toBe('"tab\\there\\n"')
    expect(goQuote(Uint8Array.of(0x00, 0xff, 0x41))).toBe('"\\x00\\xffA"')
    expect(goQuote("é€")).toBe('"é€"')
    expect(goQuote("\u2028")).toBe('"\\u2028"')
  })

  test("jsonString() escapes as encoding/json: HTML-safe, U+2028, invalid bytes as U+FFFD", () => {
    expect(jsonString("<a&b>")).toBe('"\\u003ca\\u0026b\\u003e"')
    expect(jsonString("\u2028\b")).toBe('"\\u2028\\u0008"')
    expect(jsonString(Uint8Array.of(0x61, 0xff))).toBe('"a\\ufffd"')
  })

  test("humanizeBytes() matches go-humanize Bytes, rounding %.0f half to even", () => {
    expect(humanizeBytes(5)).toBe("5 B")
    expect(humanizeBytes(20480)).toBe("20 kB")
    expect(humanizeBytes(1500)).toBe("1.5 kB")
    expect(humanizeBytes(25_000)).toBe("25 kB")
    expect(humanizeBytes(3_400_000)).toBe("3.4 MB")
  })

  test("goDuration() prints as time.Duration.String", () => {
    expect(goDuration(1_142_599)).toBe("1.142599ms")
    expect(goDuration(950_474)).toBe("950.474µs")
    expect(goDuration(2_000_000_000)).toBe("2s")
    expect(goDuration(61_500_000_000)).toBe("1m1.5s")
    expect(parseGoDuration("1m30s")).toBe(90_000)
    expect(parseGoDuration("500ms")).toBe(500)
    expect(parseGoDuration("5")).toBeUndefined()
  })

  test("renderTable() centres the upper-cased header and right-aligns cells", () => {
    expect(renderTable(["endpoint", "hash"], [["127.0.0.1:1", "42"]])).toBe(
      "+-------------+------+\n|  ENDPOINT   | HASH |\n+-------------+------+\n| 127.0.0.1:1 |   42 |\n+-------------+------+\n",
    )
  })
})
