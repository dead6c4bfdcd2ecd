import type { Store } from "./store.ts";

/**
 * A store that does what `inner` does, except for the methods in `overrides`: for wrappers that watch or count
 * one operation (the failure classifier's upload watch, verify's byte count) without restating the others.
 */
export function withOverrides(inner: Store, overrides: Partial<Omit<Store, "location">>): Store {
  return {
    location: inner.location,
    put: (key, body, options) => inner.put(key, body, options),
    get: (key, options) => inner.get(key, options),
    stat: (key) => inner.stat(key),
    list: (prefix) => inner.list(prefix),
    delete: (key) => inner.delete(key),
    leftovers: (prefix) => inner.leftovers(prefix),
    removeLeftover: (leftover) => inner.removeLeftover(leftover),
    ...(inner.retention ? { retention: (key: string) => inner.retention!(key) } : {}),
    ...(inner.prepare ? { prepare: () => inner.prepare!() } : {}),
    ...overrides,
  };
}
