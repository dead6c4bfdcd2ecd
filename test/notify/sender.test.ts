/**
 * The notification sender against a real HTTP receiver on a loopback port: retries (500 twice then 200 is
 * delivered on the third try), no retry for a 4xx other than 429, Retry-After, AbortSignal, both payload
 * formats, and the receiver's URL never in an error, a report or a metric.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { Registry } from "prom-client";
import { parseJobSettings } from "../../src/config/schema.ts";
import { NotifyEpisodes } from "../../src/notify/episodes.ts";
import type { NotifyEvent } from "../../src/notify/payload.ts";
import { type Delivery, Notifier } from "../../src/notify/sender.ts";
import { notifyTargets, secretForms } from "../../src/notify/target.ts";
import { Redactor } from "../../src/observability/redact.ts";
import { freePort } from "../fixtures/ports.ts";
import { assertNoSecrets } from "../fixtures/secrets.ts";
import { startWebhookReceiver, type WebhookReceiver } from "../fixtures/webhook-receiver.ts";

const receivers: WebhookReceiver[] = [];
after(async () => {
  for (const r of receivers) await r.close();
});

async function receiver(answers: number[] = []): Promise<WebhookReceiver> {
  const r = await startWebhookReceiver(answers);
  receivers.push(r);
  return r;
}

const failure: NotifyEvent = {
  event: "failure",
  origin: "save",
  cluster: "prod-1",
  time: "2026-11-30T10:14:00.000Z",
  store: "s3://backups/prod",
  error: "save: cannot connect to etcd at 127.0.0.1:2379: connection refused (check --endpoints)",
  durationSeconds: 5.2,
  attempts: 1,
};

function notifier(urls: string[], extra: Partial<ConstructorParameters<typeof Notifier>[0]> = {}) {
  const deliveries: Delivery[] = [];
  const registry = new Registry();
  const n = new Notifier({
    targets: notifyTargets(urls),
    on: ["failure", "success", "stale"],
    retry: { baseDelayMs: 20, maxDelayMs: 200, timeoutMs: 2000 },
    registry,
    report: (d) => deliveries.push(d),
    ...extra,
  });
  return { n, deliveries, registry };
}

test("a receiver answering 500 twice then 200 gets the event on the third try, once", async () => {
  const r = await receiver([500, 500]);
  const { n, deliveries, registry } = notifier([r.url]);
  const [d] = await n.notify(failure);
  assert.equal(d?.ok, true);
  assert.equal(d?.attempts, 3);
  assert.deepEqual(
    r.requests.map((q) => q.status),
    [500, 500, 200],
  );
  const got = r.delivered();
  assert.equal(got.length, 1);
  assert.equal(got[0]!.method, "POST");
  assert.equal(got[0]!.contentType, "application/json");
  assert.deepEqual(got[0]!.json, failure);
  assert.equal(deliveries.length, 1);
  const metrics = await registry.metrics();
  assert.match(metrics, /etcd_backup_notifications_total\{event="failure",result="sent"\} 1/);
  assertNoSecrets(JSON.stringify(deliveries) + metrics, "the deliveries and metrics");
});

test("a 4xx other than 429 is not retried; the failure names the receiver by host, never its URL", async () => {
  const r = await receiver([404, 200]);
  const { n, deliveries, registry } = notifier([r.url]);
  const [d] = await n.notify(failure);
  assert.equal(d?.ok, false);
  assert.equal(r.requests.length, 1, "one request only");
  assert.match(
    d!.error!,
    /^notify #1 \(127\.0\.0\.1:\d+\): failure notification not delivered after 1 attempt: HTTP 404$/,
  );
  assertNoSecrets(JSON.stringify(deliveries), "the delivery report");
  assert.match(
    await registry.metrics(),
    /etcd_backup_notifications_total\{event="failure",result="failed"\} 1/,
  );
});

test("429 is retried (Retry-After honoured within the cap); retries are bounded", async () => {
  const r = await receiver([429, 200]);
  const { n } = notifier([r.url]);
  assert.equal((await n.notify(failure))[0]?.attempts, 2);
  const down = await receiver([503, 503, 503, 503, 503, 503]);
  const { n: n2 } = notifier([down.url]);
  const [d] = await n2.notify(failure);
  assert.equal(d?.ok, false);
  assert.equal(d?.attempts, 4, "the default: 4 tries");
  assert.equal(down.requests.length, 4);
});

test("a receiver that refuses connections fails after its tries, naming it without its URL", async () => {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/hooks/${"t".repeat(20)}SECRETTOKEN`;
  const { n } = notifier([url]);
  const [d] = await n.notify(failure);
  assert.equal(d?.ok, false);
  assert.match(d!.error!, /notify #1 \(127\.0\.0\.1:\d+\).*ECONNREFUSED/);
  assert.ok(!d!.error!.includes("SECRETTOKEN"));
});

test("an AbortSignal ends the retries at once", async () => {
  const r = await receiver([500, 500, 500, 500]);
  const { n } = notifier([r.url], { retry: { baseDelayMs: 10_000, maxDelayMs: 10_000, timeoutMs: 2000 } });
  const ac = new AbortController();
  const t0 = Date.now();
  setTimeout(() => ac.abort(), 300);
  const [d] = await n.notify(failure, ac.signal);
  assert.equal(d?.ok, false);
  assert.ok(Date.now() - t0 < 5000, "did not wait for the 10 s backoff");
  assert.equal(r.requests.length, 1);
});

test("slack+https:// posts Slack's incoming-webhook shape: one text field, mrkdwn escaped", async () => {
  const r = await receiver();
  const slackUrl = r.url.replace(/^http:/, "slack+http:");
  const { n } = notifier([slackUrl]);
  await n.notify({ ...failure, error: "x < y & z > w" });
  await n.notify({
    event: "success",
    origin: "daemon",
    cluster: "prod-1",
    time: "2026-11-30T10:15:00.000Z",
    backup: "prod-1/2026/11/30/prod-1-20261130T101500Z.db.zst.age",
    sizeBytes: 5 * 1024 * 1024,
    durationSeconds: 3,
  });
  await n.notify({
    event: "stale",
    origin: "daemon",
    cluster: "prod-1",
    time: "2026-11-30T12:00:00.000Z",
    lastSuccess: "2026-11-30T10:00:00.000Z",
    staleAfterSeconds: 7200,
  });
  const [f, s, st] = r.delivered().map((q) => q.json!);
  for (const p of [f, s, st]) {
    assert.deepEqual(Object.keys(p!), ["text"]);
    assert.equal(typeof p!.text, "string");
  }
  assert.match(
    String(f!.text),
    /^:x: etcd-backup: backup of cluster `prod-1` failed in 5s: .*x &lt; y &amp; z &gt; w/,
  );
  assert.match(String(s!.text), /^:white_check_mark: .*stored `prod-1\/2026.*` \(5(\.0)? MiB\) in 3s/);
  assert.match(
    String(st!.text),
    /^:warning: .*no successful backup of cluster `prod-1` since 2026-11-30T10:00:00.000Z \(expected at least every 2h/,
  );
});

test("events not asked for are not sent; two receivers each get the event", async () => {
  const a = await receiver();
  const b = await receiver();
  const n = new Notifier({ targets: notifyTargets([a.url, b.url]), on: ["failure"] });
  assert.deepEqual(await n.notify({ ...failure, event: "success" }), []);
  const deliveries = await n.notify(failure);
  assert.deepEqual(
    deliveries.map((d) => d.receiver.replace(/:\d+/, ":PORT")),
    ["notify #1 (127.0.0.1:PORT)", "notify #2 (127.0.0.1:PORT)"],
  );
  assert.equal(a.delivered().length, 1);
  assert.equal(b.delivered().length, 1);
});

test("the redactor removes every form of a receiver's URL; the host stays readable", () => {
  const url = "slack+https://hooks.example.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX";
  const redactor = new Redactor().add(...secretForms(url));
  for (const text of [
    url,
    url.replace(/^slack\+/, ""),
    "POST /services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX failed",
    "token XXXXXXXXXXXXXXXXXXXXXXXX",
  ]) {
    const out = redactor.redact(text);
    assert.ok(!out.includes("XXXXXXXXXXXXXXXXXXXXXXXX"), out);
  }
  assert.equal(redactor.redact("notify #1 (hooks.example.com)"), "notify #1 (hooks.example.com)");
  // A process's command line: `--notify URL` is a secret flag.
  const argv = new Redactor().addFromArgv([
    "etcd-backup",
    "save",
    "--notify",
    "https://h.example/hook/abcdefgh1234",
  ]);
  assert.ok(!argv.redact("x https://h.example/hook/abcdefgh1234 y").includes("abcdefgh1234"));
});

test("settings: a bad --notify URL is named by its number, never echoed; stale is refused for save", () => {
  const base = { to: "/tmp/x", encrypt: false };
  assert.throws(
    () => parseJobSettings({ ...base, notify: ["https://ok.example/a", "ftp://secret-token-here@x/y"] }, {}),
    (err: Error) => {
      assert.match(err.message, /--notify #2: must be an http:\/\/ or https:\/\/ URL/);
      assert.ok(!err.message.includes("secret-token-here"));
      return true;
    },
  );
  assert.throws(
    () => parseJobSettings({ ...base, notify: ["https://a.example/x"], notifyOn: "stale" }, {}),
    /--notify-on: stale needs a schedule/,
  );
  assert.throws(() => parseJobSettings({ ...base, notifyOn: "sometimes" }, {}), /--notify-on/);
  const job = parseJobSettings(
    { ...base, notify: "https://a.example/x,slack+https://b.example/y", notifyOn: "success,failure" },
    {},
  );
  assert.deepEqual(job.notify, {
    urls: ["https://a.example/x", "slack+https://b.example/y"],
    format: "json",
    on: ["success", "failure"],
  });
  assert.deepEqual(
    notifyTargets(job.notify.urls).map((t) => [t.format, t.label]),
    [
      ["json", "notify #1 (a.example)"],
      ["slack", "notify #2 (b.example)"],
    ],
  );
});

test("episodes: one failure per episode, one stale per episode, reset by a success", () => {
  const e = new NotifyEpisodes();
  assert.equal(e.failed(), true);
  assert.equal(e.failed(), false);
  assert.equal(e.stale(1000, 0, 500), true);
  assert.equal(e.stale(2000, 0, 500), false);
  e.succeeded();
  assert.equal(e.failed(), true);
  assert.equal(e.stale(2000, 1500, 1000), false);
  assert.equal(e.stale(3000, 1500, 1000), true);
});
