/**
 * Restore to a point in time: the newest full backup at or before the point, with the revision log replayed
 * on top of it up to the point, as a snapshot file.
 *
 * The replay uses etcd's own guarantees rather than writing bbolt pages: the full backup is restored into a
 * private data dir, a real etcd is started on it (loopback, free ports, 0700 work folder), and each original
 * revision is applied as one Txn holding its puts and deletes in their original order. A full-keyspace watch
 * delivers every revision, so the private etcd's revision advances in step; the header revision of every Txn
 * is checked against the original, and any difference stops the restore. Create revisions, mod revisions and
 * versions follow from etcd's own MVCC, exactly as they did the first time. Leases are granted with their
 * recorded IDs and TTLs and kept alive while the replay runs (so none expires and deletes keys at a revision
 * of its own); leases the log saw revoked are revoked at the end when no key is attached to them. The final
 * state is taken with etcd's Maintenance.Snapshot, sha256 trailer checked, and written atomically.
 */
import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { chmod, mkdtemp, open, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { pipeline } from "node:stream/promises";
import { type CatalogEntry, listBackups } from "../catalog/catalog.ts";
import { Hinted } from "../errors.ts";
import { restoreSnapshotFile } from "../restore/data-dir.ts";
import { findRestoreTool } from "../restore/etcd-tools.ts";
import { restoreToFile } from "../restore/to-file.ts";
import { EtcdSource } from "../source/etcd.ts";
import { decodeEvent } from "../source/etcd-watch.ts";
import type { DecryptionFactory } from "../stages/encryption.ts";
import { StatusTap } from "../stages/status-tap.ts";
import { TrailerCheck } from "../stages/trailer.ts";
import type { Store } from "../store/store.ts";
import { type Chain, type ClusterLog, describeRanges, readLogCatalog, recoverableRanges } from "./catalog.ts";
import { readSegmentPayload } from "./log-store.ts";
import { startPrivateEtcd } from "./private-etcd.ts";
import { ReplayClient } from "./replay-client.ts";
import { ReplayPipeline } from "./replay-pipeline.ts";
import { parseSegment } from "./segment-format.ts";

/** A point to restore to: a revision, or a time (the last revision the log had received by then). */
export type RecoveryPoint = { revision: number } | { time: Date };

/** TTL given to a lease the log saw on a key but could not read (revoked before it looked), seconds. */
const UNKNOWN_LEASE_TTL = 3600;

/**
 * Replay Txns in flight at once (see replay-pipeline.ts). One: measured with bench/point-in-time.ts, etcd
 * 3.4 takes concurrent Txns so often out of order that guarded windows of 64 or 256 resent most rounds and
 * replayed no faster (about 500-650 revisions/s on disk, 900-1,000 on tmpfs, either way).
 */
export const DEFAULT_REPLAY_WINDOW = 1;

/** ETCD_BACKUP_REPLAY_WINDOW overrides the window (1 replays one Txn after another), for tuning and bench/. */
function replayWindowFromEnv(): number {
  const n = Number(process.env.ETCD_BACKUP_REPLAY_WINDOW);
  return Number.isSafeInteger(n) && n >= 1 ? n : DEFAULT_REPLAY_WINDOW;
}

export interface RestoreToPointOptions {
  store: Store;
  /** Needed when the store holds the log of more than one cluster. */
  cluster?: string;
  /** The full backup to replay on (a name as `list` prints it); the newest suitable one when absent. */
  base?: string;
  point: RecoveryPoint;
  out: string;
  /** Where the private etcd's work folder goes (default: beside `out`); tmpfs doubles the replay rate. */
  workDir?: string;
  force?: boolean;
  /** How many replay Txns may be in flight (1: one after another). */
  window?: number;
  decrypt?: DecryptionFactory;
  signal?: AbortSignal;
  onLine?: (line: string) => void;
}

export interface RestoreToPointResult {
  path: string;
  cluster: string;
  /** The revision of the restored state. */
  revision: number;
  base: { key: string; revision: number };
  revisionsReplayed: number;
  eventsReplayed: number;
  replaySeconds: number;
  dbSize: number;
  sha256: string;
}

function describePoint(point: RecoveryPoint): string {
  return "revision" in point ? `revision ${point.revision}` : point.time.toISOString();
}

/** The chain that holds the point (the newest one when several do), or a one-line error naming the ranges. */
export function chooseChain(log: ClusterLog, point: RecoveryPoint): Chain {
  const candidates = log.chains.filter((c) => {
    if (!c.record) return false;
    if ("revision" in point) return c.start <= point.revision && point.revision <= c.reach;
    return c.startTime.getTime() <= point.time.getTime() && point.time.getTime() <= c.reachTime.getTime();
  });
  const chosen = candidates.at(-1);
  if (chosen) return chosen;
  const gaps = log.gaps.map((g) => `${g.from}-${g.to}`).join(", ");
  throw new Hinted(
    `cannot restore cluster ${log.cluster} to ${describePoint(point)}: the log can restore ${describeRanges(recoverableRanges(log))}` +
      (gaps ? `; gaps at revisions ${gaps}` : ""),
    "pick a point inside one of these ranges (`etcd-backup list` shows them)",
  );
}

async function clusterLog(store: Store, cluster: string | undefined): Promise<ClusterLog> {
  const logs = await readLogCatalog(store, cluster ? { cluster } : {});
  if (logs.length === 0) {
    throw new Hinted(
      `no revision log${cluster ? ` for cluster ${cluster}` : ""} in ${store.location}`,
      "run `etcd-backup log` beside the full backups to record one",
    );
  }
  if (logs.length > 1) {
    throw new Hinted(
      `${store.location} holds the logs of ${logs.length} clusters (${logs.map((l) => l.cluster).join(", ")})`,
      "pass --cluster NAME",
    );
  }
  return logs[0]!;
}

/** Restores the state at `point` to a snapshot file. Nothing is left behind on failure, not even etcd. */
export async function restoreToPoint(options: RestoreToPointOptions): Promise<RestoreToPointResult> {
  const say = options.onLine ?? (() => {});
  const out = resolve(options.out);
  if ((await stat(out).catch(() => null)) && !options.force) {
    throw new Hinted(`${out} already exists`, "choose another --to-file or pass --force to replace it");
  }
  const log = await clusterLog(options.store, options.cluster);
  const chain = chooseChain(log, options.point);
  const target = await targetRevision(chain, options);
  const entry = await chooseBase(options.store, log.cluster, chain, target, options.base);
  const baseRevision = entry.manifest!.etcd!.revision;
  const baseKey = entry.key;
  say(
    `restore: revision ${target}: full backup ${baseKey} (revision ${baseRevision}) + log chain ${chain.base} (closed up to ${chain.reach})`,
  );

  const work = await mkdtemp(
    join(options.workDir ? resolve(options.workDir) : dirname(out), ".etcd-backup-pitr-"),
  );
  let etcd: { stop(): Promise<void> } | undefined;
  let client: ReplayClient | undefined;
  try {
    await chmod(work, 0o700);
    const base = await restoreToFile({
      store: options.store,
      entry,
      out: join(work, "base.db"),
      ...(options.decrypt ? { decrypt: options.decrypt } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const tool = await findRestoreTool(options.signal ? { signal: options.signal } : {});
    await restoreSnapshotFile({
      snapshotFile: base.path,
      dataDir: join(work, "data"),
      revisionBump: 0,
      tool,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    await rm(base.path, { force: true });
    const started = await startPrivateEtcd(join(work, "data"), options.signal);
    etcd = started;
    client = await ReplayClient.connect(started.endpoint);
    const t0 = performance.now();
    const replayed = await replay(client, chain, baseRevision, target, options);
    const replaySeconds = (performance.now() - t0) / 1000;
    say(
      `restore: replayed ${replayed.revisions} revisions (${replayed.events} events) in ${replaySeconds.toFixed(1)}s (${replayed.resent} rounds resent); state at revision ${replayed.revision}`,
    );
    client.stopKeepAlive();
    const snapshot = await snapshotTo(started.endpoint, out, replayed.revision, options.signal);
    return {
      path: out,
      cluster: log.cluster,
      revision: replayed.revision,
      base: { key: baseKey, revision: baseRevision },
      revisionsReplayed: replayed.revisions,
      eventsReplayed: replayed.events,
      replaySeconds,
      ...snapshot,
    };
  } finally {
    client?.close();
    await etcd?.stop();
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * The revision a point names: for a time, the last revision the log had received by then (the chain's base
 * when none), read from the one segment whose time range holds it.
 */
async function targetRevision(chain: Chain, options: RestoreToPointOptions): Promise<number> {
  const point = options.point;
  if ("revision" in point) return point.revision;
  const at = point.time.getTime();
  const segment = chain.segments.findLast((s) => new Date(s.manifest.firstTime).getTime() <= at);
  if (!segment) return chain.base;
  if (new Date(segment.manifest.lastTime).getTime() <= at) return segment.manifest.lastRevision;
  const payload = await readSegmentPayload(options.store, segment.manifest, segment.key, {
    decrypt: options.decrypt,
    signal: options.signal,
  });
  let revision = segment.manifest.firstRevision - 1;
  for (const r of parseSegment(payload)) if (r.kind === "revision" && r.unixMs <= at) revision = r.revision;
  return revision;
}

/**
 * The newest full backup the chain can replay on up to `target`: a complete backup of the cluster whose
 * revision lies between the chain's base and the target (the chain's own base, or any later full backup,
 * which shortens the replay and keeps the chain usable after its base was pruned).
 */
async function chooseBase(
  store: Store,
  cluster: string,
  chain: Chain,
  target: number,
  named?: string,
): Promise<CatalogEntry> {
  const candidates = (await listBackups(store))
    .filter(
      (e) =>
        e.state === "complete" &&
        e.kind === "snapshot" &&
        e.cluster === cluster &&
        e.dir === chain.dir &&
        e.manifest?.etcd !== undefined &&
        e.manifest.etcd.revision >= chain.start &&
        e.manifest.etcd.revision <= target,
    )
    .sort((a, b) => b.manifest!.etcd!.revision - a.manifest!.etcd!.revision);
  if (named !== undefined) {
    const chosen = candidates.find((e) => e.key === named || e.key.endsWith(`/${named}`));
    if (!chosen) {
      throw new Hinted(
        `backup ${named} cannot be the base for revision ${target}: it must be a complete backup of cluster ${cluster} at a revision from ${chain.start} to ${target}`,
        `drop BACKUP to let the newest suitable one be picked${candidates[0] ? ` (${candidates[0].key})` : ""}`,
      );
    }
    return chosen;
  }
  const best = candidates[0];
  if (!best) {
    throw new Hinted(
      `no full backup of cluster ${cluster} between revisions ${chain.start} and ${target} to replay the log on (the chain's base ${chain.record?.backup ?? "?"} is gone)`,
      "pick a point in another window from `etcd-backup list`",
    );
  }
  return best;
}

async function replay(
  client: ReplayClient,
  chain: Chain,
  baseRevision: number,
  target: number,
  options: RestoreToPointOptions,
): Promise<{ revision: number; revisions: number; events: number; resent: number }> {
  let current = await client.revision();
  if (current !== baseRevision) {
    throw new Error(`the restored full backup is at revision ${current}, its manifest says ${baseRevision}`);
  }
  for (const id of await client.leases()) client.keep(id);
  const granted = new Set<bigint>(await client.leases());
  const revoked = new Map<bigint, number>();
  let revisions = 0;
  let events = 0;
  const pipeline = new ReplayPipeline(client, options.window ?? replayWindowFromEnv());
  const ensureLease = async (id: bigint, ttl: number) => {
    if (granted.has(id)) return;
    await client.grant(id, ttl > 0 ? ttl : UNKNOWN_LEASE_TTL);
    granted.add(id);
    revoked.delete(id);
    client.keep(id);
  };
  segments: for (const segment of chain.segments) {
    if (segment.manifest.lastRevision <= current) continue;
    if (segment.manifest.firstRevision > target) break;
    options.signal?.throwIfAborted();
    const payload = await readSegmentPayload(options.store, segment.manifest, segment.key, {
      decrypt: options.decrypt,
      signal: options.signal,
    });
    for (const record of parseSegment(payload)) {
      if (record.kind === "lease") {
        if (record.revoked) revoked.set(record.id, record.atRevision);
        // Seen before the full backup: in it when it still existed then, and gone otherwise.
        else if (record.atRevision >= baseRevision) await ensureLease(record.id, record.ttl);
        continue;
      }
      if (record.revision <= current) continue;
      if (record.revision > target) break segments;
      if (record.revision !== current + 1) {
        throw new Error(`log segment ${segment.key} skips from revision ${current} to ${record.revision}`);
      }
      const decoded = record.events.map(decodeEvent);
      for (const e of decoded) if (e.lease !== 0n) await ensureLease(e.lease, 0);
      await pipeline.add(record.revision, decoded);
      current = record.revision;
      revisions++;
      events += decoded.length;
    }
  }
  await pipeline.flush();
  if (current !== target) throw new Error(`the log ends at revision ${current}, before ${target}`);
  for (const [id, at] of revoked) {
    if (at > current || !granted.has(id)) continue;
    const keys = await client.leaseKeys(id);
    if (keys && keys.length === 0) await client.revoke(id);
  }
  const after = await client.revision();
  if (after !== current)
    throw new Error(`the replay etcd moved on to revision ${after} after the replay (${current})`);
  return { revision: current, revisions, events, resent: pipeline.resent };
}

/** Takes the replayed state with Maintenance.Snapshot into `out` (atomically), trailer and revision checked. */
async function snapshotTo(
  endpoint: string,
  out: string,
  revision: number,
  signal?: AbortSignal,
): Promise<{ dbSize: number; sha256: string }> {
  const source = new EtcdSource({ endpoints: [endpoint], tls: {}, dialTimeoutMs: 5000 });
  const snapshot = await source.open(signal);
  const trailer = new TrailerCheck();
  const status = new StatusTap();
  const temp = join(dirname(out), `.${basename(out)}.tmp-${randomBytes(6).toString("hex")}`);
  const handle = await open(temp, "wx", 0o600);
  try {
    await pipeline(snapshot.stream, trailer, status, createWriteStream("", { fd: handle, flush: true }), {
      ...(signal ? { signal } : {}),
    });
    const result = trailer.result;
    if (!result) throw new Error("the replayed snapshot ended before its trailer");
    if (status.result && status.result.revision !== revision) {
      throw new Error(`the replayed snapshot is at revision ${status.result.revision}, expected ${revision}`);
    }
    await rename(temp, out);
    return { dbSize: result.dbSize, sha256: result.sha256 };
  } catch (err) {
    snapshot.stream.destroy();
    await handle.close().catch(() => {});
    await rm(temp, { force: true });
    throw err;
  }
}
