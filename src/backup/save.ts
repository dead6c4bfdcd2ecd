import { performance } from "node:perf_hooks";
import { pipeline, type Readable, type Transform } from "node:stream";
import { MANIFEST_FORMAT, type Manifest } from "../catalog/manifest.ts";
import { backupKey } from "../catalog/names.ts";
import type { SnapshotSource } from "../source/source.ts";
import { budgetedByteCounter } from "../stages/buffer-budget.ts";
import { Coalesce } from "../stages/coalesce.ts";
import { type Compression, compressStage, DEFAULT_ZSTD_LEVEL } from "../stages/compress.ts";
import { ByteCounter } from "../stages/count.ts";
import type { EncryptionPlan } from "../stages/encryption.ts";
import { StatusTap } from "../stages/status-tap.ts";
import { TrailerCheck } from "../stages/trailer.ts";
import type { Store } from "../store/store.ts";
import { VERSION } from "../version.ts";
import { publishBackup } from "./publish.ts";

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
  /** The object's name pattern: ours (default) or the Talos operator's (catalog/names.ts). */
  layout?: "talos-operator";
  signal?: AbortSignal;
  /** Called as plain snapshot bytes arrive, with the total when the source announced it. */
  onProgress?: (bytes: number, expected: number | undefined) => void;
  /** The clock, for tests. */
  now?: () => Date;
}

export interface SaveResult {
  /** The backup's name: the one its start time gives, or a later second when another save had taken that. */
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
  // The pipeline takes the stream only once the store has the `.pending` marker. A source failure before that
  // (etcd gone while a slow S3 PUT runs) must not be an unhandled 'error' event, which would end the process
  // (the daemon's, the operator's); the stream keeps its error and pipeline() reports it.
  snapshot.stream.on("error", () => {});
  const key = backupKey({
    cluster: options.cluster,
    time: started,
    compression: options.compression,
    encrypted: options.encryption !== null,
    dir: options.dir ?? "",
    ...(options.layout ? { layout: options.layout } : {}),
  });
  const trailer = new TrailerCheck();
  const plain = budgetedByteCounter((n) => options.onProgress?.(n, snapshot.expectedSize));
  const status = new StatusTap();
  const compressed = new ByteCounter();
  const stored = new ByteCounter();
  const level = options.compression === "zstd" ? (options.level ?? DEFAULT_ZSTD_LEVEL) : undefined;
  const stages: (Readable | Transform)[] = [
    snapshot.stream,
    new Coalesce(),
    trailer,
    plain,
    status,
    compressStage(options.compression, level),
    compressed,
    ...(options.encryption ? [options.encryption.createStage()] : []),
    stored,
  ];
  const published = await publishBackup({
    store: options.store,
    key,
    started,
    ...(options.signal ? { signal: options.signal } : {}),
    abandon: () => snapshot.stream.destroy(),
    // pipeline() destroys every stage when one fails, so the store sees the error as its body failing.
    openBody: () => pipeline(stages as [Readable, ...Transform[]], () => {}) as unknown as Readable,
    // Neither compressed nor encrypted, the object is the snapshot itself, which the trailer check hashed.
    ...(options.compression === "none" && !options.encryption
      ? {
          objectSha256: () => {
            const result = trailer.result;
            if (!result || stored.bytes !== plain.bytes)
              throw new Error("the stored object is not the snapshot the trailer check hashed");
            return result.sha256;
          },
        }
      : {}),
    makeManifest: () => {
      const result = trailer.result;
      if (!result) throw new Error("snapshot stream ended before its trailer was checked");
      return {
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
    },
  });
  return published;
}
