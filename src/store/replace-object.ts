import { open, rename } from "node:fs/promises";
import { dirname, resolve, sep } from "node:path";
import { LocalStore } from "./local.ts";
import { S3Store } from "./s3.ts";
import { copyObjectInBucket, PartCopyUnsupported } from "./s3-part-copy.ts";
import type { Retention, Store } from "./store.ts";

/** How `replaceObject` moved the object. */
export type ReplaceMethod = "rename" | "server-side copy" | "streamed copy";

/**
 * Moves the object `from` over `to` (replacing it) in one step that readers see whole: a rename (then the
 * directory fsynced) in a directory, a server-side copy then the removal of `from` on S3, a streamed copy where
 * the service has no server-side copy. `owner` is kept on a streamed copy (S3 metadata). `retention` (S3 Object
 * Lock: the lock of the object being replaced) locks the new version in the same request; `from` is never locked,
 * so removing it (by version id on a lock bucket) cannot fail on a lock.
 */
export async function replaceObject(
  store: Store,
  from: string,
  to: string,
  options: {
    owner?: string;
    signal?: AbortSignal;
    retention?: Retention;
    onStreamed?: (why: string) => void;
  } = {},
): Promise<ReplaceMethod> {
  if (store instanceof LocalStore) {
    const source = inside(store.root, from);
    const target = inside(store.root, to);
    await rename(source, target);
    const dir = await open(dirname(target), "r");
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
    return "rename";
  }
  if (store instanceof S3Store) {
    try {
      await copyObjectInBucket(store, from, to, options.signal, options.retention);
      await store.delete(from);
      return "server-side copy";
    } catch (err) {
      if (!(err instanceof PartCopyUnsupported)) throw err;
      options.onStreamed?.(err.message);
    }
  }
  await store.put(to, await store.get(from, options.signal ? { signal: options.signal } : {}), {
    contentType: "application/octet-stream",
    ...(options.owner ? { owner: options.owner } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.retention ? { retention: options.retention } : {}),
  });
  await store.delete(from);
  return "streamed copy";
}

function inside(root: string, key: string): string {
  const p = resolve(root, key);
  if (!p.startsWith(root + sep)) throw new Error(`key ${key} leaves the store directory`);
  return p;
}
