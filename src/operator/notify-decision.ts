import type { Cron } from "croner";
import { parseSpan } from "../duration.ts";
import type { NotifyEvent } from "../notify/payload.ts";
import type { EtcdBackup, EtcdBackupSchedule, NotificationStatus } from "./api.ts";
import { findCondition, timestamp } from "./conditions.ts";
import { ownedBackups, scheduleClusterOf } from "./schedule-decision.ts";

/**
 * What a schedule's `spec.notify` asks to tell, decided from what was observed and nothing else (no API call,
 * no clock, no network), as the daemon decides it (src/notify/episodes.ts):
 * - success: each new successful EtcdBackup of the schedule;
 * - failure: once per failure episode (a failed EtcdBackup after the last success), not per retry or run;
 * - stale: once when no EtcdBackup succeeded for `staleAfter` (default twice the schedule's interval), counted
 *   from the last success or the schedule's creation; not while suspended.
 * Outcomes older than the moment notifications were first looked at (`status.notification.since`) are not
 * news. `status` is written with the schedule's status before anything is sent: a notification is sent at most
 * once, even when the operator restarts or another replica takes over.
 */

export interface NotificationDecision {
  /** The events to send, in order. */
  events: NotifyEvent[];
  /** `status.notification` to write. */
  status: NotificationStatus;
  /** When the stale check is due, when it is pending. */
  wakeAfterMs?: number;
}

export function decideNotifications(o: {
  schedule: EtcdBackupSchedule;
  backups: readonly EtcdBackup[];
  now: Date;
  cron: Cron;
  redact: (text: string) => string;
}): NotificationDecision | undefined {
  const { schedule: s, now } = o;
  const spec = s.spec.notify;
  if (!spec) return undefined;
  const on = new Set(spec.on ?? ["failure"]);
  const prev = s.status?.notification ?? {};
  const since = prev.since ?? timestamp(now);
  const status: NotificationStatus = { ...prev, since };
  const events: NotifyEvent[] = [];
  const cluster = scheduleClusterOf(s);
  const common = {
    origin: "operator" as const,
    cluster,
    namespace: s.metadata.namespace,
    schedule: s.metadata.name,
    store: destinationUrl(s.spec.template.spec.destination),
  };
  const completed = (b: EtcdBackup) => b.status?.completionTime ?? "";
  const children = ownedBackups(s, o.backups).sort((a, b) => completed(a).localeCompare(completed(b)));
  const lastSuccess = children.filter((b) => b.status?.phase === "Succeeded").at(-1);
  const successTime = lastSuccess ? completed(lastSuccess) : "";

  if (lastSuccess && successTime > since && prev.lastSuccessNotified !== lastSuccess.metadata.name) {
    status.lastSuccessNotified = lastSuccess.metadata.name;
    if (on.has("success")) {
      const st = lastSuccess.status!;
      events.push({
        ...common,
        event: "success",
        time: successTime,
        ...(st.key ? { backup: st.key } : {}),
        ...(st.storedSize !== undefined ? { sizeBytes: st.storedSize } : {}),
        ...(st.revision !== undefined ? { revision: st.revision } : {}),
        ...durationOf(lastSuccess),
      });
    }
  }

  // A failure episode: a failed attempt after the last success. Told once per success it follows.
  const episode = lastSuccess?.metadata.name ?? "-";
  const failed = children
    .filter((b) => b.status?.phase === "Failed" && completed(b) > successTime && completed(b) > since)
    .at(-1);
  if (failed && prev.failureNotifiedAfter !== episode) {
    status.failureNotifiedAfter = episode;
    if (on.has("failure")) {
      const st = failed.status!;
      const condition = findCondition(st.conditions, "Failed");
      events.push({
        ...common,
        event: "failure",
        time: completed(failed),
        error: o.redact(condition?.message ?? "the backup failed"),
        ...(st.failedAttempts !== undefined ? { attempts: st.failedAttempts } : {}),
        ...durationOf(failed),
      });
    }
  }

  let wakeAfterMs: number | undefined;
  if (on.has("stale") && s.spec.suspend !== true) {
    const staleAfterMs = staleAfterOf(s, o.cron, now);
    const from = successTime || s.metadata.creationTimestamp || since;
    const dueAt = Date.parse(from) + staleAfterMs;
    if (now.getTime() > dueAt) {
      if (prev.staleNotifiedFor !== from) {
        status.staleNotifiedFor = from;
        events.push({
          ...common,
          event: "stale",
          time: timestamp(now),
          ...(successTime ? { lastSuccess: successTime } : {}),
          staleAfterSeconds: staleAfterMs / 1000,
        });
      }
    } else {
      wakeAfterMs = dueAt - now.getTime() + 1000;
    }
  }
  return { events, status, ...(wakeAfterMs !== undefined ? { wakeAfterMs } : {}) };
}

/** `spec.notify.staleAfter`, else twice the schedule's interval (between its next two runs), else a day. */
function staleAfterOf(s: EtcdBackupSchedule, cron: Cron, now: Date): number {
  const given = s.spec.notify?.staleAfter ? parseSpan(s.spec.notify.staleAfter) : null;
  if (given !== null) return given;
  const [a, b] = cron.nextRuns(2, now);
  return a && b ? 2 * (b.getTime() - a.getTime()) : 86_400_000;
}

function durationOf(b: EtcdBackup): { durationSeconds?: number } {
  const start = Date.parse(b.status?.startTime ?? "");
  const end = Date.parse(b.status?.completionTime ?? "");
  return Number.isFinite(start) && Number.isFinite(end) && end >= start
    ? { durationSeconds: (end - start) / 1000 }
    : {};
}

/** The destination as a URL for the event (no credentials live in a destination spec). */
function destinationUrl(d: EtcdBackupSchedule["spec"]["template"]["spec"]["destination"]): string {
  if (d.azureBlob) return `azblob://${d.azureBlob.container}/${d.azureBlob.prefix ?? ""}`;
  if (d.gcs) return `gs://${d.gcs.bucket}/${d.gcs.prefix ?? ""}`;
  return `s3://${d.s3?.bucket ?? ""}/${d.s3?.prefix ?? ""}`;
}
