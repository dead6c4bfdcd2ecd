/**
 * The daemon's notifications, in process against a real etcd behind a proxy that can cut it off, a local store,
 * and a webhook receiver on a loopback port. The daemon runs on a clock the test moves forward (JumpClock), so an
 * hourly schedule missed for hours takes a second: etcd down gives exactly one failure event however many runs
 * fail, a missed schedule exactly one stale event, and etcd back one success. No log line holds the receiver's
 * URL or its token.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { type EtcdServer, fillKeys, startEtcd } from "../fixtures/etcd-server.ts";
import { startInProcessDaemon } from "../fixtures/in-process-daemon.ts";
import { JumpClock } from "../fixtures/jump-clock.ts";
import { assertNoSecrets } from "../fixtures/secrets.ts";
import { startWebhookReceiver } from "../fixtures/webhook-receiver.ts";
import { hostPort, scrape, startProxy, waitFor } from "./harness.ts";

const HOUR = 3_600_000;
let work: string;
let etcd: EtcdServer;

before(async () => {
  work = mkdtempSync(join(tmpdir(), "etcd-backup-daemon-notify-"));
  etcd = await startEtcd();
  await fillKeys(etcd, 50);
});
after(async () => {
  await etcd?.destroy();
  rmSync(work, { recursive: true, force: true });
});

test("etcd down: one failure event; schedule missed: one stale event; etcd back: one success; no URL in any log line", async () => {
  const receiver = await startWebhookReceiver();
  const proxy = await startProxy();
  const clock = new JumpClock();
  // Start just after a full hour, so that the hourly runs come at +1h, +2h... of the clock.
  clock.advance(HOUR - (clock.now() % HOUR) + 1000);
  const dest = join(work, "store");
  const d = await startInProcessDaemon(
    {
      schedule: "0 * * * *",
      tz: "UTC",
      cluster: "notified",
      endpoints: [`http://127.0.0.1:${proxy.port}`],
      dialTimeout: "1s",
      to: dest,
      encrypt: false,
      retryBackoff: "1s",
      retryBackoffMax: "1s",
      notify: [receiver.url],
      notifyOn: "success,failure,stale",
    },
    { instanceId: "n", clock, notifyRetry: { baseDelayMs: 50, maxDelayMs: 200 } },
  );
  const { base, lines } = d;
  const events = () => receiver.delivered().map((r) => r.json!);
  const ofKind = (kind: string) => events().filter((e) => e.event === kind);
  try {
    // etcd unreachable (the proxy has no upstream): the 1st hourly run fails, and its retries, and the 2nd run.
    clock.advance(HOUR);
    await waitFor("the first failure event", async () => (ofKind("failure").length >= 1 ? true : undefined));
    await waitFor("several failed attempts", async () =>
      lines.filter((l) => l.msg === "run failed; retrying").length >= 2 ? true : undefined,
    );
    clock.advance(HOUR);
    const failedSoFar = lines.filter((l) => String(l.msg).startsWith("run failed")).length;
    await waitFor("more failed attempts", async () =>
      lines.filter((l) => String(l.msg).startsWith("run failed")).length > failedSoFar ? true : undefined,
    );
    // Two hours and more without a success (twice the interval): stale, once.
    clock.advance(HOUR / 2);
    await waitFor("the stale event", async () => (ofKind("stale").length >= 1 ? true : undefined));
    clock.advance(HOUR / 4);
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(ofKind("failure").length, 1, "exactly one failure event for the episode");
    assert.equal(ofKind("stale").length, 1, "exactly one stale event for the episode");
    assert.equal(ofKind("success").length, 0);
    const [failure] = ofKind("failure");
    assert.equal(failure!.cluster, "notified");
    assert.equal(failure!.origin, "daemon");
    assert.equal(failure!.store, dest);
    assert.equal(typeof failure!.error, "string");
    assert.equal(typeof failure!.time, "string");
    assert.equal(typeof failure!.durationSeconds, "number");
    const [stale] = ofKind("stale");
    assert.equal(stale!.lastSuccess, undefined, "no success since the start");
    assert.equal(stale!.staleAfterSeconds, 7200, "twice the hourly interval");

    // etcd back: the next run succeeds, one success event with the backup's name and size.
    proxy.setTarget(hostPort(etcd.endpoint));
    clock.advance(HOUR);
    await waitFor(
      "the success event",
      async () => (ofKind("success").length >= 1 ? true : undefined),
      60_000,
    );
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(ofKind("success").length, 1);
    const [success] = ofKind("success");
    assert.match(String(success!.backup), /^notified-.*\.snap/);
    assert.ok(Number(success!.sizeBytes) > 0);
    assert.equal(ofKind("failure").length, 1);
    assert.equal(ofKind("stale").length, 1);

    const metrics = await scrape(base);
    assert.equal(metrics.get('etcd_backup_notifications_total{event="failure",result="sent"}'), 1);
    assert.equal(metrics.get('etcd_backup_notifications_total{event="stale",result="sent"}'), 1);
    assert.equal(metrics.get('etcd_backup_notifications_total{event="success",result="sent"}'), 1);
    const page = await (await fetch(`${base}/`)).text();
    const started = lines.find((l) => l.msg === "daemon started");
    assert.deepEqual((started?.notify as { on?: string[] } | undefined)?.on, ["success", "failure", "stale"]);
    assertNoSecrets(d.logText() + page + JSON.stringify([...metrics]), "the daemon's log, page and metrics");
    assert.ok(!d.logText().includes(receiver.token));
  } finally {
    await d.stop();
    await proxy.close();
    await receiver.close();
  }
});

test("a receiver that keeps failing never fails a run: the run succeeds, the failure is logged (redacted) and counted", async () => {
  const receiver = await startWebhookReceiver([500, 500, 500, 500, 500, 500, 500, 500]);
  const clock = new JumpClock();
  const d = await startInProcessDaemon(
    {
      schedule: "0 * * * *",
      cluster: "loud",
      endpoints: [etcd.endpoint],
      to: join(work, "store-2"),
      encrypt: false,
      notify: [receiver.url],
      notifyOn: "success",
    },
    { instanceId: "l", clock, notifyRetry: { baseDelayMs: 20, maxDelayMs: 50 } },
  );
  try {
    clock.advance(HOUR);
    await waitFor("the failed notification", async () =>
      d.logText().includes("notification failed") ? true : undefined,
    );
    const metrics = await scrape(d.base);
    assert.equal(metrics.get('etcd_backup_runs_total{result="success"}'), 1);
    assert.equal(metrics.get('etcd_backup_notifications_total{event="success",result="failed"}'), 1);
    assert.equal(receiver.requests.length, 4, "bounded: 4 tries");
    assert.match(
      d.logText(),
      /notify #1 \(127\.0\.0\.1:\d+\): success notification not delivered after 4 attempts: HTTP 500/,
    );
    assertNoSecrets(d.logText(), "the daemon's log");
  } finally {
    await d.stop();
    await receiver.close();
  }
});
