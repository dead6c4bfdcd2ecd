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

type Obj = { metadata: { name: string }; status?: Record<string, any> };

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

  it("takes an EtcdBackup to Ready with an age-encrypted object in the bucket", async () => {
    h.api.put("etcdbackups", "default", {
      apiVersion: "etcd-backup.dev/v1alpha1",
      kind: "EtcdBackup",
      metadata: { name: "one", namespace: "default" },
      spec: backupSpec(h),
    });
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
    const events = h.api.list("events", "default").filter((e: any) => e.involvedObject.name === "one");
    assert.deepEqual(events.map((e: any) => e.reason).sort(), ["BackupStarted", "BackupSucceeded"]);
  });
});
