// go-humanize's Bytes (SI units), as etcdctl prints sizes: "20 kB", "1.7 MB".

export function humanizeBytes(n: number): string {
  if (n < 10) return `${n} B`
  const sizes = ["B", "kB", "MB", "GB", "TB", "PB", "EB"]
  const e = Math.floor(Math.log(n) / Math.log(1000))
  const suffix = sizes[e] ?? "EB"
  const tenths = Math.floor((n / 1000 ** e) * 10 + 0.5)
  if (tenths < 100) return `${Math.floor(tenths / 10)}.${tenths % 10} ${suffix}`
  // %.0f of tenths/10: round half to even.
  let q = Math.floor(tenths / 10)
  const r = tenths % 10
  if (r > 5 || (r === 5 && q % 2 === 1)) q++
  return `${q} ${suffix}`
}
