import type { BackupPhase, Condition } from "../api.ts";
import { type BackupRow, cacheFeed, failureOf, type ScheduleRow, type StatusFeed } from "../status/board.ts";
import {
  DEFAULT_RETENTION,
  TALOS_SCHEDULE_LABEL,
  type TalosEtcdBackup,
  type TalosEtcdBackupSchedule,
} from "./api.ts";
import { talosClusterOf } from "./backup-controller.ts";

/**
 * The status page's rows for TalosEtcdBackups and their schedules (`--talos-etcd-backup-compat`), from the compat
 * controllers' informer caches. These kinds have no phase: it is read from their conditions as the Talos
 * operator sets them (Ready True: Succeeded; Failed True: Failed; Progressing True: Running).
 */
export function talosEtcdBackupFeed(caches: {
  backups: () => Iterable<TalosEtcdBackup>;
  schedules: () => Iterable<TalosEtcdBackupSchedule>;
}): StatusFeed {
  return cacheFeed(caches, { schedule: talosScheduleRow, backup: talosBackupRow });
}

export function talosScheduleRow(s: TalosEtcdBackupSchedule): ScheduleRow {
  const st = s.status ?? {};
  const paused = s.spec.paused === true;
  return {
    kind: s.kind,
    namespace: s.metadata.namespace,
    name: s.metadata.name,
    cluster: talosClusterOf({ metadata: s.metadata, spec: s.spec.backupTemplate?.spec }),
    schedule: s.spec.schedule,
    suspended: paused,
    ...(st.lastScheduleTime ? { lastScheduleTime: st.lastScheduleTime } : {}),
    ...(st.lastSuccessfulBackupTime ? { lastSuccessTime: st.lastSuccessfulBackupTime } : {}),
    ...(st.nextScheduleTime && !paused ? { nextRunTime: st.nextScheduleTime } : {}),
    retention: `keepLast ${s.spec.retention ?? DEFAULT_RETENTION}`,
  };
}

export function talosBackupRow(b: TalosEtcdBackup): BackupRow {
  const conditions = b.status?.conditions;
  const failure = failureOf(conditions);
  const schedule = b.metadata.labels?.[TALOS_SCHEDULE_LABEL];
  const times = (conditions ?? [])
    .map((c) => c.lastTransitionTime)
    .filter(Boolean)
    .sort();
  const time = times.at(-1) ?? b.metadata.creationTimestamp;
  const bucket = b.spec?.backupStorage?.s3?.bucket;
  return {
    kind: b.kind,
    namespace: b.metadata.namespace,
    name: b.metadata.name,
    cluster: talosClusterOf(b),
    ...(schedule ? { schedule } : {}),
    phase: phaseOf(conditions),
    ...(time ? { time } : {}),
    ...(bucket && b.status?.filename ? { location: `s3://${bucket}`, key: b.status.filename } : {}),
    ...(failure ? { failure } : {}),
  };
}

function phaseOf(conditions: readonly Condition[] | undefined): BackupPhase {
  const on = (type: Condition["type"]) => conditions?.some((c) => c.type === type && c.status === "True");
  if (on("Ready")) return "Succeeded";
  if (on("Failed") && !on("Progressing")) return "Failed";
  if (on("Progressing")) return "Running";
  return "Pending";
}
