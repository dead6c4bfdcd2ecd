import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { listenAddressSetting, parseListenAddress } from "../src/config/listen-address.ts";
import { parseDaemonConfig } from "../src/config/schema.ts";
import { durationProblem, durationSetting, MAX_TIMER_MS, parseDuration } from "../src/duration.ts";
import { describeError, isUsageError } from "../src/errors.ts";

describe("parseDuration: the one grammar", () => {
  const cases: [string | number, number | null][] = [
    ["5s", 5_000],
    ["500ms", 500],
    ["1m30s", 90_000],
    ["1.5h", 5_400_000],
    ["2d", 172_800_000],
    ["1w", 604_800_000],
    ["1h0m0s", 3_600_000],
    [" 30s ", 30_000],
    // A bare number is seconds, in a string (flag, environment) as in a YAML number.
    ["5", 5_000],
    ["0", 0],
    ["0.25", 250],
    [5, 5_000],
    [0.5, 500],
    // Not durations.
    ["", null],
    ["s", null],
    ["5 s", null],
    ["-5s", null],
    ["5y", null],
    ["1m30", null],
    ["5sx", null],
    ["1e3s", null],
    [-1, null],
    [Number.NaN, null],
    ["99999999999999999999w", null],
  ];
  for (const [text, ms] of cases) {
    test(JSON.stringify(text), () => assert.equal(parseDuration(text), ms));
  }
});

describe("bounds", () => {
  test("the longest timer Node takes is accepted, one millisecond more is not", () => {
    assert.equal(MAX_TIMER_MS, 2_147_483_647);
    assert.equal(durationProblem(`${MAX_TIMER_MS}ms`), null);
    assert.match(
      durationProblem(`${MAX_TIMER_MS + 1}ms`)!,
      /longer than the longest supported duration \(24d20h\)/,
    );
    assert.equal(durationProblem("24d"), null);
    assert.match(durationProblem("25d")!, /longer than/);
  });

  test("zero is refused unless the setting allows it", () => {
    assert.match(durationProblem("0")!, /must be longer than zero/);
    assert.equal(durationProblem("0s", { positive: false }), null);
  });

  test("a setting that is not a timer may be longer", () => {
    assert.equal(durationProblem("62d", { maxMs: Number.MAX_SAFE_INTEGER }), null);
  });

  test("durationSetting: one line naming the flag and the value, exit 2", () => {
    const err = (() => {
      try {
        durationSetting("--dial-timeout", "1000h");
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    assert.ok(isUsageError(err));
    assert.equal(
      describeError(err),
      "--dial-timeout 1000h: longer than the longest supported duration (24d20h) (use a shorter duration)",
    );
    assert.throws(() => durationSetting("--retry-period", "soon"), /--retry-period soon: is not a duration/);
    assert.throws(() => durationSetting("--x", "1 h"), /--x "1 h": is not a duration/);
    assert.equal(durationSetting("--dial-timeout", "5"), 5_000);
  });
});

describe("the daemon reads durations as save does", () => {
  const valid = { schedule: "0 * * * *", to: "/tmp/x", encrypt: false };

  test("--dial-timeout 5 is 5 s for the daemon too", () => {
    const c = parseDaemonConfig({ ...valid, dialTimeout: "5" });
    assert.equal(c.job.source.kind === "etcd" && c.job.source.dialTimeoutMs, 5_000);
    assert.equal(durationSetting("--dial-timeout", "5"), 5_000);
  });

  test("timers longer than 2^31-1 ms are refused, each named", () => {
    assert.throws(
      () =>
        parseDaemonConfig({ ...valid, shutdownGrace: "100d", dialTimeout: "1000h", retryBackoffMax: "30d" }),
      (err: Error) => {
        const line = describeError(err);
        assert.match(line, /3 problems/);
        for (const flag of ["--shutdown-grace", "--dial-timeout", "--retry-backoff-max"]) {
          assert.match(line, new RegExp(`${flag}: longer than the longest supported duration`));
        }
        return true;
      },
    );
  });

  test("--ready-max-age is compared with an age, not a timer: a monthly schedule may need 62d", () => {
    assert.equal(parseDaemonConfig({ ...valid, readyMaxAge: "62d" }).readyMaxAgeMs, 62 * 86_400_000);
  });

  test("zero stays allowed where it means something (no grace, no jitter)", () => {
    const c = parseDaemonConfig({ ...valid, shutdownGrace: "0s", jitter: "0" });
    assert.equal(c.shutdownGraceMs, 0);
    assert.equal(c.schedule.jitterMs, 0);
    assert.throws(
      () => parseDaemonConfig({ ...valid, dialTimeout: "0" }),
      /--dial-timeout: must be longer than zero/,
    );
  });
});

describe("parseListenAddress: the one listen-address parser", () => {
  const cases: [string, { host: string | undefined; port: number } | null][] = [
    [":9090", { host: undefined, port: 9090 }],
    ["0.0.0.0:8080", { host: "0.0.0.0", port: 8080 }],
    ["127.0.0.1:0", { host: "127.0.0.1", port: 0 }],
    ["localhost:8080", { host: "localhost", port: 8080 }],
    ["[::1]:8080", { host: "::1", port: 8080 }],
    ["[::]:8080", { host: "::", port: 8080 }],
    ["9090", null],
    [":70000", null],
    ["::1:8080", null],
    ["host:", null],
    ["a b:80", null],
  ];
  for (const [text, want] of cases) {
    test(JSON.stringify(text), () => assert.deepEqual(parseListenAddress(text), want));
  }

  test("listenAddressSetting: one line", () => {
    assert.throws(
      () => listenAddressSetting("--metrics-addr", "nowhere"),
      (err: Error) =>
        describeError(err) ===
        '--metrics-addr "nowhere": is not host:port, :port or [v6]:port (use e.g. :9090 or 127.0.0.1:9090)',
    );
  });
});
