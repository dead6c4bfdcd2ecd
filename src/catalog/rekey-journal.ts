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
 * undoes the interrupted one (see src/backup/rekey.ts).
 */
import { createHash } from "node:crypto";
import { text } from "node:stream/consumers";
import { S3Store } from "../store/s3.ts";
import { readObjectRange } from "../store/s3-part-copy.ts";
import type { Store } from "../store/store.ts";

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

/** Removes every rewritten copy of `key` left by killed rekeys (a running one's included: it then fails safely). */
export async function removeStaging(store: Store, key: string): Promise<void> {
  const stale: string[] = [];
  for await (const o of store.list(`${key}${REKEY_STAGING_SUFFIX}`)) stale.push(o.key);
  for (const k of stale) await store.delete(k);
}

export function headerDigest(header: Buffer): JournalHeader {
  return { size: header.length, sha256: createHash("sha256").update(header).digest("hex") };
}

/** The journal beside `key`, or null when there is none (or it is unreadable: then it never decides anything). */
export async function readJournal(store: Store, key: string): Promise<RekeyJournal | null> {
  let body: string;
  try {
    body = await text(await store.get(journalKey(key)));
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
