/**
 * The operator with an Azure Blob destination: credentials (account name and key) from a Secret, Azurite as the
 * service, the API server stand-in, real etcd. An EtcdBackup ends Ready with the object in the container, its
 * deletion (deletionPolicy Delete) removes it, and a wrong key ends Failed with a message that holds no key.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { BlobServiceClient, StorageSharedKeyCredential } from "@azure/storage-blob";
import { KubeConfig } from "@kubernetes/client-node";
import { generateIdentity } from "../../src/age/index.ts";
import { Kube } from "../../src/operator/kube.ts";
import { OperatorMetrics } from "../../src/operator/metrics.ts";
import { runOperator } from "../../src/operator/operator.ts";
import { startAzurite, type TestAzurite } from "../fixtures/azurite-server.ts";
import { type EtcdServer, fillKeys, startEtcd } from "../fixtures/etcd-server.ts";
import { type KubeApiStandin, startKubeApiStandin } from "../fixtures/kube-apiserver-standin.ts";
import { assertNoSecrets, registerSecret } from "../fixtures/secrets.ts";
import { quietLog, waitFor } from "./harness.ts";

type Obj = {
  metadata: { name: string; finalizers?: string[] };
  // biome-ignore lint/suspicious/noExplicitAny: status fields are checked one by one
  status?: Record<string, any>;
};

describe("operator with an Azure Blob destination (Azurite)", () => {
  let etcd: EtcdServer;
  let azurite: TestAzurite;
  let api: KubeApiStandin;
  let stop: AbortController;
  let running: Promise<void>;
  let blobs: BlobServiceClient;
  const recipient = generateIdentity().recipient;
  const wrongKey = randomBytes(64).toString("base64");

  before(async () => {
    [etcd, azurite, api] = await Promise.all([
      startEtcd(),
      startAzurite(),
      startKubeApiStandin({ bookmarkIntervalMs: 1000 }),
    ]);
    await fillKeys(etcd, 300);
    await azurite.createContainer("backups");
    registerSecret(azurite.key, "Azurite's account key");
    registerSecret(wrongKey, "a wrong Azure key");
    blobs = new BlobServiceClient(
      azurite.endpoint,
      new StorageSharedKeyCredential(azurite.account, azurite.key),
    );
    const secret = (name: string, key: string) =>
      api.put("secrets", "default", {
        metadata: { name, namespace: "default" },
        type: "Opaque",
        data: {
          AZURE_STORAGE_ACCOUNT: Buffer.from(azurite.account).toString("base64"),
          AZURE_STORAGE_KEY: Buffer.from(key).toString("base64"),
        },
      });
    secret("azure-credentials", azurite.key);
    secret("azure-wrong", wrongKey);
    const kc = new KubeConfig();
    kc.loadFromString(api.kubeconfig);
    stop = new AbortController();
    running = runOperator(
      {
        kube: new Kube(kc),
        namespace: "default",
        maxConcurrent: 2,
        identity: "test-operator",
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
    const written = ["events", "etcdbackups"].flatMap((plural) => api.list(plural));
    await Promise.allSettled([etcd?.destroy(), azurite?.stop(), api?.stop()]);
    assertNoSecrets(JSON.stringify(written), "the Events and statuses the operator wrote");
  });

  const spec = (extra: Record<string, unknown> = {}, secretName = "azure-credentials") => ({
    clusterName: "demo",
    source: { etcd: { endpoints: [etcd.endpoint], dialTimeoutSeconds: 3 } },
    destination: {
      azureBlob: {
        container: "backups",
        prefix: "clusters/demo",
        endpoint: azurite.endpoint,
        credentialsSecretRef: { name: secretName },
      },
    },
    encryption: { recipients: [recipient] },
    ...extra,
  });
  const create = (name: string, s: object) =>
    api.put("etcdbackups", "default", {
      apiVersion: "etcd-backup.dev/v1alpha1",
      kind: "EtcdBackup",
      metadata: { name, namespace: "default" },
      spec: s,
    });
  const backup = (name: string) => api.get("etcdbackups", "default", name) as Obj | undefined;
  const blobNames = async () => {
    const out: string[] = [];
    for await (const b of blobs.getContainerClient("backups").listBlobsFlat()) out.push(b.name);
    return out.sort();
  };

  it("takes an EtcdBackup to Ready with the object in the container; deletion removes it", async () => {
    create("one", spec({ deletionPolicy: "Delete" }));
    const done = await waitFor("Succeeded", () => {
      const b = backup("one");
      return b?.status?.phase === "Succeeded" || b?.status?.phase === "Failed" ? b : undefined;
    });
    assert.equal(done.status?.phase, "Succeeded", JSON.stringify(done.status));
    const key = done.status?.key as string;
    assert.match(key, /^clusters\/demo\/demo-.*\.snap\.zst\.age$/);
    assert.equal(done.status?.location, "azblob://backups");
    assert.deepEqual(await blobNames(), [key, `${key}.json`].sort());
    const ready = done.status?.conditions.find((c: { type: string }) => c.type === "Ready");
    assert.match(ready.message, /azblob:\/\/backups\/clusters\/demo\//);

    api.remove("etcdbackups", "default", "one");
    await waitFor("CR gone", () => (backup("one") ? undefined : true));
    assert.deepEqual(await blobNames(), []);
  });

  it("a wrong key in the Secret ends Failed with a message naming the key's source, not the key", async () => {
    create("wrong", spec({ backoffLimit: 0 }, "azure-wrong"));
    const b = await waitFor("Failed", () => {
      const o = backup("wrong");
      return o?.status?.phase === "Failed" ? o : undefined;
    });
    const failed = b.status?.conditions.find((c: { type: string }) => c.type === "Failed");
    assert.match(failed.message, /Azure (rejected the credentials|denied access to container backups)/);
    assert.ok(!JSON.stringify(b).includes(wrongKey));
    assert.deepEqual(await blobNames(), []);
  });
});
