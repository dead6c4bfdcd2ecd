import type { Store } from "./store.ts";

/**
 * Whether a create that was refused because the key is taken had in fact landed on an earlier try: the object
 * there carries this put's owner id (random per run) and has its size. A retried request whose first try reached
 * the service but whose answer was lost sees its own object, which is a success, not a conflict.
 */
export async function createLanded(
  store: Pick<Store, "stat">,
  key: string,
  owner: string,
  size: number,
): Promise<boolean> {
  const existing = await store.stat(key).catch(() => null);
  return existing?.owner === owner && existing.size === size;
}
