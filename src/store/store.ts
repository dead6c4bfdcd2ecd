import type { Readable } from "node:stream";

/** One stored object as a listing shows it. Keys are relative to the store's root (its prefix). */
export interface ObjectInfo {
  key: string;
  size: number;
  lastModified: Date;
}

export interface PutOptions {
  /** Aborting makes `put` reject and leaves no object under the key. */
  signal?: AbortSignal;
  contentType?: string;
}

export interface PutResult {
  /** Bytes stored. */
  size: number;
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
 */
export interface Store {
  /** Where this store points, for messages: `/var/backups`, `s3://bucket/prefix`. Never holds a secret. */
  readonly location: string;
  put(key: string, body: Readable, options?: PutOptions): Promise<PutResult>;
  get(key: string, options?: { signal?: AbortSignal }): Promise<Readable>;
  stat(key: string): Promise<ObjectInfo | null>;
  list(prefix?: string): AsyncIterable<ObjectInfo>;
  delete(key: string): Promise<void>;
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
