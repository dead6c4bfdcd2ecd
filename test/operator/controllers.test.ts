/**
 * The loops around the decisions, with a recording fake of the few Kube calls (no server): how each action's
 * API answer is handled (a lost claim, an object gone, a name taken, a store that refuses), and that what is
 * written passes the redactor. The decisions themselves are in decisions.test.ts; the loops against the API
 * server stand-in in operator.test.ts and sources.test.ts.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Redactor } from "../../src/observability/redact.ts";
import { DELETE_FINALIZER, type EtcdBackup, type EtcdBackupSchedule } from "../../src/operator/api.ts";
import { BackupController } from "../../src/operator/backup-controller.ts";
import { EventRecorder } from "../../src/operator/events.ts";
import { type Kube, KubeError } from "../../src/operator/kube.ts";
import { OperatorMetrics } from "../../src/operator/metrics.ts";
import { ScheduleController } from "../../src/operator/schedule-controller.ts";
import { quietLog } from "./harness.ts";

// biome-ignore lint/suspicious/noExplicitAny: recorded request bodies are checked field by field
type Loose = Record<string, any>;

const SECRET = "sk-test-0123456789abcdef";

/** Records every call; `fail` makes a call (by name) throw once. */
function fakeKube(objects: Record<string, Loose>) {
  const calls: { call: string; name?: string; body?: Loose }[] = [];
  const events: Loose[] = [];
  const fail: Record<string, Error> = {};
  const failing = (call: string) => {
    const err = fail[call];
    delete fail[call];
    if (err) throw err;
  };
  const kube = {
    async get(_plural: string, _ns: string, name: string) {
      calls.push({ call: "get", name });
      failing("get");
      const o = objects[name];
      if (!o) throw new KubeError("not found", 404, "NotFound");
      return structuredClone(o);
    },
    async patch(_plural: string, _ns: string, name: string, body: Loose, status = false) {
      calls.push({ call: status ? "patchStatus" : "patch", name, body });
      failing(status ? "patchStatus" : "patch");
      const o = objects[name]!;
      return { ...o, ...body, metadata: { ...o.metadata, ...body.metadata, resourceVersion: "99" } };
    },
    async create(_plural: string, _ns: string, body: Loose) {
      calls.push({ call: "create", name: body.metadata.name, body });
      failing("create");
      return body;
    },
    async delete(_plural: string, _ns: string, name: string) {
      calls.push({ call: "delete", name });
      failing("delete");
    },
    async createEvent(_ns: string, body: Loose) {
      events.push(body);
    },
    async secret() {
      return null;
    },
    async configMap() {
      return null;
    },
  };
  return { kube: kube as unknown as Kube & typeof kube, calls, events, fail };
}

function setup(objects: Record<string, Loose>, backups: EtcdBackup[] = []) {
  const f = fakeKube(objects);
  const log = quietLog();
  const redactor = new Redactor().add(SECRET);
  const events = new EventRecorder(f.kube, "test", log, undefined, redactor);
  const metrics = new OperatorMetrics();
  const common = { kube: f.kube, reader: f.kube, events, metrics, log, redactor };
  return {
    ...f,
    metrics,
    backups: new BackupController({ ...common, retryBaseMs: 1_000 }),
    schedules: new ScheduleController({ ...common, backups: () => backups }),
  };
}

const spec = (extra: Loose = {}) => ({
  clusterName: "prod",
  source: { etcd: { endpoints: ["http://127.0.0.1:1"] } },
  destination: { s3: { bucket: "backups", credentialsSecretRef: { name: "creds" } } },
  encryption: { none: true },
  ...extra,
});
const backup = (metadata: Loose = {}, extra: Loose = {}): Loose => ({
  apiVersion: "etcd-backup.dev/v1alpha1",
  kind: "EtcdBackup",
  metadata: { name: "b1", namespace: "ns", generation: 1, resourceVersion: "5", ...metadata },
  spec: spec(),
  ...extra,
});
const signal = new AbortController().signal;
const runs = async (m: OperatorMetrics) =>
  (await m.backups.get()).values.map((v) => [v.labels.result, v.value]);

describe("BackupController applies decisions", () => {
  test("a lost claim (409) ends the reconcile: look again at once, no Event, no run, nothing counted", async () => {
    const t = setup({ b1: backup() });
    t.fail.patchStatus = new KubeError("conflict", 409, "Conflict");
    assert.equal(await t.backups.reconcile("ns/b1", signal), 0);
    assert.deepEqual(
      t.calls.map((c) => c.call),
      ["get", "patchStatus"],
    );
    assert.equal(t.calls[1]!.body?.metadata.resourceVersion, "5", "the claim is conditional");
    assert.deepEqual(t.events, []);
    assert.deepEqual(await runs(t.metrics), []);
  });

  test("the finalizer is added before the claim, and the claim is conditional on the patched object", async () => {
    const t = setup({ b1: backup({}, { spec: spec({ deletionPolicy: "Delete" }) }) });
    t.fail.patchStatus = new KubeError("conflict", 409, "Conflict");
    assert.equal(await t.backups.reconcile("ns/b1", signal), 0);
    assert.deepEqual(t.calls[1]!.body?.metadata, { finalizers: [DELETE_FINALIZER], resourceVersion: "5" });
    assert.equal(t.calls[2]!.body?.metadata.resourceVersion, "99");
  });

  test("an invalid spec: one Failed write, a Warning Event, counted as a failure; no retry", async () => {
    const t = setup({ b1: backup({}, { spec: spec({ destination: { s3: { bucket: "-" } } }) }) });
    assert.equal(await t.backups.reconcile("ns/b1", signal), undefined);
    const writes = t.calls.filter((c) => c.call === "patchStatus");
    assert.equal(writes.length, 1);
    assert.equal(writes[0]!.body?.status.phase, "Failed");
    assert.deepEqual(
      t.events.map((e) => [e.type, e.reason]),
      [["Warning", "InvalidSpec"]],
    );
    assert.deepEqual(await runs(t.metrics), [["failure", 1]]);
  });

  test("a run that fails (Secret missing): Failed SecretNotFound, retried after the backoff", async () => {
    const t = setup({ b1: backup() });
    const after = await t.backups.reconcile("ns/b1", signal);
    assert.ok(after !== undefined && after > 1_000 && after <= 2_000, String(after));
    const last = t.calls.filter((c) => c.call === "patchStatus").at(-1)!.body!.status;
    assert.equal(last.phase, "Failed");
    assert.equal(last.failedAttempts, 1);
    assert.equal(last.conditions.find((c: Loose) => c.type === "Failed").reason, "SecretNotFound");
    assert.deepEqual(
      t.events.map((e) => e.reason),
      ["BackupStarted", "SecretNotFound"],
    );
    assert.deepEqual(await runs(t.metrics), [["failure", 1]]);
  });

  test("deletion when the store cannot be reached: DeleteFailed Event naming the reason, finalizer kept, error for the queue", async () => {
    const t = setup({
      b1: backup(
        { deletionTimestamp: "2026-03-10T10:00:00Z", finalizers: [DELETE_FINALIZER] },
        {
          spec: spec({ deletionPolicy: "Delete" }),
          status: { phase: "Succeeded", key: "k", manifestKey: "k.json" },
        },
      ),
    });
    await assert.rejects(t.backups.reconcile("ns/b1", signal), /Secret ns\/creds/);
    assert.deepEqual(
      t.events.map((e) => [e.type, e.reason]),
      [["Warning", "DeleteFailed"]],
    );
    assert.match(t.events[0]!.message, /cannot delete the stored backup \(SecretNotFound\)/);
    assert.ok(!t.calls.some((c) => c.call === "patch"), "the finalizer stays");
  });

  test("deletion of an object gone meanwhile (404 on the finalizer patch): done, no error", async () => {
    const t = setup({
      b1: backup(
        { deletionTimestamp: "2026-03-10T10:00:00Z", finalizers: [DELETE_FINALIZER] },
        { status: { phase: "Failed" } },
      ),
    });
    t.fail.patch = new KubeError("gone", 404, "NotFound");
    assert.equal(await t.backups.reconcile("ns/b1", signal), undefined);
  });

  test("an object not found: done", async () => {
    const t = setup({});
    assert.equal(await t.backups.reconcile("ns/nope", signal), undefined);
  });
});

describe("ScheduleController applies decisions", () => {
  const schedule = (specExtra: Loose = {}, status?: Loose): EtcdBackupSchedule =>
    ({
      apiVersion: "etcd-backup.dev/v1alpha1",
      kind: "EtcdBackupSchedule",
      metadata: {
        name: "s",
        namespace: "ns",
        uid: "u1",
        generation: 1,
        creationTimestamp: new Date(Date.now() - 3_600_000).toISOString(),
      },
      spec: { schedule: "* * * * * *", template: { spec: spec() }, ...specExtra },
      ...(status ? { status } : {}),
    }) as EtcdBackupSchedule;

  test("a name already taken (409 AlreadyExists): no BackupCreated Event; status written; requeue within a second", async () => {
    const t = setup({ s: schedule() });
    t.fail.create = new KubeError("exists", 409, "AlreadyExists");
    const after = await t.schedules.reconcile("ns/s", signal);
    assert.ok(after !== undefined && after >= 50 && after <= 1_000, String(after));
    assert.deepEqual(
      t.calls.map((c) => c.call),
      ["get", "create", "patchStatus"],
    );
    assert.deepEqual(t.events, []);
    const status = t.calls.at(-1)!.body!.status;
    assert.equal(status.active.length, 1);
    assert.equal(status.conditions.find((c: Loose) => c.type === "Ready").reason, "Scheduled");
  });

  test("created: BackupCreated Event after the create", async () => {
    const t = setup({ s: schedule() });
    await t.schedules.reconcile("ns/s", signal);
    assert.deepEqual(
      t.events.map((e) => e.reason),
      ["BackupCreated"],
    );
  });

  test("retention that cannot run: PruneFailed Event, Failed with the cause's reason, not retried for the same success", async () => {
    const done: EtcdBackup = backup(
      {
        name: "s-1",
        labels: { "etcd-backup.dev/schedule": "s" },
        ownerReferences: [{ uid: "u1" }],
      },
      { status: { phase: "Succeeded", completionTime: "2026-03-10T09:00:00Z", key: "s-1.age" } },
    ) as EtcdBackup;
    const t = setup({ s: schedule({ suspend: true, retention: { keepLast: 1 } }) }, [done]);
    await t.schedules.reconcile("ns/s", signal);
    assert.deepEqual(
      t.events.map((e) => [e.type, e.reason]),
      [["Warning", "PruneFailed"]],
    );
    const status = t.calls.at(-1)!.body!.status;
    assert.equal(status.lastPrunedAfter, "s-1");
    const failed = status.conditions.find((c: Loose) => c.type === "Failed");
    assert.deepEqual([failed.status, failed.reason], ["True", "SecretNotFound"]);
    assert.equal(status.conditions.find((c: Loose) => c.type === "Ready").reason, "Suspended");
  });

  test("every condition message written passes the redactor, old ones included", async () => {
    const old = {
      type: "Progressing",
      status: "True",
      reason: "X",
      message: `left by an older version: ${SECRET}`,
      lastTransitionTime: "2026-03-10T09:00:00Z",
    };
    const t = setup({ s: schedule({ suspend: true }, { conditions: [old] }) });
    await t.schedules.reconcile("ns/s", signal);
    const written = JSON.stringify(t.calls.at(-1)!.body);
    assert.ok(!written.includes(SECRET), written);
    assert.match(written, /left by an older version: \[REDACTED\]/);
  });

  test("an invalid cron: Warning InvalidSchedule once, then no Event while it stays the same", async () => {
    const objects: Record<string, Loose> = { s: schedule({ schedule: "61 * * * *" }) };
    const t = setup(objects);
    assert.equal(await t.schedules.reconcile("ns/s", signal), undefined);
    objects.s!.status = t.calls.at(-1)!.body!.status;
    await t.schedules.reconcile("ns/s", signal);
    assert.deepEqual(
      t.events.map((e) => e.reason),
      ["InvalidSchedule"],
    );
  });
});
