/**
 * The management cluster's objects for the controlPlaneRef tests, written the same way to the API server stand-in
 * (test/operator/control-plane-refs/operator-refs.test.ts) and to the real kube-apiserver
 * (test/peers/operator-refs-kube-apiserver.test.ts): a Talos operator TalosControlPlane, a Cluster API Cluster with
 * a Talos control plane and Machines, a KubeadmControlPlane with its etcd CA, and three that must fail.
 */

const b64 = (v: string | Buffer) => Buffer.from(v).toString("base64");
export const NS = "default";

/** Writes one object; `plural` as the stand-in names it (`secrets`, `machines`, `taloscontrolplanes.talos.alperen.cloud`). */
export type PutObject = (plural: string, obj: object) => unknown;

/**
 * The kinds of the other projects these objects use, for a real API server that has no CRDs of them. Their CRDs are
 * not installed here: a test registers minimal ones (any fields kept), which is enough for the operator that only
 * reads them.
 */
export const FOREIGN_KINDS = [
  {
    group: "talos.alperen.cloud",
    version: "v1alpha1",
    kind: "TalosControlPlane",
    plural: "taloscontrolplanes",
  },
  { group: "cluster.x-k8s.io", version: "v1beta1", kind: "Cluster", plural: "clusters" },
  { group: "cluster.x-k8s.io", version: "v1beta1", kind: "Machine", plural: "machines" },
  {
    group: "controlplane.cluster.x-k8s.io",
    version: "v1alpha3",
    kind: "TalosControlPlane",
    plural: "taloscontrolplanes",
  },
  {
    group: "controlplane.cluster.x-k8s.io",
    version: "v1beta1",
    kind: "KubeadmControlPlane",
    plural: "kubeadmcontrolplanes",
  },
] as const;

export interface ControlPlaneObjectsOptions {
  /** host:port of the Talos stand-in serving the control-plane nodes. */
  talosEndpoint: string;
  /** A talosconfig for a context and endpoints (client certificate embedded). */
  talosconfig(context: string, endpoints: string[]): string;
  /** The kubeadm cluster's etcd CA, stored as the `<cluster>-etcd` Secret. */
  etcdCa: { cert: Buffer; key: Buffer };
}

export async function writeControlPlaneObjects(put: PutObject, o: ControlPlaneObjectsOptions): Promise<void> {
  const talosconfig = o.talosconfig;
  const secret = (name: string, data: Record<string, string | Buffer>) =>
    put("secrets", {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name, namespace: NS },
      type: "Opaque",
      data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])),
    });
  const machine = (name: string, cluster: string, address: string) =>
    put("machines", {
      apiVersion: "cluster.x-k8s.io/v1beta1",
      kind: "Machine",
      metadata: {
        name,
        namespace: NS,
        labels: { "cluster.x-k8s.io/cluster-name": cluster, "cluster.x-k8s.io/control-plane": "" },
      },
      spec: { clusterName: cluster },
      status: { phase: "Running", addresses: [{ type: "InternalIP", address }] },
    });
  // Talos operator: a metal-mode TalosControlPlane owned by a TalosCluster, Ready.
  await put("taloscontrolplanes.talos.alperen.cloud", {
    apiVersion: "talos.alperen.cloud/v1alpha1",
    kind: "TalosControlPlane",
    metadata: {
      name: "edge-cp",
      namespace: NS,
      ownerReferences: [
        { apiVersion: "talos.alperen.cloud/v1alpha1", kind: "TalosCluster", name: "edge", uid: "u1" },
      ],
    },
    spec: { mode: "metal", metalSpec: { machines: [{ address: "10.5.0.1" }, { address: "10.5.0.2" }] } },
    status: { state: "Ready" },
  });
  await secret("edge-talosconfig", { "edge-cp.talosconfig": talosconfig("edge", [o.talosEndpoint]) });
  // Cluster API: Cluster prod -> TalosControlPlane prod-cp, two control-plane Machines and a worker.
  await put("clusters", {
    apiVersion: "cluster.x-k8s.io/v1beta1",
    kind: "Cluster",
    metadata: { name: "prod", namespace: NS },
    spec: {
      controlPlaneRef: {
        apiVersion: "controlplane.cluster.x-k8s.io/v1alpha3",
        kind: "TalosControlPlane",
        name: "prod-cp",
      },
    },
  });
  await put("taloscontrolplanes.controlplane.cluster.x-k8s.io", {
    apiVersion: "controlplane.cluster.x-k8s.io/v1alpha3",
    kind: "TalosControlPlane",
    metadata: {
      name: "prod-cp",
      namespace: NS,
      labels: { "cluster.x-k8s.io/cluster-name": "prod" },
      ownerReferences: [{ apiVersion: "cluster.x-k8s.io/v1beta1", kind: "Cluster", name: "prod", uid: "u2" }],
    },
    status: { initialized: true, ready: true },
  });
  await machine("prod-cp-b", "prod", "10.6.0.2");
  await machine("prod-cp-a", "prod", "10.6.0.1");
  await put("machines", {
    apiVersion: "cluster.x-k8s.io/v1beta1",
    kind: "Machine",
    metadata: { name: "prod-worker", namespace: NS, labels: { "cluster.x-k8s.io/cluster-name": "prod" } },
    status: { addresses: [{ type: "InternalIP", address: "10.6.0.9" }] },
  });
  await secret("prod-talosconfig", { talosconfig: talosconfig("prod", [o.talosEndpoint]) });
  // Cluster API kubeadm: KubeadmControlPlane kube-cp of cluster kube; etcd's CA in kube-etcd.
  await put("kubeadmcontrolplanes", {
    apiVersion: "controlplane.cluster.x-k8s.io/v1beta1",
    kind: "KubeadmControlPlane",
    metadata: { name: "kube-cp", namespace: NS, labels: { "cluster.x-k8s.io/cluster-name": "kube" } },
    status: { initialized: true },
  });
  await machine("kube-cp-1", "kube", "127.0.0.1");
  await secret("kube-etcd", { "tls.crt": o.etcdCa.cert, "tls.key": o.etcdCa.key });
  // Failure cases: a control plane without its Secret, one still installing, one whose nodes nobody serves.
  await put("taloscontrolplanes.talos.alperen.cloud", {
    apiVersion: "talos.alperen.cloud/v1alpha1",
    kind: "TalosControlPlane",
    metadata: { name: "nosecret-cp", namespace: NS },
    spec: { mode: "metal", metalSpec: { machines: [{ address: "10.7.0.1" }] } },
    status: { state: "Ready" },
  });
  await put("taloscontrolplanes.talos.alperen.cloud", {
    apiVersion: "talos.alperen.cloud/v1alpha1",
    kind: "TalosControlPlane",
    metadata: { name: "young-cp", namespace: NS },
    status: { state: "Installing" },
  });
  await secret("young-cp-talosconfig", { "young-cp.talosconfig": talosconfig("young", [o.talosEndpoint]) });
  await put("taloscontrolplanes.talos.alperen.cloud", {
    apiVersion: "talos.alperen.cloud/v1alpha1",
    kind: "TalosControlPlane",
    metadata: { name: "down-cp", namespace: NS },
    spec: { mode: "metal", metalSpec: { machines: [{ address: "10.8.0.1" }, { address: "10.8.0.2" }] } },
    status: { state: "Ready" },
  });
  await secret("down-cp-talosconfig", { "down-cp.talosconfig": talosconfig("down", ["127.0.0.1:1"]) });
}

/** The Talos reference kinds: which node the snapshot must be asked of first, and the cluster name it gets. */
export const TALOS_REFERENCE_CASES = [
  {
    name: "talos-operator",
    ref: { apiVersion: "talos.alperen.cloud/v1alpha1", kind: "TalosControlPlane", name: "edge-cp" },
    cluster: "edge-cp",
    node: "10.5.0.1",
  },
  {
    name: "capi-cluster",
    ref: { apiVersion: "cluster.x-k8s.io/v1beta1", kind: "Cluster", name: "prod" },
    cluster: "prod",
    node: "10.6.0.1",
  },
  {
    name: "capi-talos",
    ref: {
      apiVersion: "controlplane.cluster.x-k8s.io/v1alpha3",
      kind: "TalosControlPlane",
      name: "prod-cp",
    },
    cluster: "prod-cp",
    node: "10.6.0.1",
  },
];

export const KUBEADM_REFERENCE = {
  apiVersion: "controlplane.cluster.x-k8s.io/v1beta1",
  kind: "KubeadmControlPlane",
  name: "kube-cp",
};

/** References that must end Failed, with the reason and message of their condition and Event. */
export const FAILING_REFERENCE_CASES = [
  {
    name: "missing-secret",
    ref: { apiVersion: "talos.alperen.cloud/v1alpha1", kind: "TalosControlPlane", name: "nosecret-cp" },
    reason: "SecretNotFound",
    message:
      /^Secret default\/nosecret-cp-talosconfig \(the talosconfig of TalosControlPlane nosecret-cp\) not found/,
  },
  {
    name: "not-ready",
    ref: { apiVersion: "talos.alperen.cloud/v1alpha1", kind: "TalosControlPlane", name: "young-cp" },
    reason: "ControlPlaneNotReady",
    message: /^TalosControlPlane default\/young-cp is in state Installing, not Bootstrapped or Ready/,
  },
  {
    name: "unreachable",
    ref: { apiVersion: "talos.alperen.cloud/v1alpha1", kind: "TalosControlPlane", name: "down-cp" },
    reason: "SourceUnreachable",
    message:
      /^cannot snapshot Talos node 10\.8\.0\.1, 10\.8\.0\.2 via 127\.0\.0\.1:1: no Talos endpoint answered/,
  },
];
