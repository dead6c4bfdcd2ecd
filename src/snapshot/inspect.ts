import { BoltDb } from "../bbolt/db.ts";
import { parseEncryptionPrefix } from "../kubernetes/at-rest/encrypted-value.ts";
import { parseKubernetesKey } from "../kubernetes/key.ts";
import {
  compactionRevisions,
  emptyKeyValueRanges,
  leases,
  readKeyValueRanges,
  revisionMain,
} from "../mvcc/key-values.ts";
import { renderBoxTable } from "../render/box-table.ts";
import { humanizeBytes } from "../render/humanize-bytes.ts";

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
  const state = liveSummaries(db, options.prefix);
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
    const size = kv.bytes;
    bytes += size;
    if (kv.leased) attachedKeys++;
    const key = Buffer.from(latin1Key, "latin1").toString("utf8");
    const k8s = parseKubernetesKey(key);
    if (k8s) {
      add(resources, k8s.resource, size);
      add(namespaces, k8s.namespace, size);
    } else {
      outsideRegistry.count++;
      outsideRegistry.bytes += size;
    }
    const enc = kv.encryption;
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

/** Inspects a snapshot file read page by page: memory grows with the number of keys, not the file size. */
export function inspectSnapshotFile(
  path: string,
  options: { prefix?: string; top?: number } = {},
): InspectResult {
  const db = BoltDb.openFile(path);
  try {
    return inspectSnapshot(db, options);
  } finally {
    db.close();
  }
}

/** What inspect keeps of a live key: no views, so the database may be read page by page. */
interface LiveSummary {
  bytes: number;
  modRevision: number;
  leased: boolean;
  encryption: { provider: string; keyName: string } | null;
}

/** Replays bucket `key` (latest revision wins, a tombstone deletes) keeping a summary per live key. */
function liveSummaries(
  db: BoltDb,
  prefix: string | undefined,
): { keys: Map<string, LiveSummary>; revision: number; revisions: number; tombstones: number } {
  const bucket = db.bucket("key");
  if (!bucket) throw new Error("not an etcd database: no bucket key");
  const wanted = prefix === undefined ? null : Buffer.from(prefix, "utf8");
  const keys = new Map<string, LiveSummary>();
  const kv = emptyKeyValueRanges();
  let revision = 0;
  let revisions = 0;
  let tombstones = 0;
  db.walk(bucket, (buf, ko, kl, vo, vl) => {
    revisions++;
    if (kl >= 8) revision = revisionMain(buf, ko, kl);
    const tombstone = kl === 18 && buf[ko + 17] === 0x74;
    if (tombstone) tombstones++;
    readKeyValueRanges(buf, vo, vo + vl, kv);
    if (
      wanted &&
      (kv.keyEnd - kv.keyStart < wanted.length ||
        wanted.compare(buf, kv.keyStart, kv.keyStart + wanted.length) !== 0)
    )
      return;
    const name = buf.toString("latin1", kv.keyStart, kv.keyEnd);
    if (tombstone) {
      keys.delete(name);
      return;
    }
    // Only values starting with "k" can carry the k8s:enc: prefix; skip the view for all others.
    const enc =
      buf[kv.valueStart] === 0x6b ? parseEncryptionPrefix(buf.subarray(kv.valueStart, kv.valueEnd)) : null;
    keys.set(name, {
      bytes: kv.valueEnd - kv.valueStart,
      modRevision: kv.modRevision,
      leased: kv.leased,
      encryption: enc ? { provider: enc.provider, keyName: enc.keyName } : null,
    });
  });
  return { keys, revision, revisions, tombstones };
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
