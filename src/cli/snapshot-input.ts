import { stat } from "node:fs/promises";
import { type Command, Option } from "commander";
import { BoltDb } from "../bbolt/db.ts";
import type { CatalogEntry } from "../catalog/catalog.ts";
import { Hinted, UsageError } from "../errors.ts";
import { proveTrailer } from "../mvcc/trailer.ts";
import { type MaterializedSnapshot, materializeFile } from "../restore/materialize.ts";
import type { DecryptionFactory } from "../stages/encryption.ts";
import type { Store } from "../store/store.ts";
import { addDecryptOptions, type DecryptFlags, decryptionFromFlags } from "./encryption-options.ts";
import { addStoreOptions, type StoreFlags } from "./store-options.ts";

/** Flags of commands that read a snapshot given as FILE or as BACKUP (a name from `list`, or `latest`). */
export function addSnapshotInputOptions(cmd: Command): Command {
  addStoreOptions(cmd);
  addDecryptOptions(cmd);
  return cmd
    .addOption(new Option("--cluster <name>", "with latest: only this cluster's backups"))
    .option("--before <time>", "with latest: the newest backup before this time (RFC 3339)");
}

export type SnapshotInputFlags = StoreFlags & DecryptFlags & { cluster?: string; before?: string };

export interface SnapshotInput {
  snapshot: MaterializedSnapshot;
  /** Set when the input was a backup in a store. */
  entry?: CatalogEntry;
  store?: Store;
  decrypt?: DecryptionFactory;
}

/**
 * Reads FILE or BACKUP: an existing local path is a snapshot file (plain, zstd or age); anything else is a
 * backup looked up in `--to`. The caller disposes of `snapshot`.
 */
export async function openSnapshotInput(
  arg: string,
  flags: SnapshotInputFlags,
  signal?: AbortSignal,
): Promise<SnapshotInput> {
  const decrypt = await decryptionFromFlags(flags);
  const isFile = await stat(arg).then(
    (s) => s.isFile(),
    () => false,
  );
  const opts = { ...(decrypt ? { decrypt } : {}), ...(signal ? { signal } : {}) };
  if (isFile) return { snapshot: await materializeFile(arg, opts), ...(decrypt ? { decrypt } : {}) };
  if (!flags.to) {
    throw new UsageError(
      `${arg} is not a file`,
      "give a snapshot file, or a backup name with --to DEST (or ETCD_BACKUP_TO)",
    );
  }
  const before = flags.before ? new Date(flags.before) : undefined;
  if (before && Number.isNaN(before.getTime())) {
    throw new UsageError(
      `--before ${JSON.stringify(flags.before)} is not a time`,
      "use RFC 3339, e.g. 2026-11-23T12:00:00Z",
    );
  }
  // The store modules and the catalog load only here: reading a local file needs none of them.
  const [{ storeFromFlags }, { resolveBackup }, { materializeBackup }] = await Promise.all([
    import("./store-from-flags.ts"),
    import("../catalog/catalog.ts"),
    import("../restore/materialize.ts"),
  ]);
  const store = storeFromFlags(flags);
  const entry = await resolveBackup(store, arg, {
    ...(before ? { before } : {}),
    ...(flags.cluster ? { cluster: flags.cluster } : {}),
  });
  const snapshot = await materializeBackup(store, entry, opts);
  return { snapshot, entry, store, ...(decrypt ? { decrypt } : {}) };
}

/**
 * `openSnapshotInput` for the commands that answer with keys and values (get, inspect, diff): before any
 * answer, the snapshot's sha256 trailer is checked, so a changed or cut-short file fails with one line
 * instead of giving a wrong value. A snapshot without a trailer (a copied data-dir database) is read with a
 * warning on stderr, since nothing can prove its bytes.
 */
export async function openProvenSnapshotInput(
  arg: string,
  flags: SnapshotInputFlags,
  signal?: AbortSignal,
  warn: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Promise<SnapshotInput> {
  const input = await openSnapshotInput(arg, flags, signal);
  try {
    const trailer = await proveTrailer(input.snapshot, signal);
    if (trailer === "absent")
      warn(
        `warning: ${input.snapshot.label} has no sha256 trailer (a copied data-dir database?): its values cannot be proven intact`,
      );
    return input;
  } catch (err) {
    await input.snapshot.dispose();
    throw new Hinted(
      `cannot read ${arg}`,
      "the snapshot is damaged: use another backup, or run `etcd-backup verify` on it for details",
      { cause: err },
    );
  }
}

/** Opens the bbolt database of a materialized snapshot; call `close()` when done. */
export function openDb(snapshot: MaterializedSnapshot): BoltDb {
  if (snapshot.buffer) return new BoltDb(snapshot.buffer);
  return BoltDb.openFile(snapshot.path!);
}
