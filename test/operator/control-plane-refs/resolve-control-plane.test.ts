import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import {
  type ControlPlaneReader,
  resolveControlPlane,
} from "../../../src/operator/control-plane-refs/fetch.ts";
import {
  controlPlaneAddresses,
  followClusterRef,
  type KubeObj,
  notReadyReason,
  talosconfigSecret,
  talosSource,
} from "../../../src/operator/control-plane-refs/resolve-control-plane.ts";
import { type ConfigReader, SpecProblem } from "../../../src/operator/resolve.ts";
import { makePki } from "../../fixtures/pki.ts";
import { talosconfigYaml } from "../../fixtures/talos-standin.ts";

const machine = (name: string, cluster: string, addresses: [string, string][], cp = true): KubeObj => ({
  apiVersion: "cluster.x-k8s.io/v1beta1",
  kind: "Machine",
  metadata: {
    name,
    namespace: "fleet",
    labels: {
      "cluster.x-k8s.io/cluster-name": cluster,
      ...(cp ? { "cluster.x-k8s.io/control-plane": "" } : {}),
    },
  },
  status: { addresses: addresses.map(([type, address]) => ({ type, address })) },
});

describe("control-plane references: pure rules", () => {
  it("control-plane addresses: only the cluster's control-plane Machines, InternalIP first, each once", () => {
    const machines = [
      machine("b", "prod", [
        ["ExternalIP", "203.0.113.2"],
        ["InternalIP", "10.0.0.2"],
        ["Hostname", "b"],
      ]),
      machine("a", "prod", [["InternalIP", "10.0.0.1"]]),
      machine("w", "prod", [["InternalIP", "10.0.0.9"]], false),
      machine("x", "other", [["InternalIP", "10.1.0.1"]]),
      {
        ...machine("gone", "prod", [["InternalIP", "10.0.0.7"]]),
        metadata: { ...machine("gone", "prod", []).metadata, deletionTimestamp: "2026-01-01T00:00:00Z" },
      },
    ];
    assert.deepEqual(controlPlaneAddresses(machines, "prod"), ["10.0.0.1", "10.0.0.2", "203.0.113.2"]);
  });

  it("a Cluster's controlPlaneRef, v1beta1 (apiVersion) and v1beta2 (apiGroup)", () => {
    const cluster = (ref: object): KubeObj => ({
      metadata: { name: "prod", namespace: "fleet" },
      spec: { controlPlaneRef: ref },
    });
    assert.deepEqual(
      followClusterRef(
        cluster({
          apiVersion: "controlplane.cluster.x-k8s.io/v1alpha3",
          kind: "TalosControlPlane",
          name: "prod-cp",
        }),
      ),
      { apiVersion: "controlplane.cluster.x-k8s.io/v1alpha3", kind: "TalosControlPlane", name: "prod-cp" },
    );
    assert.deepEqual(
      followClusterRef(
        cluster({ apiGroup: "controlplane.cluster.x-k8s.io", kind: "KubeadmControlPlane", name: "kcp" }),
      ),
      { apiVersion: "controlplane.cluster.x-k8s.io/v1beta1", kind: "KubeadmControlPlane", name: "kcp" },
    );
    assert.throws(
      () =>
        followClusterRef(
          cluster({ apiGroup: "controlplane.cluster.x-k8s.io", kind: "K0smotronControlPlane", name: "k" }),
        ),
      (err: SpecProblem) =>
        err.reason === "UnsupportedControlPlane" && /K0smotronControlPlane control plane/.test(err.message),
    );
    assert.throws(
      () => followClusterRef({ metadata: { name: "prod", namespace: "fleet" }, spec: {} }),
      (err: SpecProblem) =>
        err.reason === "ControlPlaneNotReady" && /has no spec.controlPlaneRef/.test(err.message),
    );
  });

  it("readiness of each flavour", () => {
    const cp = (status: object): KubeObj => ({ metadata: { name: "cp", namespace: "fleet" }, status });
    assert.equal(notReadyReason("talos-operator", cp({ state: "Ready" }), "TalosControlPlane"), null);
    assert.equal(notReadyReason("talos-operator", cp({ state: "Bootstrapped" }), "TalosControlPlane"), null);
    assert.equal(
      notReadyReason("talos-operator", cp({ state: "Installing" }), "TalosControlPlane"),
      "TalosControlPlane fleet/cp is in state Installing, not Bootstrapped or Ready: etcd is not running yet",
    );
    assert.equal(notReadyReason("capi-talos", cp({ initialized: true }), "TalosControlPlane"), null);
    assert.equal(
      notReadyReason(
        "capi-kubeadm",
        cp({ initialization: { controlPlaneInitialized: true } }),
        "KubeadmControlPlane",
      ),
      null,
    );
    assert.match(notReadyReason("capi-kubeadm", cp({}), "KubeadmControlPlane") ?? "", /is not initialized/);
  });

  it("where each provider writes the talosconfig", () => {
    const own = { metadata: { name: "cp", namespace: "fleet" } };
    const owned = {
      metadata: {
        ...own.metadata,
        ownerReferences: [{ apiVersion: "talos.alperen.cloud/v1alpha1", kind: "TalosCluster", name: "tc" }],
      },
    };
    assert.deepEqual(talosconfigSecret("talos-operator", own, "cp"), {
      name: "cp-talosconfig",
      key: "cp.talosconfig",
    });
    assert.deepEqual(talosconfigSecret("talos-operator", owned, "cp"), {
      name: "tc-talosconfig",
      key: "cp.talosconfig",
    });
    assert.deepEqual(talosconfigSecret("capi-talos", own, "prod"), {
      name: "prod-talosconfig",
      key: "talosconfig",
    });
  });
});

describe("control-plane references: resolveControlPlane over fetched objects", () => {
  const dir = mkdtempSync(join(tmpdir(), "cp-refs-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const pki = makePki(dir);
  const talosconfig = (endpoints: string[]) =>
    Buffer.from(
      talosconfigYaml({
        context: "prod",
        endpoints,
        caCert: pki.caCert,
        cert: pki.clientCert,
        key: pki.clientKey,
      }),
    );

  /** An in-memory API: objects by `plural/name`, Secrets by name. */
  const world = (objects: Record<string, KubeObj>, secrets: Record<string, Record<string, Buffer>>) => {
    const reads: string[] = [];
    const reader: ControlPlaneReader = {
      async get(apiVersion, plural, _ns, name) {
        reads.push(`get ${apiVersion} ${plural} ${name}`);
        return objects[`${plural}/${name}`] ?? null;
      },
      async list(apiVersion, plural, _ns, selector) {
        reads.push(`list ${apiVersion} ${plural} ${selector}`);
        return Object.entries(objects)
          .filter(([k]) => k.startsWith(`${plural}/`))
          .map(([, o]) => o);
      },
    };
    const config: ConfigReader = {
      async secret(_ns, name) {
        return secrets[name] ?? null;
      },
      async configMap() {
        return null;
      },
    };
    return { reader, config, reads };
  };
  const machines = {
    "machines/prod-cp-1": machine("prod-cp-1", "prod", [["InternalIP", "10.0.0.1"]]),
    "machines/prod-cp-2": machine("prod-cp-2", "prod", [["InternalIP", "10.0.0.2"]]),
  };
  const capiTalos: KubeObj = {
    apiVersion: "controlplane.cluster.x-k8s.io/v1alpha3",
    metadata: { name: "prod-cp", namespace: "fleet", labels: { "cluster.x-k8s.io/cluster-name": "prod" } },
    status: { initialized: true, ready: true },
  };
  const problem = async (p: Promise<unknown>) => {
    try {
      await p;
    } catch (err) {
      assert.ok(err instanceof SpecProblem, String(err));
      return { reason: err.reason, message: err.message };
    }
    assert.fail("resolved");
  };

  it("a CAPI Cluster -> its TalosControlPlane -> <cluster>-talosconfig and the control-plane Machines as nodes", async () => {
    const w = world(
      {
        "clusters/prod": {
          apiVersion: "cluster.x-k8s.io/v1beta1",
          metadata: { name: "prod", namespace: "fleet" },
          spec: {
            controlPlaneRef: {
              apiVersion: "controlplane.cluster.x-k8s.io/v1alpha3",
              kind: "TalosControlPlane",
              name: "prod-cp",
            },
          },
        },
        "taloscontrolplanes/prod-cp": capiTalos,
        ...machines,
      },
      { "prod-talosconfig": { talosconfig: talosconfig(["192.0.2.10:50000"]) } },
    );
    const r = await resolveControlPlane(
      { apiVersion: "cluster.x-k8s.io/v1beta1", kind: "Cluster", name: "prod" },
      "fleet",
      w.reader,
      w.config,
    );
    assert.equal(r.cluster, "prod");
    assert.equal(r.source.kind, "talos");
    if (r.source.kind !== "talos") return;
    assert.deepEqual(r.source.nodes, ["10.0.0.1", "10.0.0.2"]);
    assert.deepEqual(r.source.endpoints, [], "the talosconfig's endpoints are used");
    assert.equal(r.source.talosconfigText?.label, "Secret fleet/prod-talosconfig key talosconfig");
    assert.deepEqual(w.reads, [
      "get cluster.x-k8s.io/v1beta1 clusters prod",
      "get controlplane.cluster.x-k8s.io/v1alpha3 taloscontrolplanes prod-cp",
      "list cluster.x-k8s.io/v1beta1 machines cluster.x-k8s.io/cluster-name=prod,cluster.x-k8s.io/control-plane",
    ]);
  });

  it("a talosconfig without endpoints: the nodes are reached directly on apid's port", async () => {
    const w = world(
      { "taloscontrolplanes/prod-cp": capiTalos, ...machines },
      { "prod-talosconfig": { talosconfig: talosconfig([]) } },
    );
    const r = await resolveControlPlane(
      { apiVersion: "controlplane.cluster.x-k8s.io/v1alpha3", kind: "TalosControlPlane", name: "prod-cp" },
      "fleet",
      w.reader,
      w.config,
    );
    assert.equal(r.source.kind === "talos" && r.source.endpoints?.join(","), "10.0.0.1:50000,10.0.0.2:50000");
  });

  it("a KubeadmControlPlane: etcd at the Machines on 2379 with a certificate from <cluster>-etcd", async () => {
    const w = world(
      {
        "kubeadmcontrolplanes/kcp": { ...capiTalos, metadata: { ...capiTalos.metadata, name: "kcp" } },
        ...machines,
      },
      { "prod-etcd": { "tls.crt": readFileSync(pki.caCert), "tls.key": readFileSync(pki.caKey) } },
    );
    const r = await resolveControlPlane(
      { apiVersion: "controlplane.cluster.x-k8s.io/v1beta1", kind: "KubeadmControlPlane", name: "kcp" },
      "fleet",
      w.reader,
      w.config,
    );
    assert.equal(r.source.kind, "etcd");
    if (r.source.kind !== "etcd") return;
    assert.deepEqual(r.source.endpoints, ["https://10.0.0.1:2379", "https://10.0.0.2:2379"]);
    assert.match(r.source.pem?.cert?.toString() ?? "", /BEGIN CERTIFICATE/);
  });

  it("each refusal names its cause", async () => {
    const ref = {
      apiVersion: "controlplane.cluster.x-k8s.io/v1alpha3",
      kind: "TalosControlPlane",
      name: "prod-cp",
    };
    const none = world({}, {});
    assert.deepEqual(await problem(resolveControlPlane(ref, "fleet", none.reader, none.config)), {
      reason: "ControlPlaneNotFound",
      message:
        "TalosControlPlane fleet/prod-cp (controlplane.cluster.x-k8s.io/v1alpha3, spec.source.controlPlaneRef) not found: create it in namespace fleet or fix spec.source.controlPlaneRef",
    });
    const noSecret = world({ "taloscontrolplanes/prod-cp": capiTalos, ...machines }, {});
    assert.deepEqual(await problem(resolveControlPlane(ref, "fleet", noSecret.reader, noSecret.config)), {
      reason: "SecretNotFound",
      message:
        "Secret fleet/prod-talosconfig (the talosconfig of TalosControlPlane prod-cp) not found: it is created by the control plane's provider once the cluster is bootstrapped",
    });
    const notReady = world({ "taloscontrolplanes/prod-cp": { ...capiTalos, status: {} } }, {});
    assert.equal(
      (await problem(resolveControlPlane(ref, "fleet", notReady.reader, notReady.config))).reason,
      "ControlPlaneNotReady",
    );
    const noMachines = world(
      { "taloscontrolplanes/prod-cp": capiTalos },
      { "prod-talosconfig": { talosconfig: talosconfig(["192.0.2.1:50000"]) } },
    );
    assert.equal(
      (await problem(resolveControlPlane(ref, "fleet", noMachines.reader, noMachines.config))).reason,
      "NoControlPlaneNodes",
    );
    assert.deepEqual(
      await problem(
        resolveControlPlane({ ...ref, apiVersion: "example.com/v1" }, "fleet", none.reader, none.config),
      ),
      {
        reason: "UnsupportedControlPlane",
        message:
          "spec.source.controlPlaneRef: example.com/v1 TalosControlPlane is not supported (use talos.alperen.cloud/v1alpha1 TalosControlPlane, controlplane.cluster.x-k8s.io TalosControlPlane or KubeadmControlPlane, cluster.x-k8s.io Cluster)",
      },
    );
    const badCa = world(
      {
        "kubeadmcontrolplanes/kcp": { ...capiTalos, metadata: { ...capiTalos.metadata, name: "kcp" } },
        ...machines,
      },
      { "prod-etcd": { "tls.crt": readFileSync(pki.caCert), "tls.key": readFileSync(pki.clientKey) } },
    );
    assert.deepEqual(
      await problem(
        resolveControlPlane(
          { apiVersion: "controlplane.cluster.x-k8s.io/v1beta1", kind: "KubeadmControlPlane", name: "kcp" },
          "fleet",
          badCa.reader,
          badCa.config,
        ),
      ),
      {
        reason: "InvalidEtcdCA",
        message:
          "Secret fleet/prod-etcd cannot sign an etcd client certificate: tls.key is not the key of tls.crt",
      },
    );
  });

  it("a talosconfig that is not one is InvalidSpec naming the Secret", () => {
    assert.throws(
      () => talosSource({ text: "contexts: {}\n", label: "Secret fleet/x key talosconfig" }, ["10.0.0.1"]),
      (err: SpecProblem) =>
        err.reason === "InvalidSpec" && err.message.startsWith("Secret fleet/x key talosconfig: "),
    );
  });
});
