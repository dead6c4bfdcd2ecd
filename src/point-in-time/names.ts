/**
 * Where the revision log lives in a store, beside the cluster's full backups:
 *
 *   <dir/><cluster>-log/<base>/chain.json                  the chain: its base backup and revision
 *   <dir/><cluster>-log/<base>/<first>-<last>.seg.zst[.age]   one segment (revisions first..last)
 *   <dir/><cluster>-log/<base>/<first>-<last>.seg.zst[.age].json   its manifest, written last
 *   <dir/><cluster>-log/<base>/head.json                   how far the log has confirmed, and when
 *   <dir/><cluster>-log/<base>/pruned.json                 segments up to a revision were removed by prune
 *   <dir/><cluster>-log/gaps/<from>-<to>.json              revisions the log could not record
 *
 * `<base>` is the revision of the chain's full backup; revisions are zero-padded to 16 digits so names sort
 * in revision order. None of these names parses as a backup name, so `list`, `prune` and `restore` of full
 * backups never mistake them for one.
 */

const PAD = 16;
export const LOG_SUFFIX = "-log";
export const SEGMENT_MANIFEST_SUFFIX = ".json";

export function padRevision(revision: number): string {
  return String(revision).padStart(PAD, "0");
}

export function logRoot(cluster: string, dir = ""): string {
  return `${dir ? `${dir.replace(/\/+$/, "")}/` : ""}${cluster}${LOG_SUFFIX}/`;
}

export function chainDir(cluster: string, base: number, dir = ""): string {
  return `${logRoot(cluster, dir)}${padRevision(base)}/`;
}

export function chainKey(cluster: string, base: number, dir = ""): string {
  return `${chainDir(cluster, base, dir)}chain.json`;
}

export function headKey(cluster: string, base: number, dir = ""): string {
  return `${chainDir(cluster, base, dir)}head.json`;
}

export function segmentKey(
  cluster: string,
  base: number,
  first: number,
  last: number,
  encrypted: boolean,
  dir = "",
): string {
  return `${chainDir(cluster, base, dir)}${padRevision(first)}-${padRevision(last)}.seg.zst${encrypted ? ".age" : ""}`;
}

export function prunedKey(cluster: string, base: number, dir = ""): string {
  return `${chainDir(cluster, base, dir)}pruned.json`;
}

export function gapKey(cluster: string, from: number, to: number, dir = ""): string {
  return `${logRoot(cluster, dir)}gaps/${padRevision(from)}-${padRevision(to)}.json`;
}

export type LogKey =
  | { kind: "chain"; dir: string; cluster: string; base: number }
  | { kind: "head"; dir: string; cluster: string; base: number }
  | { kind: "pruned"; dir: string; cluster: string; base: number }
  | {
      kind: "segment" | "segment-manifest";
      dir: string;
      cluster: string;
      base: number;
      first: number;
      last: number;
      encrypted: boolean;
      /** The segment object's key (for a manifest: the object it describes). */
      object: string;
    }
  | { kind: "gap"; dir: string; cluster: string; from: number; to: number };

const LOG_RE =
  /^(?:(?<dir>.*)\/)?(?<cluster>[A-Za-z0-9][A-Za-z0-9._-]*)-log\/(?:(?<base>\d{16})\/(?<file>chain\.json|head\.json|pruned\.json|(?<first>\d{16})-(?<last>\d{16})\.seg\.zst(?<age>\.age)?(?<json>\.json)?)|gaps\/(?<from>\d{16})-(?<to>\d{16})\.json)$/;

/** What a key of the log says about itself, or null for any other key. */
export function parseLogKey(key: string): LogKey | null {
  const m = LOG_RE.exec(key);
  if (!m?.groups) return null;
  const g = m.groups;
  const dir = g.dir ?? "";
  const cluster = g.cluster!;
  if (g.from) return { kind: "gap", dir, cluster, from: Number(g.from), to: Number(g.to) };
  const base = Number(g.base);
  if (g.file === "chain.json") return { kind: "chain", dir, cluster, base };
  if (g.file === "head.json") return { kind: "head", dir, cluster, base };
  if (g.file === "pruned.json") return { kind: "pruned", dir, cluster, base };
  return {
    kind: g.json ? "segment-manifest" : "segment",
    dir,
    cluster,
    base,
    first: Number(g.first),
    last: Number(g.last),
    encrypted: Boolean(g.age),
    object: g.json ? key.slice(0, -SEGMENT_MANIFEST_SUFFIX.length) : key,
  };
}
