import type { BoltDb } from "../bbolt/db.ts";
import { ProtoReader } from "../protobuf/reader.ts";

/**
 * etcd's MVCC store as it lies in bbolt: bucket `key` maps revision keys (8-byte big-endian main revision,
 * '_', 8-byte big-endian sub revision, and a trailing 't' for a deletion) to mvccpb.KeyValue messages;
 * bucket `meta` holds the compaction revisions; bucket `lease` the leases.
 */

/**
 * A key/value as decoded from one mvccpb.KeyValue. `key` and `value` are views into the buffer it was decoded
 * from: valid exactly as long as that buffer is (for a walk, until the visitor returns). Whoever keeps it
 * longer copies it (`ownedKeyValue`).
 */
export interface LiveKey {
  key: Buffer;
  value: Buffer;
  createRevision: number;
  modRevision: number;
  version: number;
  /** Lease ID, 0n when the key has none. */
  lease: bigint;
}

/** The keys alive at the snapshot's revision and what the `key` bucket held. */
export interface MvccState<T = LiveKey> {
  /** Live keys by key (latin1, so that any byte string maps one to one), in order of first appearance. */
  keys: Map<string, T>;
  /** Highest main revision in bucket `key`. */
  revision: number;
  /** Entries of bucket `key`: every stored revision, tombstones included. */
  revisions: number;
  tombstones: number;
}

/** Decodes an mvccpb.KeyValue (key=1, create_revision=2, mod_revision=3, version=4, value=5, lease=6). */
export function decodeKeyValue(buf: Uint8Array, start: number, end: number): LiveKey {
  const r = new ProtoReader(buf, start, end);
  const kv: LiveKey = { key: EMPTY, value: EMPTY, createRevision: 0, modRevision: 0, version: 0, lease: 0n };
  while (r.next()) {
    switch (r.field) {
      case 1:
        kv.key = r.bytes();
        break;
      case 2:
        kv.createRevision = r.signed();
        break;
      case 3:
        kv.modRevision = r.signed();
        break;
      case 4:
        kv.version = r.signed();
        break;
      case 5:
        kv.value = r.bytes();
        break;
      case 6:
        kv.lease = r.bigVarint();
        break;
    }
  }
  return kv;
}

/** `kv` with its key and value copied out of the page they were decoded from, so it may be kept. */
export function ownedKeyValue(kv: LiveKey): LiveKey {
  return { ...kv, key: Buffer.from(kv.key), value: Buffer.from(kv.value) };
}

const EMPTY = Buffer.alloc(0);

/** Where the fields of an mvccpb.KeyValue lie in its buffer, for a pass that copies nothing. */
export interface KeyValueRanges {
  keyStart: number;
  keyEnd: number;
  valueStart: number;
  valueEnd: number;
  modRevision: number;
  /** True when the key is attached to a lease. */
  leased: boolean;
}

/** A `KeyValueRanges` to fill with `readKeyValueRanges`, reused for every entry of a walk. */
export function emptyKeyValueRanges(): KeyValueRanges {
  return { keyStart: 0, keyEnd: 0, valueStart: 0, valueEnd: 0, modRevision: 0, leased: false };
}

/** Locates key and value of the mvccpb.KeyValue in `buf[start, end)` and reads its mod revision into `out`. */
export function readKeyValueRanges(buf: Uint8Array, start: number, end: number, out: KeyValueRanges): void {
  out.keyStart = out.keyEnd = out.valueStart = out.valueEnd = start;
  out.modRevision = 0;
  out.leased = false;
  const r = new ProtoReader(buf, start, end);
  while (r.next()) {
    if (r.field === 1) {
      out.keyStart = r.start;
      out.keyEnd = r.start + r.length;
    } else if (r.field === 5) {
      out.valueStart = r.start;
      out.valueEnd = r.start + r.length;
    } else if (r.field === 3) out.modRevision = r.signed();
    else if (r.field === 6) out.leased = r.value !== 0;
  }
}

/** Main revision of a revision key (bucket `key`, or a compaction revision in bucket `meta`). */
export function revisionMain(buf: Uint8Array, off: number, len: number): number {
  if (len < 8) throw new Error(`revision key of ${len} bytes`);
  return Number(Buffer.from(buf.buffer, buf.byteOffset + off, 8).readBigInt64BE(0));
}

/**
 * Replays bucket `key` in revision order: the latest revision of each key wins, a tombstone deletes it.
 * With `prefix`, only keys starting with it are kept. Each live key is kept as a copy (`ownedKeyValue`), so
 * the result stays valid whatever the database is read from. Throws when the database has no `key` bucket.
 */
export function mvccState(db: BoltDb, options: { prefix?: string } = {}): MvccState {
  return replayLiveKeys(db, options, ownedKeyValue);
}

/**
 * `mvccState` keeping, for each live key, what `keep` makes of its latest revision. `keep` gets views that
 * are valid only during the call (see LiveKey): it must copy what it keeps, or keep only numbers and digests.
 */
export function replayLiveKeys<T>(
  db: BoltDb,
  options: { prefix?: string },
  keep: (kv: LiveKey) => T,
): MvccState<T> {
  const bucket = db.bucket("key");
  if (!bucket) throw new Error("not an etcd database: no bucket key");
  const prefix = options.prefix === undefined ? undefined : Buffer.from(options.prefix, "utf8");
  const keys = new Map<string, T>();
  let revision = 0;
  let revisions = 0;
  let tombstones = 0;
  db.walk(bucket, (buf, ko, kl, vo, vl) => {
    revisions++;
    if (kl < 17) throw new Error(`bucket key: revision key of ${kl} bytes (expected 17 or 18)`);
    revision = revisionMain(buf, ko, kl);
    const tombstone = kl === 18 && buf[ko + 17] === 0x74;
    if (tombstone) tombstones++;
    const kv = decodeKeyValue(buf, vo, vo + vl);
    if (prefix && (kv.key.length < prefix.length || prefix.compare(kv.key, 0, prefix.length) !== 0)) return;
    const name = kv.key.toString("latin1");
    if (tombstone) keys.delete(name);
    else keys.set(name, keep(kv));
  });
  return { keys, revision, revisions, tombstones };
}

/** Compaction revisions recorded in bucket `meta` (`finishedCompactRev`, `scheduledCompactRev`), 0 when absent. */
export function compactionRevisions(db: BoltDb): { finished: number; scheduled: number } {
  const out = { finished: 0, scheduled: 0 };
  const meta = db.bucket("meta");
  if (!meta) return out;
  db.walk(meta, (buf, ko, kl, vo, vl) => {
    const name = buf.toString("latin1", ko, ko + kl);
    if (name === "finishedCompactRev" && vl >= 8) out.finished = revisionMain(buf, vo, vl);
    if (name === "scheduledCompactRev" && vl >= 8) out.scheduled = revisionMain(buf, vo, vl);
  });
  return out;
}

/** A lease from bucket `lease` (leasepb.Lease: ID=1, TTL=2). */
export interface Lease {
  id: bigint;
  ttl: number;
}

/** The leases stored in the snapshot, in ID order. */
export function leases(db: BoltDb): Lease[] {
  const bucket = db.bucket("lease");
  if (!bucket) return [];
  const out: Lease[] = [];
  db.walk(bucket, (buf, _ko, _kl, vo, vl) => {
    const r = new ProtoReader(buf, vo, vo + vl);
    const lease: Lease = { id: 0n, ttl: 0 };
    while (r.next()) {
      if (r.field === 1 && r.wireType === 0) lease.id = r.bigVarint();
      if (r.field === 2 && r.wireType === 0) lease.ttl = r.signed();
    }
    out.push(lease);
  });
  return out;
}
