import { text } from "node:stream/consumers";
import { CONNECTION_FAILURE_CODES } from "./network-errors.ts";
import type { Store } from "./store.ts";

/** Reads of one small object, in all, when its connection keeps dropping mid-body. */
export const SMALL_OBJECT_READ_ATTEMPTS = 3;

/**
 * The whole of a small object (a manifest, a revision log's head, a save's claim, a rekey journal) as text.
 *
 * Stores retry a request whose connection failed before the service answered, but a body cut off after it began
 * (Node's `aborted`, ECONNRESET: the server or a proxy closed the connection mid-response) reached the caller as
 * a failed read, and a `list` or a `restore --at` failed with it. Such a read starts again from the request, up to
 * `SMALL_OBJECT_READ_ATTEMPTS` times in all; these objects are a few KiB, so reading one again costs nothing. A
 * failed request (the store's own retries spent), NotFoundError and every other error are thrown at once.
 */
export async function readSmallObject(store: Store, key: string): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    const body = await store.get(key);
    try {
      return await text(body);
    } catch (err) {
      if (attempt >= SMALL_OBJECT_READ_ATTEMPTS || !droppedMidBody(err)) throw err;
      body.destroy();
    }
  }
}

function droppedMidBody(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === "string" && CONNECTION_FAILURE_CODES.includes(code);
}
