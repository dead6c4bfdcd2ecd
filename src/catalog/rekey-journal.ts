/**
 * The journal a rekey keeps beside an object while it replaces it, so that a crash at any point leaves a
 * backup that readers understand.
 *
 * `<key>.rekey` is written (JSON, public information only; created only if absent, so it is also the lock against
 * a concurrent rekey of the object) after the rewritten object has been stored under `<key>.rekey-new.<run>` and
 * verified, and before it replaces `<key>`. It names the old and the new header (their
 * sha256 and size) and holds the manifest the backup gets once the rekey is done. The manifest is replaced
 * last, then the journal removed. Between the replacement and the new manifest, the object and its manifest
 * disagree; readers that find a journal look at the object's first bytes: if they are the new header, the
 * journal's manifest describes the object, otherwise the old manifest still does. A later `rekey` finishes or
 * undoes the interrupted one (`recoverInterruptedRekey`), and so does `prune` once the journal and copies are
 * older than its grace period (src/catalog/prune-rekeys.ts).
 */
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { Hinted } from "../errors.ts";
import { S3Store } from "../store/s3.ts";
import { readObjectRange } from "../store/s3-part-copy.ts";
import { readSmallObject } from "../store/small-object.ts";
import { type ObjectInfo, type Retention, retentionHold, retentionOf, type Store } from "../store/store.ts";

/** Suffix of the journal beside an object being rekeyed. */
export const REKEY_JOURNAL_SUFFIX = ".rekey";
/** Suffix of the rewritten object, stored and verified before it replaces the original. */
export const REKEY_STAGING_SUFFIX = ".rekey-new";

/** One header: what identifies it at the start of the object. */
export interface JournalHeader {
  size: number;
  sha256: string;
}

export interface RekeyJournal {
  format: 1;
  kind: "rekey";
  /** Random id of the rekey run. */
  run: string;
  started: string;
  from: JournalHeader & { objectSize: number };
  to: JournalHeader & { objectSize: number; objectSha256?: string };
  /** The manifest (a backup's or a log segment's) once the rekey is done. */
  manifest: unknown;
}

export function journalKey(key: string): string {
  return `${key}${REKEY_JOURNAL_SUFFIX}`;
}

/** The rewritten object's name for one run: unique, so two rekeys of one object never share it. */
export function stagingKey(key: string, run: string): string {
  return `${key}${REKEY_STAGING_SUFFIX}.${run}`;
}

/**
 * Removes the rewritten copies of `key` left by killed rekeys: every one (a running rekey's included: it then fails
 * safely), or with `before` only those last written before that time (prune: a younger one may be a running
 * rekey's).
 */
export async function removeStaging(store: Store, key: string, before?: Date): Promise<void> {
  const stale: string[] = [];
  for await (const o of store.list(`${key}${REKEY_STAGING_SUFFIX}.`)) {
    if (!isStagingOf(o.key, key)) continue;
    if (before && o.lastModified.getTime() >= before.getTime()) continue;
    stale.push(o.key);
  }
  for (const k of stale) await store.delete(k);
}

// `<key>.rekey-new.<run>`: the run is random hex (`rekeyObject`).
const STAGING_RE = /^(?<key>.+)\.rekey-new\.(?<run>[0-9a-f]+)$/;

function isStagingOf(candidate: string, key: string): boolean {
  return STAGING_RE.exec(candidate)?.groups?.key === key;
}

/** What a rekey left beside one object: its journal and its rewritten copies, as listed. */
export interface RekeyLeftover {
  /** The object being rekeyed. */
  key: string;
  journal?: ObjectInfo;
  /** `<key>.rekey-new.<run>` copies, oldest first. */
  staging: ObjectInfo[];
}

/**
 * Whether `key` is a rekey's journal or rewritten copy, and of which object; null for anything else. A name that
 * merely ends in `.rekey` counts only when the rest is an object's key (checked by the caller: a backup's name).
 */
export function rekeyPartOf(key: string): { object: string; part: "journal" | "staging" } | null {
  if (key.endsWith(REKEY_JOURNAL_SUFFIX) && key.length > REKEY_JOURNAL_SUFFIX.length)
    return { object: key.slice(0, -REKEY_JOURNAL_SUFFIX.length), part: "journal" };
  const staged = STAGING_RE.exec(key)?.groups?.key;
  return staged ? { object: staged, part: "staging" } : null;
}

/**
 * Every journal and rewritten copy under `prefix`, grouped by the object they belong to (one listing). Whether
 * the object still exists is not looked at: a group whose object is gone is what a deleted backup left.
 */
export async function listRekeyLeftovers(store: Store, prefix = ""): Promise<Map<string, RekeyLeftover>> {
  const out = new Map<string, RekeyLeftover>();
  for await (const o of store.list(prefix)) {
    const part = rekeyPartOf(o.key);
    if (!part) continue;
    let group = out.get(part.object);
    if (!group) {
      group = { key: part.object, staging: [] };
      out.set(part.object, group);
    }
    if (part.part === "journal") group.journal = o;
    else group.staging.push(o);
  }
  for (const g of out.values()) g.staging.sort((a, b) => a.lastModified.getTime() - b.lastModified.getTime());
  return out;
}

/** When the newest part of a rekey's leftovers was written: the time a running rekey last showed progress. */
export function newestRekeyPart(leftover: RekeyLeftover): Date {
  const times = [leftover.journal, ...leftover.staging].flatMap((o) => (o ? [o.lastModified.getTime()] : []));
  return new Date(Math.max(...times));
}

export function headerDigest(header: Buffer): JournalHeader {
  return { size: header.length, sha256: createHash("sha256").update(header).digest("hex") };
}

/** The journal beside `key`, or null when there is none (or it is unreadable: then it never decides anything). */
export async function readJournal(store: Store, key: string): Promise<RekeyJournal | null> {
  let body: string;
  try {
    body = await readSmallObject(store, journalKey(key));
  } catch {
    return null;
  }
  try {
    const j = JSON.parse(body) as RekeyJournal;
    if (j?.kind !== "rekey" || j.format !== 1 || !j.from?.sha256 || !j.to?.sha256 || !j.manifest) return null;
    return j;
  } catch {
    return null;
  }
}

/** The first `size` bytes of an object (fewer when it is shorter); reads no further than needed (a ranged GET on S3). */
export async function readPrefix(store: Store, key: string, size: number): Promise<Buffer> {
  if (store instanceof S3Store) return await readObjectRange(store, key, size);
  const stream = await store.get(key);
  const chunks: Buffer[] = [];
  let got = 0;
  try {
    for await (const chunk of stream) {
      chunks.push(chunk as Buffer);
      got += (chunk as Buffer).length;
      if (got >= size) break;
    }
  } finally {
    stream.destroy();
  }
  return Buffer.concat(chunks).subarray(0, size);
}

/** Which header the object under `key` starts with: the journal's old one, its new one, or neither. */
export async function objectHeaderState(
  store: Store,
  key: string,
  journal: RekeyJournal,
): Promise<"from" | "to" | "other"> {
  const longest = Math.max(journal.from.size, journal.to.size);
  const prefix = await readPrefix(store, key, longest);
  for (const side of ["to", "from"] as const) {
    const h = journal[side];
    if (prefix.length < h.size) continue;
    if (createHash("sha256").update(prefix.subarray(0, h.size)).digest("hex") === h.sha256) return side;
  }
  return "other";
}

/**
 * The manifest that describes the object under `key` when a rekey journal is beside it: the journal's when
 * the object already carries the new header, `current` otherwise.
 */
export async function manifestDuringRekey<M>(store: Store, key: string, current: M): Promise<M> {
  const journal = await readJournal(store, key);
  if (!journal) return current;
  const state = await objectHeaderState(store, key, journal).catch(() => "other" as const);
  return state === "to" ? (journal.manifest as M) : current;
}

/** How an interrupted rekey is resolved, limited for a caller that may run beside a live rekey (prune). */
export interface RecoverOptions {
  /**
   * Act only on the journal of this run (the one the caller planned on): when the journal is gone or is another
   * run's (a new rekey took over), nothing is done and null is returned, and the journal is removed only while
   * it is still this run's.
   */
  run?: string;
  /** Remove only rewritten copies last written before this time (see `removeStaging`). */
  stagedBefore?: Date;
}

/**
 * Finishes or undoes a rekey of `key` that was killed: when the object already carries the new header, the
 * journal's manifest is written (finished); when it still carries the old one, the rewritten copy is dropped
 * (undone). Returns what it did, or null when there was nothing to recover. Throws when the object carries
 * neither header (changed by something else meanwhile) or the journal cannot be read. Used by the next rekey of
 * the object (src/backup/rekey-run.ts) and by prune (src/catalog/prune-rekeys.ts).
 */
export async function recoverInterruptedRekey(
  store: Store,
  key: string,
  manifestKey: string,
  options: RecoverOptions = {},
): Promise<"finished" | "undone" | null> {
  const journal = await readJournal(store, key);
  if (!journal) {
    if (await store.stat(journalKey(key))) {
      throw new Hinted(
        `the rekey journal ${journalKey(key)} cannot be read`,
        "check the object with `etcd-backup verify`, then remove the journal by hand",
      );
    }
    return null;
  }
  if (options.run !== undefined && journal.run !== options.run) return null;
  const state = await objectHeaderState(store, key, journal);
  if (state === "other") {
    throw new Hinted(
      `${key} carries neither header named by its rekey journal ${journalKey(key)}`,
      "it was changed during an interrupted rekey: verify it before removing the journal by hand",
    );
  }
  if (state === "to") {
    // The manifest in place (old, or new when killed after writing it) holds the lock the new one keeps.
    const lock = await keptLock(store, manifestKey);
    await store.put(manifestKey, Readable.from([Buffer.from(serializeJournalManifest(journal))]), {
      contentType: "application/json",
      ...(lock ? { retention: lock } : {}),
    });
  }
  await removeStaging(store, key, options.stagedBefore);
  if (options.run !== undefined && (await readJournal(store, key))?.run !== options.run) {
    // Another rekey removed this journal and wrote its own meanwhile: that one is left to its run.
    return state === "to" ? "finished" : "undone";
  }
  await store.delete(journalKey(key));
  return state === "to" ? "finished" : "undone";
}

/**
 * The retention of `key` when it still holds it (a date to come, or a legal hold): what its replacement must
 * carry. Null where nothing is locked (a directory, a bucket without Object Lock, an expired date).
 */
export async function keptLock(store: Store, key: string): Promise<Retention | null> {
  const r = await retentionOf(store, key);
  return retentionHold(r, new Date()) ? r : null;
}

function serializeJournalManifest(journal: RekeyJournal): string {
  return `${JSON.stringify(journal.manifest, null, 2)}\n`;
}
