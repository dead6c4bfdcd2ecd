import assert from "node:assert/strict";
import { Readable, Writable } from "node:stream";
import { test } from "node:test";
import { generateIdentity, identityFileText } from "../../src/age/keys.ts";
import { Schedule } from "../../src/daemon/schedule.ts";
import { escapeHtml, renderStatusPage } from "../../src/daemon/status-page.ts";
import { FAILURE_REASONS, watchSave } from "../../src/observability/failure.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { createBackupMetrics } from "../../src/observability/metrics.ts";
import { REDACTED, Redactor } from "../../src/observability/redact.ts";

function sink(): { out: Writable & { isTTY?: boolean }; text: () => string } {
  let text = "";
  const out = new Writable({
    write(chunk, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  });
  return { out, text: () => text };
}

test("redactor: registered values (raw and JSON-escaped), age keys and PEM private keys", () => {
  const id = generateIdentity();
  const r = new Redactor()
    .add('pa"ss\\word', "abc")
    .addFromEnv({ AWS_SECRET_ACCESS_KEY: "wJalrXUtnFEMI/K7MDENG", ETCDCTL_USER: "root:hunter22" });
  const text = [
    'error: pa"ss\\word rejected',
    JSON.stringify({ msg: 'login with pa"ss\\word' }),
    "key wJalrXUtnFEMI/K7MDENG",
    identityFileText(id),
    "-----BEGIN PRIVATE KEY-----\nMIIEvQ\n-----END PRIVATE KEY-----",
    "user root:hunter22",
    "abc stays (too short to register)",
  ].join("\n");
  const clean = r.redact(text);
  for (const s of ['pa"ss\\word', 'pa\\"ss\\\\word', "wJalrXUtnFEMI", id.identity, "MIIEvQ", "hunter22"]) {
    assert.ok(!clean.includes(s), s);
  }
  assert.ok(clean.includes(REDACTED));
  assert.ok(clean.includes("abc stays"));
  assert.ok(clean.includes(id.recipient), "public keys are not secrets");
});

test("logger: JSON lines with the run id, secrets removed even from error messages and redacted fields", () => {
  const s = sink();
  const r = new Redactor().add("topsecret-value");
  const log = createLogger({ format: "json", out: s.out, redactor: r }).child({ runId: "abc123-7" });
  log.error({ error: "auth failed for topsecret-value", password: "other-pw" }, "run failed");
  log.info("done");
  const lines = s
    .text()
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(lines.length, 2);
  assert.ok(lines.every((l) => l.runId === "abc123-7" && typeof l.time === "string"));
  assert.equal(lines[0]!.level, "error");
  assert.ok(!s.text().includes("topsecret-value") && !s.text().includes("other-pw"));

  const tty = sink();
  tty.out.isTTY = true;
  createLogger({ format: "auto", out: tty.out, redactor: r }).child({ runId: "r-1" }).warn({ k: 1 }, "hello");
  assert.match(tty.text(), /^\d\d:\d\d:\d\d WARN {2}\[r-1\] hello k=1\n$/);
});

test("metrics: every series exists at 0 from the start; reasons are a closed set", async () => {
  const m = createBackupMetrics();
  const text = await m.registry.metrics();
  for (const reason of FAILURE_REASONS)
    assert.match(text, new RegExp(`etcd_backup_failures_total\\{reason="${reason}"\\} 0`));
  assert.match(text, /etcd_backup_runs_total\{result="success"\} 0/);
  assert.match(text, /etcd_backup_skipped_runs_total 0/);
});

test("watchSave tells a source failure from a store failure", async () => {
  const plan = null;
  const failing = { description: "x", open: async () => Promise.reject(new Error("connection refused")) };
  const store = {
    location: "mem",
    put: async (_k: string, body: Readable) => {
      body.resume();
      throw new Error("disk full");
    },
    get: async () => Readable.from([]),
    stat: async () => null,
    list: async function* () {},
    delete: async () => {},
    leftovers: async function* () {},
    removeLeftover: async () => {},
  };
  const a = watchSave({ source: failing, store, encryption: plan });
  await assert.rejects(a.source.open());
  assert.equal(a.reason(new Error("x")), "source");
  const ok = {
    description: "y",
    open: async () => ({ stream: Readable.from([Buffer.from("abc")]), origin: { kind: "t", endpoint: "t" } }),
  };
  const b = watchSave({ source: ok, store, encryption: plan });
  const snap = await b.source.open();
  await assert.rejects(b.store.put("k", snap.stream));
  assert.equal(b.reason(new Error("x")), "store");
  const aborted = new AbortController();
  aborted.abort();
  assert.equal(b.reason(new Error("x"), aborted.signal), "aborted");
});

test("schedule: seconds, time zones, runs missed while busy, interval", () => {
  const s = new Schedule("*/2 * * * * *");
  const from = new Date("2026-01-01T00:00:00Z");
  assert.equal(s.next(from)?.toISOString(), "2026-01-01T00:00:02.000Z");
  assert.equal(s.countBetween(from, new Date("2026-01-01T00:00:09Z")), 4);
  assert.equal(s.intervalMs(from), 2000);
  const paris = new Schedule("0 3 * * *", "Europe/Paris");
  assert.equal(paris.next(from)?.toISOString(), "2026-01-01T02:00:00.000Z");
  assert.equal(new Schedule("0 3 * * *", "Etc/UTC").intervalMs(from), 86_400_000);
});

test("status page: every value escaped, rows and charts present", () => {
  const evil = `<script>alert("x")</script>`;
  const html = renderStatusPage({
    cluster: evil,
    location: "s3://b/<p>",
    schedule: "*/2 * * * * *",
    ready: false,
    now: new Date("2026-01-01T00:01:00Z"),
    runs: [
      {
        runId: "abc-1",
        attempt: 1,
        scheduledAt: new Date("2026-01-01T00:00:00Z"),
        startedAt: new Date("2026-01-01T00:00:00Z"),
        finishedAt: new Date("2026-01-01T00:00:01Z"),
        durationSeconds: 1,
        result: "success",
        key: "c-2026-01-01T00:00:00Z.snap.zst.age",
        dbBytes: 2048,
        storedBytes: 512,
        revision: 42,
      },
      {
        runId: "abc-2",
        attempt: 2,
        scheduledAt: new Date("2026-01-01T00:00:02Z"),
        startedAt: new Date("2026-01-01T00:00:03Z"),
        finishedAt: new Date("2026-01-01T00:00:04Z"),
        durationSeconds: 1,
        result: "failure",
        reason: "source",
        error: `save: ${evil} & "quotes"`,
      },
    ],
  });
  assert.ok(!html.includes("<script>"));
  assert.ok(html.includes("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"));
  assert.ok(html.includes("s3://b/&lt;p&gt;"));
  assert.equal(html.match(/<tr class="run /g)?.length, 2);
  assert.match(html, /id="db-size-chart"/);
  assert.match(html, /id="duration-chart"/);
  assert.match(html, /NOT READY/);
  assert.match(html, /failure \(retry 1\)/);
  assert.equal(escapeHtml(`'&`), "&#39;&amp;");
});
