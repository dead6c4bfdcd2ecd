import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createCipheriv, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parse as parseYaml } from "yaml";
import { BoltDb } from "../../src/bbolt/db.ts";
import { parseEncryptionConfig } from "../../src/kubernetes/at-rest/encryption-config.ts";
import { secretboxSeal } from "../../src/kubernetes/at-rest/secretbox.ts";
import { parseKubernetesKey } from "../../src/kubernetes/key.ts";
import { checkSnapshot } from "../../src/mvcc/snapshot-check.ts";
import { renderStatus, snapshotStatus } from "../../src/mvcc/status.ts";
import { decodeStored, findObject, getObject, renderObject } from "../../src/snapshot/get.ts";
import { inspectSnapshot, inspectSnapshotFile, renderInspect } from "../../src/snapshot/inspect.ts";
import type { EtcdServer } from "../fixtures/etcd-server.ts";
import { etcdctlStatus, startCorpusEtcd } from "../snapshot/corpus.ts";

// A protobuf writer of the test's own, so that the decoder is checked against an independent encoding.
function varint(n: number): Buffer {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return Buffer.from(out);
}
const len = (field: number, payload: Buffer | string) => {
  const b = typeof payload === "string" ? Buffer.from(payload) : payload;
  return Buffer.concat([varint(field * 8 + 2), varint(b.length), b]);
};
const num = (field: number, value: number) => Buffer.concat([varint(field * 8), varint(value)]);
const msg = (field: number, ...parts: Buffer[]) => len(field, Buffer.concat(parts));
const entry = (field: number, key: string, value: Buffer | string) => msg(field, len(1, key), len(2, value));
function k8sProto(apiVersion: string, kind: string, ...fields: Buffer[]): Buffer {
  const unknown = Buffer.concat([
    msg(1, len(1, apiVersion), len(2, kind)),
    msg(2, ...fields),
    len(4, "application/vnd.kubernetes.protobuf"),
  ]);
  return Buffer.concat([Buffer.from("k8s\0", "latin1"), unknown]);
}

const secretPassword = Buffer.from([0x00, 0xff, 0x70, 0x77, 0x0a]);
const secretValue = k8sProto(
  "v1",
  "Secret",
  msg(
    1,
    len(1, "db-creds"),
    len(3, "default"),
    len(5, "6c2b1a4e-0000-4000-8000-000000000001"),
    len(6, "12345"),
    num(7, 3),
    msg(8, num(1, 1_700_000_000)),
    entry(11, "app", "db"),
    entry(12, "note", "kept"),
    msg(13, len(1, "Deployment"), len(3, "db"), len(4, "uid-owner"), len(5, "apps/v1"), num(6, 1)),
    len(14, "example.com/protect"),
    msg(17, len(1, "kubectl"), len(2, "Update")),
  ),
  entry(2, "password", secretPassword),
  entry(2, "user", "admin"),
  len(3, "Opaque"),
  num(5, 1),
);
const expectedSecret = {
  apiVersion: "v1",
  kind: "Secret",
  metadata: {
    name: "db-creds",
    namespace: "default",
    labels: { app: "db" },
    annotations: { note: "kept" },
    ownerReferences: [
      { apiVersion: "apps/v1", kind: "Deployment", name: "db", uid: "uid-owner", controller: true },
    ],
    finalizers: ["example.com/protect"],
  },
  data: { password: secretPassword.toString("base64"), user: Buffer.from("admin").toString("base64") },
  type: "Opaque",
  immutable: true,
};
const configMapValue = (a: string) =>
  k8sProto(
    "v1",
    "ConfigMap",
    msg(1, len(1, "settings"), len(3, "kube-system"), len(5, "uid-cm"), msg(8, num(1, 1_600_000_000))),
    entry(2, "a", a),
    entry(2, "b.txt", "hello\nworld"),
    entry(3, "bin", Buffer.from([1, 2, 3])),
  );
const namespaceValue = k8sProto(
  "v1",
  "Namespace",
  msg(1, len(1, "default"), len(5, "uid-ns")),
  msg(2, len(1, "kubernetes")),
  msg(3, len(1, "Active")),
);
const serviceAccountValue = k8sProto(
  "v1",
  "ServiceAccount",
  msg(1, len(1, "builder"), len(3, "default")),
  msg(2, len(3, "builder-token"), len(2, "default")),
  msg(3, len(1, "regcred")),
  num(4, 0),
);
const podValue = k8sProto(
  "v1",
  "Pod",
  msg(1, len(1, "web"), len(3, "default"), entry(11, "tier", "front")),
  // PodSpec.containers (2) = Container {name=1, image=2}; PodStatus.phase (1).
  msg(2, msg(2, len(1, "web"), len(2, "nginx:1.27"))),
  msg(3, len(1, "Running")),
);
const crd = {
  apiVersion: "apiextensions.k8s.io/v1",
  kind: "CustomResourceDefinition",
  metadata: { name: "widgets.example.com", uid: "u1" },
  spec: { group: "example.com" },
};
const widget = {
  apiVersion: "example.com/v1",
  kind: "Widget",
  metadata: { name: "w1", namespace: "default", resourceVersion: "9" },
  spec: { size: 3 },
};

const cbcKey = randomBytes(32);
const gcmKey = randomBytes(32);
const sbKey = randomBytes(32);
const encryptionConfig = `apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - aescbc:
          keys:
            - name: key1
              secret: ${cbcKey.toString("base64")}
      - aesgcm:
          keys:
            - name: key2
              secret: ${gcmKey.toString("base64")}
      - secretbox:
          keys:
            - name: key3
              secret: ${sbKey.toString("base64")}
      - identity: {}
`;

function aescbc(plain: Buffer): Buffer {
  const iv = randomBytes(16);
  const c = createCipheriv("aes-256-cbc", cbcKey, iv);
  return Buffer.concat([Buffer.from("k8s:enc:aescbc:v1:key1:"), iv, c.update(plain), c.final()]);
}
function aesgcm(plain: Buffer, etcdKey: string): Buffer {
  const nonce = randomBytes(12);
  const c = createCipheriv("aes-256-gcm", gcmKey, nonce);
  c.setAAD(Buffer.from(etcdKey));
  const ct = Buffer.concat([c.update(plain), c.final()]);
  return Buffer.concat([Buffer.from("k8s:enc:aesgcm:v1:key2:"), nonce, ct, c.getAuthTag()]);
}
function secretbox(plain: Buffer): Buffer {
  const nonce = randomBytes(24);
  return Buffer.concat([
    Buffer.from("k8s:enc:secretbox:v1:key3:"),
    nonce,
    secretboxSeal(plain, nonce, sbKey),
  ]);
}

/** etcdctl put with the value on stdin as raw bytes (the fixture's ctl() takes text). */
async function putBytes(etcd: EtcdServer, key: string, value: Buffer): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = spawn("/usr/bin/etcdctl", [...etcd.ctlArgs, "put", key], {
      env: { ...process.env, ETCDCTL_API: "3" },
    });
    let err = "";
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
    });
    child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`etcdctl put ${key}: ${err}`))));
    child.stdin.end(value);
  });
}

describe("Kubernetes view of a real etcd snapshot", () => {
  let dir: string;
  let db: BoltDb;
  let path: string;
  const written = new Map<string, Buffer>();

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "etcd-backup-k8s-"));
    path = join(dir, "k8s.db");
    const etcd = await startCorpusEtcd();
    try {
      const put = async (key: string, value: Buffer) => {
        await putBytes(etcd, key, value);
        written.set(key, value);
      };
      await put("/registry/secrets/default/db-creds", secretValue);
      await put("/registry/configmaps/kube-system/settings", configMapValue("old"));
      await put("/registry/configmaps/kube-system/settings", configMapValue("1"));
      await put("/registry/namespaces/default", namespaceValue);
      await put("/registry/serviceaccounts/default/builder", serviceAccountValue);
      await put("/registry/pods/default/web", podValue);
      await put(
        "/registry/apiextensions.k8s.io/customresourcedefinitions/widgets.example.com",
        Buffer.from(JSON.stringify(crd)),
      );
      await put("/registry/example.com/widgets/default/w1", Buffer.from(JSON.stringify(widget)));
      await put(
        "/registry/services/specs/default/kubernetes",
        Buffer.from('{"apiVersion":"v1","kind":"Service","metadata":{"name":"kubernetes"}}'),
      );
      await put("/registry/secrets/default/enc-cbc", aescbc(secretValue));
      await put(
        "/registry/secrets/default/enc-gcm",
        aesgcm(secretValue, "/registry/secrets/default/enc-gcm"),
      );
      await put(
        "/registry/secrets/default/moved",
        aesgcm(secretValue, "/registry/secrets/default/elsewhere"),
      );
      await put("/registry/secrets/kube-system/enc-sb", secretbox(secretValue));
      await put("/other/thing", Buffer.from("plain"));
      await put("/registry/pods/default/gone", podValue);
      await etcd.ctl(["del", "/registry/pods/default/gone"]);
      written.delete("/registry/pods/default/gone");
      await etcd.ctl(["snapshot", "save", path]);
    } finally {
      await etcd.destroy();
    }
    db = await BoltDb.open(path);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("the snapshot is sound and its status matches etcdctl", async () => {
    assert.deepEqual(checkSnapshot(await readFile(path)), []);
    assert.deepEqual(JSON.parse(renderStatus(snapshotStatus(db), "json")), await etcdctlStatus(path));
  });

  test("raw values equal the bytes written, latest revision wins, deleted keys are gone", () => {
    for (const [key, value] of written) assert.deepEqual(getObject(db, key)?.value, value, key);
    assert.equal(getObject(db, "/registry/pods/default/gone"), null);
    assert.equal(getObject(db, "/registry/configmaps/kube-system/settings")?.version, 2);
  });

  test("inspect counts per resource, namespace, encryption provider and outside /registry", () => {
    const r = inspectSnapshot(db);
    const size = (prefix: string) =>
      [...written].filter(([k]) => k.startsWith(prefix)).reduce((n, [, v]) => n + v.length, 0);
    const resources = Object.fromEntries(r.resources.map((x) => [x.resource, [x.count, x.bytes]]));
    assert.deepEqual(resources, {
      secrets: [5, size("/registry/secrets/")],
      configmaps: [1, size("/registry/configmaps/")],
      namespaces: [1, size("/registry/namespaces/")],
      serviceaccounts: [1, size("/registry/serviceaccounts/")],
      pods: [1, size("/registry/pods/")],
      "customresourcedefinitions.apiextensions.k8s.io": [1, size("/registry/apiextensions.k8s.io/")],
      "widgets.example.com": [1, size("/registry/example.com/")],
      "services/specs": [1, size("/registry/services/")],
    });
    const namespaces = Object.fromEntries(r.namespaces.map((x) => [x.namespace, x.count]));
    assert.deepEqual(namespaces, { default: 8, "kube-system": 2, "": 2 });
    assert.deepEqual(r.outsideRegistry, { count: 1, bytes: 5 });
    assert.deepEqual(r.encrypted.map((e) => [e.provider, e.keyName, e.count]).sort(), [
      ["aescbc", "key1", 1],
      ["aesgcm", "key2", 2],
      ["secretbox", "key3", 1],
    ]);
    assert.equal(r.plainSecrets, 1);
    assert.equal(r.keys, written.size);
    assert.equal(
      r.bytes,
      [...written.values()].reduce((n, v) => n + v.length, 0),
    );
    assert.equal(r.tombstones, 1);
    assert.equal(r.biggest[0]?.bytes, Math.max(...[...written.values()].map((v) => v.length)));
    assert.equal(inspectSnapshot(db, { prefix: "/registry/secrets/" }).keys, 5);
    const table = renderInspect(r, "table");
    assert.match(table, /\| widgets\.example\.com +\| +1 \|/);
    assert.match(table, /\| aescbc +\| key1 +\| +1 \|/);
    assert.deepEqual(JSON.parse(renderInspect(r, "json")), JSON.parse(JSON.stringify(r)));
    assert.deepEqual(inspectSnapshotFile(path), r, "read page by page: the same result");
  });

  test("a protobuf Secret decodes to what was written: faithful by default, the manifest with clean, in yaml and json", () => {
    const stored = findObject(db, "secrets", "default", "db-creds");
    assert.ok(stored);
    const full = decodeStored(stored);
    assert.equal(full.encoding, "protobuf");
    assert.equal(full.complete, true);
    assert.equal(full.object.metadata?.uid, "6c2b1a4e-0000-4000-8000-000000000001");
    assert.equal(full.object.metadata?.creationTimestamp, "2023-11-14T22:13:20Z");
    assert.deepEqual(full.object.metadata?.managedFields, [{ manager: "kubectl", operation: "Update" }]);
    const faithful = {
      ...expectedSecret,
      metadata: {
        ...expectedSecret.metadata,
        uid: "6c2b1a4e-0000-4000-8000-000000000001",
        // As the apiserver answers: the key's mod revision, not the (empty or stale) stored field.
        resourceVersion: String(stored.modRevision),
        generation: 3,
        creationTimestamp: "2023-11-14T22:13:20Z",
        managedFields: [{ manager: "kubectl", operation: "Update" }],
      },
    };
    assert.deepEqual(JSON.parse(renderObject(stored, "json") as string), faithful);
    assert.deepEqual(parseYaml(renderObject(stored, "yaml") as string), faithful);
    const clean = { clean: true };
    assert.deepEqual(JSON.parse(renderObject(stored, "json", clean) as string), expectedSecret);
    assert.deepEqual(parseYaml(renderObject(stored, "yaml", clean) as string), expectedSecret);
    // Keys sorted at every level, as kubectl prints them.
    const text = renderObject(stored, "json") as string;
    assert.ok(text.indexOf('"apiVersion"') < text.indexOf('"data"'));
    assert.ok(text.indexOf('"data"') < text.indexOf('"immutable"'));
  });

  test("ConfigMap, Namespace, ServiceAccount and Pod decode whole", () => {
    const cm = JSON.parse(
      renderObject(findObject(db, "configmaps", "kube-system", "settings")!, "json", {
        clean: true,
      }) as string,
    );
    assert.deepEqual(cm, {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "settings", namespace: "kube-system" },
      data: { a: "1", "b.txt": "hello\nworld" },
      binaryData: { bin: "AQID" },
    });
    const ns = decodeStored(findObject(db, "namespaces", "", "default")!).object;
    assert.deepEqual(ns.spec, { finalizers: ["kubernetes"] });
    assert.deepEqual(ns.status, { phase: "Active" });
    assert.equal(
      (
        JSON.parse(
          renderObject(findObject(db, "namespaces", "", "default")!, "json", { clean: true }) as string,
        ) as {
          status?: unknown;
        }
      ).status,
      undefined,
    );
    const sa = decodeStored(findObject(db, "serviceaccounts", "default", "builder")!).object;
    assert.deepEqual(sa.secrets, [{ name: "builder-token", namespace: "default" }]);
    assert.deepEqual(sa.imagePullSecrets, [{ name: "regcred" }]);
    assert.equal(sa.automountServiceAccountToken, false);
    const pod = decodeStored(findObject(db, "pods", "default", "web")!);
    assert.equal(pod.complete, true);
    assert.deepEqual(pod.object.metadata, { name: "web", namespace: "default", labels: { tier: "front" } });
    const spec = pod.object.spec as { containers: Record<string, unknown>[] };
    assert.equal(spec.containers.length, 1);
    assert.equal(spec.containers[0]!.name, "web");
    assert.equal(spec.containers[0]!.image, "nginx:1.27");
    // Go's encoding/json of the decoded value: a struct field is never omitted, omitempty scalars are.
    assert.deepEqual(spec.containers[0]!.resources, {});
    assert.equal("terminationMessagePath" in spec.containers[0]!, false);
    assert.deepEqual(pod.object.status, { phase: "Running" });
  });

  test("JSON custom resources come out as written, minus server-set fields", () => {
    const w = JSON.parse(
      renderObject(findObject(db, "widgets.example.com", "default", "w1")!, "json", {
        clean: true,
      }) as string,
    );
    const w1 = findObject(db, "widgets.example.com", "default", "w1")!;
    assert.deepEqual(JSON.parse(renderObject(w1, "json") as string), {
      ...widget,
      metadata: { ...widget.metadata, resourceVersion: String(w1.modRevision) },
    });
    assert.deepEqual(w, { ...widget, metadata: { name: "w1", namespace: "default" } });
    const c = JSON.parse(
      renderObject(
        findObject(db, "customresourcedefinitions.apiextensions.k8s.io", "", "widgets.example.com")!,
        "json",
        { clean: true },
      ) as string,
    );
    assert.deepEqual(c, { ...crd, metadata: { name: "widgets.example.com" } });
  });

  test("encrypted Secrets: named without a configuration, decrypted with one (aescbc, aesgcm with the key as AAD, secretbox)", () => {
    const config = parseEncryptionConfig(encryptionConfig);
    const cbc = getObject(db, "/registry/secrets/default/enc-cbc")!;
    assert.deepEqual(cbc.encryption, { provider: "aescbc", keyName: "key1" });
    assert.equal(cbc.plain, false);
    assert.throws(() => renderObject(cbc, "yaml"), /encrypted at rest \(provider aescbc, key key1\)/);
    for (const [ns, name] of [
      ["default", "enc-cbc"],
      ["default", "enc-gcm"],
      ["kube-system", "enc-sb"],
    ] as const) {
      const stored = findObject(db, "secrets", ns, name, { encryption: config })!;
      assert.equal(stored.plain, true);
      assert.deepEqual(stored.value, secretValue, name);
      assert.deepEqual(
        JSON.parse(renderObject(stored, "json", { clean: true }) as string),
        expectedSecret,
        name,
      );
    }
    assert.throws(
      () => getObject(db, "/registry/secrets/default/moved", { encryption: config }),
      (err: Error) => {
        assert.match(err.message, /decrypt \/registry\/secrets\/default\/moved with aesgcm key "key2"/);
        assert.ok(!err.message.includes(gcmKey.toString("base64")));
        return true;
      },
    );
    const wrong = parseEncryptionConfig(
      encryptionConfig.replace(cbcKey.toString("base64"), randomBytes(32).toString("base64")),
    );
    // aescbc has no MAC: a wrong key fails on the padding, except about once in 256 keys where the padding
    // happens to look valid; then the result must at least not be the Secret.
    try {
      const garbled = getObject(db, "/registry/secrets/default/enc-cbc", { encryption: wrong });
      assert.notDeepEqual(garbled?.value, secretValue);
    } catch (err) {
      assert.match((err as Error).message, /decrypt/);
    }
    assert.throws(
      () => getObject(db, "/registry/secrets/default/enc-cbc", { encryption: { keys: new Map() } }),
      /no aescbc key "key1"/,
    );
  });
});

describe("parseKubernetesKey", () => {
  test("core, grouped, cluster-scoped and services/specs keys", () => {
    const cases: [string, unknown][] = [
      ["/registry/pods/default/web", { resource: "pods", namespace: "default", name: "web" }],
      ["/registry/namespaces/default", { resource: "namespaces", namespace: "", name: "default" }],
      ["/registry/minions/node-1", { resource: "minions", namespace: "", name: "node-1" }],
      ["/registry/deployments/apps/web", { resource: "deployments", namespace: "apps", name: "web" }],
      [
        "/registry/services/specs/default/kubernetes",
        { resource: "services/specs", namespace: "default", name: "kubernetes" },
      ],
      [
        "/registry/apiregistration.k8s.io/apiservices/v1.apps",
        { resource: "apiservices.apiregistration.k8s.io", namespace: "", name: "v1.apps" },
      ],
      ["/registry/example.com/widgets/ns/w", { resource: "widgets.example.com", namespace: "ns", name: "w" }],
      ["/other/key", null],
    ];
    for (const [key, want] of cases) assert.deepEqual(parseKubernetesKey(key), want, key);
  });
});
