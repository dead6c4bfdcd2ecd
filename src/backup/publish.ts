import { Readable } from "node:stream";
import { PENDING_SUFFIX } from "../catalog/catalog.ts";
import { type Manifest, serializeManifest } from "../catalog/manifest.ts";
import { manifestKey } from "../catalog/names.ts";
import type { Store } from "../store/store.ts";

export interface PublishOptions {
  store: Store;
  key: string;
  started: Date;
  /** Opens the object's content; called once the pending marker is in place. */
  openBody: () => Readable;
  /** Builds the manifest once the object is stored (may throw: the object is then removed). */
  makeManifest: () => Manifest;
  signal?: AbortSignal;
  /** Releases what the caller opened before (a source stream) when publishing fails before the body runs. */
  abandon?: () => void;
}

/**
 * Publishes one backup with the discipline every kind of backup follows, so that nothing half-done ever
 * looks complete:
 * 1. refuse to overwrite an existing object of that name;
 * 2. write `<key>.pending`, which tells `list` and `prune` that an object without manifest is our
 *    unfinished work and not a backup another tool wrote;
 * 3. store the object (atomically: the store never shows a partial object);
 * 4. write the manifest `<key>.json` last; if that fails, remove the object again;
 * 5. remove the marker.
 * On failure everything written is removed (best effort) and the error is rethrown.
 */
export async function publishBackup(
  options: PublishOptions,
): Promise<{ manifestKey: string; manifest: Manifest }> {
  const { store, key, signal } = options;
  // The source is already streaming: every failure before the body is taken must abandon it, or its
  // connection keeps the process alive (a stat refused by S3 hung `save` on a multi-MiB snapshot).
  let existing: Awaited<ReturnType<typeof store.stat>>;
  try {
    existing = await store.stat(key);
  } catch (err) {
    options.abandon?.();
    throw err;
  }
  if (existing) {
    options.abandon?.();
    throw new Error(`a backup named ${key} already exists in ${store.location}; not overwriting it`);
  }
  const marker = `${key}${PENDING_SUFFIX}`;
  try {
    await store.put(
      marker,
      textStream(JSON.stringify({ started: options.started.toISOString(), pid: process.pid })),
    );
  } catch (err) {
    options.abandon?.();
    throw new Error(`cannot write to ${store.location}`, { cause: err });
  }
  const cleanup = async (withObject: boolean) => {
    if (withObject) await store.delete(key).catch(() => {});
    await store.delete(marker).catch(() => {});
  };

  const body = options.openBody();
  try {
    await store.put(key, body, { ...(signal ? { signal } : {}), contentType: "application/octet-stream" });
  } catch (err) {
    body.destroy();
    await cleanup(false);
    throw err;
  }

  let manifest: Manifest;
  const mkey = manifestKey(key);
  try {
    manifest = options.makeManifest();
    await store.put(mkey, textStream(serializeManifest(manifest)), {
      ...(signal ? { signal } : {}),
      contentType: "application/json",
    });
  } catch (err) {
    await cleanup(true);
    throw new Error("write manifest", { cause: err });
  }
  await store.delete(marker).catch(() => {});
  return { manifestKey: mkey, manifest };
}

function textStream(text: string): Readable {
  return Readable.from([Buffer.from(text)]);
}
