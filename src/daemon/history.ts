import type { FailureReason } from "../observability/failure.ts";

/** One attempt as the status page and the logs show it. Holds no secret: `error` is redacted before it is stored. */
export interface RunRecord {
  runId: string;
  /** 1 for the scheduled attempt, 2.. for its retries. */
  attempt: number;
  scheduledAt: Date;
  startedAt: Date;
  finishedAt: Date;
  durationSeconds: number;
  result: "success" | "failure";
  reason?: FailureReason;
  /** One line: what failed and why. */
  error?: string;
  /** The backup's name in the store. */
  key?: string;
  storedBytes?: number;
  dbBytes?: number;
  revision?: number;
  /** Backups deleted by retention in this attempt. */
  pruned?: number;
  /** What the structural check found: `ok`, `skipped`, or `manifest only` (encrypted, no identity). */
  verify?: string;
  /** `passed` or `failed` when this attempt test-restored its backup. */
  testRestore?: string;
}

/** The most recent attempts, newest last, at most `limit` of them. */
export class RunHistory {
  private readonly records: RunRecord[] = [];
  private readonly limit: number;

  constructor(limit = 200) {
    this.limit = limit;
  }

  add(record: RunRecord): void {
    this.records.push(record);
    if (this.records.length > this.limit) this.records.splice(0, this.records.length - this.limit);
  }

  /** Oldest first. */
  all(): readonly RunRecord[] {
    return this.records;
  }

  lastSuccess(): RunRecord | undefined {
    return this.records.findLast((r) => r.result === "success");
  }
}
