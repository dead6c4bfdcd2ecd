import type { Logger } from "pino";
import { backupJobFromConfig } from "../config/job.ts";
import { parseBackupJobConfig } from "../config/schema.ts";
import { describeError } from "../errors.ts";
import type { Redactor } from "../observability/redact.ts";
import { ContinuousLog } from "../point-in-time/continuous.ts";
import { EtcdSource } from "../source/etcd.ts";
import type { Store } from "../store/store.ts";
import type { EtcdBackupSchedule, PointInTimeStatus } from "./api.ts";
import { type ConfigReader, jobConfigFromSpec } from "./resolve.ts";
import { scheduleClusterOf } from "./schedule-decision.ts";

/**
 * `spec.continuous: true`: one revision log per EtcdBackupSchedule, run in this (leading) process beside the
 * schedule, as `daemon --continuous` runs it (point-in-time/continuous.ts): the operator only translates the
 * schedule's template into the one job configuration and starts, restarts (a new generation) or stops the log.
 * The log writes into the template's destination under its cluster name, where `restore --at` finds it.
 */
export class ContinuousLogs {
  private readonly o: {
    reader: ConfigReader;
    log: Logger;
    redactor: Redactor;
    retry?: { initialMs: number; maxMs: number };
  };
  private readonly running = new Map<
    string,
    { generation: number; stop: AbortController; log: ContinuousLog; store: Store }
  >();

  constructor(options: ContinuousLogs["o"]) {
    this.o = options;
  }

  /**
   * Brings the schedule's log in line with its spec and returns its status: the recoverable window; `null`
   * (remove it from status) when the schedule runs no log. A log that cannot start is reported in the status
   * message and tried again at the next reconcile.
   */
  async sync(schedule: EtcdBackupSchedule, parent: AbortSignal): Promise<PointInTimeStatus | null> {
    const { namespace, name } = schedule.metadata;
    const key = `${namespace}/${name}`;
    const generation = schedule.metadata.generation ?? 1;
    const wanted = schedule.spec.continuous === true && schedule.spec.suspend !== true;
    const current = this.running.get(key);
    if (current && (!wanted || current.generation !== generation)) await this.stop(key);
    if (!wanted) return null;
    const running = this.running.get(key);
    if (running) return statusOf(running.log);
    try {
      const started = await this.start(schedule, generation, parent);
      return statusOf(started);
    } catch (err) {
      if (parent.aborted) throw err;
      const message = this.o.redactor.redact(`the revision log cannot start: ${describeError(err)}`);
      this.o.log.warn({ schedule: key, err: message }, "revision log not started");
      return { message };
    }
  }

  /** A prune cut the chain the schedule's log writes to: its recoverable window starts at `start` from now on. */
  prunedTo(key: string, start: { base: number; revision: number; time: string }): void {
    this.running.get(key)?.log.prunedTo(start);
  }

  /** Stops the log of a schedule (deleted, suspended, changed); the open segment is closed first. */
  async stop(key: string): Promise<void> {
    const r = this.running.get(key);
    if (!r) return;
    this.running.delete(key);
    r.stop.abort(new Error("the schedule changed"));
    await r.log.done;
    (r.store as { destroy?: () => void }).destroy?.();
  }

  /** Stops every log (the operator is stopping or lost its lease). */
  async close(): Promise<void> {
    await Promise.all([...this.running.keys()].map((k) => this.stop(k)));
  }

  private async start(schedule: EtcdBackupSchedule, generation: number, parent: AbortSignal) {
    const { namespace, name } = schedule.metadata;
    const log = this.o.log.child({ schedule: `${namespace}/${name}`, part: "revision-log" });
    const template = schedule.spec.template.spec;
    // The cluster the schedule's backups carry, so that restore --at finds the log beside them.
    const cluster = scheduleClusterOf(schedule);
    const ctx = { namespace, reader: this.o.reader, warn: (line: string) => log.warn(line) };
    // The same translation and builder as the schedule's backups (resolve.ts, config/job.ts).
    const job = await backupJobFromConfig(
      parseBackupJobConfig(await jobConfigFromSpec(template, cluster, ctx)),
      {
        warn: ctx.warn,
      },
    );
    this.o.redactor.add(...job.secrets);
    if (!(job.source instanceof EtcdSource)) {
      (job.store as { destroy?: () => void }).destroy?.();
      throw new Error("spec.continuous needs an etcd source (Talos' API has no watch)");
    }
    const stop = new AbortController();
    const signal = AbortSignal.any([parent, stop.signal]);
    const continuous = new ContinuousLog({
      source: job.source,
      store: job.store,
      cluster: job.cluster,
      compression: job.compression,
      ...(job.level !== undefined ? { level: job.level } : {}),
      encryption: job.encryption,
      segmentIntervalMs: (schedule.spec.segmentIntervalSeconds ?? 10) * 1000,
      segmentMaxBytes: 16 << 20,
      retry: this.o.retry ?? { initialMs: 5_000, maxMs: 300_000 },
      signal,
      log: {
        info: (fields, msg) => log.info(fields, msg),
        debug: (fields, msg) => log.debug(fields, msg),
        error: (fields, msg) => log.error(fields, msg),
      },
      redact: (text) => this.o.redactor.redact(text),
    });
    this.running.set(`${namespace}/${name}`, { generation, stop, log: continuous, store: job.store });
    log.info({ cluster, destination: job.store.location }, "revision log started");
    return continuous;
  }
}

function statusOf(log: ContinuousLog): PointInTimeStatus {
  const w = log.window();
  return {
    ...(w.from ? { recoverableFrom: w.from.time, recoverableFromRevision: w.from.revision } : {}),
    ...(w.to ? { recoverableTo: w.to.time, recoverableToRevision: w.to.revision } : {}),
    message: log.describe(),
  };
}
