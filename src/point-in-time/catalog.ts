/**
 * What the revision log in a store holds, per cluster: chains (a full backup and the closed segments after
 * it), their recoverable ranges, the gaps between them, and segments whose manifest never came (not closed).
 */
import { listBackups } from "../catalog/catalog.ts";
import { NotFoundError, type Store } from "../store/store.ts";
import { listLogObjects, readJson } from "./log-store.ts";
import { type LogKey, parseLogKey } from "./names.ts";
import type { ChainRecord, GapRecord, HeadRecord, PrunedRecord, SegmentManifest } from "./records.ts";

export interface ClosedSegment {
  key: string;
  manifest: SegmentManifest;
}

export interface Chain {
  cluster: string;
  dir: string;
  base: number;
  record?: ChainRecord;
  /** Closed segments in revision order. */
  segments: ClosedSegment[];
  head?: HeadRecord;
  /** Prune removed the segments up to `pruned.through` (no full backup before it is left). */
  pruned?: PrunedRecord;
  /**
   * The earliest revision the chain can restore: its base, or where prune cut it, and never before the
   * earliest full backup of the chain still in the store (a prune stopped between deleting backups and cutting
   * the log leaves segments before it; they serve no point until the next prune removes them).
   */
  start: number;
  /** The highest revision reachable from `start` without a hole. */
  reach: number;
  /** When the log last confirmed the state at `reach` (the base backup's time when nothing more is known). */
  reachTime: Date;
  /** When the base backup was taken: the earliest point of the chain. */
  startTime: Date;
  /** Revisions missing between closed segments (a segment deleted or never closed); nothing after the first is reachable. */
  holes: { from: number; to: number }[];
  /** Segment objects without manifest (not closed: written by a log that was killed). */
  unclosed: string[];
}

export interface ClusterLog {
  cluster: string;
  chains: Chain[];
  gaps: GapRecord[];
}

/** A range one can restore to: every revision from `from` to `to`, at times `fromTime` to `toTime`. */
export interface RecoverableRange {
  base: number;
  from: number;
  to: number;
  fromTime: Date;
  toTime: Date;
}

/** How often a read that met an object removed after listing (a prune running beside it) starts over. */
const RELIST_ATTEMPTS = 3;

/**
 * Reads the log's objects under `prefix` (all clusters when empty), chains oldest first.
 *
 * A prune (or a log closing a chain) may remove an object between our listing and our read of it. The read then
 * starts over from a new listing, so what it returns is one consistent view, never a mix of before and after.
 */
export async function readLogCatalog(
  store: Store,
  options: { cluster?: string } = {},
): Promise<ClusterLog[]> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await readLogCatalogOnce(store, options);
    } catch (err) {
      if (!(err instanceof NotFoundError) || attempt >= RELIST_ATTEMPTS) throw err;
    }
  }
}

async function readLogCatalogOnce(store: Store, options: { cluster?: string }): Promise<ClusterLog[]> {
  const byChain = new Map<
    string,
    { cluster: string; dir: string; base: number; keys: { key: string; parsed: LogKey }[] }
  >();
  const gapKeys: { key: string; cluster: string }[] = [];
  for (const obj of await listLogObjects(store)) {
    const parsed = parseLogKey(obj.key);
    if (!parsed) continue;
    if (options.cluster && parsed.cluster !== options.cluster) continue;
    if (parsed.kind === "gap") {
      gapKeys.push({ key: obj.key, cluster: parsed.cluster });
      continue;
    }
    const id = `${parsed.dir}\u0000${parsed.cluster}\u0000${parsed.base}`;
    let entry = byChain.get(id);
    if (!entry) {
      entry = { cluster: parsed.cluster, dir: parsed.dir, base: parsed.base, keys: [] };
      byChain.set(id, entry);
    }
    entry.keys.push({ key: obj.key, parsed });
  }
  const clusters = new Map<string, ClusterLog>();
  const clusterLog = (name: string) => {
    let c = clusters.get(name);
    if (!c) {
      c = { cluster: name, chains: [], gaps: [] };
      clusters.set(name, c);
    }
    return c;
  };
  // The full backups a chain can replay on (complete snapshots with etcd's revision in their manifest).
  const backups =
    byChain.size === 0
      ? []
      : (await listBackups(store)).flatMap((e) =>
          e.state === "complete" && e.kind === "snapshot" && e.manifest?.etcd
            ? [{ cluster: e.cluster, dir: e.dir, revision: e.manifest.etcd.revision }]
            : [],
        );
  for (const entry of byChain.values()) {
    const revisions = backups
      .filter((b) => b.cluster === entry.cluster && b.dir === entry.dir)
      .map((b) => b.revision);
    clusterLog(entry.cluster).chains.push(await readChain(store, entry, revisions));
  }
  for (const g of gapKeys) clusterLog(g.cluster).gaps.push(await readJson(store, g.key, "log-gap"));
  for (const c of clusters.values()) {
    c.chains.sort((a, b) => a.base - b.base);
    c.gaps.sort((a, b) => a.from - b.from);
  }
  return [...clusters.values()].sort((a, b) => (a.cluster < b.cluster ? -1 : a.cluster > b.cluster ? 1 : 0));
}

async function readChain(
  store: Store,
  entry: { cluster: string; dir: string; base: number; keys: { key: string; parsed: LogKey }[] },
  backupRevisions: number[],
): Promise<Chain> {
  let record: ChainRecord | undefined;
  let head: HeadRecord | undefined;
  let pruned: PrunedRecord | undefined;
  const objects = new Set<string>();
  const manifests: string[] = [];
  for (const { key, parsed } of entry.keys) {
    if (parsed.kind === "chain") record = await readJson(store, key, "log-chain");
    else if (parsed.kind === "head") head = await readJson(store, key, "log-head");
    else if (parsed.kind === "pruned") pruned = await readJson(store, key, "log-pruned");
    else if (parsed.kind === "segment") objects.add(key);
    else if (parsed.kind === "segment-manifest") manifests.push(key);
  }
  const segments: ClosedSegment[] = [];
  await forEachLimited(manifests, 8, async (mkey) => {
    const object = mkey.slice(0, -".json".length);
    if (!objects.has(object)) return; // a manifest whose object is gone: the segment counts as missing
    segments.push({ key: object, manifest: await readJson(store, mkey, "log-segment") });
  });
  segments.sort((a, b) => a.manifest.firstRevision - b.manifest.firstRevision);
  const closed = new Set(segments.map((s) => s.key));
  const unclosed = [...objects].filter((k) => !closed.has(k)).sort();
  const logStart = Math.max(entry.base, pruned?.through ?? entry.base);
  let reach = logStart;
  let reachTime = new Date(0);
  const holes: { from: number; to: number }[] = [];
  for (const s of segments) {
    const m = s.manifest;
    if (m.lastRevision <= reach) continue; // overlapped by an earlier segment (a retried close)
    if (m.firstRevision > reach + 1) {
      holes.push({ from: reach + 1, to: m.firstRevision - 1 });
      break;
    }
    reach = m.lastRevision;
    reachTime = new Date(m.lastTime);
  }
  const earliestBackup = Math.min(
    ...backupRevisions.filter((r) => r >= logStart && r <= reach),
    Number.POSITIVE_INFINITY,
  );
  const start = Number.isFinite(earliestBackup) && earliestBackup > logStart ? earliestBackup : logStart;
  const startTime =
    start > entry.base ? (timeAfter(segments, start) ?? reachTime) : new Date(record?.backupTime ?? 0);
  if (reach === logStart) reachTime = startTime;
  if (head && holes.length === 0 && head.revision === reach) {
    const confirmed = new Date(head.confirmed);
    if (confirmed > reachTime) reachTime = confirmed;
  }
  return {
    cluster: entry.cluster,
    dir: entry.dir,
    base: entry.base,
    ...(record ? { record } : {}),
    segments,
    ...(head ? { head } : {}),
    ...(pruned ? { pruned } : {}),
    start,
    reach,
    reachTime,
    startTime,
    holes,
    unclosed,
  };
}

/**
 * When a point just after `revision` was recorded: the first time of the first segment that goes past it (the
 * time a chain cut at `revision` starts from); undefined when no segment does.
 */
export function timeAfter(segments: ClosedSegment[], revision: number): Date | undefined {
  const after = segments.find((s) => s.manifest.lastRevision > revision);
  return after ? new Date(after.manifest.firstTime) : undefined;
}

/** The ranges a chain can restore to (one per chain with a readable base; none without its chain record). */
export function recoverableRanges(log: ClusterLog): RecoverableRange[] {
  return log.chains
    .filter((c) => c.record)
    .map((c) => ({ base: c.base, from: c.start, to: c.reach, fromTime: c.startTime, toTime: c.reachTime }));
}

/** "rev 100-250 (2026-11-30T08:00:00.000Z .. 2026-11-30T08:10:00.000Z)", joined with "; ". */
export function describeRanges(ranges: RecoverableRange[]): string {
  if (ranges.length === 0) return "nothing";
  return ranges
    .map((r) => `revisions ${r.from}-${r.to} (${r.fromTime.toISOString()} .. ${r.toTime.toISOString()})`)
    .join("; ");
}

async function forEachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}
