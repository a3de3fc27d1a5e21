// The subset of the Reflect metadata API that tsyringe (used inside @peculiar/x509) requires at
// load time. We have no use for decorator metadata ourselves; this avoids a global polyfill
// dependency. Installed only when absent, so a real reflect-metadata loaded first wins.

type Key = string | symbol | undefined;
type MetadataMap = Map<unknown, unknown>;

const store = new WeakMap<object, Map<Key, MetadataMap>>();

function table(target: object, property: Key, create: boolean): MetadataMap | undefined {
  let byProperty = store.get(target);
  if (!byProperty) {
    if (!create) return undefined;
    byProperty = new Map();
    store.set(target, byProperty);
  }
  let map = byProperty.get(property);
  if (!map && create) {
    map = new Map();
    byProperty.set(property, map);
  }
  return map;
}

function getOwnMetadata(key: unknown, target: object, property?: Key): unknown {
  return table(target, property, false)?.get(key);
}

function hasOwnMetadata(key: unknown, target: object, property?: Key): boolean {
  return table(target, property, false)?.has(key) ?? false;
}

function getMetadata(key: unknown, target: object, property?: Key): unknown {
  // Metadata is inherited along the prototype chain, as in the reflect-metadata proposal.
  for (let t: object | null = target; t; t = Object.getPrototypeOf(t)) {
    if (hasOwnMetadata(key, t, property)) return getOwnMetadata(key, t, property);
  }
  return undefined;
}

function hasMetadata(key: unknown, target: object, property?: Key): boolean {
  for (let t: object | null = target; t; t = Object.getPrototypeOf(t)) {
    if (hasOwnMetadata(key, t, property)) return true;
  }
  return false;
}

function defineMetadata(key: unknown, value: unknown, target: object, property?: Key): void {
  table(target, property, true)!.set(key, value);
}

function metadata(key: unknown, value: unknown) {
  return (target: object, property?: Key): void => defineMetadata(key, value, target, property);
}

const reflect = Reflect as unknown as Record<string, unknown>;
if (typeof reflect.getMetadata !== "function") {
  Object.assign(reflect, {
    getOwnMetadata,
    hasOwnMetadata,
    getMetadata,
    hasMetadata,
    defineMetadata,
    metadata,
  });
}
