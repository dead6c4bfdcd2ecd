/**
 * The status board's rules without servers: grouping, one-line failures, redaction of every string, the standby
 * role, and the TalosEtcdBackup rows' phase read from the Talos operator's conditions.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Redactor } from "../../../src/observability/redact.ts";
import type { EtcdBackupSchedule } from "../../../src/operator/api.ts";
import { ClusterGate } from "../../../src/operator/fleet/cluster-gate.ts";
import { scheduleClusterOf } from "../../../src/operator/schedule-decision.ts";
import { type BackupRow, OperatorStatusBoard } from "../../../src/operator/status/board.ts";
import { scheduleRow } from "../../../src/operator/status/feeds.ts";
import { renderOperatorStatusPage } from "../../../src/operator/status/page.ts";
import {
  talosBackupRow,
  talosScheduleRow,
} from "../../../src/operator/talos-etcd-backup-compat/status-feed.ts";

const SECRET = "s3cr3t-value-0123456789abcdef";
const row = (name: string, cluster: string, extra: Partial<BackupRow> = {}): BackupRow => ({
  kind: "EtcdBackup",
  namespace: "ns",
  name,
  cluster,
  phase: "Succeeded",
  ...extra,
});
const cond = (type: string, status: string, reason = "R", at = "2026-11-30T10:00:00Z") => ({
  type: type as "Ready",
  status: status as "True",
  reason,
  message: "",
  lastTransitionTime: at,
});

describe("operator status board", () => {
  it("is a standby's until a feed attaches, and again after it detaches", () => {
    const board = new OperatorStatusBoard();
    assert.equal(board.status().role, "standby");
    const detach = board.attach({ schedules: () => [], backups: () => [row("a", "c1")] });
    assert.equal(board.status().role, "leader");
    assert.equal(board.status().clusters[0]?.counts.Succeeded, 1);
    detach();
    assert.equal(board.status().role, "standby");
    assert.deepEqual(board.status().clusters, []);
  });

  it("groups, orders newest first, keeps failures to one redacted line, and shows the gate's backoff", () => {
    const board = new OperatorStatusBoard(new Redactor().add(SECRET));
    const rows = [
      row("old", "c1", { time: "2026-11-30T09:00:00Z" }),
      row("new", "c1", { time: "2026-11-30T10:00:00Z" }),
      row("bad", "c2", {
        phase: "Failed",
        time: "2026-11-30T10:00:00Z",
        failure: { reason: "SourceUnreachable", message: `dial failed with ${SECRET}\nstack line` },
      }),
    ];
    board.attach({ schedules: () => [], backups: () => rows });
    const gate = new ClusterGate({ baseMs: 60_000 });
    const now = new Date("2026-11-30T10:00:00Z");
    gate.started("c2");
    gate.finished("c2", "unreachable", now);
    board.attachGate(gate);
    const s = board.status(now);
    assert.deepEqual(
      s.clusters.map((c) => c.name),
      ["c1", "c2"],
    );
    assert.deepEqual(
      s.clusters[0]?.latestBackups.map((b) => b.name),
      ["new", "old"],
    );
    const f = s.clusters[1]?.failures[0]?.failure;
    assert.equal(f?.reason, "SourceUnreachable");
    assert.equal(f?.message, "dial failed with [REDACTED]");
    assert.deepEqual(s.clusters[1]?.backingOff, { failures: 1, until: "2026-11-30T10:01:00.000Z" });
    assert.equal(s.clusters[0]?.backingOff, undefined);
    const html = renderOperatorStatusPage(s);
    assert.ok(!html.includes(SECRET));
    assert.match(html, /backing off until 2026-11-30T10:01:00Z after 1 unreachable run\b/);
  });

  it("reads a TalosEtcdBackup's phase from its conditions and its cluster from its control plane", () => {
    const meta = { name: "b", namespace: "ns" };
    const spec = {
      talosControlPlaneRef: { name: "cp1" },
      backupStorage: {
        s3: {
          bucket: "bk",
          region: "r",
          accessKeyID: { name: "s", key: "k" },
          secretAccessKey: { name: "s", key: "k2" },
        },
      },
    };
    const b = (conditions: ReturnType<typeof cond>[], filename?: string) =>
      talosBackupRow({
        apiVersion: "talos.alperen.cloud/v1alpha1",
        kind: "TalosEtcdBackup",
        metadata: meta,
        spec,
        status: { conditions, ...(filename ? { filename } : {}) },
      });
    const done = b(
      [cond("Ready", "True"), cond("Progressing", "False", "R", "2026-11-30T10:05:00Z")],
      "k.db",
    );
    assert.equal(done.phase, "Succeeded");
    assert.equal(done.cluster, "cp1");
    assert.equal(done.location, "s3://bk");
    assert.equal(done.key, "k.db");
    assert.equal(done.time, "2026-11-30T10:05:00Z");
    assert.equal(b([cond("Failed", "True", "BackupFailed")]).phase, "Failed");
    assert.equal(b([cond("Failed", "True", "BackupFailed")]).failure?.reason, "BackupFailed");
    assert.equal(b([cond("Progressing", "True")]).phase, "Running");
    assert.equal(b([]).phase, "Pending");
    const sched = talosScheduleRow({
      apiVersion: "talos.alperen.cloud/v1alpha1",
      kind: "TalosEtcdBackupSchedule",
      metadata: { name: "s", namespace: "ns" },
      spec: { schedule: "0 * * * *", backupTemplate: { spec }, paused: true },
      status: { nextScheduleTime: "2026-11-30T11:00:00Z" },
    });
    assert.equal(sched.cluster, "cp1");
    assert.equal(sched.retention, "keepLast 5");
    assert.equal(sched.suspended, true);
    assert.equal(sched.nextRunTime, undefined);
  });

  it("names a schedule's cluster as its backups are named: clusterName, else the controlPlaneRef, else itself", () => {
    const sched = (spec: Record<string, unknown>) =>
      ({
        apiVersion: "etcd-backup.dev/v1alpha1",
        kind: "EtcdBackupSchedule",
        metadata: { name: "nightly", namespace: "ns" },
        spec: { schedule: "0 3 * * *", template: { spec } },
      }) as unknown as EtcdBackupSchedule;
    const ref = { controlPlaneRef: { apiVersion: "v", kind: "TalosControlPlane", name: "cp1" } };
    assert.equal(scheduleClusterOf(sched({ clusterName: "prod", source: ref })), "prod");
    assert.equal(scheduleClusterOf(sched({ source: ref })), "cp1");
    assert.equal(scheduleClusterOf(sched({ source: {} })), "nightly");
    assert.equal(scheduleRow(sched({ source: ref })).cluster, "cp1");
  });
});
