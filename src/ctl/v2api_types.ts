// What the v2-mode commands of `tskv ctl` share (v2api.ts, v2api_auth.ts).

import type { V2Client } from "./v2api_client"

/** etcdctl v2's exit codes. */
export const Exit = { success: 0, badArgs: 1, badConnection: 2, badAuth: 3, serverError: 4, clusterNotHealthy: 5 } as const

export type Spec = Record<string, { bool?: true; def: string; alias?: string; multi?: true }>

/** Ends the command with an exit code (the message was printed already). */
export class Exited extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`)
  }
}

export interface V2Ctx {
  client: V2Client
  output: string
  args: string[]
  flag(name: string): string
  /** Every value of a flag given more than once (urfave's StringSlice). */
  flags(name: string): string[]
  bool(name: string): boolean
}

export interface V2Command {
  flags: Spec
  run: (ctx: V2Ctx) => Promise<number | void>
}
