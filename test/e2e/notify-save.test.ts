/**
 * `etcd-backup save --notify` as users run it (the built CLI), against a webhook receiver on a loopback port:
 * etcd down gives exactly one failure event and the save still fails with its own one-line error; etcd up with
 * `--notify-on success,failure` gives exactly one success event; a Slack receiver gets Slack's shape; a receiver
 * that is down does not change the exit code. The receiver's URL and token are registered with the secret scan,
 * which `runCli` applies to stdout and stderr.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { assertOk, runCli } from "../fixtures/cli.ts";
import { type EtcdServer, fillKeys, startEtcd } from "../fixtures/etcd-server.ts";
import { freePort } from "../fixtures/ports.ts";
import { startWebhookReceiver, type WebhookReceiver } from "../fixtures/webhook-receiver.ts";

let work: string;
let etcd: EtcdServer;
let receiver: WebhookReceiver;

before(async () => {
  work = mkdtempSync(join(tmpdir(), "etcd-backup-notify-save-"));
  for (const d of ["down", "up", "slack", "x"]) mkdirSync(join(work, d));
  etcd = await startEtcd();
  await fillKeys(etcd, 100);
  receiver = await startWebhookReceiver();
});
after(async () => {
  await receiver?.close();
  await etcd?.destroy();
  rmSync(work, { recursive: true, force: true });
});

test("save with etcd down: exactly one failure event, the save's own error and exit code", async () => {
  const before = receiver.delivered().length;
  const down = await freePort();
  const r = await runCli([
    "save",
    "--endpoints",
    `127.0.0.1:${down}`,
    "--dial-timeout",
    "1s",
    "--to",
    join(work, "down"),
    "--no-encrypt",
    "--cluster",
    "downcluster",
    "--notify",
    receiver.url,
  ]);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  assert.match(r.stderr, /^etcd-backup: /);
  const events = receiver.delivered().slice(before);
  assert.equal(events.length, 1, "exactly one event");
  const e = events[0]!.json!;
  assert.equal(e.event, "failure");
  assert.equal(e.cluster, "downcluster");
  assert.equal(e.origin, "save");
  assert.equal(typeof e.time, "string");
  assert.equal(typeof e.durationSeconds, "number");
  // The event's error is the line the CLI printed (without its prefix).
  assert.equal(e.error, r.stderr.trim().replace(/^etcd-backup: /, ""));
});

test("save with etcd up and --notify-on success,failure: exactly one success event with name and size", async () => {
  const before = receiver.delivered().length;
  const r = await runCli(
    [
      "save",
      "--endpoints",
      etcd.endpoint,
      "--to",
      join(work, "up"),
      "--no-encrypt",
      "--cluster",
      "upcluster",
      "-o",
      "json",
    ],
    { env: { ETCD_BACKUP_NOTIFY: receiver.url, ETCD_BACKUP_NOTIFY_ON: "success,failure" } },
  );
  assertOk(r);
  const out = JSON.parse(r.stdout) as { key: string; manifest: { sizes: { stored: number } } };
  const events = receiver.delivered().slice(before);
  assert.equal(events.length, 1);
  const e = events[0]!.json!;
  assert.equal(e.event, "success");
  assert.equal(e.backup, out.key);
  assert.equal(e.sizeBytes, out.manifest.sizes.stored);
  assert.equal(e.cluster, "upcluster");
});

test("a Slack receiver (slack+http://) gets one text; an unreachable receiver is a warning, not a failure", async () => {
  const before = receiver.delivered().length;
  const gone = `http://127.0.0.1:${await freePort()}/hooks/${"g".repeat(24)}`;
  const r = await runCli(
    [
      "save",
      "--endpoints",
      etcd.endpoint,
      "--to",
      join(work, "slack"),
      "--no-encrypt",
      "--notify",
      receiver.url.replace(/^http:/, "slack+http:"),
      "--notify",
      gone,
      "--notify-on",
      "success",
    ],
    { timeoutMs: 120_000 },
  );
  assertOk(r);
  const events = receiver.delivered().slice(before);
  assert.equal(events.length, 1);
  assert.deepEqual(Object.keys(events[0]!.json!), ["text"]);
  assert.match(
    String(events[0]!.json!.text),
    /^:white_check_mark: etcd-backup: backup of cluster `etcd` stored/,
  );
  assert.match(
    r.stderr,
    /warning: notify #2 \(127\.0\.0\.1:\d+\): success notification not delivered after 4 attempts/,
  );
  assert.ok(!r.stderr.includes("g".repeat(24)), r.stderr);
});

test("a bad --notify URL is refused with one line naming it by number, never echoing it (exit 2)", async () => {
  const r = await runCli([
    "save",
    "--to",
    join(work, "x"),
    "--no-encrypt",
    "--notify",
    "ftp://user:tok3n-secret-value@h/x",
  ]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /--notify #1: must be an http:\/\/ or https:\/\/ URL/);
  assert.ok(!r.stderr.includes("tok3n-secret-value"));
});
