import { BoltDb } from "../bbolt/db.ts";
import { BUCKET_LEAF_FLAG } from "../bbolt/page.ts";
import { renderBoxTable } from "../render/box-table.ts";
import { humanizeBytes } from "../render/humanize-bytes.ts";
import { crc32cUpdate } from "./crc32c.ts";
import { ByteKeySet } from "./key-set.ts";
import { emptyKeyValueRanges, type KeyValueRanges, readKeyValueRanges } from "./key-values.ts";

/**
 * What `etcdctl snapshot status` / `etcdutl snapshot status` report, with the same JSON names. `totalKey`
 * is etcd 3.4's and 3.5's count (every entry); etcd 3.6 counts live keys instead (`liveKeys`, computed on
 * request). Manifests and verify keep the 3.5 meaning.
 */
export interface SnapshotStatus {
  /** CRC-32C over every top-level bucket's name, then each of its keys and values, in order. */
  hash: number;
  /** Main revision of the last key of bucket `key`. */
  revision: number;
  /** Entries over all top-level buckets (etcd 3.4 and 3.5's "total keys"). */
  totalKey: number;
  /** bbolt's tx.Size(): high-water page id times page size (the trailer and unused file tail excluded). */
  totalSize: number;
  /** The storage version (bucket `meta`, key `storageVersion`), present only in databases that record it. */
  version?: string;
  /**
   * Distinct keys alive at the snapshot's revision (etcd 3.6's "total keys": bucket `key` replayed in
   * revision order, a tombstone removing its key). Only with `{ liveKeys: true }`.
   */
  liveKeys?: number;
}

/**
 * The etcd releases whose `snapshot status` prints differently. 3.4 (etcdctl) and 3.5 (etcdutl) print
 * hash, revision, totalKey (entries of every bucket) and totalSize. 3.6 (etcdutl 3.6.16 measured) counts
 * live keys as totalKey and always adds `version`, the storage version ("" when the snapshot has none, as
 * snapshots of 3.5 and older clusters do), also as a fifth table column.
 */
export const STATUS_DIALECTS = ["3.6", "3.5", "3.4"] as const;
export type StatusDialect = (typeof STATUS_DIALECTS)[number];

/**
 * Computes the status of a snapshot exactly as etcd does: every top-level bucket is hashed (name, then
 * each key and value; nested bucket entries hash their key only, as Go's nil value adds nothing), and
 * every entry counts. Throws when the database cannot be read.
 */
export function snapshotStatus(db: BoltDb, options: { liveKeys?: boolean } = {}): SnapshotStatus {
  let hash = 0;
  let totalKey = 0;
  let revision = 0;
  let version: string | undefined;
  // Live keys by their bytes. Memory grows with the number of keys, as etcdutl 3.6's own count does; only
  // built when asked.
  const live = options.liveKeys ? new ByteKeySet() : undefined;
  const kv = emptyKeyValueRanges();
  // The bytes [runStart, runEnd) of runBuf are still to be hashed: bbolt writes each key and its value right
  // after the previous value, so a page's keys and values are mostly one run, hashed in one call when the
  // page is done (the SIMD loop needs long ranges) instead of two calls per entry.
  let runBuf: Buffer | null = null;
  let runStart = 0;
  let runEnd = 0;
  const flush = () => {
    if (runBuf !== null && runEnd > runStart) hash = crc32cUpdate(hash, runBuf, runStart, runEnd);
    runBuf = null;
    runStart = runEnd = 0;
  };
  for (const bucket of db.buckets()) {
    hash = crc32cUpdate(hash, bucket.name);
    const isKey = bucket.name.length === 3 && bucket.name.toString("latin1") === "key";
    const isMeta = bucket.name.toString("latin1") === "meta";
    db.walk(
      bucket,
      (buf, ko, kl, vo, vl, flags) => {
        if (buf !== runBuf || ko !== runEnd) {
          flush();
          runBuf = buf;
          runStart = ko;
        }
        runEnd = ko + kl;
        if (!(flags & BUCKET_LEAF_FLAG)) {
          if (vo !== runEnd) {
            flush();
            runBuf = buf;
            runStart = vo;
          }
          runEnd = vo + vl;
        }
        totalKey++;
        // Keys of bucket `key` are in revision order: the last one holds the current revision.
        if (isKey && kl >= 8) revision = readU32BE(buf, ko) * 0x100000000 + readU32BE(buf, ko + 4);
        if (isKey && live) {
          if (!keyField(buf, vo, vo + vl, kv)) readKeyValueRanges(buf, vo, vo + vl, kv);
          // A tombstone's revision key is 18 bytes, the last one 't' (etcd's IsTombstone).
          if (kl === 18 && buf[ko + 17] === 0x74) live.delete(buf, kv.keyStart, kv.keyEnd);
          else live.add(buf, kv.keyStart, kv.keyEnd);
        }
        if (isMeta && kl === 14 && buf.toString("latin1", ko, ko + kl) === "storageVersion")
          version = buf.toString("utf8", vo, vo + vl);
      },
      flush,
    );
    flush();
  }
  const status: SnapshotStatus = { hash, revision, totalKey, totalSize: db.size };
  if (version !== undefined) status.version = version;
  if (live) status.liveKeys = live.size;
  return status;
}

/**
 * Finds the key (field 1; the last one, as protobuf decoding keeps) of the mvccpb.KeyValue in `buf[start,
 * end)` and sets `out.keyStart`/`out.keyEnd`, skipping the other fields without decoding them: the general
 * reader cost a tenth of status on the Kubernetes-shaped bench. Returns false, leaving the work to
 * readKeyValueRanges (and its error), on anything it does not expect.
 */
function keyField(buf: Buffer, start: number, end: number, out: KeyValueRanges): boolean {
  out.keyStart = out.keyEnd = start;
  let p = start;
  while (p < end) {
    const tag = buf[p++]!;
    if (tag & 0x80 || tag < 8) return false;
    const wireType = tag & 7;
    if (wireType === 0) {
      // A varint of at most 10 bytes.
      const stop = p + 10;
      while (p < end && p < stop && buf[p]! & 0x80) p++;
      if (p >= end || p >= stop) return false;
      p++;
    } else if (wireType === 2) {
      let length = 0;
      let shift = 0;
      for (;;) {
        if (p >= end || shift > 28) return false;
        const b = buf[p++]!;
        length += (b & 0x7f) * 2 ** shift;
        if (!(b & 0x80)) break;
        shift += 7;
      }
      if (p + length > end) return false;
      if (tag === 0x0a) {
        out.keyStart = p;
        out.keyEnd = p + length;
      }
      p += length;
    } else if (wireType === 1) p += 8;
    else if (wireType === 5) p += 4;
    else return false;
  }
  return p === end;
}

function readU32BE(buf: Buffer, off: number): number {
  return ((buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!) >>> 0;
}

/** Computes the status of a snapshot file, reading it page by page (memory stays flat whatever its size). */
export function snapshotFileStatus(path: string, options: { liveKeys?: boolean } = {}): SnapshotStatus {
  const db = BoltDb.openFile(path);
  try {
    return snapshotStatus(db, options);
  } finally {
    db.close();
  }
}

/**
 * Prints a status as `snapshot status` of the given etcd release does (default 3.5, which 3.4's etcdctl
 * matches): `json` is its `-w json` line byte for byte; `table` is its `-w table` box (hash in hex, size
 * humanized in SI units). Both end with a newline. The 3.6 dialect needs a status computed with
 * `{ liveKeys: true }`.
 */
export function renderStatus(
  status: SnapshotStatus,
  format: "table" | "json",
  dialect: StatusDialect = "3.5",
): string {
  const { hash, revision, totalSize } = status;
  if (dialect === "3.6") {
    if (status.liveKeys === undefined) throw new Error("the etcd 3.6 status needs the live key count");
    // etcdutl 3.6 prints the storage version only when it parses as a semantic version.
    const version = status.version !== undefined && SEMVER.test(status.version) ? status.version : "";
    const fields = { hash, revision, totalKey: status.liveKeys, totalSize, version };
    if (format === "json") return `${JSON.stringify(fields)}\n`;
    return statusTable(fields, true);
  }
  const fields = { hash, revision, totalKey: status.totalKey, totalSize };
  if (format === "json") return `${JSON.stringify(fields)}\n`;
  return statusTable(fields, false);
}

const SEMVER = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/;

function statusTable(
  s: { hash: number; revision: number; totalKey: number; totalSize: number; version?: string },
  withVersion: boolean,
): string {
  const header = ["hash", "revision", "total keys", "total size"];
  const row = [s.hash.toString(16), String(s.revision), String(s.totalKey), humanizeBytes(s.totalSize)];
  if (withVersion) {
    header.push("version");
    row.push(s.version ?? "");
  }
  return renderBoxTable(header, [row], "right");
}
