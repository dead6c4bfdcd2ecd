import assert from "node:assert/strict";
import { test } from "node:test";
import { parseDaemonConfig } from "../../src/config/schema.ts";

const valid = { schedule: "0 */6 * * *", to: "/backups", recipient: "age1x" };

test("daemon --continuous: off by default, its segment settings through the one settings path", () => {
  assert.equal(parseDaemonConfig(valid).continuous, null);
  assert.deepEqual(parseDaemonConfig({ ...valid, continuous: "true" }).continuous, {
    segmentIntervalMs: 10_000,
    segmentMaxBytes: 16 << 20,
  });
  assert.deepEqual(
    parseDaemonConfig({ ...valid, continuous: true, segmentInterval: "2s", segmentMaxBytes: "4096" })
      .continuous,
    { segmentIntervalMs: 2000, segmentMaxBytes: 4096 },
  );
  assert.throws(
    () => parseDaemonConfig({ ...valid, continuous: true, segmentInterval: "50ms" }),
    /--segment-interval: must be at least 100ms/,
  );
  assert.throws(
    () => parseDaemonConfig({ ...valid, continuous: true, segmentMaxBytes: "10" }),
    /--segment-max-bytes: must be at least 1024/,
  );
  assert.equal(parseDaemonConfig({ ...valid, keepLogWithin: "7d" }).keepLogWithinMs, 7 * 86_400_000);
  assert.equal(parseDaemonConfig(valid).keepLogWithinMs, undefined);
  assert.throws(() => parseDaemonConfig({ ...valid, keepLogWithin: "7" }), /--keep-log-within/);
  assert.throws(
    () => parseDaemonConfig({ ...valid, continuous: true, source: "talos" }),
    /--continuous: the revision log needs an etcd source/,
  );
  assert.throws(
    () => parseDaemonConfig({ ...valid, continuous: true, fromFile: "/snap.db" }),
    /--continuous: the revision log needs an etcd source/,
  );
});
