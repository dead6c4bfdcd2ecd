/**
 * The Talos operator's TalosEtcdBackup and TalosEtcdBackupSchedule, served with --talos-etcd-backup-compat,
 * against the Kubernetes API server STAND-IN (test/fixtures/kube-apiserver-standin.ts: no real kube-apiserver
 * runs here), the Talos STAND-IN serving the TalosControlPlane's nodes from a real etcd, and a real S3 server:
 * the seed-style YAML, exactly the fields that operator's users write, is applied unchanged (and is valid
 * against our CRD), ends Ready with that operator's reasons and key pattern, and `etcd-backup list/restore`
 * read the result; so does a plain .db the Talos operator itself wrote (no manifest).
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Ajv } from "ajv";
import { parse, parseAllDocuments } from "yaml";
import { OperatorMetrics } from "../../../src/operator/metrics.ts";
import { runOperator } from "../../../src/operator/operator.ts";
import { S3Store } from "../../../src/store/s3.ts";
import { runCli } from "../../fixtures/cli.ts";
import { issueCert, makePki } from "../../fixtures/pki.ts";
import { startTalosStandIn, type TalosStandIn, talosconfigYaml } from "../../fixtures/talos-standin.ts";
import { ageDecrypt, bucketKeys, type Harness, quietLog, startHarness, waitFor } from "../harness.ts";
import { seedYaml } from "./seed.ts";

type Obj = {
  metadata: { name: string; labels?: Record<string, string> };
  // biome-ignore lint/suspicious/noExplicitAny: status fields are checked one by one
  status?: Record<string, any>;
};
type Cond = { type: string; status: string; reason: string; message: string };
type KubeEvent = {
  involvedObject: { name: string; kind: string };
  reason: string;
  type: string;
  message: string;
};

const NS = "default";
type Seed = {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec: { talosControlPlaneRef: { name: string }; backupStorage: object };
};
const b64 = (v: string | Buffer) => Buffer.from(v).toString("base64");

/** The CRD's schema as JSON Schema (the x-kubernetes-* extensions dropped), to check the seed against it. */
function crdSchema(file: string): object {
  const path = join(
    import.meta.dirname,
    "../../../deploy/operator-overlays/talos-etcd-backup-compat/crds",
    file,
  );
  const crd = parseAllDocuments(readFileSync(path, "utf8"))[0]!.toJS();
  const strip = (s: unknown): unknown =>
    Array.isArray(s)
      ? s.map(strip)
      : s && typeof s === "object"
        ? Object.fromEntries(
            Object.entries(s)
              .filter(([k]) => !k.startsWith("x-kubernetes-"))
              .map(([k, v]) => [
                k,
                k === "properties"
                  ? Object.fromEntries(Object.entries(v as object).map(([p, ps]) => [p, strip(ps)]))
                  : strip(v),
              ]),
          )
        : s;
  return strip(crd.spec.versions[0].schema.openAPIV3Schema) as object;
}

describe("Talos operator compatibility: TalosEtcdBackup and TalosEtcdBackupSchedule", () => {
  let h: Harness;
  let talos: TalosStandIn;
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
    h.api.put("taloscontrolplanes.talos.alperen.cloud", NS, {
      apiVersion: "talos.alperen.cloud/v1alpha1",
      kind: "TalosControlPlane",
      metadata: { name: "taloscontrolplane-sample", namespace: NS },
      spec: { mode: "metal", metalSpec: { machines: [{ address: "10.9.0.1" }] } },
      status: { state: "Ready" },
    });
    const secret = (name: string, data: Record<string, string>) =>
      h.api.put("secrets", NS, {
        metadata: { name, namespace: NS },
        data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])),
      });
    secret("taloscontrolplane-sample-talosconfig", {
      "taloscontrolplane-sample.talosconfig": talosconfigYaml({
        context: "taloscontrolplane-sample",
        endpoints: [talos.endpoint],
        caCert: pki.caCert,
        cert: client.cert,
        key: client.key,
      }),
    });
    secret("my-s3-credentials", { accessKeyID: h.s3.accessKeyId, secretAccessKey: h.s3.secretAccessKey });
    stop = new AbortController();
    running = runOperator(
      {
        kube: h.kube,
        namespace: NS,
        maxConcurrent: 2,
        identity: "test-operator",
        metrics: new OperatorMetrics(),
        log: quietLog(),
        retryBaseMs: 500,
        watchTimeoutSeconds: 5,
        talosEtcdBackupCompat: true,
      },
      stop.signal,
    );
  });
  after(async () => {
    stop?.abort();
    await running;
    await talos?.stop();
    await h?.stop();
  });

  const get = (name: string) => h.api.get("talosetcdbackups", NS, name) as Obj | undefined;
  const cond = (o: Obj | undefined, type: string) =>
    (o?.status?.conditions as Cond[] | undefined)?.find((c) => c.type === type);
  const eventsOf = (name: string) =>
    (h.api.list("events", NS) as unknown as KubeEvent[]).filter((e) => e.involvedObject.name === name);
  const s3Env = () => ({
    AWS_ENDPOINT_URL_S3: h.s3.endpoint,
    AWS_ACCESS_KEY_ID: h.s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: h.s3.secretAccessKey,
    AWS_REGION: "us-west-2",
    AWS_EC2_METADATA_DISABLED: "true",
  });

  it("the seed YAML, unchanged, is valid against our CRD and ends Ready with the Talos operator's reasons and key", async () => {
    const seed = parse(seedYaml(h.s3.endpoint)) as Seed;
    const ajv = new Ajv({ strict: false });
    assert.ok(ajv.validate(crdSchema("talosetcdbackups.yaml"), seed), ajv.errorsText());
    const served = talos.served.length;
    h.api.put("talosetcdbackups", NS, { ...seed, metadata: { ...seed.metadata, namespace: NS } });
    const done = await waitFor(
      "Ready",
      () =>
        cond(get("talosetcdbackup-sample"), "Ready")?.status === "True"
          ? get("talosetcdbackup-sample")
          : undefined,
      30_000,
    );
    assert.deepEqual(
      ((done.status?.conditions ?? []) as Cond[]).map((c) => [c.type, c.status, c.reason]).sort(),
      [
        ["Failed", "False", "BackupSucceeded"],
        ["Progressing", "False", "BackupCompleted"],
        ["Ready", "True", "BackupSucceeded"],
      ],
    );
    const filename = done.status?.filename as string;
    assert.match(
      filename,
      /^talos-operator-etcd-backups\/taloscontrolplane-sample\/etcd-snapshot-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ\.db$/,
    );
    // The plain snapshot, byte for byte what Talos served, with our manifest beside it.
    const object = readFileSync(join(h.s3.directory, h.bucket, `${filename}._S3rver_object`));
    assert.equal(createHash("sha256").update(object).digest("hex"), talos.served[served]!.sha256);
    assert.ok((await bucketKeys(h)).includes(`${filename}.json`));
    assert.deepEqual(talos.calls.filter((c) => c.method === "EtcdSnapshot").at(-1)?.node, "10.9.0.1");
    assert.ok(
      eventsOf("talosetcdbackup-sample").some(
        (e) => e.reason === "BackupSucceeded" && e.involvedObject.kind === "TalosEtcdBackup",
      ),
    );

    // etcd-backup list and restore read it (and a plain .db the Talos operator wrote itself, without manifest).
    const legacy = "talos-operator-etcd-backups/legacy-cp/etcd-snapshot-2026-01-02T03-04-05Z.db";
    const store = new S3Store({
      bucket: h.bucket,
      prefix: "",
      settings: { endpoint: h.s3.endpoint, region: "us-west-2", pathStyle: true },
      credentials: { accessKeyId: h.s3.accessKeyId, secretAccessKey: h.s3.secretAccessKey },
    });
    try {
      const { Readable } = await import("node:stream");
      await store.put(legacy, Readable.from([object]), {});
    } finally {
      store.destroy();
    }
    const list = await runCli(["list", "--to", `s3://${h.bucket}`, "--s3-path-style", "-o", "json"], {
      env: s3Env(),
    });
    assert.equal(list.code, 0, list.stderr);
    const entries = JSON.parse(list.stdout) as {
      name: string;
      cluster: string;
      state: string;
      usable: boolean;
    }[];
    const ours = entries.find((e) => e.name === filename);
    const theirs = entries.find((e) => e.name === legacy);
    assert.deepEqual(
      [ours?.cluster, ours?.state, ours?.usable],
      ["taloscontrolplane-sample", "complete", true],
    );
    assert.deepEqual([theirs?.cluster, theirs?.state, theirs?.usable], ["legacy-cp", "unmanaged", true]);
    for (const [name, cluster] of [
      [filename, "taloscontrolplane-sample"],
      ["latest", "legacy-cp"],
    ] as const) {
      const out = join(h.dir, `restored-${cluster}.db`);
      const r = await runCli(
        [
          "restore",
          name,
          "--cluster",
          cluster,
          "--to",
          `s3://${h.bucket}`,
          "--s3-path-style",
          "--to-file",
          out,
        ],
        { env: s3Env() },
      );
      assert.equal(r.code, 0, r.stderr);
      assert.ok(readFileSync(out).length > 0);
    }
  });

  it("our annotations opt in to zstd and age: .db.zst.age, opened by age -d", async () => {
    const seed = parse(seedYaml(h.s3.endpoint)) as Seed;
    h.api.put("talosetcdbackups", NS, {
      ...seed,
      metadata: {
        name: "encrypted",
        namespace: NS,
        annotations: { "etcd-backup.dev/age-recipients": h.recipient, "etcd-backup.dev/compression": "zstd" },
      },
    });
    const done = await waitFor(
      "Ready",
      () => (cond(get("encrypted"), "Ready")?.status === "True" ? get("encrypted") : undefined),
      30_000,
    );
    assert.match(
      done.status?.filename,
      /^talos-operator-etcd-backups\/taloscontrolplane-sample\/etcd-snapshot-.*Z\.db\.zst\.age$/,
    );
    const plain = await ageDecrypt(h, done.status?.filename);
    assert.equal(plain.readUInt32LE(0), 0xfd2fb528);
    // The Talos operator's finalizer: deleting the resource deletes the stored object and our manifest.
    assert.deepEqual(
      (h.api.get("talosetcdbackups", NS, "encrypted") as { metadata: { finalizers?: string[] } }).metadata
        .finalizers,
      ["talosetcdbackup.talos.alperen.cloud/finalizer"],
    );
    h.api.remove("talosetcdbackups", NS, "encrypted");
    await waitFor("resource gone", () => (get("encrypted") ? undefined : true));
    const keys = await bucketKeys(h);
    assert.ok(
      !keys.includes(done.status?.filename) && !keys.includes(`${done.status?.filename}.json`),
      keys.join(", "),
    );
  });

  it("a missing control plane: Failed, reason BackupFailed, and a Warning Event naming the cause", async () => {
    const seed = parse(seedYaml(h.s3.endpoint)) as Seed;
    seed.spec.talosControlPlaneRef.name = "no-such-cp";
    h.api.put("talosetcdbackups", NS, { ...seed, metadata: { name: "orphan", namespace: NS } });
    const failed = await waitFor(
      "Failed",
      () => (cond(get("orphan"), "Failed")?.status === "True" ? cond(get("orphan"), "Failed") : undefined),
      30_000,
    );
    assert.equal(failed.reason, "BackupFailed");
    assert.match(
      failed.message,
      /^Failed to backup etcd: ControlPlaneNotFound: TalosControlPlane default\/no-such-cp/,
    );
    assert.equal(cond(get("orphan"), "Ready")?.reason, "BackupFailed");
    const ev = await waitFor("event", () => eventsOf("orphan").find((e) => e.type === "Warning"));
    assert.equal(ev.reason, "ControlPlaneNotFound");
  });

  it("a schedule creates labelled backups on time and keeps `retention` Ready ones, deleting older objects", async () => {
    const seed = parse(seedYaml(h.s3.endpoint)) as Seed;
    const schedule = {
      apiVersion: "talos.alperen.cloud/v1alpha1",
      kind: "TalosEtcdBackupSchedule",
      metadata: { name: "nightly", namespace: NS },
      spec: { schedule: "*/2 * * * * *", retention: 2, paused: false, backupTemplate: { spec: seed.spec } },
    };
    const ajv = new Ajv({ strict: false });
    assert.ok(ajv.validate(crdSchema("talosetcdbackupschedules.yaml"), schedule), ajv.errorsText());
    h.api.put("talosetcdbackupschedules", NS, schedule);
    const own = () =>
      (h.api.list("talosetcdbackups", NS) as Obj[]).filter(
        (b) => b.metadata.labels?.["talos.alperen.cloud/etcd-backup-schedule"] === "nightly",
      );
    const createdNames = new Set<string>();
    await waitFor(
      "four scheduled backups",
      () => {
        for (const b of own()) createdNames.add(b.metadata.name);
        return createdNames.size >= 4 ? true : undefined;
      },
      30_000,
    );
    // Pause, let the last ones finish, and check retention.
    h.api.put("talosetcdbackupschedules", NS, { ...schedule, spec: { ...schedule.spec, paused: true } });
    await waitFor(
      "retention applied",
      () => {
        const ready = own().filter((b) => cond(b, "Ready")?.status === "True");
        const active = own().filter((b) => cond(b, "Ready")?.status !== "True");
        return ready.length === 2 && active.length === 0 ? true : undefined;
      },
      30_000,
    );
    const kept = own().map((b) => b.status?.filename as string);
    const keys = (await bucketKeys(h)).filter(
      (k) => k.startsWith("talos-operator-etcd-backups/taloscontrolplane-sample/") && k.endsWith(".db"),
    );
    for (const k of kept) assert.ok(keys.includes(k), `${k} kept in the bucket`);
    const s = h.api.get("talosetcdbackupschedules", NS, "nightly") as Obj;
    assert.ok(s.status?.lastScheduleTime && s.status?.lastSuccessfulBackupTime, JSON.stringify(s.status));
    assert.equal(cond(s, "Ready")?.reason, "ScheduleActive");
    for (const b of own()) assert.match(b.metadata.name, /^nightly-\d{10}$/);
  });
});
