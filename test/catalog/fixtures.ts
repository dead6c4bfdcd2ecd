import { createHash } from "node:crypto";
import { utimes } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { zstdCompressSync } from "node:zlib";
import { MANIFEST_FORMAT, type Manifest, serializeManifest } from "../../src/catalog/manifest.ts";
import { backupKey, manifestKey } from "../../src/catalog/names.ts";
import type { Compression } from "../../src/stages/compress.ts";
import type { LocalStore } from "../../src/store/local.ts";
import type { Store } from "../../src/store/store.ts";

/** A manifest as `save` writes it for a plain snapshot; fields can be overridden. */
export function sampleManifest(
  cluster: string,
  time: Date,
  snapshot: Buffer,
  compression: Compression,
  stored: number,
  revision = 42,
): Manifest {
  return {
    format: MANIFEST_FORMAT,
    kind: "snapshot",
    cluster,
    created: time.toISOString(),
    durationSeconds: 0.5,
    source: { kind: "etcd", endpoint: "http://127.0.0.1:2379" },
    etcd: { revision },
    dbSize: snapshot.length - 32,
    sha256: createHash("sha256").update(snapshot).digest("hex"),
    sizes: { plain: snapshot.length, compressed: stored, stored },
    compression: { kind: compression },
    encryption: { kind: "none", recipients: [] },
    tool: { name: "etcd-backup", version: "0.0.0-test" },
  };
}

export interface PlantOptions {
  cluster: string;
  time: Date;
  compression?: Compression;
  /** Write a manifest (our backup) or not (another tool's). Default true. */
  manifest?: boolean | string;
  /** Leave a `.pending` marker beside it (our unfinished upload). */
  pending?: boolean;
  /** Store no object (only the marker and/or manifest). */
  noObject?: boolean;
  dir?: string;
  /** A name written by hand instead of `backupKey` (talos-backup's offsets). */
  key?: string;
  revision?: number;
}

/**
 * Writes a plain (unencrypted) backup of `snapshot` straight through the store, as `save` would have left it,
 * or a half-done one. The object is zstd-compressed when the name says `.zst`. Returns its key.
 */
export async function plantBackup(store: Store, snapshot: Buffer, o: PlantOptions): Promise<string> {
  const compression = o.compression ?? "none";
  const key =
    o.key ??
    backupKey({
      cluster: o.cluster,
      time: o.time,
      compression,
      encrypted: false,
      ...(o.dir ? { dir: o.dir } : {}),
    });
  const body = compression === "zstd" ? zstdCompressSync(snapshot) : snapshot;
  if (o.pending) await store.put(`${key}.pending`, Readable.from([Buffer.from("{}")]));
  if (!o.noObject) await store.put(key, Readable.from([body]));
  if (o.manifest !== false) {
    const text =
      typeof o.manifest === "string"
        ? o.manifest
        : serializeManifest(
            sampleManifest(o.cluster, o.time, snapshot, compression, body.length, o.revision),
          );
    await store.put(manifestKey(key), Readable.from([Buffer.from(text)]));
  }
  return key;
}

/** Sets a local store file's modification time, to make a leftover look old. */
export async function age(store: LocalStore, key: string, when: Date): Promise<void> {
  await utimes(join(store.root, key), when, when);
}

/** A fake snapshot: a multiple of 512 bytes plus the 32-byte sha256 trailer etcd appends. */
export function fakeSnapshot(seed: number, pages = 2): Buffer {
  const db = Buffer.alloc(512 * pages, seed & 0xff);
  return Buffer.concat([db, createHash("sha256").update(db).digest()]);
}
