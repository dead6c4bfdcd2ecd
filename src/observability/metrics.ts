import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { FAILURE_REASONS, type FailureReason } from "./failure.ts";

/** The result label of `etcd_backup_runs_total`. */
export type RunResult = "success" | "failure";

/**
 * The `etcd_backup_*` metrics, shared by the daemon and the operator (which adds its own labels through the
 * registry's default labels). Label values come from closed sets only.
 */
export interface BackupMetrics {
  registry: Registry;
  lastSuccess: Gauge;
  lastAttempt: Gauge;
  duration: Histogram;
  storedBytes: Gauge;
  dbBytes: Gauge;
  revision: Gauge;
  failures: Counter<"reason">;
  runs: Counter<"result">;
  skippedRuns: Counter;
  backupsKept: Gauge;
  pruned: Counter;
}

/** Creates the metrics in `registry` (a new one by default); every series exists from the start, at 0. */
export function createBackupMetrics(registry: Registry = new Registry()): BackupMetrics {
  const registers = [registry];
  const m: BackupMetrics = {
    registry,
    lastSuccess: new Gauge({
      name: "etcd_backup_last_success_timestamp_seconds",
      help: "Unix time the last successful backup run finished",
      registers,
    }),
    lastAttempt: new Gauge({
      name: "etcd_backup_last_attempt_timestamp_seconds",
      help: "Unix time the last backup attempt finished, successful or not",
      registers,
    }),
    duration: new Histogram({
      name: "etcd_backup_duration_seconds",
      help: "Duration of backup attempts (save, prune and checks)",
      buckets: [1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 3600],
      registers,
    }),
    storedBytes: new Gauge({
      name: "etcd_backup_stored_bytes",
      help: "Bytes stored for the newest backup (after compression and encryption)",
      registers,
    }),
    dbBytes: new Gauge({
      name: "etcd_backup_db_bytes",
      help: "Size of the etcd database in the newest backup",
      registers,
    }),
    revision: new Gauge({
      name: "etcd_backup_revision",
      help: "etcd revision of the newest backup, when its manifest records it",
      registers,
    }),
    failures: new Counter({
      name: "etcd_backup_failures_total",
      help: `Failed backup attempts by reason (${FAILURE_REASONS.join(", ")})`,
      labelNames: ["reason"],
      registers,
    }),
    runs: new Counter({
      name: "etcd_backup_runs_total",
      help: "Backup attempts by result",
      labelNames: ["result"],
      registers,
    }),
    skippedRuns: new Counter({
      name: "etcd_backup_skipped_runs_total",
      help: "Scheduled runs skipped because a run was still in flight",
      registers,
    }),
    backupsKept: new Gauge({
      name: "etcd_backup_backups_kept",
      help: "Usable backups of this cluster in the store after the last prune",
      registers,
    }),
    pruned: new Counter({
      name: "etcd_backup_pruned_total",
      help: "Backups deleted by retention",
      registers,
    }),
  };
  for (const reason of FAILURE_REASONS) m.failures.inc({ reason }, 0);
  for (const result of ["success", "failure"] as const) m.runs.inc({ result }, 0);
  return m;
}

/** Counts one failed attempt. */
export function recordFailure(m: BackupMetrics, reason: FailureReason): void {
  m.failures.inc({ reason });
  m.runs.inc({ result: "failure" });
}
