/**
 * The controllers' decisions, without any API server: observed state in, actions, conditions and requeue out.
 * Each table row is one observed state; the e2e tests (operator.test.ts, sources.test.ts) run the loops that
 * apply these decisions against the API server stand-in.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import {
  DELETE_FINALIZER,
  type EtcdBackup,
  type EtcdBackupSchedule,
  SCHEDULE_LABEL,
  SCHEDULED_AT_ANNOTATION,
} from "../../src/operator/api.ts";
import {
  type BackupAction,
  type BackupDecision,
  classifyFailure,
  decideAfterRun,
  decideBackup,
  RETRY_CAP_MS,
  type RunOutcome,
  retryDelayMs,
} from "../../src/operator/backup-decision.ts";
import { setConditions } from "../../src/operator/conditions.ts";
import { SpecProblem } from "../../src/operator/resolve.ts";
import {
  classifyPruneFailure,
  decidePruned,
  decideSchedule,
  latestDueRun,
  type ObservedSchedule,
  type PruneOutcome,
  parseCron,
  type ScheduleDecision,
} from "../../src/operator/schedule-decision.ts";
import { InvalidSpecError } from "../../src/operator/spec.ts";
import { SeededRandom, testSeed } from "../fixtures/seeded-random.ts";

// biome-ignore lint/suspicious/noExplicitAny: test fixtures are patched field by field
type Loose = Record<string, any>;

/** A stand-in redactor: the decisions must pass every message they build from input through it. */
const redact = (text: string) => text.replaceAll("s3cr3t", "[REDACTED]");
const at = (iso: string) => new Date(iso);
const NOW = at("2026-03-10T10:00:30.500Z");

const validSpec = () => ({
  clusterName: "prod",
  source: { etcd: { endpoints: ["https://127.0.0.1:2379"] } },
  destination: { s3: { bucket: "backups", prefix: "etcd" } },
  encryption: { recipients: ["age1example"] },
});

function backupOf(patch: Loose = {}): EtcdBackup {
  const b: Loose = {
    apiVersion: "etcd-backup.dev/v1alpha1",
    kind: "EtcdBackup",
    metadata: { name: "b1", namespace: "ns", generation: 1, resourceVersion: "7" },
    spec: validSpec(),
  };
  return {
    ...b,
    ...patch,
    metadata: { ...b.metadata, ...patch.metadata },
    spec: "spec" in patch && patch.spec === undefined ? undefined : { ...b.spec, ...patch.spec },
  } as EtcdBackup;
}

const kinds = (actions: { kind: string }[]) => actions.map((a) => a.kind);
const find = <K extends BackupAction["kind"]>(d: BackupDecision, kind: K) =>
  d.actions.find((a) => a.kind === kind) as Extract<BackupAction, { kind: K }> | undefined;
/** The condition of `type` in a list; fails the test when there is none. */
const cond = (list: Loose[] | undefined | null, type: string): Loose =>
  list?.find((c) => c.type === type) ?? assert.fail(`no ${type} condition in ${JSON.stringify(list)}`);

describe("decideBackup", () => {
  const decide = (patch: Loose, running = false) =>
    decideBackup({ backup: backupOf(patch), now: NOW, running, redact }, { retryBaseMs: 1_000 });

  const rows: {
    name: string;
    patch: Loose;
    running?: boolean;
    actions: string[];
    requeueAfterMs?: number;
    check?: (d: BackupDecision) => void;
  }[] = [
    {
      name: "new backup: claim (conditional Running), BackupStarted, save",
      patch: {},
      actions: ["writeStatus", "event", "save"],
      check: (d) => {
        const claim = find(d, "writeStatus")!;
        assert.equal(claim.conditional, true);
        assert.equal(claim.status.phase, "Running");
        assert.equal(claim.status.startTime, "2026-03-10T10:00:30Z");
        assert.equal(claim.status.nextRetryTime, null, "merge patch removes a stale retry time");
        assert.equal(cond(claim.status.conditions, "Progressing")?.reason, "BackupInProgress");
        assert.equal(cond(claim.status.conditions, "Ready")?.status, "False");
        assert.deepEqual(find(d, "event"), {
          kind: "event",
          type: "Normal",
          reason: "BackupStarted",
          message: "backup of cluster prod started",
        });
        assert.equal(find(d, "save")?.cluster, "prod");
        assert.equal(find(d, "save")?.attempts, 0);
        assert.equal(d.result, undefined, "no attempt ended yet");
      },
    },
    {
      name: "deletionPolicy Delete without the finalizer: add it first, then run",
      patch: { spec: { deletionPolicy: "Delete" } },
      actions: ["setFinalizers", "writeStatus", "event", "save"],
      check: (d) => assert.deepEqual(find(d, "setFinalizers")?.finalizers, [DELETE_FINALIZER]),
    },
    {
      name: "deletionPolicy Retain with the finalizer: remove it, keep other finalizers",
      patch: {
        metadata: { finalizers: ["other/x", DELETE_FINALIZER] },
        status: { phase: "Succeeded", observedGeneration: 1 },
      },
      actions: ["setFinalizers"],
      check: (d) => assert.deepEqual(find(d, "setFinalizers")?.finalizers, ["other/x"]),
    },
    {
      name: "Succeeded: nothing to do, no requeue",
      patch: { status: { phase: "Succeeded", observedGeneration: 1 } },
      actions: [],
    },
    {
      name: "Succeeded, spec changed since: still nothing (a backup is taken once)",
      patch: { metadata: { generation: 2 }, status: { phase: "Succeeded", observedGeneration: 1 } },
      actions: [],
    },
    {
      name: "Failed, retry not due yet: wait until nextRetryTime",
      patch: {
        status: {
          phase: "Failed",
          observedGeneration: 1,
          failedAttempts: 1,
          nextRetryTime: "2026-03-10T10:00:40Z",
        },
      },
      actions: [],
      requeueAfterMs: 9_500,
    },
    {
      name: "Failed, retry due: run again, counting the attempts so far",
      patch: {
        status: {
          phase: "Failed",
          observedGeneration: 1,
          failedAttempts: 2,
          nextRetryTime: "2026-03-10T10:00:30Z",
        },
      },
      actions: ["writeStatus", "event", "save"],
      check: (d) => {
        assert.equal(find(d, "save")?.attempts, 2);
        assert.equal(find(d, "writeStatus")?.status.failedAttempts, 2);
      },
    },
    {
      name: "Failed with no retry left (no nextRetryTime): nothing to do, no hot loop",
      patch: { status: { phase: "Failed", observedGeneration: 1, failedAttempts: 4 } },
      actions: [],
    },
    {
      name: "Failed beyond backoffLimit even with a retry time: nothing to do",
      patch: {
        spec: { backoffLimit: 1 },
        status: {
          phase: "Failed",
          observedGeneration: 1,
          failedAttempts: 2,
          nextRetryTime: "2026-03-10T10:00:00Z",
        },
      },
      actions: [],
    },
    {
      name: "Failed, then the spec changed: attempts start over",
      patch: {
        metadata: { generation: 3 },
        status: { phase: "Failed", observedGeneration: 2, failedAttempts: 4 },
      },
      actions: ["writeStatus", "event", "save"],
      check: (d) => assert.equal(find(d, "save")?.attempts, 0),
    },
    {
      name: "Running (a replica died mid-run): claim it again",
      patch: { status: { phase: "Running", observedGeneration: 1, failedAttempts: 1 } },
      actions: ["writeStatus", "event", "save"],
      check: (d) => assert.equal(find(d, "save")?.attempts, 1),
    },
    {
      name: "invalid spec: Failed InvalidSpec at once (conditional write), Warning Event, no retry",
      patch: { spec: { destination: { s3: { bucket: "Not_A_Bucket" } } } },
      actions: ["writeStatus", "event"],
      check: (d) => {
        const w = find(d, "writeStatus")!;
        assert.equal(w.conditional, true, "not claimed: the write must not race another replica");
        assert.equal(w.status.phase, "Failed");
        assert.equal(w.status.nextRetryTime, null);
        assert.equal(w.status.failedAttempts, 1);
        const failed = cond(w.status.conditions, "Failed");
        assert.equal(failed.reason, "InvalidSpec");
        assert.match(
          failed.message,
          /^invalid spec: spec\.destination\.s3\.bucket: not a valid S3 bucket name/,
        );
        assert.match(
          cond(w.status.conditions, "Progressing").message,
          /gave up after 1 attempt\(s\); change the spec/,
        );
        assert.equal(find(d, "event")?.type, "Warning");
        assert.equal(d.result, "failure");
      },
    },
    {
      name: "no spec at all: InvalidSpec, never a crash",
      patch: { spec: undefined },
      actions: ["writeStatus", "event"],
      check: (d) => assert.equal(find(d, "event")?.reason, "InvalidSpec"),
    },
    {
      name: "a schedule name that cannot be a cluster name: InvalidSpec naming spec.clusterName",
      patch: { metadata: { labels: { [SCHEDULE_LABEL]: "a..b" } }, spec: { clusterName: undefined } },
      actions: ["writeStatus", "event"],
      check: (d) => {
        assert.equal(find(d, "event")?.reason, "InvalidSpec");
        assert.match(
          find(d, "event")!.message,
          /cluster name "a\.\.b" cannot stand in an object name: set spec\.clusterName/,
        );
      },
    },
    {
      name: "cluster name falls back to the schedule's label, then the object's name",
      patch: { metadata: { labels: { [SCHEDULE_LABEL]: "nightly" } }, spec: { clusterName: undefined } },
      actions: ["writeStatus", "event", "save"],
      check: (d) => assert.equal(find(d, "save")?.cluster, "nightly"),
    },
    {
      name: "deleted, Retain: abort a run in flight, nothing else",
      patch: { metadata: { deletionTimestamp: "2026-03-10T10:00:00Z" } },
      actions: ["abortRun"],
    },
    {
      name: "deleted, Delete, run still in flight: abort it and look again in a second",
      patch: {
        metadata: { deletionTimestamp: "2026-03-10T10:00:00Z", finalizers: [DELETE_FINALIZER] },
        spec: { deletionPolicy: "Delete" },
      },
      running: true,
      actions: ["abortRun"],
      requeueAfterMs: 1_000,
    },
    {
      name: "deleted, Delete, stored: delete object and manifest, then release the finalizer",
      patch: {
        metadata: { deletionTimestamp: "2026-03-10T10:00:00Z", finalizers: [DELETE_FINALIZER, "other/x"] },
        spec: { deletionPolicy: "Delete" },
        status: {
          phase: "Succeeded",
          key: "etcd/prod-x.snap.zst.age",
          manifestKey: "etcd/prod-x.snap.zst.age.json",
        },
      },
      actions: ["abortRun", "deleteStored", "setFinalizers"],
      check: (d) => {
        assert.deepEqual(find(d, "deleteStored"), {
          kind: "deleteStored",
          key: "etcd/prod-x.snap.zst.age",
          manifestKey: "etcd/prod-x.snap.zst.age.json",
        });
        assert.deepEqual(find(d, "setFinalizers")?.finalizers, ["other/x"]);
      },
    },
    {
      name: "deleted, Delete, nothing stored (it failed): release the finalizer only",
      patch: {
        metadata: { deletionTimestamp: "2026-03-10T10:00:00Z", finalizers: [DELETE_FINALIZER] },
        spec: { deletionPolicy: "Delete" },
        status: { phase: "Failed" },
      },
      actions: ["abortRun", "setFinalizers"],
    },
  ];
  for (const row of rows) {
    test(row.name, () => {
      const d = decide(row.patch, row.running);
      assert.deepEqual(kinds(d.actions), row.actions);
      assert.equal(d.requeueAfterMs, row.requeueAfterMs);
      row.check?.(d);
    });
  }

  test("deciding twice from the same observation gives the same answer (nothing hidden is read)", () => {
    const patch = {
      status: {
        phase: "Failed",
        observedGeneration: 1,
        failedAttempts: 1,
        nextRetryTime: "2026-03-10T10:00:40Z",
      },
    };
    assert.deepEqual(decide(patch), decide(patch));
  });
});

describe("decideAfterRun", () => {
  const claimed = (patch: Loose = {}) =>
    backupOf({
      ...patch,
      status: {
        phase: "Running",
        observedGeneration: 1,
        conditions: setConditions(undefined, [], NOW),
        ...patch.status,
      },
    });
  const after = (outcome: RunOutcome, attempts = 0, patch: Loose = {}, retryBaseMs = 1_000) =>
    decideAfterRun({ backup: claimed(patch), attempts, outcome, now: NOW }, { retryBaseMs });
  const failed = (reason: string, permanent = false): RunOutcome => ({
    kind: "failed",
    failure: { reason, message: `${reason} happened`, permanent },
  });

  test("stored: Succeeded with where and how much, Ready True, Failed False, a Normal Event", () => {
    const d = after(
      {
        kind: "stored",
        bucket: "backups",
        key: "etcd/prod-2026.snap.zst.age",
        manifestKey: "etcd/prod-2026.snap.zst.age.json",
        dbSize: 4096,
        storedSize: 1000,
        revision: 42,
        sha256: "ab".repeat(32),
      },
      2,
    );
    assert.deepEqual(kinds(d.actions), ["writeStatus", "event"]);
    assert.equal(d.result, "success");
    assert.equal(d.requeueAfterMs, undefined);
    const s = (d.actions[0] as Extract<BackupAction, { kind: "writeStatus" }>).status;
    assert.equal(s.phase, "Succeeded");
    assert.equal(s.failedAttempts, 0);
    assert.equal(s.location, "s3://backups");
    assert.equal(s.revision, 42);
    assert.equal(s.completionTime, "2026-03-10T10:00:30Z");
    assert.deepEqual(
      s.conditions?.map((c) => [c.type, c.status, c.reason]),
      [
        ["Progressing", "False", "BackupCompleted"],
        ["Ready", "True", "BackupSucceeded"],
        ["Failed", "False", "BackupSucceeded"],
      ],
    );
    assert.equal(cond(s.conditions, "Ready").message, "stored s3://backups/etcd/prod-2026.snap.zst.age");
    assert.match((d.actions[1] as Loose).message, /\(1000 bytes, db 4096 bytes\)$/);
  });

  test("stored under a lock: the Event says what holds it and until when", () => {
    const d = after({
      kind: "stored",
      bucket: "backups",
      root: "gs://backups",
      key: "etcd/prod-2026.snap.zst.age",
      manifestKey: "etcd/prod-2026.snap.zst.age.json",
      dbSize: 4096,
      storedSize: 1000,
      sha256: "ab".repeat(32),
      lock: "compliance until 2026-03-11T10:00:30Z, legal hold",
    });
    assert.equal(
      (d.actions[1] as Loose).message,
      "stored gs://backups/etcd/prod-2026.snap.zst.age (1000 bytes, db 4096 bytes), locked: compliance until 2026-03-11T10:00:30Z, legal hold",
    );
  });

  // Retry arithmetic: failedAttempts = attempts + 1; delay = base * 2^(failedAttempts-1), capped; the retry time
  // is rounded up to a whole second (status times have none) and the requeue waits until then.
  const retryRows: {
    attempts: number;
    backoffLimit?: number;
    base: number;
    permanent?: boolean;
    nextRetryTime: string | null;
    requeueAfterMs?: number;
    progressing: string;
  }[] = [
    {
      attempts: 0,
      base: 1_000,
      nextRetryTime: "2026-03-10T10:00:32Z",
      requeueAfterMs: 1_500,
      progressing: "attempt 1 of 4 failed; next at 2026-03-10T10:00:32Z",
    },
    {
      attempts: 2,
      base: 1_000,
      nextRetryTime: "2026-03-10T10:00:35Z",
      requeueAfterMs: 4_500,
      progressing: "attempt 3 of 4 failed; next at 2026-03-10T10:00:35Z",
    },
    {
      attempts: 3,
      base: 1_000,
      nextRetryTime: null,
      progressing: "gave up after 4 attempt(s); change the spec to try again",
    },
    {
      attempts: 0,
      backoffLimit: 0,
      base: 1_000,
      nextRetryTime: null,
      progressing: "gave up after 1 attempt(s); change the spec to try again",
    },
    {
      attempts: 9,
      backoffLimit: 10,
      base: 10_000,
      nextRetryTime: "2026-03-10T10:10:31Z",
      requeueAfterMs: RETRY_CAP_MS + 500,
      progressing: "attempt 10 of 11 failed; next at 2026-03-10T10:10:31Z",
    },
    {
      attempts: 0,
      base: 1_000,
      permanent: true,
      nextRetryTime: null,
      progressing: "gave up after 1 attempt(s); change the spec to try again",
    },
  ];
  for (const r of retryRows) {
    test(`failed attempt ${r.attempts + 1} (backoffLimit ${r.backoffLimit ?? 3}, base ${r.base} ms${r.permanent ? ", permanent" : ""}): ${r.nextRetryTime ? `retry at ${r.nextRetryTime}` : "no retry"}`, () => {
      const d = after(
        failed("SourceUnreachable", r.permanent),
        r.attempts,
        r.backoffLimit === undefined ? {} : { spec: { backoffLimit: r.backoffLimit } },
        r.base,
      );
      assert.deepEqual(kinds(d.actions), ["writeStatus", "event"]);
      assert.equal(d.result, "failure");
      assert.equal(d.requeueAfterMs, r.requeueAfterMs);
      const w = d.actions[0] as Extract<BackupAction, { kind: "writeStatus" }>;
      assert.equal(w.conditional, undefined, "the claim holds: a plain write");
      assert.equal(w.status.phase, "Failed");
      assert.equal(w.status.failedAttempts, r.attempts + 1);
      assert.equal(w.status.nextRetryTime, r.nextRetryTime);
      const progressing = cond(w.status.conditions, "Progressing");
      assert.equal(progressing.message, r.progressing);
      assert.equal(progressing.reason, r.nextRetryTime ? "RetryScheduled" : "BackupFailed");
      const failedC = cond(w.status.conditions, "Failed");
      assert.deepEqual(
        [failedC.status, failedC.reason, failedC.message],
        ["True", "SourceUnreachable", "SourceUnreachable happened"],
      );
      assert.deepEqual(d.actions[1], {
        kind: "event",
        type: "Warning",
        reason: "SourceUnreachable",
        message: "SourceUnreachable happened",
      });
    });
  }

  test("retryDelayMs doubles from the base and stops at the cap", () => {
    assert.deepEqual(
      [1, 2, 3, 4, 10, 30].map((n) => retryDelayMs(n, { retryBaseMs: 10_000 })),
      [10_000, 20_000, 40_000, 80_000, RETRY_CAP_MS, RETRY_CAP_MS],
    );
  });

  test("stopped (operator stopping): back to Pending, Progressing Aborted, best effort, counted as aborted", () => {
    const d = after({ kind: "stopped" });
    assert.equal(d.result, "aborted");
    assert.equal(d.requeueAfterMs, undefined);
    const w = d.actions[0] as Extract<BackupAction, { kind: "writeStatus" }>;
    assert.equal(w.bestEffort, true);
    assert.equal(w.status.phase, "Pending");
    assert.equal(cond(w.status.conditions, "Progressing").reason, "Aborted");
  });

  test("deleted mid-run: nothing to write, nothing counted", () => {
    assert.deepEqual(after({ kind: "deleted" }), { actions: [] });
  });
});

describe("classifyFailure: by error class, never by message", () => {
  test("a SpecProblem keeps its reason; the message passes the redactor", () => {
    const f = classifyFailure(new SpecProblem("SecretNotFound", "Secret ns/s3cr3t not found"), redact);
    assert.deepEqual(f, {
      reason: "SecretNotFound",
      message: "Secret ns/[REDACTED] not found",
      permanent: false,
    });
  });
  test("an InvalidSpecError is permanent", () => {
    const f = classifyFailure(new InvalidSpecError("spec.source: set exactly one"), redact);
    assert.deepEqual(f, {
      reason: "InvalidSpec",
      message: "invalid spec: spec.source: set exactly one",
      permanent: true,
    });
  });
  test("anything else is BackupFailed, retried; a message that merely says 'InvalidSpec' is not one", () => {
    const f = classifyFailure(new Error("InvalidSpec: upload failed", { cause: new Error("reset") }), redact);
    assert.equal(f.reason, "BackupFailed");
    assert.equal(f.permanent, false);
    assert.match(f.message, /upload failed: reset/);
  });
});

// ---- schedules ----

const HOUR_EPOCH = (iso: string) => Math.floor(Date.parse(iso) / 1000);

function scheduleOf(spec: Loose = {}, status?: Loose, metadata: Loose = {}): EtcdBackupSchedule {
  return {
    apiVersion: "etcd-backup.dev/v1alpha1",
    kind: "EtcdBackupSchedule",
    metadata: {
      name: "hourly",
      namespace: "ns",
      uid: "uid-1",
      generation: 1,
      creationTimestamp: "2026-03-10T08:30:00Z",
      ...metadata,
    },
    spec: { schedule: "0 * * * *", template: { spec: validSpec() }, ...spec },
    ...(status ? { status } : {}),
  } as EtcdBackupSchedule;
}

/** An EtcdBackup the schedule owns. */
function child(name: string, status?: Loose, patch: Loose = {}): EtcdBackup {
  return backupOf({
    metadata: {
      name,
      labels: { [SCHEDULE_LABEL]: "hourly" },
      ownerReferences: [
        { apiVersion: "etcd-backup.dev/v1alpha1", kind: "EtcdBackupSchedule", name: "hourly", uid: "uid-1" },
      ],
      ...patch.metadata,
    },
    ...(status ? { status: { observedGeneration: 1, ...status } } : {}),
  });
}
const running = (name: string) => child(name, { phase: "Running" });
const succeeded = (name: string, completionTime: string, key = `etcd/${name}.age`) =>
  child(name, { phase: "Succeeded", completionTime, key });
const failedFor = (name: string, creationTimestamp: string) =>
  child(name, { phase: "Failed", failedAttempts: 4 }, { metadata: { creationTimestamp } });

const observe = (s: EtcdBackupSchedule, backups: EtcdBackup[] = [], now = NOW): ObservedSchedule => ({
  schedule: s,
  backups,
  now,
  redact,
});
const RUN_10 = `hourly-${HOUR_EPOCH("2026-03-10T10:00:00Z")}`;
const lastAt9 = { lastScheduleTime: "2026-03-10T09:00:00Z" };
const until11 = Date.parse("2026-03-10T11:00:00Z") - NOW.getTime();
const summary = (d: ScheduleDecision) =>
  d.actions.map((a) =>
    a.kind === "event"
      ? `event ${a.reason}`
      : a.kind === "createBackup"
        ? `create ${a.backup.metadata.name}`
        : `delete ${a.name}`,
  );
const condOf = (d: ScheduleDecision, type: string) => d.conditions.filter((c) => c.type === type).at(-1);

describe("decideSchedule", () => {
  const rows: {
    name: string;
    schedule: EtcdBackupSchedule;
    backups?: EtcdBackup[];
    actions: string[];
    requeueAfterMs?: number;
    check?: (d: ScheduleDecision) => void;
  }[] = [
    {
      name: "due: create the run's EtcdBackup, requeue at the next run",
      schedule: scheduleOf({}, lastAt9),
      actions: [`create ${RUN_10}`],
      requeueAfterMs: until11,
      check: (d) => {
        assert.equal(d.status.lastScheduleTime, "2026-03-10T10:00:00Z");
        assert.equal(d.status.nextScheduleTime, "2026-03-10T11:00:00Z");
        assert.deepEqual(d.status.active, [{ name: RUN_10 }]);
        const ready = condOf(d, "Ready")!;
        assert.deepEqual(
          [ready.status, ready.reason, ready.message],
          ["True", "Scheduled", "next backup at 2026-03-10T11:00:00Z"],
        );
        assert.equal(d.prune, undefined);
        const create = d.actions[0] as Extract<ScheduleDecision["actions"][number], { kind: "createBackup" }>;
        assert.equal(create.created.reason, "BackupCreated");
        assert.equal(create.created.message, `created EtcdBackup ${RUN_10} for 2026-03-10T10:00:00Z`);
        const b = create.backup;
        assert.equal(b.metadata.labels?.[SCHEDULE_LABEL], "hourly");
        assert.equal(b.metadata.annotations?.[SCHEDULED_AT_ANNOTATION], "2026-03-10T10:00:00Z");
        assert.deepEqual(
          b.metadata.ownerReferences?.map((r) => [r.kind, r.name, r.uid, r.controller]),
          [["EtcdBackupSchedule", "hourly", "uid-1", true]],
        );
        assert.equal(b.spec.clusterName, "prod");
      },
    },
    {
      name: "not due (already ran at 10:00): nothing but the status, requeue at 11:00",
      schedule: scheduleOf({}, { lastScheduleTime: "2026-03-10T10:00:00Z" }),
      actions: [],
      requeueAfterMs: until11,
      check: (d) => assert.equal(d.status.lastScheduleTime, undefined, "unchanged: not in the patch"),
    },
    {
      name: "missed runs (last at 05:00): only the latest is made up, once",
      schedule: scheduleOf({}, { lastScheduleTime: "2026-03-10T05:00:00Z" }),
      actions: [`create ${RUN_10}`],
      requeueAfterMs: until11,
    },
    {
      name: "first run counts from the schedule's creation",
      schedule: scheduleOf({}, undefined, { creationTimestamp: "2026-03-10T09:30:00Z" }),
      actions: [`create ${RUN_10}`],
      requeueAfterMs: until11,
    },
    {
      name: "created after the last run time: nothing due yet",
      schedule: scheduleOf({}, undefined, { creationTimestamp: "2026-03-10T10:00:10Z" }),
      actions: [],
      requeueAfterMs: until11,
    },
    {
      name: "seconds cron in a time zone: the next run is computed there",
      schedule: scheduleOf(
        { schedule: "15 30 * * * *", timeZone: "Asia/Kolkata" },
        { lastScheduleTime: "2026-03-10T10:00:15Z" },
      ),
      actions: [],
      requeueAfterMs: Date.parse("2026-03-10T10:00:15Z") + 3_600_000 - NOW.getTime(),
    },
    {
      name: "Forbid (the default) with a backup running: skip with an Event, still mark the run as scheduled",
      schedule: scheduleOf({}, lastAt9),
      backups: [running("hourly-old")],
      actions: ["event BackupSkipped"],
      requeueAfterMs: until11,
      check: (d) => {
        assert.match(
          (d.actions[0] as Loose).message,
          /run at 2026-03-10T10:00:00Z skipped: hourly-old still running/,
        );
        assert.equal(d.status.lastScheduleTime, "2026-03-10T10:00:00Z");
        assert.deepEqual(d.status.active, [{ name: "hourly-old" }]);
      },
    },
    {
      name: "Forbid: a failed backup waiting for its retry counts as running",
      schedule: scheduleOf({}, lastAt9),
      backups: [
        child("hourly-retrying", {
          phase: "Failed",
          failedAttempts: 1,
          nextRetryTime: "2026-03-10T10:01:00Z",
        }),
      ],
      actions: ["event BackupSkipped"],
      requeueAfterMs: until11,
    },
    {
      name: "Allow: a new backup beside the running one",
      schedule: scheduleOf({ concurrencyPolicy: "Allow" }, lastAt9),
      backups: [running("hourly-old")],
      actions: [`create ${RUN_10}`],
      requeueAfterMs: until11,
      check: (d) => assert.deepEqual(d.status.active, [{ name: "hourly-old" }, { name: RUN_10 }]),
    },
    {
      name: "Replace: delete the running one (with an Event), then create",
      schedule: scheduleOf({ concurrencyPolicy: "Replace" }, lastAt9),
      backups: [running("hourly-old")],
      actions: ["delete hourly-old", "event BackupReplaced", `create ${RUN_10}`],
      requeueAfterMs: until11,
      check: (d) => assert.deepEqual(d.status.active, [{ name: RUN_10 }]),
    },
    {
      name: "the run's own EtcdBackup exists already (status write lost): neither created again nor skipped",
      schedule: scheduleOf({}, lastAt9),
      backups: [running(RUN_10)],
      actions: [],
      requeueAfterMs: until11,
      check: (d) => assert.deepEqual(d.status.active, [{ name: RUN_10 }]),
    },
    {
      name: "EtcdBackups of another schedule (other uid) or being deleted do not count",
      schedule: scheduleOf({}, lastAt9),
      backups: [
        child(
          "hourly-foreign",
          { phase: "Running" },
          { metadata: { ownerReferences: [{ uid: "uid-other" }] } },
        ),
        child(
          "hourly-going",
          { phase: "Running" },
          { metadata: { deletionTimestamp: "2026-03-10T09:59:00Z" } },
        ),
      ],
      actions: [`create ${RUN_10}`],
      requeueAfterMs: until11,
    },
    {
      name: "suspended: no backup, the missed run is skipped (not made up later), no requeue",
      schedule: scheduleOf({ suspend: true }, lastAt9),
      actions: [],
      check: (d) => {
        assert.equal(d.status.lastScheduleTime, "2026-03-10T10:00:00Z");
        assert.equal(d.status.nextScheduleTime, null);
        const ready = condOf(d, "Ready")!;
        assert.deepEqual([ready.status, ready.reason], ["True", "Suspended"]);
      },
    },
    {
      name: "invalid cron: Failed InvalidSchedule with a Warning Event saying what to use, no requeue",
      schedule: scheduleOf({ schedule: "61 * * * *" }),
      actions: ["event InvalidSchedule"],
      check: (d) => {
        assert.equal(d.status.nextScheduleTime, null);
        const failed = condOf(d, "Failed")!;
        assert.deepEqual([failed.status, failed.reason], ["True", "InvalidSchedule"]);
        assert.match(
          failed.message,
          /^spec\.schedule "61 \* \* \* \*": .*minute: 61.*\(use 5 cron fields, or 6 with seconds first/,
        );
        assert.equal(condOf(d, "Ready")!.status, "False");
        assert.equal((d.actions[0] as Loose).type, "Warning");
      },
    },
    {
      name: "invalid cron reported already (same message): no second Event",
      schedule: (() => {
        const first = decideSchedule(observe(scheduleOf({ schedule: "61 * * * *" })));
        return scheduleOf(
          { schedule: "61 * * * *" },
          { conditions: setConditions(undefined, first.conditions, NOW) },
        );
      })(),
      actions: [],
    },
    {
      name: "unknown time zone: InvalidSchedule naming it; a secret in it is redacted",
      schedule: scheduleOf({ timeZone: "Mars/s3cr3t" }),
      actions: ["event InvalidSchedule"],
      check: (d) => {
        const message = condOf(d, "Failed")!.message;
        assert.match(message, /in Mars\/\[REDACTED\]/);
        assert.doesNotMatch(message, /s3cr3t/);
        assert.doesNotMatch((d.actions[0] as Loose).message, /s3cr3t/);
      },
    },
    {
      name: "invalid template: InvalidSpec naming the field",
      schedule: scheduleOf({ template: { spec: { ...validSpec(), encryption: {} } } }),
      actions: ["event InvalidSpec"],
      check: (d) => assert.match(condOf(d, "Failed")!.message, /spec\.template\.spec\.encryption/),
    },
    {
      name: "unreadable keepWithin: InvalidSpec",
      schedule: scheduleOf({ retention: { keepWithin: "soon" } }),
      actions: ["event InvalidSpec"],
      check: (d) => assert.match(condOf(d, "Failed")!.message, /keepWithin: soon is not a span/),
    },
    {
      name: "spec fixed after InvalidSchedule: Failed goes back to False",
      schedule: scheduleOf(
        {},
        {
          lastScheduleTime: "2026-03-10T10:00:00Z",
          conditions: [
            {
              type: "Failed",
              status: "True",
              reason: "InvalidSchedule",
              message: "x",
              lastTransitionTime: "2026-03-10T09:00:00Z",
            },
          ],
        },
      ),
      actions: [],
      requeueAfterMs: until11,
      check: (d) => {
        const failed = condOf(d, "Failed")!;
        assert.deepEqual([failed.status, failed.reason], ["False", "Scheduled"]);
      },
    },
    {
      name: "a Failed from retention is not cleared by a valid spec",
      schedule: scheduleOf(
        {},
        {
          lastScheduleTime: "2026-03-10T10:00:00Z",
          conditions: [
            {
              type: "Failed",
              status: "True",
              reason: "PruneFailed",
              message: "x",
              lastTransitionTime: "2026-03-10T09:00:00Z",
            },
          ],
        },
      ),
      actions: [],
      requeueAfterMs: until11,
      check: (d) => assert.equal(condOf(d, "Failed"), undefined),
    },
    {
      name: "a new success with retention: prune once after it; lastSuccessfulBackup is the latest",
      schedule: scheduleOf(
        { retention: { keepLast: 2, keepWithin: "7d" } },
        { ...lastAt9, lastPrunedAfter: "hourly-a" },
      ),
      backups: [succeeded("hourly-a", "2026-03-10T08:01:00Z"), succeeded("hourly-b", "2026-03-10T09:01:00Z")],
      actions: [`create ${RUN_10}`],
      requeueAfterMs: until11,
      check: (d) => {
        assert.deepEqual(d.prune, {
          after: "hourly-b",
          policy: { last: 2, withinMs: 7 * 86_400_000 },
          cluster: "prod",
          destination: { s3: { bucket: "backups", prefix: "etcd" } },
        });
        assert.deepEqual(d.status.lastSuccessfulBackup, {
          name: "hourly-b",
          key: "etcd/hourly-b.age",
          completionTime: "2026-03-10T09:01:00Z",
        });
      },
    },
    {
      name: "retention already applied after the latest success: no prune",
      schedule: scheduleOf(
        { retention: { keepLast: 2 } },
        { lastScheduleTime: "2026-03-10T10:00:00Z", lastPrunedAfter: "hourly-b" },
      ),
      backups: [succeeded("hourly-b", "2026-03-10T09:01:00Z")],
      actions: [],
      requeueAfterMs: until11,
      check: (d) => assert.equal(d.prune, undefined),
    },
    {
      name: "no retention: never prune",
      schedule: scheduleOf({}, { lastScheduleTime: "2026-03-10T10:00:00Z" }),
      backups: [succeeded("hourly-b", "2026-03-10T09:01:00Z")],
      actions: [],
      requeueAfterMs: until11,
      check: (d) => assert.equal(d.prune, undefined),
    },
    {
      name: "failed EtcdBackups beyond failedBackupsHistoryLimit: the oldest are deleted",
      schedule: scheduleOf({ failedBackupsHistoryLimit: 2 }, { lastScheduleTime: "2026-03-10T10:00:00Z" }),
      backups: [
        failedFor("hourly-f1", "2026-03-10T05:00:00Z"),
        failedFor("hourly-f4", "2026-03-10T08:00:00Z"),
        failedFor("hourly-f2", "2026-03-10T06:00:00Z"),
        failedFor("hourly-f3", "2026-03-10T07:00:00Z"),
      ],
      actions: ["delete hourly-f2", "delete hourly-f1"],
      requeueAfterMs: until11,
    },
  ];
  for (const row of rows) {
    test(row.name, () => {
      const d = decideSchedule(observe(row.schedule, row.backups));
      assert.deepEqual(summary(d), row.actions);
      assert.equal(d.requeueAfterMs, row.requeueAfterMs);
      assert.equal(d.status.observedGeneration, 1);
      row.check?.(d);
    });
  }
});

describe("decidePruned", () => {
  const s = scheduleOf({ retention: { keepLast: 1 } }, lastAt9);
  const backups = [
    succeeded("hourly-a", "2026-03-10T07:01:00Z"),
    succeeded("hourly-b", "2026-03-10T08:01:00Z"),
    succeeded("hourly-c", "2026-03-10T09:01:00Z"),
  ];
  const request = {
    after: "hourly-c",
    policy: { last: 1 },
    cluster: "prod",
    destination: { s3: { bucket: "backups" } },
  };
  const pruned = (outcome: PruneOutcome) => decidePruned(observe(s, backups), request, outcome);

  test("deletes the EtcdBackups of the pruned backups (never the newest), Normal Pruned, Failed False", () => {
    const d = pruned({
      kind: "ran",
      kept: 1,
      deletedKeys: ["etcd/hourly-a.age", "etcd/hourly-b.age", "etcd/hourly-c.age"],
      freedBytes: 2048,
      failures: [],
    });
    assert.deepEqual(summary({ ...d, status: {}, conditions: [] } as ScheduleDecision), [
      "delete hourly-a",
      "delete hourly-b",
      "event Pruned",
    ]);
    assert.equal((d.actions.at(-1) as Loose).message, "retention kept 1 backup(s), deleted 3 (2048 bytes)");
    assert.deepEqual(d.status, { lastPrunedAfter: "hourly-c", lastPruneTime: "2026-03-10T10:00:30Z" });
    assert.deepEqual(
      d.conditions.map((c) => [c.type, c.status, c.reason]),
      [["Failed", "False", "Pruned"]],
    );
  });

  test("some deletions failed: Warning PruneFailed, Failed True with the first error (redacted)", () => {
    const d = pruned({
      kind: "ran",
      kept: 1,
      deletedKeys: ["etcd/hourly-a.age"],
      freedBytes: 10,
      failures: [{ key: "etcd/hourly-b.age", error: "AccessDenied for s3cr3t" }],
    });
    const ev = d.actions.at(-1) as Loose;
    assert.deepEqual([ev.type, ev.reason], ["Warning", "PruneFailed"]);
    assert.equal(
      ev.message,
      "retention kept 1 backup(s), deleted 1 (10 bytes); 1 deletion(s) failed: AccessDenied for [REDACTED]",
    );
    assert.deepEqual(
      d.conditions.map((c) => [c.type, c.status, c.reason, c.message]),
      [["Failed", "True", "PruneFailed", ev.message]],
    );
  });

  test("retention could not run: the cause's reason on Failed, not tried again for the same success", () => {
    const outcome = classifyPruneFailure(
      new SpecProblem("SecretNotFound", "Secret ns/creds not found"),
      redact,
    );
    const d = pruned(outcome);
    assert.deepEqual(summary({ ...d, status: {}, conditions: [] } as ScheduleDecision), [
      "event PruneFailed",
    ]);
    assert.deepEqual(
      d.conditions.map((c) => [c.type, c.status, c.reason]),
      [["Failed", "True", "SecretNotFound"]],
    );
    assert.match(d.conditions[0]!.message, /^retention could not run: Secret ns\/creds not found/);
    assert.equal(d.status.lastPrunedAfter, "hourly-c");
    assert.deepEqual(classifyPruneFailure(new Error("list failed"), redact), {
      kind: "failed",
      reason: "PruneFailed",
      message: "retention could not run: list failed",
    });
  });

  test("retention's Failed wins over clearing an old InvalidSpec in the same reconcile", () => {
    const old = scheduleOf(
      { retention: { keepLast: 1 } },
      {
        ...lastAt9,
        conditions: [
          {
            type: "Failed",
            status: "True",
            reason: "InvalidSpec",
            message: "x",
            lastTransitionTime: "2026-03-10T09:00:00Z",
          },
        ],
      },
    );
    const d = decideSchedule(observe(old, backups));
    assert.ok(d.prune);
    const p = decidePruned(observe(old, backups), d.prune, classifyPruneFailure(new Error("boom"), redact));
    const merged = setConditions(old.status?.conditions, [...d.conditions, ...p.conditions], NOW);
    const failed = cond(merged, "Failed");
    assert.deepEqual([failed.status, failed.reason], ["True", "PruneFailed"]);
    assert.equal(failed.lastTransitionTime, "2026-03-10T09:00:00Z", "still True: no transition");
  });
});

describe("conditions", () => {
  test("lastTransitionTime moves only when the status changes", () => {
    const t0 = at("2026-03-10T09:00:00Z");
    const list = setConditions(
      undefined,
      [{ type: "Ready", status: "True", reason: "Scheduled", message: "a" }],
      t0,
    );
    const same = setConditions(
      list,
      [{ type: "Ready", status: "True", reason: "Scheduled", message: "b" }],
      NOW,
    );
    assert.equal(same[0]!.lastTransitionTime, "2026-03-10T09:00:00Z");
    assert.equal(same[0]!.message, "b");
    const flipped = setConditions(
      same,
      [{ type: "Ready", status: "False", reason: "InvalidSpec", message: "c" }],
      NOW,
    );
    assert.equal(flipped[0]!.lastTransitionTime, "2026-03-10T10:00:30Z");
  });

  test("no condition is spelled out outside conditions.ts", () => {
    const dir = join(import.meta.dirname, "..", "..", "src", "operator");
    const literal = /\{\s*type:\s*"(Ready|Failed|Progressing)",/;
    const offenders = readdirSync(dir)
      .filter((f) => f.endsWith(".ts") && f !== "conditions.ts")
      .filter((f) => literal.test(readFileSync(join(dir, f), "utf8")));
    assert.deepEqual(offenders, []);
  });
});

/**
 * Invariants over many random observed states (seeded; the seed is printed on failure, and
 * ETCD_BACKUP_TEST_SEED replays one).
 */
describe("decisions over random observed states", () => {
  const seed = testSeed(20261130);
  const fail = (what: string, state: unknown, err: unknown): never => {
    assert.fail(`${what} (seed ${seed}) for ${JSON.stringify(state)}: ${(err as Error).message}`);
  };
  const maybe = <T>(r: SeededRandom, v: T): T | undefined => (r.next() < 0.5 ? v : undefined);
  const isoAround = (r: SeededRandom) => new Date(NOW.getTime() + r.int(-7_200, 7_200) * 1000).toISOString();

  test("decideBackup: never throws; save comes last and only for a live object; a deleted one is only released", () => {
    const r = new SeededRandom(seed);
    for (let i = 0; i < 3_000; i++) {
      const deleting = r.next() < 0.25;
      const patch: Loose = {
        metadata: {
          generation: r.int(1, 3),
          finalizers: r.pick([[], [DELETE_FINALIZER], ["other/x"], ["other/x", DELETE_FINALIZER]]),
          ...(deleting ? { deletionTimestamp: "2026-03-10T10:00:00Z" } : {}),
        },
        spec: {
          deletionPolicy: r.pick(["Retain", "Delete", undefined]),
          backoffLimit: r.pick([0, 1, 3, 10, undefined, -1, "x"]),
          ...(r.next() < 0.1 ? { encryption: {} } : {}),
        },
        status: maybe(r, {
          phase: r.pick(["Pending", "Running", "Succeeded", "Failed", undefined]),
          observedGeneration: r.int(1, 3),
          failedAttempts: r.int(0, 12),
          nextRetryTime: maybe(r, isoAround(r)),
          key: maybe(r, "etcd/x.age"),
        }),
      };
      const running = r.next() < 0.2;
      let d: BackupDecision;
      try {
        d = decideBackup({ backup: backupOf(patch), now: NOW, running, redact }, { retryBaseMs: 1_000 });
        const k = kinds(d.actions);
        const save = k.indexOf("save");
        assert.ok(save === -1 || save === k.length - 1, "save is the last action");
        if (deleting) {
          assert.equal(k[0], "abortRun");
          assert.ok(!k.includes("writeStatus") && !k.includes("save"), "a deleted object is not run");
          if (running) assert.ok(!k.includes("deleteStored"), "never delete what a run may still write");
        }
        if (patch.status?.phase === "Succeeded") assert.equal(save, -1, "a success is never run again");
        if (save !== -1)
          assert.equal(find(d, "writeStatus")?.conditional, true, "every run starts with a claim");
        assert.ok(d.requeueAfterMs === undefined || d.requeueAfterMs > 0);
        assert.deepEqual(
          decideBackup({ backup: backupOf(patch), now: NOW, running, redact }, { retryBaseMs: 1_000 }),
          d,
        );
      } catch (err) {
        fail("decideBackup", { patch, running }, err);
      }
    }
  });

  test("decideSchedule: at most one new backup, never while suspended or blocked by Forbid; requeue within one period", () => {
    const r = new SeededRandom(seed + 1);
    const crons: [string, number][] = [
      ["0 * * * *", 3_600_000],
      ["*/5 * * * *", 300_000],
      ["*/2 * * * * *", 2_000],
    ];
    for (let i = 0; i < 1_500; i++) {
      const [cron, period] = r.pick(crons);
      const policy = r.pick(["Forbid", "Allow", "Replace", undefined]);
      const suspend = r.next() < 0.2;
      const spec: Loose = {
        schedule: cron,
        concurrencyPolicy: policy,
        suspend,
        failedBackupsHistoryLimit: r.int(0, 3),
      };
      // Times within a few periods of now: a 2-second cron two hours behind would spend its time in croner.
      const near = () => new Date(NOW.getTime() + r.int(-3 * period, period)).toISOString();
      const status = maybe(r, { lastScheduleTime: near() });
      const backups = Array.from({ length: r.int(0, 6) }, (_, j) =>
        child(`hourly-${j}`, {
          phase: r.pick(["Running", "Succeeded", "Failed", undefined]),
          completionTime: isoAround(r),
        }),
      );
      const state = { spec, status, backups: backups.map((b) => [b.metadata.name, b.status?.phase]) };
      try {
        const d = decideSchedule(observe(scheduleOf(spec, status, { creationTimestamp: near() }), backups));
        const creates = d.actions.filter((a) => a.kind === "createBackup");
        assert.ok(creates.length <= 1);
        if (suspend) {
          assert.equal(creates.length, 0);
          assert.equal(d.requeueAfterMs, undefined);
        } else {
          assert.ok(d.requeueAfterMs !== undefined && d.requeueAfterMs >= 50 && d.requeueAfterMs <= period);
        }
        const active = backups.filter((b) => b.status?.phase !== "Succeeded" && b.status?.phase !== "Failed");
        if ((policy ?? "Forbid") === "Forbid" && active.length > 0) assert.equal(creates.length, 0);
        if (policy !== "Replace") {
          const deleted = d.actions.filter((a) => a.kind === "deleteBackup").map((a) => (a as Loose).name);
          for (const name of deleted) {
            assert.equal(
              backups.find((b) => b.metadata.name === name)?.status?.phase,
              "Failed",
              "only failed ones are trimmed",
            );
          }
        }
      } catch (err) {
        fail("decideSchedule", state, err);
      }
    }
  });
});

describe("latestDueRun", () => {
  /** The reference: step forward from `from` run by run (what the controller did before; slow for long gaps). */
  const stepping = (schedule: string, zone: string, from: Date, now: Date) => {
    const cron = parseCron(schedule, zone);
    let due: Date | undefined;
    for (let t = cron.nextRun(from); t && t <= now; t = cron.nextRun(t)) due = t;
    return due?.toISOString();
  };
  const latest = (schedule: string, zone: string, from: Date, now: Date) =>
    latestDueRun(parseCron(schedule, zone), from, now)?.toISOString();

  const rows: [string, string, string, string, string | undefined][] = [
    // schedule, zone, from (exclusive), now (inclusive), expected
    ["0 * * * *", "UTC", "2026-03-10T09:00:00Z", "2026-03-10T10:00:00Z", "2026-03-10T10:00:00.000Z"],
    ["0 * * * *", "UTC", "2026-03-10T09:00:00Z", "2026-03-10T09:59:59.999Z", undefined],
    ["0 * * * *", "UTC", "2026-03-10T10:00:00Z", "2026-03-10T10:30:00Z", undefined],
    ["0 * * * *", "UTC", "2026-03-09T10:00:00Z", "2026-03-10T10:30:00Z", "2026-03-10T10:00:00.000Z"],
    ["*/2 * * * * *", "UTC", "2026-03-09T10:00:00Z", "2026-03-10T10:00:31Z", "2026-03-10T10:00:30.000Z"],
    // 02:30 does not exist in New York on 2026-03-08 (spring forward): croner runs it at 03:00 EDT (07:00Z).
    [
      "30 2 * * *",
      "America/New_York",
      "2026-03-07T12:00:00Z",
      "2026-03-08T12:00:00Z",
      "2026-03-08T07:00:00.000Z",
    ],
    // 01:30 happens twice on 2026-11-01 (fall back): it runs once, at the first (EDT, 05:30Z).
    [
      "30 1 * * *",
      "America/New_York",
      "2026-10-31T12:00:00Z",
      "2026-11-01T12:00:00Z",
      "2026-11-01T05:30:00.000Z",
    ],
    ["0 0 1 1 *", "UTC", "2025-01-01T00:00:00Z", "2026-03-10T10:00:00Z", "2026-01-01T00:00:00.000Z"],
  ];
  for (const [schedule, zone, from, now, expected] of rows) {
    test(`${schedule} in ${zone}, (${from}, ${now}]: ${expected ?? "none"}`, () => {
      assert.equal(latest(schedule, zone, at(from), at(now)), expected);
    });
  }

  test("agrees with stepping forward on random schedules, zones and gaps", () => {
    const seed = testSeed(1130);
    const r = new SeededRandom(seed);
    // Each with the longest gap tried (seconds): about 50 runs, so that the stepping reference stays quick.
    const schedules: [string, number][] = [
      ["*/5 * * * *", 4 * 3_600],
      ["0 */3 * * *", 6 * 86_400],
      ["15 2 * * *", 50 * 86_400],
      ["30 1 * * 0", 300 * 86_400],
      ["*/7 * * * * *", 360],
      ["0 0 29 2 *", 5 * 365 * 86_400],
    ];
    const zones = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"];
    for (let i = 0; i < 300; i++) {
      const [schedule, longest] = r.pick(schedules);
      const zone = r.pick(zones);
      const now = new Date(
        Date.UTC(2026, r.int(0, 11), r.int(1, 28), r.int(0, 23), r.int(0, 59), r.int(0, 59)),
      );
      const span = r.int(0, longest);
      const from = new Date(now.getTime() - span * 1000);
      const state = { seed, schedule, zone, from: from.toISOString(), now: now.toISOString() };
      assert.equal(
        latest(schedule, zone, from, now),
        stepping(schedule, zone, from, now),
        JSON.stringify(state),
      );
    }
  });
});
