import { createWriteStream } from "node:fs";
import { open, rename, stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { pipeline } from "node:stream/promises";
import type { CatalogEntry } from "../catalog/catalog.ts";
import { Hinted } from "../errors.ts";
import type { DecryptionFactory } from "../stages/encryption.ts";
import type { TrailerResult } from "../stages/trailer.ts";
import type { Store } from "../store/store.ts";
import { crashPoint } from "./crash-point.ts";
import { openPlainSnapshot } from "./plain-stream.ts";
import { createWorkFolder } from "./work-folder.ts";

export interface RestoreToFileOptions {
  store: Store;
  entry: CatalogEntry;
  out: string;
  decrypt?: DecryptionFactory;
  /** Replace an existing output file. */
  force?: boolean;
  signal?: AbortSignal;
  onProgress?: (storedBytes: number) => void;
}

/**
 * Restores a backup to a snapshot file that `etcdctl snapshot restore`, `etcdutl` and
 * `talosctl bootstrap --recover-from` accept (database and sha256 trailer, as `etcdctl snapshot save`
 * writes). The file appears under its name only once every check passed; on failure nothing is left.
 */
export async function restoreToFile(
  options: RestoreToFileOptions,
): Promise<TrailerResult & { path: string }> {
  const out = resolve(options.out);
  const existing = await stat(out).catch(() => null);
  if (existing && !options.force) {
    throw new Hinted(`${out} already exists`, "choose another --to-file or pass --force to replace it");
  }
  const dir = dirname(out);
  if (!(await stat(dir).catch(() => null))?.isDirectory()) {
    throw new Hinted(`directory ${dir} does not exist`, "create it first");
  }
  // The plain snapshot is written in a private work folder beside the output (same file system, so the final
  // rename is atomic); a killed run leaves it there for the next run's sweep, never under the output's name.
  const work = await createWorkFolder("to-file", dir);
  try {
    const temp = join(work.path, basename(out));
    const plain = await openPlainSnapshot(options.store, options.entry, options);
    const handle = await open(temp, "wx", 0o600);
    try {
      await pipeline(
        plain.stream,
        createWriteStream("", { fd: handle, flush: true, highWaterMark: 4 << 20 }),
        {
          signal: options.signal,
        },
      );
    } catch (err) {
      plain.stream.destroy();
      await handle.close().catch(() => {});
      throw err;
    }
    const result = plain.trailer.result;
    if (!result) throw new Error("snapshot ended before its trailer was checked");
    crashPoint("to-file-written");
    await rename(temp, out);
    return { ...result, path: out };
  } finally {
    await work.remove();
  }
}
