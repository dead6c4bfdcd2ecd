/**
 * The revision log's Prometheus metrics and the facts its status page shows. Label values come from closed
 * sets only; nothing here holds a key, a value or a secret.
 */
import { Counter, Gauge, Registry } from "prom-client";

export interface LogMetrics {
  registry: Registry;
  /** Called by the logger as it works. */
  received(revision: number): void;
  closed(state: { base: number; revision: number; coveredUntilMs: number; chainStart: string }): void;
  segmentWritten(events: number): void;
  segmentFailed(): void;
  gap(): void;
  /** What the status page shows: the chain and how far the closed log reaches. */
  snapshot(): { base: number; revision: number; coveredUntilMs: number; chainStart: string } | null;
}

/** Creates the metrics in a new registry; every series exists from the start. `now` is for tests. */
export function createLogMetrics(now: () => number = Date.now): LogMetrics {
  const registry = new Registry();
  const registers = [registry];
  let state: { base: number; revision: number; coveredUntilMs: number; chainStart: string } | null = null;
  const revision = new Gauge({
    name: "etcd_backup_log_revision",
    help: "Last etcd revision in a closed log segment (restorable)",
    registers,
  });
  const received = new Gauge({
    name: "etcd_backup_log_received_revision",
    help: "Last etcd revision the log received (closed or not)",
    registers,
  });
  new Gauge({
    name: "etcd_backup_log_lag_seconds",
    help: "Seconds between now and the newest moment the closed log covers: what a crash now would lose",
    registers,
    collect() {
      this.set(state ? Math.max(0, (now() - state.coveredUntilMs) / 1000) : 0);
    },
  });
  const segments = new Counter({
    name: "etcd_backup_log_segments_total",
    help: "Log segments by result (written, failed: kept and retried at the next close)",
    labelNames: ["result"],
    registers,
  });
  segments.inc({ result: "written" }, 0);
  segments.inc({ result: "failed" }, 0);
  const events = new Counter({
    name: "etcd_backup_log_events_total",
    help: "Events in written segments",
    registers,
  });
  const gaps = new Counter({
    name: "etcd_backup_log_gaps_total",
    help: "Gaps recorded (etcd compacted past the log, revisions missing): each started a new chain",
    registers,
  });
  return {
    registry,
    received: (r) => received.set(r),
    closed: (s) => {
      state = s;
      revision.set(s.revision);
    },
    segmentWritten: (n) => {
      segments.inc({ result: "written" });
      events.inc(n);
    },
    segmentFailed: () => segments.inc({ result: "failed" }),
    gap: () => gaps.inc(),
    snapshot: () => state,
  };
}
