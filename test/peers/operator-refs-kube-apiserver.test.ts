/**
 * `spec.source.controlPlaneRef` against the REAL kube-apiserver v1.35.4 (test/fixtures/kube-apiserver.ts), with the
 * operator installed as a user installs it (deploy/operator's CRDs and rbac.yaml, a ServiceAccount token), so the
 * reads of other projects' objects (TalosControlPlane, Cluster, Machine, KubeadmControlPlane, their Secrets) pass
 * through real RBAC and real discovery. Those projects' CRDs are not available here: minimal CRDs of the same
 * group, version and kind (every field kept) stand in for them, which the operator cannot tell apart since it only
 * reads. The Talos nodes are the Talos STAND-IN (a real gRPC apid contract over a real etcd); the kubeadm member is
 * a real etcd with client-certificate auth; S3 is s3rver. The same objects and cases run against the API server
 * stand-in in test/operator/control-plane-refs/operator-refs.test.ts.
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { KubeConfig } from "@kubernetes/client-node";
import { generateIdentity, identityFileText } from "../../src/age/index.ts";
import { Kube } from "../../src/operator/kube.ts";
import { OperatorMetrics } from "../../src/operator/metrics.ts";
import { runOperator } from "../../src/operator/operator.ts";
import { type EtcdServer, fillKeys, startEtcd } from "../fixtures/etcd-server.ts";
import { type KubeApiserver, startKubeApiserver } from "../fixtures/kube-apiserver.ts";
import {
  GROUP,
  installOperator,
  type KubeObject,
  type RealApi,
  realApi,
  VERSION,
} from "../fixtures/kube-apiserver-operator.ts";
import { kubeApiserverPeer } from "../fixtures/peers.ts";
import { issueCert, makePki, type TestPki } from "../fixtures/pki.ts";
import { startS3Server, type TestS3Server } from "../fixtures/s3-server.ts";
import { startTalosStandIn, type TalosStandIn, talosconfigYaml } from "../fixtures/talos-standin.ts";
import {
  FAILING_REFERENCE_CASES,
  FOREIGN_KINDS,
  KUBEADM_REFERENCE,
  NS,
  TALOS_REFERENCE_CASES,
  writeControlPlaneObjects,
} from "../operator/control-plane-refs/cluster-objects.ts";
import { ageDecrypt, backupSpec, quietLog, waitFor } from "../operator/harness.ts";

const kubeApiserver = kubeApiserverPeer();

describe("operator: controlPlaneRef against the real kube-apiserver (RBAC as deployed)", {
  skip: kubeApiserver
    ? false
    : "no kube-apiserver built into .peers/ (scripts/install-peers.sh kube-apiserver)",
  timeout: 300_000,
}, () => {
  let kas: KubeApiserver;
  let real: RealApi;
  let etcd: EtcdServer;
  let kubeadmEtcd: EtcdServer;
  let s3: TestS3Server;
  let talos: TalosStandIn;
  let pki: TestPki;
  let dir: string;
  let identityPath: string;
  let recipient: string;
  let stop: AbortController | undefined;
  let running: Promise<void> | undefined;
  const bucket = "backups";
  const h = () => ({ etcd, s3, bucket, recipient, dir, identityPath });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "etcd-backup-refs-kas-"));
    pki = makePki(dir);
    const client = issueCert(pki, "talos-client", {
      cn: "etcd-backup",
      usage: "client",
      org: "os:etcd:backup",
    });
    [kas, etcd, s3] = await Promise.all([startKubeApiserver(), startEtcd({}), startS3Server()]);
    await fillKeys(etcd, 200);
    await s3.createBucket(bucket);
    [talos, kubeadmEtcd] = await Promise.all([
      startTalosStandIn({ caCert: pki.caCert, serverCert: pki.serverCert, serverKey: pki.serverKey, etcd }),
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
    const gen = generateIdentity();
    identityPath = join(dir, "identity.txt");
    await writeFile(identityPath, identityFileText(gen), { mode: 0o600 });
    recipient = gen.recipient;

    real = realApi(kas);
    const operatorKubeconfig = await installOperator(real, dir);
    await real.defineForeignKinds(FOREIGN_KINDS);
    await writeControlPlaneObjects((_plural, obj) => real.create(obj as KubeObject), {
      talosEndpoint: talos.endpoint,
      talosconfig: (context, endpoints) =>
        talosconfigYaml({ context, endpoints, caCert: pki.caCert, cert: client.cert, key: client.key }),
      etcdCa: { cert: await readFile(pki.caCert), key: await readFile(pki.caKey) },
    });
    await real.create({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "s3-credentials", namespace: NS },
      data: {
        AWS_ACCESS_KEY_ID: Buffer.from(s3.accessKeyId).toString("base64"),
        AWS_SECRET_ACCESS_KEY: Buffer.from(s3.secretAccessKey).toString("base64"),
      },
    });

    const kc = new KubeConfig();
    kc.loadFromFile(operatorKubeconfig);
    stop = new AbortController();
    running = runOperator(
      {
        kube: new Kube(kc),
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
    await running?.catch(() => {});
    await Promise.allSettled([
      talos?.stop(),
      kubeadmEtcd?.destroy(),
      etcd?.destroy(),
      s3?.stop(),
      kas?.stop(),
    ]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const create = (name: string, ref: object, extra: Record<string, unknown> = {}) => {
    const spec = backupSpec(h(), extra) as Record<string, unknown>;
    delete spec.clusterName;
    spec.source = { controlPlaneRef: ref };
    return real.create({
      apiVersion: `${GROUP}/${VERSION}`,
      kind: "EtcdBackup",
      metadata: { name, namespace: NS },
      spec,
    });
  };
  const finished = (name: string) =>
    waitFor(
      `${name} to finish`,
      async () => {
        const b = await real.get("EtcdBackup", name, NS);
        return b?.status?.phase === "Succeeded" || b?.status?.phase === "Failed" ? b : undefined;
      },
      60_000,
    );
  const eventsOf = async (name: string) =>
    (await real.list("Event", NS)).filter(
      (e) => (e as unknown as { involvedObject: { name: string } }).involvedObject.name === name,
    ) as unknown as { reason: string; type: string; message: string }[];

  for (const c of TALOS_REFERENCE_CASES) {
    it(`${c.name}: the talosconfig from its provider's Secret, node ${c.node} first; age -d opens the backup`, async () => {
      const calls = talos.calls.length;
      await create(c.name, c.ref);
      const done = await finished(c.name);
      assert.equal(done.status?.phase, "Succeeded", JSON.stringify(done.status?.conditions));
      assert.match(done.status?.key, new RegExp(`^clusters/demo/${c.cluster}-\\d{4}-.*\\.snap\\.zst\\.age$`));
      const snapshots = talos.calls.slice(calls).filter((x) => x.method === "EtcdSnapshot");
      assert.deepEqual(
        snapshots.map((x) => [x.node, x.allowed]),
        [[c.node, true]],
      );
      const plain = await ageDecrypt(h(), done.status?.key);
      assert.equal(plain.readUInt32LE(0), 0xfd2fb528, "zstd inside age");
      // The operator writes the status first and the Event after it: wait for the Event.
      await waitFor(
        `${c.name}'s BackupSucceeded Event`,
        async () => ((await eventsOf(c.name)).some((e) => e.reason === "BackupSucceeded") ? true : undefined),
        20_000,
      );
    });
  }

  it("capi-kubeadm: a client certificate from <cluster>-etcd reaches the member at the Machine's address", async () => {
    await create("capi-kubeadm", KUBEADM_REFERENCE);
    const done = await finished("capi-kubeadm");
    assert.equal(done.status?.phase, "Succeeded", JSON.stringify(done.status?.conditions));
    const plain = await ageDecrypt(h(), done.status?.key);
    assert.equal(plain.readUInt32LE(0), 0xfd2fb528);
  });

  for (const c of FAILING_REFERENCE_CASES) {
    it(`${c.name}: Failed with ${c.reason} and a Warning Event naming the cause`, async () => {
      await create(c.name, c.ref, { backoffLimit: 0 });
      const done = await finished(c.name);
      assert.equal(done.status?.phase, "Failed");
      const failed = done.status?.conditions.find((x: { type: string }) => x.type === "Failed");
      assert.equal(failed.reason, c.reason);
      assert.match(failed.message, c.message);
      const ev = await waitFor(
        "Warning Event",
        async () => (await eventsOf(c.name)).find((e) => e.type === "Warning"),
        10_000,
      );
      assert.equal(ev.reason, c.reason);
    });
  }
});
