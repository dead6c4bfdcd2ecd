import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Counter } from "prom-client";
import type { BackupJob } from "../config/job.ts";
import type { DaemonConfig } from "../config/schema.ts";
import { formatDuration } from "../duration.ts";
import { errorChain, errorHint } from "../errors.ts";
import { NotifyEpisodes } from "../notify/episodes.ts";
import type { NotifyEvent } from "../notify/payload.ts";
import { type Delivery, Notifier, type RetryPolicy } from "../notify/sender.ts";
import type { Logger } from "../observability/logger.ts";
import { type BackupMetrics, recordFailure } from "../observability/metrics.ts";
import type { Redactor } from "../observability/redact.ts";
import { ContinuousLog } from "../point-in-time/continuous.ts";
import { EtcdSource } from "../source/etcd.ts";
import { type Clock, systemClock } from "./clock.ts";
import { RunHistory } from "./history.ts";
import { createHttpServer, listen } from "./http.ts";
import { RunFailure, runBackup } from "./run.ts";
import { Schedule } from "./schedule.ts";
import { renderStatusPage, type StatusView } from "./status-page.ts";

/** Used for /readyz when the schedule's interval cannot be worked out. */
const FALLBACK_READY_MAX_AGE_MS = 25 * 3_600_000;

export interface DaemonOptions {
  config: DaemonConfig;
  job: BackupJob;
  metrics: BackupMetrics;
  redactor: Redactor;
  /** Lines about the daemon itself (bound with its own run id); runs get `runLogger(id)`. */
  log: Logger;
  runLogger(runId: string): Logger;
  /** Prefix of run ids. */
  instanceId: string;
  /** What the daemon reads as now and how it waits (the system's by default; tests move one forward). */
  clock?: Clock;
  /** Notification retries (tests shorten them). */
  notifyRetry?: Partial<RetryPolicy>;
}

/** How often the stale check looks again at most (a success ends an episode; this notices it). */
const STALE_POLL_MS = 60_000;

/**
 * Runs a backup job on a cron schedule. At most one run at a time: scheduled times that pass while a run is in
 * flight are skipped and counted. A failed attempt is retried with exponential backoff while the retry still
 * starts before the next scheduled time. `stop` aborts the run in flight through its AbortSignal and waits for it
 * to clean up.
 */
export class Daemon {
  private readonly o: DaemonOptions;
  private readonly schedule: Schedule;
  private readonly history = new RunHistory();
  private readonly clock: Clock;
  private readonly startedAt: Date;
  private readonly stopping = new AbortController();
  private server: Server | undefined;
  private loop: Promise<void> | undefined;
  private runSeq = 0;
  private nextRun: Date | undefined;
  private lastSuccess: Date | undefined;
  private lastError: string | undefined;
  /** `etcd_backup_test_restore_total{result}`: test restores that passed or failed (--test-restore-every). */
  private readonly testRestores: Counter<"result">;
  /** With --continuous: the revision log running beside the schedule (its metrics, window and last error). */
  private continuousLog: ContinuousLog | undefined;
  /** --notify: the receivers, when to tell them, the notifications in flight, and the stale check. */
  private readonly notifier: Notifier;
  private readonly episodes = new NotifyEpisodes();
  private readonly notifying = new Set<Promise<unknown>>();
  /** Ends the notifications' retries once the shutdown grace is over (not at once: the last event matters). */
  private readonly notifyStop = new AbortController();
  private staleLoop: Promise<void> | undefined;

  constructor(options: DaemonOptions) {
    this.o = options;
    this.clock = options.clock ?? systemClock;
    this.startedAt = new Date(this.clock.now());
    this.notifier = new Notifier({
      targets: options.job.notify.targets,
      on: options.job.notify.on,
      registry: options.metrics.registry,
      redact: (text) => options.redactor.redact(text),
      ...(options.notifyRetry ? { retry: options.notifyRetry } : {}),
      report: (d: Delivery) => {
        const fields = { receiver: d.receiver, event: d.event, attempts: d.attempts };
        if (d.ok) options.log.info(fields, "notification sent");
        else options.log.warn({ ...fields, error: d.error }, "notification failed");
      },
    });
    this.schedule = new Schedule(options.config.schedule.cron, options.config.schedule.timeZone);
    const registry = options.metrics.registry;
    this.testRestores =
      (registry.getSingleMetric("etcd_backup_test_restore_total") as Counter<"result"> | undefined) ??
      new Counter({
        name: "etcd_backup_test_restore_total",
        help: "Test restores of new backups into a temporary etcd (--test-restore-every), by result",
        labelNames: ["result"],
        registers: [registry],
      });
    for (const result of ["passed", "failed"]) this.testRestores.inc({ result }, 0);
  }

  /** Starts the HTTP server and the schedule; resolves to the address it listens on. */
  async start(): Promise<AddressInfo> {
    const { config } = this.o;
    const source = this.o.job.source instanceof EtcdSource ? this.o.job.source : undefined;
    if (config.continuous && !source) {
      // The settings refuse this already; a job built otherwise is still not watched through Talos.
      throw new Error("--continuous needs an etcd source: the revision log watches etcd's client port");
    }
    this.server = createHttpServer({
      // Label values are a closed set, but the text passes the redactor like every other output.
      metrics: async () => ({
        contentType: this.o.metrics.registry.contentType,
        body: this.o.redactor.redact(
          (await this.o.metrics.registry.metrics()) +
            (this.continuousLog ? `\n${await this.continuousLog.metrics.registry.metrics()}` : ""),
        ),
      }),
      notReady: () => {
        const why = this.notReady(new Date(this.clock.now()));
        return why === null ? null : this.o.redactor.redact(why);
      },
      statusPage: () => this.o.redactor.redact(renderStatusPage(this.statusView())),
      // The page's facts for scripts, as the operator serves its own (src/operator/status/).
      statusJson: () => this.o.redactor.redact(`${JSON.stringify(this.statusView(), null, 2)}\n`),
    });
    const address = await listen(this.server, config.metrics.host, config.metrics.port);
    this.o.log.info(
      {
        address: `${address.address}:${address.port}`,
        schedule: config.schedule.cron,
        timeZone: config.schedule.timeZone,
        store: this.o.job.store.location,
        source: this.o.job.source.description,
        readyMaxAge: formatDuration(this.readyMaxAgeMs()),
        retention: this.o.job.retention,
        verify: config.verify,
        testRestoreEvery: config.testRestoreEvery,
        continuous: config.continuous
          ? { segmentInterval: formatDuration(config.continuous.segmentIntervalMs) }
          : false,
        // Receivers by label only: their URLs are secrets.
        notify: this.o.job.notify.targets.length
          ? {
              receivers: this.o.job.notify.targets.map((t) => `${t.label} ${t.format}`),
              on: this.o.job.notify.on,
              ...(this.notifier.wants("stale") ? { staleAfter: formatDuration(this.staleAfterMs()) } : {}),
            }
          : undefined,
      },
      "daemon started",
    );
    if (!this.o.job.retention) this.o.log.warn("no keep rule given: backups are never pruned");
    if (config.verify && this.o.job.encryption && !this.o.job.decrypt) {
      this.o.log.warn(
        "--verify without --identity: encrypted backups can only be checked by size and manifest; pass --identity for the full structural check",
      );
    }
    if (config.continuous && source) {
      const { job } = this.o;
      const log = this.o.log.child({ part: "revision-log" });
      this.continuousLog = new ContinuousLog({
        source,
        store: job.store,
        cluster: job.cluster,
        compression: job.compression,
        ...(job.level !== undefined ? { level: job.level } : {}),
        encryption: job.encryption,
        segmentIntervalMs: config.continuous.segmentIntervalMs,
        segmentMaxBytes: config.continuous.segmentMaxBytes,
        retry: config.retry,
        signal: this.stopping.signal,
        log: {
          info: (fields, msg) => log.info(fields, msg),
          debug: (fields, msg) => log.debug(fields, msg),
          error: (fields, msg) => log.error(fields, msg),
        },
        redact: (text) => this.o.redactor.redact(text),
        sleep: (ms, signal) => this.clock.sleep(ms, signal),
      });
    }
    this.loop = this.runLoop();
    if (this.notifier.wants("stale")) this.staleLoop = this.runStaleLoop();
    return address;
  }

  /** Resolves when the loop has ended (after `stop`). */
  async done(): Promise<void> {
    await this.loop;
  }

  /**
   * Aborts the run in flight and waits up to the shutdown grace for it to clean up, then closes the HTTP server.
   * Resolves true when everything stopped in time.
   */
  async stop(why: string): Promise<boolean> {
    if (!this.stopping.signal.aborted) {
      this.o.log.info({ signal: why }, "stopping");
      this.stopping.abort(new Error(`stopped by ${why}`));
    }
    const stoppingAt = Date.now();
    let timer: NodeJS.Timeout | undefined;
    const inTime = await Promise.race([
      Promise.all([this.loop, this.continuousLog?.done, this.staleLoop]).then(() => true),
      new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), this.o.config.shutdownGraceMs);
      }),
    ]);
    // Notifications in flight (the last failure...) get what is left of the grace, then are given up.
    await Promise.race([
      Promise.all([...this.notifying]),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, Math.max(0, stoppingAt + this.o.config.shutdownGraceMs - Date.now()));
      }),
    ]);
    this.notifyStop.abort(new Error(`stopped by ${why}`));
    clearTimeout(timer);
    await new Promise<void>((resolve) => {
      if (!this.server) return resolve();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    if (inTime) this.o.log.info("stopped");
    else
      this.o.log.error(
        { graceMs: this.o.config.shutdownGraceMs },
        "the run in flight did not stop within the shutdown grace",
      );
    return inTime;
  }

  /** Why /readyz fails, or null. */
  notReady(now: Date): string | null {
    const log = this.logNotReady(now);
    if (log !== null) return log;
    const maxAge = this.readyMaxAgeMs();
    const since = this.lastSuccess ?? this.startedAt;
    const age = now.getTime() - since.getTime();
    if (age <= maxAge) return null;
    return this.lastSuccess
      ? `last successful backup ${formatDuration(age)} ago (more than ${formatDuration(maxAge)})${this.lastError ? `; last error: ${this.lastError}` : ""}`
      : `no successful backup in the ${formatDuration(age)} since start${this.lastError ? `; last error: ${this.lastError}` : ""}`;
  }

  /** With --continuous: the log must keep closing segments (as `etcd-backup log`'s /readyz: three intervals). */
  private logNotReady(now: Date): string | null {
    return this.continuousLog?.notReady(now.getTime()) ?? null;
  }

  /** The recoverable window of the log's current chain, for the status page. */
  private pointInTimeLine(): string | undefined {
    if (!this.o.config.continuous) return undefined;
    return this.continuousLog?.describe() ?? "nothing closed yet";
  }

  private readyMaxAgeMs(): number {
    if (this.o.config.readyMaxAgeMs !== undefined) return this.o.config.readyMaxAgeMs;
    const interval = this.schedule.intervalMs(new Date(this.clock.now()));
    return interval !== undefined
      ? 2 * interval + this.o.config.schedule.jitterMs
      : FALLBACK_READY_MAX_AGE_MS;
  }

  /** --notify-stale-after, else twice the schedule's interval (and its jitter), as /readyz's default. */
  private staleAfterMs(): number {
    if (this.o.job.notify.staleAfterMs !== undefined) return this.o.job.notify.staleAfterMs;
    const interval = this.schedule.intervalMs(new Date(this.clock.now()));
    return interval !== undefined
      ? 2 * interval + this.o.config.schedule.jitterMs
      : FALLBACK_READY_MAX_AGE_MS;
  }

  /**
   * Posts `event` to the receivers without holding up the schedule; `stop` waits for the ones in flight (within
   * the shutdown grace). A notification that fails is logged and counted by the notifier, never thrown.
   */
  private send(event: Omit<NotifyEvent, "origin" | "cluster" | "store">): void {
    if (!this.notifier.wants(event.event)) return;
    const full: NotifyEvent = {
      origin: "daemon",
      cluster: this.o.job.cluster,
      store: this.o.job.store.location,
      ...event,
    };
    const sending: Promise<unknown> = this.notifier
      .notify(full, this.notifyStop.signal)
      .finally(() => this.notifying.delete(sending));
    this.notifying.add(sending);
  }

  /**
   * --notify-on stale: once no run succeeded for the stale span (since the last success, or the start), one
   * `stale` event; the next success ends the episode. Runs on the daemon's clock.
   */
  private async runStaleLoop(): Promise<void> {
    const stop = this.stopping.signal;
    while (!stop.aborted) {
      const now = this.clock.now();
      const since = (this.lastSuccess ?? this.startedAt).getTime();
      const staleAfter = this.staleAfterMs();
      if (this.episodes.stale(now, since, staleAfter)) {
        this.o.log.warn(
          { lastSuccess: this.lastSuccess?.toISOString(), staleAfter: formatDuration(staleAfter) },
          "no successful backup within the expected interval",
        );
        this.send({
          event: "stale",
          time: new Date(now).toISOString(),
          ...(this.lastSuccess ? { lastSuccess: this.lastSuccess.toISOString() } : {}),
          staleAfterSeconds: staleAfter / 1000,
          ...(this.lastError ? { error: this.lastError } : {}),
        });
      }
      const untilStale = since + staleAfter + 1 - now;
      await this.clock.sleep(untilStale > 0 ? Math.min(untilStale, STALE_POLL_MS) : STALE_POLL_MS, stop);
    }
  }

  private statusView(): StatusView {
    const now = new Date(this.clock.now());
    return {
      cluster: this.o.job.cluster,
      location: this.o.job.store.location,
      schedule: this.schedule.pattern,
      ...(this.schedule.timeZone ? { timeZone: this.schedule.timeZone } : {}),
      ...(this.nextRun ? { nextRun: this.nextRun } : {}),
      ready: this.notReady(now) === null,
      ...(this.lastSuccess ? { lastSuccess: this.lastSuccess } : {}),
      now,
      runs: this.history.all(),
      ...(this.pointInTimeLine() !== undefined ? { pointInTime: this.pointInTimeLine()! } : {}),
    };
  }

  private async runLoop(): Promise<void> {
    const stop = this.stopping.signal;
    while (!stop.aborted) {
      const due = this.schedule.next(new Date(this.clock.now()));
      if (!due) {
        this.o.log.warn("the schedule has no more runs");
        await this.clock.sleep(Number.MAX_SAFE_INTEGER, stop);
        break;
      }
      this.nextRun = due;
      const jitter =
        this.o.config.schedule.jitterMs > 0 ? Math.random() * this.o.config.schedule.jitterMs : 0;
      await this.clock.sleep(due.getTime() + jitter - this.clock.now(), stop);
      if (stop.aborted) break;
      await this.runSlot(due);
      const missed = this.schedule.countBetween(due, new Date(this.clock.now()));
      if (missed > 0) {
        this.o.metrics.skippedRuns.inc(missed);
        this.o.log.warn({ skipped: missed }, "scheduled runs skipped: a run was still in flight");
      }
    }
  }

  /** One scheduled run: attempts with backoff until one succeeds, the next scheduled time comes, or a stop. */
  private async runSlot(scheduledAt: Date): Promise<void> {
    const stop = this.stopping.signal;
    const seq = ++this.runSeq;
    const runId = `${this.o.instanceId}-${seq}`;
    const log = this.o.runLogger(runId);
    const { config } = this.o;
    const testRestore = config.testRestoreEvery > 0 && seq % config.testRestoreEvery === 0;
    for (let attempt = 1; ; attempt++) {
      const startedAt = new Date(this.clock.now());
      const t0 = performance.now();
      log.info({ attempt, scheduledAt: scheduledAt.toISOString(), testRestore }, "run started");
      try {
        const out = await runBackup({
          job: this.o.job,
          signal: stop,
          log,
          verify: config.verify,
          testRestore,
          ...(config.keepLogWithinMs !== undefined ? { logWithinMs: config.keepLogWithinMs } : {}),
        });
        const finishedAt = new Date(this.clock.now());
        const seconds = (performance.now() - t0) / 1000;
        const m = out.save.manifest;
        this.record(finishedAt, seconds, "success");
        this.o.metrics.lastSuccess.set(finishedAt.getTime() / 1000);
        this.o.metrics.storedBytes.set(m.sizes.stored);
        this.o.metrics.dbBytes.set(m.dbSize);
        if (m.etcd?.revision !== undefined) this.o.metrics.revision.set(m.etcd.revision);
        this.o.metrics.backupsKept.set(out.kept);
        if (out.pruned) this.o.metrics.pruned.inc(out.pruned);
        if (out.logStart) this.continuousLog?.prunedTo(out.logStart);
        if (out.testRestore) this.testRestores.inc({ result: "passed" });
        this.lastSuccess = finishedAt;
        this.lastError = undefined;
        this.history.add({
          runId,
          attempt,
          scheduledAt,
          startedAt,
          finishedAt,
          durationSeconds: seconds,
          result: "success",
          key: out.save.key,
          storedBytes: m.sizes.stored,
          dbBytes: m.dbSize,
          ...(m.etcd?.revision !== undefined ? { revision: m.etcd.revision } : {}),
          ...(out.pruned !== undefined ? { pruned: out.pruned } : {}),
          verify: out.verify,
          ...(out.testRestore ? { testRestore: out.testRestore } : {}),
        });
        log.info({ attempt, key: out.save.key, seconds: Math.round(seconds * 1000) / 1000 }, "run succeeded");
        this.episodes.succeeded();
        this.send({
          event: "success",
          time: finishedAt.toISOString(),
          backup: out.save.key,
          durationSeconds: Math.round(seconds * 1000) / 1000,
          sizeBytes: m.sizes.stored,
          ...(m.etcd?.revision !== undefined ? { revision: m.etcd.revision } : {}),
        });
        return;
      } catch (err) {
        const finishedAt = new Date(this.clock.now());
        const seconds = (performance.now() - t0) / 1000;
        const reason = stop.aborted ? "aborted" : err instanceof RunFailure ? err.reason : "other";
        const hint = errorHint(err);
        const line = this.o.redactor.redact(errorChain(err).join(": ") + (hint ? ` (${hint})` : ""));
        this.record(finishedAt, seconds, "failure");
        recordFailure(this.o.metrics, reason);
        if (reason === "test_restore") this.testRestores.inc({ result: "failed" });
        this.lastError = line;
        this.history.add({
          runId,
          attempt,
          scheduledAt,
          startedAt,
          finishedAt,
          durationSeconds: seconds,
          result: "failure",
          reason,
          error: line,
          ...(reason === "test_restore" ? { testRestore: "failed" } : {}),
        });
        if (stop.aborted) {
          log.warn({ attempt, reason }, "run aborted; nothing partial was left in the store");
          return;
        }
        // Once per failure episode: the retries and the runs that fail after it are not news until a success.
        if (this.episodes.failed()) {
          this.send({
            event: "failure",
            time: finishedAt.toISOString(),
            error: line,
            durationSeconds: Math.round(seconds * 1000) / 1000,
            attempts: attempt,
          });
        }
        const backoff = Math.min(config.retry.initialMs * 2 ** (attempt - 1), config.retry.maxMs);
        const next = this.schedule.next(finishedAt);
        const retryAt = finishedAt.getTime() + backoff;
        const willRetry = next === null || retryAt < next.getTime();
        log.error(
          { attempt, reason, error: line, ...(willRetry ? { retryIn: formatDuration(backoff) } : {}) },
          willRetry ? "run failed; retrying" : "run failed; no retry fits before the next scheduled run",
        );
        if (!willRetry) return;
        await this.clock.sleep(backoff, stop);
        if (stop.aborted) return;
      }
    }
  }

  /** Metrics every attempt updates; failures are counted with their reason by `recordFailure`. */
  private record(finishedAt: Date, seconds: number, result: "success" | "failure"): void {
    this.o.metrics.lastAttempt.set(finishedAt.getTime() / 1000);
    this.o.metrics.duration.observe(seconds);
    if (result === "success") this.o.metrics.runs.inc({ result });
  }
}
