import { errorChain } from "../errors.ts";
import {
  isNotFound,
  type Leftover,
  LeftoversUnsupported,
  type Retention,
  retentionHold,
  retentionOf,
  type Store,
} from "../store/store.ts";
import { type CatalogEntry, isUsable, listBackups, PENDING_SUFFIX } from "./catalog.ts";
import { type BackupName, parseBackupKey } from "./names.ts";
import {
  planRekeyCleanups,
  type RekeyCleanup,
  rekeyBytes,
  rekeyKeys,
  resolveRekeyCleanup,
} from "./prune-rekeys.ts";
import { listRekeyLeftovers, newestRekeyPart, type RekeyLeftover, rekeyPartOf } from "./rekey-journal.ts";
import { type KeepReason, planRetention, type RetentionPolicy } from "./retention.ts";

/** Incomplete leftovers younger than this are left alone by default: their upload may still be running. */
export const DEFAULT_INCOMPLETE_GRACE_MS = 24 * 3_600_000;

export interface PruneOptions {
  /** Plan and report, delete nothing. */
  dryRun?: boolean;
  /** The time retention and the grace period are measured against (default: the clock). */
  now?: Date;
  /**
   * Incomplete leftovers are removed, and a rekey's journal and copies resolved, only when their newest part is at
   * least this old (default 24 h): until then an upload or a rekey may still be running.
   */
  graceMs?: number;
  /** Only this cluster's backups and leftovers. */
  cluster?: string;
  /** Stops issuing deletions; `pruneBackups` then rejects. Deletions already running finish. */
  signal?: AbortSignal;
  /** Backups deleted at once (default 8); the objects of one backup are always deleted one after the other. */
  concurrency?: number;
}

/** One object whose deletion failed. */
export interface DeletionFailure {
  key: string;
  error: string;
}

export interface PrunedBackup {
  entry: CatalogEntry;
  action: "keep" | "delete";
  reasons: KeepReason[];
  /** After a real run, for `delete`: whether every object went. */
  result?: "deleted" | "failed";
}

export interface LeftoverCleanup {
  entry: CatalogEntry;
  /** `delete` when older than the grace period, `keep` while an upload may still be running. */
  action: "keep" | "delete";
  /** The keys that are (or would be) deleted, in order. */
  keys: string[];
  /** Age of the newest part (object, marker, manifest), milliseconds. */
  ageMs: number;
  result?: "deleted" | "failed";
  /** Why a leftover old enough to go is kept: the store holds one of its objects (object lock, legal hold). */
  hold?: string;
}

/** A multipart upload that was started and never completed nor aborted (a killed save's), and what prune does. */
export interface UploadCleanup {
  /** The key the upload was for, relative to the store's prefix. */
  key: string;
  uploadId: string;
  /** What the key's name says (the backup it belonged to). */
  name: BackupName;
  initiated: Date;
  ageMs: number;
  /** `abort` when older than the grace period, `keep` while the upload may still be running. */
  action: "keep" | "abort";
  result?: "aborted" | "failed";
  /** The store's leftover, to remove it by. */
  leftover: Leftover;
}

export interface PruneReport {
  dryRun: boolean;
  now: Date;
  /** Every usable backup with its decision, newest first. */
  backups: PrunedBackup[];
  /** Backups whose manifest cannot be read: never deleted automatically; a person has to look. */
  invalid: CatalogEntry[];
  /** Incomplete leftovers and stale markers beside complete backups. */
  leftovers: LeftoverCleanup[];
  /** Incomplete multipart uploads of backups under the prefix (stores that have them). */
  uploads: UploadCleanup[];
  /**
   * Journals and rewritten copies of rekeys (src/catalog/prune-rekeys.ts): in progress (younger than the grace
   * period), finished or undone beside a backup that stays, removed beside one that is gone; those of a backup
   * deleted here are deleted with it and listed too (`with backup`).
   */
  rekeys: RekeyCleanup[];
  /** Why incomplete uploads could not be looked at (the service cannot list them), when so. */
  uploadsUnchecked?: string;
  /** Every deletion that failed. Empty after a dry run. */
  failures: DeletionFailure[];
  /** Stored bytes of the backups and leftovers deleted (or, in a dry run, to delete). */
  freedBytes: number;
}

/**
 * Applies a retention policy to a store: lists it, plans with `planRetention` per cluster, deletes the backups no
 * rule keeps, and removes incomplete leftovers older than the grace period: stale markers, temporary files and, on
 * a store that can list them (S3), multipart uploads a killed save never completed. Invalid backups are reported
 * and never deleted. What rekeys left (journals, rewritten copies) is resolved once older than the grace period,
 * and keeps its backup until then (src/catalog/prune-rekeys.ts).
 *
 * For each backup the object goes first and its manifest (and stale marker) only once the object is gone, so a
 * failure never leaves an object that looks like another tool's backup; an incomplete leftover loses its object
 * before its marker for the same reason. A failed deletion is recorded in `failures` and the rest carry on.
 * Rejects only when the listing fails (then nothing was deleted) or `signal` aborts.
 */
export async function pruneBackups(
  store: Store,
  policy: RetentionPolicy,
  options: PruneOptions = {},
): Promise<PruneReport> {
  const now = options.now ?? new Date();
  const graceMs = options.graceMs ?? DEFAULT_INCOMPLETE_GRACE_MS;
  const dryRun = options.dryRun ?? false;
  options.signal?.throwIfAborted();
  const all = (await listBackups(store)).filter(
    (e) => options.cluster === undefined || e.cluster === options.cluster,
  );
  // Listed after the catalog: a rekey that starts in between shows up young, so it is left alone.
  const rekeying = await listRekeyLeftovers(store);
  const backups: PrunedBackup[] = planRetention(all.filter(isUsable), policy, now).map((d) => ({
    entry: d.entry,
    action: d.action,
    reasons: d.reasons,
  }));
  keepRekeying(backups, rekeying, now, graceMs);
  // What the store will not delete yet (object lock, legal hold) stays, with the reason: asked in dry runs
  // too, so that both plan alike, and only for what the policy would delete (no request for the rest).
  const deleting = backups.filter((b) => b.action === "delete");
  const rekeyPartsOf = (key: string) => {
    const l = rekeying.get(key);
    return l ? rekeyKeys(l) : [];
  };
  const holds = await readHolds(
    store,
    deleting.flatMap((b) => [...backupKeys(b.entry), ...rekeyPartsOf(b.entry.key)]),
    now,
  );
  keepHeld(backups, holds);
  for (const b of backups) {
    // A rekey's journal or copy is never locked by etcd-backup, but a bucket's default retention may lock it.
    const hold = b.action === "delete" ? firstHold(rekeyPartsOf(b.entry.key), holds) : undefined;
    if (hold) {
      b.action = "keep";
      b.reasons = [{ rule: "locked", hold }];
    }
  }
  const deletedKeys = new Set(backups.filter((b) => b.action === "delete").map((b) => b.entry.key));
  const rekeys = await planRekeyCleanups(
    store,
    rekeying.values(),
    all,
    deletedKeys,
    now,
    graceMs,
    options.cluster,
  );
  const rekeyHolds = await readHolds(
    store,
    rekeys.filter((c) => c.action === "resolve" && c.resolution !== "with backup").flatMap(rekeyKeys),
    now,
  );
  for (const c of rekeys) {
    const hold = c.action === "resolve" ? firstHold(rekeyKeys(c), rekeyHolds) : undefined;
    if (hold) {
      c.action = "keep";
      c.hold = hold;
    }
  }
  const leftovers = planLeftovers(all, backups, now, graceMs);
  const leftoverHolds = await readHolds(
    store,
    leftovers.filter((l) => l.action === "delete").flatMap((l) => l.keys),
    now,
  );
  for (const l of leftovers) {
    const hold = l.action === "delete" ? firstHold(l.keys, leftoverHolds) : undefined;
    if (hold) {
      l.action = "keep";
      l.hold = hold;
    }
  }
  const report: PruneReport = {
    dryRun,
    now,
    backups,
    invalid: all.filter((e) => e.state === "invalid"),
    leftovers,
    uploads: [],
    rekeys,
    failures: [],
    freedBytes: 0,
  };
  try {
    report.uploads = await planUploads(store, now, graceMs, options.cluster);
  } catch (err) {
    if (!(err instanceof LeftoversUnsupported)) throw err;
    report.uploadsUnchecked = err.message;
  }
  const withBackup = new Map(
    rekeys.filter((c) => c.action === "resolve" && c.resolution === "with backup").map((c) => [c.key, c]),
  );
  const jobs: { keys: string[]; bytes: number; done: (ok: boolean) => void }[] = [
    ...backups
      .filter((b) => b.action === "delete")
      .map((b) => {
        const rekey = withBackup.get(b.entry.key);
        return {
          keys: backupKeys(b.entry, rekey),
          bytes: (b.entry.object?.size ?? 0) + (rekey ? rekeyBytes(rekey) : 0),
          done: (ok: boolean) => {
            b.result = ok ? "deleted" : "failed";
            if (rekey) rekey.result = ok ? "deleted" : "failed";
          },
        };
      }),
    ...leftovers
      .filter((l) => l.action === "delete")
      .map((l) => ({
        keys: l.keys,
        bytes: l.entry.object?.size ?? 0,
        done: (ok: boolean) => {
          l.result = ok ? "deleted" : "failed";
        },
      })),
  ];
  // Interrupted rekeys beside backups that stay (finished or undone) and those of backups that are gone.
  const resolving = rekeys.filter((c) => c.action === "resolve" && c.resolution !== "with backup");
  const resolvedBytes = (c: RekeyCleanup) =>
    c.resolution === "finish" || c.resolution === "undo"
      ? c.staging.reduce((n, o) => n + o.size, 0)
      : rekeyBytes(c);
  if (dryRun) {
    report.freedBytes =
      jobs.reduce((sum, j) => sum + j.bytes, 0) + resolving.reduce((n, c) => n + resolvedBytes(c), 0);
    return report;
  }
  await forEachLimited(jobs, options.concurrency ?? 8, options.signal, async (job) => {
    const ok = await deleteInOrder(store, job.keys, report.failures);
    if (ok) report.freedBytes += job.bytes;
    job.done(ok);
  });
  // A copy younger than the grace period is a rekey's that started after the plan: left to it.
  const stagedBefore = new Date(now.getTime() - graceMs);
  await forEachLimited(resolving, options.concurrency ?? 8, options.signal, async (c) => {
    const ok = await resolveRekeyCleanup(store, c, stagedBefore, report.failures);
    if (ok && c.result !== "left") report.freedBytes += resolvedBytes(c);
  });
  {
    const aborting = report.uploads.filter((u) => u.action === "abort");
    await forEachLimited(aborting, options.concurrency ?? 8, options.signal, async (upload) => {
      try {
        await store.removeLeftover(upload.leftover);
        upload.result = "aborted";
      } catch (err) {
        upload.result = "failed";
        report.failures.push({
          key: `${upload.key} (upload ${upload.uploadId})`,
          error: errorChain(err).join(": "),
        });
      }
    });
  }
  options.signal?.throwIfAborted();
  return report;
}

/**
 * The incomplete multipart uploads of backups' objects, manifests and markers (names that parse as backups; other
 * tools' uploads under the prefix are left alone), oldest first, each aborted once older than the grace period.
 */
async function planUploads(
  store: Store,
  now: Date,
  graceMs: number,
  cluster: string | undefined,
): Promise<UploadCleanup[]> {
  const out: UploadCleanup[] = [];
  for await (const leftover of store.leftovers()) {
    if (leftover.kind !== "multipart upload") continue;
    const upload = { key: leftover.key, uploadId: leftover.id, initiated: leftover.since };
    // A rekey's rewritten copy is a multipart upload on S3 (a part copy): killed, it is one of these too.
    const rekeyCopy = rekeyPartOf(upload.key);
    const target =
      rekeyCopy?.part === "staging"
        ? rekeyCopy.object
        : upload.key.endsWith(".json")
          ? upload.key.slice(0, -".json".length)
          : upload.key.endsWith(PENDING_SUFFIX)
            ? upload.key.slice(0, -PENDING_SUFFIX.length)
            : upload.key;
    const name = parseBackupKey(target);
    if (!name || (cluster !== undefined && name.cluster !== cluster)) continue;
    const ageMs = now.getTime() - upload.initiated.getTime();
    out.push({ ...upload, name, ageMs, action: ageMs >= graceMs ? "abort" : "keep", leftover });
  }
  return out.sort((a, b) => a.initiated.getTime() - b.initiated.getTime());
}

/**
 * What holds each of `keys` at `now` (see `retentionHold`), for the keys that are held. A key whose retention
 * cannot be read counts as held, with the reason: prune never deletes what it could not check.
 */
export async function readHolds(store: Store, keys: string[], now: Date): Promise<Map<string, string>> {
  const holds = new Map<string, string>();
  if (!store.retention) return holds;
  await forEachLimited(keys, 8, undefined, async (key) => {
    let retention: Retention;
    try {
      retention = await retentionOf(store, key);
    } catch (err) {
      if (isNotFound(err)) return;
      holds.set(key, `retention unreadable: ${errorChain(err).join(": ")}`);
      return;
    }
    const hold = retentionHold(retention, now);
    if (hold) holds.set(key, hold);
  });
  return holds;
}

/**
 * Turns each planned deletion whose object or manifest is held into a keep with reason `locked`, so that prune
 * never asks the store to delete what it will refuse (and a dry run shows the same). Pure; changes `backups`.
 */
export function keepHeld(backups: PrunedBackup[], holds: ReadonlyMap<string, string>): void {
  for (const b of backups) {
    if (b.action !== "delete") continue;
    const hold = firstHold(backupKeys(b.entry), holds);
    if (!hold) continue;
    b.action = "keep";
    b.reasons = [{ rule: "locked", hold }];
  }
}

function firstHold(keys: string[], holds: ReadonlyMap<string, string>): string | undefined {
  for (const key of keys) {
    const hold = holds.get(key);
    if (hold) return hold;
  }
  return undefined;
}

/**
 * A backup's keys in deletion order: a rekey's rewritten copies, the object, what only describes it, and a
 * rekey's journal after the manifest (while the object is there, the journal may be what says which manifest
 * describes it), the marker last.
 */
function backupKeys(entry: CatalogEntry, rekey?: Pick<RekeyCleanup, "journal" | "staging">): string[] {
  return [
    ...(rekey?.staging.map((o) => o.key) ?? []),
    entry.object?.key,
    entry.manifestObject?.key,
    rekey?.journal?.key,
    entry.marker?.key,
  ].filter((k): k is string => k !== undefined);
}

/**
 * Keeps each backup planned for deletion whose rekey journal or copy is younger than the grace period, with
 * reason `rekey`: a rekey of it may be running, and would fail (or, in a directory, rename its copy back into
 * place). Pure; changes `backups`.
 */
export function keepRekeying(
  backups: PrunedBackup[],
  rekeying: ReadonlyMap<string, RekeyLeftover>,
  now: Date,
  graceMs: number,
): void {
  for (const b of backups) {
    const leftover = b.action === "delete" ? rekeying.get(b.entry.key) : undefined;
    if (!leftover) continue;
    const ageMs = now.getTime() - newestRekeyPart(leftover).getTime();
    if (ageMs >= graceMs) continue;
    b.action = "keep";
    b.reasons = [{ rule: "rekey", hold: "rekey in progress" }];
  }
}

function planLeftovers(
  all: CatalogEntry[],
  backups: PrunedBackup[],
  now: Date,
  graceMs: number,
): LeftoverCleanup[] {
  const deleted = new Set(backups.filter((b) => b.action === "delete").map((b) => b.entry));
  const out: LeftoverCleanup[] = [];
  for (const entry of all) {
    let keys: string[];
    let parts: Date[];
    if (entry.state === "incomplete") {
      keys = backupKeys(entry);
      parts = [entry.object, entry.marker, entry.manifestObject].flatMap((p) => (p ? [p.lastModified] : []));
    } else if (entry.marker && entry.state === "complete" && !deleted.has(entry)) {
      // The manifest is written, so the marker's removal failed after a finished save.
      keys = [entry.marker.key];
      parts = [entry.marker.lastModified];
    } else {
      continue;
    }
    const ageMs = now.getTime() - Math.max(...parts.map((d) => d.getTime()));
    out.push({ entry, action: ageMs >= graceMs ? "delete" : "keep", keys, ageMs });
  }
  return out;
}

/** Deletes keys one after the other, stopping at the first failure so later keys never outlive earlier ones. */
async function deleteInOrder(store: Store, keys: string[], failures: DeletionFailure[]): Promise<boolean> {
  for (const key of keys) {
    try {
      await store.delete(key);
    } catch (err) {
      failures.push({ key, error: errorChain(err).join(": ") });
      return false;
    }
  }
  return true;
}

async function forEachLimited<T>(
  items: T[],
  limit: number,
  signal: AbortSignal | undefined,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(Math.max(1, limit), items.length) }, async () => {
    while (next < items.length && !signal?.aborted) await fn(items[next++]!);
  });
  await Promise.all(workers);
}
