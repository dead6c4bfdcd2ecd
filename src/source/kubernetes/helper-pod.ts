import { randomBytes } from "node:crypto";
import { VERSION } from "../../version.ts";
import type { EtcdTarget, Pod } from "./etcd-pod.ts";

/**
 * The image the helper pod runs when `--image` is not given: this release of etcd-backup's image, under the name
 * deploy/image/kustomization.yaml gives it (replace it there and here, or pass --image, with where you pushed it).
 */
export const DEFAULT_HELPER_IMAGE = `ghcr.io/example/etcd-backup:${VERSION}`;

export const HELPER_LABELS = {
  "app.kubernetes.io/name": "etcd-backup",
  "app.kubernetes.io/component": "snapshot-helper",
};

/** The helper's container name. */
export const HELPER_CONTAINER = "snapshot";

/**
 * How long the helper pod stays up on its own: its main process holds this long, and the kubelet ends the pod at
 * activeDeadlineSeconds, so a helper whose CLI was killed (SIGKILL, a lost laptop) does not run for ever.
 */
export const HELPER_LIFETIME_SECONDS = 3600;

export function helperPodName(): string {
  return `etcd-backup-helper-${randomBytes(4).toString("hex")}`;
}

/**
 * The helper pod for a target: on the etcd pod's node (`nodeName`: no scheduler decision, no wait for one),
 * tolerating the control-plane taints, on the host network (etcd's loopback client URL), with the hostPath
 * volumes holding etcd's certificates mounted read-only at the paths etcd's flags name. It runs as root with
 * every capability dropped but DAC_READ_SEARCH (etcd's private key is readable by root only on kubeadm nodes),
 * a read-only root filesystem, no ServiceAccount token. Its main process only holds the pod open; the snapshot
 * is taken by the `save` that is exec'd in it (`helperCommand`).
 */
export function helperPodManifest(
  target: EtcdTarget,
  image: string,
  name: string,
  namespace: string,
): Pod & Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace, labels: { ...HELPER_LABELS } } as Pod["metadata"],
    spec: {
      nodeName: target.node,
      hostNetwork: true,
      dnsPolicy: "ClusterFirstWithHostNet",
      restartPolicy: "Never",
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      activeDeadlineSeconds: HELPER_LIFETIME_SECONDS,
      terminationGracePeriodSeconds: 5,
      tolerations: [
        { key: "node-role.kubernetes.io/control-plane", operator: "Exists", effect: "NoSchedule" },
        { key: "node-role.kubernetes.io/master", operator: "Exists", effect: "NoSchedule" },
      ],
      containers: [
        {
          name: HELPER_CONTAINER,
          image,
          command: ["etcd-backup", "hold", "--for", `${HELPER_LIFETIME_SECONDS}s`],
          volumeMounts: target.mounts.map((m) => ({ name: m.name, mountPath: m.mountPath, readOnly: true })),
          resources: { requests: { cpu: "50m", memory: "64Mi" } },
          securityContext: {
            runAsUser: 0,
            runAsGroup: 0,
            runAsNonRoot: false,
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            capabilities: { drop: ["ALL"], add: ["DAC_READ_SEARCH"] },
          },
        } as Pod["spec"]["containers"][number],
      ],
      volumes: target.mounts.map((m) => ({
        name: m.name,
        hostPath: { path: m.hostPath, type: "Directory" },
      })),
    } as Pod["spec"],
  };
}

/** What the helper runs to stream the snapshot to its stdout: our own `save`, as a plain snapshot (`--out -`). */
export function helperCommand(target: EtcdTarget): string[] {
  return [
    "etcd-backup",
    "save",
    "--source",
    "etcd",
    "--endpoints",
    target.endpoint,
    "--cacert",
    target.cacert,
    "--cert",
    target.cert,
    "--key",
    target.key,
    "--out",
    "-",
  ];
}

/** Why a helper pod will not start (its image cannot be pulled, its container cannot be created), or null. */
export function helperStartProblem(pod: Pod): string | null {
  if (pod.status?.phase === "Failed" || pod.status?.phase === "Succeeded")
    return `it ended (${pod.status.phase}) before the backup ran`;
  for (const c of pod.status?.containerStatuses ?? []) {
    const waiting = c.state?.waiting;
    if (
      waiting?.reason &&
      /ErrImagePull|ImagePullBackOff|InvalidImageName|ErrImageNeverPull|CreateContainerConfigError|CreateContainerError|RunContainerError/.test(
        waiting.reason,
      )
    )
      return `${waiting.reason}${waiting.message ? `: ${waiting.message}` : ""}`;
    if (c.state?.terminated)
      return `its container exited (${c.state.terminated.reason ?? c.state.terminated.exitCode})`;
  }
  return null;
}
