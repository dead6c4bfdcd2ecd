import { isValidClusterName } from "../catalog/names.ts";
import { describeError } from "../errors.ts";
import {
  DELETE_FINALIZER,
  type EtcdBackup,
  type EtcdBackupSpec,
  type EtcdBackupStatus,
  type MergePatch,
  Reason,
  SCHEDULE_LABEL,
} from "./api.ts";
import {
  backupAborted,
  backupFailed,
  backupRunning,
  backupSucceeded,
  setConditions,
  timestamp,
} from "./conditions.ts";
import { reasonOf } from "./resolve.ts";
import { checkBackupSpec, InvalidSpecError } from "./spec.ts";

/**
 * What to do about one EtcdBackup, decided from what was observed and nothing else: no API call, no clock, no
 * store. `BackupController` observes, calls these functions, and applies the actions they return, in order.
 */

/** What the controller saw of one EtcdBackup. */
export interface ObservedBackup {
  backup: EtcdBackup;
  now: Date;
  /** True while this process runs the backup. */
  running: boolean;
  /** Removes secrets from messages (the process's redactor in the controller). */
  redact: (text: string) => string;
}

export interface BackupSettings {
  /** First retry delay after a failed attempt; doubles per attempt, capped at `RETRY_CAP_MS`. */
  retryBaseMs: number;
}

export const DEFAULT_BACKUP_SETTINGS: BackupSettings = { retryBaseMs: 10_000 };
export const RETRY_CAP_MS = 600_000;

export type EventType = "Normal" | "Warning";

/** The actions, applied in order; a failed action ends the reconcile (and the work queue retries it). */
export type BackupAction =
  /** Abort this process's run of the backup (its object is being deleted). */
  | { kind: "abortRun"; reason: string }
  /** Replace `metadata.finalizers` (conditional on the resourceVersion; an object gone ends the reconcile). */
  | { kind: "setFinalizers"; finalizers: string[] }
  /** Delete the stored object and manifest by their full keys (bucket root), then record `Deleted`. */
  | { kind: "deleteStored"; key: string; manifestKey?: string }
  /**
   * Merge-patch the status. `conditional`: only if the object is unchanged since last read (a claim: on
   * conflict another replica has it; the reconcile ends and looks again at once). `bestEffort`: a failure is
   * ignored.
   */
  | { kind: "writeStatus"; status: MergePatch<EtcdBackupStatus>; conditional?: true; bestEffort?: true }
  | { kind: "event"; type: EventType; reason: string; message: string }
  /** Run the backup; its outcome goes to `decideAfterRun`. Always the last action. */
  | { kind: "save"; spec: EtcdBackupSpec; cluster: string; attempts: number };

export interface BackupDecision {
  actions: BackupAction[];
  /** Look again after this long; undefined: wait for a change. */
  requeueAfterMs?: number;
  /** What this decision counts as in `etcd_backup_runs_total`, when it ends an attempt. */
  result?: "success" | "failure" | "aborted";
  /** For a failed attempt: why, and whether it is retried. */
  failure?: Failure & { retry: boolean };
}

/** Why an attempt failed: a condition reason, a redacted message, and whether retrying can help. */
export interface Failure {
  reason: string;
  message: string;
  /** True when only a spec change can help (no retries). */
  permanent: boolean;
}

/** How a run ended. */
export type RunOutcome =
  | {
      kind: "stored";
      /** The bucket or container. */
      bucket: string;
      /** `s3://bucket`, `azblob://container` or `gs://bucket`; absent: `s3://bucket`. */
      root?: string;
      /** Full keys in the bucket (prefix included). */
      key: string;
      manifestKey: string;
      dbSize: number;
      storedSize: number;
      revision?: number;
      sha256: string;
      /** What holds the stored object (object lock, legal hold), as read back: `compliance until ...`. */
      lock?: string;
    }
  /** The operator is stopping (or lost its lease): not the backup's fault. */
  | { kind: "stopped" }
  /** The object is being deleted: nothing to write. */
  | { kind: "deleted" }
  | { kind: "failed"; failure: Failure };

/** Classifies a failed run: by error class, never by message. */
export function classifyFailure(err: unknown, redact: (text: string) => string): Failure {
  if (err instanceof InvalidSpecError) {
    return { reason: Reason.InvalidSpec, message: redact(`invalid spec: ${err.message}`), permanent: true };
  }
  return {
    reason: reasonOf(err, Reason.BackupFailed),
    message: redact(describeError(err)),
    permanent: false,
  };
}

/** The cluster name of the backup: the spec's, else the control plane it references, else its schedule's name, else its own. */
export function clusterOf(backup: EtcdBackup): string {
  return (
    backup.spec?.clusterName ??
    backup.spec?.source?.controlPlaneRef?.name ??
    backup.metadata.labels?.[SCHEDULE_LABEL] ??
    backup.metadata.name
  );
}

const generationOf = (b: EtcdBackup) => b.metadata.generation ?? 1;

/** `spec.backoffLimit`, or 3 when unset or unusable. */
function backoffLimitOf(b: EtcdBackup): number {
  const limit = b.spec?.backoffLimit;
  return Number.isInteger(limit) && (limit as number) >= 0 ? (limit as number) : 3;
}

/** The delay before attempt `failedAttempts + 1`: `base * 2^(failedAttempts-1)`, at most `RETRY_CAP_MS`. */
export function retryDelayMs(failedAttempts: number, settings: BackupSettings): number {
  return Math.min(RETRY_CAP_MS, settings.retryBaseMs * 2 ** (failedAttempts - 1));
}

/** The finalizers the object should hold for its deletion policy, or undefined when it holds them already. */
function wantedFinalizers(b: EtcdBackup): string[] | undefined {
  const finalizers = b.metadata.finalizers ?? [];
  const has = finalizers.includes(DELETE_FINALIZER);
  const wants = (b.spec?.deletionPolicy ?? "Retain") === "Delete";
  if (wants && !has) return [...finalizers, DELETE_FINALIZER];
  if (!wants && has) return finalizers.filter((f) => f !== DELETE_FINALIZER);
  return undefined;
}

/**
 * Decides what to do about an EtcdBackup: on deletion, release it (deleting what it stored for `Delete`); else
 * keep its finalizer in line with `deletionPolicy`, then do nothing once it succeeded or gave up, wait for a
 * scheduled retry, fail it at once for an invalid spec, or claim it and run it.
 */
export function decideBackup(
  o: ObservedBackup,
  settings: BackupSettings = DEFAULT_BACKUP_SETTINGS,
): BackupDecision {
  const b = o.backup;
  if (b.metadata.deletionTimestamp) return decideDeletion(o);
  const actions: BackupAction[] = [];
  const finalizers = wantedFinalizers(b);
  if (finalizers) actions.push({ kind: "setFinalizers", finalizers });

  const status = b.status ?? {};
  const generation = generationOf(b);
  const sameGeneration = status.observedGeneration === generation;
  if (status.phase === "Succeeded") return { actions };
  const attempts = sameGeneration ? (status.failedAttempts ?? 0) : 0;
  if (sameGeneration && status.phase === "Failed") {
    if (attempts > backoffLimitOf(b) || !status.nextRetryTime) return { actions };
    const wait = Date.parse(status.nextRetryTime) - o.now.getTime();
    if (wait > 0) return { actions, requeueAfterMs: wait };
  }

  let spec: EtcdBackupSpec;
  try {
    spec = checkBackupSpec(b.spec);
  } catch (err) {
    return withActions(
      actions,
      failAttempt(b, attempts, classifyFailure(err, o.redact), o.now, settings, true),
    );
  }
  const cluster = clusterOf(b);
  if (!isValidClusterName(cluster)) {
    const message = `cluster name ${JSON.stringify(cluster)} cannot stand in an object name: set spec.clusterName (letters, digits, '.', '_', '-', at most 100)`;
    const failure = { reason: Reason.InvalidSpec, message: o.redact(message), permanent: true };
    return withActions(actions, failAttempt(b, attempts, failure, o.now, settings, true));
  }
  actions.push(...claimAndRun(b, spec, cluster, attempts, o.now));
  return { actions };
}

/** Claim the backup (a conditional write: two replicas never both run it), say so, and run it. */
function claimAndRun(
  b: EtcdBackup,
  spec: EtcdBackupSpec,
  cluster: string,
  attempts: number,
  now: Date,
): BackupAction[] {
  const generation = generationOf(b);
  return [
    {
      kind: "writeStatus",
      conditional: true,
      status: {
        observedGeneration: generation,
        failedAttempts: attempts,
        nextRetryTime: null,
        phase: "Running",
        startTime: timestamp(now),
        completionTime: null,
        conditions: setConditions(b.status?.conditions, backupRunning(generation), now),
      },
    },
    {
      kind: "event",
      type: "Normal",
      reason: Reason.BackupStarted,
      message: `backup of cluster ${cluster} started`,
    },
    { kind: "save", spec, cluster, attempts },
  ];
}

function withActions(before: BackupAction[], d: BackupDecision): BackupDecision {
  return { ...d, actions: [...before, ...d.actions] };
}

/** Deletion: abort a run in flight; for `Delete`, once it stopped, delete what it stored, then the finalizer. */
function decideDeletion(o: ObservedBackup): BackupDecision {
  const b = o.backup;
  const actions: BackupAction[] = [{ kind: "abortRun", reason: "the EtcdBackup is being deleted" }];
  const finalizers = b.metadata.finalizers ?? [];
  if (!finalizers.includes(DELETE_FINALIZER)) return { actions };
  if (o.running) return { actions, requeueAfterMs: 1_000 }; // let the aborted run finish first
  const { key, manifestKey } = b.status ?? {};
  if (key) actions.push({ kind: "deleteStored", key, ...(manifestKey ? { manifestKey } : {}) });
  actions.push({ kind: "setFinalizers", finalizers: finalizers.filter((f) => f !== DELETE_FINALIZER) });
  return { actions };
}

/**
 * Decides what follows a run: `backup` is the object as claimed, `attempts` the failed attempts before this one.
 * A failure is retried with exponential backoff until `spec.backoffLimit` attempts failed, unless permanent.
 */
export function decideAfterRun(
  input: { backup: EtcdBackup; attempts: number; outcome: RunOutcome; now: Date },
  settings: BackupSettings = DEFAULT_BACKUP_SETTINGS,
): BackupDecision {
  const { backup: b, outcome, now } = input;
  const generation = generationOf(b);
  switch (outcome.kind) {
    case "stored":
      return succeed(b, outcome, now);
    case "stopped":
      // Whoever leads next runs it again.
      return {
        result: "aborted",
        actions: [
          {
            kind: "writeStatus",
            bestEffort: true,
            status: {
              phase: "Pending",
              conditions: setConditions(b.status?.conditions, backupAborted(generation), now),
            },
          },
        ],
      };
    case "deleted":
      return { actions: [] };
    case "failed":
      return failAttempt(b, input.attempts, outcome.failure, now, settings);
  }
}

/** A stored backup: Succeeded, with where it is and how big, and a Normal Event. */
function succeed(b: EtcdBackup, stored: Extract<RunOutcome, { kind: "stored" }>, now: Date): BackupDecision {
  const generation = generationOf(b);
  const root = stored.root ?? `s3://${stored.bucket}`;
  const location = `${root}/${stored.key}`;
  return {
    result: "success",
    actions: [
      {
        kind: "writeStatus",
        status: {
          observedGeneration: generation,
          failedAttempts: 0,
          nextRetryTime: null,
          phase: "Succeeded",
          key: stored.key,
          manifestKey: stored.manifestKey,
          location: root,
          dbSize: stored.dbSize,
          storedSize: stored.storedSize,
          ...(stored.revision !== undefined ? { revision: stored.revision } : {}),
          sha256: stored.sha256,
          completionTime: timestamp(now),
          conditions: setConditions(b.status?.conditions, backupSucceeded(generation, location), now),
        },
      },
      {
        kind: "event",
        type: "Normal",
        reason: Reason.BackupSucceeded,
        message: `stored ${location} (${stored.storedSize} bytes, db ${stored.dbSize} bytes)${stored.lock ? `, locked: ${stored.lock}` : ""}`,
      },
    ],
  };
}

/**
 * A failed attempt: status Failed, a Warning Event, and a retry while attempts are left. `unclaimed`: the
 * attempt failed before the backup was claimed (an invalid spec), so the write is conditional as a claim is.
 */
function failAttempt(
  b: EtcdBackup,
  attempts: number,
  failure: Failure,
  now: Date,
  settings: BackupSettings,
  unclaimed = false,
): BackupDecision {
  const generation = generationOf(b);
  const backoffLimit = backoffLimitOf(b);
  const failedAttempts = attempts + 1;
  const retry = !failure.permanent && failedAttempts <= backoffLimit;
  const delay = retryDelayMs(failedAttempts, settings);
  // Whole seconds (status times have no fraction), rounded up so that the retry never comes early.
  const nextRetry = new Date(Math.ceil((now.getTime() + delay) / 1000) * 1000);
  const nextRetryTime = retry ? timestamp(nextRetry) : undefined;
  const conditions = backupFailed({
    generation,
    reason: failure.reason,
    message: failure.message,
    failedAttempts,
    allowedAttempts: backoffLimit + 1,
    nextRetryTime,
  });
  return {
    result: "failure",
    failure: { ...failure, retry },
    actions: [
      {
        kind: "writeStatus",
        ...(unclaimed ? { conditional: true as const } : {}),
        status: {
          phase: "Failed",
          observedGeneration: generation,
          failedAttempts,
          nextRetryTime: nextRetryTime ?? null,
          completionTime: timestamp(now),
          conditions: setConditions(b.status?.conditions, conditions, now),
        },
      },
      { kind: "event", type: "Warning", reason: failure.reason, message: failure.message },
    ],
    ...(retry ? { requeueAfterMs: nextRetry.getTime() - now.getTime() } : {}),
  };
}
