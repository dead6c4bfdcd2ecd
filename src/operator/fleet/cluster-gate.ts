import { Reason } from "../api.ts";

/**
 * Keeps one failing cluster from delaying the others when one operator backs up many. Two rules:
 * - a cluster never holds every slot of the work queue: it runs at most `perCluster` backups at once (the
 *   operator sets `--max-concurrent` - 1, at least 1), so a cluster whose nodes hang until their dial timeout
 *   leaves a slot to the others even before its first attempt has failed;
 * - after a backup could not
 * reach its cluster (reason SourceUnreachable), the cluster's next backups wait a backoff that doubles per
 * consecutive unreachable run (capped), so a cluster that is down does not keep the work queue's slots busy with
 * attempts that hang until their dial timeout, while backups of every other cluster start as soon as a slot is
 * free. A success clears the cluster's backoff; other failures (a missing Secret, a bad recipient) are the
 * backup's own and leave it alone. With the default concurrencyPolicy Forbid a schedule has one backup active at
 * a time, so a cluster that hangs holds at most one slot per schedule.
 *
 * The controllers ask `waitMs` before they claim a backup and requeue it after that long when it is not 0, then
 * report each run's end with `finished`. The clock is passed in, so the rules are tested without waiting.
 */

export interface ClusterGateSettings {
  /** Backoff after the first unreachable run; doubles per consecutive one. */
  baseMs: number;
  capMs: number;
  /** Backups of one cluster running at once; more wait `busyPollMs` and ask again. */
  perCluster: number;
  busyPollMs: number;
}

export const DEFAULT_CLUSTER_GATE: ClusterGateSettings = {
  baseMs: 10_000,
  capMs: 600_000,
  perCluster: Number.POSITIVE_INFINITY,
  busyPollMs: 500,
};

/** A cluster backing off, as the status page shows it. */
export interface ClusterBackoff {
  cluster: string;
  /** Consecutive runs that could not reach the cluster. */
  failures: number;
  until: Date;
}

/** How a run ended, as far as the cluster's health goes. */
export type RunEnd = "succeeded" | "unreachable" | "other";

/** A run's outcome as the gate counts it: only a source that could not be reached says the cluster is down. */
export function runEnd(outcome: { kind: string; failure?: { reason: string } }): RunEnd {
  if (outcome.kind === "stored") return "succeeded";
  return outcome.failure?.reason === Reason.SourceUnreachable ? "unreachable" : "other";
}

export class ClusterGate {
  private readonly settings: ClusterGateSettings;
  /** Clusters backing off: consecutive unreachable runs, and until when (epoch ms) new backups wait. */
  private readonly clusters = new Map<string, { failures: number; until: number }>();
  private readonly running = new Map<string, number>();

  constructor(settings: Partial<ClusterGateSettings> = {}) {
    this.settings = { ...DEFAULT_CLUSTER_GATE, ...settings };
  }

  /**
   * 0 when a backup of `cluster` may start now, else how long to wait before asking again. Call `started` in the
   * same turn when it is 0 (so that two reconciles cannot both pass), and `finished` when the run ends.
   */
  waitMs(cluster: string, now: Date): number {
    const s = this.clusters.get(cluster);
    const backoff = s ? Math.max(0, s.until - now.getTime()) : 0;
    if (backoff > 0) return backoff;
    return (this.running.get(cluster) ?? 0) >= this.settings.perCluster ? this.settings.busyPollMs : 0;
  }

  started(cluster: string): void {
    this.running.set(cluster, (this.running.get(cluster) ?? 0) + 1);
  }

  finished(cluster: string, end: RunEnd, now: Date): void {
    const n = (this.running.get(cluster) ?? 1) - 1;
    if (n > 0) this.running.set(cluster, n);
    else this.running.delete(cluster);
    if (end === "succeeded") this.clusters.delete(cluster);
    if (end !== "unreachable") return;
    const failures = (this.clusters.get(cluster)?.failures ?? 0) + 1;
    this.clusters.set(cluster, { failures, until: now.getTime() + this.backoffMs(failures) });
  }

  /** The wait after `failures` consecutive unreachable runs. */
  backoffMs(failures: number): number {
    return Math.min(this.settings.capMs, this.settings.baseMs * 2 ** Math.max(0, failures - 1));
  }

  /**
   * The clusters now waiting out a backoff, read-only for the status page: consecutive unreachable runs and
   * until when new backups wait.
   */
  backoffs(now: Date): ClusterBackoff[] {
    return [...this.clusters]
      .filter(([, s]) => s.until > now.getTime())
      .map(([cluster, s]) => ({ cluster, failures: s.failures, until: new Date(s.until) }));
  }

  /** Clusters now waiting out a backoff, for logs and tests. */
  backingOff(now: Date): string[] {
    return [...this.clusters].filter(([, s]) => s.until > now.getTime()).map(([c]) => c);
  }
}
