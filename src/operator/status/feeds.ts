import { type EtcdBackup, type EtcdBackupSchedule, type RetentionSpec, SCHEDULE_LABEL } from "../api.ts";
import { clusterOf } from "../backup-decision.ts";
import { scheduleClusterOf } from "../schedule-decision.ts";
import { type BackupRow, cacheFeed, failureOf, type ScheduleRow, type StatusFeed } from "./board.ts";

/**
 * The status page's rows for EtcdBackups and EtcdBackupSchedules, read from the informer caches the controllers
 * already keep. The cluster of each comes from the functions the controllers name backups with, so the page
 * groups exactly as the stored objects are named.
 */
export function etcdBackupFeed(caches: {
  backups: () => Iterable<EtcdBackup>;
  schedules: () => Iterable<EtcdBackupSchedule>;
}): StatusFeed {
  return cacheFeed(caches, { schedule: scheduleRow, backup: backupRow });
}

export function scheduleRow(s: EtcdBackupSchedule): ScheduleRow {
  const st = s.status ?? {};
  return {
    kind: s.kind,
    namespace: s.metadata.namespace,
    name: s.metadata.name,
    cluster: scheduleClusterOf(s),
    schedule: s.spec.schedule,
    ...(s.spec.timeZone ? { timeZone: s.spec.timeZone } : {}),
    suspended: s.spec.suspend === true,
    ...(st.lastScheduleTime ? { lastScheduleTime: st.lastScheduleTime } : {}),
    ...(st.lastSuccessfulBackup?.completionTime
      ? { lastSuccessTime: st.lastSuccessfulBackup.completionTime }
      : {}),
    ...(st.nextScheduleTime && s.spec.suspend !== true ? { nextRunTime: st.nextScheduleTime } : {}),
    ...(s.spec.retention ? { retention: retentionLine(s.spec.retention) } : {}),
    ...(s.spec.continuous ? { pointInTime: st.pointInTime?.message ?? "revision log starting" } : {}),
  };
}

export function backupRow(b: EtcdBackup): BackupRow {
  const st = b.status ?? {};
  const failure = failureOf(st.conditions);
  const schedule = b.metadata.labels?.[SCHEDULE_LABEL];
  const time = st.completionTime ?? st.startTime ?? b.metadata.creationTimestamp;
  return {
    kind: b.kind,
    namespace: b.metadata.namespace,
    name: b.metadata.name,
    cluster: clusterOf(b),
    ...(schedule ? { schedule } : {}),
    phase: st.phase ?? "Pending",
    ...(time ? { time } : {}),
    ...(st.dbSize !== undefined ? { dbSize: st.dbSize } : {}),
    ...(st.storedSize !== undefined ? { storedSize: st.storedSize } : {}),
    ...(st.revision !== undefined ? { revision: st.revision } : {}),
    ...(st.location ? { location: st.location } : {}),
    ...(st.key ? { key: st.key } : {}),
    ...(failure ? { failure } : {}),
    ...(st.nextRetryTime ? { nextRetryTime: st.nextRetryTime } : {}),
  };
}

/** `keepLast 5, keepDaily 7, keepWithin 7d`, in the spec's field order. */
export function retentionLine(r: RetentionSpec): string {
  const order: (keyof RetentionSpec)[] = [
    "keepLast",
    "keepHourly",
    "keepDaily",
    "keepWeekly",
    "keepMonthly",
    "keepYearly",
    "keepWithin",
  ];
  return order
    .filter((k) => r[k] !== undefined)
    .map((k) => `${k} ${r[k]}`)
    .join(", ");
}
