import { dirname, resolve } from "node:path";
import { type Command, Option } from "commander";
import { resolveBackup } from "../../catalog/catalog.ts";
import { parseTimeBound } from "../../catalog/time-bound.ts";
import { UsageError } from "../../errors.ts";
import { formatBytes } from "../../render/units.ts";
import type { MemberSettings } from "../../restore/data-dir.ts";
import { DEFAULT_REVISION_BUMP, restoreToDataDir } from "../../restore/data-dir.ts";
import { restoreToFile } from "../../restore/to-file.ts";
import { addDecryptOptions, type DecryptFlags, decryptionFromFlags } from "../encryption-options.ts";
import { removeLeftovers } from "../leftovers.ts";
import { ProgressBar } from "../progress.ts";
import { abortOnSignals } from "../signals.ts";
import { storeFromFlags } from "../store-from-flags.ts";
import { addStoreOptions, type StoreFlags } from "../store-options.ts";
import { addTalosOptions, restoreToTalosFromFlags, type TalosFlags } from "../talos-options.ts";

/** Said when a backup is the database alone, as `verify` says it. */
const NO_TRAILER_NOTE =
  "note: the snapshot has no sha256 trailer (the database alone, as copied from a data dir's member/snap/db), " +
  "so there was none to check";

type RestoreFlags = StoreFlags &
  DecryptFlags & { toFile?: string; force?: boolean; before?: string; cluster?: string } & DataDirFlags &
  TalosFlags & { talosNode?: string; dryRun?: boolean } & {
    at?: string;
    revision?: string;
    replayDir?: string;
  };

/** `--data-dir` and etcdutl's member flags. */
export type DataDirFlags = {
  dataDir?: string;
  name?: string;
  initialCluster?: string;
  initialClusterToken?: string;
  initialAdvertisePeerUrls?: string;
  walDir?: string;
  skipHashCheck?: boolean;
  bumpRevision: string;
  restoreTool?: string;
};

export function register(program: Command): void {
  const cmd = program
    .command("restore")
    .description("restore a backup (a name from `list`, or `latest`) to a snapshot file")
    .argument("[backup]", "backup name as `list` prints it, or latest (none with --at/--revision)");
  addStoreOptions(cmd);
  addDecryptOptions(cmd);
  addTalosOptions(cmd, { nodes: false, longEndpoints: true });
  cmd
    .option(
      "--to-file <path>",
      "write the snapshot here (accepted by etcdctl/etcdutl snapshot restore and talosctl bootstrap --recover-from)",
    )
    .option("--force", "replace an existing output file")
    .option(
      "--data-dir <dir>",
      "restore into this etcd data dir (absent or empty) with etcdutl, or etcdctl 3.4",
    )
    .option("--name <name>", "with --data-dir: this member's name")
    .option("--initial-cluster <members>", "with --data-dir: every member as name=peerURL,... (same on all)")
    .option("--initial-cluster-token <token>", "with --data-dir: the new cluster's token (same on all)")
    .option("--initial-advertise-peer-urls <urls>", "with --data-dir: this member's peer URLs")
    .option("--wal-dir <dir>", "with --data-dir: a separate WAL directory")
    .option(
      "--skip-hash-check",
      "with --data-dir or --talos-node: skip etcd's snapshot hash check (not for our backups)",
    )
    .option(
      "--talos-node <node>",
      "recover etcd on this Talos control plane node (etcd must be Preparing) through the Talos API",
    )
    .option("--dry-run", "with --talos-node: check the node and the whole backup, upload nothing")
    .option(
      "--bump-revision <n>",
      "with --data-dir: raise the revision by N and mark it compacted so Kubernetes watchers resync (0: off)",
      String(DEFAULT_REVISION_BUMP),
    )
    .option("--restore-tool <path>", "with --data-dir: the etcdutl (or etcdctl) to run")
    .addOption(new Option("--cluster <name>", "with latest: only this cluster's backups"))
    .option(
      "--before <time>",
      "with latest: the newest backup before this time (RFC 3339, a UTC date, or a span ago: 7d)",
    )
    .option("--at <time>", "restore the state at this time from the revision log (see `etcd-backup log`)")
    .option("--revision <n>", "restore the state at this etcd revision from the revision log")
    .option(
      "--replay-dir <dir>",
      "with --at/--revision: where the replay's private etcd works (tmpfs is faster)",
    )
    .action(async (backup: string | undefined, flags: RestoreFlags) => {
      // The target checks hold for a backup and for a point in time alike.
      const targets = [flags.toFile, flags.dataDir, flags.talosNode].filter(Boolean).length;
      if (targets === 0) {
        throw new UsageError(
          "no restore target given",
          "pass --to-file PATH, --data-dir DIR or --talos-node NODE",
        );
      }
      if (targets > 1) throw new UsageError("--to-file, --data-dir and --talos-node exclude each other");
      if (flags.dryRun && !flags.talosNode) throw new UsageError("--dry-run goes with --talos-node");
      const bumpRevision = Number(flags.bumpRevision);
      if (!Number.isSafeInteger(bumpRevision) || bumpRevision < 0) {
        throw new UsageError(
          `--bump-revision ${flags.bumpRevision} is not a whole number`,
          "use 0 to turn it off",
        );
      }
      if (flags.at !== undefined || flags.revision !== undefined) {
        const { restoreToPointFromFlags } = await import("../point-in-time-restore.ts");
        return await restoreToPointFromFlags(backup, flags);
      }
      if (backup === undefined)
        throw new UsageError("no backup given", "pass a name from `list`, latest, or --at TIME");
      // Same parser as `list --since/--until`: RFC 3339 with a zone, a UTC date, or a span ago; never local time.
      const before = flags.before !== undefined ? parseTimeBound(flags.before, new Date()) : undefined;
      if (before === null) {
        throw new UsageError(
          `--before ${JSON.stringify(flags.before)} is not a time`,
          "use RFC 3339 (2026-11-23T12:00:00Z), a date (2026-11-23) or a span ago (7d, 36h)",
        );
      }
      const store = storeFromFlags(flags);
      const entry = await resolveBackup(store, backup, {
        ...(before ? { before } : {}),
        ...(flags.cluster ? { cluster: flags.cluster } : {}),
      });
      const decrypt = await decryptionFromFlags(flags);
      const target = flags.dataDir ?? flags.toFile;
      await removeLeftovers(target ? [dirname(resolve(target))] : []);
      const progress = new ProgressBar("restoring");
      const { signal, dispose } = abortOnSignals();
      try {
        if (flags.talosNode) {
          const line = await restoreToTalosFromFlags(
            { ...flags, talosNode: flags.talosNode },
            { store, entry, decrypt, signal, onProgress: (n) => progress.update(n, entry.object?.size) },
          );
          progress.done();
          process.stdout.write(line);
          return;
        }
        if (flags.dataDir) {
          const { findRestoreTool } = await import("../../restore/etcd-tools.ts");
          const tool = await findRestoreTool(flags.restoreTool ? { preferred: flags.restoreTool } : {});
          const result = await restoreToDataDir({
            store,
            entry,
            dataDir: flags.dataDir,
            ...(decrypt ? { decrypt } : {}),
            member: { ...memberFromFlags(flags), skipHashCheck: flags.skipHashCheck ?? false },
            revisionBump: bumpRevision,
            tool,
            signal,
            onProgress: (n) => progress.update(n, entry.object?.size),
            onWarning: (line) => process.stderr.write(`etcd-backup: ${line}\n`),
          });
          progress.done();
          if (!result.snapshot.hasTrailer) {
            process.stderr.write(`etcd-backup: ${NO_TRAILER_NOTE}; restored with --skip-hash-check\n`);
          }
          process.stdout.write(
            `restored ${entry.key} into data dir ${result.dataDir} with ${tool.kind}` +
              (result.revisionBump > 0
                ? ` (revision bumped by ${result.revisionBump}, marked compacted)\n`
                : " (revision not bumped)\n"),
          );
          return;
        }
        const result = await restoreToFile({
          store,
          entry,
          out: flags.toFile!,
          ...(decrypt ? { decrypt } : {}),
          force: flags.force ?? false,
          signal,
          onProgress: (n) => progress.update(n, entry.object?.size),
        });
        progress.done();
        process.stdout.write(
          `restored ${entry.key} to ${result.path} (${formatBytes(result.dbSize + (result.hasTrailer ? 32 : 0))}, ${result.hasTrailer ? "sha256 trailer ok" : "no sha256 trailer"}${entry.manifest ? ", manifest sha256 ok" : ""})\n`,
        );
        if (!result.hasTrailer) {
          process.stderr.write(
            `etcd-backup: ${NO_TRAILER_NOTE}; etcdutl snapshot restore needs --skip-hash-check for this file\n`,
          );
        }
      } finally {
        progress.done();
        dispose();
      }
    });
}

/** etcdutl's member flags of `restore --data-dir`, for a backup and for a point in time. */
export function memberFromFlags(flags: Omit<DataDirFlags, "bumpRevision">): MemberSettings {
  return {
    ...(flags.name ? { name: flags.name } : {}),
    ...(flags.initialCluster ? { initialCluster: flags.initialCluster } : {}),
    ...(flags.initialClusterToken ? { initialClusterToken: flags.initialClusterToken } : {}),
    ...(flags.initialAdvertisePeerUrls ? { initialAdvertisePeerUrls: flags.initialAdvertisePeerUrls } : {}),
    ...(flags.walDir ? { walDir: flags.walDir } : {}),
  };
}
