import { pipeline, Transform, type TransformCallback } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { Hinted } from "../../errors.ts";
import { formatBytes } from "../../render/units.ts";
import type { SnapshotSource, SnapshotStream } from "../source.ts";
import {
  ETCD_NAMESPACE,
  ETCD_SELECTOR,
  type EtcdTarget,
  etcdTargetFromPod,
  isReady,
  type Pod,
} from "./etcd-pod.ts";
import { execStdout } from "./exec.ts";
import {
  HELPER_CONTAINER,
  HELPER_LABELS,
  helperCommand,
  helperPodManifest,
  helperPodName,
  helperStartProblem,
} from "./helper-pod.ts";
import { type KubeApi, KubeApiError } from "./kube-api.ts";

/** The ClusterRole that grants what this source needs (deploy/kubeconfig-save/clusterrole.yaml). */
export const CLUSTER_ROLE_FILE = "deploy/kubeconfig-save/clusterrole.yaml";

/**
 * Every permission the source uses, in the order it uses them. pods/exec needs `create` and, for a WebSocket
 * (a GET), `get`: kube-apiserver 1.35 checks both (AuthorizePodWebsocketUpgradeCreatePermission).
 */
export const REQUIRED_ACCESS: { verb: string; resource: string; subresource?: string }[] = [
  { verb: "list", resource: "pods" },
  { verb: "get", resource: "pods" },
  { verb: "create", resource: "pods" },
  { verb: "delete", resource: "pods" },
  { verb: "create", resource: "pods", subresource: "exec" },
  { verb: "get", resource: "pods", subresource: "exec" },
];

export interface KubernetesSourceOptions {
  api: KubeApi;
  /** The helper pod's image. */
  image: string;
  /** Progress lines (waiting for pod X to be ready, running the backup on node Y, copied N MiB). */
  progress?: (line: string) => void;
  /** How long to wait for an etcd pod to be Ready; default 5 minutes. */
  readyTimeoutMs?: number;
  /** How long to wait for the helper pod to run (image pull included); default 3 minutes. */
  startTimeoutMs?: number;
  /** How long to wait for the helper pod to be gone after deleting it; default 60 s. */
  deleteTimeoutMs?: number;
  pollMs?: number;
}

/**
 * Snapshots of a kubeadm-style cluster's etcd with nothing but Kubernetes credentials: finds etcd's static pod,
 * starts a short-lived helper pod of etcd-backup's own image on that node (etcd images have no shell, cat or
 * tar to copy a file out of), runs `etcd-backup save --out -` in it against etcd's loopback client URL with
 * etcd's certificates, and reads that stdout through the API server (pods/exec over WebSocket). The caller
 * checks etcd's sha256 trailer on its side as for any source. The helper pod is deleted when the stream ends,
 * fails or is destroyed (Ctrl-C), and `close()` waits for that.
 */
export class KubernetesSource implements SnapshotSource {
  readonly description: string;
  private readonly options: KubernetesSourceOptions;
  private readonly api: KubeApi;
  private readonly report: (line: string) => void;
  private helper: string | undefined;
  private deleting: Promise<void> | undefined;

  constructor(options: KubernetesSourceOptions) {
    this.options = options;
    this.api = options.api;
    this.report = options.progress ?? (() => {});
    this.description = `etcd's static pod through the Kubernetes API at ${this.api.server}`;
  }

  async open(signal?: AbortSignal): Promise<SnapshotStream> {
    await this.checkAccess(signal);
    await this.removeEndedHelpers(signal);
    const target = await this.findEtcd(signal);
    try {
      await this.startHelper(target, signal);
      const exec = await execStdout(
        this.api,
        {
          namespace: ETCD_NAMESPACE,
          pod: this.helper!,
          container: HELPER_CONTAINER,
          command: helperCommand(target),
        },
        signal,
      );
      let copied = 0;
      let lastReport = Date.now();
      const counter = new Transform({
        highWaterMark: 1 << 20,
        transform: (chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback) => {
          copied += chunk.length;
          if (Date.now() - lastReport >= 5000) {
            lastReport = Date.now();
            this.report(`copying: ${formatBytes(copied)} so far`);
          }
          callback(null, chunk);
        },
      });
      pipeline(exec, counter, (err) => {
        if (!err) this.report(`copied ${formatBytes(copied)} from node ${target.node}`);
        void this.deleteHelper();
      });
      return {
        stream: counter,
        origin: {
          kind: "kubernetes",
          endpoint: `${target.endpoint} on node ${target.node} via ${this.api.server}`,
          node: target.node,
        },
      };
    } catch (err) {
      await this.deleteHelper();
      throw err;
    }
  }

  /** Waits until the helper pod (if one was made) is deleted. */
  async close(): Promise<void> {
    await this.deleteHelper();
  }

  /** One SelfSubjectAccessReview per permission, before anything is done: a missing one is named in one line. */
  private async checkAccess(signal?: AbortSignal): Promise<void> {
    const answers = await Promise.all(
      REQUIRED_ACCESS.map((a) =>
        this.api.json<{ status?: { allowed?: boolean } }>(
          "POST",
          "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
          {
            apiVersion: "authorization.k8s.io/v1",
            kind: "SelfSubjectAccessReview",
            spec: { resourceAttributes: { namespace: ETCD_NAMESPACE, ...a } },
          },
          signal,
        ),
      ),
    );
    const missing = REQUIRED_ACCESS.filter((_, i) => answers[i]?.status?.allowed !== true);
    if (missing.length === 0) return;
    const user = await this.whoAmI(signal);
    const named = missing.map((m) => `${m.verb} ${m.resource}${m.subresource ? `/${m.subresource}` : ""}`);
    throw new Hinted(
      `${user ?? "this user"} may not ${named.join(", ")} in namespace ${ETCD_NAMESPACE} (${this.api.description})`,
      `grant the ClusterRole in ${CLUSTER_ROLE_FILE} in ${ETCD_NAMESPACE}: kubectl apply -f it, then kubectl -n ${ETCD_NAMESPACE} create rolebinding etcd-backup-kubeconfig-save --clusterrole=etcd-backup-kubeconfig-save --user=${user ?? "NAME"}`,
    );
  }

  private async whoAmI(signal?: AbortSignal): Promise<string | undefined> {
    try {
      const review = await this.api.json<{ status?: { userInfo?: { username?: string } } }>(
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        { apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" },
        signal,
      );
      return review.status?.userInfo?.username;
    } catch {
      return undefined;
    }
  }

  /**
   * Deletes helper pods of earlier runs that ended on their own (their CLI was killed before it could delete them,
   * and the pod's deadline ended it). Running ones may belong to a save running now and are left alone.
   */
  private async removeEndedHelpers(signal?: AbortSignal): Promise<void> {
    const selector = Object.entries(HELPER_LABELS)
      .map(([k, v]) => `${k}=${v}`)
      .join(",");
    const list = await this.api.json<{ items: Pod[] }>(
      "GET",
      `/api/v1/namespaces/${ETCD_NAMESPACE}/pods?labelSelector=${encodeURIComponent(selector)}`,
      undefined,
      signal,
    );
    for (const pod of list.items) {
      const phase = pod.status?.phase;
      if ((phase !== "Failed" && phase !== "Succeeded") || pod.metadata.deletionTimestamp) continue;
      this.report(`deleting leftover helper pod ${ETCD_NAMESPACE}/${pod.metadata.name} (${phase})`);
      await this.api
        .json("DELETE", `/api/v1/namespaces/${ETCD_NAMESPACE}/pods/${pod.metadata.name}`, undefined, signal)
        .catch((err) => {
          if (!(err instanceof KubeApiError && err.code === 404)) throw err;
        });
    }
  }

  /** Lists etcd's pods; waits (reporting it) until one is Ready; reads the target from its spec. */
  private async findEtcd(signal?: AbortSignal): Promise<EtcdTarget> {
    const deadline = Date.now() + (this.options.readyTimeoutMs ?? 300_000);
    let waitingFor: string | undefined;
    for (;;) {
      const list = await this.api.json<{ items: Pod[] }>(
        "GET",
        `/api/v1/namespaces/${ETCD_NAMESPACE}/pods?labelSelector=${encodeURIComponent(ETCD_SELECTOR)}`,
        undefined,
        signal,
      );
      const pods = list.items.filter((p) => !p.metadata.deletionTimestamp);
      if (pods.length === 0)
        throw new Hinted(
          `no etcd pod in namespace ${ETCD_NAMESPACE} (label ${ETCD_SELECTOR}) at ${this.api.server}`,
          "the kubeconfig backup needs etcd as a static pod (kubeadm); for an external etcd pass --endpoints and its certificates, on Talos --talosconfig",
        );
      const ready = pods.find(isReady);
      if (ready) {
        const target = etcdTargetFromPod(ready);
        this.report(`pod ${ETCD_NAMESPACE}/${ready.metadata.name} is ready on node ${target.node}`);
        return target;
      }
      const first = pods[0]!.metadata.name;
      if (waitingFor !== first) {
        waitingFor = first;
        this.report(`waiting for pod ${ETCD_NAMESPACE}/${first} to be ready`);
      }
      if (Date.now() > deadline)
        throw new Hinted(
          `no etcd pod became ready in ${Math.round((this.options.readyTimeoutMs ?? 300_000) / 1000)} s (${pods.map((p) => p.metadata.name).join(", ")})`,
          `check kubectl -n ${ETCD_NAMESPACE} describe pod ${first}`,
        );
      await sleep(this.options.pollMs ?? 1000, undefined, { signal });
    }
  }

  /** Creates the helper pod on the target's node and waits until its container runs. */
  private async startHelper(target: EtcdTarget, signal?: AbortSignal): Promise<void> {
    const name = helperPodName();
    // Recorded before the create: a create interrupted after the API server stored the pod must still delete it.
    this.helper = name;
    this.report(
      `running the backup on node ${target.node} (helper pod ${ETCD_NAMESPACE}/${name}, image ${this.options.image})`,
    );
    await this.api.json(
      "POST",
      `/api/v1/namespaces/${ETCD_NAMESPACE}/pods`,
      helperPodManifest(target, this.options.image, name, ETCD_NAMESPACE),
      signal,
    );
    const timeoutMs = this.options.startTimeoutMs ?? 180_000;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const pod = await this.api.json<Pod>(
        "GET",
        `/api/v1/namespaces/${ETCD_NAMESPACE}/pods/${name}`,
        undefined,
        signal,
      );
      const problem = helperStartProblem(pod);
      if (problem)
        throw new Hinted(
          `helper pod ${ETCD_NAMESPACE}/${name} on node ${target.node} did not start: ${problem}`,
          "pass --image with an etcd-backup image the node can pull",
        );
      const running =
        pod.status?.phase === "Running" &&
        pod.status.containerStatuses?.some(
          (c) => c.name === HELPER_CONTAINER && c.state && "running" in c.state,
        );
      if (running) return;
      if (Date.now() > deadline)
        throw new Hinted(
          `helper pod ${ETCD_NAMESPACE}/${name} on node ${target.node} is not running after ${Math.round(timeoutMs / 1000)} s`,
          `check kubectl -n ${ETCD_NAMESPACE} describe pod ${name}`,
        );
      await sleep(this.options.pollMs ?? 1000, undefined, { signal });
    }
  }

  /** Deletes the helper pod once and waits until it is gone (not signal-bound: it must run after Ctrl-C). */
  private deleteHelper(): Promise<void> {
    const name = this.helper;
    if (!name) return Promise.resolve();
    this.deleting ??= (async () => {
      const path = `/api/v1/namespaces/${ETCD_NAMESPACE}/pods/${name}`;
      try {
        await this.api.json("DELETE", path);
      } catch (err) {
        if (err instanceof KubeApiError && err.code === 404) return;
        this.report(
          `could not delete helper pod ${ETCD_NAMESPACE}/${name}: ${(err as Error).message} (delete it with kubectl -n ${ETCD_NAMESPACE} delete pod ${name})`,
        );
        return;
      }
      const deadline = Date.now() + (this.options.deleteTimeoutMs ?? 60_000);
      for (;;) {
        try {
          await this.api.json("GET", path);
        } catch (err) {
          if (err instanceof KubeApiError && err.code === 404) {
            this.report(`deleted helper pod ${ETCD_NAMESPACE}/${name}`);
            return;
          }
        }
        if (Date.now() > deadline) {
          this.report(`helper pod ${ETCD_NAMESPACE}/${name} is still terminating (its kubelet removes it)`);
          return;
        }
        await sleep(Math.min(this.options.pollMs ?? 1000, 500));
      }
    })();
    return this.deleting;
  }
}
