/**
 * The operator's install: `kubectl kustomize` renders the base (deploy/operator) and the Talos operator
 * compatibility overlay (deploy/operator-overlays/talos-etcd-backup-compat), with the RBAC the new code needs;
 * `helm template` (helm v3 built into .peers/ by scripts/install-peers.sh) renders the chart's operator mode with the same rules and args.
 */

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { parseAllDocuments } from "yaml";
import { helmPeer } from "../fixtures/peers.ts";

const run = promisify(execFile);
const DEPLOY = join(import.meta.dirname, "..", "..", "deploy");
// biome-ignore lint/suspicious/noExplicitAny: rendered manifests, checked field by field
type Any = any;

const docs = (text: string): Any[] =>
  parseAllDocuments(text)
    .map((d) => d.toJS())
    .filter(Boolean);
const kustomize = async (dir: string) =>
  docs((await run("kubectl", ["kustomize", join(DEPLOY, dir)])).stdout);
const find = (objs: Any[], kind: string, name?: string) =>
  objs.filter((o) => o.kind === kind && (!name || o.metadata.name === name));
/** `group resource verb` triples a set of ClusterRoles grants. */
const grants = (roles: Any[]) =>
  new Set(
    roles.flatMap((r) =>
      r.rules.flatMap((rule: Any) =>
        rule.apiGroups.flatMap((g: string) =>
          rule.resources.flatMap((res: string) => rule.verbs.map((v: string) => `${g} ${res} ${v}`)),
        ),
      ),
    ),
  );

const CONTROL_PLANE_READS = [
  "talos.alperen.cloud taloscontrolplanes get",
  "controlplane.cluster.x-k8s.io taloscontrolplanes get",
  "controlplane.cluster.x-k8s.io kubeadmcontrolplanes get",
  "cluster.x-k8s.io clusters get",
  "cluster.x-k8s.io machines list",
];
const COMPAT = [
  "talos.alperen.cloud talosetcdbackups watch",
  "talos.alperen.cloud talosetcdbackups create",
  "talos.alperen.cloud talosetcdbackups delete",
  "talos.alperen.cloud talosetcdbackups patch",
  "talos.alperen.cloud talosetcdbackups/status patch",
  "talos.alperen.cloud talosetcdbackupschedules/status patch",
];

test("kubectl kustomize deploy/operator: the base renders, may read control planes, serves no Talos kinds", async () => {
  const objs = await kustomize("operator");
  assert.deepEqual(
    find(objs, "CustomResourceDefinition")
      .map((c) => c.metadata.name)
      .sort(),
    ["etcdbackups.etcd-backup.dev", "etcdbackupschedules.etcd-backup.dev"],
  );
  const g = grants(find(objs, "ClusterRole"));
  for (const want of CONTROL_PLANE_READS) assert.ok(g.has(want), want);
  for (const not of COMPAT) assert.ok(!g.has(not), not);
  const args = find(objs, "Deployment")[0].spec.template.spec.containers[0].args;
  assert.ok(!args.includes("--talos-etcd-backup-compat"));
});

test("kubectl kustomize the compatibility overlay: the base plus the Talos kinds' CRDs, RBAC and flag", async () => {
  const objs = await kustomize("operator-overlays/talos-etcd-backup-compat");
  const crds = find(objs, "CustomResourceDefinition");
  assert.deepEqual(crds.map((c) => c.metadata.name).sort(), [
    "etcdbackups.etcd-backup.dev",
    "etcdbackupschedules.etcd-backup.dev",
    "talosetcdbackups.talos.alperen.cloud",
    "talosetcdbackupschedules.talos.alperen.cloud",
  ]);
  for (const c of crds.filter((x) => x.spec.group === "talos.alperen.cloud")) {
    assert.equal(c.spec.versions[0].name, "v1alpha1");
    assert.deepEqual(c.spec.versions[0].subresources, { status: {} });
  }
  const g = grants(find(objs, "ClusterRole"));
  for (const want of [...CONTROL_PLANE_READS, ...COMPAT]) assert.ok(g.has(want), want);
  const binding = find(objs, "ClusterRoleBinding", "etcd-backup-operator-talos-etcd-backup-compat")[0];
  assert.deepEqual(binding.subjects, [
    { kind: "ServiceAccount", name: "etcd-backup-operator", namespace: "etcd-backup" },
  ]);
  const args = find(objs, "Deployment")[0].spec.template.spec.containers[0].args;
  assert.equal(args.at(-1), "--talos-etcd-backup-compat");
});

const helm = helmPeer()?.helm;

test("helm template, mode operator: the same RBAC, CRDs from the same files, the compat flag", {
  skip: helm ? false : "helm is not built (scripts/install-peers.sh helm)",
}, async () => {
  const chart = join(DEPLOY, "helm", "etcd-backup");
  const render = async (...set: string[]) =>
    docs(
      (
        await run(helm!, [
          "template",
          "t",
          chart,
          "-n",
          "etcd-backup",
          "--set",
          ["mode=operator", ...set].join(","),
        ])
      ).stdout,
    );
  const plain = await render();
  assert.deepEqual(
    find(plain, "CustomResourceDefinition")
      .map((c) => c.metadata.name)
      .sort(),
    ["etcdbackups.etcd-backup.dev", "etcdbackupschedules.etcd-backup.dev"],
  );
  const base = await kustomize("operator");
  assert.deepEqual(grants(find(plain, "ClusterRole")), grants(find(base, "ClusterRole")));
  assert.equal(find(plain, "Deployment").length, 1);
  assert.equal(find(plain, "CronJob").length, 0);
  const compat = await render("operator.talosEtcdBackupCompat=true");
  const overlay = await kustomize("operator-overlays/talos-etcd-backup-compat");
  assert.deepEqual(grants(find(compat, "ClusterRole")), grants(find(overlay, "ClusterRole")));
  assert.equal(find(compat, "CustomResourceDefinition").length, 4);
  assert.ok(
    find(compat, "Deployment")[0].spec.template.spec.containers[0].args.includes(
      "--talos-etcd-backup-compat",
    ),
  );
  assert.equal(find(await render("operator.installCRDs=false"), "CustomResourceDefinition").length, 0);
  const daemon = docs((await run(helm!, ["template", "t", chart])).stdout);
  assert.equal(find(daemon, "CustomResourceDefinition").length, 0, "daemon mode installs no CRDs");
});

test("helm lint, and every mode renders to each destination kind with its credentials wired", {
  skip: helm ? false : "helm is not built (scripts/install-peers.sh helm)",
}, async () => {
  const chart = join(DEPLOY, "helm", "etcd-backup");
  const lint = await run(helm!, ["lint", chart]);
  assert.match(lint.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  const env = (objs: Any[]) =>
    objs
      .flatMap((o) => [o.spec?.template?.spec, o.spec?.jobTemplate?.spec?.template?.spec])
      .filter(Boolean)
      .flatMap((p) => p.containers.flatMap((c: { env?: { name: string }[] }) => c.env ?? []))
      .map((e: { name: string }) => e.name);
  const destinations: [string, string[], string[]][] = [
    ["s3://backups/prod", ["s3.credentialsSecret=s3-keys"], ["AWS_REGION"]],
    [
      "azblob://backups/prod",
      ["azure.account=acct1", "azure.credentialsSecret=az-key"],
      ["AZURE_STORAGE_ACCOUNT"],
    ],
    ["gs://backups/prod", ["gcs.credentialsSecret=gcs-key"], ["GOOGLE_APPLICATION_CREDENTIALS"]],
  ];
  for (const mode of ["daemon", "cronjob"]) {
    for (const [destination, set, expected] of destinations) {
      const out = docs(
        (
          await run(helm!, [
            "template",
            "t",
            chart,
            "--set",
            [`mode=${mode}`, `destination=${destination}`, ...set].join(","),
          ])
        ).stdout,
      );
      const kind = mode === "daemon" ? "Deployment" : "CronJob";
      assert.equal(find(out, kind).length, 1, `${mode} ${destination}: one ${kind}`);
      const names = env(find(out, kind));
      assert.ok(names.includes("ETCD_BACKUP_TO"), `${mode} ${destination}: ETCD_BACKUP_TO`);
      for (const e of expected)
        assert.ok(names.includes(e), `${mode} ${destination}: ${e} in ${names.join(", ")}`);
    }
  }
});
