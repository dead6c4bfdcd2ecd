import type { Redactor } from "../../observability/redact.ts";
import type { BackupPhase, Condition } from "../api.ts";
import type { ClusterBackoff } from "../fleet/cluster-gate.ts";

/**
 * What the operator's status page shows, grouped by cluster. The controllers' informer caches are its only
 * source (a page view never calls the API server): each kind the operator serves attaches a feed that turns its
 * cached objects into rows (feeds.ts, talos-etcd-backup-compat/status-feed.ts), and the cluster gate says which
 * clusters are backing off. Every string is redacted before it leaves the board.
 */

/** A schedule as the page shows it. Times are RFC 3339. */
export interface ScheduleRow {
  kind: string;
  namespace: string;
  name: string;
  cluster: string;
  schedule: string;
  timeZone?: string;
  suspended: boolean;
  lastScheduleTime?: string;
  lastSuccessTime?: string;
  nextRunTime?: string;
  /** The retention policy in one line (`keepLast 5, keepDaily 7`); absent: keeps everything. */
  retention?: string;
  /** With `spec.continuous`: the revision log's recoverable window in one line. */
  pointInTime?: string;
}

/** One backup: where it is stored (bucket and key, never a credential), or why it failed. */
export interface BackupRow {
  kind: string;
  namespace: string;
  name: string;
  cluster: string;
  /** The schedule that created it, if any. */
  schedule?: string;
  phase: BackupPhase;
  /** Completion, else start, else creation time. */
  time?: string;
  dbSize?: number;
  storedSize?: number;
  revision?: number;
  /** The store's root (`s3://bucket`) and the object's key under it. */
  location?: string;
  key?: string;
  /** The Failed condition while it is True: its reason and the first line of its message. */
  failure?: { reason: string; message: string };
  nextRetryTime?: string;
}

export interface StatusFeed {
  schedules(): Iterable<ScheduleRow>;
  backups(): Iterable<BackupRow>;
}

/** A feed over two informer caches: each object turned into its row when the page is built. */
export function cacheFeed<S, B>(
  caches: { schedules: () => Iterable<S>; backups: () => Iterable<B> },
  rows: { schedule: (s: S) => ScheduleRow; backup: (b: B) => BackupRow },
): StatusFeed {
  return {
    *schedules() {
      for (const s of caches.schedules()) yield rows.schedule(s);
    },
    *backups() {
      for (const b of caches.backups()) yield rows.backup(b);
    },
  };
}

export interface ClusterStatus {
  name: string;
  /** Set while new backups of the cluster wait out a backoff (its source could not be reached). */
  backingOff?: { failures: number; until: string };
  /** Backups in the caches by phase. */
  counts: Record<BackupPhase, number>;
  schedules: ScheduleRow[];
  /** The newest backups, newest first. */
  latestBackups: BackupRow[];
  /** The newest backups whose Failed condition is True, newest first. */
  failures: BackupRow[];
}

export interface OperatorStatus {
  generatedAt: string;
  /** `standby`: this replica does not lead, so it has no caches (the leader's page has them). */
  role: "leader" | "standby";
  clusters: ClusterStatus[];
}

/** Backups listed per cluster, and failures. */
export const LATEST_BACKUPS = 10;
export const LATEST_FAILURES = 5;
/** A failure message on the page is one line, at most this long. */
const MESSAGE_MAX = 300;

export class OperatorStatusBoard {
  private readonly feeds = new Set<StatusFeed>();
  private gate: { backoffs(now: Date): ClusterBackoff[] } | undefined;
  private readonly redactor: Pick<Redactor, "redact"> | undefined;

  constructor(redactor?: Pick<Redactor, "redact">) {
    this.redactor = redactor;
  }

  /** Adds a kind's rows to the page until the returned function is called (when the controllers stop). */
  attach(feed: StatusFeed): () => void {
    this.feeds.add(feed);
    return () => this.feeds.delete(feed);
  }

  /** The cluster gate, read-only: which clusters are backing off. */
  attachGate(gate: { backoffs(now: Date): ClusterBackoff[] }): () => void {
    this.gate = gate;
    return () => {
      if (this.gate === gate) this.gate = undefined;
    };
  }

  status(now = new Date()): OperatorStatus {
    const clusters = new Map<string, ClusterStatus>();
    const cluster = (name: string) => {
      let c = clusters.get(name);
      if (!c) {
        c = {
          name,
          counts: { Pending: 0, Running: 0, Succeeded: 0, Failed: 0 },
          schedules: [],
          latestBackups: [],
          failures: [],
        };
        clusters.set(name, c);
      }
      return c;
    };
    for (const feed of this.feeds) {
      for (const s of feed.schedules()) cluster(s.cluster).schedules.push(s);
      for (const row of feed.backups()) {
        const b = row.failure ? { ...row, failure: oneLine(row.failure) } : row;
        const c = cluster(b.cluster);
        c.counts[b.phase] = (c.counts[b.phase] ?? 0) + 1;
        c.latestBackups.push(b);
        if (b.failure) c.failures.push(b);
      }
    }
    for (const b of this.gate?.backoffs(now) ?? []) {
      cluster(b.cluster).backingOff = { failures: b.failures, until: b.until.toISOString() };
    }
    const newestFirst = (a: BackupRow, b: BackupRow) =>
      (b.time ?? "").localeCompare(a.time ?? "") || a.name.localeCompare(b.name);
    const byName = (a: ScheduleRow, b: ScheduleRow) =>
      `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`);
    for (const c of clusters.values()) {
      c.schedules.sort(byName);
      c.latestBackups = c.latestBackups.sort(newestFirst).slice(0, LATEST_BACKUPS);
      c.failures = c.failures.sort(newestFirst).slice(0, LATEST_FAILURES);
    }
    const status: OperatorStatus = {
      generatedAt: now.toISOString(),
      role: this.feeds.size > 0 ? "leader" : "standby",
      clusters: [...clusters.values()].sort((a, b) => a.name.localeCompare(b.name)),
    };
    return this.redactor ? redactStrings(status, this.redactor) : status;
  }
}

/** The Failed condition when True: reason and message (one line). */
export function failureOf(conditions: readonly Condition[] | undefined): BackupRow["failure"] {
  const c = conditions?.find((x) => x.type === "Failed" && x.status === "True");
  return c ? { reason: c.reason, message: c.message } : undefined;
}

function oneLine(f: { reason: string; message: string }): { reason: string; message: string } {
  const line = f.message.split("\n")[0] ?? "";
  return {
    reason: f.reason,
    message: line.length > MESSAGE_MAX ? `${line.slice(0, MESSAGE_MAX - 1)}…` : line,
  };
}

/** Every string of `value`, redacted (keys too: they are fixed field names, so they pass unchanged). */
function redactStrings<T>(value: T, redactor: Pick<Redactor, "redact">): T {
  if (typeof value === "string") return redactor.redact(value) as T;
  if (Array.isArray(value)) return value.map((v) => redactStrings(v, redactor)) as T;
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactStrings(v, redactor)])) as T;
  }
  return value;
}
