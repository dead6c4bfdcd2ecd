/**
 * `spec.source.controlPlaneRef` end to end, against the Kubernetes API server STAND-IN (test/fixtures/
 * kube-apiserver-standin.ts: no real kube-apiserver runs here), the Talos STAND-IN (a real gRPC apid contract)
 * serving the control-plane nodes from a real etcd, a real mTLS etcd for the kubeadm flavour, and a real S3
 * server (s3rver): each reference kind resolves to the right nodes and talosconfig (or etcd CA) and stores a
 * backup that the real `age -d` opens; a missing Secret, a control plane not ready and an unreachable node each
 * end Failed with a Warning Event naming the cause.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { OperatorMetrics } from "../../../src/operator/metrics.ts";
import { runOperator } from "../../../src/operator/operator.ts";
import { type EtcdServer, fillKeys, startEtcd } from "../../fixtures/etcd-server.ts";
import { issueCert, makePki, type TestPki } from "../../fixtures/pki.ts";
import { startTalosStandIn, type TalosStandIn, talosconfigYaml } from "../../fixtures/talos-standin.ts";
import { ageDecrypt, backupSpec, type Harness, quietLog, startHarness, waitFor } from "../harness.ts";
import {
  FAILING_REFERENCE_CASES,
  KUBEADM_REFERENCE,
  NS,
  TALOS_REFERENCE_CASES,
  writeControlPlaneObjects,
} from "./cluster-objects.ts";

type Obj = {
  metadata: { name: string };
  // biome-ignore lint/suspicious/noExplicitAny: status fields are checked one by one
  status?: Record<string, any>;
};
type KubeEvent = { involvedObject: { name: string }; reason: string; type: string; message: string };

describe("operator: controlPlaneRef to Talos operator and Cluster API control planes", () => {
  let h: Harness;
  let pki: TestPki;
  let talos: TalosStandIn;
  let kubeadmEtcd: EtcdServer;
  let stop: AbortController;
  let running: Promise<void>;

  before(async () => {
    h = await startHarness();
    pki = makePki(h.dir);
    const client = issueCert(pki, "talos-client", {
      cn: "etcd-backup",
      usage: "client",
      org: "os:etcd:backup",
    });
    [talos, kubeadmEtcd] = await Promise.all([
      startTalosStandIn({
        caCert: pki.caCert,
        serverCert: pki.serverCert,
        serverKey: pki.serverKey,
        etcd: h.etcd,
      }),
      startEtcd({
        tls: {
          caCert: pki.caCert,
          serverCert: pki.serverCert,
          serverKey: pki.serverKey,
          clientCertAuth: true,
        },
        clientCert: { cert: pki.clientCert, key: pki.clientKey },
      }),
    ]);
    await fillKeys(kubeadmEtcd, 100, { prefix: "/kubeadm/key-" });
    const talosconfig = (context: string, endpoints: string[]) =>
      talosconfigYaml({ context, endpoints, caCert: pki.caCert, cert: client.cert, key: client.key });

    await writeControlPlaneObjects((plural, obj) => h.api.put(plural, NS, obj as never), {
      talosEndpoint: talos.endpoint,
      talosconfig,
      etcdCa: { cert: readFileSync(pki.caCert), key: readFileSync(pki.caKey) },
    });

    stop = new AbortController();
    running = runOperator(
      {
        kube: h.kube,
        namespace: NS,
        maxConcurrent: 4,
        identity: "test-operator",
        metrics: new OperatorMetrics(),
        log: quietLog(),
        retryBaseMs: 500,
        watchTimeoutSeconds: 5,
        controlPlanes: { etcdPort: Number(new URL(kubeadmEtcd.endpoint).port), dialTimeoutMs: 3000 },
      },
      stop.signal,
    );
  });
  after(async () => {
    stop?.abort();
    await running;
    await Promise.allSettled([talos?.stop(), kubeadmEtcd?.destroy()]);
    await h?.stop();
  });

  const backup = (name: string) => h.api.get("etcdbackups", NS, name) as Obj | undefined;
  const eventsOf = (name: string) =>
    (h.api.list("events", NS) as unknown as KubeEvent[]).filter((e) => e.involvedObject.name === name);
  const create = (name: string, ref: object, extra: Record<string, unknown> = {}) => {
    const spec = backupSpec(h, extra) as Record<string, unknown>;
    delete spec.clusterName;
    spec.source = { controlPlaneRef: ref };
    h.api.put("etcdbackups", NS, {
      apiVersion: "etcd-backup.dev/v1alpha1",
      kind: "EtcdBackup",
      metadata: { name, namespace: NS },
      spec,
    });
  };
  const finished = (name: string) =>
    waitFor(
      `${name} to finish`,
      () => {
        const b = backup(name);
        return b?.status?.phase === "Succeeded" || b?.status?.phase === "Failed" ? b : undefined;
      },
      30_000,
    );
  const failedCondition = (b: Obj) => b.status?.conditions.find((c: { type: string }) => c.type === "Failed");

  for (const c of TALOS_REFERENCE_CASES) {
    it(`${c.name}: the talosconfig from its provider's Secret, node ${c.node} first; age -d opens the backup`, async () => {
      const calls = talos.calls.length;
      create(c.name, c.ref);
      const done = await finished(c.name);
      assert.equal(done.status?.phase, "Succeeded", JSON.stringify(done.status?.conditions));
      assert.match(done.status?.key, new RegExp(`^clusters/demo/${c.cluster}-\\d{4}-.*\\.snap\\.zst\\.age$`));
      const snapshots = talos.calls.slice(calls).filter((x) => x.method === "EtcdSnapshot");
      assert.deepEqual(
        snapshots.map((x) => [x.node, x.allowed]),
        [[c.node, true]],
      );
      const plain = await ageDecrypt(h, done.status?.key);
      assert.equal(plain.readUInt32LE(0), 0xfd2fb528, "zstd inside age");
      assert.ok(eventsOf(c.name).some((e) => e.reason === "BackupSucceeded"));
    });
  }

  it("capi-kubeadm: a client certificate from <cluster>-etcd reaches the member at the Machine's address", async () => {
    create("capi-kubeadm", KUBEADM_REFERENCE);
    const done = await finished("capi-kubeadm");
    assert.equal(done.status?.phase, "Succeeded", JSON.stringify(done.status?.conditions));
    const plain = await ageDecrypt(h, done.status?.key);
    assert.equal(plain.readUInt32LE(0), 0xfd2fb528);
    const manifest = JSON.parse(
      readFileSync(join(h.s3.directory, h.bucket, `${done.status?.manifestKey}._S3rver_object`), "utf8"),
    ) as { source: { kind: string; endpoint: string } };
    assert.equal(manifest.source.kind, "etcd");
    assert.equal(
      manifest.source.endpoint,
      kubeadmEtcd.endpoint,
      "the kubeadm etcd, through the Machine's address",
    );
  });

  for (const c of FAILING_REFERENCE_CASES) {
    it(`${c.name}: Failed with ${c.reason} and a Warning Event naming the cause`, async () => {
      create(c.name, c.ref, { backoffLimit: 0 });
      const done = await finished(c.name);
      assert.equal(done.status?.phase, "Failed");
      const failed = failedCondition(done);
      assert.equal(failed.reason, c.reason);
      assert.match(failed.message, c.message);
      const ev = await waitFor("Warning Event", () => eventsOf(c.name).find((e) => e.type === "Warning"));
      assert.equal(ev.reason, c.reason);
      assert.match(ev.message, c.message);
    });
  }
});
