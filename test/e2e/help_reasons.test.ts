// Every flag tskv refuses says why, in one line of `tskv --help` ("Not built: ...").
// (--cors, --grpc-keepalive-* and --metrics are being built in other rooms this session.)

import { expect, test } from "bun:test"
import { runToExit } from "../integration/member_support"

const beingBuilt = new Set(["cors", "grpc-keepalive-interval", "grpc-keepalive-timeout", "metrics"])

test("tskv --help gives a one-line reason under each flag marked (not supported yet)", () => {
  const help = runToExit(["--help"])
  expect(help.code).toBe(0)
  const lines = help.stdout.split("\n")
  const refused = lines.flatMap((line, i) => {
    const m = /^ {2}--([a-z0-9-]+)[ ,].*\(not supported yet\)$/.exec(line)
    return m ? [{ flag: m[1]!, reason: lines[i + 1] ?? "" }] : []
  })
  expect(refused.length).toBeGreaterThan(40)
  for (const { flag, reason } of refused) {
    if (beingBuilt.has(flag)) continue
    expect({ flag, reason: /^ {4}\S.* Not built: \S.*[.]$/.test(reason) }).toEqual({ flag, reason: true })
  }
  // The flags are still refused unless given their default.
  expect(runToExit(["--discovery-srv=example.com"])).toEqual({ code: 2, stdout: "", stderr: "--discovery-srv is not supported yet\n" })
  expect(runToExit(["--enable-pprof"])).toEqual({ code: 2, stdout: "", stderr: "--enable-pprof is not supported yet\n" })
})
