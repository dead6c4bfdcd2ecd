import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { backupJobFromConfig } from "../../src/config/job.ts";
import { parseBackupJobConfig, parseDaemonConfig, parseListenAddress } from "../../src/config/schema.ts";
import { parseDuration } from "../../src/duration.ts";
import { isUsageError } from "../../src/errors.ts";
import { runCli } from "../fixtures/cli.ts";

const work = mkdtempSync(join(tmpdir(), "etcd-backup-config-"));
after(() => rmSync(work, { recursive: true, force: true }));

const valid = { schedule: "0 */6 * * *", to: "/backups", recipient: "age1x" };

test("every problem is named at once, by its flag, without the values", () => {
  let err: unknown;
  try {
    parseDaemonConfig({
      schedule: "61 * * * *",
      keepLast: "0",
      keepDaily: "two",
      // A bare number is seconds now (src/duration.ts); a made-up unit is not a duration.
      jitter: "5x",
      metricsAddr: "localhost",
      level: "42",
      password: "hunter2-secret",
      s3: { partSizeMiB: "1", bogus: true },
      surprise: 1,
    });
  } catch (e) {
    err = e;
  }
  assert.ok(isUsageError(err));
  const msg = (err as Error).message;
  for (const flag of [
    "--schedule",
    "--keep-last",
    "--keep-daily",
    "--jitter",
    "--metrics-addr",
    "--level",
    "--to",
    "--recipient",
    "--s3-part-size",
    "--s3-bogus: unknown setting",
    "--surprise: unknown setting",
    "--password: needs --user",
  ]) {
    assert.ok(msg.includes(flag), `${flag} in ${msg}`);
  }
  assert.match(msg, /^invalid configuration: 12 problems: /);
  assert.ok(!msg.includes("hunter2-secret"));
});

test("values from the environment (strings) and from YAML (typed) mean the same", () => {
  const fromEnv = parseDaemonConfig({
    ...valid,
    keepLast: "3",
    verify: "true",
    testRestoreEvery: "4",
    endpoints: "a:2379, b:2379",
    s3: { partSizeMiB: "8", pathStyle: "1" },
    readyMaxAge: "90m",
    user: "root:pw:with:colons",
  });
  const fromYaml = parseDaemonConfig({
    ...valid,
    keepLast: 3,
    verify: true,
    testRestoreEvery: 4,
    endpoints: ["a:2379", "b:2379"],
    s3: { partSizeMiB: 8, pathStyle: true },
    readyMaxAge: "90m",
    user: "root:pw:with:colons",
  });
  assert.deepEqual(fromEnv, fromYaml);
  assert.deepEqual(fromEnv.job.retention, { last: 3 });
  assert.equal(fromEnv.job.s3.partSize, 8 * 1024 * 1024);
  assert.equal(fromEnv.readyMaxAgeMs, 90 * 60_000);
  assert.deepEqual(fromEnv.job.source, {
    kind: "etcd",
    endpoints: ["a:2379", "b:2379"],
    insecureSkipTlsVerify: false,
    dialTimeoutMs: 5000,
    user: { name: "root", password: "pw:with:colons" },
  });
});

test("defaults, encryption choices, listen addresses, durations", () => {
  const c = parseDaemonConfig(valid);
  assert.equal(c.job.retention, null);
  assert.equal(c.job.compression, "zstd");
  assert.deepEqual(c.metrics, { host: undefined, port: 9090 });
  assert.equal(c.shutdownGraceMs, 30_000);
  assert.equal(c.readyMaxAgeMs, undefined);
  assert.deepEqual(parseDaemonConfig({ ...valid, recipient: undefined, encrypt: "false" }).job.encryption, {
    kind: "none",
  });
  assert.throws(() => parseDaemonConfig({ ...valid, encrypt: false }), /--no-encrypt: contradicts/);
  assert.throws(() => parseDaemonConfig({ ...valid, passphraseFile: "/p" }), /cannot be combined/);
  assert.throws(() => parseDaemonConfig({ ...valid, tz: "Mars/Olympus" }), /--schedule: unknown time zone/);
  assert.deepEqual(parseListenAddress("[::1]:8080"), { host: "::1", port: 8080 });
  assert.deepEqual(parseListenAddress("0.0.0.0:9090"), { host: "0.0.0.0", port: 9090 });
  assert.equal(parseListenAddress("9090"), null);
  assert.equal(parseListenAddress(":70000"), null);
  assert.equal(parseDuration("1m30s"), 90_000);
  assert.equal(parseDuration("250ms"), 250);
  // A bare number is seconds, as with save's --dial-timeout (src/duration.ts).
  assert.equal(parseDuration("30"), 30_000);
  assert.equal(parseDuration("30x"), null);
});

test("the operator's path: a job config built in code is validated and turned into a job", async () => {
  assert.throws(
    () =>
      parseBackupJobConfig({
        cluster: "bad name",
        source: { kind: "etcd", endpoints: [] },
        destination: "",
        encryption: { kind: "none" },
      }),
    /cluster: holds characters other than.*source\.endpoints.*destination/,
  );
  const config = parseBackupJobConfig({
    cluster: "prod",
    source: { kind: "etcd", endpoints: ["127.0.0.1:2379"], user: { name: "root", password: "s3cret-pw" } },
    destination: join(work, "store"),
    encryption: {
      kind: "age",
      recipients: ["age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"],
    },
    retention: { last: 2 },
  });
  const job = await backupJobFromConfig(config);
  assert.equal(job.cluster, "prod");
  assert.equal(job.store.location, join(work, "store"));
  assert.equal(job.encryption?.recipients[0]?.kind, "X25519");
  assert.deepEqual(job.retention, { last: 2 });
  assert.equal(job.decrypt, undefined);
  assert.ok(job.secrets.includes("s3cret-pw"));
});

test("CLI: flags win over the environment, which wins over --config; all problems, exit 2", async () => {
  const file = join(work, "daemon.yaml");
  writeFileSync(
    file,
    [
      "schedule: not a cron",
      "keep-last: 0",
      "jitter: soon",
      "to: /tmp/x",
      "no-encrypt: true",
      "metrics-addr: nowhere",
    ].join("\n"),
  );
  const res = await runCli(["daemon", "--config", file, "--keep-last", "3"], {
    env: { ETCD_BACKUP_SCHEDULE: "*/5 * * * *", ETCD_BACKUP_METRICS_ADDR: "" },
  });
  assert.equal(res.code, 2, res.stderr);
  const line = res.stderr.trim();
  assert.equal(line.split("\n").length, 1);
  assert.match(line, /^etcd-backup: invalid configuration: 2 problems: /);
  assert.match(line, /--jitter: is not a duration/);
  assert.match(line, /--metrics-addr: is not host:port/);
  assert.doesNotMatch(line, /--schedule|--keep-last|--recipient/);

  writeFileSync(join(work, "broken.yaml"), "schedule: [unclosed\n");
  const broken = await runCli(["daemon", "--config", join(work, "broken.yaml")]);
  assert.equal(broken.code, 2);
  assert.match(broken.stderr, /is not valid YAML at line \d+, column \d+/);
});

test("talos-backup's variables mean in the daemon what they mean for save", () => {
  const age = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";
  const base = { schedule: "0 */6 * * *", to: "/backups" };
  // AGE_X25519_PUBLIC_KEY alone is enough to encrypt, and adds to the recipients given.
  const only = parseDaemonConfig(base, { AGE_X25519_PUBLIC_KEY: ` ${age} ` });
  assert.deepEqual(only.job.encryption, { kind: "age", recipients: [age], recipientsFiles: [] });
  const both = parseDaemonConfig({ ...base, recipient: ["age1other"] }, { AGE_X25519_PUBLIC_KEY: age });
  assert.deepEqual(both.job.encryption.kind === "age" && both.job.encryption.recipients, ["age1other", age]);
  // DISABLE_ENCRYPTION=true (exactly) is --no-encrypt; another value is not, and the recipient is then required.
  assert.deepEqual(parseDaemonConfig(base, { DISABLE_ENCRYPTION: "true" }).job.encryption, { kind: "none" });
  assert.deepEqual(
    parseDaemonConfig(base, { DISABLE_ENCRYPTION: "true", AGE_X25519_PUBLIC_KEY: age }).job.encryption,
    { kind: "none" },
  );
  assert.throws(
    () => parseDaemonConfig(base, { DISABLE_ENCRYPTION: "TRUE" }),
    /--recipient: no age recipient/,
  );
  // Compression: ENABLE_COMPRESSION=true zstd, any other value none; BUCKET alone is talos-backup's default, none;
  // neither: our default zstd; a --compress given wins over all of them.
  const enc = { AGE_X25519_PUBLIC_KEY: age };
  assert.equal(parseDaemonConfig(base, { ...enc, ENABLE_COMPRESSION: "true" }).job.compression, "zstd");
  assert.equal(parseDaemonConfig(base, { ...enc, ENABLE_COMPRESSION: "yes" }).job.compression, "none");
  assert.equal(parseDaemonConfig(base, { ...enc, BUCKET: "b" }).job.compression, "none");
  assert.equal(parseDaemonConfig(base, enc).job.compression, "zstd");
  assert.equal(
    parseDaemonConfig({ ...base, compress: "zstd" }, { ...enc, BUCKET: "b", ENABLE_COMPRESSION: "false" }).job
      .compression,
    "zstd",
  );
  // The settings object is not changed.
  const settings = { ...base, recipient: ["age1other"] };
  parseDaemonConfig(settings, enc);
  assert.deepEqual(settings.recipient, ["age1other"]);
});
