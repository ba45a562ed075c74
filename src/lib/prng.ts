// A small seeded PRNG (xoshiro128**), so that raft's randomized election
// timeouts and every simulation replay exactly from a seed.

export interface Prng {
  /** Uniform float in [0, 1). */
  next(): number
  /** Uniform integer in [0, n). */
  int(n: number): number
}

export function seededPrng(seed: number): Prng {
  // splitmix32 to spread the seed over the 128-bit state.
  let x = seed >>> 0
  const split = (): number => {
    x = (x + 0x9e3779b9) >>> 0
    let z = x
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
    return (z ^ (z >>> 16)) >>> 0
  }
  let a = split(), b = split(), c = split(), d = split()
  const nextU32 = (): number => {
    const result = Math.imul(rotl(Math.imul(b, 5) >>> 0, 7), 9) >>> 0
    const t = (b << 9) >>> 0
    c ^= a; d ^= b; b ^= c; a ^= d
    c ^= t
    d = rotl(d, 11)
    return result
  }
  return {
    next: () => nextU32() / 0x1_0000_0000,
    int: (n) => Math.floor((nextU32() / 0x1_0000_0000) * n),
  }
}

function rotl(v: number, k: number): number {
  return ((v << k) | (v >>> (32 - k))) >>> 0
}

/** A PRNG seeded from the OS, for production. */
export function randomPrng(): Prng {
  const seed = crypto.getRandomValues(new Uint32Array(1))[0] ?? 1
  return seededPrng(seed)
}
