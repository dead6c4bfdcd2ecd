import { performance } from "node:perf_hooks";
import { pipeline, Readable, type Transform } from "node:stream";
import { PENDING_SUFFIX } from "../catalog/catalog.ts";
import { MANIFEST_FORMAT, type Manifest, serializeManifest } from "../catalog/manifest.ts";
import { backupKey, manifestKey } from "../catalog/names.ts";
import type { SnapshotSource } from "../source/source.ts";
import { type Compression, compressStage, DEFAULT_ZSTD_LEVEL } from "../stages/compress.ts";
import { ByteCounter } from "../stages/count.ts";
import { StatusTap } from "../stages/status-tap.ts";
import { TrailerCheck } from "../stages/trailer.ts";
import type { Store } from "../store/store.ts";
import { VERSION } from "../version.ts";

/** How the stored bytes are encrypted: a stage factory and what the manifest may say about the recipients. */
export interface EncryptionPlan {
  createStage(): Transform;
  /** Public descriptions only (kind, X25519 public key); never a secret. */
  recipients: { kind: string; publicKey?: string }[];
}

export interface SaveOptions {
  source: SnapshotSource;
  store: Store;
  cluster: string;
  compression: Compression;
  level?: number;
  /** null means the backup is stored unencrypted (the caller decided so explicitly). */
  encryption: EncryptionPlan | null;
  /** Folder inside the store (talos-backup's S3 prefix layout); "" for the store root. */
  dir?: string;
  signal?: AbortSignal;
  /** Called as plain snapshot bytes arrive, with the total when the source announced it. */
  onProgress?: (bytes: number, expected: number | undefined) => void;
  /** The clock, for tests. */
  now?: () => Date;
}

export interface SaveResult {
  key: string;
  manifestKey: string;
  manifest: Manifest;
}

/**
 * Streams one snapshot from the source through the trailer check, compression and encryption into the
 * store, then writes the manifest beside it. Nothing is buffered beyond the streams' own high-water marks.
 *
 * On any failure (source error, trailer mismatch, store error, abort) it rejects, and no object and no
 * manifest are left: the store's `put` is atomic, and an object whose manifest could not be written is
 * deleted again.
 */
export async function saveBackup(options: SaveOptions): Promise<SaveResult> {
  const now = options.now ?? (() => new Date());
  const started = now();
  const t0 = performance.now();
  const snapshot = await options.source.open(options.signal);
  const key = backupKey({
    cluster: options.cluster,
    time: started,
    compression: options.compression,
    encrypted: options.encryption !== null,
    dir: options.dir ?? "",
  });
  if (await options.store.stat(key)) {
    snapshot.stream.destroy();
    throw new Error(`a backup named ${key} already exists in ${options.store.location}; not overwriting it`);
  }

  // The marker tells `list` and `prune` that an object without manifest is our unfinished work, not a
  // backup another tool wrote; it goes once the manifest is in place.
  const marker = `${key}${PENDING_SUFFIX}`;
  try {
    await options.store.put(
      marker,
      bufferStream(JSON.stringify({ started: started.toISOString(), pid: process.pid })),
    );
  } catch (err) {
    snapshot.stream.destroy();
    throw new Error(`cannot write to ${options.store.location}`, { cause: err });
  }

  const trailer = new TrailerCheck();
  const plain = new ByteCounter((n) => options.onProgress?.(n, snapshot.expectedSize));
  const status = new StatusTap();
  const compressed = new ByteCounter();
  const stored = new ByteCounter();
  const level = options.compression === "zstd" ? (options.level ?? DEFAULT_ZSTD_LEVEL) : undefined;
  const stages: (Readable | Transform)[] = [
    snapshot.stream,
    trailer,
    plain,
    status,
    compressStage(options.compression, level),
    compressed,
    ...(options.encryption ? [options.encryption.createStage()] : []),
    stored,
  ];
  // pipeline() destroys every stage when one fails, so the store sees the error as its body failing.
  const body = pipeline(stages as [Readable, ...Transform[]], () => {}) as unknown as Readable;
  try {
    await options.store.put(key, body, { signal: options.signal, contentType: "application/octet-stream" });
  } catch (err) {
    body.destroy();
    await options.store.delete(marker).catch(() => {});
    throw err;
  }

  const result = trailer.result;
  if (!result) {
    await options.store.delete(key).catch(() => {});
    await options.store.delete(marker).catch(() => {});
    throw new Error("snapshot stream ended before its trailer was checked");
  }
  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    kind: "snapshot",
    cluster: options.cluster,
    created: started.toISOString(),
    durationSeconds: Math.round(performance.now() - t0) / 1000,
    source: snapshot.origin,
    ...(status.result
      ? {
          etcd: {
            revision: status.result.revision,
            hash: status.result.hash,
            totalKey: status.result.totalKey,
          },
        }
      : {}),
    dbSize: result.dbSize,
    sha256: result.sha256,
    sizes: { plain: plain.bytes, compressed: compressed.bytes, stored: stored.bytes },
    compression: { kind: options.compression, ...(level !== undefined ? { level } : {}) },
    encryption: options.encryption
      ? { kind: "age", recipients: options.encryption.recipients }
      : { kind: "none", recipients: [] },
    tool: { name: "etcd-backup", version: VERSION },
  };
  const mkey = manifestKey(key);
  try {
    await options.store.put(mkey, bufferStream(serializeManifest(manifest)), {
      signal: options.signal,
      contentType: "application/json",
    });
  } catch (err) {
    // Without its manifest the object would look like an incomplete leftover; remove it so nothing half-done stays.
    await options.store.delete(key).catch(() => {});
    await options.store.delete(marker).catch(() => {});
    throw new Error("write manifest", { cause: err });
  }
  await options.store.delete(marker).catch(() => {});
  return { key, manifestKey: mkey, manifest };
}

function bufferStream(text: string): Readable {
  return Readable.from([Buffer.from(text)]);
}
