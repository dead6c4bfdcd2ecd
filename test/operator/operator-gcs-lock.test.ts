import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { DELETE_FINALIZER } from "../../src/operator/api.ts";
import { OperatorMetrics } from "../../src/operator/metrics.ts";
import { runOperator } from "../../src/operator/operator.ts";
import { type GcsRetentionProxy, startGcsRetentionProxy } from "../fixtures/gcs-retention-proxy.ts";
import { startGcsServer, type TestGcsServer } from "../fixtures/gcs-server.ts";
import { fakeGcsPeer, skipReason } from "../fixtures/peers.ts";
import { type Harness, quietLog, startHarness, waitFor } from "./harness.ts";

type Obj = {
  metadata: { name: string; finalizers?: string[]; deletionTimestamp?: string };
  // biome-ignore lint/suspicious/noExplicitAny: status fields are checked one by one
  status?: Record<string, any>;
};
type KubeEvent = { involvedObject: { name: string }; reason: string; type: string; message: string };
type ObjectResource = { timeCreated: string; retention?: { mode: string; retainUntilTime: string } };

const DAY_MS = 86_400_000;

/**
 * The operator with an EtcdBackup whose `destination.gcs` asks for `objectLock: {mode: compliance, days: 1}`,
 * against the API server stand-in and fake-gcs-server (a stand-in for the service) behind the loopback STAND-IN
 * proxy of test/fixtures/gcs-retention-proxy.ts: it gives the bucket `objectRetention` and refuses a delete of
 * an object whose retention is still on, as GCS does (fake-gcs-server 1.56.1 has neither). The stored backup and
 * manifest carry retention `Locked` for a day (read from the emulator's JSON API, not through our store), and the
 * BackupSucceeded Event says until when; deleting
 * the EtcdBackup (deletionPolicy Delete) is refused by the bucket: a Warning Event says what holds the object and
 * until when, the finalizer stays, and the objects stay. A lock asked of a bucket without object retention fails
 * the backup in one line that says what to do.
 */
describe("operator: gcs destination with objectLock (fake-gcs-server + retention stand-in)", {
  skip: skipReason(fakeGcsPeer(), "fake-gcs-server"),
}, () => {
  let h: Harness;
  let gcs: TestGcsServer;
  let proxy: GcsRetentionProxy;
  let stop: AbortController;
  let running: Promise<void>;

  before(async () => {
    [h, gcs] = await Promise.all([startHarness(), startGcsServer()]);
    await gcs.createBucket("etcd-backups");
    await gcs.createBucket("plain");
    proxy = await startGcsRetentionProxy(gcs.endpoint, ["etcd-backups"], { refuseHeldDeletes: true });
    stop = new AbortController();
    running = runOperator(
      {
        kube: h.kube,
        namespace: "default",
        maxConcurrent: 2,
        identity: "test-operator-gcs-lock",
        metrics: new OperatorMetrics(),
        log: quietLog(),
        retryBaseMs: 500,
        watchTimeoutSeconds: 5,
      },
      stop.signal,
    );
  });
  after(async () => {
    stop?.abort();
    await running;
    await proxy?.close();
    await Promise.allSettled([h?.stop(), gcs?.stop()]);
  });

  const backup = (name: string) => h.api.get("etcdbackups", "default", name) as Obj | undefined;
  const eventsOf = (name: string) =>
    (h.api.list("events", "default") as unknown as KubeEvent[]).filter((e) => e.involvedObject.name === name);
  const create = (name: string, bucket: string, extra: Record<string, unknown> = {}) =>
    h.api.put("etcdbackups", "default", {
      apiVersion: "etcd-backup.dev/v1alpha1",
      kind: "EtcdBackup",
      metadata: { name, namespace: "default" },
      spec: {
        clusterName: "demo",
        source: { etcd: { endpoints: [h.etcd.endpoint], dialTimeoutSeconds: 3 } },
        destination: {
          gcs: {
            bucket,
            prefix: "clusters/demo",
            endpoint: proxy.endpoint,
            objectLock: { mode: "compliance", days: 1 },
          },
        },
        encryption: { recipients: [h.recipient] },
        deletionPolicy: "Delete",
        ...extra,
      },
    });
  const objectResource = async (bucket: string, name: string) => {
    const res = await fetch(`${gcs.endpoint}/storage/v1/b/${bucket}/o/${encodeURIComponent(name)}`);
    assert.equal(res.status, 200, name);
    return (await res.json()) as ObjectResource;
  };

  it("stores the backup and its manifest with Locked retention for a day; deleting the EtcdBackup is refused with a Warning and both objects stay", async () => {
    create("locked-one", "etcd-backups");
    const done = await waitFor("Succeeded", () => {
      const b = backup("locked-one");
      return b?.status?.phase === "Succeeded" || b?.status?.phase === "Failed" ? b : undefined;
    });
    assert.equal(done.status?.phase, "Succeeded", JSON.stringify(done.status));
    const key = done.status?.key as string;
    const manifestKey = done.status?.manifestKey as string;
    assert.equal(manifestKey, `${key}.json`);
    assert.deepEqual(await gcs.objectNames("etcd-backups"), [key, manifestKey].sort());
    const untilDates = new Set<string>();
    for (const name of [key, manifestKey]) {
      const resource = await objectResource("etcd-backups", name);
      assert.equal(resource.retention?.mode, "Locked", `${name}: ${JSON.stringify(resource)}`);
      const lockedFor = Date.parse(resource.retention!.retainUntilTime) - Date.parse(resource.timeCreated);
      assert.ok(Math.abs(lockedFor - DAY_MS) < 60_000, `${name}: locked for ${lockedFor} ms, want one day`);
      untilDates.add(resource.retention!.retainUntilTime.slice(0, 10));
    }
    // The Event says it is locked and until when (read back from the bucket).
    const keyUntil = (await objectResource("etcd-backups", key)).retention!.retainUntilTime;
    const succeeded = eventsOf("locked-one").find((e) => e.reason === "BackupSucceeded");
    assert.match(
      succeeded?.message ?? "",
      new RegExp(
        `^stored gs://etcd-backups/${key.replace(/\./g, "\\.")} \\(\\d+ bytes, db \\d+ bytes\\), locked: compliance until ${new Date(keyUntil).toISOString().replace(/\.\d{3}Z$/, "Z")}$`,
      ),
    );
    // The lock was asked for by the upload itself (the session's initiation), as on GCS.
    const sent = proxy.initiations.find((i) => i.name === key)?.body.retention as
      | { mode: string }
      | undefined;
    assert.equal(sent?.mode, "Locked");

    h.api.remove("etcdbackups", "default", "locked-one");
    const refused = await waitFor("a DeleteFailed Event", async () =>
      eventsOf("locked-one").find((e) => e.reason === "DeleteFailed"),
    );
    assert.equal(refused.type, "Warning");
    const until = [...untilDates][0]!;
    // What holds it and until when (read back from the object), then the service's own words, then what to do.
    const escaped = (t: string) => t.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    assert.match(
      refused.message,
      new RegExp(
        `^cannot delete the stored backup \\(DeleteFailed\\): delete gs://etcd-backups/${escaped(key)}: object lock compliance until ${until}: held by Google Cloud Storage \\(403: Object '${escaped(`etcd-backups/${key}`)}' is subject to bucket's retention policy or object retention and cannot be deleted or overwritten until ${until}T[^)]+\\); the finalizer ${escaped(DELETE_FINALIZER)} stays until it succeeds \\(or remove it to keep the object\\)$`,
      ),
    );
    assert.ok(proxy.refusedDeletes.includes(`etcd-backups/${key}`), proxy.refusedDeletes.join(", "));
    // Still there, still held; the operator retries (the finalizer stays) and nothing is deleted meanwhile.
    await new Promise((r) => setTimeout(r, 2_000));
    const after = backup("locked-one");
    assert.ok(after?.metadata.deletionTimestamp, "being deleted");
    assert.ok(after?.metadata.finalizers?.includes(DELETE_FINALIZER), "the finalizer stays");
    assert.deepEqual(await gcs.objectNames("etcd-backups"), [key, manifestKey].sort());
    assert.ok(!eventsOf("locked-one").some((e) => e.reason === "Deleted"));
  });

  it("a lock on a bucket without object retention: Failed in one line that says what to do, nothing stored", async () => {
    create("no-retention", "plain", { backoffLimit: 0 });
    const b = await waitFor("Failed", () => {
      const o = backup("no-retention");
      return o?.status?.phase === "Failed" ? o : undefined;
    });
    const failed = b.status?.conditions.find((c: { type: string }) => c.type === "Failed");
    assert.match(
      failed.message,
      /bucket plain has no object retention \(use a bucket created with: gcloud storage buckets create gs:\/\/plain --enable-per-object-retention, or ask for no object lock\)/,
    );
    assert.ok(!String(failed.message).includes("\n"), "one line");
    assert.deepEqual(await gcs.objectNames("plain"), []);
  });
});
