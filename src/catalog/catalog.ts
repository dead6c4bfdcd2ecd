import { text } from "node:stream/consumers";
import { Hinted } from "../errors.ts";
import type { ObjectInfo, Store } from "../store/store.ts";
import { type Manifest, parseManifest } from "./manifest.ts";
import { type BackupName, parseBackupKey } from "./names.ts";

/** Suffix of the marker our tool writes before an upload and removes once the manifest is written. */
export const PENDING_SUFFIX = ".pending";

/**
 * - `complete`: our backup with its manifest;
 * - `unmanaged`: a backup without manifest that our tool did not start (talos-backup, by hand): usable;
 * - `incomplete`: our tool started it and never finished (object without manifest, or only the marker);
 * - `invalid`: the manifest exists but cannot be read (newer format, corrupted).
 */
export type BackupState = "complete" | "unmanaged" | "incomplete" | "invalid";

export interface CatalogEntry extends BackupName {
  state: BackupState;
  /** The stored object, absent when only a pending marker exists. */
  object?: ObjectInfo;
  manifest?: Manifest;
  /** Why the manifest could not be used, for `invalid`. */
  problem?: string;
}

/** Reads every backup in the store with its manifest, newest first. Manifests are fetched a few at a time. */
export async function listBackups(store: Store, options: { prefix?: string } = {}): Promise<CatalogEntry[]> {
  const objects = new Map<string, ObjectInfo>();
  const manifests = new Set<string>();
  const pending = new Map<string, ObjectInfo>();
  for await (const obj of store.list(options.prefix ?? "")) {
    if (obj.key.endsWith(".json")) manifests.add(obj.key.slice(0, -5));
    else if (obj.key.endsWith(PENDING_SUFFIX)) pending.set(obj.key.slice(0, -PENDING_SUFFIX.length), obj);
    else objects.set(obj.key, obj);
  }
  const entries: CatalogEntry[] = [];
  for (const key of new Set([...objects.keys(), ...pending.keys()])) {
    const name = parseBackupKey(key);
    if (!name) continue;
    const object = objects.get(key);
    if (!object) {
      entries.push({ ...name, state: "incomplete", problem: "upload started but no object was stored" });
    } else if (manifests.has(key)) {
      entries.push({ ...name, state: "complete", object });
    } else if (pending.has(key)) {
      entries.push({
        ...name,
        state: "incomplete",
        object,
        problem: "object stored but its manifest was never written",
      });
    } else {
      entries.push({ ...name, state: "unmanaged", object });
    }
  }
  await forEachLimited(
    entries.filter((e) => e.state === "complete"),
    8,
    async (entry) => {
      try {
        entry.manifest = await readManifest(store, entry.key);
      } catch (err) {
        entry.state = "invalid";
        entry.problem = (err as Error).message;
      }
    },
  );
  return entries.sort((a, b) => b.time.getTime() - a.time.getTime() || b.key.localeCompare(a.key));
}

/** Reads and validates the manifest of a backup. */
export async function readManifest(store: Store, key: string): Promise<Manifest> {
  const body = await store.get(`${key}.json`);
  return parseManifest(await text(body));
}

/** Entries that can be restored: complete ones and backups written by other tools. */
export function isUsable(entry: CatalogEntry): boolean {
  return entry.state === "complete" || entry.state === "unmanaged";
}

/**
 * Resolves what a user typed as BACKUP: `latest` (the newest usable snapshot, optionally before a time and
 * of one cluster) or a name as `list` prints it. Throws a one-line error when nothing matches.
 */
export async function resolveBackup(
  store: Store,
  ref: string,
  options: { before?: Date; cluster?: string; kind?: "snapshot" | "config" } = {},
): Promise<CatalogEntry> {
  const kind = options.kind ?? "snapshot";
  const entries = await listBackups(store);
  if (ref === "latest") {
    const found = entries.find(
      (e) =>
        e.kind === kind &&
        isUsable(e) &&
        (!options.cluster || e.cluster === options.cluster) &&
        (!options.before || e.time.getTime() < options.before.getTime()),
    );
    if (!found) {
      throw new Hinted(
        `no usable ${kind} backup in ${store.location}${options.cluster ? ` for cluster ${options.cluster}` : ""}`,
        "run `etcd-backup list` to see what is there",
      );
    }
    return found;
  }
  const found = entries.find((e) => e.key === ref || e.key.endsWith(`/${ref}`));
  if (!found) {
    throw new Hinted(
      `backup ${ref} not found in ${store.location}`,
      "run `etcd-backup list` to see the names",
    );
  }
  if (!isUsable(found)) {
    throw new Hinted(
      `backup ${ref} is ${found.state}: ${found.problem ?? ""}`.trim(),
      "pick another backup from `etcd-backup list`",
    );
  }
  return found;
}

async function forEachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]!);
  });
  await Promise.all(workers);
}
