import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { describe, test } from "node:test";
import type { BackupState } from "../../src/catalog/catalog.ts";
import { parseBackupKey } from "../../src/catalog/names.ts";
import {
  type CalendarRule,
  hasKeepRule,
  periodOf,
  planRetention,
  type RetentionCandidate,
  type RetentionPolicy,
} from "../../src/catalog/retention.ts";

function backup(iso: string, cluster = "c", state: BackupState = "complete"): RetentionCandidate {
  return { key: `${cluster}-${iso}.snap`, cluster, kind: "snapshot", time: new Date(iso), state };
}

/** Plans and returns the kept entries' times (ISO) and the reasons, newest first as given. */
function kept(backups: RetentionCandidate[], policy: RetentionPolicy, now = "2030-01-01T00:00:00Z") {
  const plan = planRetention(backups, policy, new Date(now));
  for (const d of plan) assert.equal(d.action === "keep", d.reasons.length > 0, "keep exactly when a reason");
  return plan
    .filter((d) => d.action === "keep")
    .map(
      (d) => `${d.entry.time.toISOString().replace(".000Z", "Z")} ${d.reasons.map((r) => r.rule).join("+")}`,
    );
}

describe("periodOf", () => {
  const cases: [CalendarRule, string, string][] = [
    ["hourly", "2026-03-29T00:59:59Z", "2026-03-29T00"],
    ["hourly", "2026-03-29T01:00:00Z", "2026-03-29T01"],
    ["daily", "2024-02-29T23:59:59Z", "2024-02-29"],
    ["daily", "2024-03-01T00:00:00Z", "2024-03-01"],
    ["monthly", "2025-12-31T23:59:59Z", "2025-12"],
    ["monthly", "2026-01-01T00:00:00Z", "2026-01"],
    ["yearly", "2025-12-31T23:59:59Z", "2025"],
    ["weekly", "2020-12-31T12:00:00Z", "2020-W53"], // Thursday
    ["weekly", "2021-01-03T23:59:59Z", "2020-W53"], // Sunday: still week 53 of 2020
    ["weekly", "2021-01-04T00:00:00Z", "2021-W01"], // Monday
    ["weekly", "2026-12-31T00:00:00Z", "2026-W53"], // 2026 begins on a Thursday: 53 weeks
    ["weekly", "2027-01-03T00:00:00Z", "2026-W53"],
    ["weekly", "2008-12-29T00:00:00Z", "2009-W01"], // Monday of the week holding 2009's first Thursday
    ["weekly", "2010-01-03T00:00:00Z", "2009-W53"],
    ["weekly", "2024-02-29T00:00:00Z", "2024-W09"],
  ];
  for (const [rule, iso, period] of cases) {
    test(`${rule} ${iso} -> ${period}`, () => assert.equal(periodOf(rule, new Date(iso)), period));
  }

  test("ISO weeks agree with GNU date on 2000 seeded random instants", () => {
    let seed = 12345;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const times = Array.from(
      { length: 2000 },
      () => new Date(Date.UTC(1995, 0, 1) + Math.floor(random() * 45 * 365.25 * 86_400_000)),
    );
    const expected = execFileSync("date", ["-u", "-f", "-", "+%G-W%V"], {
      input: times.map((t) => t.toISOString()).join("\n"),
    })
      .toString()
      .trim()
      .split("\n");
    assert.deepEqual(
      times.map((t) => periodOf("weekly", t)),
      expected,
    );
  });

  test("periods are UTC whatever the process time zone (no DST)", () => {
    const saved = process.env.TZ;
    const times = [
      "2026-03-29T00:30:00Z",
      "2026-03-29T01:30:00Z",
      "2026-10-25T00:30:00Z",
      "2026-10-25T01:30:00Z",
    ];
    const rules = ["hourly", "daily", "weekly", "monthly", "yearly"] as const;
    const inUtc = times.map((t) => rules.map((r) => periodOf(r, new Date(t))));
    try {
      for (const zone of ["Europe/Berlin", "America/Santiago", "Pacific/Kiritimati", "America/St_Johns"]) {
        process.env.TZ = zone;
        assert.deepEqual(
          times.map((t) => rules.map((r) => periodOf(r, new Date(t)))),
          inUtc,
          zone,
        );
      }
    } finally {
      if (saved === undefined) delete process.env.TZ;
      else process.env.TZ = saved;
    }
  });
});

describe("planRetention", () => {
  test("keep-last keeps the N newest, whatever the input order", () => {
    const times = [
      "2026-01-05T00:00:00Z",
      "2026-01-01T00:00:00Z",
      "2026-01-03T00:00:00Z",
      "2026-01-04T00:00:00Z",
    ];
    assert.deepEqual(
      kept(
        times.map((t) => backup(t)),
        { last: 2 },
      ),
      ["2026-01-05T00:00:00Z newest+last", "2026-01-04T00:00:00Z last"],
    );
  });

  test("keep-daily across a month end keeps each day's newest", () => {
    const times = [
      "2026-02-01T05:00:00Z",
      "2026-02-01T00:00:00Z",
      "2026-01-31T22:00:00Z",
      "2026-01-31T01:00:00Z",
      "2026-01-30T23:59:59Z",
      "2026-01-30T10:00:00Z",
      "2026-01-29T10:00:00Z",
    ];
    assert.deepEqual(
      kept(
        times.map((t) => backup(t)),
        { daily: 3 },
      ),
      ["2026-02-01T05:00:00Z newest+daily", "2026-01-31T22:00:00Z daily", "2026-01-30T23:59:59Z daily"],
    );
  });

  test("keep-daily over a leap day", () => {
    const times = [
      "2024-03-01T00:00:00Z",
      "2024-02-29T23:00:00Z",
      "2024-02-29T01:00:00Z",
      "2024-02-28T12:00:00Z",
    ];
    assert.deepEqual(
      kept(
        times.map((t) => backup(t)),
        { daily: 3 },
      ),
      ["2024-03-01T00:00:00Z newest+daily", "2024-02-29T23:00:00Z daily", "2024-02-28T12:00:00Z daily"],
    );
  });

  test("keep-monthly and keep-yearly across a year end, one second apart", () => {
    const times = [
      "2026-01-20T00:00:00Z",
      "2026-01-01T00:00:00Z",
      "2025-12-31T23:59:59Z",
      "2025-12-01T00:00:00Z",
      "2025-11-15T00:00:00Z",
      "2024-06-01T00:00:00Z",
    ];
    const all = times.map((t) => backup(t));
    assert.deepEqual(kept(all, { monthly: 3 }), [
      "2026-01-20T00:00:00Z newest+monthly",
      "2025-12-31T23:59:59Z monthly",
      "2025-11-15T00:00:00Z monthly",
    ]);
    assert.deepEqual(kept(all, { yearly: 5 }), [
      "2026-01-20T00:00:00Z newest+yearly",
      "2025-12-31T23:59:59Z yearly",
      "2024-06-01T00:00:00Z yearly",
    ]);
  });

  test("keep-weekly with ISO week 53 (2020) and the year boundary inside it", () => {
    const times = [
      "2021-01-04T00:00:00Z",
      "2021-01-03T23:00:00Z",
      "2020-12-31T12:00:00Z",
      "2020-12-27T12:00:00Z",
    ];
    const plan = planRetention(
      times.map((t) => backup(t)),
      { weekly: 3 },
      new Date("2021-02-01T00:00:00Z"),
    );
    assert.deepEqual(
      plan.map((d) => [d.action, d.reasons.map((r) => r.period ?? r.rule).join("+")]),
      [
        ["keep", "newest+2021-W01"],
        ["keep", "2020-W53"],
        ["delete", ""],
        ["keep", "2020-W52"],
      ],
    );
  });

  test("keep-hourly: 10:59:59 and 11:00:00 are different hours, empty hours are skipped", () => {
    const times = [
      "2026-03-29T11:00:00Z",
      "2026-03-29T10:59:59Z",
      "2026-03-29T10:00:00Z",
      "2026-03-29T07:00:00Z",
    ];
    assert.deepEqual(
      kept(
        times.map((t) => backup(t)),
        { hourly: 3 },
      ),
      ["2026-03-29T11:00:00Z newest+hourly", "2026-03-29T10:59:59Z hourly", "2026-03-29T07:00:00Z hourly"],
    );
  });

  test("keep-within counts back from the newest backup, or from now when that is earlier", () => {
    const times = [
      "2026-01-10T00:00:00Z",
      "2026-01-09T00:00:00Z",
      "2026-01-08T12:00:00Z",
      "2026-01-08T11:59:59Z",
    ];
    const all = times.map((t) => backup(t));
    // Backups stopped two weeks ago: a window measured from now would keep only the newest.
    assert.deepEqual(kept(all, { withinMs: 36 * 3_600_000 }, "2026-01-24T00:00:00Z"), [
      "2026-01-10T00:00:00Z newest+within",
      "2026-01-09T00:00:00Z within",
      "2026-01-08T12:00:00Z within",
    ]);
    // The newest name is in the future (a skewed clock): the window starts from now.
    assert.deepEqual(kept(all, { withinMs: 24 * 3_600_000 }, "2026-01-09T12:00:00Z"), [
      "2026-01-10T00:00:00Z newest+within",
      "2026-01-09T00:00:00Z within",
      "2026-01-08T12:00:00Z within",
    ]);
  });

  test("rules combine; a backup lists every rule that keeps it", () => {
    const times = [
      "2026-01-03T12:00:00Z",
      "2026-01-03T06:00:00Z",
      "2026-01-02T12:00:00Z",
      "2026-01-01T12:00:00Z",
    ];
    assert.deepEqual(
      kept(
        times.map((t) => backup(t)),
        { last: 2, daily: 2, monthly: 1 },
      ),
      [
        "2026-01-03T12:00:00Z newest+last+daily+monthly",
        "2026-01-03T06:00:00Z last",
        "2026-01-02T12:00:00Z daily",
      ],
    );
  });

  test("applied per cluster: each cluster keeps its own newest and its own N", () => {
    const all = [
      backup("2026-01-05T00:00:00Z", "a"),
      backup("2026-01-04T00:00:00Z", "a"),
      backup("2026-01-03T00:00:00Z", "a"),
      backup("2025-06-01T00:00:00Z", "b"),
      backup("2025-05-01T00:00:00Z", "b"),
    ];
    const plan = planRetention(all, { last: 2 }, new Date("2026-02-01T00:00:00Z"));
    assert.deepEqual(
      plan.map((d) => d.action),
      ["keep", "keep", "delete", "keep", "keep"],
    );
  });

  test("snapshots and config backups of a cluster are separate groups", () => {
    const config: RetentionCandidate = {
      ...backup("2026-01-06T00:00:00Z"),
      key: "c.config.tar",
      kind: "config",
    };
    const plan = planRetention(
      [config, backup("2026-01-05T00:00:00Z"), backup("2026-01-04T00:00:00Z")],
      { last: 1 },
      new Date(),
    );
    assert.deepEqual(
      plan.map((d) => d.action),
      ["keep", "keep", "delete"],
    );
  });

  test("with no rule only the newest of each cluster is kept", () => {
    assert.equal(hasKeepRule({}), false);
    assert.equal(hasKeepRule({ yearly: 1 }), true);
    const plan = planRetention(
      [
        backup("2026-01-02T00:00:00Z", "a"),
        backup("2026-01-01T00:00:00Z", "a"),
        backup("2020-01-01T00:00:00Z", "b"),
      ],
      {},
      new Date(),
    );
    assert.deepEqual(
      plan.map((d) => `${d.action} ${d.reasons.map((r) => r.rule).join()}`),
      ["keep newest", "delete ", "keep newest"],
    );
  });

  test("invalid and incomplete entries are never deleted and do not count for rules", () => {
    const all = [
      backup("2026-01-05T00:00:00Z", "c", "invalid"),
      backup("2026-01-04T00:00:00Z", "c", "incomplete"),
      backup("2026-01-03T00:00:00Z", "c", "unmanaged"),
      backup("2026-01-02T00:00:00Z", "c", "complete"),
      backup("2026-01-01T00:00:00Z", "c", "complete"),
      backup("2019-01-01T00:00:00Z", "c", "invalid"),
    ];
    const plan = planRetention(all, { last: 2 }, new Date("2026-02-01T00:00:00Z"));
    assert.deepEqual(
      plan.map((d) => `${d.action} ${d.reasons.map((r) => r.rule).join("+")}`),
      ["keep not-usable", "keep not-usable", "keep newest+last", "keep last", "delete ", "keep not-usable"],
    );
  });

  test("at equal times a backup with manifest is the one kept", () => {
    const t = "2026-01-05T00:00:00Z";
    const unmanaged = { ...backup(t, "c", "unmanaged"), key: "c-x.snap.zst" };
    const complete = { ...backup(t, "c", "complete"), key: "c-a.snap" };
    const plan = planRetention([unmanaged, complete], { last: 1 }, new Date(t));
    assert.deepEqual(
      plan.map((d) => d.action),
      ["delete", "keep"],
    );
  });

  test("talos-backup names with offsets are ordered by instant", () => {
    const keys = [
      "c-2026-01-01T01:00:00+02:00.snap.age", // 2025-12-31T23:00Z
      "c-2025-12-31T23:30:00Z.snap.age",
      "c-2025-12-31T17:59:00-05:00.snap.zst.age", // 2025-12-31T22:59Z
    ];
    const entries = keys.map((k) => ({ ...parseBackupKey(k)!, state: "unmanaged" as const }));
    const plan = planRetention(entries, { last: 1, yearly: 2 }, new Date("2026-01-02T00:00:00Z"));
    assert.deepEqual(
      plan.map((d) => `${d.action} ${d.reasons.map((r) => r.period ?? r.rule).join("+")}`),
      ["delete ", "keep newest+last+2025", "delete "],
    );
  });
});
