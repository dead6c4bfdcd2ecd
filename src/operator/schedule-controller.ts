import type { Logger } from "pino";
import { pruneBackups } from "../catalog/prune.ts";
import { processRedactor, type Redactor } from "../observability/redact.ts";
import { newestChainStart, pruneLog } from "../point-in-time/prune-log.ts";
import {
  BACKUP_PLURAL,
  type EtcdBackup,
  type EtcdBackupSchedule,
  type EtcdBackupScheduleStatus,
  type MergePatch,
  SCHEDULE_PLURAL,
} from "./api.ts";
import { redactConditions, setConditions } from "./conditions.ts";
import { ContinuousLogs } from "./continuous-logs.ts";
import type { EventRecorder } from "./events.ts";
import { isAlreadyExists, isNotFound, type Kube } from "./kube.ts";
import type { OperatorMetrics } from "./metrics.ts";
import { decideNotifications } from "./notify-decision.ts";
import { type ConfigReader, resolveStore } from "./resolve.ts";
import {
  classifyPruneFailure,
  decidePruned,
  decideSchedule,
  type ObservedSchedule,
  type PruneOutcome,
  type PruneRequest,
  parseCron,
  type ScheduleAction,
} from "./schedule-decision.ts";
import { ScheduleNotifier } from "./schedule-notify.ts";
import { checkScheduleSpec } from "./spec.ts";

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

/**
 * Reconciles one EtcdBackupSchedule: creates an owned EtcdBackup for the latest due run (one per run, named
 * after its time, so a second creation is refused as AlreadyExists), applies the concurrency policy, prunes the
 * destination by the retention policy once after each new successful backup (and deletes the EtcdBackup objects
 * of pruned backups), trims failed ones to the history limit, and reports it all in status. What to do is
 * decided by `decideSchedule` and `decidePruned` (schedule-decision.ts); this class observes and applies.
 */
export class ScheduleController {
  private readonly o: ScheduleControllerOptions;
  private readonly notifier: ScheduleNotifier;
  /** Notifications being sent (they never hold up a reconcile); `settled` waits for them. */
  private readonly sending = new Set<Promise<void>>();
  /** spec.continuous: the revision logs this process runs beside their schedules. */
  private readonly continuous: ContinuousLogs;

  constructor(options: ScheduleControllerOptions) {
    this.o = options;
    this.notifier = new ScheduleNotifier({
      reader: options.reader,
      events: options.events,
      log: options.log,
      redactor: options.redactor ?? processRedactor,
      registry: options.metrics.registry,
    });
    this.continuous = new ContinuousLogs({
      reader: options.reader,
      log: options.log,
      redactor: options.redactor ?? processRedactor,
    });
  }

  /** Stops every revision log this controller runs (the open segments are closed first). */
  async close(): Promise<void> {
    await this.continuous.close();
  }

  /** Resolves when the notifications sent so far are done (delivered or given up). */
  async settled(): Promise<void> {
    await Promise.all([...this.sending]);
  }

  async reconcile(key: string, signal: AbortSignal): Promise<number | undefined> {
    const [namespace, name] = key.split("/") as [string, string];
    let schedule: EtcdBackupSchedule;
    try {
      schedule = await this.o.kube.get<EtcdBackupSchedule>(SCHEDULE_PLURAL, namespace, name);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await this.continuous.stop(key); // deleted: its revision log ends
      return undefined;
    }
    if (schedule.metadata.deletionTimestamp) {
      await this.continuous.stop(key);
      return undefined;
    }
    const now = new Date();
    const observed: ObservedSchedule = { schedule, backups: [...this.o.backups()], now, redact: this.redact };
    const decision = decideSchedule(observed);
    for (const action of decision.actions) await this.apply(schedule, action);
    let { status, conditions } = decision;
    if (decision.prune) {
      const outcome = await this.prune(schedule, decision.prune, signal);
      const pruned = decidePruned({ ...observed, now: new Date() }, decision.prune, outcome);
      for (const action of pruned.actions) await this.apply(schedule, action);
      status = { ...status, ...pruned.status };
      conditions = [...conditions, ...pruned.conditions];
    }
    // spec.continuous: the revision log runs (or stops) with the schedule; status shows its window.
    const pointInTime = await this.continuous.sync(
      validSpec(schedule) ? schedule : notContinuous(schedule),
      signal,
    );
    if (pointInTime) status = { ...status, pointInTime };
    else if (schedule.status?.pointInTime) status = { ...status, pointInTime: null };
    // spec.notify: decided now, recorded with the status, sent after it was written (at most once).
    const notification = this.decideNotifications(observed);
    if (notification) status = { ...status, notification: notification.status };
    await this.writeStatus(schedule, {
      ...status,
      conditions: setConditions(schedule.status?.conditions, conditions, now),
    });
    if (notification?.events.length) {
      const sending: Promise<void> = this.notifier
        .send(schedule, notification.events, signal)
        .finally(() => this.sending.delete(sending));
      this.sending.add(sending);
    }
    // A running log's window grows: its status is refreshed every few segments (at least every 30 s).
    const refresh = pointInTime
      ? Math.min(30_000, Math.max(5_000, 3 * 1000 * (schedule.spec.segmentIntervalSeconds ?? 10)))
      : undefined;
    const requeue = [decision.requeueAfterMs, notification?.wakeAfterMs, refresh].filter(
      (v) => v !== undefined,
    );
    if (requeue.length === 0) return undefined;
    return Math.max(50, Math.min(...requeue) - (Date.now() - now.getTime())); // the time this reconcile took
  }

  private decideNotifications(observed: ObservedSchedule) {
    const { schedule } = observed;
    if (!schedule.spec?.notify) return undefined;
    try {
      const cron = parseCron(schedule.spec.schedule, schedule.spec.timeZone);
      return decideNotifications({ ...observed, cron });
    } catch {
      return undefined; // an invalid schedule is reported by its conditions
    }
  }

  private readonly redact = (text: string): string => (this.o.redactor ?? processRedactor).redact(text);

  private async apply(schedule: EtcdBackupSchedule, action: ScheduleAction): Promise<void> {
    const { namespace } = schedule.metadata;
    switch (action.kind) {
      case "event":
        await this.o.events.record(schedule, action.type, action.reason, action.message);
        return;
      case "createBackup":
        try {
          await this.o.kube.create<EtcdBackup>(BACKUP_PLURAL, namespace, action.backup);
        } catch (err) {
          if (isAlreadyExists(err)) return; // another reconcile (or replica) made it
          throw err;
        }
        await this.o.events.record(schedule, "Normal", action.created.reason, action.created.message);
        return;
      case "deleteBackup":
        await this.o.kube.delete(BACKUP_PLURAL, namespace, action.name).catch((err) => {
          if (!isNotFound(err)) throw err;
        });
        return;
    }
  }

  private async writeStatus(
    schedule: EtcdBackupSchedule,
    status: MergePatch<EtcdBackupScheduleStatus>,
  ): Promise<void> {
    const { namespace, name } = schedule.metadata;
    if (status.conditions)
      status = { ...status, conditions: redactConditions(status.conditions, this.redact) };
    await this.o.kube.patch(SCHEDULE_PLURAL, namespace, name, { status }, true);
  }

  /** Applies retention to the destination; a failure becomes an outcome, unless the operator is stopping. */
  private async prune(
    schedule: EtcdBackupSchedule,
    request: PruneRequest,
    signal: AbortSignal,
  ): Promise<PruneOutcome> {
    const { namespace, name } = schedule.metadata;
    try {
      const warn = (line: string) => this.o.log.warn(line);
      const store = await resolveStore(request.destination, { namespace, reader: this.o.reader, warn });
      try {
        const report = await pruneBackups(store, request.policy, { cluster: request.cluster, signal });
        const full = (k: string) => (store.prefix ? `${store.prefix}/${k}` : k);
        const deletedKeys = report.backups
          .filter((b) => b.result === "deleted")
          .map((b) => full(b.entry.key));
        this.o.metrics.pruned.inc({ namespace, schedule: name }, deletedKeys.length);
        const failures = [...report.failures];
        if (schedule.spec.continuous) {
          // As the daemon's runs do: the revision log's segments no kept recovery point needs go too.
          const logReport = await pruneLog(store, { cluster: request.cluster });
          failures.push(...logReport.failed);
          const start = newestChainStart(logReport, request.cluster);
          if (start) this.continuous.prunedTo(`${namespace}/${name}`, start);
          if (logReport.removed.length > 0) {
            this.o.log.info(
              { schedule: `${namespace}/${name}`, logObjectsRemoved: logReport.removed.length },
              "pruned the revision log",
            );
          }
        }
        return {
          kind: "ran",
          kept: report.backups.filter((b) => b.action === "keep").length,
          deletedKeys,
          freedBytes: report.freedBytes,
          failures,
        };
      } finally {
        store.destroy();
      }
    } catch (err) {
      if (signal.aborted) throw err;
      return classifyPruneFailure(err, this.redact);
    }
  }
}

/** True when the schedule's spec passes the operator's check (an invalid one runs nothing). */
function validSpec(schedule: EtcdBackupSchedule): boolean {
  try {
    checkScheduleSpec(schedule.spec);
    return true;
  } catch {
    return false;
  }
}

function notContinuous(schedule: EtcdBackupSchedule): EtcdBackupSchedule {
  return { ...schedule, spec: { ...schedule.spec, continuous: false } };
}
