/**
 * restore-object, end to end through the built CLI: objects read from a zstd+age backup of a real etcd are put
 * back into an API server with server-side apply. The API server here is the STAND-IN
 * (test/fixtures/kube-apiserver-standin.ts: apply modelled per object, not per field); the real one is driven
 * by test/e2e/k8s-objects.test.ts when a kube-apiserver was built into .peers/.
 *
 * The Deployment and Secret are created in the stand-in and written into etcd as an apiserver with the JSON
 * storage media type writes them; the protobuf path is the k8s.io/api Deployment fixture (every field set).
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { assertOk, keygen, runCli } from "../fixtures/cli.ts";
import { EtcdKv } from "../fixtures/etcd-kv.ts";
import { type EtcdServer, startEtcd } from "../fixtures/etcd-server.ts";
import { type KubeApiStandin, startKubeApiStandin } from "../fixtures/kube-apiserver-standin.ts";
import { k8sApiModules } from "./k8s-api-modules.ts";

const modules = k8sApiModules();

describe("restore-object puts objects from a backup back with server-side apply (stand-in API server)", () => {
  let etcd: EtcdServer;
  let api: KubeApiStandin;
  let work: string;
  let dir: string;
  let identity: string;
  let kubeconfig: string;
  let fixtureDeployment: { spec: unknown; metadata: { name: string; namespace: string } } | undefined;
  const deployment = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "web", namespace: "default", labels: { app: "web" } },
    spec: {
      replicas: 3,
      selector: { matchLabels: { app: "web" } },
      template: {
        metadata: { labels: { app: "web" } },
        spec: { containers: [{ name: "web", image: "nginx:1.27", ports: [{ containerPort: 80 }] }] },
      },
    },
  };
  const secret = {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "db", namespace: "default" },
    type: "Opaque",
    data: { password: Buffer.from("s3cr3t\n").toString("base64") },
  };
  const restore = (args: string[]) =>
    runCli(["restore-object", "latest", "--to", dir, "-i", identity, "--kubeconfig", kubeconfig, ...args]);

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "etcd-backup-restore-object-"));
    dir = join(work, "backups");
    mkdirSync(dir);
    api = await startKubeApiStandin();
    kubeconfig = join(work, "kubeconfig");
    writeFileSync(kubeconfig, api.kubeconfig);
    etcd = await startEtcd();
    // As the apiserver stores them: the objects it returned (uid, resourceVersion...), under their registry keys.
    const liveDeployment = api.put("deployments", "default", structuredClone(deployment));
    const liveSecret = api.put("secrets", "default", structuredClone(secret));
    const puts = [
      { key: "/registry/deployments/default/web", value: JSON.stringify(liveDeployment) },
      { key: "/registry/secrets/default/db", value: JSON.stringify(liveSecret) },
    ];
    if ("dirs" in modules) {
      const pb = join(modules.dirs.get("k8s.io/api")!, "testdata", "HEAD", "apps.v1.Deployment");
      fixtureDeployment = JSON.parse(readFileSync(`${pb}.json`, "utf8"));
      puts.push({
        key: "/registry/deployments/namespaceValue/nameValue",
        value: readFileSync(`${pb}.pb`) as never,
      });
    }
    const kv = new EtcdKv(etcd.endpoint);
    try {
      await kv.putAll(puts);
    } finally {
      kv.client.close();
    }
    const made = await keygen(work);
    identity = made.identity;
    assertOk(
      await runCli([
        "save",
        "--endpoints",
        etcd.endpoint,
        "--to",
        dir,
        "--cluster",
        "c",
        "--recipient",
        made.recipient,
      ]),
    );
    assert.ok(readdirSync(dir).some((f) => f.endsWith(".snap.zst.age")));
    api.remove("deployments", "default", "web");
    api.remove("secrets", "default", "db");
  });

  after(async () => {
    await etcd?.destroy();
    await api?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test("--dry-run of a deleted object: 'would create', the server asked with dryRun=All, nothing created", async () => {
    const before = api.requests.length;
    const r = await restore(["--resource", "deployments", "-n", "default", "--name", "web", "--dry-run"]);
    assertOk(r);
    assert.equal(
      r.stdout,
      "would create deployments.apps default/web (server-side apply as etcd-backup, dry run: nothing changed)\n",
    );
    assert.equal(api.get("deployments", "default", "web"), undefined);
    const patch = api.requests.slice(before).find((q) => q.method === "PATCH")!;
    assert.equal(patch.contentType, "application/apply-patch+yaml");
    assert.match(patch.path, /[?&]dryRun=All(&|$)/);
    assert.match(patch.path, /[?&]fieldManager=etcd-backup(&|$)/);
  });

  test("the deleted Deployment and Secret come back with the same spec and data; again: unchanged", async () => {
    const d = await restore(["--resource", "deployments", "-n", "default", "--name", "web"]);
    assertOk(d);
    assert.equal(d.stdout, "created deployments.apps default/web (server-side apply as etcd-backup)\n");
    const s = await restore(["/registry/secrets/default/db"]);
    assertOk(s);
    assert.equal(s.stdout, "created secrets default/db (server-side apply as etcd-backup)\n");
    assert.deepEqual(api.get("deployments", "default", "web")?.spec, deployment.spec);
    const live = api.get("secrets", "default", "db")!;
    assert.deepEqual(live.data, secret.data);
    assert.equal(live.type, "Opaque");
    const again = await restore(["/registry/secrets/default/db"]);
    assertOk(again);
    assert.match(again.stdout, /^unchanged secrets default\/db \(the cluster already holds/);
  });

  test("an existing object that differs is refused; --dry-run --force changes nothing; --force restores", async () => {
    api.put("secrets", "default", { ...structuredClone(secret), data: { password: "Y2hhbmdlZA==" } });
    const refused = await restore(["/registry/secrets/default/db"]);
    assert.equal(refused.code, 1);
    assert.match(
      refused.stderr.trim(),
      /^etcd-backup: secrets default\/db exists in the cluster and differs from the backup \(.*--force/,
    );
    assert.equal(refused.stderr.trim().split("\n").length, 1);
    const dry = await restore(["/registry/secrets/default/db", "--force", "--dry-run"]);
    assertOk(dry);
    assert.match(dry.stdout, /^would update secrets default\/db/);
    assert.equal(
      api.get("secrets", "default", "db")?.data?.toString(),
      { password: "Y2hhbmdlZA==" }.toString(),
    );
    assert.deepEqual(api.get("secrets", "default", "db")?.data, { password: "Y2hhbmdlZA==" });
    const forced = await restore(["/registry/secrets/default/db", "--force"]);
    assertOk(forced);
    assert.match(forced.stdout, /^updated secrets default\/db/);
    assert.deepEqual(api.get("secrets", "default", "db")?.data, secret.data);
  });

  test("a protobuf-stored Deployment (the k8s.io/api fixture, every field set) is applied cleaned", {
    skip: "skip" in modules ? modules.skip : false,
  }, async () => {
    const r = await restore(["/registry/deployments/namespaceValue/nameValue"]);
    assertOk(r);
    assert.match(r.stdout, /^created deployments\.apps namespaceValue\/nameValue /);
    // The fixture names an owner: the user is told the garbage collector may delete it again.
    assert.match(r.stderr, /warning: .*names its owner kindValue\/nameValue/);
    const live = api.get("deployments", "namespaceValue", "nameValue")!;
    assert.deepEqual(live.spec, fixtureDeployment!.spec);
    assert.notEqual(live.metadata.uid, "uidValue", "the server sets uid, not the backup");
  });

  test("usage errors and a missing object are one line", async () => {
    const none = await restore([]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /^etcd-backup: no object named/);
    const missing = await restore(["--resource", "deployments", "-n", "default", "--name", "nope"]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr.trim(), /^etcd-backup: deployments default\/nope is not in the snapshot/);
  });
});
