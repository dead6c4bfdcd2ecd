/**
 * The daemon's scheduling paths, in process against a real etcd and a local store: test restores every Nth run,
 * retries with backoff within the window, and runs skipped while one is in flight. The daemon is the real
 * `Daemon` with its HTTP server; what is asserted is what it exposes (/metrics, the status page, its log lines).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { generateIdentity, identityFileText } from "../../src/age/keys.ts";
import { listBackups } from "../../src/catalog/catalog.ts";
import { LocalStore } from "../../src/store/local.ts";
import { type EtcdServer, fillKeys, startEtcd } from "../fixtures/etcd-server.ts";
import { startInProcessDaemon } from "../fixtures/in-process-daemon.ts";
import { hostPort, scrape, startProxy, waitFor } from "./harness.ts";

let work: string;
let etcd: EtcdServer;

before(async () => {
  work = mkdtempSync(join(tmpdir(), "etcd-backup-daemon-runs-"));
  etcd = await startEtcd();
  await fillKeys(etcd, 300);
});
after(async () => {
  await etcd?.destroy();
  rmSync(work, { recursive: true, force: true });
});

const metric = (m: Map<string, number>, name: string) => m.get(name) ?? Number.NaN;

test("--test-restore-every 2: the 2nd run restores into a real etcd; the metric, the log and the page show it", async () => {
  const id = generateIdentity();
  const identityFile = join(work, "identity.txt");
  writeFileSync(identityFile, identityFileText(id), { mode: 0o600 });
  const d = await startInProcessDaemon({
    schedule: "*/2 * * * * *",
    cluster: "restore",
    endpoints: [etcd.endpoint],
    to: join(work, "restore-store"),
    recipient: [id.recipient],
    identity: [identityFile],
    testRestoreEvery: 2,
    retryBackoff: "100ms",
  });
  try {
    const before = await scrape(d.base);
    assert.equal(metric(before, 'etcd_backup_test_restore_total{result="passed"}'), 0);
    assert.equal(metric(before, 'etcd_backup_test_restore_total{result="failed"}'), 0);
    const m = await waitFor(
      "a test restore",
      async () => {
        const m = await scrape(d.base);
        return metric(m, 'etcd_backup_test_restore_total{result="passed"}') >= 1 ? m : undefined;
      },
      40_000,
    );
    assert.equal(metric(m, 'etcd_backup_test_restore_total{result="failed"}'), 0);
    assert.ok(metric(m, 'etcd_backup_runs_total{result="success"}') >= 2);
    // Run 1 did not restore, run 2 did: the restored etcd answered with the backup's revision and keys.
    const started = (runId: string) => d.lines.find((l) => l.runId === runId && l.msg === "run started");
    assert.equal(started("t-1")?.testRestore, false);
    assert.equal(started("t-2")?.testRestore, true);
    const restored = d.lines.filter((l) => l.msg === "test restore passed");
    assert.deepEqual(
      restored.map((l) => l.runId),
      ["t-2"],
    );
    assert.ok((restored[0]!.keys as number) >= 300, `keys ${restored[0]!.keys}`);
    assert.ok((restored[0]!.revision as number) > 1);
    const html = await (await fetch(`${d.base}/`)).text();
    assert.match(html, /test restore passed/);
  } finally {
    await d.stop();
  }
});

test("a failed attempt is retried with backoff before the next run; one failure and one success counted", async () => {
  const proxy = await startProxy();
  // etcd is unreachable for the first attempt; the retry finds it (the proxy is pointed at it as the daemon logs
  // the failure, before its backoff sleep starts).
  const d = await startInProcessDaemon(
    {
      schedule: "*/6 * * * * *",
      cluster: "retry",
      endpoints: [`http://127.0.0.1:${proxy.port}`],
      dialTimeout: "1s",
      to: join(work, "retry-store"),
      encrypt: false,
      retryBackoff: "300ms",
    },
    {
      onLine: (l) => {
        if (l.msg === "run failed; retrying") proxy.setTarget(hostPort(etcd.endpoint));
      },
    },
  );
  try {
    const m = await waitFor(
      "a successful run",
      async () => {
        const m = await scrape(d.base);
        return metric(m, 'etcd_backup_runs_total{result="success"}') >= 1 ? m : undefined;
      },
      30_000,
    );
    assert.equal(metric(m, 'etcd_backup_runs_total{result="success"}'), 1);
    assert.equal(metric(m, 'etcd_backup_runs_total{result="failure"}'), 1);
    assert.equal(metric(m, 'etcd_backup_failures_total{reason="source"}'), 1);
    const run = d.lines.filter((l) => l.runId === "t-1");
    const failed = run.find((l) => l.msg === "run failed; retrying");
    assert.ok(failed, JSON.stringify(run));
    assert.equal(failed.attempt, 1);
    assert.equal(failed.retryIn, "300ms");
    const ok = run.find((l) => l.msg === "run succeeded");
    assert.equal(ok?.attempt, 2, "the retry, within the same run");
    // The retry belongs to the same scheduled time and finished before the next one (6 s later).
    const attempts = run.filter((l) => l.msg === "run started");
    assert.deepEqual(
      attempts.map((l) => l.attempt),
      [1, 2],
    );
    assert.equal(attempts[0]!.scheduledAt, attempts[1]!.scheduledAt);
    const scheduled = Date.parse(attempts[0]!.scheduledAt as string);
    assert.ok(Date.parse(ok.time as string) < scheduled + 6000);
    assert.ok(Date.parse(attempts[1]!.time as string) - Date.parse(failed.time as string) >= 300);
    assert.equal(d.lines.filter((l) => l.runId === "t-2" && l.msg === "run started").length, 0);
    // Exactly one backup stored: the failed attempt left nothing.
    const entries = await listBackups(new LocalStore(join(work, "retry-store")));
    assert.equal(entries.filter((e) => e.kind === "snapshot").length, 1);
    const html = await (await fetch(`${d.base}/`)).text();
    assert.match(html, /<tr class="run failure"/);
    assert.match(html, /success \(retry 1\)|retry 1/);
    // The same facts for scripts at /status.json (the operator serves its own there too).
    const res = await fetch(`${d.base}/status.json`);
    assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
    const status = (await res.json()) as { cluster: string; runs: { result: string; attempt: number }[] };
    assert.equal(status.cluster, "retry");
    assert.deepEqual(
      status.runs.map((r) => [r.result, r.attempt]),
      [
        ["failure", 1],
        ["success", 2],
      ],
    );
  } finally {
    await d.stop();
    await proxy.close();
  }
});

test("a run still in flight when the next is due: that run is skipped and counted", async () => {
  const big = await startEtcd();
  try {
    await fillKeys(big, 1500, { valueSize: 1024 });
    const status = JSON.parse(await big.ctl(["endpoint", "status", "-w", "json"])) as {
      Status: { dbSize: number };
    }[];
    const dbSize = status[0]!.Status.dbSize;
    // The snapshot takes about 3.5 s through the proxy; the schedule fires every second.
    const proxy = await startProxy({ bytesPerSecond: Math.ceil(dbSize / 3.5) });
    proxy.setTarget(hostPort(big.endpoint));
    const d = await startInProcessDaemon({
      schedule: "* * * * * *",
      cluster: "slow",
      endpoints: [`http://127.0.0.1:${proxy.port}`],
      to: join(work, "slow-store"),
      encrypt: false,
    });
    try {
      assert.equal(metric(await scrape(d.base), "etcd_backup_skipped_runs_total"), 0);
      const m = await waitFor(
        "a run that outlasted the schedule",
        async () => {
          const m = await scrape(d.base);
          return metric(m, "etcd_backup_skipped_runs_total") > 0 ? m : undefined;
        },
        30_000,
      );
      assert.ok(metric(m, "etcd_backup_skipped_runs_total") >= 2, `skipped ${[...m]}`);
      const first = d.lines.filter((l) => l.runId === "t-1");
      const done = first.find((l) => l.msg === "run succeeded");
      assert.ok(done, JSON.stringify(first));
      assert.ok((done.seconds as number) >= 2, `the run took ${done.seconds} s`);
      const skipped = d.lines.find((l) => l.msg === "scheduled runs skipped: a run was still in flight");
      assert.equal(skipped?.skipped, metric(m, "etcd_backup_skipped_runs_total"));
      // Never two runs at once: the next run starts after the first one ended, at a later scheduled time.
      const next = d.lines.find((l) => l.runId === "t-2" && l.msg === "run started");
      if (next) assert.ok(Date.parse(next.time as string) >= Date.parse(done.time as string));
    } finally {
      await d.stop();
      await proxy.close();
    }
  } finally {
    await big.destroy();
  }
});
