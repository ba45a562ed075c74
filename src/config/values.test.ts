import { describe, expect, test } from "bun:test"
import { formatDuration, parseBool, parseDuration, parseUint, parseUrl, parseUrls, splitList } from "./values"

const value = <T>(parsed: { ok: true; value: T } | { ok: false; expected: string }): T => {
  if (!parsed.ok) throw new Error(parsed.expected)
  return parsed.value
}

describe("parseDuration()", () => {
  const cases: [string, number][] = [
    ["0", 0],
    ["100ms", 100],
    ["5s", 5000],
    ["1.5s", 1500],
    ["2h", 7_200_000],
    ["1h30m", 5_400_000],
    ["1m0.5s", 60_500],
    ["500us", 0.5],
    ["20000000ns", 20],
    ["-1s", -1000],
  ]
  for (const [text, ms] of cases) test(`"${text}" is ${ms} ms (Go's time.ParseDuration)`, () => expect(value(parseDuration(text))).toBeCloseTo(ms, 9))
  for (const text of ["", "5", "s", "1d", "1.s.", "five seconds", "1h 30m"]) {
    test(`"${text}" is refused`, () => expect(parseDuration(text).ok).toBe(false))
  }
})

test("formatDuration() prints like Go's Duration.String()", () => {
  expect([0, 100, 1000, 5_400_000, 600_000, 0.5].map(formatDuration)).toEqual(["0s", "100ms", "1s", "1h30m0s", "10m0s", "500µs"])
})

test("parseBool() takes Go's strconv.ParseBool words only", () => {
  for (const t of ["1", "t", "T", "true", "TRUE", "True"]) expect(value(parseBool(t))).toBe(true)
  for (const f of ["0", "f", "F", "false", "FALSE", "False"]) expect(value(parseBool(f))).toBe(false)
  for (const bad of ["yes", "on", "", "tRuE"]) expect(parseBool(bad).ok).toBe(false)
})

test("parseUint() refuses signs, fractions and values above the maximum", () => {
  expect(value(parseUint("0"))).toBe(0)
  expect(value(parseUint("4294967295", 4294967295))).toBe(4294967295)
  for (const bad of ["-1", "1.5", "+3", "", "1e3", "4294967296"]) expect(parseUint(bad, 4294967295).ok).toBe(false)
})

describe("parseUrl() / parseUrls()", () => {
  test("keeps scheme, host and port as etcd prints them", () => {
    expect(value(parseUrl("http://127.0.0.1:2379"))).toEqual({ text: "http://127.0.0.1:2379", scheme: "http", host: "127.0.0.1", port: 2379 })
    expect(value(parseUrl("HTTPS://[::1]:2379/"))).toEqual({ text: "https://[::1]:2379", scheme: "https", host: "::1", port: 2379 })
    expect(value(parseUrl("http://:2379"))).toEqual({ text: "http://:2379", scheme: "http", host: "", port: 2379 })
    expect(value(parseUrl("https://etcd.example:443"))).toMatchObject({ host: "etcd.example", port: 443 })
  })

  test("sorts and de-duplicates a list, trimming blanks", () => {
    expect(value(parseUrls(" http://b:1, http://a:1,http://b:1 ")).map((u) => u.text)).toEqual(["http://a:1", "http://b:1"])
  })

  test("refuses what etcd refuses, with its words", () => {
    expect(parseUrl("10.0.0.1:2379")).toEqual({ ok: false, expected: "URL scheme must be http or https: 10.0.0.1:2379" })
    expect(parseUrl("http://a:99999")).toEqual({ ok: false, expected: "URL port must be between 0 and 65535: http://a:99999" })
    expect(parseUrl("http://a:1?x=1")).toEqual({ ok: false, expected: "URL must not contain a path: http://a:1?x=1" })
    expect(parseUrls("")).toEqual({ ok: false, expected: "expected a comma-separated list of URLs" })
  })
})

test("splitList() drops empty items", () => {
  expect(splitList("a, b,,c ,")).toEqual(["a", "b", "c"])
  expect(splitList("")).toEqual([])
})
