import { createHash } from "node:crypto";
import type { BoltDb } from "../bbolt/db.ts";
import { parseKubernetesKey } from "../kubernetes/key.ts";
import { type LiveKey, replayLiveKeys } from "../mvcc/key-values.ts";
import { renderBoxTable } from "../render/box-table.ts";

/** One changed key. Revisions and sizes are absent on the side where the key does not exist. */
export interface KeyChange {
  key: string;
  change: "added" | "removed" | "modified";
  /** Kubernetes resource (as inspect names it), or "(outside /registry)". */
  resource: string;
  fromModRevision?: number;
  toModRevision?: number;
  fromBytes?: number;
  toBytes?: number;
}

/** Changes between two snapshots, key by key and per resource. */
export interface SnapshotDiff {
  fromRevision: number;
  toRevision: number;
  changes: KeyChange[];
  resources: { resource: string; added: number; removed: number; modified: number }[];
}

const OUTSIDE = "(outside /registry)";

/**
 * Compares the live keys of two snapshots: a key only in `to` is added, only in `from` removed, in both
 * with a different mod revision, create revision or value, modified. Changes come in key order.
 * `prefix` restricts the keys compared.
 */
export function diffSnapshots(from: BoltDb, to: BoltDb, options: { prefix?: string } = {}): SnapshotDiff {
  const opts = options.prefix === undefined ? {} : { prefix: options.prefix };
  const a = replayLiveKeys(from, opts, fingerprint);
  const b = replayLiveKeys(to, opts, fingerprint);
  const names = new Set<string>([...a.keys.keys(), ...b.keys.keys()]);
  const changes: KeyChange[] = [];
  for (const name of [...names].sort()) {
    const x = a.keys.get(name);
    const y = b.keys.get(name);
    if (x && y && !differs(x, y)) continue;
    const key = Buffer.from(name, "latin1").toString("utf8");
    const change: KeyChange = {
      key,
      change: !x ? "added" : !y ? "removed" : "modified",
      resource: parseKubernetesKey(key)?.resource ?? OUTSIDE,
    };
    if (x) {
      change.fromModRevision = x.modRevision;
      change.fromBytes = x.bytes;
    }
    if (y) {
      change.toModRevision = y.modRevision;
      change.toBytes = y.bytes;
    }
    changes.push(change);
  }
  const perResource = new Map<
    string,
    { resource: string; added: number; removed: number; modified: number }
  >();
  for (const c of changes) {
    let r = perResource.get(c.resource);
    if (!r) {
      r = { resource: c.resource, added: 0, removed: 0, modified: 0 };
      perResource.set(c.resource, r);
    }
    r[c.change]++;
  }
  const resources = [...perResource.values()].sort((p, q) => (p.resource < q.resource ? -1 : 1));
  return { fromRevision: a.revision, toRevision: b.revision, changes, resources };
}

/** What diff keeps of a live key: revisions, size and a digest of the value, no view into a page. */
interface Fingerprint {
  createRevision: number;
  modRevision: number;
  bytes: number;
  sha256: Buffer;
}

function fingerprint(kv: LiveKey): Fingerprint {
  return {
    createRevision: kv.createRevision,
    modRevision: kv.modRevision,
    bytes: kv.value.length,
    sha256: createHash("sha256").update(kv.value).digest(),
  };
}

function differs(x: Fingerprint, y: Fingerprint): boolean {
  return (
    x.modRevision !== y.modRevision ||
    x.createRevision !== y.createRevision ||
    x.bytes !== y.bytes ||
    !x.sha256.equals(y.sha256)
  );
}

/**
 * Renders a diff: `json` as one document; `table` as a per-resource summary followed by one line per key
 * (`+` added, `-` removed, `~` modified with its mod revisions), or "no changes".
 */
export function renderDiff(diff: SnapshotDiff, format: "table" | "json"): string {
  if (format === "json") return `${JSON.stringify(diff, null, 2)}\n`;
  const head = `revision ${diff.fromRevision} -> ${diff.toRevision}\n`;
  if (diff.changes.length === 0) return `${head}no changes\n`;
  const summary = renderBoxTable(
    ["resource", "added", "removed", "modified"],
    diff.resources.map((r) => [r.resource, String(r.added), String(r.removed), String(r.modified)]),
    ["left", "right", "right", "right"],
  );
  const lines = diff.changes.map((c) =>
    c.change === "added"
      ? `+ ${c.key}`
      : c.change === "removed"
        ? `- ${c.key}`
        : `~ ${c.key} (mod revision ${c.fromModRevision} -> ${c.toModRevision})`,
  );
  return `${head}${summary}\n${lines.join("\n")}\n`;
}
