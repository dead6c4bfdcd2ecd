import { Cron } from "croner";
import type { Logger } from "pino";
import { pruneBackups } from "../catalog/prune.ts";
import type { RetentionPolicy } from "../catalog/retention.ts";
import { parseSpan } from "../catalog/time-bound.ts";
import { describeError } from "../errors.ts";
import { processRedactor, type Redactor } from "../observability/redact.ts";
import {
  API_VERSION,
  BACKUP_KIND,
  BACKUP_PLURAL,
  type EtcdBackup,
  type EtcdBackupSchedule,
  type EtcdBackupScheduleStatus,
  Reason,
  type RetentionSpec,
  SCHEDULE_KIND,
  SCHEDULE_LABEL,
  SCHEDULE_PLURAL,
  SCHEDULED_AT_ANNOTATION,
} from "./api.ts";
import { findCondition, setConditions, timestamp } from "./conditions.ts";
import type { EventRecorder } from "./events.ts";
import { isConflict, isNotFound, type Kube, KubeError } from "./kube.ts";
import type { OperatorMetrics } from "./metrics.ts";
import { type ConfigReader, resolveStore, SpecProblem } from "./resolve.ts";
import { checkScheduleSpec, InvalidSpecError } from "./spec.ts";

export interface ScheduleControllerOptions {
  kube: Kube;
  reader: ConfigReader;
  events: EventRecorder;
  metrics: OperatorMetrics;
  log: Logger;
  /** Removes secrets from status messages (default: the process's redactor). */
  redactor?: Redactor;
  /** The EtcdBackups this replica sees (the backup informer's cache). */
  backups: () => Iterable<EtcdBackup>;
}

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

const isTerminal = (b: EtcdBackup) =>
  b.status?.phase === "Succeeded" ||
  (b.status?.phase === "Failed" &&
    !b.status.nextRetryTime &&
    b.status.observedGeneration === (b.metadata.generation ?? 1));

/**
 * Reconciles one EtcdBackupSchedule: creates an owned EtcdBackup for the latest due run (one per run, named
 * after its time, so a second creation is refused as AlreadyExists), applies the concurrency policy, prunes the
 * destination by the retention policy once after each new successful backup (and deletes the EtcdBackup objects
 * of pruned backups), trims failed ones to the history limit, and reports it all in status.
 */
export class ScheduleController {
  private readonly o: ScheduleControllerOptions;

  constructor(options: ScheduleControllerOptions) {
    this.o = options;
  }

  async reconcile(key: string, signal: AbortSignal): Promise<number | undefined> {
    const [namespace, name] = key.split("/") as [string, string];
    let obj: EtcdBackupSchedule;
    try {
      obj = await this.o.kube.get<EtcdBackupSchedule>(SCHEDULE_PLURAL, namespace, name);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    if (obj.metadata.deletionTimestamp) return undefined;
    const now = new Date();
    const generation = obj.metadata.generation ?? 1;
    const status: EtcdBackupScheduleStatus = { observedGeneration: generation };
    let conditions = obj.status?.conditions;

    let cron: Cron;
    try {
      checkScheduleSpec(obj.spec);
      cron = parseCron(obj.spec.schedule, obj.spec.timeZone);
      if (obj.spec.retention) retentionPolicy(obj.spec.retention);
    } catch (err) {
      const reason =
        err instanceof InvalidSpecError || err instanceof SpecProblem
          ? Reason.InvalidSpec
          : Reason.InvalidSchedule;
      const message = this.redact(
        reason === Reason.InvalidSchedule
          ? `spec.schedule ${JSON.stringify(obj.spec?.schedule)}${obj.spec?.timeZone ? ` in ${obj.spec.timeZone}` : ""}: ${describeError(err)} (use 5 cron fields, or 6 with seconds first, and an IANA time zone)`
          : describeError(err),
      );
      const old = findCondition(conditions, "Failed");
      await this.writeStatus(obj, {
        ...status,
        nextScheduleTime: null as unknown as string,
        conditions: setConditions(
          conditions,
          [
            { type: "Ready", status: "False", reason, message, observedGeneration: generation },
            { type: "Failed", status: "True", reason, message, observedGeneration: generation },
          ],
          now,
        ),
      });
      if (old?.status !== "True" || old.message !== message) {
        await this.o.events.record(obj, "Warning", reason, message);
      }
      return undefined;
    }

    const children = [...this.o.backups()].filter(
      (b) =>
        b.metadata.namespace === namespace &&
        b.metadata.labels?.[SCHEDULE_LABEL] === name &&
        (b.metadata.ownerReferences ?? []).some((r) => r.uid === obj.metadata.uid),
    );
    const active = children.filter((b) => !isTerminal(b) && !b.metadata.deletionTimestamp);

    // The latest run due since the last one (missed runs in between are not made up, as CronJob does).
    let due: Date | undefined;
    const from = new Date(
      obj.status?.lastScheduleTime ?? obj.metadata.creationTimestamp ?? now.toISOString(),
    );
    for (let t = cron.nextRun(from), i = 0; t && t <= now && i < 100_000; t = cron.nextRun(t), i++) due = t;

    if (obj.spec.suspend) {
      conditions = setConditions(
        conditions,
        [
          {
            type: "Ready",
            status: "True",
            reason: Reason.Suspended,
            message: "suspended: no new backups",
            observedGeneration: generation,
          },
        ],
        now,
      );
      if (due) status.lastScheduleTime = timestamp(due); // runs missed while suspended are skipped, not made up
      due = undefined;
    }
    if (due) {
      const policy = obj.spec.concurrencyPolicy ?? "Forbid";
      if (policy === "Forbid" && active.length > 0) {
        await this.o.events.record(
          obj,
          "Normal",
          "BackupSkipped",
          `run at ${timestamp(due)} skipped: ${active.map((b) => b.metadata.name).join(", ")} still running (concurrencyPolicy Forbid)`,
        );
      } else {
        if (policy === "Replace") {
          for (const b of active) {
            await this.o.kube.delete(BACKUP_PLURAL, namespace, b.metadata.name).catch((err) => {
              if (!isNotFound(err)) throw err;
            });
            await this.o.events.record(
              obj,
              "Normal",
              "BackupReplaced",
              `deleted ${b.metadata.name} (concurrencyPolicy Replace)`,
            );
          }
        }
        const created = await this.createBackup(obj, due);
        if (created) {
          active.push(created);
          await this.o.events.record(
            obj,
            "Normal",
            "BackupCreated",
            `created EtcdBackup ${created.metadata.name} for ${timestamp(due)}`,
          );
        }
      }
      status.lastScheduleTime = timestamp(due);
    }

    const succeeded = children
      .filter((b) => b.status?.phase === "Succeeded")
      .sort((a, b) => (b.status?.completionTime ?? "").localeCompare(a.status?.completionTime ?? ""));
    const last = succeeded[0];
    if (last) {
      status.lastSuccessfulBackup = {
        name: last.metadata.name,
        ...(last.status?.key ? { key: last.status.key } : {}),
        ...(last.status?.completionTime ? { completionTime: last.status.completionTime } : {}),
      };
    }
    status.active = active.filter((b) => !isTerminal(b)).map((b) => ({ name: b.metadata.name }));

    if (last && obj.spec.retention && obj.status?.lastPrunedAfter !== last.metadata.name) {
      conditions = await this.prune(obj, last, children, conditions, signal);
      status.lastPrunedAfter = last.metadata.name;
      status.lastPruneTime = timestamp(new Date());
    }
    await this.trimFailed(obj, children);

    const next = obj.spec.suspend ? null : cron.nextRun(now);
    status.nextScheduleTime = next ? timestamp(next) : (null as unknown as string);
    if (!obj.spec.suspend) {
      conditions = setConditions(
        conditions,
        [
          {
            type: "Ready",
            status: "True",
            reason: Reason.Scheduled,
            message: next ? `next backup at ${timestamp(next)}` : "no future run",
            observedGeneration: generation,
          },
        ],
        now,
      );
    }
    const failed = findCondition(conditions, "Failed");
    if (
      failed?.status === "True" &&
      (failed.reason === Reason.InvalidSpec || failed.reason === Reason.InvalidSchedule)
    ) {
      conditions = setConditions(
        conditions,
        [
          {
            type: "Failed",
            status: "False",
            reason: Reason.Scheduled,
            message: "",
            observedGeneration: generation,
          },
        ],
        now,
      );
    }
    status.conditions = conditions;
    await this.writeStatus(obj, status);
    if (!next) return undefined;
    return Math.max(50, next.getTime() - Date.now());
  }

  /** A status or Event message without secrets. */
  private redact(message: string): string {
    return (this.o.redactor ?? processRedactor).redact(message);
  }

  private async writeStatus(obj: EtcdBackupSchedule, status: EtcdBackupScheduleStatus): Promise<void> {
    await this.o.kube.patch(SCHEDULE_PLURAL, obj.metadata.namespace, obj.metadata.name, { status }, true);
  }

  private async createBackup(obj: EtcdBackupSchedule, due: Date): Promise<EtcdBackup | undefined> {
    const { namespace, name, uid } = obj.metadata;
    const template = obj.spec.template;
    const body: EtcdBackup = {
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
      spec: { ...template.spec, clusterName: template.spec.clusterName ?? name },
    };
    try {
      return await this.o.kube.create<EtcdBackup>(BACKUP_PLURAL, namespace, body);
    } catch (err) {
      if (isConflict(err) || (err instanceof KubeError && err.reason === "AlreadyExists")) return undefined;
      throw err;
    }
  }

  private async prune(
    obj: EtcdBackupSchedule,
    after: EtcdBackup,
    children: EtcdBackup[],
    conditions: EtcdBackupScheduleStatus["conditions"],
    signal: AbortSignal,
  ): Promise<EtcdBackupScheduleStatus["conditions"]> {
    const { namespace, name } = obj.metadata;
    const generation = obj.metadata.generation ?? 1;
    const spec = obj.spec.template.spec;
    const cluster = spec.clusterName ?? name;
    try {
      const store = await resolveStore(spec.destination.s3, {
        namespace,
        reader: this.o.reader,
        warn: (line) => this.o.log.warn(line),
      });
      let report: Awaited<ReturnType<typeof pruneBackups>>;
      try {
        report = await pruneBackups(store, retentionPolicy(obj.spec.retention!), { cluster, signal });
      } finally {
        store.destroy();
      }
      const deleted = report.backups.filter((b) => b.result === "deleted");
      const full = (k: string) => (store.prefix ? `${store.prefix}/${k}` : k);
      const gone = new Set(deleted.map((b) => full(b.entry.key)));
      this.o.metrics.pruned.inc({ namespace, schedule: name }, deleted.length);
      for (const b of children) {
        if (b.status?.key && gone.has(b.status.key) && b.metadata.name !== after.metadata.name) {
          await this.o.kube.delete(BACKUP_PLURAL, namespace, b.metadata.name).catch((err) => {
            if (!isNotFound(err)) throw err;
          });
        }
      }
      const kept = report.backups.filter((b) => b.action === "keep").length;
      const message = this.redact(
        `retention kept ${kept} backup(s), deleted ${deleted.length} (${report.freedBytes} bytes)${report.failures.length ? `; ${report.failures.length} deletion(s) failed: ${report.failures[0]!.error}` : ""}`,
      );
      await this.o.events.record(
        obj,
        report.failures.length ? "Warning" : "Normal",
        report.failures.length ? Reason.PruneFailed : Reason.Pruned,
        message,
      );
      return setConditions(
        conditions,
        [
          {
            type: "Failed",
            status: report.failures.length ? "True" : "False",
            reason: report.failures.length ? Reason.PruneFailed : Reason.Pruned,
            message: report.failures.length ? message : "",
            observedGeneration: generation,
          },
        ],
        new Date(),
      );
    } catch (err) {
      if (signal.aborted) throw err;
      const message = this.redact(`retention could not run: ${describeError(err)}`);
      await this.o.events.record(obj, "Warning", Reason.PruneFailed, message);
      return setConditions(
        conditions,
        [
          {
            type: "Failed",
            status: "True",
            reason: err instanceof SpecProblem ? err.reason : Reason.PruneFailed,
            message,
            observedGeneration: generation,
          },
        ],
        new Date(),
      );
    }
  }

  /** Deletes the oldest failed EtcdBackups beyond `failedBackupsHistoryLimit` (default 3). */
  private async trimFailed(obj: EtcdBackupSchedule, children: EtcdBackup[]): Promise<void> {
    const limit = obj.spec.failedBackupsHistoryLimit ?? 3;
    const failed = children
      .filter((b) => isTerminal(b) && b.status?.phase === "Failed" && !b.metadata.deletionTimestamp)
      .sort((a, b) => (b.metadata.creationTimestamp ?? "").localeCompare(a.metadata.creationTimestamp ?? ""));
    for (const b of failed.slice(limit)) {
      await this.o.kube.delete(BACKUP_PLURAL, obj.metadata.namespace, b.metadata.name).catch((err) => {
        if (!isNotFound(err)) throw err;
      });
    }
  }
}
