/**
 * The operator's other sources and destinations, and the schedule's concurrency policies: a Talos source (the
 * stand-in, talosconfig from a Secret), etcd with mTLS from a Secret, S3 over https with its CA from a Secret,
 * `revision` against the stored manifest, and concurrencyPolicy Replace and Allow with backups slowed by a proxy.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { OperatorMetrics } from "../../src/operator/metrics.ts";
import { runOperator } from "../../src/operator/operator.ts";
import { hostPort, startProxy, type TcpProxy } from "../daemon/harness.ts";
import { type EtcdServer, fillKeys, startEtcd } from "../fixtures/etcd-server.ts";
import { issueCert, makePki, type TestPki } from "../fixtures/pki.ts";
import { startS3Server, type TestS3Server } from "../fixtures/s3-server.ts";
import { startTalosStandIn, type TalosStandIn, talosconfigYaml } from "../fixtures/talos-standin.ts";
import { backupSpec, bucketKeys, type Harness, quietLog, startHarness, waitFor } from "./harness.ts";

type Obj = {
  metadata: { name: string };
  // biome-ignore lint/suspicious/noExplicitAny: status fields are checked one by one
  status?: Record<string, any>;
};
type KubeEvent = { involvedObject: { name: string }; reason: string; type: string; message: string };

const b64 = (v: string | Buffer) => Buffer.from(v).toString("base64");

describe("operator: Talos, mTLS etcd, https S3, revision, concurrency policies", () => {
  let h: Harness;
  let pki: TestPki;
  let tlsEtcd: EtcdServer;
  let httpsS3: TestS3Server;
  let talos: TalosStandIn;
  let slowEtcd: EtcdServer;
  let slow: TcpProxy;
  let stop: AbortController;
  let running: Promise<void>;

  before(async () => {
    h = await startHarness();
    pki = makePki(h.dir);
    const talosClient = issueCert(pki, "talos-client", {
      cn: "etcd-backup",
      usage: "client",
      org: "os:etcd:backup",
    });
    [tlsEtcd, httpsS3, talos, slowEtcd] = await Promise.all([
      startEtcd({
        tls: {
          caCert: pki.caCert,
          serverCert: pki.serverCert,
          serverKey: pki.serverKey,
          clientCertAuth: true,
        },
        clientCert: { cert: pki.clientCert, key: pki.clientKey },
      }),
      startS3Server({ tls: { cert: readFileSync(pki.serverCert), key: readFileSync(pki.serverKey) } }),
      startTalosStandIn({
        caCert: pki.caCert,
        serverCert: pki.serverCert,
        serverKey: pki.serverKey,
        etcd: h.etcd,
      }),
      startEtcd(),
    ]);
    await fillKeys(tlsEtcd, 200, { prefix: "/tls/key-" });
    await httpsS3.createBucket("secure");
    await fillKeys(slowEtcd, 1500, { valueSize: 1024 });
    const status = JSON.parse(await slowEtcd.ctl(["endpoint", "status", "-w", "json"])) as {
      Status: { dbSize: number };
    }[];
    // A backup of slowEtcd through this proxy takes about 5 s.
    slow = await startProxy({ bytesPerSecond: Math.ceil(status[0]!.Status.dbSize / 5) });
    slow.setTarget(hostPort(slowEtcd.endpoint));

    const secret = (name: string, data: Record<string, string | Buffer>) =>
      h.api.put("secrets", "default", {
        metadata: { name, namespace: "default" },
        type: "Opaque",
        data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])),
      });
    secret("talosconfig", {
      config: talosconfigYaml({
        context: "lab",
        endpoints: [talos.endpoint],
        caCert: pki.caCert,
        cert: talosClient.cert,
        key: talosClient.key,
      }),
    });
    secret("etcd-client", {
      "ca.crt": readFileSync(pki.caCert),
      "tls.crt": readFileSync(pki.clientCert),
      "tls.key": readFileSync(pki.clientKey),
    });
    secret("minio-ca", { "ca.crt": readFileSync(pki.caCert) });

    stop = new AbortController();
    running = runOperator(
      {
        kube: h.kube,
        namespace: "default",
        maxConcurrent: 4,
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
    await Promise.allSettled([
      tlsEtcd?.destroy(),
      httpsS3?.stop(),
      talos?.stop(),
      slowEtcd?.destroy(),
      slow?.close(),
    ]);
    await h?.stop();
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
  const finished = (name: string, timeoutMs = 30_000) =>
    waitFor(
      `${name} to finish`,
      () => {
        const b = backup(name);
        return b?.status?.phase === "Succeeded" || b?.status?.phase === "Failed" ? b : undefined;
      },
      timeoutMs,
    );
  /** The stored manifest, read from s3rver's directory. */
  const manifestOf = (s3: TestS3Server, bucket: string, key: string) =>
    JSON.parse(readFileSync(join(s3.directory, bucket, `${key}.json._S3rver_object`), "utf8")) as {
      etcd?: { revision?: number };
      sha256: string;
      dbSize: number;
    };

  it("Talos source: talosconfig from a Secret; the snapshot the stand-in served is stored", async () => {
    const calls = talos.calls.length;
    create(
      "talos",
      backupSpec(h, {
        clusterName: "lab",
        source: { talos: { talosconfigSecretRef: { name: "talosconfig", key: "config" } } },
      }),
    );
    const done = await finished("talos");
    assert.equal(done.status?.phase, "Succeeded", JSON.stringify(done.status));
    assert.ok(talos.calls.slice(calls).some((c) => c.method.endsWith("EtcdSnapshot") && c.allowed));
    const served = talos.served.at(-1)!;
    const m = manifestOf(h.s3, h.bucket, done.status?.key);
    assert.equal(m.sha256, served.sha256);
    assert.equal(
      done.status?.dbSize,
      served.size - 32,
      "the served stream is the database and its sha256 trailer",
    );
    assert.ok((await bucketKeys(h)).includes(done.status?.key));
    // revision is the manifest's etcd.revision.
    assert.equal(typeof m.etcd?.revision, "number");
    assert.equal(done.status?.revision, m.etcd?.revision);
  });

  it("etcd with mTLS (CA, cert, key from a Secret) into S3 over https (CA from a Secret); revision matches", async () => {
    const spec = backupSpec(h, {
      clusterName: "secure",
      source: {
        etcd: { endpoints: [tlsEtcd.endpoint], dialTimeoutSeconds: 3, tlsSecretRef: { name: "etcd-client" } },
      },
    }) as ReturnType<typeof backupSpec> & { destination: { s3: Record<string, unknown> } };
    spec.destination.s3 = {
      ...spec.destination.s3,
      bucket: "secure",
      endpoint: httpsS3.endpoint,
      caSecretRef: { name: "minio-ca", key: "ca.crt" },
    };
    assert.match(httpsS3.endpoint, /^https:/);
    assert.match(tlsEtcd.endpoint, /^https:/);
    create("secure", spec);
    const done = await finished("secure");
    assert.equal(done.status?.phase, "Succeeded", JSON.stringify(done.status));
    assert.equal(done.status?.location, "s3://secure");
    const m = manifestOf(httpsS3, "secure", done.status?.key);
    const revision = Number(
      /"revision":(\d+)/.exec(await tlsEtcd.ctl(["endpoint", "status", "-w", "json"]))?.[1] ?? Number.NaN,
    );
    assert.equal(done.status?.revision, m.etcd?.revision);
    assert.equal(m.etcd?.revision, revision, "the revision etcd reports (nothing written since)");

    // Without the CA the https endpoint is refused: the Secret is what made it work.
    const noCa = structuredClone(spec);
    delete noCa.destination.s3.caSecretRef;
    create("secure-no-ca", { ...noCa, backoffLimit: 0 });
    const failed = await finished("secure-no-ca");
    assert.equal(failed.status?.phase, "Failed");
  });

  const schedule = (name: string, policy: string) =>
    h.api.put("etcdbackupschedules", "default", {
      apiVersion: "etcd-backup.dev/v1alpha1",
      kind: "EtcdBackupSchedule",
      metadata: { name, namespace: "default" },
      spec: {
        schedule: "*/2 * * * * *",
        concurrencyPolicy: policy,
        template: {
          spec: backupSpec(h, {
            clusterName: name,
            encryption: { none: true },
            source: { etcd: { endpoints: [`http://127.0.0.1:${slow.port}`], dialTimeoutSeconds: 3 } },
          }),
        },
      },
    });
  const suspend = (name: string) => {
    const s = h.api.get("etcdbackupschedules", "default", name) as unknown as { spec: object };
    h.api.put("etcdbackupschedules", "default", { ...s, spec: { ...s.spec, suspend: true } } as never);
  };
  const children = (name: string) =>
    (h.api.list("etcdbackups", "default") as unknown as Obj[]).filter((b) =>
      b.metadata.name.startsWith(`${name}-`),
    );

  it("concurrencyPolicy Replace: the active backup is deleted when the next run is due; nothing of it stored", async () => {
    schedule("replace", "Replace");
    const ev = await waitFor(
      "BackupReplaced",
      () => eventsOf("replace").find((e) => e.reason === "BackupReplaced"),
      20_000,
    );
    suspend("replace");
    const gone = /deleted (\S+) \(concurrencyPolicy Replace\)/.exec(ev.message)?.[1];
    assert.ok(gone, ev.message);
    await waitFor(`${gone} deleted`, () => (backup(gone) === undefined ? true : undefined), 15_000);
    // At most one backup of the schedule is ever active, and the replaced one left nothing in the bucket.
    assert.ok(children("replace").filter((b) => b.status?.phase !== "Succeeded").length <= 1);
    const stamp = gone.slice("replace-".length);
    // The replacement's BackupCreated event is recorded just after BackupReplaced: wait for it.
    await waitFor(
      "BackupCreated for the replacement",
      () =>
        eventsOf("replace").find(
          (e) => e.reason === "BackupCreated" && !e.message.includes(`replace-${stamp} `),
        ),
      15_000,
    );
    // A run started just before the suspend may still be writing (its .pending marker is legitimately there):
    // wait for the schedule to go quiet, then the bucket holds exactly the succeeded backups and manifests.
    let keys: string[] = [];
    let completed = -1;
    for (const deadline = Date.now() + 20_000; Date.now() < deadline; ) {
      const active = children("replace").filter((b) => !["Succeeded", "Failed"].includes(b.status?.phase));
      keys = (await bucketKeys(h)).filter((k) => k.includes("/replace-"));
      completed = children("replace").filter((b) => b.status?.phase === "Succeeded").length;
      if (active.length === 0 && keys.length === completed * 2) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(keys.length, completed * 2, keys.join(", "));
  });

  it("concurrencyPolicy Allow: a new backup starts while the previous one is still running", async () => {
    schedule("allow", "Allow");
    const both = await waitFor(
      "two backups of the schedule running at once",
      () => {
        const runningNow = children("allow").filter((b) => b.status?.phase === "Running");
        return runningNow.length >= 2 ? runningNow : undefined;
      },
      20_000,
    );
    suspend("allow");
    assert.equal(eventsOf("allow").filter((e) => e.reason === "BackupSkipped").length, 0);
    assert.equal(eventsOf("allow").filter((e) => e.reason === "BackupReplaced").length, 0);
    await waitFor("status.active lists both", () => {
      const cur = h.api.get("etcdbackupschedules", "default", "allow") as Obj;
      return (cur.status?.active?.length ?? 0) >= 2 ||
        both.every((b) => backup(b.metadata.name)?.status?.phase === "Succeeded")
        ? true
        : undefined;
    });
    // Both finish: neither was cut short by the other.
    for (const b of both) {
      const done = await finished(b.metadata.name, 30_000);
      assert.equal(done.status?.phase, "Succeeded", JSON.stringify(done.status));
    }
  });
});
