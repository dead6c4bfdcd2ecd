/**
 * Retention for the revision log, run after full backups were pruned: keeps every segment that a point one
 * can still restore to needs, and removes the rest.
 *
 * A point is restorable when a full backup lies between its chain's start and the point (see
 * restore-to-point.ts). So in each chain, segments that end at or before the chain's earliest remaining full
 * backup serve no restorable point; an older chain with no full backup left serves none at all and goes
 * whole. The newest chain keeps its chain and head records (a log may be writing to it, and the next full
 * backup will fall inside it). Gap records are kept: they are small and explain the history.
 */
import { listBackups } from "../catalog/catalog.ts";
import { readHolds } from "../catalog/prune.ts";
import type { Store } from "../store/store.ts";
import { type Chain, readLogCatalog, timeAfter } from "./catalog.ts";
import { writeJson } from "./log-store.ts";
import { chainKey, headKey, prunedKey, SEGMENT_MANIFEST_SUFFIX } from "./names.ts";
import { LOG_FORMAT } from "./records.ts";

export interface LogPruneItem {
  key: string;
  reason: string;
}

/** What retention decided for one chain: the revisions a restore can still reach, and what goes. */
export interface ChainPruneDecision {
  cluster: string;
  base: number;
  /** `keep`: untouched; `cut`: segments before its earliest full backup go; `remove`: no full backup left. */
  action: "keep" | "cut" | "remove";
  /** The restorable revisions the chain keeps (none when removed), and the time of the first (ISO 8601). */
  kept?: { from: number; to: number; fromTime: string };
  keptSegments: number;
  removedSegments: number;
  /** The full backup the kept range starts from (revision), when there is one. */
  earliestBackup?: number;
  reason: string;
}

export interface LogPruneResult {
  /** One decision per chain, oldest chain first per cluster. */
  chains: ChainPruneDecision[];
  /** What is (or, with dryRun, would be) removed: segment objects before their manifests, records last. */
  removed: LogPruneItem[];
  keptSegments: number;
  /**
   * What retention would remove but the store holds (object lock, legal hold), with what holds it: kept, with
   * its segment's other half and, for a chain that would go whole, the chain's records.
   */
  held: LogPruneItem[];
  /** Keys whose deletion failed, with the error; everything else was removed. */
  failed: { key: string; error: string }[];
}

/**
 * Where the cluster's newest chain restores from after this prune (its chain base, the revision and its time), for
 * a running log's recoverable window; undefined when the prune kept no restorable point in it.
 */
export function newestChainStart(
  result: LogPruneResult,
  cluster: string,
): { base: number; revision: number; time: string } | undefined {
  const newest = result.chains.filter((c) => c.cluster === cluster).at(-1);
  return newest?.kept
    ? { base: newest.base, revision: newest.kept.from, time: newest.kept.fromTime }
    : undefined;
}

export async function pruneLog(
  store: Store,
  options: {
    cluster?: string;
    dryRun?: boolean;
    /** Backups to count as gone (a dry run of `prune` passes the ones it would delete). */
    goneBackups?: Iterable<string>;
    /**
     * Keep every revision restorable only within this span before `now`; older recovery points are the kept
     * full backups alone: segments before the newest full backup taken at or before the window's start go,
     * and finished chains that end before the window go whole. Absent: every revision after each chain's
     * earliest kept full backup stays restorable.
     */
    withinMs?: number;
    now?: Date;
  } = {},
): Promise<LogPruneResult> {
  const gone = new Set(options.goneBackups ?? []);
  const backups = (await listBackups(store)).filter(
    (e) =>
      e.state === "complete" && e.kind === "snapshot" && e.manifest?.etcd !== undefined && !gone.has(e.key),
  );
  const chains: ChainPruneDecision[] = [];
  const removed: LogPruneItem[] = [];
  const cuts: { chain: Chain; through: number }[] = [];
  /** Which chain each removed key belongs to, to keep a chain's records while one of its segments is held. */
  const chainOf = new Map<string, string>();
  const recordKeys = new Set<string>();
  let keptSegments = 0;
  for (const log of await readLogCatalog(store, options.cluster ? { cluster: options.cluster } : {})) {
    const newest = log.chains.at(-1);
    for (const chain of log.chains) {
      const inChain = backups
        .filter((b) => b.cluster === log.cluster && b.dir === chain.dir)
        .map((b) => ({ revision: b.manifest!.etcd!.revision, time: b.time.getTime() }))
        .filter((b) => b.revision >= chain.base && b.revision <= chain.reach);
      const bases = inChain.map((b) => b.revision);
      const oldest = bases.length > 0 ? Math.min(...bases) : undefined;
      // With a window: the chain starts over at the newest full backup at or before the window's start.
      const windowStart =
        options.withinMs !== undefined ? (options.now ?? new Date()).getTime() - options.withinMs : undefined;
      const beforeWindow = windowStart !== undefined && chain.reachTime.getTime() < windowStart;
      const windowBase =
        windowStart !== undefined
          ? Math.max(...inChain.filter((b) => b.time <= windowStart).map((b) => b.revision), -1)
          : -1;
      const earliest = oldest !== undefined ? Math.max(oldest, windowBase) : undefined;
      const whole = (earliest === undefined || beforeWindow) && chain !== newest;
      if (
        !whole &&
        earliest !== undefined &&
        chain.segments.some((s) => s.manifest.lastRevision <= earliest)
      ) {
        // From now on the chain starts at its earliest full backup: points before it have nothing to replay on.
        cuts.push({ chain, through: earliest });
      }
      let chainKept = 0;
      let chainRemoved = 0;
      for (const s of chain.segments) {
        if (whole || (earliest !== undefined && s.manifest.lastRevision <= earliest)) {
          chainRemoved++;
          const why = whole
            ? beforeWindow && earliest !== undefined
              ? `chain ${chain.base} ends before the log retention window`
              : `chain ${chain.base} has no full backup left to replay on`
            : `ends at revision ${s.manifest.lastRevision}, at or before the chain's earliest full backup (revision ${earliest})`;
          removed.push(
            { key: s.key, reason: why },
            { key: `${s.key}${SEGMENT_MANIFEST_SUFFIX}`, reason: why },
          );
        } else {
          keptSegments++;
          chainKept++;
        }
      }
      const from = Math.max(earliest ?? chain.start, chain.start);
      const fromTime = (
        from === chain.start ? chain.startTime : (timeAfter(chain.segments, from) ?? chain.reachTime)
      ).toISOString();
      chains.push({
        cluster: log.cluster,
        base: chain.base,
        action: whole ? "remove" : chainRemoved > 0 ? "cut" : "keep",
        ...(earliest !== undefined && !whole ? { kept: { from, to: chain.reach, fromTime } } : {}),
        keptSegments: chainKept,
        removedSegments: chainRemoved,
        ...(earliest !== undefined ? { earliestBackup: earliest } : {}),
        reason: whole
          ? beforeWindow && earliest !== undefined
            ? "ends before the log retention window: its full backups stay as recovery points"
            : `no full backup left to replay on`
          : earliest === undefined
            ? "newest chain, no full backup in it: kept, the log may be writing to it (nothing restorable yet)"
            : chainRemoved > 0
              ? earliest > (oldest ?? 0)
                ? `segments up to the newest full backup before the log retention window (revision ${earliest}) serve no kept point`
                : `segments up to the earliest remaining full backup (revision ${earliest}) serve no restorable point`
              : `every segment lies after the earliest remaining full backup (revision ${earliest})`,
      });
      if (chain !== newest) {
        for (const key of chain.unclosed)
          removed.push({ key, reason: "segment never closed, in a finished chain" });
      }
      if (whole) {
        const records = chainRecords(chain);
        for (const r of records) recordKeys.add(r.key);
        removed.push(...records);
      }
      const id = `${chain.cluster}\n${chain.dir}\n${chain.base}`;
      for (const item of removed) if (!chainOf.has(item.key)) chainOf.set(item.key, id);
    }
  }
  // Locked segments stay (asked in dry runs too, so both plan alike), with their manifest and their chain's records.
  const holds = await readHolds(
    store,
    removed.map((r) => r.key),
    options.now ?? new Date(),
  );
  const held: LogPruneItem[] = [];
  if (holds.size > 0) {
    const segmentOf = (key: string) =>
      key.endsWith(SEGMENT_MANIFEST_SUFFIX) ? key.slice(0, -SEGMENT_MANIFEST_SUFFIX.length) : key;
    const heldSegments = new Set([...holds.keys()].map(segmentOf));
    const heldChains = new Set([...holds.keys()].map((k) => chainOf.get(k)));
    const stays = (key: string) =>
      heldSegments.has(segmentOf(key)) || (recordKeys.has(key) && heldChains.has(chainOf.get(key)));
    for (const r of removed.filter((r) => stays(r.key))) {
      const hold =
        holds.get(r.key) ?? holds.get(segmentOf(r.key)) ?? holds.get(`${r.key}${SEGMENT_MANIFEST_SUFFIX}`);
      held.push({
        key: r.key,
        reason: `kept: ${hold ?? "a segment of its chain is held by an object lock"}`,
      });
    }
    removed.splice(0, removed.length, ...removed.filter((r) => !stays(r.key)));
  }
  const failed: { key: string; error: string }[] = [];
  if (!options.dryRun) {
    // The cut is recorded first, so that a chain whose first segments are gone never reads as having a hole.
    for (const cut of cuts) {
      await writeJson(store, prunedKey(cut.chain.cluster, cut.chain.base, cut.chain.dir), {
        format: LOG_FORMAT,
        kind: "log-pruned",
        through: Math.max(cut.through, cut.chain.pruned?.through ?? 0),
        pruned: new Date().toISOString(),
      });
    }
    for (const item of removed) {
      try {
        await store.delete(item.key);
      } catch (err) {
        failed.push({ key: item.key, error: (err as Error).message });
      }
    }
  }
  return { chains, removed, keptSegments, held, failed };
}

function chainRecords(chain: Chain): LogPruneItem[] {
  const reason = `chain ${chain.base} has no full backup left to replay on`;
  const out = [{ key: chainKey(chain.cluster, chain.base, chain.dir), reason }];
  if (chain.head) out.push({ key: headKey(chain.cluster, chain.base, chain.dir), reason });
  if (chain.pruned) out.push({ key: prunedKey(chain.cluster, chain.base, chain.dir), reason });
  return out;
}
