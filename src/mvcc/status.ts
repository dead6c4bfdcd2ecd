import { BoltDb } from "../bbolt/db.ts";
import { BUCKET_LEAF_FLAG } from "../bbolt/page.ts";
import { renderBoxTable } from "../render/box-table.ts";
import { humanizeBytes } from "../render/humanize-bytes.ts";
import { crc32cUpdate } from "./crc32c.ts";

/** What `etcdctl snapshot status` / `etcdutl snapshot status` report, with the same JSON names. */
export interface SnapshotStatus {
  /** CRC-32C over every top-level bucket's name, then each of its keys and values, in order. */
  hash: number;
  /** Main revision of the last key of bucket `key`. */
  revision: number;
  /** Entries over all top-level buckets. */
  totalKey: number;
  /** bbolt's tx.Size(): high-water page id times page size (the trailer and unused file tail excluded). */
  totalSize: number;
  /** The storage version (bucket `meta`, key `storageVersion`), present only in databases that record it. */
  version?: string;
}

/**
 * Computes the status of a snapshot exactly as etcd does: every top-level bucket is hashed (name, then
 * each key and value; nested bucket entries hash their key only, as Go's nil value adds nothing), and
 * every entry counts. Throws when the database cannot be read.
 */
export function snapshotStatus(db: BoltDb): SnapshotStatus {
  let hash = 0;
  let totalKey = 0;
  let revision = 0;
  let version: string | undefined;
  for (const bucket of db.buckets()) {
    hash = crc32cUpdate(hash, bucket.name);
    const isKey = bucket.name.length === 3 && bucket.name.toString("latin1") === "key";
    const isMeta = bucket.name.toString("latin1") === "meta";
    db.walk(bucket, (buf, ko, kl, vo, vl, flags) => {
      hash = crc32cUpdate(hash, buf, ko, ko + kl);
      if (!(flags & BUCKET_LEAF_FLAG)) hash = crc32cUpdate(hash, buf, vo, vo + vl);
      totalKey++;
      // Keys of bucket `key` are in revision order: the last one holds the current revision.
      if (isKey && kl >= 8) revision = readU32BE(buf, ko) * 0x100000000 + readU32BE(buf, ko + 4);
      if (isMeta && kl === 14 && buf.toString("latin1", ko, ko + kl) === "storageVersion")
        version = buf.toString("utf8", vo, vo + vl);
    });
  }
  const status: SnapshotStatus = { hash, revision, totalKey, totalSize: db.size };
  if (version !== undefined) status.version = version;
  return status;
}

function readU32BE(buf: Buffer, off: number): number {
  return ((buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!) >>> 0;
}

/** Computes the status of a snapshot file, reading it page by page (memory stays flat whatever its size). */
export function snapshotFileStatus(path: string): SnapshotStatus {
  const db = BoltDb.openFile(path);
  try {
    return snapshotStatus(db);
  } finally {
    db.close();
  }
}

/**
 * Prints a status as etcdctl does: `json` is etcdctl's `-w json` line byte for byte; `table` is its
 * `-w table` box (hash in hex, size humanized in SI units). Both end with a newline.
 */
export function renderStatus(status: SnapshotStatus, format: "table" | "json"): string {
  if (format === "json") return `${JSON.stringify(status)}\n`;
  const header = ["hash", "revision", "total keys", "total size"];
  const row = [
    status.hash.toString(16),
    String(status.revision),
    String(status.totalKey),
    humanizeBytes(status.totalSize),
  ];
  if (status.version !== undefined) {
    header.push("version");
    row.push(status.version);
  }
  return renderBoxTable(header, [row], "right");
}
