import { lstat } from "node:fs/promises";
import { hostname } from "node:os";
import { performance } from "node:perf_hooks";
import { pipeline, type Readable, type Transform } from "node:stream";
import { publishBackup } from "../backup/publish.ts";
import { MANIFEST_FORMAT, type Manifest } from "../catalog/manifest.ts";
import { backupKey } from "../catalog/names.ts";
import { Hinted } from "../errors.ts";
import { type Compression, compressStage, DEFAULT_ZSTD_LEVEL } from "../stages/compress.ts";
import { ByteCounter } from "../stages/count.ts";
import type { EncryptionPlan } from "../stages/encryption.ts";
import type { Store } from "../store/store.ts";
import { VERSION } from "../version.ts";
import { type CollectTally, collectMembers } from "./collect.ts";
import { DigestStage } from "./digest-stage.ts";
import { createTarStream } from "./tar-writer.ts";

export interface SaveConfigOptions {
  /** Files and directories to archive (absolute or relative to the working directory). */
  paths: string[];
  store: Store;
  cluster: string;
  compression: Compression;
  level?: number;
  /**
   * The archive holds the cluster's private keys: null (no encryption) is accepted only together with
   * `plaintextPrivateKeysAcknowledged`.
   */
  encryption: EncryptionPlan | null;
  plaintextPrivateKeysAcknowledged?: boolean;
  dir?: string;
  signal?: AbortSignal;
  now?: () => Date;
}

/** What the config manifest adds to the snapshot manifest's fields (readers that do not know it ignore it). */
export interface ConfigSummary {
  files: number;
  directories: number;
  symlinks: number;
  /** Bytes of file content (the tar's size is `sizes.plain`). */
  bytes: number;
  /** The paths given, as archived. */
  paths: string[];
}

export interface SaveConfigResult {
  key: string;
  manifestKey: string;
  manifest: Manifest;
  config: ConfigSummary;
  /** Paths left out (sockets, devices, FIFOs). */
  skipped: string[];
}

/**
 * Streams the given paths as a POSIX tar through zstd and age into the store, named beside the snapshots
 * (`<cluster>-<time>.config.tar.zst.age`), then writes its manifest (kind `config`, sha256 of the tar in
 * `sha256`, the tar's size in `dbSize` and `sizes.plain`, and a `config` summary of what it holds).
 * Same discipline as a snapshot backup: a pending marker first, the object put atomically, the manifest
 * last, and on any failure neither object nor manifest is left. Refuses to store unencrypted unless told
 * explicitly that private keys may be stored in the clear.
 */
export async function saveConfigArchive(options: SaveConfigOptions): Promise<SaveConfigResult> {
  if (!options.encryption && !options.plaintextPrivateKeysAcknowledged) {
    throw new Hinted(
      "refusing to store the configuration unencrypted: it holds the cluster's private keys",
      "pass --recipient age1... (or --passphrase-file); to store it in the clear anyway add --i-understand-private-keys-are-stored-unencrypted to --no-encrypt",
    );
  }
  if (options.paths.length === 0) throw new Error("no path to archive");
  for (const path of options.paths) {
    await lstat(path).catch((err: NodeJS.ErrnoException) => {
      throw new Hinted(`cannot read ${path}: ${err.code ?? err.message}`, "check --path");
    });
  }
  const now = options.now ?? (() => new Date());
  const started = now();
  const t0 = performance.now();
  const key = backupKey({
    cluster: options.cluster,
    time: started,
    compression: options.compression,
    encrypted: options.encryption !== null,
    kind: "config",
    dir: options.dir ?? "",
  });
  const tally: CollectTally = { files: 0, directories: 0, symlinks: 0, bytes: 0, skipped: [] };
  const digest = new DigestStage();
  const compressed = new ByteCounter();
  const stored = new ByteCounter();
  const level = options.compression === "zstd" ? (options.level ?? DEFAULT_ZSTD_LEVEL) : undefined;
  const stages: (Readable | Transform)[] = [
    createTarStream(collectMembers(options.paths, tally)),
    digest,
    compressStage(options.compression, level),
    compressed,
    ...(options.encryption ? [options.encryption.createStage()] : []),
    stored,
  ];
  let config: ConfigSummary | undefined;
  const published = await publishBackup({
    store: options.store,
    key,
    started,
    ...(options.signal ? { signal: options.signal } : {}),
    openBody: () => pipeline(stages as [Readable, ...Transform[]], () => {}) as unknown as Readable,
    makeManifest: () => {
      if (digest.hex === undefined) throw new Error("archive stream ended before it was complete");
      config = {
        files: tally.files,
        directories: tally.directories,
        symlinks: tally.symlinks,
        bytes: tally.bytes,
        paths: options.paths,
      };
      return {
        format: MANIFEST_FORMAT,
        kind: "config",
        cluster: options.cluster,
        created: started.toISOString(),
        durationSeconds: Math.round(performance.now() - t0) / 1000,
        source: { kind: "files", endpoint: hostname() },
        dbSize: digest.bytes,
        sha256: digest.hex,
        sizes: { plain: digest.bytes, compressed: compressed.bytes, stored: stored.bytes },
        compression: { kind: options.compression, ...(level !== undefined ? { level } : {}) },
        encryption: options.encryption
          ? { kind: "age", recipients: options.encryption.recipients }
          : { kind: "none", recipients: [] },
        tool: { name: "etcd-backup", version: VERSION },
        config,
      };
    },
  }).catch((err) => {
    throw new Error("archive configuration", { cause: err });
  });
  return { ...published, config: config!, skipped: tally.skipped };
}
