import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { OperatorMetrics } from "../../src/operator/metrics.ts";
import { runOperator } from "../../src/operator/operator.ts";
import { registerSecret } from "../fixtures/cli.ts";
import { startGcsServer, type TestGcsServer } from "../fixtures/gcs-server.ts";
import { fakeGcsPeer, skipReason } from "../fixtures/peers.ts";
import { type Harness, quietLog, startHarness, waitFor } from "./harness.ts";

type Obj = {
  metadata: { name: string; finalizers?: string[] };
  // biome-ignore lint/suspicious/noExplicitAny: status fields are checked one by one
  status?: Record<string, any>;
};
type KubeEvent = { involvedObject: { name: string }; reason: string; type: string; message: string };

/**
 * The operator with an EtcdBackup whose destination is Google Cloud Storage (fake-gcs-server, built from its Go
 * module; a stand-in for the service): stored with the pod's Application Default Credentials (none needed by
 * the emulator), deleted through the finalizer, and a Secret with a broken service-account key ends Failed with a
 * message naming the Secret, never its contents.
 */
describe("operator with a gcs destination (fake-gcs-server)", {
  skip: skipReason(fakeGcsPeer(), "fake-gcs-server"),
}, () => {
  let h: Harness;
  let gcs: TestGcsServer;
  let stop: AbortController;
  let running: Promise<void>;

  before(async () => {
    [h, gcs] = await Promise.all([startHarness(), startGcsServer()]);
    await gcs.createBucket("etcd-backups");
    stop = new AbortController();
    running = runOperator(
      {
        kube: h.kube,
        namespace: "default",
        maxConcurrent: 2,
        identity: "test-operator-gcs",
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
    await Promise.allSettled([h?.stop(), gcs?.stop()]);
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
  const spec = (gcsSpec: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
    clusterName: "demo",
    source: { etcd: { endpoints: [h.etcd.endpoint], dialTimeoutSeconds: 3 } },
    destination: {
      gcs: { bucket: "etcd-backups", prefix: "clusters/demo", endpoint: gcs.endpoint, ...gcsSpec },
    },
    encryption: { recipients: [h.recipient] },
    ...extra,
  });

  it("stores to gs://, reports the location, and deletes through the finalizer", async () => {
    create("gcs-one", spec({}, { deletionPolicy: "Delete" }));
    const done = await waitFor("Succeeded", () => {
      const b = backup("gcs-one");
      return b?.status?.phase === "Succeeded" || b?.status?.phase === "Failed" ? b : undefined;
    });
    assert.equal(done.status?.phase, "Succeeded", JSON.stringify(done.status));
    const key = done.status?.key as string;
    assert.match(key, /^clusters\/demo\/demo-.*\.snap\.zst\.age$/);
    assert.equal(done.status?.location, "gs://etcd-backups");
    assert.deepEqual(await gcs.objectNames("etcd-backups"), [key, `${key}.json`].sort());
    h.api.remove("etcdbackups", "default", "gcs-one");
    await waitFor("CR gone", () => (backup("gcs-one") ? undefined : true));
    assert.deepEqual(await gcs.objectNames("etcd-backups"), []);
    const deleted = eventsOf("gcs-one").find((e) => e.reason === "Deleted");
    assert.match(
      deleted?.message ?? "",
      new RegExp(`^deleted gs://etcd-backups/${key.replace(/\./g, "\\.")}$`),
    );
  });

  it("a Secret with a broken service-account key: Failed, naming the Secret, never the key", async () => {
    const marker = `broken-key-${randomBytes(6).toString("hex")}`;
    registerSecret(marker, "the broken service-account key");
    h.api.put("secrets", "default", {
      metadata: { name: "gcs-key", namespace: "default" },
      data: {
        "key.json": Buffer.from(
          JSON.stringify({
            type: "service_account",
            client_email: "b@p.iam.gserviceaccount.com",
            private_key: marker,
          }),
        ).toString("base64"),
      },
    });
    create("gcs-bad-key", spec({ credentialsSecretRef: { name: "gcs-key" } }, { backoffLimit: 0 }));
    const b = await waitFor("Failed", () => {
      const o = backup("gcs-bad-key");
      return o?.status?.phase === "Failed" ? o : undefined;
    });
    const failed = b.status?.conditions.find((c: { type: string }) => c.type === "Failed");
    assert.equal(failed.reason, "InvalidSpec");
    assert.match(
      failed.message,
      /cannot use the Google credentials in Secret default\/gcs-key key key\.json: its private_key is not a PEM private key/,
    );
    assert.ok(!JSON.stringify(b).includes(marker));
  });
});
