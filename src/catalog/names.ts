import { UsageError } from "../errors.ts";
import type { Compression } from "../stages/compress.ts";

/** What a backup's object name says about it. */
export interface BackupName {
  /** The object key relative to the store root, e.g. `prod-2026-11-23T20:12:59Z.snap.zst.age`. */
  key: string;
  /** Folder part of the key (talos-backup puts backups under `<prefix>/`), "" when none. */
  dir: string;
  cluster: string;
  /** The time written in the name. */
  time: Date;
  kind: "snapshot" | "config";
  compression: Compression;
  encrypted: boolean;
  /**
   * `talos-operator`: the Talos operator's (alperencelik/talos-operator) layout,
   * `<dir>/etcd-snapshot-<2006-01-02T15-04-05Z>.db`, where the folder's last segment is the cluster (its
   * TalosControlPlane); absent: ours, talos-backup's.
   */
  layout?: "talos-operator";
}

const SNAPSHOT_EXT = ".snap";
const CONFIG_EXT = ".config.tar";

/**
 * The name talos-backup gives a snapshot: `<cluster>-<RFC 3339 time>.snap`, with `.zst` when compressed and
 * `.age` when encrypted. We always write UTC with whole seconds (`2026-11-23T20:12:59Z`).
 */
export function backupKey(opts: {
  cluster: string;
  time: Date;
  compression: Compression;
  encrypted: boolean;
  kind?: "snapshot" | "config";
  dir?: string;
  layout?: "talos-operator";
}): string {
  if (opts.layout === "talos-operator") return talosOperatorKey(opts);
  const stamp = formatStamp(opts.time);
  const ext =
    (opts.kind === "config" ? CONFIG_EXT : SNAPSHOT_EXT) + (opts.compression === "zstd" ? ".zst" : "");
  const name = `${opts.cluster}-${stamp}${ext}${opts.encrypted ? ".age" : ""}`;
  return opts.dir ? `${opts.dir.replace(/\/+$/, "")}/${name}` : name;
}

/**
 * The Talos operator's name for a snapshot: `<dir>/etcd-snapshot-<UTC time with dashes>.db` (its key pattern is
 * `talos-operator-etcd-backups/<control plane>/...`; `dir` holds all of it), plain; we add `.zst` and `.age` only
 * when a resource opts in to compression or encryption.
 */
function talosOperatorKey(opts: { time: Date; compression: Compression; encrypted: boolean; dir?: string }) {
  const stamp = formatStamp(opts.time).replace(/:/g, "-");
  const dir = (opts.dir ?? "").replace(/\/+$/, "");
  return `${dir}/etcd-snapshot-${stamp}.db${opts.compression === "zstd" ? ".zst" : ""}${opts.encrypted ? ".age" : ""}`;
}

// etcd-snapshot-<2006-01-02T15-04-05Z>.db [.zst] [.age], in a folder named after the cluster.
const TALOS_OPERATOR_RE =
  /^etcd-snapshot-(?<d>\d{4}-\d{2}-\d{2})T(?<h>\d{2})-(?<m>\d{2})-(?<s>\d{2})Z\.db(?<zst>\.zst)?(?<age>\.age)?$/;

/** `2026-11-23T20:12:59Z`: RFC 3339 in UTC, whole seconds, as Go's time.RFC3339 prints a UTC time. */
export function formatStamp(time: Date): string {
  return time.toISOString().replace(/\.\d{3}Z$/, "Z");
}

// <cluster>-<RFC 3339 time, Z or ±hh:mm>.snap|.config.tar [.zst] [.age]
const NAME_RE =
  /^(?<cluster>.+)-(?<stamp>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2}))(?<ext>\.snap|\.config\.tar)(?<zst>\.zst)?(?<age>\.age)?$/;

/**
 * Parses an object key into what its name says, or returns null when the key is not a backup's name
 * (manifests, temporary files, anything else in the bucket).
 */
export function parseBackupKey(key: string): BackupName | null {
  const slash = key.lastIndexOf("/");
  const dir = slash >= 0 ? key.slice(0, slash) : "";
  const base = slash >= 0 ? key.slice(slash + 1) : key;
  const t = TALOS_OPERATOR_RE.exec(base);
  const cluster = dir.slice(dir.lastIndexOf("/") + 1);
  if (t?.groups && cluster) {
    const time = parseRfc3339(`${t.groups.d}T${t.groups.h}:${t.groups.m}:${t.groups.s}Z`);
    if (!time) return null;
    return {
      key,
      dir,
      cluster,
      time,
      kind: "snapshot",
      compression: t.groups.zst ? "zstd" : "none",
      encrypted: Boolean(t.groups.age),
      layout: "talos-operator",
    };
  }
  const m = NAME_RE.exec(base);
  if (!m?.groups) return null;
  const time = parseRfc3339(m.groups.stamp!);
  if (!time) return null;
  return {
    key,
    dir,
    cluster: m.groups.cluster!,
    time,
    kind: m.groups.ext === CONFIG_EXT ? "config" : "snapshot",
    compression: m.groups.zst ? "zstd" : "none",
    encrypted: Boolean(m.groups.age),
  };
}

/** The manifest of a backup sits beside it: `<key>.json`. */
export function manifestKey(backupKey: string): string {
  return `${backupKey}.json`;
}

/** What a cluster name may hold, for error hints. */
export const CLUSTER_NAME_RULE =
  "use letters, digits, '.', '_' and '-', starting with a letter or digit, at most 100";

/**
 * Why `name` cannot be a cluster name, or null when it can. A cluster name stands in object names and keys
 * (`<cluster>-<time>.snap...`): it must not reach outside its folder (`/`, `..`), must hold no control character
 * and must be read back as itself from the name it gives (`parseBackupKey`).
 */
export function clusterNameProblem(name: string): string | null {
  if (name === "") return "is empty";
  if (/[\u0000-\u001f\u007f-\u009f]/.test(name)) return "contains a control character";
  if (name.includes("/") || name.includes("\\")) return "contains a path separator";
  if (name.includes("..")) return "contains '..'";
  if (name.length > 100) return "is longer than 100 characters";
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) {
    return "holds characters other than letters, digits, '.', '_' and '-', or does not start with a letter or digit";
  }
  const key = backupKey({ cluster: name, time: new Date(0), compression: "zstd", encrypted: true });
  if (parseBackupKey(key)?.cluster !== name) return "cannot be read back from a backup's name";
  return null;
}

/** A valid cluster name: what can stand in an object name and be parsed back unambiguously. */
export function isValidClusterName(name: string): boolean {
  return clusterNameProblem(name) === null;
}

/**
 * Checks a cluster name where it enters (`--cluster`, a config file, a spec); returns it, or throws a one-line
 * `UsageError`: `--cluster "../x": contains a path separator (use letters, digits, ...)`.
 */
export function checkClusterName(name: string, where = "--cluster"): string {
  const problem = clusterNameProblem(name);
  if (problem !== null)
    throw new UsageError(`${where} ${JSON.stringify(name)}: ${problem}`, CLUSTER_NAME_RULE);
  return name;
}

const RFC3339_RE =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/**
 * Parses an RFC 3339 date-time (`2026-11-23T20:12:59Z`, `2026-11-23T22:12:59+02:00`, fractions allowed) into the
 * instant it names. Returns null for anything else, including out-of-range fields that `Date` would silently
 * roll over (`2026-02-30`, `24:00:00`, a leap second).
 */
export function parseRfc3339(text: string): Date | null {
  const m = RFC3339_RE.exec(text);
  if (!m) return null;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth) return null;
  if (hour > 23 || minute > 59 || second > 59) return null;
  let offsetMinutes = 0;
  if (!m[8]) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) return null;
    offsetMinutes = (m[9] === "-" ? -1 : 1) * (oh * 60 + om);
  }
  const millis = m[7] ? Math.floor(Number(`0${m[7]}`) * 1000) : 0;
  const utc = new Date(0);
  utc.setUTCFullYear(year, month - 1, day);
  utc.setUTCHours(hour, minute, second, millis);
  return new Date(utc.getTime() - offsetMinutes * 60_000);
}
