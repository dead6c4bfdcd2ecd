import type { Readable } from "node:stream";

/** One stored object as a listing shows it. Keys are relative to the store's root (its prefix). */
export interface ObjectInfo {
  key: string;
  size: number;
  lastModified: Date;
  /**
   * The `owner` the object was put with, where the backend keeps it beside the object (S3 user metadata, read by
   * `stat` only; listings do not carry it); absent otherwise.
   */
  owner?: string;
  /**
   * Set when a versioned store lists an object whose newest version is a delete marker (someone deleted it
   * without a version id) but whose data is still there, kept by an object lock: `get`/`stat` still read it.
   */
  behindDeleteMarker?: boolean;
}

/**
 * What keeps a stored object from being deleted (S3 Object Lock; Azure immutability policies and GCS retention
 * map onto the same three facts). A store without such a feature answers `NO_RETENTION`.
 */
export interface Retention {
  /** `compliance`: nobody can delete it before `retainUntil`; `governance`: only with a bypass permission. */
  mode?: "governance" | "compliance";
  retainUntil?: Date;
  /** A hold without date: the object stays until someone with the permission lifts it. */
  legalHold: boolean;
}

export const NO_RETENTION: Retention = Object.freeze({ legalHold: false });

/**
 * Why `retention` forbids deleting at `now`, as prune shows it (`object lock compliance until 2027-01-03`,
 * `legal hold`), or null when the object may go. Governance counts as locked: we never bypass it.
 */
export function retentionHold(retention: Retention, now: Date): string | null {
  const reasons: string[] = [];
  if (retention.mode && retention.retainUntil && retention.retainUntil.getTime() > now.getTime()) {
    reasons.push(`object lock ${retention.mode} until ${retention.retainUntil.toISOString().slice(0, 10)}`);
  }
  if (retention.legalHold) reasons.push("legal hold");
  return reasons.length > 0 ? reasons.join(", ") : null;
}

/** How `list` and `verify` show a retention: `compliance until 2027-01-03 10:00:00Z, legal hold`, or `-`. */
export function retentionLabel(retention: Retention): string {
  const parts: string[] = [];
  if (retention.mode && retention.retainUntil) {
    parts.push(`${retention.mode} until ${retention.retainUntil.toISOString().replace(/\.\d{3}Z$/, "Z")}`);
  }
  if (retention.legalHold) parts.push("legal hold");
  return parts.length > 0 ? parts.join(", ") : "-";
}

/** A retention as JSON output carries it. */
export function retentionJson(retention: Retention) {
  return {
    mode: retention.mode ?? null,
    retainUntil: retention.retainUntil?.toISOString() ?? null,
    legalHold: retention.legalHold,
  };
}

/** The object's retention where the store has the notion, `NO_RETENTION` otherwise. */
export async function retentionOf(store: Store, key: string): Promise<Retention> {
  return store.retention ? await store.retention(key) : NO_RETENTION;
}

export interface PutOptions {
  /** Aborting makes `put` reject and leaves no object under the key. */
  signal?: AbortSignal;
  contentType?: string;
  /**
   * Create only: if an object already exists under the key, `put` rejects with `AlreadyExistsError` and leaves
   * it untouched. See `PutResult.exclusive` for how strong the guarantee is.
   */
  ifAbsent?: boolean;
  /** Who writes the object (a run id), kept beside it where the backend can (S3 user metadata). */
  owner?: string;
  /**
   * The object is backup data (a backup, its manifest, a revision-log segment and its manifest): where the store
   * is configured to lock what it writes (S3 Object Lock), it is written locked. Markers and heads, which are
   * replaced or removed as part of normal work, leave it unset.
   */
  immutable?: boolean;
  /**
   * Write the object locked with exactly this retention (rekey keeps the lock of the object it replaces), whatever
   * the store is configured with; a date already past and an absent mode lock nothing, a legal hold is kept.
   * Wins over `immutable`. Stores without the notion ignore it.
   */
  retention?: Retention;
}

/**
 * What an interrupted write left in a store beside its objects: a local store's temporary file, an S3 multipart
 * upload that was started and never completed or aborted, a GCS resumable upload session (only while this
 * process holds it: GCS cannot list them). Never listed by `list`, never readable as an object.
 */
export interface Leftover {
  /** The key the interrupted write was for. */
  key: string;
  kind: "temporary file" | "multipart upload" | "resumable upload";
  /** When the write started (an upload's initiation) or last wrote (a temporary file). */
  since: Date;
  /** Bytes it holds, when the store knows without reading (a temporary file's size). */
  size?: number;
  /** The store's own name for it (a temporary file's key, an upload id): for messages and `removeLeftover`. */
  id: string;
}

/** The service cannot list leftovers (an S3 service without ListMultipartUploads). */
export class LeftoversUnsupported extends Error {
  override name = "LeftoversUnsupported";
}

export interface PutResult {
  /** Bytes stored. */
  size: number;
  /**
   * Set for an `ifAbsent` put: `true` when the backend made the create exclusive (an exclusive link on a
   * directory, `If-None-Match: *` on an S3 service that honours it), so no other writer's put of the key can have
   * succeeded; `false` when it could only check before writing (an S3 service that ignores conditional writes,
   * or one not yet known to honour them): a concurrent writer may then have replaced the object, and the caller
   * has to check afterwards.
   */
  exclusive?: boolean;
}

/**
 * Where backups live: a local directory or an S3 bucket and prefix.
 *
 * Contract every backend honours (checked by the conformance suite in test/store/):
 * - `put` is atomic: while it runs and after it fails or is aborted, `get`/`stat`/`list` never show the
 *   key (no partial object that looks complete); on success the whole stream is stored. The body stream
 *   is consumed with backpressure; memory stays bounded whatever its length.
 * - `get` of a missing key rejects with `NotFoundError`; `stat` of a missing key resolves to `null`.
 * - `list` yields every object under the prefix, all pages, in no particular order; in-flight uploads and a
 *   backend's own temporary names are not listed.
 * - `delete` of a missing key succeeds (it is idempotent).
 * - `put` with `ifAbsent` never replaces an existing object: it rejects with `AlreadyExistsError` instead; it
 *   reports in `exclusive` whether a concurrent create of the same key is excluded too.
 * - `leftovers` yields what interrupted `put`s left under the prefix (a killed process cannot clean up), with the
 *   key each was for, so that the catalog and prune can show and remove them without knowing how a backend
 *   names them; it throws `LeftoversUnsupported` when the service cannot list them. A leftover of a `put` still
 *   running is listed too: callers judge by `since`. `removeLeftover` removes one; a gone one counts as removed.
 * - `delete` of an object under retention (see `retention`) rejects and leaves it whole; callers look first.
 */
export interface Store {
  /** Where this store points, for messages: `/var/backups`, `s3://bucket/prefix`. Never holds a secret. */
  readonly location: string;
  put(key: string, body: Readable, options?: PutOptions): Promise<PutResult>;
  get(key: string, options?: { signal?: AbortSignal }): Promise<Readable>;
  stat(key: string): Promise<ObjectInfo | null>;
  list(prefix?: string): AsyncIterable<ObjectInfo>;
  delete(key: string): Promise<void>;
  leftovers(prefix?: string): AsyncIterable<Leftover>;
  removeLeftover(leftover: Leftover): Promise<void>;
  /**
   * What keeps the object from being deleted. Resolves to `NO_RETENTION` for an object without lock or hold. For
   * a missing key it rejects with `NotFoundError`, except where the store answers without a request because
   * nothing there can be locked (an S3 bucket without Object Lock): then `NO_RETENTION`. A directory store
   * answers `NO_RETENTION` for every file; stores without the notion may leave the method out.
   */
  retention?(key: string): Promise<Retention>;
  /**
   * Checks, before the first write, that the store can do what it was configured for (S3: the bucket has Object
   * Lock enabled when writes are to be locked); rejects with a one-line `UsageError`/`Hinted` otherwise. Writes
   * check it too, so calling it is only about failing early.
   */
  prepare?(): Promise<void>;
}

/** The key does not exist in the store. */
export class NotFoundError extends Error {
  override name = "NotFoundError";
  readonly key: string;
  constructor(key: string, location: string) {
    super(`${key} not found in ${location}`);
    this.key = key;
  }
}

export function isNotFound(err: unknown): boolean {
  return err instanceof NotFoundError;
}

/** An `ifAbsent` put found the key taken. */
export class AlreadyExistsError extends Error {
  override name = "AlreadyExistsError";
  readonly key: string;
  constructor(key: string, location: string) {
    super(`${key} already exists in ${location}`);
    this.key = key;
  }
}

export function isAlreadyExists(err: unknown): boolean {
  return err instanceof AlreadyExistsError;
}
