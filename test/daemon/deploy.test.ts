import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { parse, parseAllDocuments } from "yaml";
import { parseDaemonConfig } from "../../src/config/schema.ts";
import { createBackupMetrics } from "../../src/observability/metrics.ts";

const run = promisify(execFile);
const DEPLOY = join(import.meta.dirname, "..", "..", "deploy");

interface K8sObject {
  kind: string;
  metadata: { name: string; namespace?: string };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
}

async function kustomize(base: string): Promise<K8sObject[]> {
  const { stdout } = await run("kubectl", ["kustomize", join(DEPLOY, "kustomize", base)]);
  return parseAllDocuments(stdout).map((d) => d.toJSON() as K8sObject);
}

// biome-ignore lint/suspicious/noExplicitAny: walking free-form manifests
type Any = any;

test("kustomize daemon base: Deployment on a control plane node with etcd's host certificates, a metrics Service, no RBAC", async () => {
  const objects = await kustomize("daemon");
  const kinds = objects.map((o) => o.kind).sort();
  assert.deepEqual(kinds, ["ConfigMap", "Deployment", "Namespace", "Service"]);
  for (const o of objects) if (o.kind !== "Namespace") assert.equal(o.metadata.namespace, "etcd-backup");
  const dep = objects.find((o) => o.kind === "Deployment") as Any;
  const pod = dep.spec.template.spec;
  assert.equal(dep.spec.replicas, 1);
  assert.equal(dep.spec.strategy.type, "Recreate");
  assert.equal(pod.automountServiceAccountToken, false);
  assert.equal(pod.serviceAccountName, undefined);
  assert.ok("node-role.kubernetes.io/control-plane" in pod.nodeSelector);
  const pki = pod.volumes.find((v: Any) => v.hostPath);
  assert.equal(pki.hostPath.path, "/etc/kubernetes/pki/etcd");
  const c = pod.containers[0];
  assert.deepEqual(c.args.slice(0, 1), ["daemon"]);
  assert.ok(c.volumeMounts.some((m: Any) => m.name === pki.name && m.readOnly === true));
  assert.equal(c.livenessProbe.httpGet.path, "/healthz");
  assert.equal(c.readinessProbe.httpGet.path, "/readyz");
  const svc = objects.find((o) => o.kind === "Service") as Any;
  assert.equal(svc.spec.ports[0].port, 9090);
  for (const [k, v] of Object.entries(svc.spec.selector))
    assert.equal(dep.spec.template.metadata.labels[k], v);
  assert.ok(!objects.some((o) => /Role|ServiceAccount/.test(o.kind)));
  // The shipped settings file is valid as the daemon reads it (recipients come from the Secret's env).
  const cm = objects.find((o) => o.kind === "ConfigMap")!;
  const settings = parse(cm.data!["config.yaml"]!) as Record<string, unknown>;
  const camel = Object.fromEntries(
    Object.entries(settings).map(([k, v]) => [k.replace(/-([a-z])/g, (_, x: string) => x.toUpperCase()), v]),
  );
  const config = parseDaemonConfig({ ...camel, recipient: ["age1example"] });
  assert.equal(config.job.source.kind, "etcd");
  assert.deepEqual(config.job.retention, { last: 4, daily: 7, weekly: 4, monthly: 6 });
  assert.equal(config.metrics.port, 9090);
});

test("kustomize cronjob base: a CronJob running save with the host's etcd certificates", async () => {
  const objects = await kustomize("cronjob");
  assert.deepEqual(objects.map((o) => o.kind).sort(), ["CronJob", "Namespace"]);
  const cj = objects.find((o) => o.kind === "CronJob") as Any;
  assert.equal(cj.spec.concurrencyPolicy, "Forbid");
  const pod = cj.spec.jobTemplate.spec.template.spec;
  assert.deepEqual(pod.containers[0].args, ["save"]);
  assert.equal(pod.volumes[0].hostPath.path, "/etc/kubernetes/pki/etcd");
  const env = Object.fromEntries(pod.containers[0].env.map((e: Any) => [e.name, e.value]));
  assert.match(env.ETCD_BACKUP_TO, /^s3:\/\//);
  assert.equal(env.ETCDCTL_KEY, "/etc/kubernetes/pki/etcd/healthcheck-client.key");
});

test("helm chart: files exist and every value the templates use is in values.yaml", () => {
  const chart = join(DEPLOY, "helm", "etcd-backup");
  for (const f of [
    "Chart.yaml",
    "values.yaml",
    "templates/_helpers.tpl",
    "templates/deployment.yaml",
    "templates/cronjob.yaml",
    "templates/service.yaml",
  ]) {
    assert.ok(existsSync(join(chart, f)), f);
  }
  assert.equal((parse(readFileSync(join(chart, "Chart.yaml"), "utf8")) as Any).apiVersion, "v2");
  const values = parse(readFileSync(join(chart, "values.yaml"), "utf8")) as Any;
  const used = new Set<string>();
  for (const f of readdirSync(join(chart, "templates"))) {
    const text = readFileSync(join(chart, "templates", f), "utf8");
    // Balanced template delimiters.
    assert.equal(text.split("{{").length, text.split("}}").length, `${f}: unbalanced {{ }}`);
    for (const m of text.matchAll(/\.Values\.([A-Za-z0-9_.]+)/g)) used.add(m[1]!);
    // `with .Values.retention` then `.keepLast`: relative references inside the block.
    for (const m of text.matchAll(/\{\{-? if \.(keep[A-Za-z]+) \}\}/g)) used.add(`retention.${m[1]}`);
  }
  assert.ok(used.size > 20);
  for (const path of used) {
    let cur: Any = values;
    for (const part of path.split(".")) {
      assert.ok(cur && typeof cur === "object" && part in cur, `values.yaml has no ${path}`);
      cur = cur[part];
    }
  }
  assert.ok(["daemon", "cronjob"].includes(values.mode));
});

test("monitoring: the alerts and the dashboard use only metrics the daemon exports", async () => {
  const names = new Set((await createBackupMetrics().registry.getMetricsAsJSON()).map((m) => m.name));
  const known = (expr: string) => {
    for (const m of expr.matchAll(/etcd_backup_[a-z_]+/g)) {
      const base = m[0].replace(/_(bucket|sum|count)$/, "");
      assert.ok(names.has(m[0]) || names.has(base), `unknown metric ${m[0]}`);
    }
  };
  const rule = parse(readFileSync(join(DEPLOY, "monitoring", "prometheusrule.yaml"), "utf8")) as Any;
  assert.equal(rule.kind, "PrometheusRule");
  const alerts = rule.spec.groups.flatMap((g: Any) => g.rules);
  const alertNames = alerts.map((r: Any) => r.alert);
  for (const a of ["EtcdBackupTooOld", "EtcdBackupFailing", "EtcdBackupNoRuns"])
    assert.ok(alertNames.includes(a), a);
  for (const r of alerts) {
    known(r.expr);
    assert.ok(r.labels.severity && r.annotations.summary);
  }
  const dash = JSON.parse(readFileSync(join(DEPLOY, "monitoring", "grafana-dashboard.json"), "utf8")) as Any;
  assert.ok(dash.panels.length >= 6);
  for (const p of dash.panels) for (const t of p.targets) known(t.expr);
});
