// bcrypt password hashes (Bun.password). As in etcd 3.5+, the API layer hashes
// a new password before proposing it, so the apply only stores the hash and
// every member stores the same bytes; checking a password at Authenticate is
// also done before raft, on the member that received the request.

export const BCRYPT_COST_MIN = 4
export const BCRYPT_COST_MAX = 31
export const BCRYPT_COST_DEFAULT = 10

/** etcd's rule: a cost outside 4..31 falls back to the default (10). */
export function normalizeBcryptCost(cost: number): number {
  return Number.isInteger(cost) && cost >= BCRYPT_COST_MIN && cost <= BCRYPT_COST_MAX ? cost : BCRYPT_COST_DEFAULT
}

// Bun refuses to hash "", which etcd accepts; the empty password is hashed as
// one NUL character instead (so "\0" and "" are the same password).
const nonEmpty = (password: string): string => (password === "" ? "\0" : password)

export function hashPassword(password: string, cost: number): Promise<string> {
  return Bun.password.hash(nonEmpty(password), { algorithm: "bcrypt", cost: normalizeBcryptCost(cost) })
}

export function hashPasswordSync(password: string, cost: number): string {
  return Bun.password.hashSync(nonEmpty(password), { algorithm: "bcrypt", cost: normalizeBcryptCost(cost) })
}

/** False for a wrong password and for a hash that is not one (never throws on bad input). */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  if (!hash.startsWith("$2")) return false
  try {
    return await Bun.password.verify(nonEmpty(password), hash, "bcrypt")
  } catch {
    return false
  }
}
