import type { BackupState } from "./catalog.ts";

/** The calendar rules: keep the newest backup of each of the N most recent hours, days, ISO weeks, months, years. */
export const CALENDAR_RULES = ["hourly", "daily", "weekly", "monthly", "yearly"] as const;
export type CalendarRule = (typeof CALENDAR_RULES)[number];

/**
 * Which backups to keep. Every count is at least 1 when given; an absent rule keeps nothing by itself. Whatever
 * the policy, the newest usable backup of each cluster is kept.
 */
export interface RetentionPolicy {
  /** The N newest backups. */
  last?: number;
  hourly?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
  yearly?: number;
  /**
   * Every backup taken within this many milliseconds before the cluster's newest backup, or before `now` when
   * that is earlier (so a stopped schedule never ages every backup out, and a clock-skewed future name does not
   * stretch the window).
   */
  withinMs?: number;
}

/** Why a backup is kept. `period` names the calendar bucket (`2026-11-23`, `2026-W48`...) for calendar rules. */
export interface KeepReason {
  /**
   * `locked`: no rule keeps it but the store will not let it go yet (object lock, legal hold); `rekey`: a rekey of
   * it may be running (its journal or copy is younger than the grace period); see prune.ts.
   */
  rule: "newest" | "last" | CalendarRule | "within" | "not-usable" | "locked" | "rekey";
  period?: string;
  /** For `locked`: what holds it, `object lock compliance until 2027-01-03`, `legal hold`; for `rekey`: what was seen. */
  hold?: string;
}

/** What retention needs to know of a backup. */
export interface RetentionCandidate {
  key: string;
  cluster: string;
  kind: "snapshot" | "config";
  time: Date;
  state: BackupState;
}

export interface RetentionDecision<T extends RetentionCandidate> {
  entry: T;
  /** `keep` exactly when `reasons` is not empty. */
  action: "keep" | "delete";
  reasons: KeepReason[];
}

/** True when the policy has at least one rule of its own (the newest-is-kept guarantee does not count). */
export function hasKeepRule(policy: RetentionPolicy): boolean {
  return (
    policy.last !== undefined ||
    policy.withinMs !== undefined ||
    CALENDAR_RULES.some((rule) => policy[rule] !== undefined)
  );
}

/**
 * Plans retention; a pure function of its arguments. Returns one decision per given backup, in the given order.
 *
 * Backups are grouped per cluster and kind (snapshot, config); within a group only usable backups (`complete`,
 * `unmanaged`) take part, newest first (ties broken as `listBackups` does: complete first, then by name):
 * - the newest is always kept (`newest`);
 * - `last`: the N newest;
 * - each calendar rule: walking from the newest, the newest backup of each UTC hour / day / ISO week / month / year,
 *   for the N most recent of those periods that have a backup;
 * - `within`: see `RetentionPolicy.withinMs`.
 * A backup is deleted only when no rule keeps it. Backups that are not usable (`invalid`, `incomplete`) are never
 * deleted here: they are kept with the reason `not-usable` (prune cleans up incomplete leftovers separately).
 * Applying the plan and planning again with the same policy and `now` deletes nothing more.
 */
export function planRetention<T extends RetentionCandidate>(
  backups: readonly T[],
  policy: RetentionPolicy,
  now: Date,
): RetentionDecision<T>[] {
  const reasons = new Map<T, KeepReason[]>();
  const groups = new Map<string, T[]>();
  for (const b of backups) {
    if (b.state !== "complete" && b.state !== "unmanaged") {
      reasons.set(b, [{ rule: "not-usable" }]);
      continue;
    }
    reasons.set(b, []);
    const group = `${b.kind}\u0000${b.cluster}`;
    groups.set(group, [...(groups.get(group) ?? []), b]);
  }
  for (const members of groups.values()) {
    const sorted = [...members].sort(newestUsableFirst);
    const keep = (b: T, reason: KeepReason) => reasons.get(b)!.push(reason);
    keep(sorted[0]!, { rule: "newest" });
    if (policy.last !== undefined) for (const b of sorted.slice(0, policy.last)) keep(b, { rule: "last" });
    for (const rule of CALENDAR_RULES) {
      const n = policy[rule];
      if (n === undefined) continue;
      let count = 0;
      let previous: string | undefined;
      for (const b of sorted) {
        if (count >= n) break;
        const period = periodOf(rule, b.time);
        if (period === previous) continue;
        previous = period;
        count++;
        keep(b, { rule, period });
      }
    }
    if (policy.withinMs !== undefined) {
      const anchor = Math.min(now.getTime(), sorted[0]!.time.getTime());
      for (const b of sorted) if (b.time.getTime() >= anchor - policy.withinMs) keep(b, { rule: "within" });
    }
  }
  return backups.map((entry) => {
    const why = reasons.get(entry)!;
    return { entry, action: why.length > 0 ? "keep" : "delete", reasons: why };
  });
}

const STATE_RANK: Partial<Record<BackupState, number>> = { complete: 0, unmanaged: 1 };

function newestUsableFirst(a: RetentionCandidate, b: RetentionCandidate): number {
  return (
    b.time.getTime() - a.time.getTime() ||
    (STATE_RANK[a.state] ?? 2) - (STATE_RANK[b.state] ?? 2) ||
    (a.key < b.key ? 1 : a.key > b.key ? -1 : 0)
  );
}

/**
 * The UTC calendar period a time falls in, as text that sorts in time order within one rule: `2026-11-23T20`
 * (hourly), `2026-11-23` (daily), `2026-W48` (weekly: ISO 8601 week-numbering year and week, weeks start on Monday
 * and week 1 holds the year's first Thursday), `2026-11` (monthly), `2026` (yearly).
 */
export function periodOf(rule: CalendarRule, time: Date): string {
  const iso = time.toISOString();
  switch (rule) {
    case "hourly":
      return iso.slice(0, 13);
    case "daily":
      return iso.slice(0, 10);
    case "monthly":
      return iso.slice(0, 7);
    case "yearly":
      return iso.slice(0, 4);
    case "weekly": {
      // The Thursday of the time's ISO week decides the week-numbering year.
      const day = new Date(Date.UTC(time.getUTCFullYear(), time.getUTCMonth(), time.getUTCDate()));
      const weekday = day.getUTCDay() || 7;
      day.setUTCDate(day.getUTCDate() + 4 - weekday);
      const year = day.getUTCFullYear();
      const firstOfYear = Date.UTC(year, 0, 1);
      const week = Math.floor((day.getTime() - firstOfYear) / 86_400_000 / 7) + 1;
      return `${String(year).padStart(4, "0")}-W${String(week).padStart(2, "0")}`;
    }
  }
}
