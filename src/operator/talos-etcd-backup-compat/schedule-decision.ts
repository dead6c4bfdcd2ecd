import { describeError } from "../../errors.ts";
import type { MergePatch } from "../api.ts";
import { findCondition, type NewCondition, setConditions, timestamp } from "../conditions.ts";
import { latestDueRun, parseCron } from "../schedule-decision.ts";
import {
  COMPRESSION_ANNOTATION,
  DEFAULT_RETENTION,
  RECIPIENTS_ANNOTATION,
  TALOS_API_VERSION,
  TALOS_BACKUP_KIND,
  TALOS_SCHEDULE_KIND,
  TALOS_SCHEDULE_LABEL,
  type TalosEtcdBackup,
  type TalosEtcdBackupSchedule,
  type TalosEtcdBackupScheduleStatus,
  TalosReason,
} from "./api.ts";

/**
 * What to do about one TalosEtcdBackupSchedule, decided from what was observed, as the Talos operator does it:
 * at each cron time create a TalosEtcdBackup `<schedule>-<unix seconds>` labelled with the schedule, unless
 * `paused`; keep the `retention` (default 5) newest Ready backups and delete the older ones (their stored
 * objects first); report lastScheduleTime, nextScheduleTime, lastSuccessfulBackupTime and activeBackups.
 * Times are UTC. Our opt-in annotations on the schedule are copied to the backups it creates.
 */

export interface ObservedTalosSchedule {
  schedule: TalosEtcdBackupSchedule;
  /** The TalosEtcdBackups this replica sees (any namespace); the schedule's own are picked here. */
  backups: readonly TalosEtcdBackup[];
  now: Date;
}

export interface TalosScheduleDecision {
  create?: TalosEtcdBackup;
  /** Ready backups beyond retention, oldest last: delete what they stored, then them. */
  expire: TalosEtcdBackup[];
  status: MergePatch<TalosEtcdBackupScheduleStatus>;
  requeueAfterMs?: number;
}

const isReady = (b: TalosEtcdBackup) => findCondition(b.status?.conditions, "Ready")?.status === "True";

/** The TalosEtcdBackups a schedule created: its label, in its namespace. */
export function scheduleBackups(
  s: TalosEtcdBackupSchedule,
  backups: readonly TalosEtcdBackup[],
): TalosEtcdBackup[] {
  return backups.filter(
    (b) =>
      b.metadata.namespace === s.metadata.namespace &&
      b.metadata.labels?.[TALOS_SCHEDULE_LABEL] === s.metadata.name,
  );
}

/** The backup a schedule creates for its run at `due`. */
export function talosScheduledBackup(s: TalosEtcdBackupSchedule, due: Date): TalosEtcdBackup {
  const { name, namespace, uid } = s.metadata;
  const annotations = Object.fromEntries(
    [RECIPIENTS_ANNOTATION, COMPRESSION_ANNOTATION]
      .map((k) => [k, s.metadata.annotations?.[k]] as const)
      .filter((e): e is readonly [string, string] => e[1] !== undefined),
  );
  return {
    apiVersion: TALOS_API_VERSION,
    kind: TALOS_BACKUP_KIND,
    metadata: {
      name: `${name}-${Math.floor(due.getTime() / 1000)}`,
      namespace,
      labels: { [TALOS_SCHEDULE_LABEL]: name },
      ...(Object.keys(annotations).length ? { annotations } : {}),
      ownerReferences: [
        {
          apiVersion: TALOS_API_VERSION,
          kind: TALOS_SCHEDULE_KIND,
          name,
          uid: uid ?? "",
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: s.spec.backupTemplate.spec,
  };
}

export function decideTalosSchedule(o: ObservedTalosSchedule): TalosScheduleDecision {
  const { schedule: s, now } = o;
  const generation = s.metadata.generation ?? 1;
  const conditions = (c: NewCondition[]) => setConditions(s.status?.conditions, c, now);
  let cron: ReturnType<typeof parseCron>;
  try {
    if (typeof s.spec?.schedule !== "string" || s.spec.schedule === "") throw new Error("empty");
    if (!s.spec.backupTemplate?.spec) throw new Error("spec.backupTemplate.spec is required");
    cron = parseCron(s.spec.schedule, undefined);
  } catch (err) {
    const message = `Invalid cron schedule: ${describeError(err)}`;
    return {
      expire: [],
      status: {
        conditions: conditions([
          {
            type: "Failed",
            status: "True",
            reason: TalosReason.InvalidSchedule,
            message,
            observedGeneration: generation,
          },
          {
            type: "Ready",
            status: "False",
            reason: TalosReason.InvalidSchedule,
            message,
            observedGeneration: generation,
          },
        ]),
      },
    };
  }
  const own = scheduleBackups(s, o.backups);
  const ready = own
    .filter(isReady)
    .sort((a, b) => (b.metadata.creationTimestamp ?? "").localeCompare(a.metadata.creationTimestamp ?? ""));
  const retention =
    Number.isInteger(s.spec.retention) && (s.spec.retention as number) >= 1
      ? (s.spec.retention as number)
      : DEFAULT_RETENTION;
  const expire = ready.slice(retention).filter((b) => !b.metadata.deletionTimestamp);
  const lastSuccess = ready[0]
    ? findCondition(ready[0].status?.conditions, "Ready")?.lastTransitionTime
    : undefined;

  const status: MergePatch<TalosEtcdBackupScheduleStatus> = {
    activeBackups: own
      .filter((b) => !isReady(b))
      .map((b) => b.metadata.name)
      .sort(),
    ...(lastSuccess ? { lastSuccessfulBackupTime: lastSuccess } : {}),
  };
  let create: TalosEtcdBackup | undefined;
  if (!s.spec.paused) {
    const from = new Date(s.status?.lastScheduleTime ?? s.metadata.creationTimestamp ?? now.toISOString());
    const due = latestDueRun(cron, from, now);
    if (due) {
      create = talosScheduledBackup(s, due);
      status.lastScheduleTime = timestamp(due);
      if (!status.activeBackups?.includes(create.metadata.name)) {
        status.activeBackups = [...(status.activeBackups ?? []), create.metadata.name].sort();
      }
    }
  }
  const next = s.spec.paused ? null : cron.nextRun(now);
  status.nextScheduleTime = next ? timestamp(next) : null;
  status.conditions = conditions([
    {
      type: "Ready",
      status: "True",
      reason: TalosReason.ScheduleActive,
      message: s.spec.paused
        ? "Backup schedule is paused"
        : `Backup schedule is active; next backup at ${next ? timestamp(next) : "never"}`,
      observedGeneration: generation,
    },
    ...(findCondition(s.status?.conditions, "Failed")?.status === "True"
      ? [
          {
            type: "Failed" as const,
            status: "False" as const,
            reason: TalosReason.ScheduleActive,
            message: "",
            observedGeneration: generation,
          },
        ]
      : []),
  ]);
  return {
    ...(create ? { create } : {}),
    expire,
    status,
    ...(next ? { requeueAfterMs: Math.max(0, next.getTime() - now.getTime()) } : {}),
  };
}
