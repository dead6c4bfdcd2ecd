import assert from "node:assert/strict";
import { test } from "node:test";
import type { BackupState } from "../../src/catalog/catalog.ts";
import {
  CALENDAR_RULES,
  periodOf,
  planRetention,
  type RetentionCandidate,
  type RetentionPolicy,
} from "../../src/catalog/retention.ts";

/** mulberry32: a small seeded generator, so a failing case can be replayed from its seed. */
function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

interface Case {
  backups: RetentionCandidate[];
  policy: RetentionPolicy;
  now: Date;
}

function randomCase(seed: number): Case {
  const random = generator(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[int(0, xs.length - 1)]!;
  const clusters = ["a", "b", "c"].slice(0, int(1, 3));
  const backups: RetentionCandidate[] = [];
  // Gaps from seconds to months, so every calendar rule sees both crowded and empty periods; ties happen.
  const gaps = [0, 1_000, 60_000, 3_600_000, 5 * 3_600_000, 86_400_000, 7 * 86_400_000, 40 * 86_400_000];
  let t = Date.UTC(2019, 0, 1) + int(0, 400) * 86_400_000;
  const count = int(1, 80);
  for (let i = 0; i < count; i++) {
    t += Math.floor(pick(gaps) * (0.5 + random()));
    const state: BackupState = pick([
      "complete",
      "complete",
      "complete",
      "unmanaged",
      "unmanaged",
      "invalid",
      "incomplete",
    ] as const);
    const cluster = pick(clusters);
    backups.push({
      key: `${cluster}-${i}-${new Date(t).toISOString()}.snap`,
      cluster,
      kind: random() < 0.1 ? "config" : "snapshot",
      time: new Date(t),
      state,
    });
  }
  // Shuffled: the planner must not depend on input order.
  for (let i = backups.length - 1; i > 0; i--) {
    const j = int(0, i);
    [backups[i], backups[j]] = [backups[j]!, backups[i]!];
  }
  const policy: RetentionPolicy = {};
  if (random() < 0.4) policy.last = int(1, 10);
  for (const rule of CALENDAR_RULES) if (random() < 0.4) policy[rule] = int(1, 8);
  if (random() < 0.3) policy.withinMs = int(1, 24 * 60) * 3_600_000;
  const now = new Date(t + int(-5, 30) * 86_400_000);
  return { backups, policy, now };
}

const usable = (b: RetentionCandidate) => b.state === "complete" || b.state === "unmanaged";
const RANK: Record<string, number> = { complete: 0, unmanaged: 1 };
/** Newest first, manifest before none at equal times, then name descending: the planner's documented order. */
const order = (a: RetentionCandidate, b: RetentionCandidate) =>
  b.time.getTime() - a.time.getTime() ||
  RANK[a.state]! - RANK[b.state]! ||
  (b.key > a.key ? 1 : b.key < a.key ? -1 : 0);

/** What each rule must keep in one group, computed the obvious way (independently of the planner's walk). */
function expectedByRule(
  group: RetentionCandidate[],
  policy: RetentionPolicy,
  now: Date,
): Map<string, Set<string>> {
  const sorted = [...group].sort(order);
  const out = new Map<string, Set<string>>();
  out.set("newest", new Set([sorted[0]!.key]));
  if (policy.last) out.set("last", new Set(sorted.slice(0, policy.last).map((b) => b.key)));
  for (const rule of CALENDAR_RULES) {
    const n = policy[rule];
    if (!n) continue;
    const newestOfPeriod = new Map<string, RetentionCandidate>();
    for (const b of sorted)
      if (!newestOfPeriod.has(periodOf(rule, b.time))) newestOfPeriod.set(periodOf(rule, b.time), b);
    const periods = [...newestOfPeriod.keys()].sort().reverse().slice(0, n);
    out.set(rule, new Set(periods.map((p) => newestOfPeriod.get(p)!.key)));
  }
  if (policy.withinMs !== undefined) {
    const from = Math.min(now.getTime(), sorted[0]!.time.getTime()) - policy.withinMs;
    out.set("within", new Set(sorted.filter((b) => b.time.getTime() >= from).map((b) => b.key)));
  }
  return out;
}

const CASES = 400;

test(`retention properties hold on ${CASES} seeded random stores and policies`, () => {
  for (let seed = 1; seed <= CASES; seed++) {
    const { backups, policy, now } = randomCase(seed);
    const where = `seed ${seed}, policy ${JSON.stringify(policy)}`;
    const plan = planRetention(backups, policy, now);
    assert.equal(plan.length, backups.length, where);
    for (const [i, d] of plan.entries())
      assert.equal(d.entry, backups[i], `${where}: decisions follow the input order`);

    const groups = new Map<string, RetentionCandidate[]>();
    for (const b of backups.filter(usable)) {
      const g = `${b.kind}/${b.cluster}`;
      groups.set(g, [...(groups.get(g) ?? []), b]);
    }
    const byKey = new Map(plan.map((d) => [d.entry.key, d]));
    for (const d of plan) {
      // Kept exactly when some rule keeps it; unusable entries are never deleted.
      assert.equal(d.action === "keep", d.reasons.length > 0, where);
      if (!usable(d.entry)) assert.deepEqual(d.reasons, [{ rule: "not-usable" }], where);
    }
    for (const [g, group] of groups) {
      const newest = [...group].sort(order)[0]!;
      assert.equal(byKey.get(newest.key)!.action, "keep", `${where}: newest of ${g} kept`);
      const expected = expectedByRule(group, policy, now);
      for (const [rule, keys] of expected) {
        const actual = new Set(
          group.filter((b) => byKey.get(b.key)!.reasons.some((r) => r.rule === rule)).map((b) => b.key),
        );
        assert.deepEqual(actual, keys, `${where}: rule ${rule} in ${g}`);
        const limit =
          rule === "last" ? policy.last : rule in policy ? policy[rule as keyof RetentionPolicy] : undefined;
        if (rule !== "within" && rule !== "newest")
          assert.ok(actual.size <= limit!, `${where}: ${rule} count`);
      }
    }

    // Idempotent: planning again over what was kept deletes nothing more and keeps for the same rules.
    const survivors = plan.filter((d) => d.action === "keep").map((d) => d.entry);
    const again = planRetention(survivors, policy, now);
    for (const d of again) {
      assert.equal(d.action, "keep", `${where}: ${d.entry.key} deleted on the second run`);
      assert.deepEqual(
        d.reasons,
        byKey.get(d.entry.key)!.reasons,
        `${where}: same reasons on the second run`,
      );
    }
    // Deterministic whatever the input order.
    const reversed = planRetention([...backups].reverse(), policy, now);
    for (const d of reversed)
      assert.deepEqual(d.reasons, byKey.get(d.entry.key)!.reasons, `${where}: order-free`);
  }
});
