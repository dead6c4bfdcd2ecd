import type { MergePatch } from "../api.ts";
import { findCondition, type NewCondition, setConditions, timestamp } from "../conditions.ts";
import {
  TALOS_BACKUP_FINALIZER,
  type TalosEtcdBackup,
  type TalosEtcdBackupStatus,
  TalosReason,
} from "./api.ts";

/**
 * What to do about one TalosEtcdBackup, decided from what was observed: no API call, no clock, no store. The
 * Talos operator's semantics: a backup runs once and is done when Ready; a failed attempt is retried with a
 * backoff that doubles (capped), without limit, as controller-runtime requeues a failed reconcile there.
 */

export interface ObservedTalosBackup {
  backup: TalosEtcdBackup;
  now: Date;
  /** True while this process runs it. */
  running: boolean;
  /** Failed attempts of this object (by uid) in this process, and when the next may start (epoch ms). */
  failures: { count: number; nextAt: number } | undefined;
}

export type TalosBackupDecision =
  | { kind: "nothing"; requeueAfterMs?: number }
  /** Add the Talos operator's finalizer (a conditional write), then look again. */
  | { kind: "addFinalizer"; finalizers: string[] }
  /** Being deleted: delete the stored object (and manifest) when there is one, then drop the finalizer. */
  | { kind: "release"; finalizers: string[] }
  /** Claim it (a status write conditional on the resourceVersion: one replica runs it), then run it. */
  | { kind: "run"; claim: MergePatch<TalosEtcdBackupStatus> };

const generationOf = (b: TalosEtcdBackup) => b.metadata.generation ?? 1;

export function decideTalosBackup(o: ObservedTalosBackup): TalosBackupDecision {
  const b = o.backup;
  const finalizers = b.metadata.finalizers ?? [];
  const held = finalizers.includes(TALOS_BACKUP_FINALIZER);
  if (b.metadata.deletionTimestamp) {
    if (!held) return { kind: "nothing" };
    if (o.running) return { kind: "nothing", requeueAfterMs: 1_000 }; // let the aborted run end first
    return { kind: "release", finalizers: finalizers.filter((f) => f !== TALOS_BACKUP_FINALIZER) };
  }
  if (!held) return { kind: "addFinalizer", finalizers: [...finalizers, TALOS_BACKUP_FINALIZER] };
  if (o.running) return { kind: "nothing" };
  if (findCondition(b.status?.conditions, "Ready")?.status === "True") return { kind: "nothing" };
  if (o.failures && o.failures.nextAt > o.now.getTime()) {
    return { kind: "nothing", requeueAfterMs: o.failures.nextAt - o.now.getTime() };
  }
  return {
    kind: "run",
    claim: { conditions: setConditions(b.status?.conditions, inProgress(generationOf(b)), o.now) },
  };
}

function inProgress(generation: number): NewCondition[] {
  return [
    {
      type: "Progressing",
      status: "True",
      reason: TalosReason.BackupInProgress,
      message: "Etcd backup is in progress",
      observedGeneration: generation,
    },
  ];
}

/** A stored backup: `filename` and Ready, as the Talos operator reports it. */
export function talosBackupSucceeded(
  b: TalosEtcdBackup,
  stored: { bucket: string; key: string },
  now: Date,
): MergePatch<TalosEtcdBackupStatus> {
  const g = generationOf(b);
  const conditions: NewCondition[] = [
    {
      type: "Progressing",
      status: "False",
      reason: TalosReason.BackupCompleted,
      message: "Etcd backup completed",
      observedGeneration: g,
    },
    {
      type: "Ready",
      status: "True",
      reason: TalosReason.BackupSucceeded,
      message: `Etcd backup completed successfully: s3://${stored.bucket}/${stored.key}`,
      observedGeneration: g,
    },
    {
      type: "Failed",
      status: "False",
      reason: TalosReason.BackupSucceeded,
      message: "",
      observedGeneration: g,
    },
  ];
  return { filename: stored.key, conditions: setConditions(b.status?.conditions, conditions, now) };
}

/**
 * A failed attempt: Failed with the Talos operator's reason BackupFailed; the message starts with our precise
 * reason (SecretNotFound, ControlPlaneNotReady, SourceUnreachable...), which the Warning Event carries as its own.
 */
export function talosBackupFailed(
  b: TalosEtcdBackup,
  failure: { reason: string; message: string },
  nextAt: Date,
  now: Date,
): MergePatch<TalosEtcdBackupStatus> {
  const g = generationOf(b);
  const conditions: NewCondition[] = [
    {
      type: "Progressing",
      status: "False",
      reason: TalosReason.BackupFailed,
      message: `attempt failed; next at ${timestamp(nextAt)}`,
      observedGeneration: g,
    },
    {
      type: "Ready",
      status: "False",
      reason: TalosReason.BackupFailed,
      message: "no backup stored",
      observedGeneration: g,
    },
    {
      type: "Failed",
      status: "True",
      reason: TalosReason.BackupFailed,
      message: `Failed to backup etcd: ${failure.reason}: ${failure.message}`,
      observedGeneration: g,
    },
  ];
  return { conditions: setConditions(b.status?.conditions, conditions, now) };
}

/** The wait before attempt `failures + 1`: `base * 2^(failures-1)`, at most `capMs`. */
export function talosRetryDelayMs(failures: number, baseMs: number, capMs = 600_000): number {
  return Math.min(capMs, baseMs * 2 ** Math.max(0, failures - 1));
}
