/**
 * Every built-in Kubernetes type out of a stored backup, as the apiserver returns it: the k8s.io/api HEAD
 * fixtures (each type with every field set, in the `k8s\0` storage envelope; read from the Go module cache,
 * never committed) are written into a real etcd, backed up with zstd and age into a directory store, and read
 * back with the built CLI's `get` (one by key, one by resource/namespace/name, all of a namespace as one
 * List and as multi-document YAML, --clean). Each must equal the fixture's .json as JSON values.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parseAllDocuments } from "yaml";
import { assertOk, keygen, runCli } from "../fixtures/cli.ts";
import { EtcdKv } from "../fixtures/etcd-kv.ts";
import { type EtcdServer, startEtcd } from "../fixtures/etcd-server.ts";
import { k8sApiModules } from "../kubernetes/k8s-api-modules.ts";

const modules = k8sApiModules();

describe("k8s.io/api fixtures through a real etcd and a zstd+age backup, read back with get", {
  skip: "skip" in modules ? modules.skip : false,
}, () => {
  let etcd: EtcdServer;
  let work: string;
  let dir: string;
  let identity: string;
  /** Fixture name (group.version.Kind) -> expected JSON; only those whose envelope names their type. */
  const fixtures = new Map<string, unknown>();
  const keyOf = (name: string) => `/registry/api-fixtures.example/objects/fixtures/${name}`;

  before(async () => {
    const testdata = join(
      (modules as { dirs: Map<string, string> }).dirs.get("k8s.io/api")!,
      "testdata",
      "HEAD",
    );
    work = mkdtempSync(join(tmpdir(), "etcd-backup-k8s-objects-"));
    dir = join(work, "backups");
    mkdirSync(dir);
    etcd = await startEtcd();
    const puts: { key: string; value: Buffer }[] = [];
    for (const file of readdirSync(testdata).filter((f) => f.endsWith(".pb"))) {
      const name = file.slice(0, -3);
      const value = readFileSync(join(testdata, file));
      const expected = JSON.parse(readFileSync(join(testdata, `${name}.json`), "utf8")) as { kind?: string };
      if (!expected.kind) continue; // WatchEvent: an envelope without TypeMeta is never stored
      fixtures.set(name, expected);
      puts.push({ key: keyOf(name), value });
    }
    const deployment = readFileSync(join(testdata, "apps.v1.Deployment.pb"));
    puts.push({ key: "/registry/deployments/prod/web", value: deployment });
    const kv = new EtcdKv(etcd.endpoint);
    try {
      await kv.putAll(puts, { perTxn: 50 });
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
        "k8s",
        "--recipient",
        made.recipient,
      ]),
    );
    assert.ok(
      readdirSync(dir).some((f) => f.endsWith(".snap.zst.age")),
      "a zstd+age backup was stored",
    );
  });

  after(async () => {
    await etcd?.destroy();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test("get KEY -o json: Deployment, Pod, Service, Secret, CRD-less kinds each equal their fixture", async () => {
    for (const name of [
      "apps.v1.Deployment",
      "core.v1.Pod",
      "core.v1.Service",
      "core.v1.Secret",
      "batch.v1.CronJob",
    ]) {
      const r = await runCli(["get", "latest", "--to", dir, "-i", identity, keyOf(name), "-o", "json"]);
      assertOk(r);
      assert.deepEqual(JSON.parse(r.stdout), fixtures.get(name), name);
    }
  });

  test("get --resource deployments -n prod --name web -o yaml equals the fixture; --clean leaves out what the server set", async () => {
    const args = [
      "get",
      "latest",
      "--to",
      dir,
      "-i",
      identity,
      "--resource",
      "deployments",
      "-n",
      "prod",
      "--name",
      "web",
    ];
    const faithful = await runCli([...args, "-o", "yaml"]);
    assertOk(faithful);
    const docs = parseAllDocuments(faithful.stdout);
    assert.equal(docs.length, 1);
    assert.deepEqual((docs[0] as { toJS(): unknown }).toJS(), fixtures.get("apps.v1.Deployment"));
    const clean = await runCli([...args, "--clean", "-o", "json"]);
    assertOk(clean);
    const o = JSON.parse(clean.stdout) as {
      metadata: Record<string, unknown>;
      status?: unknown;
      spec: unknown;
    };
    assert.equal(o.status, undefined);
    for (const f of [
      "uid",
      "resourceVersion",
      "creationTimestamp",
      "generation",
      "managedFields",
      "selfLink",
      "deletionTimestamp",
    ]) {
      assert.equal(f in o.metadata, false, f);
    }
    assert.deepEqual(o.spec, (fixtures.get("apps.v1.Deployment") as { spec: unknown }).spec);
    assert.equal(o.metadata.name, "nameValue");
  });

  test("get --all -n fixtures: every type, as one List (json) and as multi-document YAML, each equal", async () => {
    const names = [...fixtures.keys()].sort();
    const json = await runCli([
      "get",
      "latest",
      "--to",
      dir,
      "-i",
      identity,
      "--all",
      "-n",
      "fixtures",
      "-o",
      "json",
    ]);
    assertOk(json);
    const list = JSON.parse(json.stdout) as { kind: string; items: unknown[] };
    assert.equal(list.kind, "List");
    assert.equal(list.items.length, names.length);
    const differ = names.filter(
      (n, i) => JSON.stringify(sorted(list.items[i])) !== JSON.stringify(sorted(fixtures.get(n))),
    );
    console.log(
      `${names.length} types through etcd and a zstd+age backup; ${differ.length} differ ${differ.join(", ")}`,
    );
    assert.deepEqual(differ, []);

    const yaml = await runCli([
      "get",
      "latest",
      "--to",
      dir,
      "-i",
      identity,
      "--resource",
      "objects.api-fixtures.example",
      "-n",
      "fixtures",
    ]);
    assertOk(yaml);
    const docs = parseAllDocuments(yaml.stdout).map((d) => (d as { toJS(): unknown }).toJS());
    assert.equal(docs.length, names.length);
    for (const [i, n] of names.entries()) assert.deepEqual(docs[i], fixtures.get(n), n);
  });

  test("bad combinations are one-line usage errors", async () => {
    const r = await runCli(["get", "latest", "--to", dir, "-i", identity, "--all", "-o", "raw"]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^etcd-backup: -o raw prints one object/);
  });
});

function sorted(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sorted);
  if (!v || typeof v !== "object") return v;
  return Object.fromEntries(
    Object.keys(v)
      .sort()
      .map((k) => [k, sorted((v as Record<string, unknown>)[k])]),
  );
}
