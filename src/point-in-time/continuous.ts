import { saveBackup } from "../backup/save.ts";
import { formatDuration } from "../duration.ts";
import { errorChain, errorHint } from "../errors.ts";
import type { EtcdSource } from "../source/etcd.ts";
import type { Compression } from "../stages/compress.ts";
import type { EncryptionPlan } from "../stages/encryption.ts";
import type { Store } from "../store/store.ts";
import { createLogMetrics, type LogMetrics } from "./log-metrics.ts";
import { runLog } from "./logger.ts";

/*
 * The revision log run beside a backup schedule (the daemon's `--continuous`, the operator's
 * `spec.continuous: true`): `runLog` until stopped, started again with backoff when it fails, with its metrics,
 * its last error, and the recoverable window both front ends show. The front ends only say where and how often.
 */

export interface ContinuousLogOptions {
  source: EtcdSource;
  store: Store;
  cluster: string;
  compression: Compression;
  level?: number;
  encryption: EncryptionPlan | null;
  segmentIntervalMs: number;
  segmentMaxBytes: number;
  /** Restart backoff after a failure: doubles from `initialMs` up to `maxMs`. */
  retry: { initialMs: number; maxMs: number };
  /** Stops the log (its open segment is closed first). */
  signal: AbortSignal;
  /** Lines about the log (already redacted by `redact`). */
  log: {
    info(fields: Record<string, unknown>, msg: string): void;
    debug(fields: Record<string, unknown>, msg: string): void;
    error(fields: Record<string, unknown>, msg: string): void;
  };
  redact: (text: string) => string;
  /** How to wait (the daemon's clock); the system's timers by default. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** What a status shows of a running log: the recoverable window of its current chain, and its last error. */
export interface RecoverableWindow {
  /** The chain's full backup time and revision, and the newest closed moment and revision; absent: nothing closed. */
  from?: { time: string; revision: number };
  to?: { time: string; revision: number };
  lastError?: string;
}

export class ContinuousLog {
  readonly metrics: LogMetrics = createLogMetrics();
  private readonly o: ContinuousLogOptions;
  private readonly startedAt = Date.now();
  private lastError: string | undefined;
  /** Where the last prune cut the chain (see `prunedTo`). */
  private cut: { base: number; revision: number; time: string } | undefined;
  /** Resolves when the log has stopped (after `signal` aborted). */
  readonly done: Promise<void>;

  constructor(options: ContinuousLogOptions) {
    this.o = options;
    this.done = this.loop();
  }

  /**
   * A prune cut the chain the log writes to: its window starts at `start` from now on (the status page and the
   * operator's status would otherwise still show the chain's base, which nothing restores any more).
   */
  prunedTo(start: { base: number; revision: number; time: string }): void {
    this.cut = start;
  }

  window(): RecoverableWindow {
    const s = this.metrics.snapshot();
    const cut =
      s && this.cut && this.cut.base === s.base && this.cut.revision > s.base ? this.cut : undefined;
    return {
      ...(s
        ? {
            from: cut ? { time: cut.time, revision: cut.revision } : { time: s.chainStart, revision: s.base },
            to: { time: new Date(s.coveredUntilMs).toISOString(), revision: s.revision },
          }
        : {}),
      ...(this.lastError ? { lastError: this.lastError } : {}),
    };
  }

  /** The window as one line (the daemon's status page, the operator's status message). */
  describe(): string {
    const w = this.window();
    const window =
      w.from && w.to
        ? `recoverable from ${w.from.time} (revision ${w.from.revision}) to ${w.to.time} (revision ${w.to.revision})`
        : "nothing closed yet";
    return w.lastError ? `${window}; last log error: ${w.lastError}` : window;
  }

  /** Why the log is behind (its closed segments older than three intervals), or null. */
  notReady(now: number): string | null {
    const allowed = 3 * this.o.segmentIntervalMs + 5000;
    const s = this.metrics.snapshot();
    const age = now - (s ? s.coveredUntilMs : this.startedAt);
    if (age <= allowed) return null;
    return (
      (s
        ? `the revision log's closed segments are ${formatDuration(age)} old`
        : `the revision log has closed nothing in the ${formatDuration(age)} since start`) +
      (this.lastError ? `; last log error: ${this.lastError}` : "")
    );
  }

  /**
   * Runs the log until stopped. The log handles lost connections and gaps itself; when it fails anyway (the
   * store refuses a write...), it is started again with the retry backoff.
   */
  private async loop(): Promise<void> {
    const o = this.o;
    const stop = o.signal;
    const sleep = o.sleep ?? defaultSleep;
    for (let attempt = 1; !stop.aborted; attempt++) {
      try {
        await runLog({
          source: o.source.options,
          store: o.store,
          cluster: o.cluster,
          encryption: o.encryption,
          segmentIntervalMs: o.segmentIntervalMs,
          segmentMaxBytes: o.segmentMaxBytes,
          signal: stop,
          metrics: this.metrics,
          fullBackup: async (signal) => {
            const result = await saveBackup({
              source: o.source,
              store: o.store,
              cluster: o.cluster,
              compression: o.compression,
              ...(o.level !== undefined ? { level: o.level } : {}),
              encryption: o.encryption,
              signal,
            });
            const revision = result.manifest.etcd?.revision;
            if (!revision) throw new Error(`full backup ${result.key} has no revision in its manifest`);
            o.log.info({ key: result.key, revision }, "full backup for the revision log");
            return { key: result.key, revision, created: result.manifest.created };
          },
          onLine: (line) => o.log.info({}, o.redact(line)),
          onSegment: (st) => {
            this.lastError = undefined;
            attempt = 0;
            o.log.debug(
              { first: st.first, last: st.last, events: st.events, storedBytes: st.storedBytes },
              "log segment closed",
            );
          },
        });
        if (stop.aborted) break;
        // runLog ends only when stopped; anything else is a fault, and the log starts again.
        throw new Error("the revision log ended without being stopped");
      } catch (err) {
        if (stop.aborted) break;
        const hint = errorHint(err);
        this.lastError = o.redact(errorChain(err).join(": ") + (hint ? ` (${hint})` : ""));
        const backoff = Math.min(o.retry.initialMs * 2 ** Math.max(0, attempt - 1), o.retry.maxMs);
        o.log.error(
          { error: this.lastError, retryIn: formatDuration(backoff) },
          "revision log failed; restarting",
        );
        await sleep(backoff, stop);
      }
    }
    o.log.info({}, "revision log stopped");
  }
}

function defaultSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
