/**
 * Where a Kubernetes object lives in etcd. The apiserver stores objects under
 * `/registry/<resource>/<namespace>/<name>` (namespaced) or `/registry/<resource>/<name>` (cluster scoped).
 * Built-in resources of every group use the bare plural (`deployments`, `clusterroles`); resources served
 * through the aggregation or CRD machinery use `/registry/<group>/<plural>/...`.
 *
 * The rule used here:
 * - a first segment containing a dot is an API group: the resource is named `<plural>.<group>`, as kubectl
 *   names it (`customresourcedefinitions.apiextensions.k8s.io`, `widgets.example.com`);
 * - three segments remain for `/registry/services/specs/<ns>/<name>` and `/registry/services/endpoints/...`:
 *   the first is part of the resource (`services/specs`);
 * - two remaining segments are namespace and name, one is a cluster-scoped name.
 * A key can only be told namespaced or not by its shape: names never contain a slash.
 */

export const REGISTRY_PREFIX = "/registry/";

/** The parts of a registry key. `namespace` is "" for cluster-scoped objects. */
export interface KubernetesKey {
  resource: string;
  namespace: string;
  name: string;
}

/** Parses a registry key; null when the key is not under `/registry/`. */
export function parseKubernetesKey(key: string): KubernetesKey | null {
  if (!key.startsWith(REGISTRY_PREFIX)) return null;
  const parts = key.slice(REGISTRY_PREFIX.length).split("/");
  let resource = parts[0] ?? "";
  let rest = parts.slice(1);
  if (resource.includes(".") && rest.length >= 2) {
    resource = `${rest[0]}.${resource}`;
    rest = rest.slice(1);
  }
  if (rest.length >= 3) {
    resource = `${resource}/${rest[0]}`;
    rest = rest.slice(1);
  }
  if (rest.length >= 2) return { resource, namespace: rest[0]!, name: rest.slice(1).join("/") };
  return { resource, namespace: "", name: rest[0] ?? "" };
}

/** The key of an object: `/registry/<resource>/[<namespace>/]<name>`, resource named as parseKubernetesKey names it. */
export function kubernetesKey(resource: string, namespace: string, name: string): string {
  const dot = resource.indexOf(".");
  const path =
    dot > 0 && !resource.includes("/") ? `${resource.slice(dot + 1)}/${resource.slice(0, dot)}` : resource;
  return `${REGISTRY_PREFIX}${path}/${namespace ? `${namespace}/` : ""}${name}`;
}
