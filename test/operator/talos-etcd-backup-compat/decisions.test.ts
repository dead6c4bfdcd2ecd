import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { SpecProblem } from "../../../src/operator/resolve.ts";
import type {
  TalosEtcdBackup,
  TalosEtcdBackupSchedule,
} from "../../../src/operator/talos-etcd-backup-compat/api.ts";
import { decideTalosBackup } from "../../../src/operator/talos-etcd-backup-compat/backup-decision.ts";
import { decideTalosSchedule } from "../../../src/operator/talos-etcd-backup-compat/schedule-decision.ts";
import { translateBackup } from "../../../src/operator/talos-etcd-backup-compat/translate.ts";

const SAMPLE = join(
  import.meta.dirname,
  "../../../deploy/operator-overlays/talos-etcd-backup-compat/samples/talosetcdbackupschedule.yaml",
);
const schedule = parse(readFileSync(SAMPLE, "utf8")) as TalosEtcdBackupSchedule;
const spec = schedule.spec.backupTemplate.spec;
const now = new Date("2026-11-30T02:00:30Z");

const backup = (name: string, created: string, ready?: boolean): TalosEtcdBackup => ({
  apiVersion: "talos.alperen.cloud/v1alpha1",
  kind: "TalosEtcdBackup",
  metadata: {
    name,
    namespace: "default",
    creationTimestamp: created,
    finalizers: ["talosetcdbackup.talos.alperen.cloud/finalizer"],
    labels: { "talos.alperen.cloud/etcd-backup-schedule": schedule.metadata.name },
  },
  spec,
  ...(ready === undefined
    ? {}
    : {
        status: {
          filename: `talos-operator-etcd-backups/taloscontrolplane-sample/etcd-snapshot-${created.replace(/:/g, "-")}.db`,
          conditions: [
            {
              type: "Ready",
              status: ready ? "True" : "False",
              reason: "x",
              message: "",
              lastTransitionTime: created,
            },
          ],
        },
      }),
});

describe("Talos operator compatibility: translation and decisions", () => {
  it("translates the sample into a controlPlaneRef job under the Talos operator's folder, opt-ins from annotations", () => {
    const t = translateBackup({
      metadata: { name: "b", namespace: "default", annotations: schedule.metadata.annotations ?? {} },
      spec,
    });
    assert.equal(t.dir, "talos-operator-etcd-backups/taloscontrolplane-sample");
    assert.deepEqual(t.spec.source, {
      controlPlaneRef: {
        apiVersion: "talos.alperen.cloud/v1alpha1",
        kind: "TalosControlPlane",
        name: "taloscontrolplane-sample",
      },
    });
    assert.deepEqual(t.spec.destination.s3, { bucket: "my-etcd-backups", region: "us-west-2" });
    assert.equal(t.spec.compression, "zstd");
    assert.equal(t.spec.encryption.recipients?.length, 1);
    const plain = translateBackup({
      metadata: { name: "b", namespace: "default" },
      spec: { ...spec, backupStorage: { s3: { ...spec.backupStorage.s3!, endpoint: "https://minio:9000" } } },
    });
    assert.deepEqual([plain.spec.compression, plain.spec.encryption], ["none", { none: true }]);
    assert.equal(
      plain.spec.destination.s3.pathStyle,
      true,
      "a custom endpoint is path-style, as the Talos operator does",
    );
  });

  it("names the field of a bad spec or annotation", () => {
    const problem = (f: () => unknown) => {
      try {
        f();
      } catch (err) {
        assert.ok(err instanceof SpecProblem);
        return `${err.reason}: ${err.message}`;
      }
      assert.fail("accepted");
    };
    const meta = { name: "b", namespace: "default" };
    assert.match(
      problem(() =>
        translateBackup({ metadata: meta, spec: { ...spec, talosControlPlaneRef: { name: "" } } }),
      ),
      /^InvalidSpec: spec.talosControlPlaneRef.name/,
    );
    assert.match(
      problem(() => translateBackup({ metadata: meta, spec: { ...spec, backupStorage: {} } })),
      /^InvalidSpec: spec.backupStorage.s3: required/,
    );
    assert.match(
      problem(() =>
        translateBackup({
          metadata: { ...meta, annotations: { "etcd-backup.dev/age-recipients": "age1nope" } },
          spec,
        }),
      ),
      /^InvalidRecipient: annotation etcd-backup.dev\/age-recipients, recipient 1/,
    );
    assert.match(
      problem(() =>
        translateBackup({
          metadata: { ...meta, annotations: { "etcd-backup.dev/compression": "gzip" } },
          spec,
        }),
      ),
      /^InvalidSpec: annotation etcd-backup.dev\/compression: "gzip" is not zstd or none/,
    );
  });

  it("a backup runs once: Ready is final, a failure waits its backoff", () => {
    const b = backup("b", "2026-11-30T02:00:00Z");
    assert.equal(decideTalosBackup({ backup: b, now, running: false, failures: undefined }).kind, "run");
    assert.equal(
      decideTalosBackup({
        backup: backup("b", "2026-11-30T02:00:00Z", true),
        now,
        running: false,
        failures: undefined,
      }).kind,
      "nothing",
    );
    assert.deepEqual(
      decideTalosBackup({
        backup: b,
        now,
        running: false,
        failures: { count: 1, nextAt: now.getTime() + 5000 },
      }),
      {
        kind: "nothing",
        requeueAfterMs: 5000,
      },
    );
    assert.equal(decideTalosBackup({ backup: b, now, running: true, failures: undefined }).kind, "nothing");
  });

  it("holds the Talos operator's finalizer, and on deletion releases it after the stored object (once a run ended)", () => {
    const bare = backup("b", "2026-11-30T02:00:00Z");
    bare.metadata.finalizers = ["other"];
    assert.deepEqual(decideTalosBackup({ backup: bare, now, running: false, failures: undefined }), {
      kind: "addFinalizer",
      finalizers: ["other", "talosetcdbackup.talos.alperen.cloud/finalizer"],
    });
    const gone = backup("b", "2026-11-30T02:00:00Z", true);
    gone.metadata.deletionTimestamp = "2026-11-30T03:00:00Z";
    assert.deepEqual(decideTalosBackup({ backup: gone, now, running: false, failures: undefined }), {
      kind: "release",
      finalizers: [],
    });
    assert.deepEqual(decideTalosBackup({ backup: gone, now, running: true, failures: undefined }), {
      kind: "nothing",
      requeueAfterMs: 1000,
    });
    gone.metadata.finalizers = [];
    assert.deepEqual(decideTalosBackup({ backup: gone, now, running: false, failures: undefined }), {
      kind: "nothing",
    });
  });

  it("a schedule creates the due backup and expires Ready ones beyond retention, newest kept", () => {
    const s = {
      ...schedule,
      metadata: { ...schedule.metadata, uid: "u", creationTimestamp: "2026-11-29T00:00:00Z" },
      spec: { ...schedule.spec, retention: 2 },
    };
    const backups = [
      backup("a", "2026-11-26T02:00:00Z", true),
      backup("b", "2026-11-27T02:00:00Z", true),
      backup("c", "2026-11-28T02:00:00Z", true),
      backup("d", "2026-11-29T02:00:00Z", false),
    ];
    const d = decideTalosSchedule({ schedule: s, backups, now });
    assert.equal(
      d.create?.metadata.name,
      `talosetcdbackupschedule-sample-${Date.parse("2026-11-30T02:00:00Z") / 1000}`,
    );
    assert.deepEqual(d.create?.metadata.annotations, schedule.metadata.annotations, "our opt-ins are copied");
    assert.deepEqual(
      d.expire.map((b) => b.metadata.name),
      ["a"],
    );
    assert.equal(d.status.lastScheduleTime, "2026-11-30T02:00:00Z");
    assert.equal(d.status.nextScheduleTime, "2026-12-01T02:00:00Z");
    assert.equal(d.status.lastSuccessfulBackupTime, "2026-11-28T02:00:00Z");
    assert.deepEqual(d.status.activeBackups, ["d", d.create?.metadata.name]);

    const paused = decideTalosSchedule({
      schedule: { ...s, spec: { ...s.spec, paused: true } },
      backups,
      now,
    });
    assert.equal(paused.create, undefined);
    assert.equal(paused.status.nextScheduleTime, null);
    const defaults = decideTalosSchedule({
      schedule: { ...s, spec: { ...s.spec, retention: undefined } },
      backups,
      now,
    });
    assert.deepEqual(defaults.expire, [], "retention defaults to 5");

    const bad = decideTalosSchedule({
      schedule: { ...s, spec: { ...s.spec, schedule: "every day" } },
      backups,
      now,
    });
    const failed = (bad.status.conditions ?? []).find((c) => c.type === "Failed");
    assert.equal(failed?.reason, "InvalidSchedule");
    assert.equal(bad.create, undefined);
  });
});
