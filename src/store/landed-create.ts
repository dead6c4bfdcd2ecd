import { AlreadyExistsError, type PutResult, type Store } from "./store.ts";

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

/**
 * The outcome of an exclusive create the service refused because the key is taken: a success when it is this
 * put's own earlier try (only a put with an owner id can tell), `AlreadyExistsError` otherwise.
 */
export async function settleRefusedCreate(
  store: Pick<Store, "stat" | "location">,
  key: string,
  owner: string | undefined,
  size: number,
): Promise<PutResult> {
  if (owner && (await createLanded(store, key, owner, size))) return { size, exclusive: true };
  throw new AlreadyExistsError(key, store.location);
}
