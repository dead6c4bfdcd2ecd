import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  backupKey,
  formatStamp,
  manifestKey,
  parseBackupKey,
  parseRfc3339,
} from "../../src/catalog/names.ts";

describe("backupKey and parseBackupKey", () => {
  test("round trip for every compression, encryption, kind and folder", () => {
    const time = new Date("2026-11-23T20:12:59Z");
    for (const compression of ["zstd", "none"] as const) {
      for (const encrypted of [true, false]) {
        for (const kind of ["snapshot", "config"] as const) {
          for (const dir of ["", "prod", "a/b/"]) {
            const key = backupKey({ cluster: "prod-eu-1", time, compression, encrypted, kind, dir });
            const parsed = parseBackupKey(key);
            assert.ok(parsed, key);
            assert.equal(parsed.key, key);
            assert.equal(parsed.dir, dir.replace(/\/$/, ""));
            assert.equal(parsed.cluster, "prod-eu-1");
            assert.equal(parsed.time.getTime(), time.getTime());
            assert.equal(parsed.compression, compression);
            assert.equal(parsed.encrypted, encrypted);
            assert.equal(parsed.kind, kind);
          }
        }
      }
    }
  });

  test("our names are talos-backup's: .snap, then .zst, then .age, UTC whole seconds", () => {
    const key = backupKey({
      cluster: "prod",
      time: new Date("2026-11-23T20:12:59.987Z"),
      compression: "zstd",
      encrypted: true,
    });
    assert.equal(key, "prod-2026-11-23T20:12:59Z.snap.zst.age");
    assert.equal(manifestKey(key), "prod-2026-11-23T20:12:59Z.snap.zst.age.json");
  });

  // talos-backup names with Go's time.Now().Format(time.RFC3339): the pod's local zone, so offsets appear.
  const talosBackupNames: [string, string, string, "zstd" | "none", boolean][] = [
    ["prod/prod-2024-03-01T10:00:00Z.snap.age", "prod", "2024-03-01T10:00:00.000Z", "none", true],
    ["prod/prod-2024-03-01T12:00:00+02:00.snap.age", "prod", "2024-03-01T10:00:00.000Z", "none", true],
    ["prod/prod-2024-03-01T03:00:00-07:00.snap.zst.age", "prod", "2024-03-01T10:00:00.000Z", "zstd", true],
    ["kube-2024-03-01T15:30:00+05:30.snap", "kube", "2024-03-01T10:00:00.000Z", "none", false],
    ["kube-2024-03-01T10:00:00Z.snap.zst", "kube", "2024-03-01T10:00:00.000Z", "zstd", false],
    [
      "my-cluster-2-2024-03-01T10:00:00.250Z.snap.age",
      "my-cluster-2",
      "2024-03-01T10:00:00.250Z",
      "none",
      true,
    ],
    ["x-2024-03-01T00:30:00+14:00.snap", "x", "2024-02-29T10:30:00.000Z", "none", false],
  ];
  for (const [key, cluster, iso, compression, encrypted] of talosBackupNames) {
    test(`parses ${key}`, () => {
      const parsed = parseBackupKey(key);
      assert.ok(parsed);
      assert.equal(parsed.cluster, cluster);
      assert.equal(parsed.time.toISOString(), iso);
      assert.equal(parsed.compression, compression);
      assert.equal(parsed.encrypted, encrypted);
      assert.equal(parsed.kind, "snapshot");
    });
  }

  test("offset names compare as times, not as text", () => {
    // As text the first sorts after the second; as times it is half an hour earlier.
    const a = parseBackupKey("prod-2026-01-01T01:00:00+02:00.snap.age")!;
    const b = parseBackupKey("prod-2025-12-31T23:30:00Z.snap.age")!;
    assert.ok(a.key > b.key);
    assert.ok(a.time.getTime() < b.time.getTime());
  });

  for (const key of [
    "prod-2026-11-23T20:12:59Z.snap.age.json", // a manifest
    "prod-2026-11-23T20:12:59Z.snap.age.pending", // a marker
    ".etcd-backup-tmp-prod-2026-11-23T20:12:59Z.snap.a1b2c3d4e5f6", // a temporary file
    "prod-2026-11-23T20:12:59Z.snap.age.zst", // wrong order of extensions
    "prod-2026-11-23T20:12:59Z.db",
    "prod-2026-11-23T20:12:59.snap", // no zone
    "prod-2026-11-23 20:12:59Z.snap",
    "2026-11-23T20:12:59Z.snap", // no cluster
    "-2026-11-23T20:12:59Z.snap",
    "prod-2026-02-30T00:00:00Z.snap", // no such day (Date would roll it to March 2)
    "prod-2026-02-29T00:00:00Z.snap", // not a leap year
    "prod-2026-13-01T00:00:00Z.snap",
    "prod-2026-01-01T24:00:00Z.snap",
    "prod-2026-01-01T23:59:60Z.snap",
    "prod-2026-01-01T10:00:00+24:00.snap",
    "README.md",
  ]) {
    test(`is not a backup: ${key}`, () => {
      assert.equal(parseBackupKey(key), null);
    });
  }
});

describe("parseRfc3339", () => {
  test("leap day and year ends", () => {
    assert.equal(parseRfc3339("2024-02-29T23:59:59Z")?.toISOString(), "2024-02-29T23:59:59.000Z");
    assert.equal(parseRfc3339("2000-02-29T00:00:00Z")?.toISOString(), "2000-02-29T00:00:00.000Z");
    assert.equal(parseRfc3339("1900-02-29T00:00:00Z"), null);
    assert.equal(parseRfc3339("2026-12-31T23:59:59-00:30")?.toISOString(), "2027-01-01T00:29:59.000Z");
  });

  test("fractions are kept to the millisecond", () => {
    assert.equal(parseRfc3339("2026-01-01T00:00:00.123456789Z")?.toISOString(), "2026-01-01T00:00:00.123Z");
  });

  test("formatStamp is parsed back to the same second", () => {
    const t = new Date("2026-06-15T08:09:10Z");
    assert.equal(parseRfc3339(formatStamp(t))?.getTime(), t.getTime());
  });
});
