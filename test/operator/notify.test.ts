/**
 * An EtcdBackupSchedule's `spec.notify`, through the ScheduleController (with an in-memory fake of the few Kube
 * calls that keeps what is written, as the API server would) and the resolve path (the URL read from a Secret),
 * to a real webhook receiver on a loopback port: one failure event per episode, one success, one stale event
 * for a missed schedule, nothing told twice across reconciles; a missing Secret is a Warning Event; no URL in
 * any Event, status or log.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Redactor } from "../../src/observability/redact.ts";
import type { EtcdBackup, EtcdBackupSchedule } from "../../src/operator/api.ts";
import { EventRecorder } from "../../src/operator/events.ts";
import { type Kube, KubeError } from "../../src/operator/kube.ts";
import { OperatorMetrics } from "../../src/operator/metrics.ts";
import { runOperator } from "../../src/operator/operator.ts";
import { ScheduleController } from "../../src/operator/schedule-controller.ts";
import { freePort } from "../fixtures/ports.ts";
import { assertNoSecrets } from "../fixtures/secrets.ts";
import { startWebhookReceiver, type WebhookReceiver } from "../fixtures/webhook-receiver.ts";
import { backupSpec, type Harness, quietLog, startHarness, waitFor } from "./harness.ts";

// biome-ignore lint/suspicious/noExplicitAny: a loose in-memory store of API objects
type Loose = Record<string, any>;

const receivers: WebhookReceiver[] = [];
after(async () => {
  for (const r of receivers) await r.close();
});

/** Schedules (with their status kept across patches), Secrets, and the Events written. */
function memoryKube(schedule: Loose, secrets: Record<string, Record<string, Buffer>>) {
  const events: Loose[] = [];
  const kube = {
    async get(_plural: string, _ns: string, name: string) {
      if (name !== schedule.metadata.name) throw new KubeError("not found", 404, "NotFound");
      return structuredClone(schedule);
    },
    async patch(_plural: string, _ns: string, _name: string, body: Loose) {
      schedule.status = { ...schedule.status, ...body.status };
      return structuredClone(schedule);
    },
    async create(_plural: string, _ns: string, body: Loose) {
      return body;
    },
    async delete() {},
    async createEvent(_ns: string, body: Loose) {
      events.push(body);
    },
    async secret(_ns: string, name: string) {
      return secrets[name] ?? null;
    },
    async configMap() {
      return null;
    },
  };
  return { kube: kube as unknown as Kube, events };
}

const HOUR = 3_600_000;

function schedule(notify: Loose): EtcdBackupSchedule {
  return {
    apiVersion: "etcd-backup.dev/v1alpha1",
    kind: "EtcdBackupSchedule",
    metadata: {
      name: "hourly",
      namespace: "ns",
      uid: "u1",
      generation: 1,
      creationTimestamp: new Date(Date.now() - 30 * 60_000).toISOString(),
    },
    spec: {
      schedule: "0 * * * *",
      notify,
      template: {
        spec: {
          clusterName: "prod",
          source: { etcd: { endpoints: ["http://127.0.0.1:1"] } },
          destination: { s3: { bucket: "backups", prefix: "etcd" } },
          encryption: { none: true },
        },
      },
    },
  } as EtcdBackupSchedule;
}

function child(
  name: string,
  phase: "Succeeded" | "Failed",
  completedAgoMs: number,
  extra: Loose = {},
): EtcdBackup {
  const completion = new Date(Date.now() - completedAgoMs);
  return {
    apiVersion: "etcd-backup.dev/v1alpha1",
    kind: "EtcdBackup",
    metadata: {
      name,
      namespace: "ns",
      labels: { "etcd-backup.dev/schedule": "hourly" },
      ownerReferences: [
        { apiVersion: "etcd-backup.dev/v1alpha1", kind: "EtcdBackupSchedule", name: "hourly", uid: "u1" },
      ],
    },
    spec: {} as EtcdBackup["spec"],
    status: {
      phase,
      startTime: new Date(completion.getTime() - 2000).toISOString(),
      completionTime: completion.toISOString(),
      ...(phase === "Failed"
        ? {
            failedAttempts: 1,
            conditions: [
              {
                type: "Failed",
                status: "True",
                reason: "SourceUnreachable",
                message: "cannot snapshot etcd at 127.0.0.1:1: connection refused",
                lastTransitionTime: completion.toISOString(),
              },
            ],
          }
        : { key: `etcd/prod-${name}.snap.zst`, storedSize: 4096, revision: 42 }),
      ...extra,
    },
  } as EtcdBackup;
}

async function setup(on: string[], secretPresent = true) {
  const receiver = await startWebhookReceiver();
  receivers.push(receiver);
  const s = schedule({ urlsFrom: [{ secretKeyRef: { name: "hooks", key: "url" } }], on });
  const { kube, events } = memoryKube(
    s,
    secretPresent ? { hooks: { url: Buffer.from(`${receiver.url}\n`) } } : {},
  );
  const log = quietLog();
  const redactor = new Redactor();
  const backups: EtcdBackup[] = [];
  const metrics = new OperatorMetrics();
  const controller = new ScheduleController({
    kube,
    reader: kube,
    events: new EventRecorder(kube, "test", log, undefined, redactor),
    metrics,
    log,
    redactor,
    backups: () => backups,
  });
  const signal = new AbortController().signal;
  const reconcile = async () => {
    const after = await controller.reconcile("ns/hourly", signal);
    await controller.settled();
    return after;
  };
  const kinds = () => receiver.delivered().map((r) => r.json!.event);
  return { receiver, s, events, backups, reconcile, kinds, metrics };
}

describe("EtcdBackupSchedule spec.notify", () => {
  test("one failure event per episode, then one success; nothing told twice; no URL anywhere", async () => {
    const t = await setup(["success", "failure"]);
    await t.reconcile(); // notifications start now: nothing earlier is news
    assert.deepEqual(t.kinds(), []);
    t.backups.push(child("hourly-1", "Failed", -1000));
    await t.reconcile();
    await t.reconcile();
    t.backups.push(child("hourly-2", "Failed", -2000, { failedAttempts: 2 }));
    await t.reconcile();
    assert.deepEqual(t.kinds(), ["failure"], "one failure for the episode, across reconciles and runs");
    const failure = t.receiver.delivered()[0]!.json!;
    assert.equal(failure.cluster, "prod");
    assert.equal(failure.namespace, "ns");
    assert.equal(failure.schedule, "hourly");
    assert.equal(failure.origin, "operator");
    assert.match(String(failure.error), /connection refused/);
    t.backups.push(child("hourly-3", "Succeeded", -3000));
    await t.reconcile();
    await t.reconcile();
    assert.deepEqual(t.kinds(), ["failure", "success"]);
    const success = t.receiver.delivered()[1]!.json!;
    assert.equal(success.backup, "etcd/prod-hourly-3.snap.zst");
    assert.equal(success.sizeBytes, 4096);
    assert.equal(success.durationSeconds, 2);
    // A new failure after the success is a new episode.
    t.backups.push(child("hourly-4", "Failed", -4000));
    await t.reconcile();
    assert.deepEqual(t.kinds(), ["failure", "success", "failure"]);
    assert.equal(t.s.status?.notification?.lastSuccessNotified, "hourly-3");
    assertNoSecrets(JSON.stringify([t.s, t.events]), "the schedule's status and Events");
    const m = await t.metrics.registry.metrics();
    assert.match(m, /etcd_backup_notifications_total\{event="failure",result="sent"\} 2/);
  });

  test("a missed schedule: one stale event after twice the interval, counted from the last success", async () => {
    const t = await setup(["stale"]);
    t.s.metadata.creationTimestamp = new Date(Date.now() - 5 * HOUR).toISOString();
    const wake = await t.reconcile();
    await t.reconcile();
    assert.deepEqual(t.kinds(), ["stale"]);
    const stale = t.receiver.delivered()[0]!.json!;
    assert.equal(stale.staleAfterSeconds, 7200);
    assert.equal(stale.lastSuccess, undefined);
    assert.ok(wake !== undefined);
    // A success an hour ago ends the episode; the next stale check is due in about an hour.
    t.backups.push(child("hourly-9", "Succeeded", HOUR));
    const next = await t.reconcile();
    assert.deepEqual(t.kinds(), ["stale"]);
    assert.ok(next !== undefined && next <= HOUR + 2000, String(next));
    // Three hours after it: stale again, once.
    t.backups.splice(0, 1, child("hourly-9", "Succeeded", 3 * HOUR));
    await t.reconcile();
    await t.reconcile();
    assert.deepEqual(t.kinds(), ["stale", "stale"]);
    assert.equal(t.receiver.delivered()[1]!.json!.lastSuccess, t.backups[0]!.status!.completionTime);
  });

  test("the Secret missing: a Warning Event NotificationFailed naming the Secret, the schedule still reconciles", async () => {
    const t = await setup(["failure"], false);
    await t.reconcile();
    t.backups.push(child("hourly-1", "Failed", -1000));
    await t.reconcile();
    const warning = t.events.find((e) => e.reason === "NotificationFailed");
    assert.ok(warning, JSON.stringify(t.events));
    assert.match(warning.message, /Secret ns\/hooks \(spec\.notify\.urlsFrom\[0\]\) not found/);
    assert.equal(t.receiver.requests.length, 0);
  });
});

describe("spec.notify through the running operator (API server stand-in, real etcd and S3)", () => {
  let h: Harness;
  let stop: AbortController;
  let running: Promise<void>;

  before(async () => {
    h = await startHarness();
    stop = new AbortController();
    running = runOperator(
      {
        kube: h.kube,
        namespace: "default",
        maxConcurrent: 2,
        identity: "test-operator",
        metrics: new OperatorMetrics(),
        log: quietLog(),
        retryBaseMs: 200,
        watchTimeoutSeconds: 5,
      },
      stop.signal,
    );
  });
  after(async () => {
    stop.abort();
    await running;
    await h.stop(); // scans every Event and status the operator wrote for known secrets (the token path too)
  });

  test("etcd unreachable: exactly one failure event over several failing runs; etcd reachable: one success", async () => {
    const receiver = await startWebhookReceiver();
    receivers.push(receiver);
    h.api.put("secrets", "default", {
      metadata: { name: "webhooks", namespace: "default" },
      type: "Opaque",
      data: { urls: Buffer.from(`# the team's channel\n${receiver.url}\n`).toString("base64") },
    });
    const dead = `http://127.0.0.1:${await freePort()}`;
    const spec = (endpoint: string) => ({
      schedule: "*/2 * * * * *",
      concurrencyPolicy: "Forbid",
      notify: { urlsFrom: [{ secretKeyRef: { name: "webhooks", key: "urls" } }], on: ["success", "failure"] },
      template: {
        spec: backupSpec(h, {
          clusterName: "notified",
          backoffLimit: 0,
          source: { etcd: { endpoints: [endpoint], dialTimeoutSeconds: 1 } },
        }),
      },
    });
    h.api.put("etcdbackupschedules", "default", {
      apiVersion: "etcd-backup.dev/v1alpha1",
      kind: "EtcdBackupSchedule",
      metadata: { name: "notified", namespace: "default" },
      spec: spec(dead),
    });
    const failedRuns = () =>
      h.api
        .list("etcdbackups", "default")
        .filter((b) => b.metadata.name.startsWith("notified-") && (b as Loose).status?.phase === "Failed")
        .length;
    await waitFor("three failed runs", () => (failedRuns() >= 3 ? true : undefined), 40_000);
    await new Promise((r) => setTimeout(r, 1000));
    const kinds = () => receiver.delivered().map((r) => r.json!.event);
    assert.deepEqual(kinds(), ["failure"], "one failure event for the episode");
    const failure = receiver.delivered()[0]!.json!;
    assert.equal(failure.cluster, "notified");
    assert.equal(failure.schedule, "notified");
    assert.match(String(failure.error), /cannot snapshot|connect/);

    const current = h.api.get("etcdbackupschedules", "default", "notified") as Loose;
    h.api.put("etcdbackupschedules", "default", { ...current, spec: spec(h.etcd.endpoint) } as never);
    await waitFor("a success event", () => (kinds().includes("success") ? true : undefined), 40_000);
    h.api.put("etcdbackupschedules", "default", {
      ...(h.api.get("etcdbackupschedules", "default", "notified") as Loose),
      spec: { ...spec(h.etcd.endpoint), suspend: true },
    } as never);
    assert.equal(kinds().filter((k) => k === "failure").length, 1);
    const success = receiver.delivered().find((r) => r.json!.event === "success")!.json!;
    assert.match(String(success.backup), /^clusters\/demo\/notified-/);
    assert.ok(Number(success.sizeBytes) > 0);
  });
});
