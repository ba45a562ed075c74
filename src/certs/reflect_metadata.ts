// @peculiar/x509 resolves its services through tsyringe, which requires the
// Reflect metadata API at load time (normally from the reflect-metadata
// package, not a dependency here). This is the small subset tsyringe calls:
// defineMetadata, getMetadata, getOwnMetadata, hasMetadata, metadata.
// Import this module before "@peculiar/x509".

type MetadataKey = unknown
type Target = object
type Property = string | symbol | undefined

const store = new WeakMap<Target, Map<Property, Map<MetadataKey, unknown>>>()

function table(target: Target, property: Property, create: boolean): Map<MetadataKey, unknown> | undefined {
  let byProperty = store.get(target)
  if (byProperty === undefined) {
    if (!create) return undefined
    byProperty = new Map()
    store.set(target, byProperty)
  }
  let entries = byProperty.get(property)
  if (entries === undefined && create) {
    entries = new Map()
    byProperty.set(property, entries)
  }
  return entries
}

function getOwnMetadata(key: MetadataKey, target: Target, property?: Property): unknown {
  return table(target, property, false)?.get(key)
}

function getMetadata(key: MetadataKey, target: Target, property?: Property): unknown {
  for (let t: Target | null = target; t !== null; t = Object.getPrototypeOf(t) as Target | null) {
    const entries = table(t, property, false)
    if (entries?.has(key) === true) return entries.get(key)
  }
  return undefined
}

const api = {
  defineMetadata(key: MetadataKey, value: unknown, target: Target, property?: Property): void {
    table(target, property, true)?.set(key, value)
  },
  getOwnMetadata,
  getMetadata,
  hasOwnMetadata: (key: MetadataKey, target: Target, property?: Property): boolean =>
    table(target, property, false)?.has(key) === true,
  hasMetadata: (key: MetadataKey, target: Target, property?: Property): boolean =>
    getMetadata(key, target, property) !== undefined,
  metadata:
    (key: MetadataKey, value: unknown) =>
    (target: Target, property?: Property): void => {
      table(target, property, true)?.set(key, value)
    },
}

const reflect = Reflect as unknown as Record<string, unknown>
for (const [name, fn] of Object.entries(api)) {
  if (typeof reflect[name] !== "function") reflect[name] = fn
}

export {}
