import { isDeepStrictEqual } from "node:util";
import { Hinted } from "../errors.ts";
import { type ApiServer, ApiServerError } from "./api-server.ts";
import { cleanObject, type KubernetesObject } from "./object.ts";
import { sortedKeys, toJson } from "./render.ts";

/**
 * Puts one object from a backup back into a live cluster: the cleaned object (object.ts cleanObject: no
 * uid, resourceVersion, status...) is applied with server-side apply (PATCH application/apply-patch+yaml,
 * field manager `etcd-backup`), which creates it when absent. An object that exists and differs is refused
 * unless `force` (then applied with force=true: etcd-backup takes the fields it sets). `dryRun` sends the
 * same apply with dryRun=All: the server validates it and changes nothing.
 */

export const FIELD_MANAGER = "etcd-backup";

export type RestoreAction = "created" | "updated" | "unchanged" | "would create" | "would update";

export interface RestoreObjectResult {
  action: RestoreAction;
  /** `deployments.apps prod/web`, as kubectl names objects. */
  what: string;
  /** What the user should know (owner references that may be gone). */
  warnings: string[];
}

/** Where the API server serves a kind: its resource name, and whether it is namespaced. */
interface ServedResource {
  resource: string;
  group: string;
  namespaced: boolean;
}

async function discover(
  api: ApiServer,
  apiVersion: string,
  kind: string,
  signal?: AbortSignal,
): Promise<ServedResource> {
  const base = apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  const res = await api.call("GET", base, signal ? { signal } : {});
  if (res.status === 404) {
    throw new Hinted(
      `the API server does not serve ${apiVersion}`,
      apiVersion === "apiextensions.k8s.io/v1beta1"
        ? "the apiserver stores CustomResourceDefinitions as v1beta1 and serves only v1: apply the CRD from its source manifest"
        : "restore into a cluster of a release that serves it, or install its CRD / API service first",
    );
  }
  if (res.status !== 200)
    throw new ApiServerError(`GET ${base}: HTTP ${res.status}`, res.status, String(res.status));
  const list = res.body as { resources?: { name: string; kind: string; namespaced: boolean }[] };
  const found = (list.resources ?? []).find((r) => r.kind === kind && !r.name.includes("/"));
  if (!found)
    throw new Hinted(
      `the API server serves no ${kind} in ${apiVersion}`,
      "check the backup's apiVersion and kind",
    );
  const group = apiVersion.includes("/") ? apiVersion.slice(0, apiVersion.indexOf("/")) : "";
  return { resource: found.name, group, namespaced: found.namespaced };
}

/** Whether the live object already holds what the backup's does (every field but metadata, plus labels and annotations). */
function sameAsLive(backup: KubernetesObject, live: KubernetesObject): boolean {
  const { apiVersion: _a, kind: _k, metadata, ...rest } = backup;
  for (const [k, v] of Object.entries(rest)) {
    if (!isDeepStrictEqual(sortedKeys(v), sortedKeys(live[k]))) return false;
  }
  const liveMeta = live.metadata ?? {};
  for (const k of ["labels", "annotations"]) {
    if (!isDeepStrictEqual(sortedKeys(metadata?.[k] ?? {}), sortedKeys(liveMeta[k] ?? {}))) return false;
  }
  return true;
}

/**
 * Where the API server serves `object` (by discovery of its group version): the REST path of the object,
 * its name as kubectl prints it (`deployments.apps prod/web`), and whether the kind is namespaced.
 */
export async function objectPath(
  api: ApiServer,
  object: KubernetesObject,
  signal?: AbortSignal,
): Promise<{ path: string; what: string; namespaced: boolean }> {
  const { apiVersion, kind } = object;
  const name = object.metadata?.name as string | undefined;
  if (!apiVersion || !kind || !name) throw new Error("the object has no apiVersion, kind or name");
  const served = await discover(api, apiVersion, kind, signal);
  const namespace = (object.metadata?.namespace as string | undefined) ?? "";
  if (served.namespaced && !namespace) throw new Error(`the ${kind} ${name} has no namespace`);
  const what = `${served.resource}${served.group ? `.${served.group}` : ""} ${served.namespaced ? `${namespace}/` : ""}${name}`;
  const base = apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  const path = `${base}${served.namespaced ? `/namespaces/${encodeURIComponent(namespace)}` : ""}/${served.resource}/${encodeURIComponent(name)}`;
  return { path, what, namespaced: served.namespaced };
}

export async function restoreObject(
  api: ApiServer,
  stored: KubernetesObject,
  options: { dryRun?: boolean; force?: boolean; signal?: AbortSignal } = {},
): Promise<RestoreObjectResult> {
  const { object, dropped } = cleanObject(stored);
  const { apiVersion, kind } = object;
  const name = object.metadata?.name as string | undefined;
  if (!apiVersion || !kind || !name) throw new Error("the stored object has no apiVersion, kind or name");
  if (dropped.length > 0 && !options.force) {
    throw new Hinted(
      `the stored ${kind} has what this release's schema cannot restore: ${dropped.join("; ")}`,
      "pass --force to restore it without them",
    );
  }
  const { path, what, namespaced } = await objectPath(api, object, options.signal);
  const namespace = (object.metadata?.namespace as string | undefined) ?? "";
  const signalOpt = options.signal ? { signal: options.signal } : {};

  const current = await api.call("GET", path, signalOpt);
  let exists = false;
  if (current.status === 200) {
    exists = true;
    if (sameAsLive(object, current.body as KubernetesObject))
      return { action: "unchanged", what, warnings: [] };
    if (!options.force) {
      throw new Hinted(
        `${what} exists in the cluster and differs from the backup`,
        "compare with `kubectl get -o yaml`, then pass --force to overwrite it with the backup's fields",
      );
    }
  } else if (current.status !== 404) {
    const status = current.body as { message?: string } | undefined;
    throw new ApiServerError(
      `GET ${path}: ${status?.message ?? `HTTP ${current.status}`}`,
      current.status,
      String(current.status),
    );
  }

  const warnings: string[] = [];
  const owners = (object.metadata?.ownerReferences as { kind?: string; name?: string }[] | undefined) ?? [];
  if (owners.length > 0) {
    warnings.push(
      `${what} names its owner${owners.length > 1 ? "s" : ""} ${owners.map((o) => `${o.kind}/${o.name}`).join(", ")}: if ${owners.length > 1 ? "they are" : "it is"} gone, the garbage collector deletes it again`,
    );
  }
  const query = new URLSearchParams({ fieldManager: FIELD_MANAGER });
  if (options.force) query.set("force", "true");
  if (options.dryRun) query.set("dryRun", "All");
  try {
    await api.json("PATCH", `${path}?${query}`, {
      body: toJson(object),
      contentType: "application/apply-patch+yaml",
      ...signalOpt,
    });
  } catch (err) {
    if (err instanceof ApiServerError && err.code === 404 && namespaced) {
      throw new Hinted(
        `cannot restore ${what}: ${err.message.replace(/^PATCH \S+: /, "")}`,
        `restore its namespace first (etcd-backup restore-object ... /registry/namespaces/${namespace})`,
      );
    }
    throw err;
  }
  const action: RestoreAction = options.dryRun
    ? exists
      ? "would update"
      : "would create"
    : exists
      ? "updated"
      : "created";
  return { action, what, warnings };
}
