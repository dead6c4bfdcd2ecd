import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { chromium } from "playwright-core";
import { generateIdentity, identityFileText } from "../../src/age/keys.ts";
import { listBackups } from "../../src/catalog/catalog.ts";
import { S3Store } from "../../src/store/s3.ts";
import {
  hostPort,
  parseMetrics,
  scrape,
  spawnDaemon,
  startProxy,
  type TcpProxy,
  waitFor,
} from "../daemon/harness.ts";
import { type EtcdServer, fillKeys, startEtcd } from "../fixtures/etcd-server.ts";
import { freePort } from "../fixtures/ports.ts";
import { quietMetrics } from "../fixtures/quiet-metrics.ts";
import { startS3Server, type TestS3Server } from "../fixtures/s3-server.ts";

const ARTIFACTS = join(import.meta.dirname, "..", "..", ".test-artifacts");
const ETCD_PASSWORD = "etcd-Pa55word-c0ffee-7d1e";
const S3_SECRET = "S3RVER"; // the only secret s3rver accepts

const s3Env = (s3: TestS3Server) => ({
  AWS_ACCESS_KEY_ID: "S3RVER",
  AWS_SECRET_ACCESS_KEY: S3_SECRET,
  AWS_REGION: "us-east-1",
  AWS_EC2_METADATA_DISABLED: "true",
  AWS_ENDPOINT_URL_S3: s3.endpoint,
});

function storeOf(s3: TestS3Server, prefix: string): S3Store {
  return new S3Store({
    bucket: "backups",
    prefix,
    settings: { endpoint: s3.endpoint, pathStyle: true },
    credentials: { accessKeyId: "S3RVER", secretAccessKey: S3_SECRET },
  });
}

describe("daemon against real etcd (with authentication) and S3", () => {
  let work: string;
  let s3: TestS3Server;
  let etcd: EtcdServer;
  let proxy: TcpProxy;
  let identityFile: string;
  let identitySecret: string;
  let recipient: string;
  let base: string;
  let daemon: ReturnType<typeof spawnDaemon>;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "etcd-backup-e2e-daemon-"));
    s3 = await startS3Server();
    await s3.createBucket("backups");
    etcd = await startEtcd();
    await fillKeys(etcd, 300);
    await etcd.ctl(["user", "add", `root:${ETCD_PASSWORD}`]);
    await etcd.ctl(["auth", "enable"]);
    proxy = await startProxy();
    proxy.setTarget(hostPort(etcd.endpoint));
    const id = generateIdentity();
    identitySecret = id.identity;
    recipient = id.recipient;
    identityFile = join(work, "identity.txt");
    writeFileSync(identityFile, identityFileText(id), { mode: 0o600 });
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    daemon = spawnDaemon(
      [
        ...["--schedule", "*/2 * * * * *", "--cluster", "e2e"],
        ...["--endpoints", `http://127.0.0.1:${proxy.port}`, "--user", "root", "--dial-timeout", "2s"],
        ...["--to", "s3://backups/daemon", "--s3-path-style"],
        ...["--recipient", recipient, "--identity", identityFile, "--verify"],
        ...["--keep-last", "2", "--incomplete-grace", "1s"],
        ...["--metrics-addr", `127.0.0.1:${port}`, "--ready-max-age", "5s", "--retry-backoff", "500ms"],
        "--log-format",
        "json",
      ],
      { ...s3Env(s3), ETCDCTL_PASSWORD: ETCD_PASSWORD },
    );
  });

  after(async () => {
    await daemon?.stop();
    await proxy?.close();
    await etcd?.destroy();
    await s3?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  test("backs up on schedule, prunes to --keep-last 2, and its metrics match the bucket", async () => {
    await waitFor("four successful runs", async () => {
      const m = await scrape(base);
      return (m.get('etcd_backup_runs_total{result="success"}') ?? 0) >= 4 ? m : undefined;
    });
    const store = storeOf(s3, "daemon");
    // Compare while no run finishes in between: the attempt counters must be the same before and after listing.
    const { metrics, usable } = await quietMetrics(base, store);
    assert.equal(usable.length, 2, "keep-last 2 leaves two backups");
    assert.ok(usable.every((e) => e.state === "complete" && e.cluster === "e2e" && e.encrypted));
    assert.equal(metrics.get("etcd_backup_backups_kept"), usable.length);
    const newest = usable[0]!;
    assert.equal(metrics.get("etcd_backup_stored_bytes"), newest.object!.size);
    assert.equal(metrics.get("etcd_backup_stored_bytes"), newest.manifest!.sizes.stored);
    assert.equal(metrics.get("etcd_backup_db_bytes"), newest.manifest!.dbSize);
    if (newest.manifest!.etcd)
      assert.equal(metrics.get("etcd_backup_revision"), newest.manifest!.etcd.revision);
    const successes = metrics.get('etcd_backup_runs_total{result="success"}')!;
    assert.ok(
      (metrics.get("etcd_backup_pruned_total") ?? 0) >= successes - 2,
      "every backup beyond two was pruned",
    );
    assert.equal(metrics.get('etcd_backup_failures_total{reason="source"}'), 0);
    assert.ok((metrics.get("etcd_backup_last_success_timestamp_seconds") ?? 0) > Date.now() / 1000 - 30);
    assert.equal(
      metrics.get("etcd_backup_duration_seconds_count"),
      metrics.get('etcd_backup_runs_total{result="success"}')! +
        metrics.get('etcd_backup_runs_total{result="failure"}')!,
    );
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    assert.equal((await fetch(`${base}/readyz`)).status, 200);
    // Every run logged with its run id, and verified with the identity.
    const runLines = daemon.lines().filter((l) => l.msg === "verified");
    assert.ok(runLines.length >= 4);
    assert.ok(
      daemon.lines().every((l) => typeof l.runId === "string" && /^[0-9a-f]{6}-\d+$/.test(l.runId as string)),
    );
  });

  test("the status page shows the runs in headless Chromium", async () => {
    const runIds = new Set(
      daemon.lines().flatMap((l) => (l.msg === "run succeeded" ? [l.runId as string] : [])),
    );
    const profile = mkdtempSync(join(tmpdir(), "etcd-backup-chromium-"));
    const browser = await chromium.launchPersistentContext(profile, {
      executablePath: "/usr/bin/chromium",
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    try {
      const page = await browser.newPage();
      const res = await page.goto(`${base}/`);
      assert.equal(res?.status(), 200);
      assert.match(await page.title(), /etcd-backup: e2e/);
      const shown = await page.$$eval("#runs tr.run", (rows) =>
        rows.map((r) => r.getAttribute("data-run-id")),
      );
      for (const id of runIds) assert.ok(shown.includes(id), `run ${id} is on the page`);
      const keys = await page.$$eval("#runs tr.success td.key", (cells) =>
        cells.map((c) => c.textContent ?? ""),
      );
      assert.ok(
        keys.some((k) => /^e2e-\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\.snap\.zst\.age$/.test(k)),
        keys.join(","),
      );
      assert.equal((await page.locator("#db-size-chart circle").count()) >= 4, true);
      assert.equal(await page.locator("#duration-chart path").count(), 1);
      assert.equal(await page.textContent("#state"), "ready");
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, "daemon-status-page.png"), fullPage: true });
      assert.ok(existsSync(join(ARTIFACTS, "daemon-status-page.png")));
    } finally {
      await browser.close();
      rmSync(profile, { recursive: true, force: true });
    }
  });

  test("etcd stopped: runs fail with reason source and /readyz turns 503; restarted on its data dir: back", async () => {
    const before = await scrape(base);
    await etcd.stop();
    proxy.setTarget(null);
    await waitFor("a source failure", async () => {
      const m = await scrape(base);
      return (m.get('etcd_backup_failures_total{reason="source"}') ?? 0) > 0 ? m : undefined;
    });
    await waitFor("/readyz 503", async () =>
      (await fetch(`${base}/readyz`)).status === 503 ? true : undefined,
    );
    const notReady = await (await fetch(`${base}/readyz`)).text();
    assert.match(notReady, /not ready: last successful backup .* ago/);
    const failing = await scrape(base);
    assert.ok(
      failing.get('etcd_backup_runs_total{result="failure"}')! >
        (before.get('etcd_backup_runs_total{result="failure"}') ?? 0),
    );
    const lastSuccess = failing.get("etcd_backup_last_success_timestamp_seconds")!;
    assert.ok((failing.get("etcd_backup_last_attempt_timestamp_seconds") ?? 0) > lastSuccess);

    // etcd has authentication on: the fixture's health check (etcdctl) has to log in.
    process.env.ETCDCTL_USER = `root:${ETCD_PASSWORD}`;
    try {
      etcd = await startEtcd({ dataDir: etcd.dataDir });
    } finally {
      delete process.env.ETCDCTL_USER;
    }
    proxy.setTarget(hostPort(etcd.endpoint));
    await waitFor("/readyz 200 again", async () =>
      (await fetch(`${base}/readyz`)).status === 200 ? true : undefined,
    );
    const back = await scrape(base);
    assert.ok(back.get("etcd_backup_last_success_timestamp_seconds")! > lastSuccess);
    // The failures are on the page too, with their one-line error.
    const html = await (await fetch(`${base}/`)).text();
    assert.match(html, /<tr class="run failure"/);
    assert.match(html, /<span class="reason">source<\/span>/);
  });

  test("SIGTERM: exits 0; no secret in any log line, in /metrics or on the page", async () => {
    const metricsText = await (await fetch(`${base}/metrics`)).text();
    const page = await (await fetch(`${base}/`)).text();
    const code = await daemon.stop();
    assert.equal(code, 0);
    const output = daemon.output();
    assert.match(output, /"msg":"stopped"/);
    assert.ok(daemon.lines().length > 20);
    for (const [what, text] of [
      ["output", output],
      ["metrics", metricsText],
      ["page", page],
    ] as const) {
      for (const secret of [ETCD_PASSWORD, S3_SECRET, identitySecret]) {
        assert.ok(!text.includes(secret), `${what} holds a secret`);
      }
      assert.ok(!/AGE-SECRET-KEY-/.test(text), `${what} holds an age secret key`);
    }
    // Failure reasons stay a closed set.
    const reasons = [...parseMetrics(metricsText).keys()].filter((k) =>
      k.startsWith("etcd_backup_failures_total"),
    );
    assert.deepEqual(reasons.map((k) => /reason="([^"]+)"/.exec(k)![1]).sort(), [
      "aborted",
      "encryption",
      "integrity",
      "other",
      "prune",
      "source",
      "store",
      "test_restore",
      "verify",
    ]);
  });
});

describe("daemon: SIGTERM mid-upload", () => {
  test("aborts the upload: no object without manifest, no multipart upload left, exit 0", async () => {
    const work = mkdtempSync(join(tmpdir(), "etcd-backup-e2e-daemon-term-"));
    const s3 = await startS3Server();
    const etcd = await startEtcd();
    // The snapshot streams slowly through the proxy so that the upload is surely under way when the signal comes.
    const proxy = await startProxy({ bytesPerSecond: 3 * 1024 * 1024 });
    let daemon: ReturnType<typeof spawnDaemon> | undefined;
    try {
      await s3.createBucket("backups");
      await fillKeys(etcd, 3_000, { valueSize: 4096 });
      proxy.setTarget(hostPort(etcd.endpoint));
      const port = await freePort();
      daemon = spawnDaemon(
        [
          ...["--schedule", "*/1 * * * * *", "--cluster", "term"],
          ...["--endpoints", `http://127.0.0.1:${proxy.port}`],
          ...["--to", "s3://backups/term", "--s3-path-style", "--s3-part-size", "5", "--s3-concurrency", "1"],
          ...["--no-encrypt", "--compress", "none"],
          ...["--metrics-addr", `127.0.0.1:${port}`, "--shutdown-grace", "20s", "--log-format", "json"],
        ],
        s3Env(s3),
      );
      const uploads = join(s3.directory, "backups", "._S3rver_uploads");
      await waitFor(
        "a multipart upload with a stored part",
        async () =>
          existsSync(uploads) && readdirSync(uploads).some((id) => readdirSync(join(uploads, id)).length > 0)
            ? true
            : undefined,
        60_000,
      );
      const code = await daemon.stop();
      assert.equal(code, 0, daemon.output());
      const lines = daemon.lines();
      assert.ok(
        lines.some((l) => l.msg === "run aborted; nothing partial was left in the store"),
        daemon.output(),
      );
      assert.ok(!lines.some((l) => l.msg === "run succeeded"), "the run did not complete");
      // Nothing partial: no multipart upload, no object, no marker.
      const left = existsSync(uploads) ? readdirSync(uploads) : [];
      assert.deepEqual(left, [], "no multipart upload left");
      const entries = await listBackups(storeOf(s3, "term"));
      assert.deepEqual(
        entries.map((e) => `${e.key} ${e.state}`),
        [],
      );
      const objects: string[] = [];
      for await (const o of storeOf(s3, "").list("")) objects.push(o.key);
      assert.deepEqual(objects, []);
    } finally {
      await daemon?.stop();
      await proxy.close();
      await etcd.destroy();
      await s3.stop();
      rmSync(work, { recursive: true, force: true });
    }
  });
});
