import { chmod, mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { formatStamp, parseBackupKey, parseRfc3339 } from "../catalog/names.ts";
import { parseTimeBound } from "../catalog/time-bound.ts";
import { UsageError } from "../errors.ts";
import type { RecoveryPoint } from "../point-in-time/restore-to-point.ts";
import { formatBytes } from "../render/units.ts";
import { assertEmptyTarget, DEFAULT_REVISION_BUMP, restoreSnapshotFile } from "../restore/data-dir.ts";
import { findRestoreTool } from "../restore/etcd-tools.ts";
import { LocalStore } from "../store/local.ts";
import { memberFromFlags } from "./commands/restore.ts";
import { type DecryptFlags, decryptionFromFlags } from "./encryption-options.ts";
import { abortOnSignals } from "./signals.ts";
import { storeFromFlags } from "./store-from-flags.ts";
import type { StoreFlags } from "./store-options.ts";
import { restoreToTalosFromFlags, type TalosFlags } from "./talos-options.ts";

/** The flags of `restore` that a restore to a point reads. */
export interface PointRestoreFlags extends StoreFlags, DecryptFlags, TalosFlags {
  at?: string;
  revision?: string;
  toFile?: string;
  dataDir?: string;
  talosNode?: string;
  force?: boolean;
  cluster?: string;
  name?: string;
  initialCluster?: string;
  initialClusterToken?: string;
  initialAdvertisePeerUrls?: string;
  walDir?: string;
  dryRun?: boolean;
  skipHashCheck?: boolean;
  bumpRevision?: string;
  restoreTool?: string;
  replayDir?: string;
}

/**
 * `--at TIME`: RFC 3339 with a zone, a UTC date, a span ago (`15m`), or a time of day `HH:MM[:SS]` meaning
 * today in UTC (never local time, as everywhere else in the tool).
 */
export function parseRecoveryPoint(flags: { at?: string; revision?: string }, now: Date): RecoveryPoint {
  if (flags.at !== undefined && flags.revision !== undefined) {
    throw new UsageError("--at and --revision exclude each other");
  }
  if (flags.revision !== undefined) {
    const revision = Number(flags.revision);
    if (!/^\d+$/.test(flags.revision) || !Number.isSafeInteger(revision) || revision < 1) {
      throw new UsageError(`--revision ${flags.revision} is not a revision`, "give a whole number >= 1");
    }
    return { revision };
  }
  const text = (flags.at ?? "").trim();
  const clock = /^(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(text);
  const time = clock
    ? parseRfc3339(`${now.toISOString().slice(0, 10)}T${clock[1]}:${clock[2]}:${clock[3] ?? "00"}Z`)
    : parseTimeBound(text, now);
  if (!time) {
    throw new UsageError(
      `--at ${JSON.stringify(flags.at)} is not a time`,
      "use RFC 3339 (2026-11-30T10:13:59Z), a time of day in UTC (10:13:59) or a span ago (15m)",
    );
  }
  return { time };
}

/**
 * `restore [BACKUP] --at TIME | --revision N` with --to-file or --data-dir: one call from the restore command.
 * BACKUP, when given, is the full backup to replay on; otherwise the newest one before the point.
 */
export async function restoreToPointFromFlags(
  backup: string | undefined,
  flags: PointRestoreFlags,
): Promise<void> {
  if (backup === "latest") {
    throw new UsageError(
      "latest with --at/--revision is ambiguous",
      "drop it (the newest full backup before the point is picked) or name a backup from `list`",
    );
  }
  const point = parseRecoveryPoint(flags, new Date());
  // The restore command checked the target and --bump-revision before calling.
  const bump = Number(flags.bumpRevision ?? DEFAULT_REVISION_BUMP);
  const store = storeFromFlags(flags);
  const decrypt = await decryptionFromFlags(flags);
  const { restoreToPoint } = await import("../point-in-time/restore-to-point.ts");
  const { signal, dispose } = abortOnSignals();
  const say = (line: string) => process.stderr.write(`${line}\n`);
  try {
    if (flags.talosNode) {
      // The replayed snapshot goes to the node through the same path as a stored backup: a private 0700
      // folder serves as a one-object store, removed afterwards.
      const work = await mkdtemp(
        join(flags.replayDir ? resolve(flags.replayDir) : tmpdir(), "etcd-backup-pitr-talos-"),
      );
      try {
        await chmod(work, 0o700);
        const name = `point-${formatStamp(new Date())}.snap`;
        const result = await restoreToPoint({
          store,
          ...(flags.cluster ? { cluster: flags.cluster } : {}),
          ...(backup !== undefined ? { base: backup } : {}),
          point,
          out: join(work, name),
          ...(flags.replayDir ? { workDir: flags.replayDir } : {}),
          ...(decrypt ? { decrypt } : {}),
          signal,
          onLine: say,
        });
        const local = new LocalStore(work);
        const parsed = parseBackupKey(name);
        const object = await local.stat(name);
        if (!parsed || !object) throw new Error("the replayed snapshot is missing from its work folder");
        say(
          `restore: cluster ${result.cluster} at revision ${result.revision} replayed; sending it to ${flags.talosNode}`,
        );
        const line = await restoreToTalosFromFlags(
          { ...flags, talosNode: flags.talosNode },
          {
            store: local,
            entry: { ...parsed, state: "unmanaged", object },
            decrypt: undefined,
            signal,
            onProgress: () => {},
          },
        );
        process.stdout.write(line);
      } finally {
        await rm(work, { recursive: true, force: true });
      }
      return;
    }
    if (flags.dataDir) {
      const dataDir = resolve(flags.dataDir);
      await assertEmptyTarget(dataDir, "--data-dir");
      await mkdir(dirname(dataDir), { recursive: true });
      const work = await mkdtemp(join(dirname(dataDir), ".etcd-backup-pitr-out-"));
      try {
        await chmod(work, 0o700);
        const result = await restoreToPoint({
          store,
          ...(flags.cluster ? { cluster: flags.cluster } : {}),
          ...(backup !== undefined ? { base: backup } : {}),
          point,
          out: join(work, "snapshot.db"),
          ...(flags.replayDir ? { workDir: flags.replayDir } : {}),
          ...(decrypt ? { decrypt } : {}),
          signal,
          onLine: say,
        });
        const restored = await restoreSnapshotFile({
          snapshotFile: result.path,
          dataDir,
          // As for any restore into a cluster whose clients have seen later revisions: the bump moves only the
          // next revision forward and marks the past compacted (watchers relist); every restored key keeps
          // its create and mod revision, so resourceVersions stay true.
          revisionBump: bump,
          tool: await findRestoreTool(flags.restoreTool ? { preferred: flags.restoreTool } : {}),
          onWarning: say,
          member: memberFromFlags(flags),
          signal,
        });
        process.stdout.write(
          `restored cluster ${result.cluster} at revision ${result.revision} (${result.base.key} + ${result.revisionsReplayed} revisions of log) into data dir ${restored.dataDir}` +
            (restored.revisionBump > 0
              ? ` (revision bumped by ${restored.revisionBump}, marked compacted)\n`
              : " (revision not bumped)\n"),
        );
      } finally {
        await rm(work, { recursive: true, force: true });
      }
      return;
    }
    const result = await restoreToPoint({
      store,
      ...(flags.cluster ? { cluster: flags.cluster } : {}),
      ...(backup !== undefined ? { base: backup } : {}),
      point,
      out: flags.toFile!,
      ...(flags.replayDir ? { workDir: flags.replayDir } : {}),
      force: flags.force ?? false,
      ...(decrypt ? { decrypt } : {}),
      signal,
      onLine: say,
    });
    process.stdout.write(
      `restored cluster ${result.cluster} at revision ${result.revision} (${result.base.key} + ${result.revisionsReplayed} revisions of log) to ${result.path} (${formatBytes(result.dbSize + 32)}, sha256 trailer ok)\n`,
    );
  } finally {
    dispose();
  }
}
