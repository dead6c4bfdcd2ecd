/**
 * The operator's status page (`/` and `/status.json` on --metrics-addr), through the operator harness: the
 * Kubernetes API server STAND-IN, a real etcd and a real S3 server (s3rver). Two clusters backed up by one
 * operator: "healthy" (the real etcd) and "down" (an etcd endpoint on a loopback port nothing listens on), plus a
 * backup whose clusterName is hostile HTML. The page groups by cluster with the right counts and phases, shows the
 * down cluster's failure reason and backoff, escapes the hostile name, holds no secret, and is built from the
 * informer caches (no API request per page view).
 */
import assert from "node:assert/strict";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { createHttpServer, listen } from "../../../src/daemon/http.ts";
import { Redactor } from "../../../src/observability/redact.ts";
import { OperatorMetrics } from "../../../src/operator/metrics.ts";
import { runOperator } from "../../../src/operator/operator.ts";
import { type OperatorStatus, OperatorStatusBoard } from "../../../src/operator/status/board.ts";
import { operatorHttpHandlers } from "../../../src/operator/status/http-handlers.ts";
import { freePort } from "../../fixtures/ports.ts";
import { assertNoSecrets, registerSecret } from "../../fixtures/secrets.ts";
import { backupSpec, type Harness, quietLog, startHarness, waitFor } from "../harness.ts";

const NS = "default";
const HOSTILE = `<script>alert("x")</script>`;
type Obj = { status?: { phase?: string } };

describe("operator status page: two clusters, one down, one hostile name", () => {
  let h: Harness;
  let stop: AbortController;
  let running: Promise<void>;
  let server: Server;
  let base: string;
  let board: OperatorStatusBoard;

  before(async () => {
    h = await startHarness();
    registerSecret(h.s3.secretAccessKey, "the test S3 server's secret key");
    const redactor = new Redactor().add(h.s3.secretAccessKey);
    const metrics = new OperatorMetrics();
    board = new OperatorStatusBoard(redactor);
    stop = new AbortController();
    running = runOperator(
      {
        kube: h.kube,
        namespace: NS,
        maxConcurrent: 2,
        identity: "test-operator",
        metrics,
        log: quietLog(),
        redactor,
        // The gate's backoff after an unreachable run: long enough to be seen on the page.
        retryBaseMs: 120_000,
        watchTimeoutSeconds: 60,
        status: board,
      },
      stop.signal,
    );
    server = createHttpServer(operatorHttpHandlers({ metrics, leading: () => true, redactor, board }));
    const addr: AddressInfo = await listen(server, "127.0.0.1", 0);
    base = `http://127.0.0.1:${addr.port}`;
  });
  after(async () => {
    stop?.abort();
    await running;
    server?.close();
    server?.closeAllConnections();
    await h?.stop();
  });

  const backup = (name: string, spec: Record<string, unknown>) =>
    h.api.put("etcdbackups", NS, {
      apiVersion: "etcd-backup.dev/v1alpha1",
      kind: "EtcdBackup",
      metadata: { name, namespace: NS },
      spec,
    });
  const schedule = (name: string, spec: Record<string, unknown>) =>
    h.api.put("etcdbackupschedules", NS, {
      apiVersion: "etcd-backup.dev/v1alpha1",
      kind: "EtcdBackupSchedule",
      metadata: { name, namespace: NS },
      spec,
    });
  const phase = (name: string) => (h.api.get("etcdbackups", NS, name) as Obj | undefined)?.status?.phase;
  const getJson = async (): Promise<OperatorStatus> => {
    const res = await fetch(`${base}/status.json`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
    return (await res.json()) as OperatorStatus;
  };

  it("groups by cluster, shows the down cluster's failure and backoff, escapes, holds no secret", async () => {
    const downEndpoint = `127.0.0.1:${await freePort()}`;
    const healthy = backupSpec(h, { clusterName: "healthy", backoffLimit: 0 });
    const down = backupSpec(h, {
      clusterName: "down",
      backoffLimit: 0,
      source: { etcd: { endpoints: [downEndpoint], dialTimeoutSeconds: 2 } },
    });
    schedule("healthy-nightly", {
      schedule: "0 3 * * *",
      retention: { keepLast: 7, keepWithin: "7d" },
      template: { spec: healthy },
    });
    schedule("down-nightly", { schedule: "0 3 * * *", suspend: true, template: { spec: down } });
    backup("healthy-a", healthy);
    backup("healthy-b", healthy);
    backup("down-a", down);
    backup("hostile", { ...healthy, clusterName: HOSTILE });
    for (const [name, want] of [
      ["healthy-a", "Succeeded"],
      ["healthy-b", "Succeeded"],
      ["down-a", "Failed"],
      ["hostile", "Failed"],
    ] as const) {
      const got = await waitFor(
        `${name} to end`,
        () => {
          const p = phase(name);
          return p === "Succeeded" || p === "Failed" ? p : undefined;
        },
        60_000,
      );
      assert.equal(got, want, `${name} ended ${got}`);
    }
    // The caches follow the API server through the watch: wait until the page has every backup's end.
    const status = await waitFor("the page to show every backup's end", async () => {
      const s = await getJson();
      const ended = s.clusters
        .flatMap((c) => c.latestBackups)
        .filter((b) => b.phase !== "Pending" && b.phase !== "Running");
      return ended.length === 4 && s.clusters.find((c) => c.name === "healthy")?.schedules[0]?.nextRunTime
        ? s
        : undefined;
    });

    assert.equal(status.role, "leader");
    assert.deepEqual(
      status.clusters.map((c) => c.name),
      [HOSTILE, "down", "healthy"],
      "one group per cluster name",
    );
    const byName = new Map(status.clusters.map((c) => [c.name, c]));

    const up = byName.get("healthy");
    assert.ok(up);
    assert.deepEqual(up.counts, { Pending: 0, Running: 0, Succeeded: 2, Failed: 0 });
    assert.deepEqual(up.latestBackups.map((b) => b.name).sort(), ["healthy-a", "healthy-b"]);
    for (const b of up.latestBackups) {
      assert.equal(b.phase, "Succeeded");
      assert.equal(b.location, `s3://${h.bucket}`);
      assert.match(b.key ?? "", /^clusters\/demo\/healthy-/, "the key under the destination's prefix");
      assert.ok((b.dbSize ?? 0) > 0 && (b.storedSize ?? 0) > 0, "sizes shown");
      assert.ok((b.revision ?? 0) > 1, "revision shown");
      assert.equal(b.failure, undefined);
    }
    assert.equal(up.backingOff, undefined, "the healthy cluster is not backing off");
    assert.deepEqual(up.failures, []);
    assert.equal(up.schedules.length, 1);
    const nightly = up.schedules[0];
    assert.equal(nightly?.name, "healthy-nightly");
    assert.equal(nightly?.schedule, "0 3 * * *");
    assert.equal(nightly?.suspended, false);
    assert.equal(nightly?.retention, "keepLast 7, keepWithin 7d");
    assert.ok(Date.parse(nightly?.nextRunTime ?? "") > Date.now(), "next run in the future");

    const dn = byName.get("down");
    assert.ok(dn);
    assert.deepEqual(dn.counts, { Pending: 0, Running: 0, Succeeded: 0, Failed: 1 });
    assert.equal(dn.failures.length, 1);
    assert.equal(dn.failures[0]?.name, "down-a");
    assert.equal(dn.failures[0]?.failure?.reason, "SourceUnreachable");
    assert.ok(dn.failures[0]?.failure?.message.includes(downEndpoint), dn.failures[0]?.failure?.message);
    assert.ok(!dn.failures[0]?.failure?.message.includes("\n"), "the reason is one line");
    assert.equal(dn.backingOff?.failures, 1, "the down cluster is backing off after one unreachable run");
    assert.ok(Date.parse(dn.backingOff?.until ?? "") > Date.now(), "until a time to come");
    assert.equal(dn.schedules[0]?.name, "down-nightly");
    assert.equal(dn.schedules[0]?.suspended, true);
    assert.equal(dn.schedules[0]?.nextRunTime, undefined, "a suspended schedule has no next run");

    const hostile = byName.get(HOSTILE);
    assert.equal(hostile?.failures[0]?.failure?.reason, "InvalidSpec");

    const res = await fetch(`${base}/`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/html/);
    assert.match(res.headers.get("content-security-policy") ?? "", /default-src 'none'/);
    const html = await res.text();
    assert.ok(!/<script/i.test(html), "no script element: the hostile name is escaped");
    assert.ok(
      html.includes("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"),
      "the hostile name shown escaped",
    );
    for (const name of ["healthy", "down", "healthy-nightly", "down-a", "SourceUnreachable", downEndpoint]) {
      assert.ok(html.includes(name), `the page shows ${name}`);
    }
    assert.match(html, /backing off until \d{4}-\d\d-\d\dT[\d:]+Z after 1 unreachable run/);
    assert.match(html, /backups: 2 succeeded, 0 failed, 0 running, 0 pending/);

    const json = await (await fetch(`${base}/status.json`)).text();
    assertNoSecrets(html, "the operator status page");
    assertNoSecrets(json, "the operator status JSON");
    assert.ok(!html.includes(h.s3.secretAccessKey) && !json.includes(h.s3.secretAccessKey));

    // Rendered from the caches: twenty page views make no request to the API server.
    const lists = () => h.api.requests.filter((r) => r.method === "GET").length;
    const before = lists();
    for (let i = 0; i < 10; i++) {
      await (await fetch(`${base}/`)).text();
      await (await fetch(`${base}/status.json`)).text();
    }
    assert.equal(lists(), before, "no GET to the API server while serving the page");
  });

  it("serves /metrics, /healthz and /readyz on the same address", async () => {
    assert.equal(await (await fetch(`${base}/healthz`)).text(), "ok\n");
    assert.equal(await (await fetch(`${base}/readyz`)).text(), "leader\n");
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(
      metrics,
      /etcd_backup_runs_total\{namespace="default",cluster="healthy",result="success"\} 2/,
    );
    assertNoSecrets(metrics, "the operator metrics");
  });
});
