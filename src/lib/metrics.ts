// A small Prometheus registry: counters, gauges (set or computed at scrape
// time), histograms, labels, and the text exposition format 0.0.4 as
// client_golang writes it (families sorted by name, floats in Go's %g form).
// inc/set/observe on a child touch only numbers: take the child once with
// labels(...) and keep it, so the hot path allocates nothing.

import { readdirSync, readFileSync } from "node:fs"

export type MetricType = "counter" | "gauge" | "histogram"

export interface MetricOptions {
  name: string
  help: string
  labelNames?: readonly string[]
}

export interface GaugeOptions extends MetricOptions {
  /** Computed at scrape time (unlabelled counters and gauges only). */
  collect?: () => number
}

export interface HistogramOptions extends MetricOptions {
  /** Upper bounds, ascending; +Inf is implicit. */
  buckets?: readonly number[]
}

/** Prometheus' DefBuckets. */
export const DEFAULT_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/** client_golang's ExponentialBuckets(start, factor, count). */
export function exponentialBuckets(start: number, factor: number, count: number): number[] {
  const buckets: number[] = []
  for (let i = 0, b = start; i < count; i++, b *= factor) buckets.push(b)
  return buckets
}

/** etcd's wal fsync and backend commit buckets: 1 ms .. 8.192 s. */
export const ETCD_DISK_BUCKETS: readonly number[] = exponentialBuckets(0.001, 2, 14)

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/

export class CounterChild {
  value = 0
  inc(amount = 1): void {
    this.value += amount
  }
}

export class GaugeChild {
  value = 0
  set(value: number): void {
    this.value = value
  }
  inc(amount = 1): void {
    this.value += amount
  }
  dec(amount = 1): void {
    this.value -= amount
  }
}

export class HistogramChild {
  /** counts[i] = observations <= bounds[i] (not cumulative); the last slot is +Inf. */
  readonly counts: Float64Array
  sum = 0
  count = 0
  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1)
  }
  observe(value: number): void {
    const bounds = this.bounds
    let i = 0
    while (i < bounds.length && value > bounds[i]!) i++
    this.counts[i]!++
    this.sum += value
    this.count++
  }
}

type Child = CounterChild | GaugeChild | HistogramChild

abstract class Family<C extends Child> {
  readonly name: string
  readonly help: string
  readonly labelNames: readonly string[]
  /** Rendered label sets (`{a="x",b="y"}` or "") to children. */
  protected readonly children = new Map<string, C>()
  private unlabelled: C | undefined

  constructor(
    readonly type: MetricType,
    options: MetricOptions,
  ) {
    if (!NAME_RE.test(options.name)) throw new Error(`invalid metric name ${JSON.stringify(options.name)}`)
    for (const label of options.labelNames ?? []) {
      if (!LABEL_RE.test(label) || label.startsWith("__")) throw new Error(`invalid label name ${JSON.stringify(label)}`)
    }
    this.name = options.name
    this.help = options.help
    this.labelNames = options.labelNames ?? []
  }

  protected abstract create(): C

  /** The child for these label values (in labelNames order); keep it for the hot path. */
  labels(...values: string[]): C {
    if (values.length !== this.labelNames.length) {
      throw new Error(`${this.name}: expected ${this.labelNames.length} label values, got ${values.length}`)
    }
    const key = renderLabels(this.labelNames, values)
    let child = this.children.get(key)
    if (child === undefined) {
      child = this.create()
      this.children.set(key, child)
    }
    return child
  }

  /** The child without labels (a family declared without labelNames). */
  protected self(): C {
    if (this.unlabelled === undefined) {
      if (this.labelNames.length !== 0) throw new Error(`${this.name} has labels; use labels(...)`)
      this.unlabelled = this.labels()
    }
    return this.unlabelled
  }

  /** Forgets every labelled child (e.g. a peer that left). */
  reset(): void {
    this.children.clear()
    this.unlabelled = undefined
  }

  expose(out: string[]): void {
    // as client_golang: a labelled family without children writes nothing at all
    if (this.children.size === 0) return
    out.push(`# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} ${this.type}\n`)
    const keys = [...this.children.keys()].sort()
    for (const key of keys) this.exposeChild(out, key, this.children.get(key)!)
  }

  protected abstract exposeChild(out: string[], labels: string, child: C): void
}

export class Counter extends Family<CounterChild> {
  private readonly collect: (() => number) | undefined
  constructor(options: GaugeOptions) {
    super("counter", options)
    this.collect = options.collect
    if (this.collect !== undefined && this.labelNames.length !== 0) throw new Error(`${this.name}: callback counters take no labels`)
    if (this.labelNames.length === 0) this.self()
  }
  protected create(): CounterChild {
    return new CounterChild()
  }
  inc(amount = 1): void {
    this.self().inc(amount)
  }
  get value(): number {
    return this.collect !== undefined ? this.collect() : this.self().value
  }
  protected exposeChild(out: string[], labels: string, child: CounterChild): void {
    const value = this.collect !== undefined ? this.collect() : child.value
    out.push(`${this.name}${labels} ${formatFloat(value)}\n`)
  }
}

export class Gauge extends Family<GaugeChild> {
  private readonly collect: (() => number) | undefined
  constructor(options: GaugeOptions) {
    super("gauge", options)
    this.collect = options.collect
    if (this.collect !== undefined && this.labelNames.length !== 0) throw new Error(`${this.name}: callback gauges take no labels`)
    if (this.labelNames.length === 0) this.self()
  }
  protected create(): GaugeChild {
    return new GaugeChild()
  }
  set(value: number): void {
    this.self().set(value)
  }
  inc(amount = 1): void {
    this.self().inc(amount)
  }
  dec(amount = 1): void {
    this.self().dec(amount)
  }
  get value(): number {
    return this.collect !== undefined ? this.collect() : this.self().value
  }
  protected exposeChild(out: string[], labels: string, child: GaugeChild): void {
    const value = this.collect !== undefined ? this.collect() : child.value
    out.push(`${this.name}${labels} ${formatFloat(value)}\n`)
  }
}

export class Histogram extends Family<HistogramChild> {
  readonly buckets: readonly number[]
  private readonly leValues: readonly string[]
  constructor(options: HistogramOptions) {
    super("histogram", options)
    if (this.labelNames.includes("le")) throw new Error(`${this.name}: "le" is reserved in histograms`)
    const buckets = options.buckets ?? DEFAULT_BUCKETS
    for (let i = 1; i < buckets.length; i++) {
      if (!(buckets[i]! > buckets[i - 1]!)) throw new Error(`${this.name}: buckets must increase`)
    }
    this.buckets = buckets
    this.leValues = [...buckets.map(formatFloat), "+Inf"]
    if (this.labelNames.length === 0) this.self()
  }
  protected create(): HistogramChild {
    return new HistogramChild(this.buckets)
  }
  observe(value: number): void {
    this.self().observe(value)
  }
  protected exposeChild(out: string[], labels: string, child: HistogramChild): void {
    const prefix = labels === "" ? "{" : `${labels.slice(0, -1)},`
    let cumulative = 0
    for (let i = 0; i < this.leValues.length; i++) {
      cumulative += child.counts[i]!
      out.push(`${this.name}_bucket${prefix}le="${this.leValues[i]}"} ${formatFloat(cumulative)}\n`)
    }
    out.push(`${this.name}_sum${labels} ${formatFloat(child.sum)}\n`)
    out.push(`${this.name}_count${labels} ${formatFloat(child.count)}\n`)
  }
}

type AnyFamily = Counter | Gauge | Histogram

export class Registry {
  private readonly families = new Map<string, AnyFamily>()
  private readonly beforeExpose: (() => void)[] = []

  /** Runs `hook` before every exposition: for labelled series mirrored from another room's counters. */
  onExpose(hook: () => void): void {
    this.beforeExpose.push(hook)
  }

  counter(options: GaugeOptions): Counter {
    return this.add(new Counter(options))
  }

  gauge(options: GaugeOptions): Gauge {
    return this.add(new Gauge(options))
  }

  histogram(options: HistogramOptions): Histogram {
    return this.add(new Histogram(options))
  }

  get(name: string): AnyFamily | undefined {
    return this.families.get(name)
  }

  /** The text exposition format 0.0.4 (Content-Type `text/plain; version=0.0.4; charset=utf-8`). */
  expose(): string {
    for (const hook of this.beforeExpose) hook()
    const out: string[] = []
    const names = [...this.families.keys()].sort()
    for (const name of names) this.families.get(name)!.expose(out)
    return out.join("")
  }

  private add<F extends AnyFamily>(family: F): F {
    if (this.families.has(family.name)) throw new Error(`metric ${family.name} registered twice`)
    this.families.set(family.name, family)
    return family
  }
}

export const EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

/** Registers process_* gauges as client_golang's process collector does (Linux /proc). */
export function registerProcessMetrics(registry: Registry, options: { startTimeSeconds?: number } = {}): void {
  const startTimeSeconds = options.startTimeSeconds ?? Math.floor((Date.now() - performance.now()) / 1000)
  registry.counter({ name: "process_cpu_seconds_total", help: "Total user and system CPU time spent in seconds.", collect: cpuSeconds })
  registry.gauge({ name: "process_resident_memory_bytes", help: "Resident memory size in bytes.", collect: () => process.memoryUsage.rss() })
  registry.gauge({ name: "process_virtual_memory_bytes", help: "Virtual memory size in bytes.", collect: () => virtualMemoryBytes() })
  registry.gauge({ name: "process_open_fds", help: "Number of open file descriptors.", collect: () => openFds() })
  registry.gauge({ name: "process_max_fds", help: "Maximum number of open file descriptors.", collect: () => maxFds() })
  registry.gauge({ name: "process_start_time_seconds", help: "Start time of the process since unix epoch in seconds.", collect: () => startTimeSeconds })
  registry.gauge({ name: "process_virtual_memory_max_bytes", help: "Maximum amount of virtual memory available in bytes.", collect: () => limitOf("Max address space") })
}

function cpuSeconds(): number {
  const usage = process.cpuUsage()
  return (usage.user + usage.system) / 1e6
}

function openFds(): number {
  try {
    return readdirSync("/proc/self/fd").length
  } catch {
    return Number.NaN
  }
}

function maxFds(): number {
  return limitOf("Max open files")
}

/** The soft limit of one /proc/self/limits line; "unlimited" is 2^64 (Go's RLIM_INFINITY as a float, as client_golang reports it). */
function limitOf(name: string): number {
  try {
    const limits = readFileSync("/proc/self/limits", "utf8")
    const line = limits.split("\n").find((l) => l.startsWith(name))
    const soft = line?.slice(name.length).trim().split(/\s+/)[0]
    if (soft === "unlimited") return 2 ** 64
    return soft === undefined ? Number.NaN : Number(soft)
  } catch {
    return Number.NaN
  }
}

function virtualMemoryBytes(): number {
  try {
    const stat = readFileSync("/proc/self/stat", "utf8")
    // Fields after the command name "(...)"; vsize is field 23 overall, 21st after ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return Number(fields[20])
  } catch {
    return Number.NaN
  }
}

/** Go's strconv.FormatFloat(v, 'g', -1, 64) plus Prometheus' +Inf/-Inf/NaN. */
export function formatFloat(value: number): string {
  if (Number.isNaN(value)) return "NaN"
  if (value === Number.POSITIVE_INFINITY) return "+Inf"
  if (value === Number.NEGATIVE_INFINITY) return "-Inf"
  if (value === 0) return Object.is(value, -0) ? "-0" : "0"
  const exponential = value.toExponential() // shortest round-trip digits: "d.ddde+x"
  const at = exponential.indexOf("e")
  const exponent = Number(exponential.slice(at + 1))
  if (exponent < -4 || exponent >= 6) {
    const mantissa = exponential.slice(0, at)
    const sign = exponent < 0 ? "-" : "+"
    const digits = Math.abs(exponent) < 10 ? `0${Math.abs(exponent)}` : `${Math.abs(exponent)}`
    return `${mantissa}e${sign}${digits}`
  }
  return String(value)
}

/** `{a="x",b="y"}` with the pairs sorted by label name, as client_golang writes them. */
function renderLabels(names: readonly string[], values: readonly string[]): string {
  if (names.length === 0) return ""
  const order = names.map((_, i) => i).sort((a, b) => (names[a]! < names[b]! ? -1 : 1))
  let out = "{"
  for (const i of order) {
    if (out.length > 1) out += ","
    out += `${names[i]}="${escapeLabelValue(values[i]!)}"`
  }
  return out + "}"
}

export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === "\\" ? "\\\\" : c === '"' ? '\\"' : "\\n"))
}

function escapeHelp(help: string): string {
  return help.replace(/[\\\n]/g, (c) => (c === "\\" ? "\\\\" : "\\n"))
}
