// Invariant checks that stay on in production: a member that stops is better
// than one that serves corrupt data. One condition per call.

export class AssertionError extends Error {
  override readonly name = "AssertionError"
}

export function assert(condition: unknown, message: string | (() => string) = "assertion failed"): asserts condition {
  if (!condition) {
    throw new AssertionError(typeof message === "function" ? message() : message)
  }
}

export function unreachable(value: never, what = "value"): never {
  throw new AssertionError(`unexpected ${what}: ${String(value)}`)
}

/** Narrows a number to a safe, non-negative integer (terms, indexes, revisions). */
export function assertIndex(value: number, what: string): void {
  assert(Number.isSafeInteger(value) && value >= 0, () => `${what} must be a non-negative safe integer, got ${value}`)
}
