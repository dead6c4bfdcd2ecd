import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { OperatorMetrics } from "../../src/operator/metrics.ts";
import { runOperator } from "../../src/operator/operator.ts";
import {
  ageDecrypt,
  backupSpec,
  bucketKeys,
  type Harness,
  quietLog,
  startHarness,
  waitFor,
} from "./harness.ts";

type Obj = {
  metadata: { name: string; finalizers?: string[]; ownerReferences?: { kind: string; name: string }[] };
  // biome-ignore lint/suspicious/noExplicitAny: status fields are checked one by one
  status?: Record<string, any>;
};
type KubeEvent = { involvedObject: { name: string }; reason: string; type: string; message: string };

describe("operator against the API server stand-in, real etcd and S3", () => {
  let h: Harness;
  let stop: AbortController;
  let running: Promise<void>;
  const metrics = new OperatorMetrics();

  before(async () => {
    h = await startHarness();
    stop = new AbortController();
    running = runOperator(
      {
        kube: h.kube,
        namespace: "default",
        maxConcurrent: 2,
        identity: "test-operator",
        metrics,
        log: quietLog(),
        retryBaseMs: 500,
        watchTimeoutSeconds: 5,
      },
      stop.signal,
    );
  });
  after(async () => {
    stop.abort();
    await running;
    await h.stop();
  });

  const backup = (name: string) => h.api.get("etcdbackups", "default", name) as Obj | undefined;
  const eventsOf = (name: string) =>
    (h.api.list("events", "default") as unknown as KubeEvent[]).filter((e) => e.involvedObject.name === name);
  const create = (name: string, spec: object) =>
    h.api.put("etcdbackups", "default", {
      apiVersion: "etcd-backup.dev/v1alpha1",
      kind: "EtcdBackup",
      metadata: { name, namespace: "default" },
      spec,
    });

  it("takes an EtcdBackup to Ready with an age-encrypted object in the bucket", async () => {
    create("one", backupSpec(h));
    const done = await waitFor("Succeeded", () => {
      const b = backup("one");
      return b?.status?.phase === "Succeeded" || b?.status?.phase === "Failed" ? b : undefined;
    });
    assert.equal(done.status?.phase, "Succeeded", JSON.stringify(done.status));
    const key = done.status?.key as string;
    assert.match(key, /^clusters\/demo\/demo-\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\.snap\.zst\.age$/);
    assert.deepEqual(await bucketKeys(h), [key, `${key}.json`].sort());
    const ready = done.status?.conditions.find((c: { type: string }) => c.type === "Ready");
    assert.equal(ready.status, "True");
    assert.equal(ready.reason, "BackupSucceeded");
    assert.equal(done.status?.observedGeneration, 1);
    assert.ok(done.status?.storedSize > 0 && done.status?.dbSize > 0);
    // zstd-compressed plain snapshot: the zstd magic after age -d.
    const plain = await ageDecrypt(h, key);
    assert.equal(plain.readUInt32LE(0), 0xfd2fb528);
    assert.deepEqual(
      eventsOf("one")
        .map((e) => e.reason)
        .sort(),
      ["BackupStarted", "BackupSucceeded"],
    );
  });

  it("ends Failed with SecretNotFound, a message saying what to fix and a Warning Event; nothing stored", async () => {
    const before = await bucketKeys(h);
    const spec = backupSpec(h, { backoffLimit: 0 });
    spec.destination.s3.credentialsSecretRef = { name: "no-such-secret" };
    create("missing-secret", spec);
    const b = await waitFor("Failed", () => {
      const o = backup("missing-secret");
      return o?.status?.phase === "Failed" ? o : undefined;
    });
    const failed = b.status?.conditions.find((c: { type: string }) => c.type === "Failed");
    assert.equal(failed.status, "True");
    assert.equal(failed.reason, "SecretNotFound");
    assert.match(
      failed.message,
      /Secret default\/no-such-secret .*not found: create it in namespace default/,
    );
    assert.equal(b.status?.nextRetryTime, undefined, "backoffLimit 0: no retry");
    const ev = await waitFor("event", () => eventsOf("missing-secret").find((e) => e.type === "Warning"));
    assert.equal(ev.reason, "SecretNotFound");
    assert.deepEqual(await bucketKeys(h), before);
    // It stays Failed: no hot loop.
    const rv = h.api.get("etcdbackups", "default", "missing-secret")?.metadata.resourceVersion;
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(h.api.get("etcdbackups", "default", "missing-secret")?.metadata.resourceVersion, rv);
  });

  it("retries a failed attempt with backoff, then reports the missing key and an invalid recipient", async () => {
    h.api.put("secrets", "default", {
      metadata: { name: "partial", namespace: "default" },
      data: { AWS_ACCESS_KEY_ID: Buffer.from("x").toString("base64") },
    });
    const spec = backupSpec(h, { backoffLimit: 1 });
    spec.destination.s3.credentialsSecretRef = { name: "partial" };
    create("missing-key", spec);
    const b = await waitFor("two failed attempts", () => {
      const o = backup("missing-key");
      return o?.status?.failedAttempts === 2 ? o : undefined;
    });
    const failed = b.status?.conditions.find((c: { type: string }) => c.type === "Failed");
    assert.equal(failed.reason, "KeyNotFound");
    assert.match(failed.message, /has no key "AWS_SECRET_ACCESS_KEY".*its keys: AWS_ACCESS_KEY_ID/);
    assert.doesNotMatch(JSON.stringify(b.status), /S3RVER/);

    h.api.put("configmaps", "default", {
      metadata: { name: "recipients", namespace: "default" },
      data: { "recipients.txt": "# team\nage1notakey\n" },
    });
    create(
      "bad-recipient",
      backupSpec(h, {
        backoffLimit: 0,
        encryption: { recipientsFrom: [{ configMapKeyRef: { name: "recipients", key: "recipients.txt" } }] },
      }),
    );
    const r = await waitFor("Failed", () => {
      const o = backup("bad-recipient");
      return o?.status?.phase === "Failed" ? o : undefined;
    });
    const rf = r.status?.conditions.find((c: { type: string }) => c.type === "Failed");
    assert.equal(rf.reason, "InvalidRecipient");
    assert.match(rf.message, /recipientsFrom\[0\]: recipients file line 2/);
  });

  it("ends Failed with SourceUnreachable for an etcd endpoint nobody serves", async () => {
    create(
      "unreachable",
      backupSpec(h, {
        backoffLimit: 0,
        source: { etcd: { endpoints: ["127.0.0.1:1"], dialTimeoutSeconds: 1 } },
      }),
    );
    const b = await waitFor("Failed", () => {
      const o = backup("unreachable");
      return o?.status?.phase === "Failed" ? o : undefined;
    });
    const failed = b.status?.conditions.find((c: { type: string }) => c.type === "Failed");
    assert.equal(failed.reason, "SourceUnreachable");
    assert.match(failed.message, /127\.0\.0\.1:1/);
  });

  it("deletionPolicy Delete: a finalizer holds the EtcdBackup until the stored object and manifest are gone", async () => {
    create("to-delete", backupSpec(h, { deletionPolicy: "Delete", clusterName: "deleteme" }));
    const b = await waitFor("Succeeded", () => {
      const o = backup("to-delete");
      return o?.status?.phase === "Succeeded" ? o : undefined;
    });
    assert.deepEqual(b.metadata.finalizers, ["etcd-backup.dev/delete-stored-backup"]);
    const key = b.status?.key as string;
    assert.ok((await bucketKeys(h)).includes(key));
    h.api.remove("etcdbackups", "default", "to-delete");
    await waitFor("CR gone", () => (backup("to-delete") ? undefined : true));
    const keys = await bucketKeys(h);
    assert.ok(!keys.includes(key) && !keys.includes(`${key}.json`), keys.join(", "));
    assert.ok(eventsOf("to-delete").some((e) => e.reason === "Deleted"));
  });

  it("relists after 410 Gone and still sees what changed", async () => {
    const relists = async () => (await metrics.relists.get()).values.reduce((n, v) => n + v.value, 0);
    const before = await relists();
    h.api.compact();
    h.api.closeWatches();
    create("after-gone", backupSpec(h, { clusterName: "gone" }));
    await waitFor("Succeeded", () =>
      backup("after-gone")?.status?.phase === "Succeeded" ? true : undefined,
    );
    const after = await relists();
    assert.ok(after > before, `relists ${before} -> ${after}`);
  });

  it("a schedule with a seconds cron creates owned EtcdBackups and prunes to keepLast", async () => {
    h.api.put("etcdbackupschedules", "default", {
      apiVersion: "etcd-backup.dev/v1alpha1",
      kind: "EtcdBackupSchedule",
      metadata: { name: "every2s", namespace: "default" },
      spec: {
        schedule: "*/2 * * * * *",
        concurrencyPolicy: "Forbid",
        retention: { keepLast: 2 },
        template: { spec: backupSpec(h, { clusterName: "sched" }) },
      },
    });
    const stored = () => bucketKeys(h).then((keys) => keys.filter((k) => /\/sched-.*\.age$/.test(k)));
    await waitFor(
      "three successful scheduled backups and a prune",
      async () => {
        const s = h.api.get("etcdbackupschedules", "default", "every2s") as Obj | undefined;
        const ok = h.api
          .list("etcdbackups", "default")
          .filter((b) => (b as Obj).status?.phase === "Succeeded" && b.metadata.name.startsWith("every2s-"));
        return ok.length >= 2 &&
          eventsOf("every2s").filter((e) => e.reason === "Pruned").length >= 2 &&
          s?.status?.lastSuccessfulBackup
          ? true
          : undefined;
      },
      30_000,
    );
    h.api.put("etcdbackupschedules", "default", {
      ...(h.api.get("etcdbackupschedules", "default", "every2s") as Obj),
      spec: {
        ...(h.api.get("etcdbackupschedules", "default", "every2s") as unknown as { spec: object }).spec,
        suspend: true,
      },
    } as never);
    await new Promise((r) => setTimeout(r, 3000)); // let a backup in flight finish, and its prune run
    const s = h.api.get("etcdbackupschedules", "default", "every2s") as Obj;
    assert.equal(s.status?.conditions.find((c: { type: string }) => c.type === "Ready").reason, "Suspended");
    assert.ok(s.status?.lastScheduleTime);
    assert.ok((await stored()).length <= 2, (await stored()).join(", "));
    const children = h.api
      .list("etcdbackups", "default")
      .filter((b) => b.metadata.name.startsWith("every2s-")) as Obj[];
    for (const c of children) {
      assert.equal(c.metadata.ownerReferences?.[0]?.kind, "EtcdBackupSchedule");
      assert.equal(c.metadata.ownerReferences?.[0]?.name, "every2s");
    }
    // The EtcdBackups of pruned backups are deleted with them.
    const succeeded = children.filter((c) => c.status?.phase === "Succeeded");
    assert.ok(succeeded.length <= 2, succeeded.map((c) => c.metadata.name).join(", "));
    const storedKeys = await stored();
    for (const c of succeeded) assert.ok(storedKeys.includes(c.status?.key), c.status?.key);
  });

  it("reports a bad cron expression as Failed InvalidSchedule with an Event", async () => {
    h.api.put("etcdbackupschedules", "default", {
      apiVersion: "etcd-backup.dev/v1alpha1",
      kind: "EtcdBackupSchedule",
      metadata: { name: "badcron", namespace: "default" },
      spec: { schedule: "61 * * * *", template: { spec: backupSpec(h) } },
    });
    const s = await waitFor("Failed", () => {
      const o = h.api.get("etcdbackupschedules", "default", "badcron") as Obj | undefined;
      return o?.status?.conditions?.find(
        (c: { type: string; status: string }) => c.type === "Failed" && c.status === "True",
      )
        ? o
        : undefined;
    });
    const failed = s.status?.conditions.find((c: { type: string }) => c.type === "Failed");
    assert.equal(failed.reason, "InvalidSchedule");
    assert.match(failed.message, /minute: 61/);
    assert.ok(eventsOf("badcron").some((e) => e.reason === "InvalidSchedule" && e.type === "Warning"));
  });
});
