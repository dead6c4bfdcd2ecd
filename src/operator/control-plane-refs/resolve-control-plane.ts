import { isIP } from "node:net";
import type { BackupJobConfigInput } from "../../config/schema.ts";
import { describeError } from "../../errors.ts";
import { parseTalosconfig } from "../../talos/config.ts";
import { Reason } from "../api.ts";
import { SpecProblem } from "../spec-problem.ts";
import { EtcdCaProblem, issueEtcdClientCertificate } from "./etcd-client-certificate.ts";
import {
  CAPI_GROUP,
  CLUSTER_NAME_LABEL,
  CONTROL_PLANE_LABEL,
  type ControlPlaneFlavour,
  type ControlPlaneRef,
  knownKind,
  SUPPORTED_REFS,
  splitApiVersion,
} from "./kinds.ts";

/**
 * From the objects read for a `controlPlaneRef` to the source a backup uses: pure functions over what was
 * fetched (fetch.ts does the reading), so each rule is tested without an API server. Every refusal is a
 * `SpecProblem` whose reason says what kind of problem it is and whose message names the object and what to do.
 */

/** Condition and Event reasons of control-plane references. */
export const ControlPlaneReason = {
  UnsupportedControlPlane: "UnsupportedControlPlane",
  ControlPlaneNotFound: "ControlPlaneNotFound",
  ControlPlaneNotReady: "ControlPlaneNotReady",
  NoControlPlaneNodes: "NoControlPlaneNodes",
  InvalidEtcdCA: "InvalidEtcdCA",
} as const;

/** A Kubernetes object as JSON: the fields read here, nothing assumed about the rest. */
export interface KubeObj {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    ownerReferences?: { apiVersion: string; kind: string; name: string }[];
    deletionTimestamp?: string;
  };
  // biome-ignore lint/suspicious/noExplicitAny: foreign objects, read field by field
  spec?: any;
  // biome-ignore lint/suspicious/noExplicitAny: foreign objects, read field by field
  status?: any;
}

const where = (o: KubeObj, kind: string) => `${kind} ${o.metadata.namespace ?? ""}/${o.metadata.name}`;

/** The flavour of a ref, or a problem naming what is supported. */
export function flavourOf(ref: ControlPlaneRef): ControlPlaneFlavour {
  const k = knownKind(ref);
  if (!k) {
    throw new SpecProblem(
      ControlPlaneReason.UnsupportedControlPlane,
      `spec.source.controlPlaneRef: ${ref.apiVersion} ${ref.kind} is not supported (use ${SUPPORTED_REFS})`,
    );
  }
  return k.flavour;
}

/**
 * The control plane a Cluster API `Cluster` names: `spec.controlPlaneRef` (v1beta1: apiVersion, kind, name;
 * v1beta2: apiGroup, kind, name; the version is then the Cluster's own).
 */
export function followClusterRef(cluster: KubeObj): ControlPlaneRef {
  const r = cluster.spec?.controlPlaneRef as
    | { apiVersion?: string; apiGroup?: string; kind?: string; name?: string }
    | undefined;
  if (!r?.kind || !r.name) {
    throw new SpecProblem(
      ControlPlaneReason.ControlPlaneNotReady,
      `${where(cluster, "Cluster")} has no spec.controlPlaneRef yet: give it a control plane, or reference the control plane itself`,
    );
  }
  const group = r.apiVersion ? splitApiVersion(r.apiVersion).group : (r.apiGroup ?? "");
  const known = knownKind({ apiVersion: `${group}/`, kind: r.kind });
  if (known?.flavour !== "capi-talos" && known?.flavour !== "capi-kubeadm") {
    throw new SpecProblem(
      ControlPlaneReason.UnsupportedControlPlane,
      `${where(cluster, "Cluster")} has a ${group} ${r.kind} control plane; only controlplane.cluster.x-k8s.io TalosControlPlane and KubeadmControlPlane can be backed up`,
    );
  }
  // v1beta2 names the group only: read the kind at the version its provider serves.
  const ref = { apiVersion: r.apiVersion ?? `${group}/${known.defaultVersion}`, kind: r.kind, name: r.name };
  return ref;
}

/** The Cluster API cluster a control plane belongs to: its cluster-name label, else its owner `Cluster`. */
export function capiClusterName(cp: KubeObj, kind: string): string {
  const label = cp.metadata.labels?.[CLUSTER_NAME_LABEL];
  if (label) return label;
  const owner = (cp.metadata.ownerReferences ?? []).find(
    (o) => o.kind === "Cluster" && splitApiVersion(o.apiVersion).group === CAPI_GROUP,
  );
  if (owner) return owner.name;
  throw new SpecProblem(
    ControlPlaneReason.ControlPlaneNotReady,
    `${where(cp, kind)} belongs to no Cluster yet (no ${CLUSTER_NAME_LABEL} label, no owner Cluster): wait for Cluster API to adopt it`,
  );
}

/** Why the control plane cannot be backed up yet, or null when etcd is up. */
export function notReadyReason(flavour: ControlPlaneFlavour, cp: KubeObj, kind: string): string | null {
  if (cp.metadata.deletionTimestamp) return `${where(cp, kind)} is being deleted`;
  const s = cp.status ?? {};
  if (flavour === "talos-operator") {
    const state = typeof s.state === "string" ? s.state : "";
    if (state === "Ready" || state === "Bootstrapped") return null;
    return `${where(cp, kind)} is ${state ? `in state ${state}` : "without a state"}, not Bootstrapped or Ready: etcd is not running yet`;
  }
  // Cluster API control planes: v1beta1 `initialized`/`ready`, v1beta2 `initialization.controlPlaneInitialized`.
  if (s.initialized === true || s.ready === true || s.initialization?.controlPlaneInitialized === true)
    return null;
  return `${where(cp, kind)} is not initialized (status.initialized is not true): etcd is not running yet`;
}

/** Which Secret holds the talosconfig, and under which key. */
export function talosconfigSecret(
  flavour: "talos-operator" | "capi-talos",
  cp: KubeObj,
  cluster: string,
): { name: string; key: string } {
  if (flavour === "capi-talos") return { name: `${cluster}-talosconfig`, key: "talosconfig" };
  // The Talos operator names it after the owner (a TalosCluster) when there is one, else the control plane.
  const owner = cp.metadata.ownerReferences?.[0]?.name ?? cp.metadata.name;
  return { name: `${owner}-talosconfig`, key: `${cp.metadata.name}.talosconfig` };
}

/**
 * Addresses of the cluster's control-plane Machines (not being deleted), InternalIP before ExternalIP before the
 * rest, Machines in name order, each address once.
 */
export function controlPlaneAddresses(machines: readonly KubeObj[], cluster: string): string[] {
  const rank = (type: string) => (type === "InternalIP" ? 0 : type === "ExternalIP" ? 1 : 2);
  const out: string[] = [];
  const ours = machines
    .filter(
      (m) =>
        m.metadata.labels?.[CLUSTER_NAME_LABEL] === cluster &&
        m.metadata.labels?.[CONTROL_PLANE_LABEL] !== undefined &&
        !m.metadata.deletionTimestamp,
    )
    .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  for (const m of ours) {
    const addresses = ((m.status?.addresses ?? []) as { type?: string; address?: string }[])
      .filter((a) => typeof a.address === "string" && a.address && (a.type ?? "").endsWith("IP"))
      .sort((a, b) => rank(a.type ?? "") - rank(b.type ?? ""));
    for (const a of addresses) if (!out.includes(a.address!)) out.push(a.address!);
  }
  return out;
}

/** Addresses the Talos operator knows of a metal-mode control plane (`spec.metalSpec.machines[].address`). */
export function talosOperatorAddresses(cp: KubeObj): string[] {
  const machines = (cp.spec?.metalSpec?.machines ?? []) as { address?: string }[];
  return machines.map((m) => m.address).filter((a): a is string => typeof a === "string" && a !== "");
}

/** `host:port`, bracketing an IPv6 address. */
export function hostPort(address: string, port: number): string {
  return isIP(address) === 6 ? `[${address}]:${port}` : `${address}:${port}`;
}

/** Talos apid's port. */
export const TALOS_API_PORT = 50000;

/**
 * A Talos source from the talosconfig text and the control-plane addresses: the nodes are tried in turn, each
 * addressed through the talosconfig's endpoints (as `talosctl -n`), or, when it has none, through the nodes
 * themselves on apid's port.
 */
export function talosSource(
  talosconfig: { text: string; label: string },
  addresses: readonly string[],
): Extract<BackupJobConfigInput["source"], { kind: "talos" }> {
  let endpoints: string[];
  try {
    endpoints = parseTalosconfig(talosconfig.text, talosconfig.label).endpoints;
  } catch (err) {
    throw new SpecProblem(Reason.InvalidSpec, `${talosconfig.label}: ${describeError(err)}`);
  }
  if (endpoints.length === 0 && addresses.length === 0) {
    throw new SpecProblem(
      ControlPlaneReason.NoControlPlaneNodes,
      `${talosconfig.label} has no endpoints and no control-plane node address is known yet`,
    );
  }
  return {
    kind: "talos",
    talosconfigText: talosconfig,
    endpoints: endpoints.length ? [] : addresses.map((a) => hostPort(a, TALOS_API_PORT)),
    nodes: [...addresses],
  };
}

/**
 * An etcd source for a kubeadm control plane: a client certificate issued from the `<cluster>-etcd` CA, the
 * members at the control-plane Machines' addresses on etcd's client port (2379 in kubeadm), server certificates
 * verified against the same CA.
 */
export function kubeadmEtcdSource(
  ca: { cert: Buffer; key: Buffer; secret: string },
  addresses: readonly string[],
  options: { port: number; dialTimeoutMs: number; now?: Date },
): Extract<BackupJobConfigInput["source"], { kind: "etcd" }> {
  if (addresses.length === 0) {
    throw new SpecProblem(
      ControlPlaneReason.NoControlPlaneNodes,
      "no control-plane Machine has an address yet (status.addresses): wait for the Machines to come up",
    );
  }
  let issued: ReturnType<typeof issueEtcdClientCertificate>;
  try {
    issued = issueEtcdClientCertificate(ca.cert, ca.key, options.now ? { now: options.now } : {});
  } catch (err) {
    if (!(err instanceof EtcdCaProblem)) throw err;
    throw new SpecProblem(
      ControlPlaneReason.InvalidEtcdCA,
      `Secret ${ca.secret} cannot sign an etcd client certificate: ${err.message}`,
    );
  }
  return {
    kind: "etcd",
    endpoints: addresses.map((a) => `https://${hostPort(a, options.port)}`),
    pem: { ca: ca.cert, cert: issued.certPem, key: issued.keyPem },
    insecureSkipTlsVerify: false,
    dialTimeoutMs: options.dialTimeoutMs,
  };
}
