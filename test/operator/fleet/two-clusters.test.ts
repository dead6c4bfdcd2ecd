/**
 * One operator, two clusters referenced by controlPlaneRef, one of them down (its Talos endpoint accepts TCP
 * connections and never answers, so every attempt hangs until the dial timeout), against the Kubernetes API
 * server STAND-IN, the Talos STAND-IN serving the healthy cluster from a real etcd, and a real S3 server: the
 * healthy cluster's schedule (every 2 s) keeps its times while the down cluster's schedule (every 2 s,
 * concurrencyPolicy Allow: the worst case, a new hanging backup each run) fails with SourceUnreachable.
 */
import assert from "node:assert/strict";
import { createServer, type Server, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { OperatorMetrics } from "../../../src/operator/metrics.ts";
import { runOperator } from "../../../src/operator/operator.ts";
import { issueCert, makePki } from "../../fixtures/pki.ts";
import { startTalosStandIn, type TalosStandIn, talosconfigYaml } from "../../fixtures/talos-standin.ts";
import { backupSpec, type Harness, quietLog, startHarness, waitFor } from "../harness.ts";

type Obj = {
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  // biome-ignore lint/suspicious/noExplicitAny: status fields are checked one by one
  status?: Record<string, any>;
};
const NS = "default";
const b64 = (v: string) => Buffer.from(v).toString("base64");

describe("fleet: two clusters, one down; the other's schedule stays on time", () => {
  let h: Harness;
  let talos: TalosStandIn;
  let blackhole: Server;
  const held = new Set<Socket>();
  let stop: AbortController;
  let running: Promise<void>;

  before(async () => {
    h = await startHarness();
    const pki = makePki(h.dir);
    const client = issueCert(pki, "talos-client", {
      cn: "etcd-backup",
      usage: "client",
      org: "os:etcd:backup",
    });
    talos = await startTalosStandIn({
      caCert: pki.caCert,
      serverCert: pki.serverCert,
      serverKey: pki.serverKey,
      etcd: h.etcd,
    });
    blackhole = createServer((s) => {
      held.add(s);
      s.on("close", () => held.delete(s));
      s.on("error", () => {});
    });
    await new Promise<void>((r) => blackhole.listen(0, "127.0.0.1", r));
    const hole = `127.0.0.1:${(blackhole.address() as { port: number }).port}`;
    for (const [name, endpoint] of [
      ["up-cp", talos.endpoint],
      ["down-cp", hole],
    ] as const) {
      h.api.put("taloscontrolplanes.talos.alperen.cloud", NS, {
        apiVersion: "talos.alperen.cloud/v1alpha1",
        kind: "TalosControlPlane",
        metadata: { name, namespace: NS },
        spec: { mode: "metal", metalSpec: { machines: [{ address: "10.1.0.1" }] } },
        status: { state: "Ready" },
      });
      h.api.put("secrets", NS, {
        metadata: { name: `${name}-talosconfig`, namespace: NS },
        data: {
          [`${name}.talosconfig`]: b64(
            talosconfigYaml({
              context: name,
              endpoints: [endpoint],
              caCert: pki.caCert,
              cert: client.cert,
              key: client.key,
            }),
          ),
        },
      });
    }
    stop = new AbortController();
    running = runOperator(
      {
        kube: h.kube,
        namespace: NS,
        maxConcurrent: 2,
        identity: "test-operator",
        metrics: new OperatorMetrics(),
        log: quietLog(),
        retryBaseMs: 2000,
        watchTimeoutSeconds: 5,
      },
      stop.signal,
    );
  });
  after(async () => {
    stop?.abort();
    await running;
    for (const s of held) s.destroy();
    await new Promise((r) => blackhole?.close(r));
    await talos?.stop();
    await h?.stop();
  });

  const schedule = (name: string, cp: string, policy: string) => {
    const spec = backupSpec(h, { backoffLimit: 0 }) as Record<string, unknown>;
    delete spec.clusterName;
    spec.source = {
      controlPlaneRef: { apiVersion: "talos.alperen.cloud/v1alpha1", kind: "TalosControlPlane", name: cp },
    };
    h.api.put("etcdbackupschedules", NS, {
      apiVersion: "etcd-backup.dev/v1alpha1",
      kind: "EtcdBackupSchedule",
      metadata: { name, namespace: NS },
      spec: { schedule: "*/2 * * * * *", concurrencyPolicy: policy, template: { spec } },
    });
  };
  const children = (name: string) =>
    (h.api.list("etcdbackups", NS) as Obj[]).filter(
      (b) => b.metadata.labels?.["etcd-backup.dev/schedule"] === name,
    );

  it("the healthy cluster's backups start within a second or two of their time while the other hangs", async () => {
    schedule("down", "down-cp", "Allow");
    schedule("up", "up-cp", "Forbid");
    let mostDownRunning = 0;
    const t0 = Date.now();
    await waitFor(
      "20 s of schedules",
      () => {
        const downRunning = children("down").filter((b) => b.status?.phase === "Running").length;
        mostDownRunning = Math.max(mostDownRunning, downRunning);
        return Date.now() - t0 > 20_000 ? true : undefined;
      },
      30_000,
    );
    for (const s of ["down", "up"]) {
      const cur = h.api.get("etcdbackupschedules", NS, s) as Obj;
      h.api.put("etcdbackupschedules", NS, {
        ...cur,
        spec: { ...(cur as unknown as { spec: object }).spec, suspend: true },
      } as never);
    }
    const up = children("up").filter((b) => b.status?.startTime);
    const lateness = up.map(
      (b) =>
        (Date.parse(b.status?.startTime) -
          Date.parse(b.metadata.annotations?.["etcd-backup.dev/scheduled-at"] ?? "")) /
        1000,
    );
    const succeeded = up.filter(
      (b) => b.status?.phase === "Succeeded" || b.status?.phase === "Running",
    ).length;
    assert.ok(
      succeeded >= 5,
      `the healthy cluster ran ${succeeded} backups in 20 s (lateness ${lateness.join(", ")})`,
    );
    assert.ok(
      Math.max(...lateness) <= 2,
      `every healthy backup started within 2 s of its time: ${lateness.join(", ")}`,
    );
    assert.equal(mostDownRunning, 1, "the down cluster never held more than one of the two slots");
    const failed = children("down").filter((b) => b.status?.phase === "Failed");
    assert.ok(failed.length >= 1, "the down cluster's backups failed");
    for (const b of failed) {
      const c = ((b.status?.conditions ?? []) as { type: string; reason: string; message: string }[]).find(
        (x) => x.type === "Failed",
      );
      assert.equal(c?.reason, "SourceUnreachable", c?.message);
    }
  });
});
