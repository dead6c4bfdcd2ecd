import { Hinted } from "../errors.ts";
import { readSmallObject } from "../store/small-object.ts";
import {
  isNotFound,
  LeftoversUnsupported,
  NO_RETENTION,
  type ObjectInfo,
  type Retention,
  type Store,
} from "../store/store.ts";
import { type Manifest, parseManifest } from "./manifest.ts";
import { type BackupName, formatStamp, manifestKey, parseBackupKey } from "./names.ts";
import { manifestDuringRekey, REKEY_JOURNAL_SUFFIX, rekeyPartOf } from "./rekey-journal.ts";

/** Suffix of the marker our tool writes before an upload and removes once the manifest is written. */
export const PENDING_SUFFIX = ".pending";

/** Suffix of a backup's manifest, written beside it once the object is complete. */
const MANIFEST_SUFFIX = ".json";

/**
 * - `complete`: our backup with its manifest;
 * - `unmanaged`: a backup without manifest that our tool did not start (talos-backup, by hand): usable;
 * - `incomplete`: our unfinished or half-removed work: an object without manifest beside a `.pending` marker, a
 *   marker alone, a manifest whose object is gone, or a local store's temporary file;
 * - `invalid`: the manifest exists but cannot be read (newer format, corrupted).
 */
export type BackupState = "complete" | "unmanaged" | "incomplete" | "invalid";

export interface CatalogEntry extends BackupName {
  state: BackupState;
  /** The stored object (for a temporary file: that file), absent when only a marker or a manifest exists. */
  object?: ObjectInfo;
  manifest?: Manifest;
  /** The manifest as listed, whenever one exists (also for `invalid` and for a manifest without object). */
  manifestObject?: ObjectInfo;
  /** The `.pending` marker as listed, when one exists. */
  marker?: ObjectInfo;
  /** True for a local store's temporary file: `key` is the file's own name, the name fields its target's. */
  temporary?: boolean;
  /** Why the entry cannot be used, for `incomplete` and `invalid`. */
  problem?: string;
}

/**
 * Reads every backup in the store with its manifest, newest first (ties: complete before unmanaged, then by
 * name, so the order is stable). Manifests are fetched a few at a time. Temporary files of a local store whose
 * target is a backup's object, manifest or marker are listed as `incomplete` entries of their own.
 */
export async function listBackups(store: Store, options: { prefix?: string } = {}): Promise<CatalogEntry[]> {
  // A prune beside us may remove a manifest between our listing and our read of it. Such a read starts over from a
  // new listing (a few times), so a backup being deleted is never reported as an unreadable one.
  for (let attempt = 1; ; attempt++) {
    const { entries, vanished } = await listBackupsOnce(store, options);
    if (!vanished || attempt >= 3) return entries;
  }
}

async function listBackupsOnce(
  store: Store,
  options: { prefix?: string },
): Promise<{ entries: CatalogEntry[]; vanished: boolean }> {
  let vanished = false;
  const objects = new Map<string, ObjectInfo>();
  const manifests = new Map<string, ObjectInfo>();
  const pending = new Map<string, ObjectInfo>();
  const rekeying = new Set<string>();
  for await (const obj of store.list(options.prefix ?? "")) {
    if (obj.key.endsWith(REKEY_JOURNAL_SUFFIX)) rekeying.add(obj.key.slice(0, -REKEY_JOURNAL_SUFFIX.length));
    else if (obj.key.endsWith(MANIFEST_SUFFIX)) manifests.set(obj.key.slice(0, -MANIFEST_SUFFIX.length), obj);
    else if (obj.key.endsWith(PENDING_SUFFIX)) pending.set(obj.key.slice(0, -PENDING_SUFFIX.length), obj);
    else objects.set(obj.key, obj);
  }
  const entries: CatalogEntry[] = [];
  for (const key of new Set([...objects.keys(), ...pending.keys(), ...manifests.keys()])) {
    const name = parseBackupKey(key);
    if (!name) continue;
    const object = objects.get(key);
    const manifestObject = manifests.get(key);
    const marker = pending.get(key);
    const listed = {
      ...name,
      ...(object ? { object } : {}),
      ...(manifestObject ? { manifestObject } : {}),
      ...(marker ? { marker } : {}),
    };
    if (!object && manifestObject) {
      entries.push({
        ...listed,
        state: "incomplete",
        problem: "manifest without its object (a deletion was interrupted or the object was removed)",
      });
    } else if (!object) {
      entries.push({ ...listed, state: "incomplete", problem: "upload started but no object was stored" });
    } else if (manifestObject) {
      entries.push({ ...listed, state: "complete" });
    } else if (marker) {
      entries.push({
        ...listed,
        state: "incomplete",
        problem: "object stored but its manifest was never written",
      });
    } else {
      entries.push({ ...listed, state: "unmanaged" });
    }
  }
  entries.push(...(await temporaryEntries(store, options.prefix ?? "")));
  await forEachLimited(
    entries.filter((e) => e.state === "complete"),
    8,
    async (entry) => {
      try {
        entry.manifest = await readManifest(store, entry.key);
        // An interrupted rekey (src/catalog/rekey-journal.ts): the object may already carry the new header.
        if (rekeying.has(entry.key)) {
          const described = await manifestDuringRekey<unknown>(store, entry.key, entry.manifest);
          if (described !== entry.manifest) entry.manifest = parseManifest(JSON.stringify(described));
        }
      } catch (err) {
        if (isNotFound(err)) vanished = true;
        entry.state = "invalid";
        entry.problem = (err as Error).message;
        return;
      }
      const mismatch = manifestMismatch(entry.manifest, entry.object!);
      if (mismatch) {
        // The manifest stays on the entry, so that `verify` can name every mismatch.
        entry.state = "invalid";
        entry.problem = mismatch;
      }
    },
  );
  return { entries: entries.sort(newestFirst), vanished };
}

const STATE_RANK: Record<BackupState, number> = { complete: 0, unmanaged: 1, invalid: 2, incomplete: 3 };

/** Newest first; at equal times complete before unmanaged before the rest; then by name, descending. */
export function newestFirst(a: CatalogEntry, b: CatalogEntry): number {
  return (
    b.time.getTime() - a.time.getTime() ||
    STATE_RANK[a.state] - STATE_RANK[b.state] ||
    (a.key < b.key ? 1 : a.key > b.key ? -1 : 0)
  );
}

/**
 * A store's temporary files of interrupted puts whose target is a backup's object, manifest, marker, or a rekey's
 * journal or rewritten copy of it, as `incomplete` entries (keyed by the temporary file itself). Multipart uploads are not objects and are left to
 * prune (they cannot be deleted by key).
 */
async function temporaryEntries(store: Store, prefix: string): Promise<CatalogEntry[]> {
  const entries: CatalogEntry[] = [];
  try {
    for await (const leftover of store.leftovers(prefix)) {
      if (leftover.kind !== "temporary file") continue;
      // A rekey's journal or rewritten copy (src/catalog/rekey-journal.ts) is written this way too.
      const target = rekeyPartOf(leftover.key)?.object ?? leftover.key;
      const name = parseBackupKey(target.replace(/\.json$|\.pending$/, ""));
      if (!name) continue;
      entries.push({
        ...name,
        key: leftover.id,
        state: "incomplete",
        temporary: true,
        object: { key: leftover.id, size: leftover.size ?? 0, lastModified: leftover.since },
        problem: "temporary file of an upload in flight or interrupted",
      });
    }
  } catch (err) {
    if (!(err instanceof LeftoversUnsupported)) throw err;
  }
  return entries;
}

/**
 * Why a manifest does not describe the object beside it, or null when the listing agrees with it: the sizes it
 * records must agree with each other and with the object's listed size. A mismatch means the object and the
 * manifest come from different runs or one of them was changed; such a backup is not used. (Checksums need the
 * object's bytes: `verify` and `restore` check those.)
 */
export function manifestMismatch(manifest: Manifest, object: ObjectInfo): string | null {
  const recorded = manifest.sizes.stored;
  if (manifest.object && manifest.object.size !== recorded) {
    return `manifest is inconsistent: object size ${manifest.object.size} but stored size ${recorded}`;
  }
  if (object.size !== recorded) {
    return `object is ${object.size} bytes but its manifest says ${recorded} (truncated, modified, or not from the same save)`;
  }
  return null;
}

/** Reads and validates the manifest of a backup. */
export async function readManifest(store: Store, key: string): Promise<Manifest> {
  return parseManifest(await readSmallObject(store, manifestKey(key)));
}

/**
 * The retention (object lock, legal hold) of each entry's stored object, for `list` and `verify`; empty on a store
 * without the notion. A few requests at a time; an S3 store on a bucket without Object Lock sends none.
 */
export async function readRetentions(
  store: Store,
  entries: readonly CatalogEntry[],
): Promise<Map<string, Retention>> {
  const out = new Map<string, Retention>();
  if (!store.retention) return out;
  const withObject = entries.filter((e) => e.object && !e.temporary);
  await forEachLimited(withObject, 8, async (entry) => {
    try {
      out.set(entry.key, (await store.retention?.(entry.key)) ?? NO_RETENTION);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  });
  return out;
}

/** Entries that can be restored: complete ones and backups written by other tools. */
export function isUsable(entry: CatalogEntry): boolean {
  return entry.state === "complete" || entry.state === "unmanaged";
}

/**
 * Resolves what a user typed as BACKUP: `latest` or a name as `list` prints it (with or without its folder).
 *
 * `latest` is the newest usable backup of `kind` (default snapshot), of `cluster` when given, strictly before
 * `before` when given; times compare as instants, and at equal times a backup with manifest wins. Incomplete and
 * invalid entries are never picked. When the store holds usable backups of several clusters and no `cluster` is
 * given, `latest` is refused rather than restoring some other cluster's data.
 * The backup returned has had its object's writer checked against its manifest's run where the store records it.
 * Throws a `Hinted` one-line error when nothing (or more than one name) matches, or the named backup is unusable
 * (with `allowMismatched`, one whose manifest was read but does not match its object is returned).
 */
export async function resolveBackup(
  store: Store,
  ref: string,
  options: {
    before?: Date;
    cluster?: string;
    kind?: "snapshot" | "config";
    /** A backup named explicitly may be `invalid` with a readable manifest (for `verify` to report on). */
    allowMismatched?: boolean;
  } = {},
): Promise<CatalogEntry> {
  const kind = options.kind ?? "snapshot";
  const entries = await listBackups(store);
  if (ref === "latest") {
    const usable = entries.filter((e) => e.kind === kind && isUsable(e));
    if (!options.cluster) {
      const clusters = [...new Set(usable.map((e) => e.cluster))].sort();
      if (clusters.length > 1) {
        throw new Hinted(
          `${store.location} holds ${kind} backups of ${clusters.length} clusters (${clusters.join(", ")}); latest is ambiguous`,
          "pass --cluster NAME",
        );
      }
    }
    let found: CatalogEntry | undefined;
    for (const e of usable) {
      if (options.cluster && e.cluster !== options.cluster) continue;
      if (options.before && e.time.getTime() >= options.before.getTime()) continue;
      await checkOwner(store, e);
      if (isUsable(e)) {
        found = e;
        break;
      }
    }
    if (!found) {
      const what = [
        options.cluster ? `for cluster ${options.cluster}` : "",
        options.before ? `before ${formatStamp(options.before)}` : "",
      ]
        .filter(Boolean)
        .join(" ");
      throw new Hinted(
        `no usable ${kind} backup in ${store.location}${what ? ` ${what}` : ""}`,
        "run `etcd-backup list` to see what is there",
      );
    }
    return found;
  }
  const matches = entries.filter((e) => !e.temporary && (e.key === ref || e.key.endsWith(`/${ref}`)));
  const found = matches[0];
  if (!found) {
    throw new Hinted(
      `backup ${ref} not found in ${store.location}`,
      "run `etcd-backup list` to see the names",
    );
  }
  if (matches.length > 1) {
    throw new Hinted(
      `backup name ${ref} is ambiguous in ${store.location}: ${matches.map((e) => e.key).join(", ")}`,
      "give the name with its folder",
    );
  }
  await checkOwner(store, found);
  if (!isUsable(found) && !(options.allowMismatched && found.state === "invalid" && found.manifest)) {
    throw new Hinted(
      `backup ${ref} is ${found.state}: ${found.problem ?? ""}`.trim(),
      "pick another backup from `etcd-backup list`",
    );
  }
  return found;
}

/**
 * Where the store keeps who wrote an object (S3 metadata; `stat` only, so one request for the backup about to be
 * used rather than one per listed backup), a complete backup whose object another run wrote is marked invalid.
 */
async function checkOwner(store: Store, entry: CatalogEntry): Promise<void> {
  const run = entry.manifest?.run;
  if (entry.state !== "complete" || !run) return;
  const owner = (await store.stat(entry.key))?.owner;
  if (owner === undefined || owner === run) return;
  entry.state = "invalid";
  entry.problem = `object written by run ${owner}, its manifest by run ${run} (not from the same save)`;
}

async function forEachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]!);
  });
  await Promise.all(workers);
}
