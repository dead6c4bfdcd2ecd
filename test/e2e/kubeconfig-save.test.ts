import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { parse } from "yaml";
import { VERSION } from "../../src/version.ts";
import { assertOk, assertOneLineError, keygen, runCli } from "../fixtures/cli.ts";
import { type EtcdServer, fillKeys, startEtcd } from "../fixtures/etcd-server.ts";
import { type KubeApiserver, startKubeApiserver } from "../fixtures/kube-apiserver.ts";
import {
  type StandInKubelet,
  type StandInKubeletOptions,
  startStandInKubelet,
} from "../fixtures/kubelet-standin.ts";
import { etcdPeer, kubeApiserverPeer, REPO_ROOT, skipReason } from "../fixtures/peers.ts";
import { makePki } from "../fixtures/pki.ts";
import { registerSecret } from "../fixtures/secrets.ts";

const run = promisify(execFile);

/**
 * `save --kubeconfig` end to end (issue 27). REAL: kube-apiserver v1.35.4 over its own etcd 3.6, its
 * authentication (client certificates), RBAC (the CLI's user; the ClusterRole in deploy/kubeconfig-save),
 * admission and validation of the helper pod, its pods/exec proxy to the node's kubelet over TLS, the etcd 3.6
 * being backed up (TLS with client-certificate authentication, as kubeadm runs it), our CLI on both ends of the
 * stream, and etcdctl/etcdutl for the comparison. STAND-IN (test/fixtures/kubelet-standin.ts): the kubelet's
 * container runtime: it runs the exec'd `etcd-backup save ...` as a local process and marks pods Running.
 * The etcd static pod and the Node are objects we create, shaped as kubeadm's.
 */

const NODE = "cp-1";
const ETCD_POD = `etcd-${NODE}`;

const skip = skipReason(kubeApiserverPeer(), "kube-apiserver") || skipReason(etcdPeer("3.6"), "etcd 3.6");

describe("save --kubeconfig through the real kube-apiserver", { skip }, () => {
  let kas: KubeApiserver;
  let etcd: EtcdServer;
  let kubelet: StandInKubelet;
  const kubeletOptions: StandInKubeletOptions = { node: NODE, startDelayMs: 3000 };
  let dir: string;
  let adminKubeconfig: string;
  let etcdPkiDir: string;

  const helperPods = async () => {
    const r = await kas.adminRequest(
      "GET",
      "/api/v1/namespaces/kube-system/pods?labelSelector=app.kubernetes.io%2Fcomponent%3Dsnapshot-helper",
    );
    return (r.body as { items: { metadata: { name: string } }[] }).items.map((p) => p.metadata.name);
  };
  const etcdStatus = async (file: string) =>
    JSON.parse((await run(etcd.peer.etcdutl!, ["snapshot", "status", "-w", "json", file])).stdout) as Record<
      string,
      unknown
    >;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "etcd-backup-kubeconfig-"));
    kas = await startKubeApiserver();
    // The cluster's etcd that the static pod describes: TLS and client certificates, as kubeadm runs it.
    etcdPkiDir = join(dir, "pki-etcd");
    await run("mkdir", ["-p", etcdPkiDir]);
    const pki = makePki(etcdPkiDir, "etcd-ca");
    etcd = await startEtcd({
      release: "3.6",
      tls: { caCert: pki.caCert, serverCert: pki.serverCert, serverKey: pki.serverKey, clientCertAuth: true },
      clientCert: { cert: pki.serverCert, key: pki.serverKey },
    });
    await fillKeys(etcd, 6000, { valueSize: 1000 });
    kubelet = await startStandInKubelet(kas, kubeletOptions);
    adminKubeconfig = await kas.writeKubeconfig(kas.admin, {
      name: "admin",
      context: "kubernetes-admin@test",
    });
    // What kube-controller-manager would have made: the namespace's default ServiceAccount (pod admission wants it).
    const sa = await kas.adminRequest("POST", "/api/v1/namespaces/kube-system/serviceaccounts", {
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name: "default" },
    });
    assert.ok(sa.status === 201 || sa.status === 409, JSON.stringify(sa.body));
    // etcd's static pod as kubeadm writes it (the mirror pod's spec), pointing at this etcd and its PKI.
    const created = await kas.adminRequest("POST", "/api/v1/namespaces/kube-system/pods", {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: ETCD_POD, labels: { component: "etcd", tier: "control-plane" } },
      spec: {
        nodeName: NODE,
        hostNetwork: true,
        priorityClassName: "system-node-critical",
        containers: [
          {
            name: "etcd",
            image: "registry.k8s.io/etcd:3.6.5-0",
            command: [
              "etcd",
              `--advertise-client-urls=${etcd.endpoint}`,
              `--cert-file=${pki.serverCert}`,
              "--client-cert-auth=true",
              "--data-dir=/var/lib/etcd",
              `--key-file=${pki.serverKey}`,
              `--listen-client-urls=${etcd.endpoint}`,
              `--name=${NODE}`,
              `--trusted-ca-file=${pki.caCert}`,
            ],
            volumeMounts: [
              { name: "etcd-data", mountPath: "/var/lib/etcd" },
              { name: "etcd-certs", mountPath: etcdPkiDir },
            ],
          },
        ],
        volumes: [
          { name: "etcd-certs", hostPath: { path: etcdPkiDir, type: "DirectoryOrCreate" } },
          { name: "etcd-data", hostPath: { path: "/var/lib/etcd", type: "DirectoryOrCreate" } },
        ],
      },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
  });

  after(async () => {
    await kubelet?.stop();
    await kas?.stop();
    await etcd?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test("--out writes what etcdctl snapshot save writes; the helper pod is gone afterwards", async () => {
    const out = join(dir, "etcd-snapshot.db");
    const r = await runCli(["save", "--kubeconfig", adminKubeconfig, "--out", out], { timeoutMs: 180_000 });
    assertOk(r);
    // ocne-like progress: the etcd pod was not ready yet when the command started (the stand-in's start delay).
    assert.match(r.stderr, new RegExp(`waiting for pod kube-system/${ETCD_POD} to be ready`));
    assert.match(r.stderr, new RegExp(`pod kube-system/${ETCD_POD} is ready on node ${NODE}`));
    assert.match(
      r.stderr,
      new RegExp(`running the backup on node ${NODE} \\(helper pod kube-system/etcd-backup-helper-`),
    );
    assert.match(r.stderr, /copied \d+(\.\d+)? MiB from node cp-1/);
    assert.match(r.stderr, /deleted helper pod kube-system\/etcd-backup-helper-/);
    assert.match(r.stdout, /saved snapshot to .*etcd-snapshot\.db/);

    // The API server proxied exactly our save, with the certificate paths read from etcd's pod spec.
    const exec = kubelet.execs.at(-1)!;
    assert.equal(exec.namespace, "kube-system");
    assert.match(exec.pod, /^etcd-backup-helper-/);
    assert.deepEqual(exec.command.slice(0, 6), [
      "etcd-backup",
      "save",
      "--source",
      "etcd",
      "--endpoints",
      etcd.endpoint,
    ]);
    assert.deepEqual(exec.command.slice(-2), ["--out", "-"]);
    // The helper pod as the real API server admitted and stored it.
    const helper = kubelet.pods.get(exec.pod)!.spec as unknown as {
      nodeName: string;
      hostNetwork: boolean;
      tolerations: { key?: string }[];
      containers: {
        image: string;
        command: string[];
        volumeMounts: { mountPath: string; readOnly?: boolean }[];
      }[];
    };
    assert.equal(helper.nodeName, NODE);
    assert.equal(helper.hostNetwork, true);
    assert.equal(helper.containers[0]!.image, `ghcr.io/example/etcd-backup:${VERSION}`);
    assert.deepEqual(helper.containers[0]!.command, ["etcd-backup", "hold", "--for", "3600s"]);
    assert.deepEqual(
      helper.containers[0]!.volumeMounts.map((m) => [m.mountPath, m.readOnly]),
      [[etcdPkiDir, true]],
    );
    assert.ok(
      helper.tolerations.some((t: { key?: string }) => t.key === "node-role.kubernetes.io/control-plane"),
    );

    const theirs = join(dir, "etcdctl.db");
    await etcd.ctl(["snapshot", "save", theirs]);
    assert.deepEqual(await etcdStatus(out), await etcdStatus(theirs));
    const restored = join(dir, "restored");
    await run(etcd.peer.etcdutl!, ["snapshot", "restore", out, "--data-dir", restored]);
    assert.ok((await readdir(join(restored, "member"))).includes("snap"));
    assert.deepEqual(await helperPods(), []);
    assert.equal(kubelet.running(), 0);
  });

  test("--to makes a normal backup (zstd, age, manifest) from the same stream", async () => {
    const keys = await mkdtemp(join(dir, "keys-"));
    const { recipient } = await keygen(keys);
    const store = await mkdtemp(join(dir, "store-"));
    // A helper pod left by an earlier run whose CLI was killed, ended by its deadline: removed on the way.
    const leftover = "etcd-backup-helper-leftover";
    const made = await kas.adminRequest("POST", "/api/v1/namespaces/kube-system/pods", {
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name: leftover,
        labels: { "app.kubernetes.io/name": "etcd-backup", "app.kubernetes.io/component": "snapshot-helper" },
      },
      spec: { nodeName: NODE, restartPolicy: "Never", containers: [{ name: "snapshot", image: "x" }] },
    });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const ended = await kas.adminRequest("PUT", `/api/v1/namespaces/kube-system/pods/${leftover}/status`, {
      ...(made.body as object),
      status: { phase: "Failed", reason: "DeadlineExceeded" },
    });
    assert.equal(ended.status, 200, JSON.stringify(ended.body));
    const r = await runCli(
      ["save", "--kubeconfig", adminKubeconfig, "--to", store, "--recipient", recipient, "-o", "json"],
      {
        timeoutMs: 180_000,
      },
    );
    assertOk(r);
    const saved = JSON.parse(r.stdout) as {
      manifest: { source: { kind: string; node?: string }; etcd?: { revision: number } };
    };
    assert.match(r.stderr, new RegExp(`deleting leftover helper pod kube-system/${leftover} \\(Failed\\)`));
    assert.equal(saved.manifest.source.kind, "kubernetes");
    assert.equal(saved.manifest.source.node, NODE);
    const theirs = await etcdStatus(join(dir, "etcdctl.db"));
    assert.equal(saved.manifest.etcd?.revision, theirs.revision);
    assert.deepEqual(await helperPods(), []);
  });

  test("a user without the ClusterRole gets one line naming the missing verbs; with it bound, the save works", async () => {
    const alice = await kas.writeKubeconfig(kas.mintUser("alice"), { name: "alice", context: "alice@test" });
    const denied = await runCli(["save", "--kubeconfig", alice, "--out", join(dir, "alice.db")]);
    assertOneLineError(
      denied,
      1,
      /alice may not list pods, get pods, create pods, delete pods, create pods\/exec, get pods\/exec in namespace kube-system/,
    );
    assert.match(denied.stderr, /deploy\/kubeconfig-save\/clusterrole\.yaml/);
    assert.deepEqual(await helperPods(), []);

    // The ready-made ClusterRole, bound in kube-system only, is enough.
    const role = parse(
      await readFile(join(REPO_ROOT, "deploy", "kubeconfig-save", "clusterrole.yaml"), "utf8"),
    );
    const applied = await kas.adminRequest("POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles", role);
    assert.equal(applied.status, 201, JSON.stringify(applied.body));
    const bound = await kas.adminRequest(
      "POST",
      "/apis/rbac.authorization.k8s.io/v1/namespaces/kube-system/rolebindings",
      {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "RoleBinding",
        metadata: { name: "etcd-backup-kubeconfig-save" },
        roleRef: {
          apiGroup: "rbac.authorization.k8s.io",
          kind: "ClusterRole",
          name: "etcd-backup-kubeconfig-save",
        },
        subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: "alice" }],
      },
    );
    assert.equal(bound.status, 201, JSON.stringify(bound.body));
    // RBAC changes reach the authorizer through its informer: allow it a moment.
    let allowed = await runCli(["save", "--kubeconfig", alice, "--out", join(dir, "alice.db")], {
      timeoutMs: 180_000,
    });
    for (let i = 0; i < 10 && allowed.code !== 0 && /may not/.test(allowed.stderr); i++) {
      await new Promise((r) => setTimeout(r, 500));
      allowed = await runCli(["save", "--kubeconfig", alice, "--out", join(dir, "alice.db")], {
        timeoutMs: 180_000,
      });
    }
    assertOk(allowed);
    assert.deepEqual(await etcdStatus(join(dir, "alice.db")), await etcdStatus(join(dir, "etcdctl.db")));
    assert.deepEqual(await helperPods(), []);
  });

  test("a ServiceAccount token from an exec credential plugin, with --image: the real token authenticator", async () => {
    // A ServiceAccount bound to the ready-made ClusterRole (applied by the test before), and a token for it.
    const sa = await kas.adminRequest("POST", "/api/v1/namespaces/kube-system/serviceaccounts", {
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name: "backup-operator" },
    });
    assert.equal(sa.status, 201, JSON.stringify(sa.body));
    const bound = await kas.adminRequest(
      "POST",
      "/apis/rbac.authorization.k8s.io/v1/namespaces/kube-system/rolebindings",
      {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "RoleBinding",
        metadata: { name: "backup-operator" },
        roleRef: {
          apiGroup: "rbac.authorization.k8s.io",
          kind: "ClusterRole",
          name: "etcd-backup-kubeconfig-save",
        },
        subjects: [{ kind: "ServiceAccount", name: "backup-operator", namespace: "kube-system" }],
      },
    );
    assert.equal(bound.status, 201, JSON.stringify(bound.body));
    const tr = await kas.adminRequest(
      "POST",
      "/api/v1/namespaces/kube-system/serviceaccounts/backup-operator/token",
      {
        apiVersion: "authentication.k8s.io/v1",
        kind: "TokenRequest",
        spec: { expirationSeconds: 3600 },
      },
    );
    const token = (tr.body as { status: { token: string } }).status.token;
    registerSecret(token, "a ServiceAccount token");
    // The plugin prints an ExecCredential, as client.authentication.k8s.io/v1 plugins do.
    const plugin = join(dir, "credential-plugin.mjs");
    await writeFile(
      plugin,
      `process.stdout.write(JSON.stringify({ apiVersion: "client.authentication.k8s.io/v1", kind: "ExecCredential", status: { token: ${JSON.stringify(token)} } }));\n`,
    );
    const kubeconfig = join(dir, "exec.kubeconfig");
    await writeFile(
      kubeconfig,
      [
        "apiVersion: v1",
        "kind: Config",
        "clusters:",
        "- name: test",
        "  cluster:",
        `    server: ${kas.url}`,
        `    certificate-authority-data: ${(await readFile(kas.pki.caCert)).toString("base64")}`,
        "users:",
        "- name: sa",
        "  user:",
        "    exec:",
        "      apiVersion: client.authentication.k8s.io/v1",
        `      command: ${process.execPath}`,
        `      args: [${JSON.stringify(plugin)}]`,
        "      interactiveMode: Never",
        "contexts:",
        "- name: sa@test",
        "  context: {cluster: test, user: sa}",
        "current-context: sa@test",
        "",
      ].join("\n"),
    );
    const out = join(dir, "sa.db");
    const r = await runCli(
      ["save", "--kubeconfig", kubeconfig, "--image", "registry.example/etcd-backup:test", "--out", out],
      {
        timeoutMs: 180_000,
      },
    );
    assertOk(r);
    const exec = kubelet.execs.at(-1)!;
    assert.equal(kubelet.pods.get(exec.pod)!.spec.containers[0]!.image, "registry.example/etcd-backup:test");
    assert.deepEqual(await etcdStatus(out), await etcdStatus(join(dir, "etcdctl.db")));
    assert.deepEqual(await helperPods(), []);
  });

  test("SIGINT mid-copy: the helper pod is deleted and no file is left", async () => {
    // The stand-in paces the stream (16 KiB every 20 ms: about 8 s for this etcd) so the copy is interrupted mid-way.
    kubeletOptions.pace = { bytes: 16 * 1024, delayMs: 20 };
    const outDir = await mkdtemp(join(dir, "interrupted-"));
    const execsBefore = kubelet.execs.length;
    let pid = 0;
    const running = runCli(["save", "--kubeconfig", adminKubeconfig, "--out", join(outDir, "snap.db")], {
      timeoutMs: 120_000,
      onSpawn: (p) => {
        pid = p;
      },
    });
    const deadline = Date.now() + 60_000;
    while (kubelet.execs.length === execsBefore && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    assert.ok(kubelet.execs.length > execsBefore, "the exec never reached the stand-in kubelet");
    await new Promise((r) => setTimeout(r, 1500));
    assert.ok((await helperPods()).length === 1, "the helper pod should exist mid-copy");
    process.kill(pid, "SIGINT");
    const r = await running;
    delete kubeletOptions.pace;
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /SIGINT received/);
    assert.match(r.stderr, /deleted helper pod kube-system\/etcd-backup-helper-/);
    assert.deepEqual(await helperPods(), []);
    assert.deepEqual(await readdir(outDir), []);
    for (let i = 0; i < 20 && kubelet.running() > 0; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(kubelet.running(), 0);
  });

  // Last: it stops the etcd behind the pod.
  test("the helper's save failing (etcd down) is one line with its reason; the helper pod is deleted", async () => {
    await etcd.stop();
    const out = join(dir, "down.db");
    const r = await runCli(["save", "--kubeconfig", adminKubeconfig, "--out", out], { timeoutMs: 180_000 });
    assert.equal(r.code, 1, r.stderr);
    const last = r.stderr.trim().split("\n").at(-1)!;
    assert.match(
      last,
      /^etcd-backup: the command in pod etcd-backup-helper-\w+ exited with code 1: .*127\.0\.0\.1/,
    );
    assert.match(r.stderr, /deleted helper pod kube-system\/etcd-backup-helper-/);
    assert.deepEqual(await helperPods(), []);
    assert.deepEqual(
      (await readdir(dir)).filter((f) => f.includes("partial") || f === "down.db"),
      [],
    );
  });

  test("a context the kubeconfig lacks is one line, exit 2", async () => {
    const r = await runCli([
      "save",
      "--kubeconfig",
      adminKubeconfig,
      "--context",
      "nope",
      "--out",
      join(dir, "x.db"),
    ]);
    assertOneLineError(r, 2, /has no context "nope" \(use one of: kubernetes-admin@test\)/);
  });
});
