/**
 * The control-plane kinds `spec.source.controlPlaneRef` may name, and the facts of the projects that define them
 * (read from their sources; their code is not ours):
 * - Talos operator (alperencelik/talos-operator), `talos.alperen.cloud/v1alpha1` `TalosControlPlane`: it writes a
 *   talosconfig to the Secret `<owner TalosCluster, else the control plane>-talosconfig`, key
 *   `<control plane>.talosconfig`; metal-mode machine addresses are in `spec.metalSpec.machines[].address`;
 *   `status.state` is `Bootstrapped` or `Ready` once etcd runs.
 * - Cluster API's Talos control-plane provider (siderolabs/cluster-api-control-plane-provider-talos),
 *   `controlplane.cluster.x-k8s.io` `TalosControlPlane`: the talosconfig is the Secret `<cluster>-talosconfig`, key
 *   `talosconfig`; the cluster is the owner `Cluster`; `status.initialized`/`status.ready`.
 * - Cluster API (kubernetes-sigs/cluster-api): a `Cluster` (`cluster.x-k8s.io`) names its control plane in
 *   `spec.controlPlaneRef`; control-plane `Machine`s carry the labels `cluster.x-k8s.io/cluster-name` and
 *   `cluster.x-k8s.io/control-plane` and their addresses in `status.addresses[]` (`InternalIP`, `ExternalIP`...);
 *   a `KubeadmControlPlane`'s etcd CA is the Secret `<cluster>-etcd` (`tls.crt`, `tls.key`).
 */

export const TALOS_OPERATOR_GROUP = "talos.alperen.cloud";
export const CAPI_CONTROL_PLANE_GROUP = "controlplane.cluster.x-k8s.io";
export const CAPI_GROUP = "cluster.x-k8s.io";

export const CLUSTER_NAME_LABEL = "cluster.x-k8s.io/cluster-name";
export const CONTROL_PLANE_LABEL = "cluster.x-k8s.io/control-plane";

/** What `controlPlaneRef` names. */
export interface ControlPlaneRef {
  apiVersion: string;
  kind: string;
  name: string;
}

/** The kinds we know, by what they are, not how they are spelled. */
export type ControlPlaneFlavour =
  | "talos-operator" // talos.alperen.cloud TalosControlPlane
  | "capi-talos" // controlplane.cluster.x-k8s.io TalosControlPlane
  | "capi-kubeadm" // controlplane.cluster.x-k8s.io KubeadmControlPlane
  | "capi-cluster"; // cluster.x-k8s.io Cluster

export interface KnownKind {
  flavour: ControlPlaneFlavour;
  group: string;
  kind: string;
  plural: string;
  /** The version read when only the group is known (a v1beta2 Cluster's controlPlaneRef). */
  defaultVersion: string;
}

export const KNOWN_KINDS: readonly KnownKind[] = [
  {
    flavour: "talos-operator",
    group: TALOS_OPERATOR_GROUP,
    kind: "TalosControlPlane",
    plural: "taloscontrolplanes",
    defaultVersion: "v1alpha1",
  },
  {
    flavour: "capi-talos",
    group: CAPI_CONTROL_PLANE_GROUP,
    kind: "TalosControlPlane",
    plural: "taloscontrolplanes",
    defaultVersion: "v1alpha3",
  },
  {
    flavour: "capi-kubeadm",
    group: CAPI_CONTROL_PLANE_GROUP,
    kind: "KubeadmControlPlane",
    plural: "kubeadmcontrolplanes",
    defaultVersion: "v1beta1",
  },
  {
    flavour: "capi-cluster",
    group: CAPI_GROUP,
    kind: "Cluster",
    plural: "clusters",
    defaultVersion: "v1beta1",
  },
];

/** The Machine kind, listed to find control-plane addresses. */
export const MACHINE = { group: CAPI_GROUP, kind: "Machine", plural: "machines" } as const;
/** The Machine version read when the Cluster's own version is not known. */
export const DEFAULT_CAPI_VERSION = "v1beta1";

export function splitApiVersion(apiVersion: string): { group: string; version: string } {
  const slash = apiVersion.indexOf("/");
  return slash < 0
    ? { group: "", version: apiVersion }
    : { group: apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1) };
}

/** The known kind a ref names, or undefined. */
export function knownKind(ref: { apiVersion: string; kind: string }): KnownKind | undefined {
  const { group } = splitApiVersion(ref.apiVersion);
  return KNOWN_KINDS.find((k) => k.group === group && k.kind === ref.kind);
}

export const SUPPORTED_REFS =
  "talos.alperen.cloud/v1alpha1 TalosControlPlane, controlplane.cluster.x-k8s.io TalosControlPlane or KubeadmControlPlane, cluster.x-k8s.io Cluster";
