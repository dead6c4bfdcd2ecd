import { pipeline, type Readable, type Transform } from "node:stream";
import type { CatalogEntry } from "../catalog/catalog.ts";
import { Hinted } from "../errors.ts";
import { budgetedByteCounter } from "../stages/buffer-budget.ts";
import { decompressStage } from "../stages/compress.ts";
import type { DecryptionFactory } from "../stages/encryption.ts";
import { TrailerCheck } from "../stages/trailer.ts";
import type { Store } from "../store/store.ts";
import { crashAfterBytesRead } from "./crash-point.ts";

export interface PlainSnapshot {
  /** The plain snapshot (database and trailer); fails at its end if the trailer or manifest sha256 do not match. */
  stream: Readable;
  /** Checked once `stream` has ended. */
  trailer: TrailerCheck;
}

/**
 * Opens a stored backup as the plain snapshot etcd produced: fetch, decrypt (when the name says `.age`),
 * decompress (`.zst`), then the trailer check and, when the backup has a manifest, its sha256. A snapshot
 * without a trailer whose size is a whole number of pages passes with `trailer.result.hasTrailer` false.
 */
export async function openPlainSnapshot(
  store: Store,
  entry: CatalogEntry,
  options: { decrypt?: DecryptionFactory; signal?: AbortSignal; onProgress?: (storedBytes: number) => void },
): Promise<PlainSnapshot> {
  if (entry.encrypted && !options.decrypt) {
    throw new Hinted(
      `backup ${entry.key} is encrypted`,
      "pass --identity FILE (or --passphrase-file FILE) to decrypt it",
    );
  }
  const source = await store.get(entry.key, { signal: options.signal });
  // A snapshot that is the database alone (copied from a data dir's member/snap/db) passes, as in `verify`:
  // the result says no trailer was there to check.
  const trailer = new TrailerCheck({
    allowMissing: true,
    ...(entry.manifest ? { expectSha256: entry.manifest.sha256 } : {}),
  });
  const stages: Transform[] = [
    budgetedByteCounter((n) => {
      crashAfterBytesRead(n);
      options.onProgress?.(n);
    }),
    ...(entry.encrypted && options.decrypt ? [options.decrypt()] : []),
    decompressStage(entry.compression),
    trailer,
  ];
  const stream = pipeline([source, ...stages] as [Readable, ...Transform[]], () => {}) as unknown as Readable;
  return { stream, trailer };
}
