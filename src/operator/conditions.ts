import { type Condition, Reason } from "./api.ts";

/**
 * Every status condition the operator writes is built here, from the named reasons in api.ts: the controllers
 * and their decisions call these builders and never spell a condition out themselves. A builder returns the
 * conditions without `lastTransitionTime`; `setConditions` merges them into an object's list.
 */
export type NewCondition = Omit<Condition, "lastTransitionTime">;

/**
 * Sets a condition in a list, as Kubernetes' meta.SetStatusCondition does: `lastTransitionTime` changes only when
 * the status does; reason, message and observedGeneration are always updated. Returns a new list.
 */
export function setCondition(list: Condition[] | undefined, next: NewCondition, now: Date): Condition[] {
  const out = [...(list ?? [])];
  const i = out.findIndex((c) => c.type === next.type);
  const old = i >= 0 ? out[i] : undefined;
  const condition: Condition = {
    ...next,
    lastTransitionTime: old && old.status === next.status ? old.lastTransitionTime : timestamp(now),
  };
  if (i >= 0) out[i] = condition;
  else out.push(condition);
  return out;
}

/** Sets several conditions at once; of two with the same type, the later one wins. */
export function setConditions(list: Condition[] | undefined, next: NewCondition[], now: Date): Condition[] {
  let out = list ?? [];
  for (const c of latestPerType(next)) out = setCondition(out, c, now);
  return out;
}

/** Conditions in order, keeping for each type only the last one given. */
function latestPerType(list: NewCondition[]): NewCondition[] {
  return list.filter((c, i) => !list.slice(i + 1).some((later) => later.type === c.type));
}

/** The list with every message passed through `redact`: conditions are readable by anyone who can get the object. */
export function redactConditions(list: Condition[], redact: (text: string) => string): Condition[] {
  return list.map((c) => ({ ...c, message: redact(c.message) }));
}

export function findCondition(list: Condition[] | undefined, type: Condition["type"]): Condition | undefined {
  return list?.find((c) => c.type === type);
}

/** Kubernetes timestamps: RFC 3339, whole seconds, UTC. */
export function timestamp(date: Date): string {
  return date.toISOString().replace(/\.\d+Z$/, "Z");
}

// ---- EtcdBackup ----

/** Claimed by this replica: the snapshot is being taken. */
export function backupRunning(generation: number): NewCondition[] {
  return [
    {
      type: "Progressing",
      status: "True",
      reason: Reason.BackupInProgress,
      message: "taking the snapshot",
      observedGeneration: generation,
    },
    {
      type: "Ready",
      status: "False",
      reason: Reason.BackupInProgress,
      message: "not stored yet",
      observedGeneration: generation,
    },
  ];
}

/** Stored at `location` (`s3://bucket/key`). */
export function backupSucceeded(generation: number, location: string): NewCondition[] {
  return [
    {
      type: "Progressing",
      status: "False",
      reason: Reason.BackupCompleted,
      message: "done",
      observedGeneration: generation,
    },
    {
      type: "Ready",
      status: "True",
      reason: Reason.BackupSucceeded,
      message: `stored ${location}`,
      observedGeneration: generation,
    },
    {
      type: "Failed",
      status: "False",
      reason: Reason.BackupSucceeded,
      message: "",
      observedGeneration: generation,
    },
  ];
}

/** The operator stopped (or lost its lease) during the run: nothing stored, the next leader runs it again. */
export function backupAborted(generation: number): NewCondition[] {
  return [
    {
      type: "Progressing",
      status: "False",
      reason: Reason.Aborted,
      message:
        "the operator stopped during the backup; nothing was stored; it runs again when an operator leads",
      observedGeneration: generation,
    },
  ];
}

export interface AttemptFailure {
  generation: number;
  /** Why it failed (a reason of api.ts) and the message, already redacted. */
  reason: string;
  message: string;
  /** Failed attempts so far, this one included, and the attempts allowed (`backoffLimit + 1`). */
  failedAttempts: number;
  allowedAttempts: number;
  /** When the next attempt starts (RFC 3339), or undefined when there is none. */
  nextRetryTime: string | undefined;
}

/** A failed attempt: retried at `nextRetryTime`, or given up. */
export function backupFailed(f: AttemptFailure): NewCondition[] {
  const retry = f.nextRetryTime !== undefined;
  return [
    {
      type: "Progressing",
      status: retry ? "True" : "False",
      reason: retry ? Reason.RetryScheduled : Reason.BackupFailed,
      message: retry
        ? `attempt ${f.failedAttempts} of ${f.allowedAttempts} failed; next at ${f.nextRetryTime}`
        : `gave up after ${f.failedAttempts} attempt(s); change the spec to try again`,
      observedGeneration: f.generation,
    },
    {
      type: "Ready",
      status: "False",
      reason: Reason.BackupFailed,
      message: "no backup stored",
      observedGeneration: f.generation,
    },
    {
      type: "Failed",
      status: "True",
      reason: f.reason,
      message: f.message,
      observedGeneration: f.generation,
    },
  ];
}

// ---- EtcdBackupSchedule ----

/** The spec or its cron cannot be used (`InvalidSpec` or `InvalidSchedule`): no backups until it changes. */
export function scheduleInvalid(generation: number, reason: string, message: string): NewCondition[] {
  return [
    { type: "Ready", status: "False", reason, message, observedGeneration: generation },
    { type: "Failed", status: "True", reason, message, observedGeneration: generation },
  ];
}

export function scheduleSuspended(generation: number): NewCondition[] {
  return [
    {
      type: "Ready",
      status: "True",
      reason: Reason.Suspended,
      message: "suspended: no new backups",
      observedGeneration: generation,
    },
  ];
}

/** Running; `next` is the next run's time (RFC 3339), undefined when the cron has no future run. */
export function scheduleReady(generation: number, next: string | undefined): NewCondition[] {
  return [
    {
      type: "Ready",
      status: "True",
      reason: Reason.Scheduled,
      message: next ? `next backup at ${next}` : "no future run",
      observedGeneration: generation,
    },
  ];
}

/** True when `Failed` holds because the spec or cron was invalid, which a now-valid spec clears. */
export function failedForInvalidSpec(list: Condition[] | undefined): boolean {
  const failed = findCondition(list, "Failed");
  return (
    failed?.status === "True" &&
    (failed.reason === Reason.InvalidSpec || failed.reason === Reason.InvalidSchedule)
  );
}

/** Clears a `Failed` left by an invalid spec. */
export function scheduleSpecFixed(generation: number): NewCondition[] {
  return [
    {
      type: "Failed",
      status: "False",
      reason: Reason.Scheduled,
      message: "",
      observedGeneration: generation,
    },
  ];
}

/** Retention ran; `failure` is the message when deletions (or the whole run, with its reason) failed. */
export function schedulePruned(
  generation: number,
  failure?: { reason: string; message: string },
): NewCondition[] {
  return [
    failure
      ? { type: "Failed", status: "True", ...failure, observedGeneration: generation }
      : {
          type: "Failed",
          status: "False",
          reason: Reason.Pruned,
          message: "",
          observedGeneration: generation,
        },
  ];
}
