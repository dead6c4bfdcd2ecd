import type { BoltDb } from "./bbolt-db.ts";
import { renderBoxTable } from "./box-table.ts";
import { parseEncryptionPrefix } from "./encrypted-value.ts";
import { humanizeBytes } from "./humanize-bytes.ts";
import { parseKubernetesKey } from "./kubernetes-key.ts";
import { compactionRevisions, leases, mvccState } from "./mvcc.ts";

/** Count and value bytes of a group of keys. */
export interface Tally {
  count: number;
  bytes: number;
}

/** What inspect reports about the live keys of a snapshot. Sizes are value bytes as stored in etcd. */
export interface InspectResult {
  /** Current revision: the highest revision in bucket `key`. */
  revision: number;
  compactRevision: number;
  scheduledCompactRevision: number;
  /** Live keys (after the prefix filter). */
  keys: number;
  /** Value bytes of the live keys. */
  bytes: number;
  /** Stored revisions in bucket `key`, tombstones included (not filtered by prefix). */
  revisions: number;
  tombstones: number;
  leases: { count: number; attachedKeys: number };
  resources: ({ resource: string } & Tally)[];
  namespaces: ({ namespace: string } & Tally)[];
  biggest: { key: string; bytes: number; modRevision: number }[];
  outsideRegistry: Tally;
  encrypted: ({ provider: string; keyName: string } & Tally)[];
  /** Live keys stored as plain (unencrypted) values under /registry/secrets. */
  plainSecrets: number;
}

/** How many of the biggest objects inspect lists unless told otherwise. */
export const DEFAULT_TOP = 10;

/**
 * Reads the live state of an etcd snapshot at its revision and summarises it: counts and bytes per
 * Kubernetes resource and namespace (see kubernetes-key.ts for how keys are split), the biggest objects,
 * keys outside /registry, encrypted-at-rest values per provider and key name, leases, compaction.
 * `prefix` restricts the live keys considered. Throws when the database is not an etcd one.
 */
export function inspectSnapshot(db: BoltDb, options: { prefix?: string; top?: number } = {}): InspectResult {
  const state = mvccState(db, options.prefix === undefined ? {} : { prefix: options.prefix });
  const compaction = compactionRevisions(db);
  const resources = new Map<string, Tally>();
  const namespaces = new Map<string, Tally>();
  const encrypted = new Map<string, { provider: string; keyName: string } & Tally>();
  const outsideRegistry: Tally = { count: 0, bytes: 0 };
  const top = options.top ?? DEFAULT_TOP;
  const biggest: { key: string; bytes: number; modRevision: number }[] = [];
  let minBiggest = -1;
  let bytes = 0;
  let attachedKeys = 0;
  let plainSecrets = 0;
  const add = (map: Map<string, Tally>, name: string, size: number) => {
    const t = map.get(name);
    if (t) {
      t.count++;
      t.bytes += size;
    } else map.set(name, { count: 1, bytes: size });
  };
  for (const [latin1Key, kv] of state.keys) {
    const size = kv.value.length;
    bytes += size;
    if (kv.lease !== 0n) attachedKeys++;
    const key = Buffer.from(latin1Key, "latin1").toString("utf8");
    const k8s = parseKubernetesKey(key);
    if (k8s) {
      add(resources, k8s.resource, size);
      add(namespaces, k8s.namespace, size);
    } else {
      outsideRegistry.count++;
      outsideRegistry.bytes += size;
    }
    const enc = parseEncryptionPrefix(kv.value);
    if (enc) {
      const id = `${enc.provider}\u0000${enc.keyName}`;
      const t = encrypted.get(id);
      if (t) {
        t.count++;
        t.bytes += size;
      } else encrypted.set(id, { provider: enc.provider, keyName: enc.keyName, count: 1, bytes: size });
    } else if (k8s?.resource === "secrets") plainSecrets++;
    if (top > 0 && (biggest.length < top || size > minBiggest)) {
      biggest.push({ key, bytes: size, modRevision: kv.modRevision });
      if (biggest.length > top) {
        biggest.sort((a, b) => b.bytes - a.bytes || (a.key < b.key ? -1 : 1));
        biggest.length = top;
      }
      minBiggest = biggest.length === top ? Math.min(...biggest.map((b) => b.bytes)) : -1;
    }
  }
  biggest.sort((a, b) => b.bytes - a.bytes || (a.key < b.key ? -1 : 1));
  const byBytes = <T extends Tally>(a: [string, T], b: [string, T]) =>
    b[1].bytes - a[1].bytes || (a[0] < b[0] ? -1 : 1);
  return {
    revision: state.revision,
    compactRevision: compaction.finished,
    scheduledCompactRevision: compaction.scheduled,
    keys: state.keys.size,
    bytes,
    revisions: state.revisions,
    tombstones: state.tombstones,
    leases: { count: leases(db).length, attachedKeys },
    resources: [...resources.entries()].sort(byBytes).map(([resource, t]) => ({ resource, ...t })),
    namespaces: [...namespaces.entries()].sort(byBytes).map(([namespace, t]) => ({ namespace, ...t })),
    biggest,
    outsideRegistry,
    encrypted: [...encrypted.values()].sort(
      (a, b) => b.count - a.count || (a.provider + a.keyName < b.provider + b.keyName ? -1 : 1),
    ),
    plainSecrets,
  };
}

/**
 * Renders an inspect result: `json` is the result as one JSON document; `table` is a summary followed by
 * tables of resources, namespaces ("(cluster)" for cluster-scoped objects), encryption and the biggest objects.
 */
export function renderInspect(result: InspectResult, format: "table" | "json"): string {
  if (format === "json") return `${JSON.stringify(result, null, 2)}\n`;
  const lines = [
    `revision: ${result.revision}`,
    `compacted at revision: ${result.compactRevision}${result.scheduledCompactRevision !== result.compactRevision ? ` (scheduled: ${result.scheduledCompactRevision})` : ""}`,
    `live keys: ${result.keys} (${humanizeBytes(result.bytes)} of values)`,
    `stored revisions: ${result.revisions} (${result.tombstones} deletions)`,
    `leases: ${result.leases.count} (${result.leases.attachedKeys} keys attached)`,
    `keys outside /registry: ${result.outsideRegistry.count} (${humanizeBytes(result.outsideRegistry.bytes)})`,
  ];
  if (result.plainSecrets > 0 && result.encrypted.length > 0)
    lines.push(`secrets not encrypted at rest: ${result.plainSecrets}`);
  let out = `${lines.join("\n")}\n`;
  const tally = (t: Tally) => [String(t.count), humanizeBytes(t.bytes)];
  if (result.resources.length > 0) {
    out += `\n${renderBoxTable(
      ["resource", "objects", "size"],
      result.resources.map((r) => [r.resource, ...tally(r)]),
      ["left", "right", "right"],
    )}`;
    out += `\n${renderBoxTable(
      ["namespace", "objects", "size"],
      result.namespaces.map((n) => [n.namespace || "(cluster)", ...tally(n)]),
      ["left", "right", "right"],
    )}`;
  }
  if (result.encrypted.length > 0) {
    out += `\n${renderBoxTable(
      ["provider", "key name", "values", "size"],
      result.encrypted.map((e) => [e.provider, e.keyName, ...tally(e)]),
      ["left", "left", "right", "right"],
    )}`;
  }
  if (result.biggest.length > 0) {
    out += `\n${renderBoxTable(
      ["biggest keys", "size", "mod revision"],
      result.biggest.map((b) => [b.key, humanizeBytes(b.bytes), String(b.modRevision)]),
      ["left", "right", "right"],
    )}`;
  }
  return out;
}
