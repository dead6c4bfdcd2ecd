import { type SaveResult, saveBackup } from "../backup/save.ts";
import { type CatalogEntry, isUsable, listBackups, readManifest } from "../catalog/catalog.ts";
import { pruneBackups } from "../catalog/prune.ts";
import type { BackupJob } from "../config/job.ts";
import type { FailureReason } from "../observability/failure.ts";
import { watchSave } from "../observability/failure.ts";
import type { Logger } from "../observability/logger.ts";
import { newestChainStart, pruneLog } from "../point-in-time/prune-log.ts";
import { testRestore } from "../restore/test-restore.ts";
import { verifyBackup } from "../verify/verify.ts";

/** A step of a run failed; `reason` is its metric label. */
export class RunFailure extends Error {
  override name = "RunFailure";
  readonly reason: FailureReason;
  constructor(reason: FailureReason, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.reason = reason;
  }
}

export interface RunOptions {
  job: BackupJob;
  signal: AbortSignal;
  log: Logger;
  verify: boolean;
  testRestore: boolean;
  /** Revision log retention window (prune's --keep-log-within); undefined: no window. */
  logWithinMs?: number;
}

export interface RunOutcome {
  save: SaveResult;
  /** Backups deleted by retention; undefined when the job does not prune. */
  pruned?: number;
  /** Usable backups of the cluster left in the store. */
  kept: number;
  verify: string;
  testRestore?: string;
  /** With a revision log: where its newest chain restores from after this run's prune. */
  logStart?: { base: number; revision: number; time: string };
}

/**
 * One attempt: save a backup, apply retention, then the checks asked for. Rejects with a `RunFailure` naming the
 * step that failed; a save that fails leaves nothing visible in the store (saveBackup is atomic).
 */
export async function runBackup(options: RunOptions): Promise<RunOutcome> {
  const { job, signal, log } = options;
  const watched = watchSave({ source: job.source, store: job.store, encryption: job.encryption });
  log.info({ source: job.source.description, store: job.store.location }, "saving");
  let save: SaveResult;
  try {
    save = await saveBackup({
      source: watched.source,
      store: watched.store,
      cluster: job.cluster,
      compression: job.compression,
      ...(job.level !== undefined ? { level: job.level } : {}),
      encryption: watched.encryption,
      signal,
    });
  } catch (err) {
    throw new RunFailure(watched.reason(err, signal), "save", { cause: err });
  }
  const m = save.manifest;
  log.info(
    {
      key: save.key,
      dbBytes: m.dbSize,
      storedBytes: m.sizes.stored,
      revision: m.etcd?.revision,
      seconds: m.durationSeconds,
    },
    "saved",
  );

  let pruned: number | undefined;
  let kept: number;
  let logStart: RunOutcome["logStart"];
  if (job.retention) {
    try {
      const report = await pruneBackups(job.store, job.retention, {
        cluster: job.cluster,
        graceMs: job.incompleteGraceMs,
        signal,
      });
      pruned = report.backups.filter((b) => b.result === "deleted").length;
      kept = report.backups.filter((b) => b.action === "keep" || b.result === "failed").length;
      if (report.failures.length > 0) {
        throw new Error(
          `${report.failures.length} deletion(s) failed: ${report.failures.map((f) => `${f.key}: ${f.error}`).join("; ")}`,
        );
      }
      // What no rule keeps but the store will not let go yet (object lock, legal hold), with what holds it: a
      // bucket that grows past the policy says why in the log, as `prune` says it in its report.
      const held = [
        ...report.backups.flatMap((b) =>
          b.reasons.flatMap((r) => (r.rule === "locked" ? [`${b.entry.key}: ${r.hold ?? "locked"}`] : [])),
        ),
        ...report.leftovers.flatMap((l) => (l.hold ? [`${l.entry.key}: ${l.hold}`] : [])),
      ];
      log.info(
        { pruned, kept, freedBytes: report.freedBytes, ...(held.length > 0 ? { held } : {}) },
        "pruned",
      );
      // What a killed rekey left, resolved once older than the grace period (see src/catalog/prune-rekeys.ts).
      for (const c of report.rekeys) {
        if (c.result === undefined || c.result === "left") continue;
        log.info(
          { key: c.key, kind: c.kind, result: c.result, ageMs: c.ageMs },
          "resolved an interrupted rekey",
        );
      }
      // The revision log's segments that no kept recovery point needs go with the backups they served.
      const logReport = await pruneLog(job.store, {
        cluster: job.cluster,
        ...(options.logWithinMs !== undefined ? { withinMs: options.logWithinMs } : {}),
      });
      logStart = newestChainStart(logReport, job.cluster);
      if (logReport.failed.length > 0) {
        throw new Error(
          `${logReport.failed.length} log deletion(s) failed: ${logReport.failed.map((f) => `${f.key}: ${f.error}`).join("; ")}`,
        );
      }
      if (logReport.removed.length > 0) {
        log.info(
          {
            logObjectsRemoved: logReport.removed.length,
            logSegmentsKept: logReport.keptSegments,
            chains: logReport.chains.map((c) => `${c.base}: ${c.action}`),
          },
          "pruned the revision log",
        );
      }
    } catch (err) {
      throw new RunFailure(signal.aborted ? "aborted" : "prune", "prune", { cause: err });
    }
  } else {
    kept = (await listBackups(job.store).catch(() => [])).filter(
      (e) => e.cluster === job.cluster && e.kind === "snapshot" && isUsable(e),
    ).length;
  }

  let verify = "skipped";
  let entry: CatalogEntry | undefined;
  if (options.verify || options.testRestore) entry = await newEntry(job, save, signal);
  if (options.verify && entry) verify = await verifyStep(job, entry, save, signal, log);

  let restored: string | undefined;
  if (options.testRestore && entry) {
    if (entry.encrypted && !job.decrypt) {
      throw new RunFailure("test_restore", "test restore", {
        cause: new Error("the backup is encrypted and no --identity was given to read it back"),
      });
    }
    const report = await testRestore({
      store: job.store,
      entry,
      ...(job.decrypt ? { decrypt: job.decrypt } : {}),
      signal,
    }).catch((err: unknown) => {
      throw new RunFailure(signal.aborted ? "aborted" : "test_restore", "test restore", { cause: err });
    });
    if (!report.matches) {
      throw new RunFailure("test_restore", `test restore: ${report.problems.join("; ")}`);
    }
    restored = "passed";
    log.info(
      { key: save.key, revision: report.revision, keys: report.keys, startedInMs: report.startedInMs },
      "test restore passed",
    );
  }
  return {
    save,
    ...(pruned !== undefined ? { pruned } : {}),
    kept,
    verify,
    ...(restored ? { testRestore: restored } : {}),
    ...(logStart ? { logStart } : {}),
  };
}

/** The catalog entry of the backup just written (its name parsed, its manifest read back from the store). */
async function newEntry(job: BackupJob, save: SaveResult, signal: AbortSignal): Promise<CatalogEntry> {
  try {
    const entries = await listBackups(job.store, {
      prefix: save.key.slice(0, save.key.lastIndexOf("/") + 1),
    });
    const entry = entries.find((e) => e.key === save.key);
    if (entry?.state !== "complete") throw new Error(`${save.key} is not listed as a complete backup`);
    return entry;
  } catch (err) {
    throw new RunFailure(signal.aborted ? "aborted" : "verify", "verify: read the new backup back", {
      cause: err,
    });
  }
}

/**
 * The structural check: fetch, decrypt, decompress, sha256 trailer and manifest, bbolt structure. An encrypted
 * backup without an identity to read it can only be checked from outside: its manifest reads back and agrees, and
 * its stored size is the one the manifest records; the trailer and the manifest's sha256 were checked while saving.
 */
async function verifyStep(
  job: BackupJob,
  entry: CatalogEntry,
  save: SaveResult,
  signal: AbortSignal,
  log: Logger,
): Promise<string> {
  if (entry.encrypted && !job.decrypt) {
    const manifest = await readManifest(job.store, entry.key).catch((err: unknown) => {
      throw new RunFailure("verify", "verify: read the manifest back", { cause: err });
    });
    const size = entry.object?.size;
    if (manifest.sha256 !== save.manifest.sha256 || size !== manifest.sizes.stored) {
      throw new RunFailure(
        "verify",
        `verify: stored object is ${size} bytes, manifest says ${manifest.sizes.stored} (sha256 ${manifest.sha256 === save.manifest.sha256 ? "agrees" : "differs"})`,
      );
    }
    log.warn(
      { key: entry.key },
      "verify: the backup is encrypted and no --identity was given: only its stored size and manifest were checked " +
        "(the sha256 trailer and the manifest's sha256 were checked while saving); pass --identity for the full check",
    );
    return "manifest only";
  }
  const report = await verifyBackup(job.store, entry, {
    ...(job.decrypt ? { decrypt: job.decrypt } : {}),
    signal,
  }).catch((err: unknown) => {
    throw new RunFailure(signal.aborted ? "aborted" : "verify", "verify", { cause: err });
  });
  if (!report.ok) {
    const failed = report.checks.filter((c) => !c.ok && c.severity === "error");
    throw new RunFailure("verify", `verify: ${failed.map((c) => `${c.name}: ${c.detail}`).join("; ")}`);
  }
  log.info({ key: entry.key, checks: report.checks.length }, "verified");
  return "ok";
}
