import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parseAllDocuments } from "yaml";
import { generateHybrid } from "../../src/age/hybrid.ts";
import { generateIdentity, identityFileText } from "../../src/age/index.ts";
import { CLI } from "../fixtures/cli.ts";
import { type EtcdServer, fillKeys, startEtcd } from "../fixtures/etcd-server.ts";
import { type KubeApiserver, startKubeApiserver } from "../fixtures/kube-apiserver.ts";
import {
  GROUP,
  installOperator,
  type KubeObject,
  OPERATOR_NS,
  pathOf,
  type RealApi,
  realApi,
  VERSION,
} from "../fixtures/kube-apiserver-operator.ts";
import { kubeApiserverPeer } from "../fixtures/peers.ts";
import { startS3Server, type TestS3Server } from "../fixtures/s3-server.ts";
import { assertNoSecrets } from "../fixtures/secrets.ts";
import { badBackupCases, badScheduleCases, baseBackup, baseSchedule, DEPLOY } from "../operator/crd-cases.ts";
import { ageDecrypt, backupSpec, bucketKeys, waitFor } from "../operator/harness.ts";
import { seedYaml } from "../operator/talos-etcd-backup-compat/seed.ts";

/**
 * The operator against the REAL kube-apiserver v1.35.4 (test/fixtures/kube-apiserver.ts, over a real etcd 3.6),
 * where the stand-in (test/fixtures/kube-apiserver-standin.ts) only models what we thought the server does:
 * - the CRDs of deploy/operator are applied for real: the server's structural-schema validation rejects every
 *   bad spec the ajv test rejects (test/operator/crd-cases.ts, one list for both), fills the defaults, serves
 *   the printer columns as a Table and keeps status behind its subresource;
 * - deploy/operator/rbac.yaml is applied as written, and the operator (the built CLI) authenticates with a
 *   token the API server issued to that ServiceAccount (TokenRequest), so its least privilege is what RBAC
 *   enforces, not what we believe it needs;
 * - two replicas elect a leader on a real coordination.k8s.io Lease, and the operator e2e (backup to Ready,
 *   Failed with a Warning Event, the deletionPolicy finalizer, a schedule with prune) runs through them.
 * No controller-manager runs: nothing garbage-collects owned objects, so what is deleted here the operator
 * deleted itself. S3 is the s3rver test server (MinIO is covered by the store tests).
 */

const NS = "default";
/** The kustomize overlay that serves the Talos operator's TalosEtcdBackup kinds (issue 20's compatibility mode). */
const COMPAT = join(DEPLOY, "..", "operator-overlays", "talos-etcd-backup-compat");
type Obj = KubeObject;

const kubeApiserver = kubeApiserverPeer();

/** One `etcd-backup operator` process of the built CLI, its JSON log lines collected. */
interface Replica {
  name: string;
  child: ChildProcess;
  lines: Record<string, unknown>[];
  exited: Promise<number | null>;
}

describe("operator against the real kube-apiserver: CRDs, RBAC as deployed, leader election, backups", {
  skip: kubeApiserver
    ? false
    : "no kube-apiserver built into .peers/ (scripts/install-peers.sh kube-apiserver)",
  timeout: 300_000,
}, () => {
  let kas: KubeApiserver;
  let etcd: EtcdServer;
  let s3: TestS3Server;
  let dir: string;
  let identityPath: string;
  let recipient: string;
  let operatorKubeconfig: string;
  const bucket = "backups";
  const replicas: Replica[] = [];

  let real: RealApi;
  const api = (method: string, path: string, body?: unknown) => real.request(method, path, body);
  const must = (method: string, path: string, body?: unknown) => real.must(method, path, body);
  const apply = (doc: Obj) => real.create(doc);
  const get = (kind: string, name: string, namespace = NS) => real.get(kind, name, namespace);
  const list = (kind: string, namespace = NS) => real.list(kind, namespace);
  const eventsOf = async (name: string) =>
    (await list("Event")).filter(
      (e) => (e as unknown as { involvedObject: { name: string } }).involvedObject.name === name,
    ) as unknown as {
      reason: string;
      type: string;
      message: string;
    }[];
  function startReplica(name: string): Replica {
    const child = spawn(
      process.execPath,
      [
        CLI,
        "operator",
        "--kubeconfig",
        operatorKubeconfig,
        "--leader-elect",
        "--leader-election-namespace",
        OPERATOR_NS,
        // Generous for a loaded 2-core machine: a replica that misses its renew deadline exits (by design).
        "--lease-duration",
        "10s",
        "--renew-deadline",
        "7s",
        "--retry-period",
        "1s",
        "--metrics-addr",
        "127.0.0.1:0",
        "--log-format",
        "json",
        "--retry-base",
        "500ms",
      ],
      { env: { ...process.env, HOSTNAME: name }, stdio: ["ignore", "ignore", "pipe"] },
    );
    const lines: Record<string, unknown>[] = [];
    let buf = "";
    child.stderr!.on("data", (d: Buffer) => {
      buf += d.toString();
      for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try {
          lines.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          lines.push({ msg: line });
        }
      }
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    const replica = { name, child, lines, exited };
    replicas.push(replica);
    return replica;
  }
  const leads = (r: Replica) => r.lines.some((l) => l.msg === "became leader");
  /** The running replica whose identity holds the Lease now. */
  const holder = async () => {
    const lease = await get("Lease", "etcd-backup-operator", OPERATOR_NS);
    const identity = lease?.spec.holderIdentity as string | undefined;
    return replicas.find(
      (r) =>
        r.child.exitCode === null && r.lines.some((l) => l.msg === "became leader" && l.holder === identity),
    );
  };
  const stored = (r: Replica) =>
    r.lines.filter((l) => l.msg === "backup stored").map((l) => l.backup as string);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "etcd-backup-operator-kas-"));
    [kas, etcd, s3] = await Promise.all([startKubeApiserver(), startEtcd({}), startS3Server()]);
    await fillKeys(etcd, 300);
    await s3.createBucket(bucket);
    const gen = generateIdentity();
    identityPath = join(dir, "identity.txt");
    await writeFile(identityPath, identityFileText(gen), { mode: 0o600 });
    recipient = gen.recipient;

    real = realApi(kas);
    // deploy/operator's CRDs and rbac.yaml exactly as a user applies them; the operator runs on its
    // ServiceAccount's token.
    operatorKubeconfig = await installOperator(real, dir);

    await apply({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "s3-credentials", namespace: NS },
      data: {
        AWS_ACCESS_KEY_ID: Buffer.from(s3.accessKeyId).toString("base64"),
        AWS_SECRET_ACCESS_KEY: Buffer.from(s3.secretAccessKey).toString("base64"),
      },
    });
  });

  after(async () => {
    for (const r of replicas)
      if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill("SIGKILL");
    await Promise.all(replicas.map((r) => r.exited));
    // Nothing the operator wrote where people read it holds a secret (Events, statuses, its own log).
    if (kas) {
      const written = JSON.stringify([
        await list("Event").catch(() => []),
        await list("EtcdBackup").catch(() => []),
        await list("EtcdBackupSchedule").catch(() => []),
      ]);
      assertNoSecrets(written, "the Events and statuses the operator wrote on the real API server");
      assertNoSecrets(JSON.stringify(replicas.map((r) => r.lines)), "the operator's log");
    }
    await Promise.allSettled([kas?.stop(), etcd?.destroy(), s3?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const h = () => ({ etcd, s3, bucket, recipient, dir, identityPath });
  const backup = (name: string) => get("EtcdBackup", name);
  const createBackup = (name: string, spec: object) =>
    apply({ apiVersion: `${GROUP}/${VERSION}`, kind: "EtcdBackup", metadata: { name, namespace: NS }, spec });

  it("rejects every bad spec the ajv check rejects, with 422 Invalid from the server's own validation", async () => {
    const dryRun = async (doc: Obj) => api("POST", `${pathOf(doc.kind, NS)}?dryRun=All`, doc);
    const asObject = (d: { kind: string; spec: unknown }, name: string): Obj => ({
      apiVersion: `${GROUP}/${VERSION}`,
      kind: d.kind,
      metadata: { name, namespace: NS },
      spec: d.spec,
    });
    const good = await dryRun(asObject(baseBackup(), "good"));
    assert.equal(good.status, 201, JSON.stringify(good.body));
    // A post-quantum recipient (age1pq1…, 1,959 characters) passes the CRD's pattern as RE2 compiles it.
    const pq = baseBackup();
    pq.spec.encryption.recipients = [generateHybrid().recipient];
    const pqResult = await dryRun(asObject(pq, "post-quantum"));
    assert.equal(pqResult.status, 201, JSON.stringify(pqResult.body).slice(0, 500));
    const accepted: string[] = [];
    for (const [what, mutate] of badBackupCases) {
      const d = baseBackup();
      mutate(d);
      const r = await dryRun(asObject(d, "bad"));
      if (r.status !== 422) accepted.push(`EtcdBackup with ${what}: ${r.status}`);
    }
    const goodSchedule = await dryRun(asObject(baseSchedule(), "good"));
    assert.equal(goodSchedule.status, 201, JSON.stringify(goodSchedule.body));
    for (const [what, mutate] of badScheduleCases) {
      const d = baseSchedule();
      mutate(d);
      const r = await dryRun(asObject(d, "bad"));
      if (r.status !== 422) accepted.push(`EtcdBackupSchedule with ${what}: ${r.status}`);
    }
    assert.deepEqual(
      accepted,
      [],
      "specs the real API server accepted although the CRD is meant to reject them",
    );
  });

  it("accepts every sample, and the TalosEtcdBackup compatibility CRDs with the seed YAML unchanged", async () => {
    const dryRun = async (doc: Obj) =>
      api("POST", `${pathOf(doc.kind, doc.metadata.namespace ?? NS)}?dryRun=All`, {
        ...doc,
        metadata: { ...doc.metadata, namespace: doc.metadata.namespace ?? NS },
      });
    const refused: string[] = [];
    const samples = [
      ...(await readdir(join(DEPLOY, "samples"))).map((f) => join(DEPLOY, "samples", f)),
      ...(await readdir(join(COMPAT, "samples"))).map((f) => join(COMPAT, "samples", f)),
    ];
    await real.applyFile(join(COMPAT, "crds", "talosetcdbackups.yaml"));
    await real.applyFile(join(COMPAT, "crds", "talosetcdbackupschedules.yaml"));
    let checked = 0;
    for (const file of samples) {
      for (const doc of parseAllDocuments(await readFile(file, "utf8")).map((d) => d.toJS() as Obj | null)) {
        if (!doc || !/^(Talos)?EtcdBackup(Schedule)?$/.test(doc.kind)) continue;
        const ns = doc.metadata.namespace;
        if (ns && !(await get("Namespace", ns)))
          await apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: ns } });
        const r = await dryRun(doc);
        checked++;
        if (r.status !== 201)
          refused.push(`${file}: ${doc.kind} ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
      }
    }
    const seed = parseAllDocuments(seedYaml("https://s3.example.com"))[0]!.toJS() as Obj;
    const r = await dryRun(seed);
    checked++;
    if (r.status !== 201)
      refused.push(`seed TalosEtcdBackup: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
    assert.deepEqual(refused, []);
    assert.ok(checked >= 8, `${checked} documents checked`);
  });

  it("fills the CRD defaults, serves the printer columns as a Table, and keeps status behind /status", async () => {
    const s = baseSchedule() as unknown as { kind: string; spec: Record<string, unknown> };
    delete s.spec.concurrencyPolicy;
    delete s.spec.suspend;
    delete (s.spec.template as { spec: Record<string, unknown> }).spec.deletionPolicy;
    delete (s.spec.template as { spec: Record<string, unknown> }).spec.compression;
    const created = await apply({
      apiVersion: `${GROUP}/${VERSION}`,
      kind: "EtcdBackupSchedule",
      metadata: { name: "defaults", namespace: NS },
      spec: { ...s.spec, suspend: true },
    });
    assert.equal(created.spec.concurrencyPolicy, "Forbid");
    assert.equal(created.spec.template.spec.compression, "zstd");
    assert.equal(created.spec.template.spec.deletionPolicy, "Retain");
    if (created.spec.template.spec.source.etcd?.tlsSecretRef) {
      assert.equal(created.spec.template.spec.source.etcd.tlsSecretRef.caKey, "ca.crt");
      assert.equal(created.spec.template.spec.source.etcd.tlsSecretRef.keyKey, "tls.key");
    }
    await must("DELETE", pathOf("EtcdBackupSchedule", NS, "defaults"));

    const b = await createBackup("columns", backupSpec(h(), { clusterName: "columns", backoffLimit: 0 }));
    // Status written with the object itself is dropped: only the subresource sets it.
    const put = await must("PUT", pathOf("EtcdBackup", NS, "columns"), { ...b, status: { phase: "Forged" } });
    assert.notEqual(put.status?.phase, "Forged");
    const asTable = await new Promise<{ columnDefinitions: { name: string }[] }>((resolve, reject) => {
      import("node:https").then(({ request }) => {
        Promise.all([readFile(kas.pki.caCert), readFile(kas.admin.cert), readFile(kas.admin.key)]).then(
          ([ca, cert, key]) => {
            const req = request(
              `${kas.url}${pathOf("EtcdBackup", NS)}`,
              { ca, cert, key, headers: { accept: "application/json;as=Table;v=v1;g=meta.k8s.io" } },
              (res) => {
                const chunks: Buffer[] = [];
                res.on("data", (c: Buffer) => chunks.push(c));
                res.on("end", () => resolve(JSON.parse(Buffer.concat(chunks).toString())));
              },
            );
            req.on("error", reject);
            req.end();
          },
          reject,
        );
      }, reject);
    });
    const names = asTable.columnDefinitions.map((c) => c.name);
    for (const c of ["Phase", "Size", "Revision", "Age"]) assert.ok(names.includes(c), names.join(", "));
  });

  it("the ServiceAccount of rbac.yaml can do what the operator needs and no more", async () => {
    const can = async (verb: string, resource: string, group = "", namespace = NS) => {
      const review = {
        apiVersion: "authorization.k8s.io/v1",
        kind: "SubjectAccessReview",
        spec: {
          user: `system:serviceaccount:${OPERATOR_NS}:etcd-backup-operator`,
          groups: ["system:serviceaccounts", `system:serviceaccounts:${OPERATOR_NS}`, "system:authenticated"],
          resourceAttributes: { verb, resource, group, namespace },
        },
      };
      const r = await must("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", review);
      return (r.status as { allowed: boolean }).allowed;
    };
    assert.equal(await can("get", "secrets"), true);
    assert.equal(await can("patch", "etcdbackups/status", GROUP), true);
    assert.equal(await can("list", "secrets"), false, "it reads named Secrets, never lists them");
    assert.equal(await can("update", "secrets"), false);
    assert.equal(await can("delete", "etcdbackupschedules", GROUP), false);
    assert.equal(await can("create", "pods"), false);
  });

  it("two replicas elect one leader on a real Lease; a backup ends Ready and opens with age -d", async () => {
    const a = startReplica("replica-a");
    const b = startReplica("replica-b");
    await waitFor("a leader", () => (leads(a) || leads(b) ? true : undefined), 60_000);
    const lease = await get("Lease", "etcd-backup-operator", OPERATOR_NS);
    assert.match(lease?.spec.holderIdentity, /_[0-9a-f]{8}$/);
    assert.equal([a, b].filter(leads).length, 1, "exactly one leader");

    await createBackup("one", backupSpec(h(), { clusterName: "one" }));
    const done = await waitFor(
      "Succeeded",
      async () => {
        const o = await backup("one");
        return o?.status?.phase === "Succeeded" || o?.status?.phase === "Failed" ? o : undefined;
      },
      60_000,
    );
    assert.equal(done.status.phase, "Succeeded", JSON.stringify(done.status));
    const ready = done.status.conditions.find((c: { type: string }) => c.type === "Ready");
    assert.deepEqual([ready.status, ready.reason], ["True", "BackupSucceeded"]);
    const key = done.status.key as string;
    assert.deepEqual(
      (await bucketKeys(h())).filter((k) => k.startsWith("clusters/demo/one-")),
      [key, `${key}.json`].sort(),
    );
    const plain = await ageDecrypt(h(), key);
    assert.equal(plain.readUInt32LE(0), 0xfd2fb528, "zstd frame inside the age file");
    // The operator writes the status first and the Event after it: wait for the Event, then check there are no others.
    const reasons = await waitFor(
      "the BackupSucceeded Event",
      async () => {
        const r = (await eventsOf("one")).map((e) => e.reason).sort();
        return r.includes("BackupSucceeded") ? r : undefined;
      },
      20_000,
    );
    assert.deepEqual(reasons, ["BackupStarted", "BackupSucceeded"]);
  });

  it("a missing Secret ends Failed SecretNotFound with a Warning Event; nothing stored", async () => {
    const before = await bucketKeys(h());
    const spec = backupSpec(h(), { backoffLimit: 0, clusterName: "nosecret" });
    spec.destination.s3.credentialsSecretRef = { name: "no-such-secret" };
    await createBackup("missing-secret", spec);
    const b = await waitFor(
      "Failed",
      async () => {
        const o = await backup("missing-secret");
        return o?.status?.phase === "Failed" ? o : undefined;
      },
      30_000,
    );
    const failed = b.status.conditions.find((c: { type: string }) => c.type === "Failed");
    assert.equal(failed.reason, "SecretNotFound");
    assert.match(failed.message, /Secret default\/no-such-secret .*not found/);
    const ev = await waitFor(
      "Warning Event",
      async () => (await eventsOf("missing-secret")).find((e) => e.type === "Warning"),
      10_000,
    );
    assert.equal(ev.reason, "SecretNotFound");
    assert.deepEqual(await bucketKeys(h()), before);
  });

  it("deletionPolicy Delete: the finalizer holds the EtcdBackup until its stored object is gone", async () => {
    await createBackup("to-delete", backupSpec(h(), { deletionPolicy: "Delete", clusterName: "deleteme" }));
    const b = await waitFor(
      "Succeeded",
      async () => {
        const o = await backup("to-delete");
        return o?.status?.phase === "Succeeded" ? o : undefined;
      },
      60_000,
    );
    assert.deepEqual(b.metadata.finalizers, ["etcd-backup.dev/delete-stored-backup"]);
    const key = b.status.key as string;
    assert.ok((await bucketKeys(h())).includes(key));
    await must("DELETE", pathOf("EtcdBackup", NS, "to-delete"));
    await waitFor(
      "the EtcdBackup gone",
      async () => ((await backup("to-delete")) ? undefined : true),
      30_000,
    );
    const keys = await bucketKeys(h());
    assert.ok(!keys.includes(key) && !keys.includes(`${key}.json`), keys.join(", "));
  });

  it("a schedule creates owned EtcdBackups and prunes to keepLast; after the leader stops, the other leads", async () => {
    await apply({
      apiVersion: `${GROUP}/${VERSION}`,
      kind: "EtcdBackupSchedule",
      metadata: { name: "every2s", namespace: NS },
      spec: {
        schedule: "*/2 * * * * *",
        concurrencyPolicy: "Forbid",
        retention: { keepLast: 2 },
        template: { spec: backupSpec(h(), { clusterName: "sched" }) },
      },
    });
    const prunes = async () => (await eventsOf("every2s")).filter((e) => e.reason === "Pruned").length;
    await waitFor(
      "scheduled backups and two prunes",
      async () => ((await prunes()) >= 2 ? true : undefined),
      90_000,
    );
    const children = (await list("EtcdBackup")).filter((o) => o.metadata.name.startsWith("every2s-"));
    for (const c of children) {
      assert.equal(c.metadata.ownerReferences?.[0]?.kind, "EtcdBackupSchedule");
      assert.equal(c.metadata.ownerReferences?.[0]?.name, "every2s");
    }

    const leader = await waitFor("the replica holding the Lease", holder, 30_000);
    const standby = replicas.find((r) => r !== leader && r.child.exitCode === null);
    assert.ok(standby, "a standby replica is running");
    const heldBy = (await get("Lease", "etcd-backup-operator", OPERATOR_NS))?.spec.holderIdentity;
    leader.child.kill("SIGTERM");
    assert.equal(await leader.exited, 0);
    assert.ok(leader.lines.some((l) => l.msg === "released the leader Lease"));
    await waitFor(
      "the standby to hold the Lease",
      async () => ((await holder()) === standby ? true : undefined),
      30_000,
    );
    const lease = await get("Lease", "etcd-backup-operator", OPERATOR_NS);
    assert.notEqual(lease?.spec.holderIdentity, heldBy, "the Lease changed hands");
    const before = await prunes();
    await waitFor(
      "the standby's schedule prunes",
      async () => ((await prunes()) > before ? true : undefined),
      60_000,
    );

    // Suspend, let a backup in flight finish, and count what is kept.
    // The operator writes the schedule's status meanwhile, so a PUT of what was read may meet 409 Conflict (the
    // resourceVersion moved on): read again and retry, as any client of a busy object does.
    await waitFor(
      "the schedule suspended",
      async () => {
        const s = await get("EtcdBackupSchedule", "every2s");
        const r = await api("PUT", pathOf("EtcdBackupSchedule", NS, "every2s"), {
          ...s,
          spec: { ...s!.spec, suspend: true },
        });
        if (r.status === 409) return undefined;
        assert.equal(r.status, 200, JSON.stringify(r.body).slice(0, 300));
        return true;
      },
      20_000,
    );
    await new Promise((r) => setTimeout(r, 4000));
    const kept = (await bucketKeys(h())).filter((k) => /\/sched-.*\.age$/.test(k));
    assert.ok(kept.length <= 2, kept.join(", "));
    const succeeded = (await list("EtcdBackup")).filter(
      (o) => o.metadata.name.startsWith("every2s-") && o.status?.phase === "Succeeded",
    );
    assert.ok(succeeded.length <= 2, succeeded.map((o) => o.metadata.name).join(", "));

    // Least privilege held: no request of the operator was refused.
    // The line's time is left out: a timestamp such as 12:29:58.403Z is not a refusal.
    const refused = replicas
      .flatMap((r) => r.lines)
      .filter((l) => {
        const { time: _time, ...rest } = l as Record<string, unknown>;
        return /forbidden|\b403\b/i.test(JSON.stringify(rest));
      });
    assert.deepEqual(refused, []);
    assert.ok([...stored(replicas[0]!), ...stored(replicas[1]!)].length > 0);
  });
});
