import { posix } from "node:path";
import { Hinted } from "../../errors.ts";

/*
 * Reading etcd's static pod (kubeadm, OCNE, RKE2 and most kubeadm-style clusters run etcd as a static pod in
 * kube-system labelled component=etcd, with its certificates in a hostPath volume): where etcd listens for
 * clients and which certificates a client on that node can use.
 */

export const ETCD_NAMESPACE = "kube-system";
export const ETCD_SELECTOR = "component=etcd";

/** The parts of a Pod this module reads (and the helper pod is written from). */
export interface Pod {
  metadata: { name: string; namespace?: string; uid?: string; deletionTimestamp?: string };
  spec: {
    nodeName?: string;
    containers: {
      name: string;
      image?: string;
      command?: string[];
      args?: string[];
      volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
    }[];
    volumes?: { name: string; hostPath?: { path: string; type?: string } }[];
  };
  status?: {
    phase?: string;
    conditions?: { type: string; status: string }[];
    containerStatuses?: {
      name: string;
      ready?: boolean;
      state?: {
        waiting?: { reason?: string; message?: string };
        terminated?: { exitCode?: number; reason?: string };
      };
    }[];
  };
}

/** How to take a snapshot from the node of an etcd pod. */
export interface EtcdTarget {
  pod: string;
  node: string;
  /** A client URL reachable from the node's network (loopback preferred). */
  endpoint: string;
  cacert: string;
  cert: string;
  key: string;
  /** The hostPath volumes holding those files, mounted at the same paths (read-only) in the helper. */
  mounts: { name: string; hostPath: string; mountPath: string }[];
}

export function isReady(pod: Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
}

/** etcd's flags from a container's command and args: `--name=value` and `--name value`. */
export function etcdFlags(argv: string[]): Map<string, string> {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const m = /^--?([^=]+)(?:=(.*))?$/.exec(a);
    if (!m) continue;
    if (m[2] !== undefined) flags.set(m[1]!, m[2]);
    else if (i + 1 < argv.length && !argv[i + 1]!.startsWith("-")) flags.set(m[1]!, argv[++i]!);
    else flags.set(m[1]!, "true");
  }
  return flags;
}

/**
 * The target an etcd pod describes. The client certificate is etcd's own serving pair (`--cert-file`,
 * `--key-file`), as `etcdctl` on a kubeadm node is told to use: kubeadm issues it for server and client auth.
 * Throws `Hinted` naming what the spec lacks.
 */
export function etcdTargetFromPod(pod: Pod): EtcdTarget {
  const name = pod.metadata.name;
  const node = pod.spec.nodeName;
  if (!node)
    throw new Hinted(`etcd pod ${name} is on no node`, "it must be a static pod of a control-plane node");
  const container = pod.spec.containers.find((c) => c.name === "etcd") ?? pod.spec.containers[0];
  if (!container)
    throw new Hinted(`etcd pod ${name} has no container`, "check kubectl -n kube-system get pod -o yaml");
  const flags = etcdFlags([...(container.command ?? []), ...(container.args ?? [])]);
  const need = (flag: string): string => {
    const v = flags.get(flag);
    if (!v || v === "true")
      throw new Hinted(
        `etcd pod ${name} runs etcd without --${flag}`,
        "only etcd with client TLS (as kubeadm sets it up) can be backed up through a helper pod",
      );
    return v;
  };
  const urls = [
    ...(flags.get("listen-client-urls") ?? "").split(","),
    ...(flags.get("advertise-client-urls") ?? "").split(","),
  ]
    .map((u) => u.trim())
    .filter(Boolean);
  const loopback = urls.find((u) => /^https?:\/\/(127\.0\.0\.1|localhost|\[::1\])(:\d+)?\/?$/.test(u));
  const endpoint = loopback ?? urls.find((u) => !/\/\/0\.0\.0\.0|\/\/\[::\]/.test(u));
  if (!endpoint)
    throw new Hinted(
      `etcd pod ${name} names no client URL`,
      "its etcd needs --listen-client-urls or --advertise-client-urls",
    );
  const files = { cacert: need("trusted-ca-file"), cert: need("cert-file"), key: need("key-file") };

  const mounts: EtcdTarget["mounts"] = [];
  for (const file of Object.values(files)) {
    // The deepest mount holding the file (kubeadm: etcd-certs at /etc/kubernetes/pki/etcd).
    const holding = (container.volumeMounts ?? [])
      .filter((m) => isUnder(file, m.mountPath))
      .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
    const volume = holding && pod.spec.volumes?.find((v) => v.name === holding.name);
    if (!holding || !volume?.hostPath)
      throw new Hinted(
        `etcd pod ${name}: ${file} is not in a hostPath volume`,
        "the helper pod can only mount etcd's certificates from the node's filesystem",
      );
    if (!mounts.some((m) => m.mountPath === holding.mountPath))
      mounts.push({ name: holding.name, hostPath: volume.hostPath.path, mountPath: holding.mountPath });
  }
  return { pod: name, node, endpoint, ...files, mounts };
}

function isUnder(file: string, dir: string): boolean {
  const rel = posix.relative(dir, file);
  return rel !== "" && !rel.startsWith("..") && !posix.isAbsolute(rel);
}
