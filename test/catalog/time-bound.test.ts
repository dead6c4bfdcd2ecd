import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { filterBackups } from "../../src/catalog/filter.ts";
import { parseBackupKey } from "../../src/catalog/names.ts";
import { parseTimeBound } from "../../src/catalog/time-bound.ts";
import { parseSpan } from "../../src/duration.ts";

const now = new Date("2026-03-01T12:00:00Z");

describe("parseSpan", () => {
  const cases: [string, number | null][] = [
    ["7d", 7 * 86_400_000],
    ["36h", 36 * 3_600_000],
    ["90m", 90 * 60_000],
    ["2w", 14 * 86_400_000],
    ["1d12h", 36 * 3_600_000],
    ["30s", 30_000],
    ["0s", 0],
    ["7", null], // seconds or days? refused
    ["", null],
    ["7 d", null],
    ["-1d", null],
    ["1.5d", null],
    ["1y", null],
    ["d", null],
  ];
  for (const [text, ms] of cases) test(JSON.stringify(text), () => assert.equal(parseSpan(text), ms));
});

describe("parseTimeBound", () => {
  const cases: [string, string | null][] = [
    ["2026-02-20T10:00:00Z", "2026-02-20T10:00:00.000Z"],
    ["2026-02-20T10:00:00+02:00", "2026-02-20T08:00:00.000Z"],
    ["2026-02-20T10:00:00-05:30", "2026-02-20T15:30:00.000Z"],
    ["2026-02-20", "2026-02-20T00:00:00.000Z"], // a date is its UTC midnight
    ["7d", "2026-02-22T12:00:00.000Z"], // seven days before now, across February's end
    ["36h", "2026-02-28T00:00:00.000Z"],
    ["2026-02-20T10:00:00", null], // no zone: local time would be a guess
    ["2026-02-30", null],
    ["yesterday", null],
    ["1740000000", null],
  ];
  for (const [text, iso] of cases) {
    test(JSON.stringify(text), () => assert.equal(parseTimeBound(text, now)?.toISOString() ?? null, iso));
  }
});

test("filterBackups: cluster and inclusive bounds, compared as instants", () => {
  const entries = [
    "a-2026-03-01T01:00:00+02:00.snap", // 2026-02-28T23:00Z
    "a-2026-02-28T23:30:00Z.snap",
    "b-2026-02-28T23:00:00Z.snap",
    "a-2026-02-28T22:59:59Z.snap",
  ].map((k) => parseBackupKey(k)!);
  const since = parseTimeBound("2026-02-28T23:00:00Z", now)!;
  assert.deepEqual(
    filterBackups(entries, { cluster: "a", since }).map((e) => e.key),
    ["a-2026-03-01T01:00:00+02:00.snap", "a-2026-02-28T23:30:00Z.snap"],
  );
  const until = parseTimeBound("2026-03-01T01:00:00+02:00", now)!;
  assert.deepEqual(
    filterBackups(entries, { until }).map((e) => e.key),
    ["a-2026-03-01T01:00:00+02:00.snap", "b-2026-02-28T23:00:00Z.snap", "a-2026-02-28T22:59:59Z.snap"],
  );
  assert.equal(filterBackups(entries, {}).length, 4);
});
