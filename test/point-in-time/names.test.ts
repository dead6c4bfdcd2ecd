import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseBackupKey } from "../../src/catalog/names.ts";
import { parseRecoveryPoint } from "../../src/cli/point-in-time-restore.ts";
import { chainKey, gapKey, headKey, parseLogKey, segmentKey } from "../../src/point-in-time/names.ts";

describe("log object names", () => {
  test("every name parses back, sorts in revision order, and is never taken for a backup", () => {
    const seg = segmentKey("prod", 100, 101, 250, true, "etcd");
    assert.equal(seg, "etcd/prod-log/0000000000000100/0000000000000101-0000000000000250.seg.zst.age");
    assert.deepEqual(parseLogKey(seg), {
      kind: "segment",
      dir: "etcd",
      cluster: "prod",
      base: 100,
      first: 101,
      last: 250,
      encrypted: true,
      object: seg,
    });
    assert.equal(parseLogKey(`${seg}.json`)?.kind, "segment-manifest");
    assert.equal((parseLogKey(`${seg}.json`) as { object: string }).object, seg);
    assert.deepEqual(parseLogKey(chainKey("prod", 100)), {
      kind: "chain",
      dir: "",
      cluster: "prod",
      base: 100,
    });
    assert.equal(parseLogKey(headKey("a.b-c", 1))?.kind, "head");
    assert.deepEqual(parseLogKey(gapKey("prod", 5, 9)), {
      kind: "gap",
      dir: "",
      cluster: "prod",
      from: 5,
      to: 9,
    });
    for (const k of [seg, `${seg}.json`, chainKey("prod", 100), gapKey("prod", 5, 9)])
      assert.equal(parseBackupKey(k), null);
    for (const k of ["prod-2026-11-30T10:00:00Z.snap.zst.age", "prod-log/12/1-2.seg.zst", "prod-log/x"]) {
      assert.equal(parseLogKey(k), null, k);
    }
    const names = [
      segmentKey("c", 1, 900, 999, false),
      segmentKey("c", 1, 1000, 1001, false),
      segmentKey("c", 1, 2, 899, false),
    ];
    assert.deepEqual([...names].sort(), [names[2], names[0], names[1]]);
  });
});

describe("--at and --revision", () => {
  const now = new Date("2026-11-30T12:00:00Z");
  test("times are RFC 3339, a time of day in UTC, or a span ago; revisions whole numbers", () => {
    assert.deepEqual(parseRecoveryPoint({ at: "2026-11-30T10:13:59+01:00" }, now), {
      time: new Date("2026-11-30T09:13:59Z"),
    });
    assert.deepEqual(parseRecoveryPoint({ at: "10:13:59" }, now), { time: new Date("2026-11-30T10:13:59Z") });
    assert.deepEqual(parseRecoveryPoint({ at: "10:13" }, now), { time: new Date("2026-11-30T10:13:00Z") });
    assert.deepEqual(parseRecoveryPoint({ at: "15m" }, now), { time: new Date("2026-11-30T11:45:00Z") });
    assert.deepEqual(parseRecoveryPoint({ revision: "4711" }, now), { revision: 4711 });
    for (const bad of [
      { at: "25:00:00" },
      { at: "yesterday" },
      { revision: "-1" },
      { revision: "1e3" },
      { revision: "0" },
    ]) {
      assert.throws(() => parseRecoveryPoint(bad, now), { name: "UsageError" }, JSON.stringify(bad));
    }
    assert.throws(() => parseRecoveryPoint({ at: "10:00", revision: "5" }, now), /exclude each other/);
  });
});
