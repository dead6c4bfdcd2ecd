import { Cron } from "croner";
import type { DeletionFailure } from "../catalog/prune.ts";
import type { RetentionPolicy } from "../catalog/retention.ts";
import { parseSpan } from "../duration.ts";
import { describeError } from "../errors.ts";
import {
  API_VERSION,
  BACKUP_KIND,
  type EtcdBackup,
  type EtcdBackupSchedule,
  type EtcdBackupScheduleStatus,
  type EtcdBackupSpec,
  type MergePatch,
  type ObjectRef,
  Reason,
  type RetentionSpec,
  SCHEDULE_KIND,
  SCHEDULE_LABEL,
  SCHEDULED_AT_ANNOTATION,
} from "./api.ts";
import {
  failedForInvalidSpec,
  findCondition,
  type NewCondition,
  scheduleInvalid,
  schedulePruned,
  scheduleReady,
  scheduleSpecFixed,
  scheduleSuspended,
  timestamp,
} from "./conditions.ts";
import { reasonOf, SpecProblem } from "./resolve.ts";
import { checkScheduleSpec, InvalidSpecError } from "./spec.ts";

/**
 * What to do about one EtcdBackupSchedule, decided from what was observed and nothing else: no API call, no
 * clock, no store. `ScheduleController` observes, calls these functions, applies the actions they return in
 * order, runs the retention they ask for, and writes the status with the conditions they return.
 */

/** What the controller saw of one schedule. */
export interface ObservedSchedule {
  schedule: EtcdBackupSchedule;
  /** The EtcdBackups the replica sees (its cache, any namespace); the decision picks the schedule's own. */
  backups: readonly EtcdBackup[];
  now: Date;
  /** Removes secrets from messages (the process's redactor in the controller). */
  redact: (text: string) => string;
}

export type EventType = "Normal" | "Warning";

export type ScheduleAction =
  | { kind: "event"; type: EventType; reason: string; message: string }
  /** Create the EtcdBackup (AlreadyExists is fine: another reconcile made it); then, if created, record `created`. */
  | { kind: "createBackup"; backup: EtcdBackup; created: { reason: string; message: string } }
  /** Delete an EtcdBackup of the schedule (NotFound is fine). */
  | { kind: "deleteBackup"; name: string };

/** Retention to apply after the actions: prune the destination, counting `after` as the newest success. */
export interface PruneRequest {
  after: string;
  policy: RetentionPolicy;
  cluster: string;
  destination: EtcdBackupSpec["destination"];
}

export interface ScheduleDecision {
  actions: ScheduleAction[];
  /** The status to write last (merge patch); `conditions` are merged into the observed ones then. */
  status: MergePatch<EtcdBackupScheduleStatus>;
  conditions: NewCondition[];
  prune?: PruneRequest;
  /** Look again after this long (the next run); undefined: wait for a change. */
  requeueAfterMs?: number;
}

/** How retention went. */
export type PruneOutcome =
  | {
      kind: "ran";
      kept: number;
      /** Full keys (prefix included) of the backup objects deleted. */
      deletedKeys: string[];
      freedBytes: number;
      failures: DeletionFailure[];
    }
  /** It could not run at all (a missing Secret, the listing failed). */
  | { kind: "failed"; reason: string; message: string };

/** Parses the schedule's cron: 5 fields, or 6 with seconds first, in `timeZone` (UTC by default). */
export function parseCron(schedule: string, timeZone: string | undefined): Cron {
  const cron = new Cron(schedule, { paused: true, mode: "5-or-6-parts", timezone: timeZone || "UTC" });
  cron.nextRun(); // an unknown time zone only shows here
  return cron;
}

/** The retention policy of a spec; throws `SpecProblem` for an unreadable keepWithin. */
export function retentionPolicy(r: RetentionSpec): RetentionPolicy {
  const p: RetentionPolicy = {};
  if (r.keepLast) p.last = r.keepLast;
  if (r.keepHourly) p.hourly = r.keepHourly;
  if (r.keepDaily) p.daily = r.keepDaily;
  if (r.keepWeekly) p.weekly = r.keepWeekly;
  if (r.keepMonthly) p.monthly = r.keepMonthly;
  if (r.keepYearly) p.yearly = r.keepYearly;
  if (r.keepWithin) {
    const ms = parseSpan(r.keepWithin);
    if (ms === null) {
      throw new SpecProblem(
        Reason.InvalidSpec,
        `spec.retention.keepWithin: ${r.keepWithin} is not a span like 7d, 36h, 2w`,
      );
    }
    p.withinMs = ms;
  }
  return p;
}

/** Classifies a failure of retention: by error class, never by message. */
export function classifyPruneFailure(err: unknown, redact: (text: string) => string): PruneOutcome {
  return {
    kind: "failed",
    reason: reasonOf(err, Reason.PruneFailed),
    message: redact(`retention could not run: ${describeError(err)}`),
  };
}

/** Done for good: succeeded, or failed with no retry left for its generation. */
export const isTerminal = (b: EtcdBackup) =>
  b.status?.phase === "Succeeded" ||
  (b.status?.phase === "Failed" &&
    !b.status.nextRetryTime &&
    b.status.observedGeneration === (b.metadata.generation ?? 1));

/** The EtcdBackups the schedule owns: its label and its uid in their owner references. */
export function ownedBackups(schedule: EtcdBackupSchedule, backups: readonly EtcdBackup[]): EtcdBackup[] {
  const { namespace, name, uid } = schedule.metadata;
  return backups.filter(
    (b) =>
      b.metadata.namespace === namespace &&
      b.metadata.labels?.[SCHEDULE_LABEL] === name &&
      (b.metadata.ownerReferences ?? []).some((r) => r.uid === uid),
  );
}

/**
 * The latest run due in (from, now]; missed runs before it are not made up, as CronJob does. Found backwards
 * from `now` (croner's previousRuns), so a schedule behind by a day of 2-second runs costs one step, not 43,200
 * (stepping forward took about 8 s of CPU there).
 */
export function latestDueRun(cron: Cron, from: Date, now: Date): Date | undefined {
  // previousRuns includes a run earlier in the reference's second: 1 ms past `now` makes a run at `now` count.
  const [latest] = cron.previousRuns(1, new Date(now.getTime() + 1));
  return latest && latest.getTime() > from.getTime() && latest.getTime() <= now.getTime()
    ? latest
    : undefined;
}

/** The EtcdBackup a schedule creates for its run at `due`: named after the time, owned by the schedule. */
export function scheduledBackup(schedule: EtcdBackupSchedule, due: Date): EtcdBackup {
  const { namespace, name, uid } = schedule.metadata;
  const template = schedule.spec.template;
  return {
    apiVersion: API_VERSION,
    kind: BACKUP_KIND,
    metadata: {
      name: `${name}-${Math.floor(due.getTime() / 1000)}`,
      namespace,
      labels: { ...(template.metadata?.labels ?? {}), [SCHEDULE_LABEL]: name },
      annotations: { ...(template.metadata?.annotations ?? {}), [SCHEDULED_AT_ANNOTATION]: timestamp(due) },
      ownerReferences: [
        {
          apiVersion: API_VERSION,
          kind: SCHEDULE_KIND,
          name,
          uid: uid ?? "",
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: {
      ...template.spec,
      clusterName: scheduleClusterOf(schedule),
    },
  };
}

/** The spec checked and its cron parsed, or the problem as a reason and a message. */
function checkSchedule(s: EtcdBackupSchedule): { cron: Cron } | { reason: string; message: string } {
  try {
    checkScheduleSpec(s.spec);
    const cron = parseCron(s.spec.schedule, s.spec.timeZone);
    if (s.spec.retention) retentionPolicy(s.spec.retention);
    return { cron };
  } catch (err) {
    if (err instanceof InvalidSpecError || err instanceof SpecProblem) {
      return { reason: Reason.InvalidSpec, message: describeError(err) };
    }
    const zone = s.spec?.timeZone ? ` in ${s.spec.timeZone}` : "";
    return {
      reason: Reason.InvalidSchedule,
      message: `spec.schedule ${JSON.stringify(s.spec?.schedule)}${zone}: ${describeError(err)} (use 5 cron fields, or 6 with seconds first, and an IANA time zone)`,
    };
  }
}

/**
 * Decides a schedule's reconcile: for the latest run due since the last one, create its EtcdBackup under the
 * concurrency policy (Forbid: skip while one is active; Replace: delete the active ones first; Allow), unless
 * suspended (missed runs are then skipped, not made up); delete failed EtcdBackups beyond
 * `failedBackupsHistoryLimit`; ask for retention once after each new success; and requeue at the next run.
 */
export function decideSchedule(o: ObservedSchedule): ScheduleDecision {
  const { schedule: s, now } = o;
  const generation = s.metadata.generation ?? 1;
  const checked = checkSchedule(s);
  if (!("cron" in checked)) return decideInvalid(o, checked.reason, o.redact(checked.message));
  const { cron } = checked;
  const suspended = s.spec.suspend === true;
  const children = ownedBackups(s, o.backups);
  const actions: ScheduleAction[] = [];
  const status: MergePatch<EtcdBackupScheduleStatus> = { observedGeneration: generation };

  let active = children
    .filter((b) => !isTerminal(b) && !b.metadata.deletionTimestamp)
    .map((b) => b.metadata.name);
  const from = new Date(s.status?.lastScheduleTime ?? s.metadata.creationTimestamp ?? now.toISOString());
  const due = latestDueRun(cron, from, now);
  // Set while suspended too: runs missed then are skipped, not made up.
  if (due) status.lastScheduleTime = timestamp(due);
  if (due && !suspended) {
    const run = startRun(o, due, active);
    actions.push(...run.actions);
    active = run.active;
  }
  const last = latestSuccess(children);
  if (last) status.lastSuccessfulBackup = last.ref;
  status.active = active.map((name) => ({ name }));
  actions.push(...trimFailed(s, children));

  const next = suspended ? null : cron.nextRun(now);
  status.nextScheduleTime = next ? timestamp(next) : null;
  const conditions = suspended
    ? scheduleSuspended(generation)
    : scheduleReady(generation, next ? timestamp(next) : undefined);
  if (failedForInvalidSpec(s.status?.conditions)) conditions.push(...scheduleSpecFixed(generation));
  const prune =
    last && s.status?.lastPrunedAfter !== last.ref.name ? pruneRequest(s, last.ref.name) : undefined;
  return {
    actions,
    status,
    conditions,
    ...(prune ? { prune } : {}),
    ...(next ? { requeueAfterMs: Math.max(50, next.getTime() - now.getTime()) } : {}),
  };
}

/** An invalid spec or cron: Failed, and a Warning Event unless the same problem was reported already. */
function decideInvalid(o: ObservedSchedule, reason: string, message: string): ScheduleDecision {
  const generation = o.schedule.metadata.generation ?? 1;
  const old = findCondition(o.schedule.status?.conditions, "Failed");
  const changed = old?.status !== "True" || old.message !== message;
  return {
    actions: changed ? [{ kind: "event", type: "Warning", reason, message }] : [],
    status: { observedGeneration: generation, nextScheduleTime: null },
    conditions: scheduleInvalid(generation, reason, message),
  };
}

/** The schedule's latest successful EtcdBackup (by completion time), as status refers to it. */
function latestSuccess(children: EtcdBackup[]): { ref: ObjectRef & { completionTime?: string } } | undefined {
  const last = children
    .filter((b) => b.status?.phase === "Succeeded")
    .sort((a, b) => (b.status?.completionTime ?? "").localeCompare(a.status?.completionTime ?? ""))[0];
  if (!last) return undefined;
  return {
    ref: {
      name: last.metadata.name,
      ...(last.status?.key ? { key: last.status.key } : {}),
      ...(last.status?.completionTime ? { completionTime: last.status.completionTime } : {}),
    },
  };
}

/**
 * The cluster name a schedule's backups carry: its template's `clusterName`, else the control plane it
 * references, else the schedule's own name (the backups it creates get this as `spec.clusterName`).
 */
export function scheduleClusterOf(s: EtcdBackupSchedule): string {
  return (
    s.spec.template.spec.clusterName ?? s.spec.template.spec.source?.controlPlaneRef?.name ?? s.metadata.name
  );
}

/** Retention after the success `after`, when the schedule has a retention policy. */
function pruneRequest(s: EtcdBackupSchedule, after: string): PruneRequest | undefined {
  if (!s.spec.retention) return undefined;
  return {
    after,
    policy: retentionPolicy(s.spec.retention),
    cluster: scheduleClusterOf(s),
    destination: s.spec.template.spec.destination,
  };
}

/**
 * A due run under the concurrency policy: the actions, and the active EtcdBackups afterwards. The run's own
 * EtcdBackup, when it exists already (a reconcile that created it could not write the status), is neither
 * created again nor counted as another run in the way.
 */
function startRun(
  o: ObservedSchedule,
  due: Date,
  active: string[],
): { actions: ScheduleAction[]; active: string[] } {
  const s = o.schedule;
  const backup = scheduledBackup(s, due);
  const name = backup.metadata.name;
  const others = active.filter((n) => n !== name);
  const policy = s.spec.concurrencyPolicy ?? "Forbid";
  if (policy === "Forbid" && others.length > 0) {
    const message = `run at ${timestamp(due)} skipped: ${others.join(", ")} still running (concurrencyPolicy Forbid)`;
    return { actions: [{ kind: "event", type: "Normal", reason: Reason.BackupSkipped, message }], active };
  }
  const actions: ScheduleAction[] = [];
  if (policy === "Replace") {
    for (const other of others) {
      actions.push(
        { kind: "deleteBackup", name: other },
        {
          kind: "event",
          type: "Normal",
          reason: Reason.BackupReplaced,
          message: `deleted ${other} (concurrencyPolicy Replace)`,
        },
      );
    }
    active = active.filter((n) => n === name);
  }
  const exists = o.backups.some(
    (b) => b.metadata.namespace === s.metadata.namespace && b.metadata.name === name,
  );
  if (exists) return { actions, active };
  const message = `created EtcdBackup ${name} for ${timestamp(due)}`;
  actions.push({ kind: "createBackup", backup, created: { reason: Reason.BackupCreated, message } });
  return { actions, active: [...active, name] };
}

/** Deletes the oldest failed EtcdBackups beyond `failedBackupsHistoryLimit` (default 3). */
function trimFailed(s: EtcdBackupSchedule, children: EtcdBackup[]): ScheduleAction[] {
  const limit = s.spec.failedBackupsHistoryLimit ?? 3;
  return children
    .filter((b) => isTerminal(b) && b.status?.phase === "Failed" && !b.metadata.deletionTimestamp)
    .sort((a, b) => (b.metadata.creationTimestamp ?? "").localeCompare(a.metadata.creationTimestamp ?? ""))
    .slice(limit)
    .map((b) => ({ kind: "deleteBackup", name: b.metadata.name }));
}

/**
 * Decides what follows retention: delete the EtcdBackups whose stored backups it deleted (never `after`, the
 * newest success), record an Event, and set `Failed` from the outcome. Retention is not tried again for the
 * same success, whatever the outcome.
 */
export function decidePruned(
  o: ObservedSchedule,
  request: PruneRequest,
  outcome: PruneOutcome,
): { actions: ScheduleAction[]; status: MergePatch<EtcdBackupScheduleStatus>; conditions: NewCondition[] } {
  const generation = o.schedule.metadata.generation ?? 1;
  const status = { lastPrunedAfter: request.after, lastPruneTime: timestamp(o.now) };
  if (outcome.kind === "failed") {
    const failure = { reason: outcome.reason, message: outcome.message };
    return {
      actions: [{ kind: "event", type: "Warning", reason: Reason.PruneFailed, message: outcome.message }],
      status,
      conditions: schedulePruned(generation, failure),
    };
  }
  const gone = new Set(outcome.deletedKeys);
  const actions: ScheduleAction[] = ownedBackups(o.schedule, o.backups)
    .filter((b) => b.status?.key && gone.has(b.status.key) && b.metadata.name !== request.after)
    .map((b) => ({ kind: "deleteBackup", name: b.metadata.name }));
  const failed = outcome.failures.length;
  const message = o.redact(
    `retention kept ${outcome.kept} backup(s), deleted ${outcome.deletedKeys.length} (${outcome.freedBytes} bytes)${failed ? `; ${failed} deletion(s) failed: ${outcome.failures[0]!.error}` : ""}`,
  );
  const reason = failed ? Reason.PruneFailed : Reason.Pruned;
  actions.push({ kind: "event", type: failed ? "Warning" : "Normal", reason, message });
  return {
    actions,
    status,
    conditions: schedulePruned(generation, failed ? { reason, message } : undefined),
  };
}
