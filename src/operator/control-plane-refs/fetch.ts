import { ApiException, CustomObjectsApi, type KubeConfig } from "@kubernetes/client-node";
import type { BackupJobConfigInput } from "../../config/schema.ts";
import { Reason } from "../api.ts";
import { KubeError } from "../kube.ts";
import type { ConfigReader } from "../resolve.ts";
import { SpecProblem } from "../spec-problem.ts";
import {
  CLUSTER_NAME_LABEL,
  CONTROL_PLANE_LABEL,
  type ControlPlaneRef,
  DEFAULT_CAPI_VERSION,
  knownKind,
  MACHINE,
  splitApiVersion,
} from "./kinds.ts";
import {
  ControlPlaneReason,
  capiClusterName,
  controlPlaneAddresses,
  flavourOf,
  followClusterRef,
  type KubeObj,
  kubeadmEtcdSource,
  notReadyReason,
  talosconfigSecret,
  talosOperatorAddresses,
  talosSource,
} from "./resolve-control-plane.ts";

/**
 * Every API read a `controlPlaneRef` needs, in one place: the referenced object (and the control plane a Cluster
 * names), the cluster's control-plane Machines, and one Secret. What the objects mean is decided by the pure
 * functions of resolve-control-plane.ts.
 */

/** Reads objects of other projects' kinds (RBAC: get on them, list on Machines). */
export interface ControlPlaneReader {
  /** The object, or null when it does not exist. */
  get(apiVersion: string, plural: string, namespace: string, name: string): Promise<KubeObj | null>;
  list(apiVersion: string, plural: string, namespace: string, labelSelector: string): Promise<KubeObj[]>;
}

/** The reader on the official client. */
export function kubeControlPlaneReader(config: KubeConfig): ControlPlaneReader {
  const api = config.makeApiClient(CustomObjectsApi);
  const explain = (what: string, err: unknown) => {
    if (err instanceof ApiException) {
      let body: { message?: string; reason?: string } = {};
      try {
        body = typeof err.body === "string" ? JSON.parse(err.body) : (err.body as typeof body);
      } catch {}
      return new KubeError(`${what}: ${body?.message ?? `HTTP ${err.code}`}`, err.code, body?.reason ?? "");
    }
    return new Error(what, { cause: err });
  };
  return {
    async get(apiVersion, plural, namespace, name) {
      const { group, version } = splitApiVersion(apiVersion);
      try {
        return (await api.getNamespacedCustomObject({ group, version, namespace, plural, name })) as KubeObj;
      } catch (err) {
        const e = explain(`get ${plural}.${group} ${namespace}/${name}`, err);
        if (e instanceof KubeError && e.code === 404) return null;
        throw e;
      }
    },
    async list(apiVersion, plural, namespace, labelSelector) {
      const { group, version } = splitApiVersion(apiVersion);
      try {
        const res = (await api.listNamespacedCustomObject({
          group,
          version,
          namespace,
          plural,
          labelSelector,
        })) as {
          items?: KubeObj[];
        };
        return res.items ?? [];
      } catch (err) {
        throw explain(`list ${plural}.${group} in ${namespace}`, err);
      }
    },
  };
}

export interface ControlPlaneSettings {
  /** etcd's client port on kubeadm control-plane nodes (2379). */
  etcdPort: number;
  dialTimeoutMs: number;
}

export const DEFAULT_CONTROL_PLANE_SETTINGS: ControlPlaneSettings = { etcdPort: 2379, dialTimeoutMs: 10_000 };

export interface ResolvedControlPlane {
  /** The cluster's name: the Cluster API cluster's, else the Talos operator control plane's. */
  cluster: string;
  source: BackupJobConfigInput["source"];
}

/**
 * Resolves a `controlPlaneRef` in `namespace` to a source: the referenced object must exist and have etcd
 * running, its Secret must hold the talosconfig (Talos) or the etcd CA (kubeadm), and its nodes' addresses must
 * be known. Throws `SpecProblem` (ControlPlaneNotFound, ControlPlaneNotReady, SecretNotFound, KeyNotFound,
 * NoControlPlaneNodes, InvalidEtcdCA, UnsupportedControlPlane) naming the object and what to do.
 */
export async function resolveControlPlane(
  ref: ControlPlaneRef,
  namespace: string,
  reader: ControlPlaneReader,
  secrets: ConfigReader,
  settings: ControlPlaneSettings = DEFAULT_CONTROL_PLANE_SETTINGS,
): Promise<ResolvedControlPlane> {
  let flavour = flavourOf(ref);
  let cpRef = ref;
  let clusterObj: KubeObj | undefined;
  const fetch = async (r: ControlPlaneRef, field: string) => {
    const plural = knownKind(r)!.plural;
    const obj = await reader.get(r.apiVersion, plural, namespace, r.name);
    if (!obj) {
      throw new SpecProblem(
        ControlPlaneReason.ControlPlaneNotFound,
        `${r.kind} ${namespace}/${r.name} (${r.apiVersion}, ${field}) not found: create it in namespace ${namespace} or fix ${field}`,
      );
    }
    return obj;
  };
  if (flavour === "capi-cluster") {
    clusterObj = await fetch(ref, "spec.source.controlPlaneRef");
    cpRef = followClusterRef(clusterObj);
    flavour = flavourOf(cpRef);
  }
  const cp = await fetch(
    cpRef,
    clusterObj ? `Cluster ${ref.name}'s spec.controlPlaneRef` : "spec.source.controlPlaneRef",
  );
  const notReady = notReadyReason(flavour, cp, cpRef.kind);
  if (notReady) throw new SpecProblem(ControlPlaneReason.ControlPlaneNotReady, notReady);

  const cluster =
    flavour === "talos-operator"
      ? cp.metadata.name
      : (clusterObj?.metadata.name ?? capiClusterName(cp, cpRef.kind));
  const secretKey = async (name: string, key: string, why: string) => {
    const data = await secrets.secret(namespace, name);
    if (!data) {
      throw new SpecProblem(
        Reason.SecretNotFound,
        `Secret ${namespace}/${name} (${why} of ${cpRef.kind} ${cpRef.name}) not found: it is created by the control plane's provider once the cluster is bootstrapped`,
      );
    }
    const value = data[key];
    if (value === undefined) {
      const known = Object.keys(data).sort().join(", ") || "none";
      throw new SpecProblem(
        Reason.KeyNotFound,
        `Secret ${namespace}/${name} has no key ${JSON.stringify(key)} (${why}); its keys: ${known}`,
      );
    }
    return value;
  };
  const machines = async () => {
    const version = clusterObj?.apiVersion
      ? splitApiVersion(clusterObj.apiVersion).version
      : DEFAULT_CAPI_VERSION;
    const list = await reader.list(
      `${MACHINE.group}/${version}`,
      MACHINE.plural,
      namespace,
      `${CLUSTER_NAME_LABEL}=${cluster},${CONTROL_PLANE_LABEL}`,
    );
    return controlPlaneAddresses(list, cluster);
  };

  if (flavour === "capi-kubeadm") {
    const name = `${cluster}-etcd`;
    const ca = {
      cert: await secretKey(name, "tls.crt", "the etcd CA"),
      key: await secretKey(name, "tls.key", "the etcd CA"),
      secret: `${namespace}/${name}`,
    };
    return {
      cluster,
      source: kubeadmEtcdSource(ca, await machines(), {
        port: settings.etcdPort,
        dialTimeoutMs: settings.dialTimeoutMs,
      }),
    };
  }
  const where = talosconfigSecret(
    flavour === "talos-operator" ? "talos-operator" : "capi-talos",
    cp,
    cluster,
  );
  const text = (await secretKey(where.name, where.key, "the talosconfig")).toString("utf8");
  const addresses = flavour === "talos-operator" ? talosOperatorAddresses(cp) : await machines();
  if (flavour === "capi-talos" && addresses.length === 0) {
    throw new SpecProblem(
      ControlPlaneReason.NoControlPlaneNodes,
      `no control-plane Machine of cluster ${cluster} has an address yet (status.addresses): wait for the Machines to come up`,
    );
  }
  return {
    cluster,
    source: talosSource({ text, label: `Secret ${namespace}/${where.name} key ${where.key}` }, addresses),
  };
}
