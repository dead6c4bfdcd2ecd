/**
 * The JSON objects of the revision log: a segment's manifest, a chain's description, its head and a gap.
 * Each is written whole by one `put` (atomic in every store); readers refuse a newer format.
 */

export const LOG_FORMAT = 1;

/** Beside every segment, written only once the segment object is stored. */
export interface SegmentManifest {
  format: typeof LOG_FORMAT;
  kind: "log-segment";
  cluster: string;
  /** Revision of the chain's full backup. */
  base: number;
  firstRevision: number;
  lastRevision: number;
  revisions: number;
  events: number;
  leaseRecords: number;
  /** When the log received the first and last revision, RFC 3339 with milliseconds. */
  firstTime: string;
  lastTime: string;
  /** sha256 of the plain payload (before compression and encryption), hex. */
  sha256: string;
  sizes: { plain: number; stored: number };
  compression: { kind: "zstd" };
  encryption: { kind: "age" | "none"; recipients: { kind: string; publicKey?: string }[] };
  tool: { name: string; version: string };
}

/** Written when a chain starts: which full backup it replays on. */
export interface ChainRecord {
  format: typeof LOG_FORMAT;
  kind: "log-chain";
  cluster: string;
  base: number;
  /** The full backup's key in the store. */
  backup: string;
  /** When the full backup started (its manifest's `created`). */
  backupTime: string;
  started: string;
  /** Why this chain started: the first one, or after a gap. */
  reason: string;
}

/** Overwritten at every segment interval: everything up to `revision` is in closed segments, as of `confirmed`. */
export interface HeadRecord {
  format: typeof LOG_FORMAT;
  kind: "log-head";
  revision: number;
  confirmed: string;
}

/** Revisions `from..to` are not in the log (to may be unknown as the revision etcd compacted to, minus one). */
export interface GapRecord {
  format: typeof LOG_FORMAT;
  kind: "log-gap";
  cluster: string;
  from: number;
  to: number;
  detected: string;
  reason: string;
}

/**
 * Written by prune before it removes a chain's first segments: the chain now starts at revision `through`
 * (its earliest remaining full backup); the segments up to it are gone.
 */
export interface PrunedRecord {
  format: typeof LOG_FORMAT;
  kind: "log-pruned";
  through: number;
  pruned: string;
}

export type LogObject = SegmentManifest | ChainRecord | HeadRecord | GapRecord | PrunedRecord;

const KINDS = new Set(["log-segment", "log-chain", "log-head", "log-gap", "log-pruned"]);

/** Parses one of the log's JSON objects and checks its format and kind. */
export function parseLogObject<K extends LogObject["kind"]>(
  text: string,
  kind: K,
): Extract<LogObject, { kind: K }> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error(`${kind} is not JSON`);
  }
  const o = value as Partial<LogObject>;
  if (typeof o !== "object" || o === null || !KINDS.has(String(o.kind))) throw new Error(`not a ${kind}`);
  if (o.format !== LOG_FORMAT)
    throw new Error(`${kind} has format ${String(o.format)}; this version reads ${LOG_FORMAT}`);
  if (o.kind !== kind) throw new Error(`expected a ${kind}, found a ${o.kind}`);
  return o as Extract<LogObject, { kind: K }>;
}
